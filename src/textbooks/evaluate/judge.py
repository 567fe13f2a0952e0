"""Judging completions: every sample's program runs in the sandbox, and a verdict comes back.

    verdicts = judge("humaneval", problems, [("HumanEval/0", completion), ...], sandbox)

A sample is a completion, judged after its prompt, or a `Solution` (EvalPlus's `solution`), judged alone
(`Problem.program`). `check` and `asserts` problems (HumanEval, MBPP, fresh) pass when their program runs to its
end (the sandbox's secret-bearing verdict). `evalplus` problems (HumanEval+, MBPP+) run the candidate's
definitions, call `entry_point` on every base and plus input in the sandbox, and compare the outputs here, in
the harness, with the reference solution's outputs on the same inputs (`compare.outputs_match`); the base
verdict looks at the base inputs only, the plus verdict at all of them, as EvalPlus reports them.

Reference outputs come from running the canonical solutions in the same sandbox, once: they are cached under
`textbooks.store.cache.cache_dir("reference")`, one record per task keyed by the task's content (a run over
other tasks adds records; a changed task is run again), with the seconds each call took. Time limits are
EvalPlus's (`evalplus_time_limits`), from those call times alone, not from the time the sandbox spends encoding
and sending outputs (Mbpp/255's reference computes its outputs in 3-5 s; its whole run, recorded before, took
40-60 s): each call may take max(1 s, 4 x the reference's), and the base inputs and the plus inputs,
as two runs, min(60 s, the sum of their calls' limits) + 1 s each, unless the reference itself needs more on
this machine (Mbpp/123 and Mbpp/599 take 45-50 s on 2 loaded cores): then twice the reference's time. The
sandbox stops a call at its limit (`Program.time_limits`); the whole program is killed after the runs' limits
plus `max(timeout_s, 2 x the reference's time outside its calls)`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from textbooks.benchmarks.problem import Problem, evalplus_time_limits
from textbooks.errors import UserError
from textbooks.evaluate.compare import MBPP_NOT_NONE_ENTRY_POINTS, evalplus_atols, expected_output, outputs_match
from textbooks.pipeline.records import Records
from textbooks.sandbox import Outcome, Program, Sandbox, values
from textbooks.sandbox.isolate import Limits
from textbooks.store.cache import cache_dir as store_cache_dir

# The canonical solutions are trusted; this only stops a broken environment from hanging. Mbpp/255 and Mbpp/599
# took 81 and 84 s on 2 shared cores (2026-11), so 120 s left too little room on a loaded machine.
REFERENCE_TIMEOUT_S = 600.0
# What a cached reference record holds and how it was measured; a record of another form is made again. 2: the
# seconds of each call alone, and the run's other seconds (1 was the whole run's time, encoding included).
REFERENCE_FORM = 2


@dataclass
class Verdict:
    """One sample's result. `base_passed` is set for EvalPlus problems (their base inputs only)."""

    status: str  # passed | failed | timeout
    reason: str
    seconds: float
    stderr: str = ""
    base_passed: bool | None = None


@dataclass
class Reference:
    """The canonical solution's outputs on base + plus inputs, as compared (`expected_output`), the seconds each
    call took, and the seconds of the rest of its run (starting, defining, copying inputs, sending outputs)."""

    outputs: list[Any]
    call_seconds: list[float]
    other_seconds: float

    @property
    def seconds(self) -> float:
        """The reference's compute time: its calls alone."""
        return sum(self.call_seconds)


@dataclass
class TimeLimits:
    """A candidate's limits on one task: each call's, (count, seconds) for the base run and the plus run, and the
    wall-clock limit of the whole program."""

    calls: list[float]
    runs: list[tuple[int, float]]
    program: float


def judge(benchmark: str, problems: Sequence[Problem], samples: Sequence[tuple[str, str]], sandbox: Sandbox,
          progress: bool | str = False, cache_dir: Path | None = None,
          originals: Sequence[Problem] | None = None) -> list[Verdict]:
    """The verdict of each `(task_id, sample)`, in order: a sample is a completion (a `str`) or a `Solution`.
    `originals` are the unperturbed problems of perturbed `problems` (`perturb.py`): EvalPlus reference outputs
    are those of their canonical solutions (the same values, and the cached records stay valid)."""
    by_id = {problem.task_id: problem for problem in problems}
    unknown = sorted({task_id for task_id, _ in samples} - by_id.keys())
    if unknown:
        raise UserError(f"{benchmark}: samples name tasks it does not have: {unknown[:5]}"
                        f"{' ...' if len(unknown) > 5 else ''}")
    wanted = [by_id[task_id] for task_id in dict.fromkeys(task_id for task_id, _ in samples)]
    if originals is not None:
        unperturbed = {problem.task_id: problem for problem in originals}
        wanted = [unperturbed[problem.task_id] for problem in wanted]
    references = reference_outputs(benchmark, [p for p in wanted if p.kind == "evalplus"], sandbox, cache_dir)
    limits = {task_id: time_limits(by_id[task_id], reference, sandbox.limits.timeout_s)
              for task_id, reference in references.items()}
    programs = []
    for task_id, sample in samples:
        problem = by_id[task_id]
        if problem.kind == "evalplus":
            programs.append(_call_program(benchmark, problem, problem.program(sample), limits[task_id]))
        else:
            programs.append(Program(problem.program(sample)))
    outcomes = sandbox.run_many(programs, progress=progress)
    verdicts = []
    for (task_id, _), outcome in zip(samples, outcomes):
        problem = by_id[task_id]
        if problem.kind == "evalplus":
            verdicts.append(_compare(benchmark, problem, outcome, references[task_id], limits[task_id]))
        else:
            verdicts.append(Verdict(outcome.status, outcome.reason, outcome.seconds, outcome.stderr[-1000:]))
    return verdicts


def time_limits(problem: Problem, reference: Reference, timeout_s: float) -> TimeLimits:
    """EvalPlus's limits from the reference's call times, the base and the plus inputs as two runs; a run whose
    reference calls alone take more than half its limit here may take twice the reference's time."""
    base = len(problem.base_input)
    calls, runs = [], []
    for seconds in (reference.call_seconds[:base], reference.call_seconds[base:]):
        if seconds:
            own, run = evalplus_time_limits(seconds)
            calls += own
            runs.append((len(seconds), max(run, 2 * sum(seconds))))
    program = sum(run for _, run in runs) + max(timeout_s, 2 * reference.other_seconds)
    return TimeLimits(calls, runs, program)


def _reports_presence(benchmark: str, problem: Problem) -> bool:
    """MBPP+'s tasks that return `re.Match` objects: only whether the output is None is compared."""
    return benchmark == "mbpp+" and problem.entry_point in MBPP_NOT_NONE_ENTRY_POINTS


def _call_program(benchmark: str, problem: Problem, code: str, limits: TimeLimits | None) -> Program:
    """The program that calls `entry_point` on every input: under `limits`, or unlimited but for
    `REFERENCE_TIMEOUT_S` (the reference)."""
    not_none = _reports_presence(benchmark, problem)
    return Program(code, entry_point=problem.entry_point, inputs=list(problem.base_input) + list(problem.plus_input),
                   timeout_s=REFERENCE_TIMEOUT_S if limits is None else limits.program,
                   report="is-not-none" if not_none else "value", digest_large=problem.atol == 0,
                   time_limits=None if limits is None else limits.calls, runs=None if limits is None else limits.runs)


def _compare(benchmark: str, problem: Problem, outcome: Outcome, reference: Reference, limits: TimeLimits) -> Verdict:
    inputs = list(problem.base_input) + list(problem.plus_input)
    base = len(problem.base_input)
    # as evalplus: the base inputs are one run and the plus inputs another, and within a run a float reference
    # output makes every later input's tolerance 1e-6 (compare.py, "Order")
    atols = (evalplus_atols(problem.atol, reference.outputs[:base])
             + evalplus_atols(problem.atol, reference.outputs[base:]))
    wrong = None
    for index, (arguments, (kind, got), expected, atol) in enumerate(
            zip(inputs, outcome.outputs, reference.outputs, atols)):
        if kind != "ok" or not outputs_match(benchmark, problem.entry_point, arguments, got, expected, atol):
            wrong = index
            break
    answered = len(outcome.outputs)
    base_passed = (wrong is None or wrong >= base) and answered >= base
    if wrong is not None:
        kind, shown = outcome.outputs[wrong]
        status = "timeout" if kind == "timeout" else "failed"
        where = f"base input {wrong}" if wrong < base else f"plus input {wrong - base}"
        if kind == "timeout":
            run = 0 if wrong < base else sum(outcome.call_seconds[:base])
            reason = (f"{where}: stopped after {outcome.call_seconds[wrong]:.2f} s, its limit "
                      f"{limits.calls[wrong]:.2f} s (run: {sum(outcome.call_seconds[:wrong + 1]) - run:.2f} s of "
                      f"{limits.runs[0 if wrong < base else -1][1]:.2f} s)")
        else:
            reason = f"{where}: " + (f"raised {shown}" if kind == "error" else f"returned {shown!r:.200}")
    elif outcome.status != "passed":
        status, reason = outcome.status, outcome.reason
    elif answered < len(inputs):
        status, reason = "failed", f"answered {answered} of {len(inputs)} inputs"
    else:
        status, reason = "passed", ""
    return Verdict(status, reason, outcome.seconds, outcome.stderr[-1000:], base_passed)


def reference_outputs(benchmark: str, problems: Sequence[Problem], sandbox: Sandbox,
                      cache_dir: Path | None = None) -> dict[str, Reference]:
    """The canonical solutions' outputs for `problems` (EvalPlus kind), from the cache or a sandboxed run."""
    if not problems:
        return {}
    records = Records((cache_dir or store_cache_dir("reference")) / benchmark.replace("+", "plus"))
    keys = {problem.task_id: _content_key(problem) for problem in problems}
    cached = {problem.task_id: records.get(problem.task_id, keys[problem.task_id]) for problem in problems}
    missing = [problem for problem in problems if cached[problem.task_id] is None]
    references = _run_references(benchmark, missing, sandbox) if missing else {}
    for task_id, reference in references.items():
        records.put(task_id, {"outputs": values.encode(reference.outputs), "call_seconds": reference.call_seconds,
                              "other_seconds": reference.other_seconds}, keys[task_id])
    for problem in problems:
        if problem.task_id not in references:
            row = cached[problem.task_id]
            references[problem.task_id] = Reference(values.decode(row["outputs"]), row["call_seconds"],
                                                    row["other_seconds"])
    return {problem.task_id: references[problem.task_id] for problem in problems}


def _run_references(benchmark: str, problems: Sequence[Problem], sandbox: Sandbox) -> dict[str, Reference]:
    programs = [_call_program(benchmark, problem, problem.prompt + problem.canonical_solution, None)
                for problem in problems]
    reference_box = Sandbox(workers=sandbox.workers, limits=Limits(**{**vars(sandbox.limits),
                                                                      "timeout_s": REFERENCE_TIMEOUT_S}))
    with reference_box:
        outcomes = reference_box.run_many(programs, progress=f"{benchmark} reference outputs")
    references, broken = {}, []
    for problem, outcome in zip(problems, outcomes):
        if outcome.status != "passed" or any(kind != "ok" for kind, _ in outcome.outputs):
            broken.append(f"{problem.task_id} ({outcome.reason or 'an input raised'})")
            continue
        outputs = [value if _reports_presence(benchmark, problem) else
                   expected_output(benchmark, problem.entry_point, value) for _, value in outcome.outputs]
        calls = sum(outcome.call_seconds)
        references[problem.task_id] = Reference(outputs, outcome.call_seconds, max(0.0, outcome.seconds - calls))
    if broken:
        raise UserError(f"{benchmark}: the reference solutions of {len(broken)} tasks did not run in the sandbox: "
                        f"{', '.join(broken[:5])}; raise the sandbox's memory limit, or report it as a bug")
    return references


def _content_key(problem: Problem) -> str:
    """What a task's reference record depends on: its code, its inputs and the record's form."""
    digest = hashlib.sha256(json.dumps([REFERENCE_FORM, problem.task_id, problem.prompt, problem.canonical_solution,
                                        values.encode(list(problem.base_input) + list(problem.plus_input))]).encode())
    return digest.hexdigest()[:16]

