"""Verifying exercises by execution: a good exercise passes, and each kind of bad one is caught with its reason,
hostile ones (an endless loop, a fork bomb, a write outside the scratch dir) contained by the sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from textbooks.sandbox import Limits, Sandbox
from textbooks.synth.verify import ALLOWED_IMPORTS, REASONS, Exercise, Verifier

PROMPT = '''from typing import List


def valid_guessing_letters(word: str, guesses: List[str]) -> List[str]:
    """The letters of `word` not yet guessed, each once, in the order they first appear.

    >>> valid_guessing_letters("hello", ["l"])
    ['h', 'e', 'o']
    """
'''
SOLUTION = '''    letters = []
    for letter in word:
        if letter not in guesses and letter not in letters:
            letters.append(letter)
    return letters
'''
TESTS = '''def check(candidate):
    assert candidate("banana", ["n"]) == ["b", "a"]
    assert candidate("abc", []) == ["a", "b", "c"]
    assert candidate("", ["x"]) == []
'''
PLAIN_PROMPT = 'def double(x: int) -> int:\n    """Twice x."""\n'


def exercise(solution: str = SOLUTION, tests: str = TESTS, prompt: str = PROMPT, **more) -> Exercise:
    return Exercise(prompt, solution, tests, more.pop("entry_point", "valid_guessing_letters"), **more)


def double(solution: str, tests: str = "assert double(2) == 4\nassert double(-3) == -6\n") -> Exercise:
    return Exercise(PLAIN_PROMPT, solution, tests, "double")


@pytest.fixture(scope="module")
def strict_sandbox():
    """Two workers and a 2 s limit, for the programs that would run forever."""
    with Sandbox(workers=2, limits=Limits(timeout_s=2)) as box:
        yield box


def reasons(verdicts) -> list[str]:
    return [verdict.reason for verdict in verdicts]


def test_a_good_exercise_passes_with_its_examples_and_tests_counted(sandbox) -> None:
    method = Exercise('    def bump(self, n):\n        """n plus one."""\n', "        return n + 1\n",
                      "assert Counter().bump(1) == 2\nassert Counter().bump(5) == 6\n", "bump",
                      context='class Counter:\n    """Counts."""\n')
    # HumanEval writes some examples as `f(x) == y` with no output line: printing True passes
    equality = Exercise('def double(x):\n    """Twice x.\n\n    >>> double(2) == 4\n    >>> double(0)\n    0\n'
                        '    """\n', "    return 2 * x\n", "", "double")
    good = [exercise(), double("    return 2 * x\n"), method, equality]
    verdicts = Verifier(sandbox).verify_many(good)
    assert [(verdict.ok, verdict.reason, verdict.detail) for verdict in verdicts] == [(True, "", "")] * 4
    assert [verdict.doctests for verdict in verdicts] == [1, 0, 0, 2]
    assert all(verdict.seconds > 0 for verdict in verdicts)


def test_each_bad_kind_is_caught_with_its_reason(sandbox) -> None:
    bad = {
        "syntax_error": exercise("    for letter in word\n        pass\n"),
        "tests that do not parse": exercise(tests="assert (\n"),
        "failed_tests": double("    return x + 2\n"),
        "failed_doctests": exercise(prompt=PROMPT.replace("['h', 'e', 'o']", "['h', 'e', 'l', 'o']")),
        "no_tests": double("    return 2 * x\n", tests=""),
        "does_not_define": exercise(entry_point="guess"),
        "an early exit": double("    return 2 * x\nraise SystemExit(0)\n"),
        "examples doctest cannot read": Exercise('def double(x):\n    """Twice.\n\n    >>> double(1)\n    2\n'
                                                 '  3\n    """\n', "    return 2 * x\n", "", "double"),
        "an example that is False": Exercise('def double(x):\n    """Twice.\n\n    >>> double(1) == 3\n    """\n',
                                             "    return 2 * x\n", "", "double"),
        "exit in the tests": double("    return 2 * x\n", tests="import sys\nsys.exit(0)\n"),
    }
    verdicts = dict(zip(bad, Verifier(sandbox, allowed_imports=ALLOWED_IMPORTS | {"sys"}).verify_many(
        list(bad.values()))))
    assert {name: verdict.reason for name, verdict in verdicts.items()} == {
        "syntax_error": "syntax_error", "tests that do not parse": "syntax_error", "failed_tests": "failed_tests",
        "failed_doctests": "failed_doctests", "no_tests": "no_tests", "does_not_define": "does_not_define",
        "an early exit": "does_not_define", "examples doctest cannot read": "failed_doctests",
        "an example that is False": "failed_doctests", "exit in the tests": "failed_tests"}
    assert not any(verdict.ok for verdict in verdicts.values())
    assert all(verdict.reason in REASONS for verdict in verdicts.values())
    assert verdicts["tests that do not parse"].detail.startswith("tests: SyntaxError")
    assert "valid_guessing_letters(\"hello\", [\"l\"])" in verdicts["failed_doctests"].detail
    assert "gave \"['h', 'e', 'o']\"" in verdicts["failed_doctests"].detail
    assert verdicts["failed_tests"].detail.startswith("AssertionError")
    assert verdicts["an early exit"].detail == "SystemExit: 0"
    assert verdicts["examples doctest cannot read"].detail.startswith("the docstring's examples do not parse")
    assert "gave 'False', expected ''" in verdicts["an example that is False"].detail
    assert verdicts["syntax_error"].seconds == 0.0 and verdicts["failed_tests"].seconds > 0


def test_forbidden_imports_anywhere_and_dynamic_imports_are_named(sandbox) -> None:
    cases = {
        "os": double("    import os\n    return 2 * x\n"),
        "subprocess": double("    import subprocess\n    return 2 * x\n"),
        "os (by __import__)": double('    __import__("os")\n    return 2 * x\n'),
        "os.path": Exercise("import os.path\n" + PLAIN_PROMPT, "    return 2 * x\n", "assert double(1) == 2\n",
                            "double"),
        "shutil": double("    return 2 * x\n", tests="from shutil import rmtree\nassert double(1) == 2\n"),
        "importlib": double('    import importlib\n    return 2 * x\n'),
        "eval (imports or runs code chosen at run time)": double('    return eval("2 * x")\n'),
        "a relative import (from .helpers)": double("    from .helpers import twice\n    return twice(x)\n"),
        "helpers": Exercise(PLAIN_PROMPT, "    return 2 * x\n", "assert double(1) == 2\n", "double",
                            context="from helpers import twice\n"),
    }
    verdicts = Verifier(sandbox).verify_many(list(cases.values()))
    assert [(verdict.reason, verdict.detail) for verdict in verdicts] == [("forbidden_import", name)
                                                                          for name in cases]
    assert all(verdict.seconds == 0.0 for verdict in verdicts)  # refused before anything ran
    allowed = Verifier(sandbox, allowed_imports=None).verify_many(
        [double("    import os\n    return 2 * x\n"), double('    return eval("2 * x")\n')])
    assert [verdict.ok for verdict in allowed] == [True, True]
    with_math = Verifier(sandbox).verify_many([double("    import math\n    return int(math.fsum([x, x]))\n")])
    assert with_math[0].ok


def test_trivial_tests_are_caught_when_a_body_that_does_nothing_passes_them(sandbox) -> None:
    trivial = {
        "is None": double("    return 2 * x\n", tests="def check(candidate):\n    assert candidate(1) is None or "
                                                      "candidate(1) == 2\n"),
        "assert True": double("    return 2 * x\n", tests="assert True\n"),
        "identity": Exercise('def tidy(text):\n    """text without surrounding spaces."""\n',
                             "    return text.strip()\n", "assert tidy('abc') == 'abc'\n", "tidy"),
        "doctests only": Exercise('def tidy(text):\n    """Stripped.\n\n    >>> tidy("x")\n    \'x\'\n    """\n',
                                  "    return text.strip()\n", "", "tidy"),
    }
    verdicts = Verifier(sandbox).verify_many(list(trivial.values()))
    assert {name: (verdict.reason, verdict.detail) for name, verdict in zip(trivial, verdicts)} == {
        "is None": ("trivial_tests", "the checks pass with the body `return None`"),
        "assert True": ("trivial_tests", "the checks pass with the body `return None`"),
        "identity": ("trivial_tests", "the checks pass with the body `return text`"),
        "doctests only": ("trivial_tests", "the checks pass with the body `return text`")}
    unchecked = Verifier(sandbox, check_trivial=False).verify_many(list(trivial.values()))
    assert all(verdict.ok for verdict in unchecked)
    # with tests, the trivial bodies face the tests: examples that a trivial body passes do not matter then
    tested = Exercise(trivial["doctests only"].prompt, "    return text.strip()\n", "assert tidy(' a ') == 'a'\n",
                      "tidy")
    assert Verifier(sandbox).verify_many([tested])[0].ok
    # A method's identity body returns its first argument after self.
    method = Exercise('    def same(self, value):\n        """value."""\n', "        return value\n",
                      "assert Box().same(3) == 3\n", "same", context="class Box:\n")
    assert Verifier(sandbox).verify_many([method])[0].detail == "the checks pass with the body `return value`"


def test_an_endless_loop_times_out_and_a_fork_bomb_is_contained(strict_sandbox) -> None:
    hostile = [
        double("    while True:\n        pass\n"),
        double("    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
               "            pass\n"),
        double("    import os\n    while True:\n        os.fork()\n"),
    ]
    started = time.perf_counter()
    verdicts = Verifier(strict_sandbox, allowed_imports=None).verify_many(hostile)
    assert verdicts[0].reason == "timeout" and 2 <= verdicts[0].seconds < 5
    assert verdicts[1].reason in ("timeout", "failed_tests") and verdicts[2].reason in ("timeout", "failed_tests")
    assert time.perf_counter() - started < 30
    # the sandbox is whole afterwards: every worker (so at least two programs at once) runs the next ones
    after = Verifier(strict_sandbox).verify_many([double("    return 2 * x\n")] * 4)
    assert all(verdict.ok for verdict in after)


def test_a_solution_that_writes_outside_its_scratch_dir_fails_and_writes_nothing(strict_sandbox,
                                                                                   tmp_path: Path) -> None:
    if not strict_sandbox.namespaces:
        pytest.skip("no namespace isolation here: the host file system is writable to sandboxed programs")
    target = tmp_path / "written-by-an-exercise"
    writer = double(f"    open({str(target)!r}, 'w').write('x')\n    return 2 * x\n")
    local = double("    open('scratch.txt', 'w').write('x')\n    return 2 * x\n")
    verdicts = Verifier(strict_sandbox, allowed_imports=None).verify_many([writer, local])
    assert verdicts[0].reason == "failed_tests" and verdicts[0].detail.startswith(("OSError", "PermissionError")), \
        verdicts[0]
    assert not target.exists()
    assert verdicts[1].ok  # its own scratch dir is writable


def test_a_definition_that_fails_to_execute_does_not_define(sandbox) -> None:
    cases = [
        Exercise("import functools\n\n\n@functools.no_such_decorator\n" + PLAIN_PROMPT, "    return 2 * x\n",
                 "", "double"),
        Exercise("from no_such_module import helper\n\n\n" + PLAIN_PROMPT, "    return helper(x)\n", "", "double"),
        Exercise(PLAIN_PROMPT, "    return 2 * x\n", "", "double"),
    ]
    verdicts = Verifier(sandbox, allowed_imports=None, require_tests=False).verify_many(cases)
    assert reasons(verdicts) == ["does_not_define", "does_not_define", ""]
    assert "AttributeError" in verdicts[0].detail and "no_such_module" in verdicts[1].detail
