"""The judge against EvalPlus 0.3.1's own code: samples read as EvalPlus reads them (a `solution` runs alone, a
`completion` after its prompt), time limits from the reference's compute time alone (each call timed by itself,
not copying its input nor sending its output), EvalPlus's per call and per run, and large outputs compared by a
digest that is equal exactly when the outputs are.

One 2-worker sandbox and one reference cache serve the module.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from evalplus.eval import untrusted_check

from textbooks.benchmarks import Problem, load_benchmark
from textbooks.benchmarks.problem import Solution
from textbooks.cli import main
from textbooks.evaluate.judge import judge, reference_outputs
from textbooks.sandbox import Program, Sandbox, values


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2) as box:
        yield box


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reference")


@functools.cache
def problems_of(benchmark: str) -> dict[str, Problem]:
    return {problem.task_id: problem for problem in load_benchmark(benchmark)}


def evalplus_status(dataset: str, problem: Problem, code: str, expected: Sequence[Any],
                    ref_time: Sequence[float]) -> str:
    """EvalPlus 0.3.1's plus verdict on `code` ("pass", "fail" or "timeout"), as its `check_correctness` makes it:
    the base inputs in one run, then the plus inputs in another, each against its expected outputs and times."""
    base = len(problem.base_input)
    for inputs, outputs, times in ((problem.base_input, expected[:base], ref_time[:base]),
                                   (problem.plus_input, expected[base:], ref_time[base:])):
        if not inputs:
            continue
        status, _ = untrusted_check(dataset, code, list(inputs), problem.entry_point, expected=list(outputs),
                                    atol=problem.atol, ref_time=list(times), fast_check=True)
        if status != "pass":
            return status
    return "pass"


# ---- a sample is a completion (after the prompt) or a whole solution (alone) ----


# HumanEval/7's function, to follow the prompt, or to stand without the prompt's `from typing import List`
FILTER_BODY = "    return [x for x in strings if substring in x]\n"


def test_a_solution_runs_alone_and_a_completion_after_its_prompt(sandbox: Sandbox, cache_dir: Path) -> None:
    """HumanEval/7's prompt imports `List` for its signature: a solution that leaves the import out fails, as in
    EvalPlus; the same function after the prompt passes, whether as a completion or as a whole solution."""
    verdicts = {}
    for benchmark in ("humaneval", "humaneval+"):
        problem = problems_of(benchmark)["HumanEval/7"]
        definition = problem.prompt[problem.prompt.index("def "):] + FILTER_BODY
        assert "from typing import List" in problem.prompt and "import" not in definition
        samples = [Solution(definition), FILTER_BODY, Solution(problem.prompt + FILTER_BODY)]
        verdicts[benchmark] = judge(benchmark, [problem], [(problem.task_id, sample) for sample in samples],
                                    sandbox, cache_dir=cache_dir)
        assert [verdict.status for verdict in verdicts[benchmark]] == ["failed", "passed", "passed"], verdicts
        assert "NameError: name 'List' is not defined" in verdicts[benchmark][0].reason
    problem = problems_of("humaneval+")["HumanEval/7"]
    reference = reference_outputs("humaneval+", [problem], sandbox, cache_dir)[problem.task_id]
    definition = problem.prompt[problem.prompt.index("def "):] + FILTER_BODY
    # evalplus.evaluate: `sample["solution"]` as it is, else `prompt + sample["completion"]`
    assert evalplus_status("humaneval", problem, definition, reference.outputs, reference.call_seconds) == "fail"
    assert evalplus_status("humaneval", problem, problem.prompt + FILTER_BODY, reference.outputs,
                           reference.call_seconds) == "pass"


def test_samples_file_solutions_run_alone(tmp_path: Path) -> None:
    """`textbooks eval --samples`: a `solution` row is the whole program, a `completion` row follows the prompt."""
    problem = problems_of("humaneval+")["HumanEval/7"]
    definition = problem.prompt[problem.prompt.index("def "):] + FILTER_BODY
    rows = [{"task_id": problem.task_id, "solution": definition},
            {"task_id": problem.task_id, "completion": FILTER_BODY},
            {"task_id": problem.task_id, "solution": problem.prompt + FILTER_BODY}]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "eval"
    assert main(["eval", "--samples", str(samples), "--bench", "humaneval,humaneval+", "--limit", "8",
                 "--out", str(out)]) == 0
    written = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(row["bench"], row["passed"]) for row in written] == [
        ("humaneval", False), ("humaneval", True), ("humaneval", True),
        ("humaneval+", False), ("humaneval+", True), ("humaneval+", True)]


# ---- time limits: from the reference's calls alone, EvalPlus's per call and per run ----


SLEEPS = "import time\n\ndef f(x):\n    time.sleep(x)\n    return x\n"


def sleepy(task_id: str, seconds: float) -> Problem:
    """A task whose reference sleeps `seconds` on its one base input and on its one plus input."""
    return Problem(task_id, "", "f", SLEEPS, "", "evalplus", base_input=[[seconds]], plus_input=[[seconds]])


def test_reference_time_is_its_calls_not_the_encoding_of_its_outputs(sandbox: Sandbox, tmp_path: Path) -> None:
    big_output = ("import time\n\ndef f(x):\n    time.sleep(x)\n"
                  "    return [0.5] * 1_000_000  # floats only: sent whole, as JSON, not as a digest\n")
    problem = Problem("Test/big-output", "", "f", big_output, "", "evalplus", base_input=[[0.2]], plus_input=[[0.2]])
    reference = reference_outputs("mbpp+", [problem], sandbox, tmp_path)[problem.task_id]
    assert reference.outputs == [[0.5] * 1_000_000] * 2
    assert all(0.2 <= seconds < 0.4 for seconds in reference.call_seconds), reference.call_seconds
    assert reference.other_seconds > 0.2  # encoding and sending 2 x 1 million floats: not counted as compute
    assert reference.seconds == sum(reference.call_seconds)


def test_calls_over_evalplus_limits_time_out(sandbox: Sandbox, cache_dir: Path) -> None:
    """The reference sleeps 0.4 s per call, so each call may take max(1 s, 4 x 0.4 s) = 1.6 s."""
    problem = sleepy("Test/sleeps", 0.4)
    slower = {factor: f"import time\n\ndef f(x):\n    time.sleep({factor} * x)\n    return x\n" for factor in (2, 5)}
    slow_on_plus = ("import time\ncalls = []\n\ndef f(x):\n    calls.append(x)\n"
                    "    time.sleep(x if len(calls) == 1 else 5 * x)\n    return x\n")
    endless = "def f(x):\n    while True:\n        pass\n"
    catches_the_alarm = "def f(x):\n    try:\n        while True:\n            pass\n    except BaseException:\n" \
                        "        return x\n"
    samples = [slower[2], slower[5], slow_on_plus, endless, catches_the_alarm]
    started = time.perf_counter()
    verdicts = judge("mbpp+", [problem], [(problem.task_id, sample) for sample in samples], sandbox,
                     cache_dir=cache_dir)
    took = time.perf_counter() - started
    reference = reference_outputs("mbpp+", [problem], sandbox, cache_dir)[problem.task_id]
    assert all(0.4 <= seconds < 0.8 for seconds in reference.call_seconds), reference.call_seconds
    assert [verdict.status for verdict in verdicts] == ["passed"] + ["timeout"] * 4, verdicts
    assert [verdict.base_passed for verdict in verdicts] == [True, False, True, False, False]
    assert verdicts[1].reason.startswith("base input 0: stopped after 1.6")
    assert verdicts[2].reason.startswith("plus input 0: stopped after 1.6")
    # the endless calls were stopped at their limit, not when the whole program's time ran out (13 s here)
    assert all(verdict.seconds < 4 for verdict in verdicts), verdicts
    assert took < 15


def test_a_run_limit_stops_the_call_that_would_exceed_it(sandbox: Sandbox) -> None:
    """Each call sleeps 0.5 s and may take 1 s, but the first run of two calls may take 0.8 s in all: its second
    call is stopped when the run's 0.8 s are up, and no later input is called."""
    program = Program("import time\n\ndef f(x):\n    time.sleep(0.5)\n    return x\n", entry_point="f",
                      inputs=[[0], [1], [2], [3]], time_limits=[1.0] * 4, runs=[(2, 0.8), (2, 5.0)])
    outcome = sandbox.run(program)
    assert outcome.status == "passed" and outcome.outputs == [("ok", 0), ("timeout", "")], outcome
    first, second = outcome.call_seconds
    assert 0.5 <= first < 0.7 and 0.8 <= first + second < 0.9, outcome.call_seconds


# ---- large outputs: one digest for equal values, another for different ones ----


def test_large_outputs_digest_alike_exactly_when_equal() -> None:
    combinations = list(itertools.combinations_with_replacement(["Dog", "Cat", "Bird"], 40))  # 3 shared strings
    copied = [tuple("".join(list(word)) for word in combination) for combination in combinations]
    assert copied == combinations and copied[0][0] is not combinations[0][0]
    digest = values.digest
    assert digest(copied) == digest(combinations)
    numbers = list(range(70_000))
    # `==` across bool, int and float, as EvalPlus compares (also nested)
    assert digest([True] + numbers) == digest([1] + numbers) == digest([1.0] + numbers)
    assert digest([(0.5, 1)] * 3) == digest([(0.5, 1.0)] * 3) and digest([-0.0, 1]) == digest([0, 1])
    assert digest([(1,)]) != digest([[1]]) and digest(["ab"]) != digest([("a", "b")]) != digest([["a", "b"]])
    assert digest(numbers) != digest(numbers[:-1] + [0]) and digest("x" * 100_000) != digest("x" * 99_999 + "y")
    # no digest: NaN equals nothing, floats alone are compared with a tolerance, dicts and sets have no order
    assert digest([float("nan")] + numbers) is None and digest([0.5] * 100_000) is None
    assert digest([{1: 2}] + numbers) is None and digest([{3}]) is None
    # what goes over the wire for an output this large, and what does not
    assert isinstance(values.loads(values.dumps(numbers, digest_large=True)), values.Digest)
    assert values.loads(values.dumps(numbers)) == numbers

    class Liar(int):
        def __eq__(self, other: object) -> bool:
            return True

    assert digest([Liar(5)] + numbers) == digest([5] + numbers)  # sent as its int part, as everywhere
    with pytest.raises(values.Unencodable):
        digest([object()] + numbers)
