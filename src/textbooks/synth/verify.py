"""Verifying exercises by execution: does the solution define the function, pass its docstring examples and its
tests, and do those tests tell it from a body that does nothing? Used by `textbooks mine-exercises` and by the
LLM synth step:

    with Sandbox(workers=4, limits=Limits(timeout_s=5)) as sandbox:
        verdicts = Verifier(sandbox).verify_many([Exercise(prompt, solution, tests, "valid_guessing_letters")])
        verdicts[0].ok, verdicts[0].reason      # True, "" | False, "failed_tests" (one of REASONS)

Per exercise, in order: (a) `context + prompt + solution` parses and defines `entry_point` (a top-level function,
or a method of a top-level class of the context), and the tests parse; (b) every import, anywhere, is of an
allowed top-level module, and nothing imports by name at run time (`__import__`, `importlib`, `exec`, `eval`);
(c) there are tests or docstring examples (with `require_tests`); (d) one sandbox program defines the function,
runs its docstring examples with `doctest` (ELLIPSIS and NORMALIZE_WHITESPACE; an example with no output line
that prints `True` passes, as HumanEval writes 9 of its 164 prompts' examples: `f(x) == y`), then the tests, and
`check(entry_point)` when the tests define `check` (HumanEval's form; for top-level functions); (e) with
`check_trivial`, two more programs run the tests (the docstring examples when there are no tests) with the body
replaced by `return None` and by returning the first argument (not `self`): if either passes, the checks cannot
tell a solution from nothing (`trivial_tests`). The first programs of all exercises go to the sandbox in one
`run_many`, the trivial ones in a second, so that its pool stays busy.

The import policy is about what exercises teach (the paper's card: 99.8% of its exercises import only typing,
math, random, collections, datetime and itertools), not security: the sandbox is what contains hostile code
(endless loops, fork bombs, writes outside the scratch dir). The checks run inside the program they check, so a
solution that patches `doctest` or overrides `__eq__` can fool its own checks, as in HumanEval's harness.
"""

from __future__ import annotations

import ast
import doctest
import re
from dataclasses import dataclass
from typing import Sequence

from textbooks.sandbox import Outcome, Program, Sandbox

ALLOWED_IMPORTS: frozenset[str] = frozenset({
    "math", "string", "re", "itertools", "collections", "functools", "heapq", "bisect", "random", "typing",
    "operator", "statistics", "fractions", "decimal", "copy", "datetime", "dataclasses", "enum", "abc"})
REASONS = ("syntax_error", "forbidden_import", "no_tests", "trivial_tests", "failed_tests", "failed_doctests",
           "timeout", "does_not_define")
# Names that import or run code chosen at run time, which the import check cannot see through.
DYNAMIC_NAMES = frozenset({"__import__", "__builtins__", "importlib", "exec", "eval"})
_PHASE_FAILURE = re.compile(r"textbooks-verify (definition|doctests|tests): (.*)")
_PHASE_REASON = {"definition": "does_not_define", "doctests": "failed_doctests", "tests": "failed_tests"}


@dataclass(frozen=True)
class Exercise:
    prompt: str  # HumanEval form: imports + signature + docstring, ending in a newline
    solution: str  # the body (indented), ending in a newline; prompt + solution is the whole function
    tests: str  # `def check(candidate): ...` (called as check(entry_point)) or plain statements; "" = none
    entry_point: str  # the function's name
    context: str = ""  # code that must come before the prompt (a method's class header, helper definitions)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # "" when ok; else one of REASONS
    detail: str  # a short human-readable why
    doctests: int  # docstring examples (>>> lines) found in the entry point's docstring
    seconds: float  # sandbox time spent on this exercise


@dataclass(frozen=True)
class _Plan:
    """What the static checks learned about an exercise that passed them: what its programs run."""

    docstring: str
    doctests: int
    calls_check: bool  # the tests define `check` and the entry point is a top-level function
    first_argument: str | None  # what the identity body returns (None: no argument, only `return None`)
    indent: str  # the body's indentation


# The program's harness: every phase's failure ends as one last stderr line that names the phase. Builtins are
# bound as defaults so that an exercise that rebinds them cannot break the reporting.
_HARNESS = '''\
def __textbooks_phase(phase, step, *args, BaseException=BaseException, RuntimeError=RuntimeError, type=type,
                      str=str):
    try:
        step(*args)
    except BaseException as error:
        try:
            said = str(error)
        except BaseException:
            said = "?"
        said = (type(error).__name__ + ": " + said).replace("\\n", " ")[:500]
        raise RuntimeError("textbooks-verify " + phase + ": " + said) from error


def __textbooks_exec(source, filename, exec=exec, compile=compile, globals=globals):
    exec(compile(source, filename, "exec"), globals())


def __textbooks_doctests(docstring, name):
    import doctest
    failures = []

    class Runner(doctest.DocTestRunner):
        def report_failure(self, out, test, example, got):
            failures.append(f"{example.source.strip()!r} gave {got.strip()!r}, expected {example.want.strip()!r}")

        def report_unexpected_exception(self, out, test, example, exc_info):
            failures.append(f"{example.source.strip()!r} raised {exc_info[0].__name__}: {exc_info[1]}")

    class Checker(doctest.OutputChecker):
        def check_output(self, want, got, optionflags):
            return super().check_output(want, got, optionflags) or not want.strip() and got.strip() == "True"

    test = doctest.DocTestParser().get_doctest(docstring, dict(globals()), name, "<docstring>", 0)
    Runner(checker=Checker(), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False).run(
        test, out=lambda text: None, clear_globs=False)
    if failures:
        raise AssertionError(f"docstring example {failures[0]} ({len(failures)} of {len(test.examples)} failed)")


'''


def _parse(source: str) -> ast.Module | str:
    """The tree, or the syntax error's message."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:  # ValueError: NUL bytes
        where = f" (line {error.lineno})" if isinstance(error, SyntaxError) and error.lineno else ""
        return f"{type(error).__name__}: {getattr(error, 'msg', error)}{where}"


def find_function(tree: ast.Module, name: str) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef | None, bool]:
    """The last definition of `name` at the top level, else in a top-level class; and whether it is a method."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    top = [node for node in tree.body if isinstance(node, functions) and node.name == name]
    if top:
        return top[-1], False
    methods = [node for cls in tree.body if isinstance(cls, ast.ClassDef) for node in cls.body
               if isinstance(node, functions) and node.name == name]
    return (methods[-1], True) if methods else (None, False)


def forbidden_import(trees: Sequence[ast.Module], allowed: frozenset[str]) -> str | None:
    """The first import of a module outside `allowed` (or a run-time import) in `trees`, named; None if none."""
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] not in allowed:
                        return alias.name
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    return f"a relative import (from {'.' * node.level}{node.module or ''})"
                if (node.module or "").split(".")[0] not in allowed:
                    return node.module
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__" \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                return f"{node.args[0].value} (by __import__)"
            elif isinstance(node, ast.Name) and node.id in DYNAMIC_NAMES:
                return f"{node.id} (imports or runs code chosen at run time)"
            elif isinstance(node, ast.Attribute) and node.attr in ("import_module", "__import__"):
                return f"{node.attr} (imports a module chosen at run time)"
    return None


def _first_argument(function: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> str | None:
    positional = [arg.arg for arg in function.args.posonlyargs + function.args.args]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)
    if is_method and not static:
        positional = positional[1:]
    return positional[0] if positional else None


def _indent(solution: str, function: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    for line in solution.splitlines():
        if line.strip():
            return line[:len(line) - len(line.lstrip())]
    return " " * (function.col_offset + 4)


def inspect_exercise(exercise: Exercise, allowed: frozenset[str] | None, require_tests: bool) -> Verdict | _Plan:
    """Checks (a) to (c): a failing `Verdict`, or the plan of the programs to run."""
    code = exercise.context + exercise.prompt + exercise.solution
    tree = _parse(code)
    if isinstance(tree, str):
        return Verdict(False, "syntax_error", tree, 0, 0.0)
    function, is_method = find_function(tree, exercise.entry_point)
    if function is None:
        return Verdict(False, "does_not_define", f"no function named {exercise.entry_point!r}", 0, 0.0)
    tests = _parse(exercise.tests)
    if isinstance(tests, str):
        return Verdict(False, "syntax_error", f"tests: {tests}", 0, 0.0)
    docstring = ast.get_docstring(function, clean=True) or ""
    try:
        count, unreadable = len(doctest.DocTestParser().get_examples(docstring)), ""
    except ValueError as error:  # an example doctest cannot read (inconsistent indentation)
        count, unreadable = 0, str(error)
    if allowed is not None:
        module = forbidden_import([tree, tests], allowed)
        if module is not None:
            return Verdict(False, "forbidden_import", module, count, 0.0)
    if unreadable:
        return Verdict(False, "failed_doctests", f"the docstring's examples do not parse: {unreadable}", 0, 0.0)
    has_tests = bool(exercise.tests.strip())
    if require_tests and not has_tests and not count:
        return Verdict(False, "no_tests", "no tests and no docstring examples", 0, 0.0)
    calls_check = not is_method and any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                                        and node.name == "check" for node in tests.body)
    return _Plan(docstring, count, calls_check, _first_argument(function, is_method),
                 _indent(exercise.solution, function))


def build_program(exercise: Exercise, plan: _Plan, body: str | None = None) -> str:
    """The one program that checks an exercise: defined, then its examples, then its tests. `body`: a statement
    that replaces the solution (the trivial checks), which then faces the tests alone, or the examples when
    there are no tests."""
    solution = exercise.solution if body is None else f"{plan.indent}{body}\n"
    steps = [f"__textbooks_phase('definition', __textbooks_exec, {exercise.context + exercise.prompt + solution!r}, "
             "'<exercise>')"]
    if plan.doctests and (body is None or not exercise.tests.strip()):
        steps.append(f"__textbooks_phase('doctests', __textbooks_doctests, {plan.docstring!r}, "
                     f"{exercise.entry_point!r})")
    if exercise.tests.strip():
        steps.append(f"__textbooks_phase('tests', __textbooks_exec, {exercise.tests!r}, '<tests>')")
    if plan.calls_check:
        steps.append(f"__textbooks_phase('tests', __textbooks_exec, 'check({exercise.entry_point})', '<check>')")
    return _HARNESS + "\n".join(steps) + "\n"


def _trivial_bodies(plan: _Plan) -> list[str]:
    return ["return None"] + ([f"return {plan.first_argument}"] if plan.first_argument else [])


def _failure(outcome: Outcome, plan: _Plan, exercise: Exercise) -> Verdict:
    """Why the first program did not pass: the phase its last stderr line names (else the last phase it has)."""
    if outcome.status == "timeout":
        return Verdict(False, "timeout", outcome.reason, plan.doctests, outcome.seconds)
    found = _PHASE_FAILURE.search(outcome.reason)
    if found:
        return Verdict(False, _PHASE_REASON[found.group(1)], found.group(2)[:300], plan.doctests, outcome.seconds)
    last = "tests" if exercise.tests.strip() else "doctests" if plan.doctests else "definition"
    return Verdict(False, _PHASE_REASON[last], outcome.reason[:300], plan.doctests, outcome.seconds)


class Verifier:
    """Verifies exercises in a sandbox; the programs' time and resource limits are the sandbox's `Limits`."""

    def __init__(self, sandbox: Sandbox, allowed_imports: frozenset[str] | None = ALLOWED_IMPORTS,
                 require_tests: bool = True, check_trivial: bool = True) -> None:
        self.sandbox = sandbox
        self.allowed_imports = None if allowed_imports is None else frozenset(allowed_imports)
        self.require_tests, self.check_trivial = require_tests, check_trivial

    def verify_many(self, exercises: Sequence[Exercise], progress: bool | str = False) -> list[Verdict]:
        """One verdict per exercise, in order."""
        found = [inspect_exercise(exercise, self.allowed_imports, self.require_tests) for exercise in exercises]
        runnable = [index for index, plan in enumerate(found) if isinstance(plan, _Plan)]
        outcomes = self.sandbox.run_many([Program(build_program(exercises[index], found[index]))
                                          for index in runnable], progress=progress)
        verdicts: list[Verdict | None] = [plan if isinstance(plan, Verdict) else None for plan in found]
        passed: list[int] = []
        for index, outcome in zip(runnable, outcomes):
            plan, exercise = found[index], exercises[index]
            if outcome.status == "passed":
                verdicts[index] = Verdict(True, "", "", plan.doctests, outcome.seconds)
                if self.check_trivial and (plan.doctests or exercise.tests.strip()):
                    passed.append(index)
            else:
                verdicts[index] = _failure(outcome, plan, exercise)
        self._check_trivial(exercises, found, passed, verdicts, progress)
        return verdicts  # type: ignore[return-value]

    def _check_trivial(self, exercises: Sequence[Exercise], found: list, passed: list[int],
                       verdicts: list[Verdict | None], progress: bool | str) -> None:
        """Mark `trivial_tests` the passed exercises whose checks also pass with a body that does nothing."""
        jobs = [(index, body) for index in passed for body in _trivial_bodies(found[index])]
        outcomes = self.sandbox.run_many([Program(build_program(exercises[index], found[index], body))
                                          for index, body in jobs],
                                         progress=f"{progress} (trivial bodies)" if isinstance(progress, str)
                                         else progress)
        seconds: dict[int, float] = {}
        trivial: dict[int, str] = {}
        for (index, body), outcome in zip(jobs, outcomes):
            seconds[index] = seconds.get(index, 0.0) + outcome.seconds
            if outcome.status == "passed" and index not in trivial:
                trivial[index] = f"the checks pass with the body `{body}`"
        for index in passed:
            verdict = verdicts[index]
            total = verdict.seconds + seconds.get(index, 0.0)
            verdicts[index] = Verdict(False, "trivial_tests", trivial[index], verdict.doctests, total) \
                if index in trivial else Verdict(True, "", "", verdict.doctests, total)


__all__ = ["ALLOWED_IMPORTS", "REASONS", "Exercise", "Verdict", "Verifier"]
