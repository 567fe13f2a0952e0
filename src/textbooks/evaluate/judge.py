"""Judging completions: every sample's program runs in the sandbox, and a verdict comes back.

    verdicts = judge("humaneval", problems, [("HumanEval/0", completion), ...], sandbox)

`check` and `asserts` problems (HumanEval, MBPP, fresh) pass when their program runs to its end (the sandbox's
secret-bearing verdict). `evalplus` problems (HumanEval+, MBPP+) run the candidate's definitions, call
`entry_point` on every base and plus input in the sandbox, and compare the outputs here, in the harness, with
the reference solution's outputs on the same inputs (`compare.outputs_match`); the base verdict looks at the
base inputs only, the plus verdict at all of them, as EvalPlus reports them.

Reference outputs come from running the canonical solutions in the same sandbox, once: they are cached under
`textbooks.store.cache.cache_dir("reference")`, one record per task keyed by the task's content (a run over
other tasks adds records; a changed task is run again). A candidate's run over all inputs may
take `max(timeout_s, 4 x the reference's time)`, at most 61 s (EvalPlus's bound per task) unless the reference
itself is that slow here (Mbpp/255 and Mbpp/599 take minutes on 2 cores): then twice the reference's time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from textbooks.benchmarks.problem import EVALPLUS_TASK_TIMEOUT_S, EVALPLUS_TIME_LIMIT_FACTOR, Problem
from textbooks.errors import UserError
from textbooks.evaluate.compare import MBPP_NOT_NONE_ENTRY_POINTS, evalplus_atols, expected_output, outputs_match
from textbooks.pipeline.records import Records
from textbooks.sandbox import Outcome, Program, Sandbox, values
from textbooks.sandbox.isolate import Limits
from textbooks.store.cache import cache_dir as store_cache_dir

# The canonical solutions are trusted; this only stops a broken environment from hanging. Mbpp/255 and Mbpp/599
# took 81 and 84 s on 2 shared cores (2026-11), so 120 s left too little room on a loaded machine.
REFERENCE_TIMEOUT_S = 600.0


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
    """The canonical solution's outputs on base + plus inputs, as compared (`expected_output`), and its time."""

    outputs: list[Any]
    seconds: float


def judge(benchmark: str, problems: Sequence[Problem], samples: Sequence[tuple[str, str]], sandbox: Sandbox,
          progress: bool | str = False, cache_dir: Path | None = None) -> list[Verdict]:
    """The verdict of each `(task_id, completion)` sample, in order."""
    by_id = {problem.task_id: problem for problem in problems}
    unknown = sorted({task_id for task_id, _ in samples} - by_id.keys())
    if unknown:
        raise UserError(f"{benchmark}: samples name tasks it does not have: {unknown[:5]}"
                        f"{' ...' if len(unknown) > 5 else ''}")
    wanted = [by_id[task_id] for task_id in dict.fromkeys(task_id for task_id, _ in samples)]
    references = reference_outputs(benchmark, [p for p in wanted if p.kind == "evalplus"], sandbox, cache_dir)
    timeout = sandbox.limits.timeout_s
    programs = []
    for task_id, completion in samples:
        problem = by_id[task_id]
        if problem.kind == "evalplus":
            budget = _budget(timeout, references[task_id].seconds)
            programs.append(_call_program(benchmark, problem, problem.program(completion), budget))
        else:
            programs.append(Program(problem.program(completion)))
    outcomes = sandbox.run_many(programs, progress=progress)
    verdicts = []
    for (task_id, _), outcome in zip(samples, outcomes):
        problem = by_id[task_id]
        if problem.kind == "evalplus":
            verdicts.append(_compare(benchmark, problem, outcome, references[task_id]))
        else:
            verdicts.append(Verdict(outcome.status, outcome.reason, outcome.seconds, outcome.stderr[-1000:]))
    return verdicts


def _budget(timeout_s: float, reference_seconds: float) -> float:
    """Seconds for one run over a task's inputs: 4x the reference (at least `timeout_s`), at most EvalPlus's
    61 s, unless the reference itself needs more on this machine (then 2x the reference)."""
    return min(max(timeout_s, EVALPLUS_TIME_LIMIT_FACTOR * reference_seconds),
               max(EVALPLUS_TASK_TIMEOUT_S + 1, 2 * reference_seconds))


def _reports_presence(benchmark: str, problem: Problem) -> bool:
    """MBPP+'s tasks that return `re.Match` objects: only whether the output is None is compared."""
    return benchmark == "mbpp+" and problem.entry_point in MBPP_NOT_NONE_ENTRY_POINTS


def _call_program(benchmark: str, problem: Problem, code: str, timeout_s: float) -> Program:
    not_none = _reports_presence(benchmark, problem)
    return Program(code, entry_point=problem.entry_point, inputs=list(problem.base_input) + list(problem.plus_input),
                   timeout_s=timeout_s, report="is-not-none" if not_none else "value",
                   digest_large=problem.atol == 0)


def _compare(benchmark: str, problem: Problem, outcome: Outcome, reference: Reference) -> Verdict:
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
        status = "failed"
        part = "base" if wrong < base else "plus"
        shown = outcome.outputs[wrong][1]
        reason = (f"{part} input {wrong if wrong < base else wrong - base}: "
                  + (f"raised {shown}" if outcome.outputs[wrong][0] == "error" else f"returned {shown!r:.200}"))
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
        records.put(task_id, {"outputs": values.encode(reference.outputs), "seconds": reference.seconds},
                    keys[task_id])
    for problem in problems:
        if problem.task_id not in references:
            row = cached[problem.task_id]
            references[problem.task_id] = Reference(values.decode(row["outputs"]), row["seconds"])
    return {problem.task_id: references[problem.task_id] for problem in problems}


def _run_references(benchmark: str, problems: Sequence[Problem], sandbox: Sandbox) -> dict[str, Reference]:
    programs = [_call_program(benchmark, problem, problem.prompt + problem.canonical_solution, REFERENCE_TIMEOUT_S)
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
        references[problem.task_id] = Reference(outputs, outcome.seconds)
    if broken:
        raise UserError(f"{benchmark}: the reference solutions of {len(broken)} tasks did not run in the sandbox: "
                        f"{', '.join(broken[:5])}; raise the sandbox's memory limit, or report it as a bug")
    return references


def _content_key(problem: Problem) -> str:
    """What a task's reference outputs depend on: its code and its inputs."""
    digest = hashlib.sha256(json.dumps([problem.task_id, problem.prompt, problem.canonical_solution,
                                        values.encode(list(problem.base_input) + list(problem.plus_input))]).encode())
    return digest.hexdigest()[:16]

