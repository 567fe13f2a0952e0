"""`textbooks mine-exercises`: the exact exercises cut from a small hand-written dataset, a refused input, and the
Python standard library mined end to end, with a sample of its exercises checked again here in the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pytest
from test_quality import refused, run, write_dataset

from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import run_step
from textbooks.sandbox import Program
from textbooks.store import data
from textbooks.synth.mine import COLUMNS, DROP_DETAIL, MineConfig, MineExercisesStage, exercise_id
from textbooks.synth.verify import find_function

HYPOTENUSE = '''import math


def hypotenuse(a, b):
    """The hypotenuse of a right triangle with legs a and b.

    >>> hypotenuse(3, 4)
    5.0
    """
    squares = a * a + b * b
    return math.sqrt(squares)
'''
# A whole module: its imports, a module-level global, and functions of every kind.
MODULE = '''"""Text helpers."""
import re
from collections import Counter, OrderedDict
from . import siblings

LIMIT = 10


def word_counts(text):
    """Count the words of `text`, ignoring case."""
    words = re.findall(r"[a-z]+", text.lower())
    return Counter(words)


def clipped(values):
    """The first LIMIT values."""
    kept = list(values)
    return kept[:LIMIT]


def _helper(x):
    """Private: skipped."""
    y = x + 1
    return y


def later(x):
    """Not written yet."""
    raise NotImplementedError("later")


def short(x):
    """One line of body: too short."""
    return x


def wrong_example(n):
    """Double n.

    >>> wrong_example(2)
    5
    """
    doubled = n * 2
    return doubled


def strip_example(text):
    """`text` without surrounding spaces.

    >>> strip_example("abc")
    'abc'
    """
    text = str(text)
    return text.strip()


def neighbours(name):
    """The modules next to this one."""
    found = siblings.near(name)
    return sorted(found)


class Temperature:
    """Temperatures in degrees."""

    scale = "C"

    def __init__(self, degrees=0.0):
        self.degrees = degrees

    def to_fahrenheit(self, celsius):
        """Degrees Fahrenheit of `celsius` degrees Celsius.

        >>> Temperature().to_fahrenheit(100)
        212.0
        """
        scaled = celsius * 9 / 5
        return scaled + 32

    def describe(self):
        """Say the temperature."""
        unit = self.scale
        return f"{self.degrees} {unit}"
'''
NOT_PYTHON = "def broken(:\n    pass\n"


@pytest.fixture(scope="module")
def mined(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mine")
    rows = [{"id": "unit:hypotenuse", "text": HYPOTENUSE, "source": "hand"},
            {"id": "file:text.py", "text": MODULE, "source": "hand"},
            {"id": "file:broken.py", "text": NOT_PYTHON, "source": "hand"}]
    corpus = write_dataset(root / "corpus", rows)
    said: list[str] = []
    run_step(MineExercisesStage(MineConfig(), str(corpus)), root / "mined", executor=make_executor("process", 1),
             say=said.append)
    (root / "said.txt").write_text("\n".join(said))
    return root / "mined"


def by_name(folder: Path) -> dict[str, dict]:
    return {row["qualified_name"]: row for row in data.read_dataset(folder).to_pylist()}


def test_the_exact_exercises_of_a_small_dataset(mined: Path) -> None:
    kept, dropped = by_name(mined), by_name(mined / data.DROPPED)
    assert sorted(kept) == ["Temperature.describe", "Temperature.to_fahrenheit", "hypotenuse", "word_counts"]
    assert {name: row["drop_reason"] for name, row in dropped.items()} == {
        "clipped": "not_self_contained", "wrong_example": "failed_doctests", "strip_example": "trivial_tests",
        "neighbours": "does_not_define"}
    assert dropped["clipped"][DROP_DETAIL] == "uses LIMIT: not builtins, not imported"
    assert "relative import" in dropped["neighbours"][DROP_DETAIL]
    assert "gave '4', expected '5'" in dropped["wrong_example"][DROP_DETAIL]
    assert dropped["strip_example"][DROP_DETAIL] == "the checks pass with the body `return text`"

    hypotenuse = kept["hypotenuse"]
    assert hypotenuse["prompt"] == HYPOTENUSE.split("    squares")[0]
    assert hypotenuse["solution"] == "    squares = a * a + b * b\n    return math.sqrt(squares)\n"
    assert (hypotenuse["context"], hypotenuse["tests"], hypotenuse["entry_point"]) == ("", "", "hypotenuse")
    assert (hypotenuse["doctests"], hypotenuse["has_tests"], hypotenuse["origin_id"]) == (1, True, "unit:hypotenuse")
    assert hypotenuse["id"] == exercise_id("unit:hypotenuse", "hypotenuse", 0) and hypotenuse["source"] == "hand"

    words = kept["word_counts"]  # the module's imports, narrowed to what the function uses
    assert words["prompt"] == ('import re\nfrom collections import Counter\n\n\ndef word_counts(text):\n'
                               '    """Count the words of `text`, ignoring case."""\n')
    assert (words["doctests"], words["has_tests"]) == (0, False)

    method = kept["Temperature.to_fahrenheit"]  # its class header and docstring, nothing else of the class
    assert method["context"] == 'class Temperature:\n    """Temperatures in degrees."""\n'
    assert method["prompt"].startswith("    def to_fahrenheit(self, celsius):\n")
    assert method["solution"] == "        scaled = celsius * 9 / 5\n        return scaled + 32\n"
    assert (method["entry_point"], method["doctests"]) == ("to_fahrenheit", 1)
    for row in [*kept.values(), *dropped.values()]:
        assert row["text"] == row["context"] + row["prompt"] + row["solution"]
    assert list(data.read_dataset(mined).column_names) == list(COLUMNS)


def test_the_counts_and_the_summary_line(mined: Path) -> None:
    stats = data.read_stats(mined)
    counters = stats["counters"]
    assert {key: counters[key] for key in ("rows", "unparsed_rows", "candidates", "kept", "skipped_private",
                                           "skipped_stub", "skipped_short_body", "not_self_contained",
                                           "failed_doctests", "trivial_tests", "does_not_define")} == {
        "rows": 3, "unparsed_rows": 1, "candidates": 8, "kept": 4, "skipped_private": 1, "skipped_stub": 1,
        "skipped_short_body": 1, "not_self_contained": 1, "failed_doctests": 1, "trivial_tests": 1,
        "does_not_define": 1}
    assert stats["exercises"] == {"kept": 4, "with_doctests": 2, "methods": 2, "functions": 2}
    assert stats["drops"] == {"not_self_contained": 1, "failed_doctests": 1, "trivial_tests": 1,
                              "does_not_define": 1}
    said = (mined.parent / "said.txt").read_text()
    assert "mine-exercises: 4 exercises from 3 rows (2 with doctests, passed with their own body and failed " \
           "with `return None`" in said


def test_ids_are_stable_and_a_rerun_is_done_earlier(mined: Path, tmp_path: Path) -> None:
    corpus = mined.parent / "corpus"
    again = run(MineExercisesStage(MineConfig(), str(corpus)), tmp_path / "again")
    assert data.read_dataset(again).to_pylist() == data.read_dataset(mined).to_pylist()
    outcome = run_step(MineExercisesStage(MineConfig(), str(corpus)), mined, executor=make_executor("process", 1),
                       say=lambda _: None)
    assert outcome.status == "done earlier"


def test_a_dataset_without_text_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "no-text"
    data.write_table(pa.table({"id": ["a"], "content": ["def f(): pass"], "source": ["x"]}),
                     folder / data.shard_name(0))
    data.write_marker(folder, {"stage": "ingest", "kind": "dataset", "fingerprint": "no-text"})
    error = refused(capsys, ["mine-exercises", "--input", str(folder)], tmp_path / "out")
    assert "has no column 'text'" in error and "textbooks ingest --units function class" in error


def test_allowed_imports_drop_the_exercises_that_import_others(mined: Path, tmp_path: Path, capsys) -> None:
    only_math = run(MineExercisesStage(MineConfig(allowed_imports=["math"]), str(mined.parent / "corpus")),
                    tmp_path / "math")
    dropped = by_name(only_math / data.DROPPED)
    assert sorted(by_name(only_math)) == ["Temperature.describe", "Temperature.to_fahrenheit", "hypotenuse"]
    assert (dropped["word_counts"]["drop_reason"], dropped["word_counts"][DROP_DETAIL]) == ("forbidden_import", "re")
    error = refused(capsys, ["mine-exercises", "--input", str(mined.parent / "corpus"), "--min-body-lines", "9",
                             "--max-body-lines", "3"], tmp_path / "none")
    assert "min_body_lines (9) is above max_body_lines (3)" in error


def _independent_check(sandbox, rows: list[dict]) -> None:
    """Run each exercise here, apart from the step: it defines its entry point, its docstring examples (found by
    doctest on the live function) pass, and with the body cut to `return None` (by the syntax tree) they fail."""
    def program(code: str, row: dict) -> str:
        holder = f"{row['qualified_name'].split('.')[0]}.__dict__" if "." in row["qualified_name"] else "globals()"
        return (f"{code}\nimport doctest\nfound = {holder}[{row['entry_point']!r}]\n"
                "found = getattr(found, '__func__', getattr(found, 'fget', found))\n"
                "runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)\n"
                "test = doctest.DocTestParser().get_doctest(found.__doc__ or '', dict(globals()), 'x', None, 0)\n"
                "runner.run(test, out=lambda text: None)\n"
                f"assert len(test.examples) == {row['doctests']} and runner.failures == 0\n")

    def emptied(row: dict) -> str:
        tree = ast.parse(row["text"])
        function, _ = find_function(tree, row["entry_point"])
        function.body = [function.body[0], ast.Return(ast.Constant(None))]
        return ast.unparse(tree)

    with_doctests = [row for row in rows if row["doctests"]]
    programs = [Program(program(row["text"], row)) for row in rows]
    programs += [Program(program(emptied(row), row)) for row in with_doctests]
    outcomes = sandbox.run_many(programs)
    own, empty = outcomes[:len(rows)], outcomes[len(rows):]
    assert [(row["id"], outcome.status) for row, outcome in zip(rows, own) if outcome.status != "passed"] == []
    assert [row["id"] for row, outcome in zip(with_doctests, empty) if outcome.status == "passed"] == []


def test_the_small_datasets_exercises_hold_up_when_run_again(mined: Path, sandbox) -> None:
    _independent_check(sandbox, list(by_name(mined).values()))


def test_textbook_form_lays_out_prose_code_and_examples(mined: Path, tmp_path: Path) -> None:
    """form: textbook keeps the same verified exercises; `text` is the docstring's prose, the code without the
    docstring (which still compiles and defines the function) and the docstring's examples."""
    corpus = mined.parent / "corpus"
    run_step(MineExercisesStage(MineConfig(form="textbook"), str(corpus)), tmp_path / "sections",
             executor=make_executor("process", 1), say=lambda line: None)
    exercises, sections = by_name(mined), by_name(tmp_path / "sections")
    assert sorted(sections) == sorted(exercises)
    for name, row in sections.items():
        assert (row["prompt"], row["solution"]) == (exercises[name]["prompt"], exercises[name]["solution"])
        code = row["text"].split("```python\n")[1].split("\n```")[0]
        compile(code, name, "exec")
        assert f"def {row['entry_point']}(" in code and '"""The hypotenuse' not in code
    assert sections["hypotenuse"]["text"] == (
        "## Hypotenuse\n\nThe hypotenuse of a right triangle with legs a and b.\n\n"
        "```python\nimport math\n\n\ndef hypotenuse(a, b):\n    squares = a * a + b * b\n"
        "    return math.sqrt(squares)\n```\n\nFor example:\n\n```python\n>>> hypotenuse(3, 4)\n5.0\n```\n")
    assert sections["Temperature.to_fahrenheit"]["text"].startswith("## Temperature: To fahrenheit\n\n")
    assert sections["word_counts"]["text"].count("```python") == 1  # no examples: no example block
