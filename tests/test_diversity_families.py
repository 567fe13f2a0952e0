"""Families of variations: planted families recovered, exact copies, greedy dedup shares, embedding edges, shapes."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from planted import distinct_functions, stdlib_functions
from planted_families import planted_families
from sklearn.metrics import adjusted_rand_score

from textbooks.corpus.units import parse_python
from textbooks.dedup import lsh
from textbooks.dedup.config import DedupConfig
from textbooks.dedup.stage import DedupStage
from textbooks.diversity import families
from textbooks.diversity.families import (
    Families,
    SignatureBuilder,
    Signatures,
    ast_shape,
    find_families,
    greedy_dedup_removed,
    size_histogram,
)
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import run_step
from textbooks.store import data

MEAN = '''def mean(values, start=0):
    """Average of the values."""
    total = start  # running sum
    for value in values:
        total += value
    return total / len(values)
'''

RENAMED_AND_REFORMATTED = '''def average(numbers,
            first=10):
    # the docstring went, a comment came
    acc = first
    for number in numbers: acc += number

    return acc / len(
        numbers)
'''


@pytest.fixture(scope="module")
def candidates() -> list[str]:
    return stdlib_functions(limit=900)


@pytest.fixture(scope="module")
def originals(candidates) -> list[str]:
    """100 standard-library functions no two of which are near-duplicates or share a shape."""
    return distinct_functions(candidates, 100)


@pytest.fixture(scope="module")
def planted(candidates) -> tuple[list[str], list[int]]:
    return planted_families(candidates)


def test_planted_families_are_recovered(planted):
    texts, truth = planted
    found = find_families(texts)
    score = adjusted_rand_score(truth, found.family)
    planted_histogram = dict(size_histogram(np.bincount(truth)))
    found_histogram = dict(found.summary()["size_histogram"])
    assert 2000 <= len(texts) <= 4000 and len(set(truth)) == 200
    assert score >= 0.9, score
    for bucket, count in planted_histogram.items():
        assert abs(found_histogram[bucket] - count) <= 0.1 * count, (bucket, planted_histogram, found_histogram)
    assert found.edges["near"] > 0 and found.edges["shape"] > 0, found.edges
    assert sum(found.edges.values()) == len(texts) - found.summary()["families"], "each join merges two"


def test_an_exact_copy_is_one_family_per_original(originals):
    texts = originals + originals
    found = find_families(texts)
    summary = found.summary()
    assert summary["share_in_families"] == 1.0
    assert summary["families"] == len(originals) and summary["singletons"] == 0
    assert found.family[:len(originals)].tolist() == list(range(len(originals))), "numbered by first row"
    assert np.array_equal(found.family[:len(originals)], found.family[len(originals):])
    assert found.edges == {"exact": len(originals), "near": 0, "shape": 0, "embedding": 0}
    assert greedy_dedup_removed(texts) == {"0.5": 0.5, "0.7": 0.5, "0.9": 0.5}


def test_greedy_removal_drops_all_but_one_of_each_repeated_row(originals):
    repeats = 3
    texts = [text for text in originals for _ in range(repeats)]
    random.Random(0).shuffle(texts)
    for share in greedy_dedup_removed(texts).values():
        assert share == pytest.approx((repeats - 1) / repeats, abs=0.01)
    assert all(share <= 0.01 for share in greedy_dedup_removed(originals).values())


def test_greedy_removal_is_what_the_dedup_step_drops(planted, tmp_path):
    texts = planted[0][:600]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "rows.jsonl").write_text("".join(json.dumps({"id": str(row), "text": text}) + "\n"
                                               for row, text in enumerate(texts)))
    run_step(DedupStage(DedupConfig(threshold=0.7), str(corpus)), tmp_path / "out",
             executor=make_executor("local", 1), say=lambda _: None)
    dropped = data.read_dataset(tmp_path / "out" / data.DROPPED).num_rows
    assert greedy_dedup_removed(texts, thresholds=(0.7,)) == {"0.7": dropped / len(texts)}


def test_equal_embeddings_join_rows_only_when_embedding_edges_are_asked_for(originals):
    texts = originals[:20]
    vectors = np.random.default_rng(0).normal(size=(20, 16))
    vectors[7] = vectors[3]
    joined = find_families(texts, embeddings=vectors)
    assert joined.family[3] == joined.family[7] and joined.summary()["families"] == 19
    assert joined.edges["embedding"] == 1
    apart = find_families(texts, embeddings=vectors, kinds=("exact", "near", "shape"))
    assert apart.summary()["families"] == 20 and "embedding" not in apart.edges


def test_embedding_blocks_join_what_all_pairs_would(monkeypatch):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, 8))[rng.integers(0, 30, size=200)] + 0.1 * rng.normal(size=(200, 8))
    vectors[5] = 0.0
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)
    earlier, later = np.nonzero(np.triu(unit @ unit.T >= 0.95, k=1))
    expected = np.unique(lsh.cluster_roots(np.arange(200), np.stack([earlier, later], axis=1)),
                         return_inverse=True)[1]
    monkeypatch.setattr(families, "_BLOCK_SIMILARITIES", 7 * 200)  # blocks of 7 rows
    found = find_families([""] * 200, embeddings=vectors, kinds=("embedding",))
    assert found.family.tolist() == expected.reshape(-1).tolist()
    assert 30 <= found.summary()["families"] < 60
    assert np.count_nonzero(found.family == found.family[5]) == 1, "a zero vector is similar to nothing"


def test_ast_shape_ignores_names_literals_comments_docstrings_layout_and_order():
    shape = ast_shape(MEAN)
    assert shape is not None and ast_shape(RENAMED_AND_REFORMATTED) == shape
    assert ast_shape(MEAN.replace("total += value", "total -= value")) != shape, "an operator is structure"
    assert ast_shape(MEAN.replace("    return", "    values = list(values)\n    return")) != shape
    assert ast_shape(MEAN.replace("start=0", "start=''")) != shape, "a literal's type is structure"
    assert ast_shape("low = 0\nhigh = len(items)\n") == ast_shape("high = len(items)\nlow = 0\n"), "a block's order"
    assert ast_shape("items.append(x, key=k)") == ast_shape("out.extend(y, reverse=r)"), "every name is erased"
    assert ast_shape("items.append(x, key=k)") != ast_shape("items.append(x, **k)")
    assert ast_shape("This is prose, isn't it?") is None


def test_tiny_trees_get_no_shape_edges_unless_asked():
    texts = ["def is_space(ch):\n    return ch in SPACES\n", "def known(name):\n    return name in REGISTRY\n"]
    assert ast_shape(texts[0]) == ast_shape(texts[1])
    assert find_families(texts).summary()["families"] == 2, "a one-line body is no evidence of a variation"
    assert find_families(texts, min_shape_nodes=1).edges["shape"] == 1


def test_summary_counts_sizes_buckets_and_the_largest():
    family = np.array([0, 1, 0, 2, 2, 2] + [3] * 70)
    summary = Families(family, {"exact": 72}).summary(largest=2)
    assert summary["rows"] == 76 and summary["families"] == 4 and summary["singletons"] == 1
    assert summary["share_in_families"] == pytest.approx(75 / 76)
    assert summary["size_percentiles"] == {"50": 2.5, "90": pytest.approx(49.9), "99": pytest.approx(67.99),
                                           "max": 70}
    assert summary["size_histogram"] == [["1", 1], ["2", 1], ["3-4", 1], ["5-8", 0], ["9-16", 0], ["17-32", 0],
                                         ["33-64", 0], ["65+", 1]]
    assert summary["largest"] == [[3, 70], [2, 3]]
    json.dumps(summary)


def test_signatures_are_reused_and_must_match(originals):
    texts = originals[:30] * 2
    signatures = Signatures.of(texts)
    assert find_families(texts, signatures=signatures).family.tolist() == find_families(texts).family.tolist()
    assert greedy_dedup_removed(texts, signatures=signatures) == greedy_dedup_removed(texts)
    with pytest.raises(ValueError, match=r"made for 60 rows with ngram=5, .* used for 30 rows"):
        find_families(texts[:30], signatures=signatures)
    with pytest.raises(ValueError, match=r"num_perm=64"):
        greedy_dedup_removed(texts, num_perm=64, signatures=signatures)


def test_signatures_made_part_by_part_are_those_of_all_rows_and_stand_in_for_the_texts(originals):
    texts = originals[:40] + [MEAN, RENAMED_AND_REFORMATTED] + originals[10:30] + [""]  # copies across parts
    builder = SignatureBuilder()
    bounds = [0, 7, 7, 30, 51, len(texts)]  # uneven parts, one of them empty
    for start, end in zip(bounds, bounds[1:]):
        builder.add(texts[start:end])
    parted, whole = builder.build(), Signatures.of(texts)
    for field in ("shingles", "offsets", "minhash", "first_copy"):
        assert np.array_equal(getattr(parted, field), getattr(whole, field)), field
    assert len(builder.build()) == 0, "build hands every part over"

    shapes = [families.tree_shape(tree) if tree is not None else None for tree in map(parse_python, texts)]
    streamed, found = find_families(signatures=parted, shapes=shapes), find_families(texts)
    assert streamed.family.tolist() == found.family.tolist() and streamed.edges == found.edges
    assert found.edges["exact"] == 20 and found.edges["shape"] >= 1
    assert greedy_dedup_removed(signatures=parted) == greedy_dedup_removed(texts)
    with pytest.raises(ValueError, match="neither texts nor their shapes were given"):
        find_families(signatures=parted)
    with pytest.raises(ValueError, match="neither texts nor their signatures were given"):
        greedy_dedup_removed()
    with pytest.raises(ValueError, match=r"different numbers of rows \({'signatures': 63, 'shapes': 62}\)"):
        find_families(signatures=parted, shapes=shapes[:-1])


def test_bad_settings_and_empty_datasets():
    with pytest.raises(ValueError, match=r"unknown edge kinds \['ast'\]: choose from"):
        find_families(["x = 1"], kinds=("exact", "ast"))
    with pytest.raises(ValueError, match="threshold 1.5 is not a Jaccard similarity"):
        greedy_dedup_removed(["x = 1"], thresholds=(1.5,))
    with pytest.raises(ValueError, match=r"embeddings have shape \(3, 4\); .* \(2, dimensions\)"):
        find_families(["x = 1", "y = 2"], embeddings=np.zeros((3, 4)))
    empty = find_families([], embeddings=np.zeros((0, 4)))
    assert empty.summary()["rows"] == 0 and empty.summary()["families"] == 0
    assert greedy_dedup_removed([]) == {"0.5": 0.0, "0.7": 0.0, "0.9": 0.0}
