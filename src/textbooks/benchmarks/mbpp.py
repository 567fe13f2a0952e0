"""MBPP prompt (zero-shot, "the description and the first test"). MBPP has no function signature, so the model
writes the whole function after a docstring:

    '\"\"\"\\n' + text + '\\n' + test_list[0] + '\\n\"\"\"\\n'

This is the layout of MBPP+'s own prompts (134 of its 378 prompts equal ours byte for byte; the rest differ
because MBPP+ rewrote the text or the assert). `entry_point` is the function that the first test calls and the
reference `code` defines (found with `ast`). `canonical_solution` is MBPP's `code`, a whole program (its CRLF
line endings kept). `test` is `test_setup_code`, a newline, and the three `test_list` asserts;
`challenge_test_list` is ignored. Task ids are `Mbpp/<n>` as in MBPP+. Revision: task 341 reads "convert the
given set into ordered tuples" with `tuple(sorted(s))`, the later upstream revision (the earlier one says "into
tuples" with `tuple(s)`, whose tests depend on set order); see `shared/benchmarks/README.md`. Task 118's text
starts with a junk markdown-link fragment, kept as is. All 500 reference programs pass their own tests
(Python 3.11, four runs with random hash seeds, 2026-11).
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

from textbooks.benchmarks.files import records
from textbooks.benchmarks.problem import Problem
from textbooks.errors import UserError

MBPP_TEST_IDS = range(11, 511)


def mbpp_prompt(text: str, first_test: str) -> str:
    """The zero-shot MBPP prompt: a docstring with the task description and its first test."""
    return f'"""\n{text}\n{first_test}\n"""\n'


def load_mbpp(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    problems = []
    for record in records("mbpp", benchmarks_dir):
        if record["task_id"] not in MBPP_TEST_IDS:
            continue
        first_test = record["test_list"][0]
        problems.append(Problem(
            task_id=f"Mbpp/{record['task_id']}",
            prompt=mbpp_prompt(record["text"], first_test),
            entry_point=_mbpp_entry_point(record["code"], first_test, record["task_id"]),
            canonical_solution=record["code"],
            test=record["test_setup_code"] + "\n" + "\n".join(record["test_list"]),
            kind="asserts",
        ))
    return sorted(problems, key=lambda problem: int(problem.task_id.split("/")[1]))


def _mbpp_entry_point(code: str, first_test: str, task_id: int) -> str:
    """The function the first test calls that the reference code defines (some references define helpers, and
    some tests wrap the call, as in `set(f(x)) == ...`)."""
    with warnings.catch_warnings():  # regex tasks hold escapes like '\w' that Python warns about
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        defined = {node.name for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)}
        called = list(ast.walk(ast.parse(first_test)))
    for node in called:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
            return node.func.id
    raise UserError(f"MBPP task {task_id}: its first test calls none of the functions its code defines "
                    f"({sorted(defined)}); the mbpp.jsonl in use is not the MBPP this loader knows")
