"""Scores on the problems a training set resembles and on the rest: the paper's table 3.

    textbooks eval runs/x/finetune --bench humaneval --decontamination runs/x/decontaminate --out runs/x/eval

A decontamination result (`textbooks decontaminate`, its `decontamination.json`) names, for each tau, the
problems that have a row with an AST match rate of at least tau in the training data ("similar"). For each
benchmark it covers (HumanEval+ and MBPP+ use the task ids of HumanEval and MBPP), the evaluation reports pass@1
and the canonical solutions' loss (the mean of the problems' own means) on the similar problems, on the others,
and on all of them, at each tau.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from textbooks.errors import UserError
from textbooks.evaluate.passk import mean_pass_at_k

SUMMARY = "decontamination.json"
SUBSETS = ("similar", "non_similar", "total")


def read_similar(path: str | Path) -> dict[str, dict[str, set[str]]]:
    """`{bench: {tau: similar task ids}}` from a decontaminate output folder (or its decontamination.json)."""
    path = Path(path)
    file = path / SUMMARY if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"eval: {path} holds no {SUMMARY}; give the output folder of `textbooks decontaminate`")
    found = json.loads(file.read_text())
    try:
        return {bench: {tau: set(counts["task_ids"]) for tau, counts in summary["similar"].items()}
                for bench, summary in found["benchmarks"].items()}
    except (KeyError, TypeError, AttributeError) as error:
        raise UserError(f"eval: {file} is not a decontamination summary (no benchmarks/similar/task_ids: "
                        f"{error})") from None


def similar_for(bench: str, similar: dict[str, dict[str, set[str]]]) -> dict[str, set[str]] | None:
    """The similar sets of `bench`, or of the benchmark its task ids come from (humaneval+ -> humaneval)."""
    return similar.get(bench) or similar.get(bench.rstrip("+"))


def split_scores(task_ids: Sequence[str], passed: dict[str, list[bool]], losses: dict[str, float] | None,
                 similar: dict[str, set[str]]) -> dict[str, dict[str, dict[str, Any]]]:
    """`{tau: {subset: {"problems", "pass@1", "solution_loss"}}}` over `task_ids` (the benchmark's problems)."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for tau in sorted(similar, key=float, reverse=True):
        members = {"similar": [task for task in task_ids if task in similar[tau]],
                   "non_similar": [task for task in task_ids if task not in similar[tau]],
                   "total": list(task_ids)}
        result[tau] = {name: _subset(tasks, passed, losses) for name, tasks in members.items()}
    return result


def _subset(tasks: list[str], passed: dict[str, list[bool]], losses: dict[str, float] | None) -> dict[str, Any]:
    counts = [(len(passed[task]), sum(passed[task])) for task in tasks]
    scores: dict[str, Any] = {"problems": len(tasks),
                              "pass@1": mean_pass_at_k(counts, [1]).get(1) if counts else None}
    if losses is not None:
        values = [losses[task] for task in tasks if task in losses and math.isfinite(losses[task])]
        scores["solution_loss"] = sum(values) / len(values) if values else None
    return scores


def split_markdown(name: str, split: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Table 3's layout for one benchmark: a row per tau, similar / non-similar / total per column."""
    lines = ["", f"## {name}: similar and non-similar problems (decontamination)", "",
             "| tau | problems (similar / non-similar / total) | pass@1 | solution loss |", "|---|---|---|---|"]
    for tau in sorted(split, key=float, reverse=True):
        subsets = split[tau]
        problems = " / ".join(str(subsets[name]["problems"]) for name in SUBSETS)
        passes = " / ".join(_percent(subsets[name]["pass@1"]) for name in SUBSETS)
        losses = " / ".join(_loss(subsets[name].get("solution_loss")) for name in SUBSETS)
        lines.append(f"| {tau} | {problems} | {passes} | {losses} |")
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
