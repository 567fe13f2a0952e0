"""The diversity measures on inputs whose answers are known: hand-computed values, orthogonal groups of copies,
separated blobs, long-distance copies, and a redundant and a diverse dataset that every measure must rank."""

from __future__ import annotations

import math
import random
import re
import sysconfig
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from textbooks.corpus.units import parse_python
from textbooks.diversity import measures, spread
from textbooks.diversity.measures import (
    Compression,
    DistinctN,
    balance,
    compression_ratio,
    distinct_n,
    imported_libraries,
)
from textbooks.diversity.spread import cluster_entropy, nearest_neighbour_distance, vendi_score, vendi_score_direct


def _entropy(sizes: list[int], base: float = math.e) -> float:
    total = sum(sizes)
    return -sum(size / total * math.log(size / total, base) for size in sizes)


def _orthogonal_groups(sizes: list[int], width: int = 16, seed: int = 0) -> np.ndarray:
    """Group i: `sizes[i]` copies of one direction (at random lengths), all directions orthogonal, rotated."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(width, width)))
    rows = np.concatenate([np.repeat(rotation[[group]], size, axis=0) for group, size in enumerate(sizes)])
    return rows * rng.uniform(0.5, 3.0, size=(len(rows), 1))


# --- Vendi score --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes", [[3], [4, 4], [1, 1, 1], [5, 5, 5, 5, 5], [2] * 8, [1, 2, 7], [5, 1, 1, 3, 10]])
def test_vendi_of_orthogonal_groups_is_exp_entropy_of_their_shares(sizes: list[int]) -> None:
    embeddings = _orthogonal_groups(sizes)
    expected = math.exp(_entropy(sizes))
    if len(set(sizes)) == 1:
        assert expected == pytest.approx(len(sizes), abs=1e-12)
    assert vendi_score(embeddings) == pytest.approx(expected, abs=1e-6)
    assert vendi_score_direct(embeddings) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("rows, width", [(2, 3), (5, 3), (20, 8), (30, 50), (64, 16)])
def test_vendi_dual_form_equals_the_kernel_form(rows: int, width: int) -> None:
    embeddings = np.random.default_rng(rows * width).normal(size=(rows, width))
    assert vendi_score(embeddings) == pytest.approx(vendi_score_direct(embeddings), abs=1e-6)


def test_vendi_reads_float16_and_leaves_out_zero_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = np.random.default_rng(1).normal(size=(40, 12)).astype(np.float16)
    score = vendi_score(embeddings)
    assert score == pytest.approx(vendi_score_direct(embeddings.astype(np.float64)), abs=1e-6)
    assert score == pytest.approx(vendi_score(embeddings.astype(np.float32)), abs=1e-6)
    assert vendi_score(np.eye(4, dtype=np.float16)) == pytest.approx(4.0, abs=1e-6)
    with_zeros = np.insert(embeddings, [0, 7, 40], 0.0, axis=0)
    assert vendi_score(with_zeros) == pytest.approx(score, abs=1e-9)
    assert vendi_score_direct(with_zeros) == pytest.approx(score, abs=1e-6)
    monkeypatch.setattr(spread, "_CHUNK_ROWS", 7)  # the dual form summed over many chunks
    assert vendi_score(with_zeros) == pytest.approx(score, abs=1e-9)
    assert vendi_score(np.zeros((3, 4))) == vendi_score_direct(np.zeros((0, 4))) == 0.0


def test_embedding_measures_name_a_bad_shape() -> None:
    for measure in (vendi_score, vendi_score_direct, cluster_entropy, nearest_neighbour_distance):
        with pytest.raises(ValueError, match=r"2-D array .* got shape \(5,\)"):
            measure(np.ones(5))


# --- cluster entropy ----------------------------------------------------------------------------------------

def _blobs(sizes: list[int], width: int = 8, noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """Blob i: `sizes[i]` points around the i-th axis direction, shuffled together."""
    rng = np.random.default_rng(seed)
    centres = np.concatenate([np.repeat(np.eye(width)[[blob]], size, axis=0) for blob, size in enumerate(sizes)])
    return rng.permutation(centres + rng.normal(scale=noise, size=centres.shape))


def test_four_equal_blobs_make_four_effective_clusters() -> None:
    found = cluster_entropy(_blobs([100] * 4), clusters=4)
    assert found["clusters"] == 4
    assert found["entropy_bits"] == pytest.approx(2.0, abs=1e-9)
    assert found["effective_clusters"] == pytest.approx(4.0, abs=1e-9)
    assert found["largest_share"] == 0.25
    assert cluster_entropy(_blobs([100] * 4), clusters=4, sample=40) == found  # fit on 40, all 400 assigned


def test_one_dominant_blob_has_fewer_effective_clusters_than_equal_blobs() -> None:
    sizes = [250, 50, 50, 50]
    uneven = cluster_entropy(_blobs(sizes), clusters=4)
    assert uneven["entropy_bits"] == pytest.approx(_entropy(sizes, 2), abs=1e-9)
    assert uneven["largest_share"] == 0.625
    dominant = cluster_entropy(_blobs([970, 10, 10, 10]), clusters=4)
    equal = cluster_entropy(_blobs([250] * 4), clusters=4)
    assert dominant["effective_clusters"] == pytest.approx(2 ** _entropy([970, 10, 10, 10], 2), abs=1e-9)
    assert dominant["effective_clusters"] < 1.2 and equal["effective_clusters"] == pytest.approx(4.0, abs=1e-9)


def test_copies_of_one_row_are_one_cluster_and_one_blob_has_a_vendi_score_of_about_one() -> None:
    copies = np.tile(np.arange(1.0, 9.0), (300, 1)) * np.arange(1, 301)[:, None]  # one direction, 300 lengths
    assert cluster_entropy(copies, clusters=50) == {"clusters": 1, "entropy_bits": 0.0, "effective_clusters": 1.0,
                                                    "largest_share": 1.0}
    assert cluster_entropy(np.zeros((5, 3))) == {"clusters": 0, "entropy_bits": 0.0, "effective_clusters": 0.0,
                                                 "largest_share": None}
    # k-means splits even one tight blob into k clusters: cluster entropy is balance; spread is the Vendi score's
    assert vendi_score(_blobs([400])) < 1.05
    assert vendi_score(_blobs([100] * 4)) == pytest.approx(4.0, rel=0.05)


# --- nearest-neighbour distance -----------------------------------------------------------------------------

def test_nearest_neighbour_distance_of_copies_is_zero_and_of_orthogonal_rows_is_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rows = np.random.default_rng(2).normal(size=(50, 8))
    assert nearest_neighbour_distance(np.concatenate([rows, rows * 3.0])) == pytest.approx(0.0, abs=1e-12)
    assert nearest_neighbour_distance(np.eye(10)) == pytest.approx(1.0, abs=1e-12)
    assert nearest_neighbour_distance(np.eye(10), sample=3) == pytest.approx(1.0, abs=1e-12)
    mixed = np.concatenate([np.eye(4), np.eye(4)[[0]], np.zeros((2, 4))]).astype(np.float16)
    expected = (0 + 1 + 1 + 1 + 0) / 5  # e0 and its copy are 0 apart, e1..e3 are 1 from all; zero rows left out
    assert nearest_neighbour_distance(mixed) == pytest.approx(expected, abs=1e-12)
    monkeypatch.setattr(spread, "_CHUNK_ROWS", 2)  # a row's own position masked in whichever chunk holds it
    assert nearest_neighbour_distance(mixed) == pytest.approx(expected, abs=1e-12)
    assert nearest_neighbour_distance(np.eye(3)[[0]]) is None
    assert nearest_neighbour_distance(np.zeros((4, 3))) is None


# --- distinct-n -------------------------------------------------------------------------------------------

def test_distinct_n_by_hand() -> None:
    assert distinct_n(["a b a b"]) == {1: 2 / 4, 2: 2 / 3, 3: 2 / 2, 4: 1 / 1}  # not Python: plain tokens
    assert distinct_n(["x = 1\ny = 1"]) == {1: 4 / 6, 2: 4 / 5, 3: 4 / 4, 4: 3 / 3}  # x = 1 y = 1
    assert distinct_n(["a b", "a b"], ns=(1, 2)) == {1: 2 / 4, 2: 1 / 2}  # no n-gram spans two rows ("b a")
    renamed = ["def f(x):\n    return x + 1\n", "def f(y):\n    # add one\n    return  y+1\n"]
    # dedup's tokens ignore local names, layout and comments: def f ( x ) : return x + 1, twice
    assert distinct_n(renamed) == {1: 9 / 20, 2: 9 / 18, 3: 8 / 16, 4: 7 / 14}
    assert distinct_n(["a"], ns=(2,)) == {2: 0.0}
    assert distinct_n([]) == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
    with pytest.raises(ValueError, match="positive integers"):
        distinct_n(["a"], ns=(0, 2))


def test_distinct_n_of_a_text_copied_100_times_is_a_hundredth_of_one_copy() -> None:
    text = Path(measures.__file__).read_text()
    one = distinct_n([text])
    hundred = distinct_n([text] * 100)
    assert all(0 < one[n] <= 1 for n in one)
    assert hundred == {n: pytest.approx(one[n] / 100, rel=1e-12) for n in one}


def test_distinct_n_fed_in_pieces_equals_one_shot(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _exercises()[:60] + _stdlib_functions(60)
    expected = distinct_n(texts, ns=(1, 2, 5))
    monkeypatch.setattr(measures, "_BATCH_ROWS", 7)
    monkeypatch.setattr(measures, "_MERGE_AT", 50)  # many merges of the pending hashes
    counter = DistinctN(ns=(1, 2, 5))
    for start in range(0, len(texts), 25):
        counter.update(iter(texts[start:start + 25]))
        assert counter.result()  # a look in between changes nothing
    assert counter.result() == expected


# --- compression -------------------------------------------------------------------------------------------

def _random_code_row(rng: random.Random, index: int, lines: int = 120) -> str:
    """About 5 KB of assignments with random names and numbers: little for zstd to find inside one row."""
    body = "\n".join(f"    v{rng.randrange(10**6)} = w{rng.randrange(10**6)} * {rng.randrange(10**9)} + "
                     f"{rng.random():.6f}" for _ in range(lines))
    return f"def row_{index}(w):\n{body}\n    return w\n"


def test_long_window_finds_rows_repeated_far_apart() -> None:
    rng = random.Random(0)
    distinct = [_random_code_row(rng, index) for index in range(200)]
    repeated = distinct[:20] * 10  # each of 20 rows 10 times, a copy every 20 rows
    assert sum(len(row) + 1 for row in distinct[1:20]) > 64 * 1024  # bytes between two copies of a row
    long_distinct, long_repeated = compression_ratio(distinct), compression_ratio(repeated)
    short_distinct, short_repeated = (compression_ratio(distinct, window_log=15),
                                      compression_ratio(repeated, window_log=15))
    assert long_repeated > 5 * long_distinct  # measured: 25.3 vs 2.47 (10.2x)
    assert short_repeated < 1.2 * short_distinct  # measured: 2.61 vs 2.61: a 32 KB window sees no copy
    assert long_repeated > 5 * short_repeated
    assert short_distinct == pytest.approx(long_distinct, rel=0.1)


def test_compression_fed_in_pieces_equals_one_shot() -> None:
    texts = _exercises()[:100]
    compression = Compression()
    for start in range(0, len(texts), 30):
        compression.update(texts[start:start + 30])
    assert compression.result() == compression_ratio(texts) == compression.result()
    with pytest.raises(RuntimeError, match="after result"):
        compression.update(["more"])
    assert compression_ratio([]) == compression_ratio([""]) == 1.0
    with pytest.raises(ValueError, match="window_log"):
        Compression(window_log=40)


# --- libraries and balance ----------------------------------------------------------------------------------

def test_imported_libraries_counts_each_top_level_module_once_per_row() -> None:
    rows = [
        "from __future__ import annotations\nimport os\nimport numpy as np\nfrom collections import Counter\n"
        "import os.path\n",
        "from . import sibling\nfrom .pkg.mod import x\nimport json\n\ndef f():\n    import re\n    return re\n",
        "import sys, typing as t\nfrom xml.dom import minidom\nfrom .rel import y\nimport os  # why\ndef broken(:\n",
        "x = 1\n",
    ]
    assert parse_python(rows[2]) is None  # read by the line fallback
    assert imported_libraries(rows) == Counter({"os": 2, "numpy": 1, "collections": 1, "json": 1, "re": 1,
                                                "sys": 1, "typing": 1, "xml": 1})
    assert imported_libraries([]) == Counter()


def test_balance_by_hand() -> None:
    found = balance({"numpy": 6, "re": 2, "os": 2, "unused": 0}, top=2)
    entropy = -(0.6 * math.log2(0.6) + 2 * 0.2 * math.log2(0.2))
    assert found == {"distinct": 3, "total": 10, "entropy_bits": pytest.approx(entropy, abs=1e-12),
                     "normalized_entropy": pytest.approx(entropy / math.log2(3), abs=1e-12),
                     "largest_share": 0.6, "top": [["numpy", 6], ["os", 2]]}
    assert balance({"a": 1, "b": 1, "c": 1, "d": 1})["entropy_bits"] == pytest.approx(2.0, abs=1e-12)
    assert balance({"a": 1, "b": 1, "c": 1, "d": 1})["normalized_entropy"] == pytest.approx(1.0, abs=1e-12)
    assert balance({"a": 5}) == {"distinct": 1, "total": 5, "entropy_bits": 0.0, "normalized_entropy": 1.0,
                                 "largest_share": 1.0, "top": [["a", 5]]}
    assert balance({}) == {"distinct": 0, "total": 0, "entropy_bits": 0.0, "normalized_entropy": 1.0,
                           "largest_share": None, "top": []}
    with pytest.raises(ValueError, match="negative"):
        balance({"a": 1, "b": -1})


def test_balance_is_the_same_to_the_last_bit_whatever_order_the_counts_came_in() -> None:
    rng = random.Random(0)
    counts = {f"module{index}": rng.randint(1, 1000) for index in range(100)}
    shuffled = list(counts.items())
    rng.shuffle(shuffled)  # as a Counter filled from sets is, under another PYTHONHASHSEED
    assert balance(dict(shuffled)) == balance(counts)


# --- a redundant and a diverse dataset ----------------------------------------------------------------------

# 20 short exercises: (name, what it returns, body with the local names {a} {b} {c} and the docstring {doc})
_EXERCISE_BODIES = [
    ("sum_of_squares", "the sum of the squares of the numbers",
     "{b} = 0\n    for {c} in {a}:\n        {b} += {c} * {c}\n    return {b}"),
    ("count_vowels", "how many vowels the text has",
     "{b} = 0\n    for {c} in {a}.lower():\n        if {c} in 'aeiou':\n            {b} += 1\n    return {b}"),
    ("reverse_words", "the words of the sentence in reverse order",
     "{b} = {a}.split()\n    return ' '.join(reversed({b}))"),
    ("is_palindrome", "whether the text reads the same backwards",
     "{b} = [{c}.lower() for {c} in {a} if {c}.isalnum()]\n    return {b} == {b}[::-1]"),
    ("factorial", "the factorial of the number",
     "{b} = 1\n    for {c} in range(2, {a} + 1):\n        {b} *= {c}\n    return {b}"),
    ("fibonacci", "the n-th Fibonacci number",
     "{b}, {c} = 0, 1\n    for _ in range({a}):\n        {b}, {c} = {c}, {b} + {c}\n    return {b}"),
    ("maximum", "the largest element of the list",
     "{b} = {a}[0]\n    for {c} in {a}[1:]:\n        if {c} > {b}:\n            {b} = {c}\n    return {b}"),
    ("flatten", "one flat list of the items of the nested lists",
     "{b} = []\n    for {c} in {a}:\n        {b}.extend({c})\n    return {b}"),
    ("char_frequency", "how often each character occurs",
     "{b} = {{}}\n    for {c} in {a}:\n        {b}[{c}] = {b}.get({c}, 0) + 1\n    return {b}"),
    ("is_prime", "whether the number is prime",
     "if {a} < 2:\n        return False\n    for {b} in range(2, int({a} ** 0.5) + 1):\n"
     "        if {a} % {b} == 0:\n            return False\n    return True"),
    ("gcd", "the greatest common divisor of the two numbers",
     "{b} = abs({a}[0])\n    for {c} in {a}[1:]:\n        while {c}:\n            {b}, {c} = {c}, {b} % {c}\n"
     "    return {b}"),
    ("celsius_to_fahrenheit", "the temperature in degrees Fahrenheit", "{b} = {a} * 9 / 5\n    return {b} + 32"),
    ("unique_items", "the items without repeats, in order",
     "{b} = []\n    for {c} in {a}:\n        if {c} not in {b}:\n            {b}.append({c})\n    return {b}"),
    ("average", "the mean of the numbers",
     "if not {a}:\n        return 0.0\n    return sum({a}) / len({a})"),
    ("capitalize_words", "the text with every word capitalized",
     "return ' '.join({b}.capitalize() for {b} in {a}.split())"),
    ("running_total", "the running totals of the numbers",
     "{b} = []\n    {c} = 0\n    for value in {a}:\n        {c} += value\n        {b}.append({c})\n    return {b}"),
    ("transpose", "the transposed matrix", "return [list({b}) for {b} in zip(*{a})]"),
    ("count_words", "how many words the text has", "{b} = {a}.split()\n    return len({b})"),
    ("second_largest", "the second largest distinct number",
     "{b} = sorted(set({a}))\n    return {b}[-2] if len({b}) > 1 else None"),
    ("chunk_list", "the list cut into pieces of three",
     "return [{a}[{b}:{b} + 3] for {b} in range(0, len({a}), 3)]"),
]
_NAME_FORMS = ["{}", "compute_{}", "get_{}", "{}_solution", "my_{}"]
_DOC_FORMS = ["Return {}.", "Compute and return {}.", "This function returns {}.", "Given the input, give back {}."]
_LOCAL_NAMES = [("x", "y", "z"), ("values", "total", "item"), ("data", "acc", "element"), ("seq", "result", "cur")]


def _exercises() -> list[str]:
    """400 rows: each of the 20 exercises 20 times, renamed (function and locals) and its docstring re-phrased."""
    rows = []
    for variant in range(20):
        a, b, c = _LOCAL_NAMES[variant % len(_LOCAL_NAMES)]
        for name, what, body in _EXERCISE_BODIES:
            doc = _DOC_FORMS[variant // len(_NAME_FORMS)].format(what)
            header = f"def {_NAME_FORMS[variant % len(_NAME_FORMS)].format(name)}({a}):\n    \"\"\"{doc}\"\"\"\n    "
            rows.append(header + body.format(a=a, b=b, c=c) + "\n")
    return rows


# a top-level `def` line and every line after it up to the next one that starts at column 0
_TOP_LEVEL_FUNCTION = re.compile(r"^def \w+\(.*(?:\n(?:[ \t]+\S.*|[ \t]*))*", re.MULTILINE)


def _stdlib_functions(count: int = 400, per_file: int = 2, lines: range = range(4, 13)) -> list[str]:
    """`count` short top-level functions of the running interpreter's standard library, a few per file.

    Cut with a regex (a tenth of the time of parsing whole modules); a cut that does not parse is passed over.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if "site-packages" in parts or any("test" in part for part in parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        functions = (match.group(0).rstrip() + "\n" for match in _TOP_LEVEL_FUNCTION.finditer(text))
        found += list(islice((code for code in functions if code.count("\n") in lines and parse_python(code)),
                             per_file))
        if len(found) >= count:
            return found[:count]
    raise AssertionError(f"the standard library gave only {len(found)} short functions")


def test_every_text_measure_ranks_a_redundant_dataset_below_a_diverse_one() -> None:
    redundant, diverse = _exercises(), _stdlib_functions()
    assert len(redundant) == len(diverse) == 400 and len(set(redundant)) == 400
    redundant_n, diverse_n = distinct_n(redundant), distinct_n(diverse)
    for n in (1, 2, 3, 4):  # measured on Python 3.11: diverse / redundant = 4.2, 4.8, 6.0, 6.7
        assert diverse_n[n] > 3 * redundant_n[n], n
    assert compression_ratio(redundant) > 2 * compression_ratio(diverse)  # measured: 10.8 vs 3.9 (2.8x)
