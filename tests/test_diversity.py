"""`textbooks diversity`: families written per row, the measures in stats.json, datasets compared side by side,
`diversity: true` measuring every dataset of a recipe (and the report showing it), and bad input refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import dataset_rows
from test_quality import refused, write_dataset

from textbooks.cli import main
from textbooks.diversity.dataset import EXAMPLE_CHARS, measure_with_families
from textbooks.diversity.families import find_families, greedy_dedup_removed
from textbooks.diversity.measures import compression_ratio, distinct_n
from textbooks.pipeline.recipe import load_recipe
from textbooks.pipeline.runner import run_recipe
from textbooks.quality.vectors import embeddings_table
from textbooks.store import data

OPERATIONS = ["+", "-", "*", "//", "%", "**", "&", "|", "^", "<<"]


def distinct_functions(count: int) -> list[str]:
    """Small functions that differ in their operations, loops and conditions."""
    made = []
    for index in range(count):
        first, second = OPERATIONS[index % 10], OPERATIONS[(index // 10) % 10]
        loop = "for item in values:" if index % 3 else "while values:\n        item = values.pop()"
        test = ["item > limit", "item % 2 == 0", "item in seen", "not item"][(index // 3) % 4]
        made.append(f"def f{index}(values, limit):\n    total = {index}\n    seen = set()\n    {loop}\n"
                    f"        if {test}:\n            total = total {first} item\n        else:\n"
                    f"            total = (total {second} {index + 2}) + len(seen)\n        seen.add(item)\n"
                    f"    return total\n")
    return made


def stdlib_functions(count: int) -> list[str]:
    """`count` distinct top-level functions of the running interpreter's standard library (real, varied code)."""
    import ast
    import sysconfig

    found: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and 6 <= node.end_lineno - node.lineno <= 40:
                found.append(ast.get_source_segment(source, node) + "\n")
                if len(found) == count:
                    return found
    raise AssertionError("the standard library has fewer functions than asked")


def renamed(text: str, suffix: int) -> str:
    """The same function with other local names (and its name), a comment and another layout."""
    import ast

    function = ast.parse(text).body[0]
    names = {node.id for node in ast.walk(function) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    names |= {argument.arg for argument in ast.walk(function) if isinstance(argument, ast.arg)} | {function.name}
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"\b{name}\b", f"{name}_{suffix}", text)
    head, _, body = text.partition("\n")
    return f"# variant {suffix}\n{head}  # renamed\n\n{body}"


def rows_of(texts: list[str], prefix: str = "r") -> list[dict]:
    return [{"id": f"{prefix}{index}", "text": text, "source": "test"} for index, text in enumerate(texts)]


def test_families_are_written_per_row_and_an_exact_copy_is_one_family_per_original(tmp_path: Path) -> None:
    originals = distinct_functions(30)
    twice = write_dataset(tmp_path / "twice", rows_of(originals + originals))
    assert main(["diversity", "--input", str(twice), "--out", str(tmp_path / "out")]) == 0

    rows = dataset_rows(tmp_path / "out")
    assert len(rows) == 60
    by_text: dict[str, set[int]] = {}
    for row in rows:
        by_text.setdefault(row["text"], set()).add(row["family_id"])
    assert all(len(families) == 1 for families in by_text.values())  # each copy with its original
    assert len({row["family_id"] for row in rows}) == 30  # and no two originals together
    found = data.read_stats(tmp_path / "out")["diversity"]
    assert found["rows"] == 60 and found["families"]["families"] == 30
    assert found["redundancy"]["near_duplicate_rate"] == 1.0
    assert found["redundancy"]["greedy_dedup_removed"]["0.7"] == pytest.approx(0.5)


def test_a_dataset_in_many_parts_measures_as_its_texts_do_in_one_go(tmp_path: Path) -> None:
    originals = stdlib_functions(30)
    texts = [originals[index % 30] if index % 4 == 0 else renamed(originals[index % 30], index)
             for index in range(120)]  # exact copies and variations, spread over the parts
    many = write_dataset(tmp_path / "many", rows_of(texts), shards=7)
    rows = data.read_dataset(many).to_pylist()  # in dataset order, the order of the measure's rows
    measured, family = measure_with_families(many)
    whole, whole_family = measure_with_families(write_dataset(tmp_path / "one", rows, shards=1))
    assert measured == whole and family.tolist() == whole_family.tolist()

    ordered = [row["text"] for row in rows]
    found = find_families(ordered, seed=0)
    assert family.tolist() == found.family.tolist()
    assert {key: value for key, value in measured["families"].items() if key != "examples"} == found.summary()
    assert measured["families"]["families"] < 40 and found.edges["exact"] > 0  # 30 originals, a few apart
    redundancy = measured["redundancy"]
    assert redundancy["greedy_dedup_removed"] == greedy_dedup_removed(ordered, seed=0)
    assert redundancy["distinct_n"] == {str(n): value for n, value in distinct_n(ordered).items()}
    assert redundancy["compression_ratio"] == compression_ratio(ordered)
    examples = measured["families"]["examples"]
    assert len(examples) == 3
    for example in examples:
        first_rows = np.flatnonzero(family == example["family"])[:2].tolist()
        assert example["ids"] == [rows[row]["id"] for row in first_rows]
        assert example["texts"] == [ordered[row][:EXAMPLE_CHARS] for row in first_rows]


def test_a_redundant_and_a_diverse_dataset_compared_side_by_side(tmp_path: Path, capsys) -> None:
    originals = stdlib_functions(200)
    redundant = write_dataset(tmp_path / "redundant", rows_of([renamed(originals[index % 20], index)
                                                              for index in range(200)]))
    diverse = write_dataset(tmp_path / "diverse", rows_of(originals))
    assert main(["diversity", "--input", str(redundant), "--compare", str(diverse),
                 "--out", str(tmp_path / "out")]) == 0

    stats = data.read_stats(tmp_path / "out")
    mine, theirs = stats["diversity"], stats["compared"][str(diverse)]
    assert mine["families"]["families"] == 20 and theirs["families"]["families"] > 180  # the stdlib repeats a little
    assert mine["redundancy"]["shape_duplicate_rate"] == 1.0 and theirs["redundancy"]["shape_duplicate_rate"] < 0.2
    for n in ("1", "2", "3", "4"):
        assert mine["redundancy"]["distinct_n"][n] < theirs["redundancy"]["distinct_n"][n]
    assert mine["redundancy"]["compression_ratio"] > theirs["redundancy"]["compression_ratio"]
    said = capsys.readouterr().out
    assert "redundant: 200 rows in 20 families" in said and "diverse: 200 rows in" in said


def test_embeddings_add_the_spread_and_must_be_of_the_same_rows(tmp_path: Path, capsys) -> None:
    texts = distinct_functions(40)
    corpus = write_dataset(tmp_path / "corpus", rows_of(texts))
    groups = np.repeat(np.eye(4, dtype=np.float32), 10, axis=0)  # four orthogonal groups of ten identical rows
    embeddings = tmp_path / "embed"
    data.write_table(embeddings_table([f"r{index}" for index in range(40)], groups), embeddings / data.shard_name(0))
    (embeddings / "embedder.json").write_text(json.dumps({"embedder": "test", "model": "eye", "dimension": 4}))
    data.write_marker(embeddings, {"stage": "embed", "kind": "dataset", "fingerprint": "test-embed"})
    assert main(["diversity", "--input", str(corpus), "--embeddings", str(embeddings), "--cosine", "0.99",
                 "--out", str(tmp_path / "out")]) == 0
    found = data.read_stats(tmp_path / "out")["diversity"]
    assert found["spread"]["vendi_score"] == pytest.approx(4.0, abs=1e-3)
    assert found["families"]["families"] == 4  # identical embeddings join their rows

    other = write_dataset(tmp_path / "other", rows_of(texts, prefix="x"))
    error = refused(capsys, ["diversity", "--input", str(other), "--embeddings", str(embeddings)], tmp_path / "o")
    assert "40 of 40 rows have no embedding" in error and "textbooks embed" in error
    error = refused(capsys, ["diversity", "--input", str(embeddings)], tmp_path / "e")
    assert "missing column(s) text" in error
    error = refused(capsys, ["diversity", "--input", str(corpus), "--threshold", "0"], tmp_path / "t")
    assert "threshold" in error


def test_a_recipe_with_diversity_measures_every_dataset_and_the_report_sets_them_side_by_side(tmp_path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("diversity: true\nstages:\n  - stage: ingest\n    source: stdlib\n    include: ['json/*.py']\n"
                      "    units: [function]\n  - stage: dedup\n  - stage: report\n")
    run_recipe(load_recipe(recipe), tmp_path / "run", say=lambda line: None)
    for step in ("ingest", "dedup"):
        found = json.loads((tmp_path / "run" / step / "diversity.json").read_text())
        assert found["fingerprint"] == data.read_marker(tmp_path / "run" / step)["fingerprint"]
        assert found["rows"] == data.read_stats(tmp_path / "run" / step)["rows_out"]
    said: list[str] = []
    run_recipe(load_recipe(recipe), tmp_path / "run", say=said.append)
    assert not [line for line in said if line.startswith("diversity:")]  # measured once per version
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert "### Diversity through the stages" in markdown and markdown.count("### Diversity\n") == 2
