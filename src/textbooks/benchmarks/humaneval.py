"""HumanEval (164 problems, `HumanEval.jsonl.gz`): `prompt + completion + test + check(entry_point)` must run
to its end."""

from __future__ import annotations

from pathlib import Path

from textbooks.benchmarks.files import records
from textbooks.benchmarks.problem import Problem, humaneval_style


def load_humaneval(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    return [humaneval_style(record, "check") for record in records("humaneval", benchmarks_dir)]
