"""The fresh problem set (benchmarks/fresh.jsonl): well formed, every reference passes its hidden tests and its
docstring examples, and two wrong bodies (`return None`, return the first argument) fail every problem."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from textbooks.sandbox import Limits, Sandbox

FRESH = Path(__file__).resolve().parents[1] / "src" / "textbooks" / "benchmarks" / "fresh.jsonl"
KEYS = {"task_id", "prompt", "entry_point", "canonical_solution", "test", "description"}
MIN_PROBLEMS = 50
MIN_ASSERTS = 6
TIMEOUT_S = 10

# Appended to prompt + reference: runs the function's own `>>>` examples; fails on any failure or when none is found.
DOCTEST_DRIVER = """
import doctest as _doctest
_runner = _doctest.DocTestRunner()
for _example in _doctest.DocTestFinder().find({name}, "{name}", globs=dict(globals())):
    _runner.run(_example)
assert _runner.tries and not _runner.failures, (_runner.tries, _runner.failures)
"""


def load_problems() -> list[dict]:
    return [json.loads(line) for line in FRESH.read_text().splitlines() if line.strip()]


PROBLEMS = load_problems()


def function_node(problem: dict) -> ast.FunctionDef:
    return next(node for node in ast.parse(problem["prompt"]).body
                if isinstance(node, ast.FunctionDef) and node.name == problem["entry_point"])


def checked_program(problem: dict, body: str) -> str:
    """The program an evaluation runs for a completion: prompt, body, hidden tests, and the call of `check`."""
    return problem["prompt"] + body + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def programs_for(problem: dict) -> dict[str, str]:
    first_parameter = function_node(problem).args.args[0].arg
    return {
        "reference": checked_program(problem, problem["canonical_solution"]),
        "return None": checked_program(problem, "    return None\n"),
        "return first argument": checked_program(problem, f"    return {first_parameter}\n"),
        "doctest": problem["prompt"] + problem["canonical_solution"]
        + DOCTEST_DRIVER.format(name=problem["entry_point"]),
    }


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, str], bool]:
    """Whether each program of each problem passes in the sandbox; every program runs once, two at a time."""
    programs = {(problem["task_id"], kind): program
                for problem in PROBLEMS for kind, program in programs_for(problem).items()}
    with Sandbox(workers=2, limits=Limits(timeout_s=TIMEOUT_S)) as sandbox:
        results = sandbox.run_many(programs.values())
    return {key: outcome.status == "passed" for key, outcome in zip(programs, results)}


def test_file_is_well_formed():
    assert len(PROBLEMS) >= MIN_PROBLEMS, f"{FRESH} holds {len(PROBLEMS)} problems, fewer than {MIN_PROBLEMS}"
    assert [problem.get("task_id") for problem in PROBLEMS] == [f"Fresh/{index}" for index in range(len(PROBLEMS))]
    entry_points = [problem["entry_point"] for problem in PROBLEMS]
    assert len(set(entry_points)) == len(entry_points), "entry points repeat"
    for problem in PROBLEMS:
        task_id = problem["task_id"]
        assert set(problem) == KEYS, f"{task_id} keys {sorted(problem)}"
        assert all(isinstance(problem[key], str) and problem[key].strip() for key in KEYS), task_id
        assert problem["prompt"].endswith("\n"), f"{task_id} prompt lacks a final newline"
        assert ">>>" in (ast.get_docstring(function_node(problem)) or ""), f"{task_id} docstring has no >>> example"
        assert problem["canonical_solution"].startswith("    "), f"{task_id} solution is not an indented body"
        assert problem["test"].startswith("def check(candidate):"), task_id
        asserts = [line for line in problem["test"].splitlines() if line.strip().startswith("assert ")]
        assert len(asserts) >= MIN_ASSERTS, f"{task_id} has {len(asserts)} asserts, fewer than {MIN_ASSERTS}"


@pytest.mark.parametrize("problem", PROBLEMS, ids=[problem["task_id"] for problem in PROBLEMS])
def test_reference_passes_and_wrong_bodies_fail(problem: dict, outcomes: dict[tuple[str, str], bool]):
    task_id = problem["task_id"]
    assert outcomes[task_id, "reference"], f"{task_id}: the canonical solution fails its tests"
    assert outcomes[task_id, "doctest"], f"{task_id}: the docstring examples disagree with the canonical solution"
    assert not outcomes[task_id, "return None"], f"{task_id}: `return None` passes the tests"
    assert not outcomes[task_id, "return first argument"], f"{task_id}: returning the first argument passes the tests"
