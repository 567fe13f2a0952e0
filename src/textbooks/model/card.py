"""The model card: `export-hf` writes README.md next to the weights, so the folder uploads to the Hugging Face
Hub as it is (`huggingface_hub.upload_folder`) and says what the model is and how it was made.

    textbooks export-hf runs/x/finetune hf/x --eval runs/x/eval-finetune --license mit

    ---                                   front matter (huggingface_hub's ModelCardData): license, library_name,
    library_name: transformers            tags, datasets (hub datasets among the sources), model-index with the
    model-index: [...]                    evaluations' pass@k and solution loss
    ---
    # x
    the model (architecture, parameters), its training runs oldest first (pretraining, then finetuning: each
    one's data mixture and token counts, settings and losses), the recipe, and the evaluation figures

Everything comes from what the steps recorded: the run folder's stats.json, summary.json and checkpoints'
trainer.json, the token folder the run read (its meta.json), the recipe the run folder keeps, and the eval
folders given. What is missing reads "not recorded"; a model that was not trained here (an import) gets a
card with its architecture only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from textbooks.errors import UserError
from textbooks.model.config import ModelConfig
from textbooks.model.io import load_model_config
from textbooks.pipeline.card import find_input
from textbooks.store import data

CARD = "README.md"
RECIPE = "recipe.yaml"  # the recipe a run folder keeps (`textbooks run`)
NOT_RECORDED = "not recorded"
MAX_RUNS = 8  # training runs followed back through `init`
BENCHMARK_DATASETS = {"humaneval": ("openai/openai_humaneval", "HumanEval"),
                      "humaneval+": ("evalplus/humanevalplus", "HumanEval+"),
                      "mbpp": ("google-research-datasets/mbpp", "MBPP"),
                      "mbpp+": ("evalplus/mbppplus", "MBPP+")}


def run_folder(model_folder: Path) -> Path | None:
    """The training run a model folder belongs to (its best/ or a checkpoint of it), else None."""
    folder = Path(model_folder)
    if folder.name == "best" and (folder.parent / "checkpoints").is_dir():
        return folder.parent
    if folder.parent.name == "checkpoints":
        return folder.parent.parent
    return None


def _read(path: Path) -> dict:
    try:
        return data.read_json(path) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _newest_trainer_json(run: Path) -> dict:
    steps = sorted((run / "checkpoints").glob("step-*/trainer.json")) if (run / "checkpoints").is_dir() else []
    return _read(steps[-1]) if steps else {}


def training_runs(run: Path | None) -> list[dict]:
    """Each training run that made the model, oldest first: this run, and the runs its `init` names."""
    runs: list[dict] = []
    while run is not None and run.is_dir() and len(runs) < MAX_RUNS:
        stats, marker = data.read_stats(run), data.read_marker(run) or {}
        trainer = _newest_trainer_json(run)
        config = trainer.get("config") or stats.get("config") or {}
        tokens = find_input(run, stats, marker.get("parts"))
        if tokens is None and stats.get("input") and Path(stats["input"]).is_dir():
            tokens = Path(stats["input"])
        runs.append({"folder": run, "stats": stats, "summary": _read(run / "summary.json"), "config": config,
                     "written": stats.get("config") or config, "tokens": tokens,
                     "meta": _read(tokens / "meta.json") if tokens else {}})
        init = config.get("init")
        run = Path(init) if init and not str(init).startswith("hf:") and (Path(init) / "checkpoints").is_dir() \
            else None
    return runs[::-1]


def parameter_count(folder: Path) -> int | None:
    """Parameters in a folder's safetensors files (one, or the shards of one model), from their headers alone."""
    from safetensors import safe_open

    total = None
    for weights in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(weights), "pt") as handle:
            total = (total or 0) + sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())
    return total


def evaluations(folders: list[Path]) -> list[tuple[Path, dict]]:
    """(folder, summary.json) of each eval folder given, or of the eval steps in a run folder given."""
    found = []
    for folder in map(Path, folders):
        if (folder / "summary.json").is_file():
            found.append((folder, _read(folder / "summary.json")))
        elif folder.is_dir():
            found += [(step, _read(step / "summary.json")) for step in sorted(folder.iterdir())
                      if (data.read_marker(step) or {}).get("stage") == "eval" and (step / "summary.json").is_file()]
    return found


def _eval_results(found: list[tuple[Path, dict]]) -> list[Any]:
    from huggingface_hub import EvalResult

    results = []
    for _, summary in found:
        for name, scores in (summary.get("benchmarks") or {}).items():
            dataset_type, dataset_name = BENCHMARK_DATASETS.get(name, (name, name))
            metrics = [(f"pass@{k}", round(100 * value, 2)) for k, value in sorted(
                (scores.get("pass@k") or {}).items(), key=lambda item: int(item[0])) if value is not None]
            loss = scores.get("solution_loss")
            if isinstance(loss, (int, float)) and math.isfinite(loss):
                metrics.append(("solution_loss", round(loss, 4)))
            results += [EvalResult(task_type="text-generation", task_name="Code generation",
                                   dataset_type=dataset_type, dataset_name=dataset_name, metric_type=metric,
                                   metric_name=metric, metric_value=value, verified=False)
                        for metric, value in metrics]
    return results


def _number(value: Any, form: str = "{:,}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NOT_RECORDED
    return form.format(value)


def _model_lines(config: ModelConfig | None, parameters: int | None, runs: list[dict]) -> list[str]:
    first = runs[0]["config"] if runs else {}
    preset = f"initialised from {first['init']}" if first.get("init") else first.get("model")
    lines = ["## Model", "", "phi-1's architecture (arXiv 2306.11644): a decoder-only transformer with parallel "
             "attention and MLP blocks, partial rotary embeddings, GELU, LayerNorm and biases; it loads as "
             "`transformers.PhiForCausalLM`.", "", "| | |", "|---|---|",
             f"| parameters | {_number(parameters)} |", f"| preset | {preset or NOT_RECORDED} |"]
    if config is not None:
        for field in ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
                      "vocab_size", "max_position_embeddings", "partial_rotary_factor"):
            lines.append(f"| {field} | {getattr(config, field)} |")
    return lines


def _data_lines(run: dict) -> list[str]:
    meta = run["meta"]
    if not meta:
        return [f"Data: {NOT_RECORDED} (the token folder the run read is not beside it)."]
    splits = meta.get("splits", {})
    lines = [f"Token data `{run['tokens'].name}`: {_number(splits.get('train', {}).get('tokens'))} training tokens "
             f"({_number(splits.get('train', {}).get('documents'))} documents) and "
             f"{_number(splits.get('val', {}).get('tokens'))} validation tokens; tokenizer "
             f"{meta.get('tokenizer_source', NOT_RECORDED)} with {_number(meta.get('vocab_size'))} entries.", "",
             "| source | made by | weight | tokens | share | passes | documents |", "|---|---|---|---|---|---|---|"]
    for source in meta.get("sources", []):
        label = str(source.get("input", NOT_RECORDED))
        lines.append(f"| {label} | {_maker(label, run['tokens'])} | {source.get('weight', 1)} | "
                     f"{_number(source.get('tokens'))} | {_number(source.get('share'), '{:.1%}')} | "
                     f"{_number(source.get('passes'))} | {_number(source.get('documents'))} |")
    return lines


def _maker(label: str, tokens: Path) -> str:
    """The step that made a mixture source, with its rows, from the dataset folder's stats.json."""
    folder = tokens.parent / label[1:].split("/")[0] if label.startswith("@") else Path(label)
    stats = data.read_stats(folder) if folder.is_dir() else {}
    if not stats:
        return "hub dataset" if label.startswith("hf:") else NOT_RECORDED
    rows = f", {stats['rows_out']:,} rows" if "rows_out" in stats else ""
    return f"{stats.get('stage', NOT_RECORDED)}{rows}"


def _run_lines(run: dict) -> list[str]:
    from textbooks.train.config import TrainConfig

    summary, config = run["summary"], run["config"]
    try:
        resolved = vars(TrainConfig(**config).resolved()) if config else {}
    except ValueError:  # settings of another version of textbooks
        resolved = {}
    phase = config.get("phase", NOT_RECORDED)
    lines = [f"### {run['folder'].name} ({phase})", ""]
    lines += _data_lines(run)
    lines += ["", "| setting | value |", "|---|---|"]
    settings = {**resolved, **{key: config.get(key) for key in ("seq_len", "micro_batch_size", "betas", "eps",
                                                                 "grad_clip", "min_lr", "precision", "seed")}}
    lines += [f"| {key} | {_number(value, '{}')} |" for key, value in settings.items()]
    lines += ["", "| result | value |", "|---|---|",
              f"| steps | {_number(summary.get('final_step'))} |",
              f"| tokens seen | {_number(summary.get('tokens_seen'))} |",
              f"| best validation loss | {_number(summary.get('best_val_loss'), '{:.4f}')} (step "
              f"{_number(summary.get('best_step'))}) |",
              f"| final validation loss | {_number(summary.get('final_val_loss'), '{:.4f}')} |",
              f"| unigram entropy of the validation tokens | {_number(summary.get('val_unigram_entropy'), '{:.4f}')} |",
              f"| hardware | {summary.get('world_size', NOT_RECORDED)} x {summary.get('device', NOT_RECORDED)}, "
              f"{summary.get('precision', NOT_RECORDED)} |",
              f"| training time | {_number(summary.get('seconds'), '{:,.0f}')} s |"]
    return lines


def _eval_lines(found: list[tuple[Path, dict]]) -> list[str]:
    lines = ["## Evaluation", ""]
    if not found:
        return lines + [f"{NOT_RECORDED.capitalize()}: export with `--eval EVAL_FOLDER` (a `textbooks eval` "
                        "output) to add pass@k and the loss of the canonical solutions."]
    for folder, summary in found:
        ks = sorted({int(k) for scores in summary.get("benchmarks", {}).values() for k in scores.get("pass@k", {})})
        header = ["benchmark", "problems", "samples", *[f"pass@{k}" for k in ks], "solution loss (nats/token)"]
        lines += [f"`textbooks eval` in {folder.name}, of {summary.get('model', NOT_RECORDED)}:", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, scores in summary.get("benchmarks", {}).items():
            passes = [_number(scores.get("pass@k", {}).get(str(k)), "{:.1%}") for k in ks]
            lines.append("| " + " | ".join([name, str(scores.get("problems", "")), str(scores.get("samples", "")),
                                            *passes, _number(scores.get("solution_loss"), "{:.3f}")]) + " |")
        lines.append("")
    return lines


def _recipe_lines(runs: list[dict]) -> list[str]:
    lines = ["## Recipe", ""]
    recipe = runs[-1]["folder"].parent / RECIPE if runs else None
    if recipe is not None and recipe.is_file():
        lines += [f"The run folder's recipe (`textbooks run {RECIPE}`):", "", "```yaml",
                  recipe.read_text(encoding="utf-8").rstrip(), "```"]
        return lines
    entries = [{"stage": "train", "name": run["folder"].name, **run["written"]} for run in runs]
    if not entries:
        return lines + [f"{NOT_RECORDED.capitalize()}: the model was not trained by textbooks here."]
    return lines + ["The training runs as recipe entries:", "", "```yaml",
                    yaml.safe_dump(entries, sort_keys=False).rstrip(), "```"]


def model_card(out: Path, source: Path, evals: list[Path], license: str | None = None) -> str:
    """The card of the exported model in `out`, made from the model folder `source` and eval folders."""
    from huggingface_hub import ModelCardData

    out, source = Path(out), Path(source)
    runs = training_runs(run_folder(source))
    try:
        config = load_model_config(source)
    except UserError:  # a card says what it knows; the export itself checked the model
        config = None
    found = evaluations(evals)
    hub_datasets = sorted({str(item["input"])[3:] for run in runs for item in run["meta"].get("sources", [])
                           if str(item.get("input", "")).startswith("hf:")})
    init = str(runs[0]["config"].get("init") or "") if runs else ""
    card_data = ModelCardData(license=license, library_name="transformers", pipeline_tag="text-generation",
                              base_model=init[3:] if init.startswith("hf:") else None,
                              tags=["textbooks", "phi", "code"], datasets=hub_datasets or None,
                              model_name=out.name, eval_results=_eval_results(found) or None)
    lines = ["---", card_data.to_yaml().rstrip(), "---", f"# {out.name}", "",
             "A small code model in the manner of phi-1 (\"Textbooks Are All You Need\"), trained and exported "
             "with textbooks.", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
             f'model = AutoModelForCausalLM.from_pretrained("{out.name}")',
             f'tokenizer = AutoTokenizer.from_pretrained("{out.name}")', "```", ""]
    lines += _model_lines(config, parameter_count(out), runs)
    lines += ["", "## Training", ""]
    if not runs:
        lines.append(f"{NOT_RECORDED.capitalize()}: {source} is not a checkpoint of a training run.")
    for run in runs:
        lines += _run_lines(run) + [""]
    lines += _eval_lines(found)
    lines += [""] + _recipe_lines(runs)
    lines += ["", f"License: {license or 'not stated (export with --license, e.g. apache-2.0)'}."]
    return "\n".join(lines) + "\n"


def write_model_card(out: Path, source: Path, evals: list[Path], license: str | None = None) -> Path:
    """Write OUT/README.md (atomically) and return its path."""
    path = Path(out) / CARD
    data.write_bytes(model_card(out, source, evals, license).encode("utf-8"), path)
    return path
