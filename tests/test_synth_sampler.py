"""The synth sampler: the shipped taxonomy, reproducible and even draws, function names, coverage, bad input."""

from __future__ import annotations

import builtins
import keyword
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from textbooks.errors import UserError
from textbooks.synth.sampler import (
    AUDIENCES,
    BUILT_IN,
    DIFFICULTIES,
    LEVELS,
    STYLES,
    WORDS,
    NameSampler,
    Params,
    Sampler,
    Taxonomy,
    Topic,
    coverage,
)
from textbooks.synth.words import OBJECTS, QUALIFIERS, VERBS

DRAWS = 20_000


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load()


@pytest.fixture(scope="module")
def drawn(taxonomy: Taxonomy) -> list[Params]:
    return Sampler(taxonomy, seed=3).many(DRAWS)


def small_taxonomy() -> Taxonomy:
    return Taxonomy([Topic(("A", "x")), Topic(("A", "y")), Topic(("B", "z")), Topic(("B", "w"))], "small")


def load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        Taxonomy.load(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_shipped_taxonomy(taxonomy):
    labels = [topic.label for topic in taxonomy.leaves]
    assert taxonomy.source == BUILT_IN
    assert 350 <= len(labels) <= 450
    assert len(set(labels)) == len(labels)
    assert len({topic.name for topic in taxonomy.leaves}) == len(labels)  # the file asks for unique leaf names
    assert {len(topic.path) for topic in taxonomy.leaves} == {2, 3}
    first = taxonomy.leaves[0]
    assert first.path == ("Python basics", "Values and names", "assigning names to values")
    assert first.name == "assigning names to values"
    assert first.label == "Python basics > Values and names > assigning names to values"


def test_a_taxonomy_file_loads_in_file_order(tmp_path):
    path = tmp_path / "topics.yaml"
    path.write_text("Zoo:\n  Cats: [lion, ' tiger ']\n  Birds:\n    - owl\nAlgebra:\n  - '42'\n")
    loaded = Taxonomy.load(path)
    assert loaded.source == str(path)
    assert [topic.label for topic in loaded.leaves] == ["Zoo > Cats > lion", "Zoo > Cats > tiger",
                                                        "Zoo > Birds > owl", "Algebra > 42"]


@pytest.mark.parametrize("text, expected", [
    ("A:\n  - [b\n", "not valid YAML"),
    ("A:\n  B:\n    - fine\n    - 42\n", ":4: under 'A > B': '42' (read as int) is not a topic name"),
    ("", "no topics"),
    ("# only a comment\n", "no topics"),
    ("A:\n  - x\n  - x\n", ":3: under 'A': the topic 'x' appears twice"),
    ("A:\n  - x\nA:\n  - y\n", ":3: at the top level: the topic 'A' appears twice"),
    ("- x\n- y\n", "the top level is a list"),
    ("A:\n  B: []\n", "under 'A > B': no topics"),
    ("A:\n  B: just text\n", "under 'A > B': 'just text' (read as str); expected a mapping of subtopics"),
    ("A:\n  - ''\n", "under 'A': an empty topic name"),
    ("A:\n  -\n", "under 'A': '' (read as null) is not a topic name"),
    ("A:\n  - {b: c}\n", "under 'A': a mapping is not a topic name"),
    ("A: &loop\n  B: *loop\n", "under 'A > B': an alias of a topic that contains it"),
])
def test_bad_taxonomy_files_name_the_file_the_place_and_the_problem(tmp_path, text, expected):
    assert expected in load_error(tmp_path, text)


def test_missing_taxonomy_file(tmp_path):
    with pytest.raises(UserError, match=r"nowhere\.yaml: no such taxonomy file"):
        Taxonomy.load(tmp_path / "nowhere.yaml")


def test_params_are_a_pure_function_of_seed_and_index(taxonomy):
    indices = [5, 0, 9_999, 3, 444, 443, 5, 2_000_000]
    first = Sampler(taxonomy, seed=11)
    second = Sampler(taxonomy, seed=11)
    in_order = {index: first.params(index) for index in sorted(indices)}
    assert [second.params(index) for index in indices] == [in_order[index] for index in indices]
    assert first.many(20, start=430) == [second.params(index) for index in reversed(range(430, 450))][::-1]
    other = Sampler(taxonomy, seed=12).many(100)
    mine = first.many(100)
    assert sum(a.function_name != b.function_name for a, b in zip(mine, other)) >= 95
    assert sum(a.topic != b.topic for a, b in zip(mine, other)) >= 90


def test_draws_are_pinned():
    """The draws come from blake2b, not random.Random: these values hold on every Python version, so rows made
    by an older run or another worker agree with new ones."""
    params = Sampler(small_taxonomy(), seed=0).params(7)
    assert params == Params(index=7, topic=params.topic, audience="career-changer", level="intermediate",
                            style="a definition, then examples from simple to subtle", difficulty="hard",
                            words=("envelope", "courier"), function_name="extract_measurements_in_range")
    assert params.as_row() == {"topic": params.topic, "audience": "career-changer", "level": "intermediate",
                               "style": "a definition, then examples from simple to subtle", "difficulty": "hard",
                               "words": ["envelope", "courier"], "function_name": "extract_measurements_in_range",
                               "sample_index": 7}


def test_every_round_of_indices_deals_each_leaf_once(taxonomy, drawn):
    leaves = len(taxonomy.leaves)
    for start in (0, 7 * leaves):
        assert {params.topic for params in drawn[start:start + leaves]} == {topic.label for topic in taxonomy.leaves}
    counts = Counter(params.topic for params in drawn)
    assert set(counts.values()) == {DRAWS // leaves, DRAWS // leaves + 1}


@pytest.mark.parametrize("field, options, tolerance", [
    ("audience", tuple(AUDIENCES), 0.1), ("level", LEVELS, 0.05), ("style", STYLES, 0.1),
    ("difficulty", DIFFICULTIES, 0.05),
])
def test_choices_are_close_to_uniform(drawn, field, options, tolerance):
    counts = Counter(getattr(params, field) for params in drawn)
    assert set(counts) == set(options)
    expected = DRAWS / len(options)
    assert all(abs(count - expected) < tolerance * expected for count in counts.values()), counts


def test_constraint_words(drawn):
    assert len(WORDS) >= 250 and len(set(WORDS)) == len(WORDS)
    assert all(len(params.words) == 2 and params.words[0] != params.words[1] for params in drawn)
    counts = Counter(word for params in drawn for word in params.words)
    expected = 2 * DRAWS / len(WORDS)
    assert set(counts) == set(WORDS)
    assert 0.5 * expected < min(counts.values()) and max(counts.values()) < 1.5 * expected


def test_chosen_subsets_and_word_counts(taxonomy):
    sampler = Sampler(taxonomy, audiences=["teacher", "beginner"], levels="advanced", styles=[STYLES[2]],
                      words_per_sample=0)
    rows = sampler.many(200)
    assert {params.audience for params in rows} == {"teacher", "beginner"}
    assert {(params.level, params.style, params.words) for params in rows} == {("advanced", STYLES[2], ())}


@pytest.mark.parametrize("settings, expected", [
    ({"audiences": ["beginner", "astronaut"]}, "unknown audience 'astronaut'; choose from: 'beginner', "
                                               "'high-school', 'undergraduate'"),
    ({"levels": ["expert"]}, "unknown level 'expert'; choose from: 'introductory', 'intermediate', 'advanced'"),
    ({"styles": ["a poem"]}, "unknown style 'a poem'; choose from: 'a worked example first"),
    ({"audiences": []}, "no audience chosen; choose from: 'beginner'"),
    ({"words_per_sample": -1}, "words_per_sample is -1; choose from 0 to"),
])
def test_bad_sampler_settings(taxonomy, settings, expected):
    with pytest.raises(UserError) as caught:
        Sampler(taxonomy, **settings)
    assert expected in str(caught.value)


def test_function_names():
    names = NameSampler(seed=5)
    assert names.size() == len(VERBS) * len(OBJECTS) * len(QUALIFIERS) >= 100_000
    # Verbs and objects are single words, so every verb_object[_qualifier] spells a different name.
    assert all(re.fullmatch(r"[a-z]+", part) for part in VERBS + OBJECTS)
    assert len(set(VERBS)) == len(VERBS) and len(set(OBJECTS)) == len(OBJECTS)
    assert len(set(QUALIFIERS)) == len(QUALIFIERS)
    drawn = [names.name(index) for index in range(10_000)]
    assert len(set(drawn)) == len(drawn)  # a permutation: no repeats below size()
    for name in drawn:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", name) and name.isidentifier(), name
        assert not keyword.iskeyword(name) and not hasattr(builtins, name), name
    assert NameSampler(seed=5).name(1234) == names.name(1234)
    assert names.name(1234 + names.size()) == names.name(1234)
    other = NameSampler(seed=6)
    assert sum(names.name(index) != other.name(index) for index in range(1000)) >= 990
    assert len({name.split("_")[0] for name in drawn[:1000]}) == len(VERBS)  # consecutive indices mix verbs


def test_coverage_of_hand_made_rows():
    rows = [
        {"topic": "A > x", "audience": "beginner", "level": "introductory", "function_name": "f_a"},
        {"topic": "A > x", "audience": "beginner", "level": "introductory", "function_name": "f_a"},
        {"topic": "A > y", "audience": "teacher", "level": "introductory", "function_name": "f_b"},
        {"topic": "B > z", "audience": "teacher", "level": "introductory", "function_name": "f_c"},
    ]
    report = coverage(rows, small_taxonomy())
    assert report == {
        "topics": {"distinct": 3, "rows": 4, "entropy_bits": 1.5, "normalized_entropy": 0.75,
                   "top": [["A > x", 2], ["A > y", 1], ["B > z", 1]], "of": 4, "share": 0.75, "outside": 0},
        "audiences": {"distinct": 2, "rows": 4, "entropy_bits": 1.0, "normalized_entropy": 1.0,
                      "top": [["beginner", 2], ["teacher", 2]]},
        "levels": {"distinct": 1, "rows": 4, "entropy_bits": 0.0, "normalized_entropy": 1.0,
                   "top": [["introductory", 4]]},
        "names": {"distinct": 3, "rows": 4, "repeated": 1},
    }
    without = coverage(rows + [{"topic": "C > q"}])
    assert without["topics"]["normalized_entropy"] == pytest.approx(
        (3 * 0.2 * math.log2(5) + 0.4 * math.log2(2.5)) / 2)
    assert "of" not in without["topics"] and without["names"]["rows"] == 4
    assert coverage(rows + [{"topic": "C > q"}], small_taxonomy())["topics"]["outside"] == 1
    assert coverage([]) == {}


def test_coverage_of_sampled_rows(taxonomy, drawn):
    report = coverage((params.as_row() for params in drawn[:len(taxonomy.leaves)]), taxonomy)
    assert report["topics"]["share"] == 1.0 and report["topics"]["normalized_entropy"] == pytest.approx(1.0)
    assert report["names"]["repeated"] == 0
    assert set(report) == {"topics", "audiences", "levels", "styles", "difficulties", "names"}
