"""Benchmark problems as `Problem`s: HumanEval, MBPP, HumanEval+, MBPP+ and the package's fresh problems.

    from textbooks.benchmarks import load_benchmark
    problems = load_benchmark("mbpp+")          # humaneval | mbpp | humaneval+ | mbpp+ | fresh

| name | problems | file | `kind`: how a completion is judged |
|---|---|---|---|
| `humaneval` | 164 | `HumanEval.jsonl.gz` | `check`: `prompt + completion + test + check(entry_point)` runs cleanly |
| `mbpp` | 500 | `mbpp.jsonl` (test ids 11-510) | `asserts`: `prompt + completion + test` runs cleanly |
| `humaneval+` | 164 | `HumanEvalPlus-v0.1.10.jsonl.gz` | `evalplus`: outputs on `base_input`/`plus_input` match |
| `mbpp+` | 378 | `MbppPlus-v0.2.0.jsonl.gz` | `evalplus` |
| `fresh` | see file | `textbooks/benchmarks/fresh.jsonl`, in the package | `check` |

One file per benchmark (`humaneval`, `mbpp`, `evalplus`, `fresh`), the files they read (`files`: a folder,
else a download) and the `Problem` they all make (`problem`): evaluation and decontamination both load their
problems from here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

from textbooks.benchmarks.evalplus import load_humaneval_plus, load_mbpp_plus
from textbooks.benchmarks.fresh import load_fresh
from textbooks.benchmarks.humaneval import load_humaneval
from textbooks.benchmarks.mbpp import load_mbpp
from textbooks.benchmarks.problem import Problem
from textbooks.errors import UserError

Loader = Callable[[str | Path | None], list[Problem]]
BENCHMARKS: dict[str, Loader] = {
    "humaneval": load_humaneval,
    "mbpp": load_mbpp,
    "humaneval+": load_humaneval_plus,
    "mbpp+": load_mbpp_plus,
    "fresh": load_fresh,
}

# Problems in each benchmark's file, for plans made without reading them (`textbooks run --dry-run`).
PROBLEM_COUNTS: dict[str, int] = {"humaneval": 164, "mbpp": 500, "humaneval+": 164, "mbpp+": 378, "fresh": 61}


def benchmark_list(value: Any) -> Any:
    """A settings validator's view of benchmark names: comma-separated or listed, each known, at least one,
    without repeats (a ValueError says which name is unknown)."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = list(dict.fromkeys(name.strip() for item in value for name in str(item).split(",") if name.strip()))
        unknown = [name for name in value if name not in BENCHMARKS]
        if unknown:
            raise ValueError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
        if not value:
            raise ValueError("name at least one benchmark")
    return value


BenchmarkNames = Annotated[list[str], BeforeValidator(benchmark_list)]  # a setting naming benchmarks


def load_benchmark(name: str, benchmarks_dir: str | Path | None = None) -> list[Problem]:
    """The problems of benchmark `name` (a key of `BENCHMARKS`), in task order."""
    if name not in BENCHMARKS:
        raise UserError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name](benchmarks_dir)


__all__ = ["BENCHMARKS", "PROBLEM_COUNTS", "Loader", "Problem", "BenchmarkNames", "benchmark_list", "load_benchmark"]
