"""The package's own fresh problems (`fresh.jsonl`, HumanEval format plus a `description`), written for this
project so that no model has seen them."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from textbooks.benchmarks.files import parse_jsonl
from textbooks.benchmarks.problem import Problem, humaneval_style
from textbooks.errors import UserError

FRESH_KEYS = ("task_id", "prompt", "entry_point", "canonical_solution", "test", "description")


def load_fresh(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    """The package's own fresh problems (HumanEval format plus `description`); `benchmarks_dir` is unused."""
    resource = importlib.resources.files("textbooks.benchmarks").joinpath("fresh.jsonl")
    if not resource.is_file():
        raise UserError(f"the fresh problems file {resource} is missing from the installed package; "
                        "reinstall textbooks (pip install -e .) from a checkout that has it")
    problems = []
    for line_number, record in enumerate(parse_jsonl(resource.read_text(encoding="utf-8")), start=1):
        missing = [key for key in FRESH_KEYS if key not in record]
        if missing:
            raise UserError(f"{resource}, record {line_number}: missing keys {missing}; each record needs {FRESH_KEYS}")
        problems.append(humaneval_style(record, "check", description=record["description"]))
    return problems
