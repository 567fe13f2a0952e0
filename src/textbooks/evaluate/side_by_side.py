"""The `compare` step: evaluations side by side with intervals, in the layout of the paper's figure 2.1.

    textbooks compare runs/stack/eval runs/textbook/eval --out runs/compare
    textbooks compare stack=runs/stack-0 stack=runs/stack-1 textbook=runs/textbook-0 textbook=runs/textbook-1 \
        --out runs/compare-seeds

    - stage: compare         # in a recipe
      evals: ['@eval-pretrain', 'finetuned=@eval-finetune']

Each item is an eval step's folder (summary.json and samples.jsonl) or a run folder, whose every eval step is
an arm (named RUN/STEP when it has several), labelled `NAME=PATH` or by the path as written; items are
separated by spaces or commas, as in every list setting. A NAME given to several evaluations makes them seeds
of one arm: a problem's score is its mean over the seeds, and the seeds' own scores are reported too, as
mean ± std.

For each benchmark and arm: pass@1 (and pass@10 where every problem has at least 10 samples) and the mean of
each problem's canonical-solution loss (where the eval measured it), each with a bootstrap interval over
problems; for each pair of arms the paired interval of the difference (`intervals.py`), marked "larger than
its interval" when it excludes 0. Evaluations on other benchmarks or other problems are refused, naming which.
Each arm's run folder's diversity measures (a diversity step, or `diversity: true`) are set side by side.
The folder gets compare.json, compare.md and compare.png.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import CliPositionalArg

from textbooks.errors import UserError
from textbooks.evaluate.budgets import check_same_budget, training_budget
from textbooks.evaluate.intervals import mean_interval, paired_difference, resample_indices, seed_spread
from textbooks.evaluate.passk import pass_at_k
from textbooks.pipeline.refs import EvaluationInput
from textbooks.pipeline.runner import check_finished
from textbooks.pipeline.step import Context, Step, StepConfig
from textbooks.pipeline.work import Work
from textbooks.store import data
from textbooks.store.atomic import read_json, write_bytes, write_text

SUMMARY, SAMPLES = "summary.json", "samples.jsonl"
JSON, MARKDOWN, PNG = "compare.json", "compare.md", "compare.png"
METRICS = ("pass@1", "pass@10", "solution_loss")
MANY_SAMPLES = 10  # pass@10 where every problem has this many samples


class EvalArm(BaseModel):
    """One evaluation to compare and the arm it belongs to; on the command line `PATH` or `NAME=PATH`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: EvaluationInput = Field(description="An eval step's folder, a run folder with eval steps, or @eval in "
                                              "a recipe.")
    label: str | None = Field(None, min_length=1, description="The arm's name (default: the path as written); "
                                                              "evaluations with the same name are its seeds.")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            label, sep, path = value.partition("=")
            return {"path": path.strip(), "label": label.strip()} if sep else {"path": value.strip()}
        return value


class CompareConfig(StepConfig):
    evals: CliPositionalArg[list[EvalArm]] = Field(
        min_length=1, description="evaluations: eval step folders or run folders, each PATH or NAME=PATH; a "
                                  "NAME given to several evaluations makes them seeds of one arm")
    resamples: int = Field(2000, ge=100, description="bootstrap resamples of each benchmark's problems")
    confidence: float = Field(0.95, gt=0, lt=1, description="coverage of every interval")
    seed: int = Field(0, ge=0, description="seed of the resamples")
    same_budget: bool = Field(False, description="refuse arms whose models were not trained alike: the same "
                                                 "steps and tokens seen in each training run, and packed training "
                                                 "tokens within 1%")

    @field_validator("evals", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        """`A,B` is two items in a recipe too, as on the command line (where every list setting splits commas)."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value
        items: list[Any] = []
        for item in value:
            items += [part.strip() for part in item.split(",") if part.strip()] if isinstance(item, str) else [item]
        return items


@dataclass(frozen=True)
class Evaluation:
    """One eval folder: its arm, how the user named it, and per benchmark what `compare` reads."""

    label: str
    folder: Path
    shown: str
    benchmarks: dict[str, BenchmarkScores]
    perturbed: dict[tuple[str, str], BenchmarkScores]  # (benchmark, perturbation) -> its scores


@dataclass(frozen=True)
class BenchmarkScores:
    counts: dict[str, tuple[int, int]]  # task_id -> (samples, passed)
    losses: dict[str, float] | None  # task_id -> the canonical solution's mean loss per token
    token_loss: float | None  # the summary's solution loss: the mean over every solution token


class CompareStep(Step):
    name = "compare"
    Config = CompareConfig
    makes = "evaluation"
    outputs = (JSON, MARKDOWN, PNG)
    cli_input = None
    config: CompareConfig

    def run(self, ctx: Context) -> dict:
        from textbooks.report import plots
        from textbooks.report.comparison import chart_panels, markdown, said

        written = ctx.settings  # the paths as written name the arms: `@eval-a` is `eval-a`, not RUN/eval-a
        assert isinstance(written, CompareConfig)
        evaluations = [read_evaluation(label, folder, shown)
                       for label, folder, shown in find_evaluations(written.evals, self.config.evals)]
        check_matching(evaluations)
        budgets = {evaluation.label: [] for evaluation in evaluations}
        for evaluation in evaluations:
            model = read_json(evaluation.folder / SUMMARY).get("model")
            budgets[evaluation.label].append(training_budget(model) if model else None)
        if self.config.same_budget:
            check_same_budget(budgets)
        result = compare(evaluations, self.config)
        result["budgets"] = budgets
        result["diversity"] = arm_diversity(evaluations)
        data.write_json(result, ctx.out / JSON)
        write_text(markdown(result), ctx.out / MARKDOWN)
        write_bytes(plots.interval_bars("Evaluations compared", list(result["benchmarks"]), list(result["arms"]),
                                        chart_panels(result)), ctx.out / PNG)
        for line in said(result):
            ctx.say(f"compare: {line}")
        ctx.say(f"compare: {ctx.out / MARKDOWN}, {ctx.out / PNG}")
        larger = [f"{bench} {row['metric']} {row['second']} - {row['first']}"
                  for bench, found in result["benchmarks"].items() for row in found["differences"]
                  if row["excludes_zero"]]
        return {"arms": list(result["arms"]), "benchmarks": list(result["benchmarks"]),
                "evaluations": len(evaluations), "larger_than_interval": larger}


def find_evaluations(written: list[EvalArm], resolved: list[EvalArm]) -> list[tuple[str, Path, str]]:
    """(label, folder, as written) of every evaluation the items name; a run folder stands for its eval steps."""
    found: list[tuple[str, Path, str]] = []
    for as_written, item in zip(written, resolved):
        shown = str(as_written.path).rstrip("/")
        label = as_written.label or shown.removeprefix("@")
        folder = Path(str(item.path))
        if not folder.is_dir():
            what = "is a file" if folder.exists() else "does not exist"
            raise UserError(f"compare: {shown} {what}; give an eval step's folder (with {SUMMARY}) or a run folder "
                            "with eval steps")
        if (folder / SUMMARY).is_file():
            check_finished(folder, "compare")
            found.append((label, folder, shown))
            continue
        steps = eval_steps(folder)
        if not steps:
            raise UserError(f"compare: {shown} holds no {SUMMARY} and no eval step; give an eval step's folder "
                            "(`textbooks eval ... --out DIR`) or a run folder with eval steps")
        found += [(label if len(steps) == 1 else f"{label}/{step.name}", step, f"{shown}/{step.name}")
                  for step in steps]
    times = Counter(folder.resolve() for _, folder, _ in found)
    twice = next((shown for _, folder, shown in found if times[folder.resolve()] > 1), None)
    if twice is not None:
        raise UserError(f"compare: {twice} is given twice; give each evaluation once (seeds are different "
                        "evaluations under one NAME=)")
    return found


def eval_steps(run: Path) -> list[Path]:
    """The eval steps of a run folder in the order they finished (an unfinished one is refused)."""
    steps = []
    for folder in sorted(path for path in run.iterdir() if path.is_dir()):
        marker = data.read_marker(folder)
        if marker is None:
            started = ((Work(folder, "eval").stamp() or {}).get("parts") or {}).get("step")
            if not (folder / SUMMARY).is_file() and started != "eval":
                continue  # not an evaluation (another step still running is not refused)
            check_finished(folder, "compare")  # an eval folder made by hand passes; an unfinished eval step not
        elif marker.get("stage") != "eval":
            continue
        steps.append((float((marker or {}).get("finished") or 0), folder))
    return [folder for _, folder in sorted(steps)]


def read_evaluation(label: str, folder: Path, shown: str) -> Evaluation:
    """Per benchmark of an eval folder: each problem's sample and pass counts (samples.jsonl) and losses."""
    try:
        benchmarks = read_json(folder / SUMMARY)["benchmarks"]
        counts: dict[tuple[str, str | None], dict[str, tuple[int, int]]] = {
            (name, kind): {} for name, scores in benchmarks.items() for kind in [None, *scores.get("perturbed", {})]}
        with open(folder / SAMPLES, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                key = (row["bench"], row.get("perturb") or None)
                if key in counts:
                    samples, passed = counts[key].get(row["task_id"], (0, 0))
                    counts[key][row["task_id"]] = (samples + 1, passed + bool(row["passed"]))
    except FileNotFoundError as error:
        raise UserError(f"compare: {shown} has no {Path(str(error.filename)).name}; give the folder "
                        "`textbooks eval` wrote") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"compare: {shown}: {SUMMARY} or {SAMPLES} is not what `textbooks eval` writes "
                        f"({type(error).__name__}: {error}); evaluate again") from None
    empty = [name if kind is None else f"{name} ({kind})" for (name, kind), found in counts.items() if not found]
    if empty:
        raise UserError(f"compare: {shown}: {SAMPLES} has no sample of {', '.join(empty)}; evaluate again")

    def scores_of(name: str, kind: str | None, scores: dict) -> BenchmarkScores:
        return BenchmarkScores(counts[name, kind], scores.get("solution_loss_per_problem"), scores.get("solution_loss"))

    return Evaluation(label, folder, shown,
                      {name: scores_of(name, None, scores) for name, scores in benchmarks.items()},
                      {(name, kind): scores_of(name, kind, found) for name, scores in benchmarks.items()
                       for kind, found in scores.get("perturbed", {}).items()})


def check_matching(evaluations: list[Evaluation]) -> None:
    """Refuse evaluations on other benchmarks, or on other problems of a benchmark, than the first one's."""
    first = evaluations[0]
    for other in evaluations[1:]:
        if set(other.benchmarks) != set(first.benchmarks):
            raise UserError(f"compare: the evaluations are on different benchmarks: {first.shown} on "
                            f"{', '.join(sorted(first.benchmarks))}, {other.shown} on "
                            f"{', '.join(sorted(other.benchmarks))}; compare evaluations of the same benchmarks")
        for name, scores in first.benchmarks.items():
            mine, theirs = set(scores.counts), set(other.benchmarks[name].counts)
            if mine != theirs:
                missing = [f"{len(tasks)} only in {where} ({_some(tasks)})"
                           for tasks, where in ((mine - theirs, first.shown), (theirs - mine, other.shown)) if tasks]
                raise UserError(f"compare: {name}: {first.shown} and {other.shown} are on different problems "
                                f"({len(mine)} and {len(theirs)}; {', '.join(missing)}); evaluate every arm on "
                                "the same problems (the same --limit, samples for the same tasks)")


def _some(tasks: set[str]) -> str:
    shown = sorted(tasks)
    return ", ".join(shown[:3]) + (" ..." if len(shown) > 3 else "")


def per_problem(seeds: list[BenchmarkScores], tasks: list[str]) -> dict[str, np.ndarray]:
    """Each measure as (seeds, problems): pass@1, pass@10 where every problem has 10 samples, solution loss
    where every seed measured it for every problem."""
    counts = np.array([[seed.counts[task] for task in tasks] for seed in seeds])
    samples, passed = counts[..., 0], counts[..., 1]
    found = {"pass@1": passed / samples}
    if samples.min() >= MANY_SAMPLES:
        found["pass@10"] = np.array([[pass_at_k(int(n), int(c), MANY_SAMPLES) for n, c in zip(row_n, row_c)]
                                     for row_n, row_c in zip(samples, passed)])
    if all(seed.losses is not None and set(tasks) <= set(seed.losses) for seed in seeds):
        found["solution_loss"] = np.array([[seed.losses[task] for task in tasks] for seed in seeds])
    return found


def compare(evaluations: list[Evaluation], config: CompareConfig) -> dict:
    """Every arm's measures with intervals, and every pair's differences, per benchmark; then the same on each
    perturbation that every evaluation ran (`perturbed`), with each arm's change from its plain prompts."""
    arms: dict[str, list[Evaluation]] = {}
    for evaluation in evaluations:
        arms.setdefault(evaluation.label, []).append(evaluation)
    result: dict[str, Any] = {"confidence": config.confidence, "resamples": config.resamples, "seed": config.seed,
                              "arms": {label: [evaluation.shown for evaluation in seeds]
                                       for label, seeds in arms.items()}, "benchmarks": {}}
    common = set.intersection(*(set(evaluation.perturbed) for evaluation in evaluations))
    for bench in evaluations[0].benchmarks:
        tasks = sorted(evaluations[0].benchmarks[bench].counts)
        indices = resample_indices(len(tasks), config.resamples, config.seed)
        plain = {label: per_problem([seed.benchmarks[bench] for seed in seeds], tasks) for label, seeds in arms.items()}
        result["benchmarks"][bench] = _scored(plain, arms, lambda seed: seed.benchmarks[bench], indices, config)
        for kind in sorted(kind for name, kind in common if name == bench):
            values = {label: per_problem([seed.perturbed[bench, kind] for seed in seeds], tasks)
                      for label, seeds in arms.items()}
            found = _scored(values, arms, lambda seed: seed.perturbed[bench, kind], indices, config)
            found["change"] = [_change(label, metric, plain[label][metric], measures[metric], indices, config)
                               for label, measures in values.items() for metric in METRICS
                               if metric in measures and metric in plain[label]]
            result.setdefault("perturbed", {})[f"{bench} ({kind})"] = {"benchmark": bench, "kind": kind, **found}
    return result


def _change(arm: str, metric: str, plain: np.ndarray, perturbed: np.ndarray, indices: np.ndarray,
            config: CompareConfig) -> dict:
    """An arm's perturbed score minus its plain one, paired over the same problems."""
    interval = paired_difference(plain.mean(axis=0), perturbed.mean(axis=0), indices, config.confidence)
    return {"metric": metric, "arm": arm, **interval.as_dict(), "excludes_zero": interval.excludes_zero}


def _scored(values: dict[str, dict[str, np.ndarray]], arms: dict[str, list[Evaluation]],
            scores: Any, indices: np.ndarray, config: CompareConfig) -> dict:
    """One benchmark's (or perturbation's) measures per arm and the differences of every pair of arms."""
    found: dict[str, Any] = {"problems": indices.shape[1], "arms": {}, "differences": []}
    for label, measures in values.items():
        found["arms"][label] = {metric: _measure(array, indices, config.confidence)
                                for metric, array in measures.items()}
        token_losses = [scores(seed).token_loss for seed in arms[label]]
        if any(loss is not None for loss in token_losses):
            found["arms"][label]["solution_loss_over_tokens"] = token_losses
    for first, second in combinations(arms, 2):
        for metric in METRICS:
            if metric in values[first] and metric in values[second]:
                interval = paired_difference(values[first][metric].mean(axis=0),
                                             values[second][metric].mean(axis=0), indices, config.confidence)
                found["differences"].append({"metric": metric, "first": first, "second": second,
                                             **interval.as_dict(), "excludes_zero": interval.excludes_zero})
    return found


def _measure(array: np.ndarray, indices: np.ndarray, confidence: float) -> dict:
    found: dict[str, Any] = mean_interval(array.mean(axis=0), indices, confidence).as_dict()
    if len(array) > 1:
        per_seed = array.mean(axis=1).tolist()
        found["over_seeds"] = {**seed_spread(per_seed), "values": per_seed}
    return found


def arm_diversity(evaluations: list[Evaluation]) -> list[dict]:
    """The diversity measures of the datasets in the run folder of each evaluation (the folder that holds it),
    named by the arm (and the run, when an arm's seeds ran apart; by the run alone when arms share it)."""
    from textbooks.report.diversity import measured
    from textbooks.report.stages import find_stages

    runs: dict[Path, list[str]] = {}
    for evaluation in evaluations:
        labels = runs.setdefault(evaluation.folder.resolve().parent, [])
        labels += [evaluation.label] if evaluation.label not in labels else []
    runs_of = Counter(label for labels in runs.values() for label in labels)
    found = []
    for run, labels in runs.items():
        try:
            stages = find_stages(run)
        except UserError:  # not a run folder: an eval folder made alone
            continue
        name = run.name if len(labels) > 1 else labels[0] if runs_of[labels[0]] == 1 else f"{labels[0]} ({run.name})"
        found += [{"name": f"{name}: {stage.name}", "arms": labels, "run": run.name, "dataset": stage.name,
                   "measures": _headline(measures)} for stage in stages if (measures := measured(stage))]
    return found


def _headline(measures: dict) -> dict:
    """What the diversity table shows: the measures without the example texts and the balance details."""
    families = {key: value for key, value in measures["families"].items() if key != "examples"}
    libraries = measures.get("balance", {}).get("libraries", {})
    kept = {"rows": measures["rows"], "families": families, "redundancy": measures["redundancy"],
            "balance": {"libraries": {"distinct": libraries.get("distinct")}}}
    return {**kept, "spread": measures["spread"]} if "spread" in measures else kept
