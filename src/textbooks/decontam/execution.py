"""Execution match: does a row's function pass a benchmark problem's own tests? Then it is a likely paraphrase
of the problem, whatever its text looks like (the case text matching misses: Magicoder issue #40).

    pairs = [Candidate(row_text, target), ...]
    passed = run_candidates(pairs, sandbox)          # per pair: the name of a function that passed, or None
    weak = trivial_targets(targets, sandbox)         # keys of problems whose tests a body that does nothing passes

Each top-level function of the row that can be called with the problem's number of positional arguments (at
most `MAX_FUNCTIONS` of them) is tried: the program is the row itself, then `entry_point = name` when the
names differ, judged as a whole-program sample (`Solution`) exactly as `textbooks eval` judges one
(`evaluate.judge`): `check(entry_point)` for HumanEval, the asserts for MBPP, outputs against the reference's
for HumanEval+ and MBPP+. A problem's tests are *trivial* when its solution with the entry point's body replaced
by `return None`, or by returning its first argument, passes them; a pass there tells nothing, and is reported
but never prunes. A pass on HumanEval or MBPP is then confirmed on the problem's EvalPlus version where there is
one (`confirm_plus`: HumanEval+ and MBPP+ inputs, outputs against the reference's): a row that passes those too
computes the benchmark's function (the standard library's `statistics.median` is HumanEval/47), one that fails
them only satisfied a few asserts.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from textbooks.benchmarks.problem import Solution
from textbooks.corpus.units import parse_python
from textbooks.decontam.targets import Target, accepts, positional_range
from textbooks.sandbox import Sandbox

MAX_FUNCTIONS = 8  # top-level functions of one row tried against one problem
PLUS = {"humaneval": "humaneval+", "mbpp": "mbpp+"}


@dataclass(frozen=True)
class Candidate:
    text: str
    target: Target


def callable_functions(text: str) -> list[tuple[str, tuple[int, int]]]:
    """`(name, (required, total) positional parameters)` of the row's top-level functions."""
    module = parse_python(text)
    if module is None:
        return []
    return [(node.name, positional_range(node)) for node in module.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def programs(candidate: Candidate) -> list[tuple[str, str]]:
    """`(function name, program)` for each of the row's functions that the problem's tests could call."""
    target = candidate.target
    if target.positional is None:
        return []
    entry = target.problem.entry_point
    tried = []
    for name, positional in callable_functions(candidate.text):
        if accepts(positional, target.positional):
            alias = "" if name == entry else f"\n\n{entry} = {name}\n"
            tried.append((name, candidate.text.rstrip("\n") + "\n" + alias))
    return tried[:MAX_FUNCTIONS]


def run_candidates(candidates: Sequence[Candidate], sandbox: Sandbox, progress: bool | str = False
                   ) -> list[str | None]:
    """For each candidate, the first of its functions that passed the problem's tests, or None."""
    from textbooks.evaluate.judge import judge

    by_bench: dict[str, list[tuple[int, str, str]]] = defaultdict(list)  # bench -> (candidate, function, code)
    for index, candidate in enumerate(candidates):
        for name, code in programs(candidate):
            by_bench[candidate.target.bench].append((index, name, code))
    passed: list[str | None] = [None] * len(candidates)
    for bench, tried in by_bench.items():
        problems = list({candidates[index].target.problem.task_id: candidates[index].target.problem
                         for index, _, _ in tried}.values())
        samples = [(candidates[index].target.problem.task_id, Solution(code)) for index, _, code in tried]
        verdicts = judge(bench, problems, samples, sandbox, progress=progress and f"{progress} ({bench})")
        for (index, name, _), verdict in zip(tried, verdicts):
            if verdict.status == "passed" and passed[index] is None:
                passed[index] = name
    return passed


def stub_programs(target: Target) -> list[str]:
    """The problem's solution with the entry point's body replaced by `return None` and by returning its first
    argument (when it has one)."""
    module = parse_python(target.document)
    found = [node for node in (module.body if module is not None else [])
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == target.problem.entry_point]
    if not found:
        return []
    definition = found[-1]
    arguments = [*definition.args.posonlyargs, *definition.args.args]
    bodies = [ast.Return(value=ast.Constant(None))]
    if arguments:
        bodies.append(ast.Return(value=ast.Name(arguments[0].arg, ast.Load())))
    stubs = []
    for body in bodies:
        definition.body = [body]
        stubs.append(ast.unparse(ast.fix_missing_locations(module)) + "\n")
    return stubs


def trivial_targets(targets: Sequence[Target], sandbox: Sandbox) -> set[str]:
    """Keys of the problems whose tests a stub (`stub_programs`) passes."""
    from textbooks.evaluate.judge import judge

    trivial: set[str] = set()
    by_bench: dict[str, list[Target]] = defaultdict(list)
    for target in targets:
        by_bench[target.bench].append(target)
    for bench, members in by_bench.items():
        tried = [(target, stub) for target in members for stub in stub_programs(target)]
        samples = [(target.problem.task_id, Solution(stub)) for target, stub in tried]
        verdicts = judge(bench, [target.problem for target in members], samples, sandbox)
        trivial |= {target.key for (target, _), verdict in zip(tried, verdicts) if verdict.status == "passed"}
    return trivial


def confirm_plus(candidates: Sequence[Candidate], passed: Sequence[str | None], sandbox: Sandbox,
                 benchmarks_dir: str | None = None) -> list[bool | None]:
    """For each candidate that passed, whether the function that passed also passes the problem's EvalPlus
    version; None where it did not pass, or EvalPlus has no such problem, or its files are not here."""
    from textbooks.benchmarks import load_benchmark
    from textbooks.errors import UserError
    from textbooks.evaluate.judge import judge

    confirmed: list[bool | None] = [None] * len(candidates)
    for bench, plus in PLUS.items():
        chosen = [index for index, name in enumerate(passed) if name and candidates[index].target.bench == bench]
        if not chosen:
            continue
        try:
            problems = {problem.task_id: problem for problem in load_benchmark(plus, benchmarks_dir)}
        except UserError:
            continue  # no EvalPlus files here: unconfirmed
        chosen = [index for index in chosen if candidates[index].target.problem.task_id in problems]
        samples = []
        for index in chosen:
            candidate, name = candidates[index], passed[index]
            entry = problems[candidate.target.problem.task_id].entry_point
            alias = "" if name == entry else f"\n\n{entry} = {name}\n"
            samples.append((candidate.target.problem.task_id, Solution(candidate.text.rstrip("\n") + "\n" + alias)))
        wanted = list({task_id: problems[task_id] for task_id, _ in samples}.values())
        for index, verdict in zip(chosen, judge(plus, wanted, samples, sandbox)):
            confirmed[index] = verdict.status == "passed"
    return confirmed
