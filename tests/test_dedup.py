"""Near-duplicate removal: tokens, signatures against datasketch, LSH shape, planted duplicates end to end."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shard_tables
from datasketch import MinHash, MinHashLSH
from planted import distinct_functions, stdlib_functions, variant, word_corpus
from pydantic import ValidationError

from textbooks import cli
from textbooks.dedup import minhash
from textbooks.dedup.config import DedupConfig
from textbooks.dedup.shingles import shingle_sets, token_hashes
from textbooks.dedup.stage import DedupStage
from textbooks.dedup.tokens import code_tokens, text_tokens
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import run_step
from textbooks.store import data

FUNCTION = '''def scale(values, factor=2):
    """Multiply each value."""
    total = []  # the result
    for value in values:
        total.append(value * factor + len(values, factor=factor))
    return total
'''

RENAMED_AND_REWRAPPED = '''def scale(numbers,
          k=2):
    \'\'\'Multiply each
    value.\'\'\'
    out = []
    for n in numbers:  # every number
        out.append(n * k + len(
            numbers, factor=k))
    return out
'''


def run_dedup(corpus: Path, out: Path, workers: int = 1, **settings) -> Path:
    run_step(DedupStage(DedupConfig(**settings), str(corpus)), out, executor=make_executor("local", workers),
             say=lambda _: None)
    return out


def all_rows(folder: Path) -> list[dict]:
    return data.read_dataset(folder).to_pylist() + data.read_dataset(folder / data.DROPPED).to_pylist()


def write_jsonl(path: Path, texts: list[str], prefix: str) -> None:
    lines = [json.dumps({"id": f"{prefix}{index}", "text": text}) for index, text in enumerate(texts)]
    path.write_text("".join(line + "\n" for line in lines))


def test_code_tokens_ignore_comments_layout_quotes_and_local_names():
    tokens, parsed = code_tokens(FUNCTION)
    assert parsed and code_tokens(RENAMED_AND_REWRAPPED) == (tokens, True)
    assert "#" not in "".join(tokens)
    assert {"scale", "append", "len", "factor"} <= set(tokens), "names of functions, keywords are kept"
    assert code_tokens(FUNCTION.replace(".append", ".extend"))[0] != tokens, "attributes are kept"
    assert code_tokens(FUNCTION.replace("each", "every"))[0] != tokens, "the words of strings are kept"


def test_prose_falls_back_to_plain_tokens():
    tokens = ["This", "isn", "'", "t", "Python", ",", "is", "it", "?"]
    assert code_tokens("This isn't Python, is it?") == (tokens, False)
    assert text_tokens("The Cat, the HAT.") == ["the", "cat", "the", "hat"]


def test_signatures_equal_datasketch_minhash():
    documents = [FUNCTION, RENAMED_AND_REWRAPPED, "x = 1", "", "# only a comment"]
    values, offsets = shingle_sets([token_hashes(code_tokens(text)[0]) for text in documents], 5)
    assert np.diff(offsets).tolist()[2:] == [1, 0, 0], "short text: one shingle; no tokens: none"
    signatures = minhash.signatures(values, offsets, minhash.permutations(64, 7))
    for row, (begin, end) in enumerate(zip(offsets[:-1], offsets[1:])):
        reference = MinHash(num_perm=64, seed=7, hashfunc=int)
        reference.update_batch(values[begin:end].tolist())
        assert np.array_equal(signatures[row].astype(np.uint64), reference.digest())


def test_lsh_shape_comes_from_the_threshold_like_datasketch():
    for threshold in (0.5, 0.7, 0.9):
        reference = MinHashLSH(threshold=threshold, num_perm=128)
        bands, rows = DedupConfig(threshold=threshold).lsh_shape()
        assert (bands, rows) == (reference.b, reference.r) and bands * rows <= 128
    assert DedupConfig().lsh_shape() != DedupConfig(threshold=0.9).lsh_shape()
    assert DedupConfig(bands=16).lsh_shape() == (16, 8)
    assert DedupConfig(rows=5, num_perm=64).lsh_shape() == (12, 5)
    with pytest.raises(ValidationError, match=r"rows\n.*bands x rows \(20 x 10\) is more than num_perm \(128\)"):
        DedupConfig(bands=20, rows=10)
    with pytest.raises(ValidationError, match=r"bands\n.*at most num_perm \(128\) bands"):  # the key given
        DedupConfig(bands=200)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, str], set[str]]:
    """JSONL files of distinct stdlib functions, near-duplicate families and exact copies, shuffled.

    Returns the folder, each row id's family, and the ids of exact copies (of originals without variants).
    """
    rng = random.Random(1)
    candidates = stdlib_functions(limit=900)
    rng.shuffle(candidates)
    rows, family, copies = [], {}, set()
    for number, text in enumerate(distinct_functions(candidates, 400)):
        rows.append((f"f{number}", text))
        family[f"f{number}"] = f"f{number}"
        variants = [variant(text, rng) for _ in range(rng.randint(1, 3))] if number % 3 == 0 else []
        for index, changed in enumerate(changed for changed in variants if changed):
            rows.append((f"f{number}-v{index}", changed))
            family[f"f{number}-v{index}"] = f"f{number}"
        if number % 3 == 1 and number < 120:
            rows.append((f"f{number}-copy", text))
            family[f"f{number}-copy"] = f"f{number}"
            copies.add(f"f{number}-copy")
    rng.shuffle(rows)
    folder = tmp_path_factory.mktemp("planted")
    for part in range(3):
        lines = [json.dumps({"id": row_id, "text": text}) for row_id, text in rows[part::3]]
        (folder / f"part-{part}.jsonl").write_text("\n".join(lines) + "\n")
    return folder, family, copies


@pytest.fixture(scope="module")
def deduplicated(planted, tmp_path_factory) -> Path:
    return run_dedup(planted[0], tmp_path_factory.mktemp("dedup") / "out", workers=2)


def same_group_pairs(groups: dict[str, object]) -> set[tuple[str, str]]:
    members: dict[object, list[str]] = {}
    for row_id, group in groups.items():
        members.setdefault(group, []).append(row_id)
    return {pair for ids in members.values() for pair in itertools.combinations(sorted(ids), 2)}


def test_planted_near_duplicates_are_found(planted, deduplicated):
    _, family, copies = planted
    clusters = {row["id"]: row["minhash_cluster"] for row in all_rows(deduplicated)}
    truth, found = same_group_pairs(family), same_group_pairs(clusters)
    precision, recall = len(truth & found) / len(found), len(truth & found) / len(truth)
    assert len(truth) > 200
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    dropped = {row["id"]: row for row in data.read_dataset(deduplicated / data.DROPPED).to_pylist()}
    for copy in copies:
        original = copy.removesuffix("-copy")
        assert (copy in dropped) != (original in dropped), "one of two exact copies is kept"
        removed = dropped.get(copy) or dropped[original]
        assert removed["drop_reason"] == "exact_duplicate"
        assert removed["duplicate_of"] == (original if copy in dropped else copy)


def test_rows_are_accounted_for(planted, deduplicated):
    _, family, _ = planted
    kept = data.read_dataset(deduplicated)
    dropped = data.read_dataset(deduplicated / data.DROPPED)
    assert sorted(kept["id"].to_pylist() + dropped["id"].to_pylist()) == sorted(family)
    stats = data.read_stats(deduplicated)
    assert (stats["rows_in"], stats["rows_out"]) == (len(family), kept.num_rows)
    assert sum(stats["drops"].values()) == dropped.num_rows
    assert set(stats["drops"]) == {"near_duplicate", "exact_duplicate"}
    assert stats["counters"]["documents"] == stats["counters"]["parsed_as_python"] == len(family)
    assert kept["minhash_cluster"].type == dropped["minhash_cluster"].type == "int64"
    assert len(set(kept["minhash_cluster"].to_pylist())) == kept.num_rows, "one kept row per cluster"
    kept_cluster = dict(zip(kept["id"].to_pylist(), kept["minhash_cluster"].to_pylist()))
    for row in dropped.to_pylist():
        assert kept_cluster[row["duplicate_of"]] == row["minhash_cluster"]


def test_output_is_deterministic(planted, deduplicated, tmp_path):
    again = run_dedup(planted[0], tmp_path / "again", workers=1)
    assert shard_tables(again) == shard_tables(deduplicated)


@pytest.mark.parametrize(("settings", "workers"), [
    ({}, 2), ({"verify": False}, 1), ({"threshold": 0.6, "bands": 42, "rows": 3}, 1)],
    ids=["default-on-a-pool", "no-verify", "loose-lsh"])
def test_the_sharded_reduce_makes_the_in_memory_dataset(planted, deduplicated, tmp_path, settings, workers):
    memory = deduplicated if not settings else run_dedup(planted[0], tmp_path / "memory", shuffle="memory",
                                                         **settings)
    sharded = run_dedup(planted[0], tmp_path / "sharded", workers, shuffle="sharded", partitions=5, **settings)
    assert shard_tables(sharded) == shard_tables(memory)


@pytest.mark.parametrize("seed", range(3))
def test_the_sharded_reduce_agrees_where_most_candidates_are_false(tmp_path, seed):
    """Few words, loose LSH: buckets full of rows that are not similar, so which pairs are checked matters."""
    corpus = word_corpus(tmp_path / "corpus", 300, parts=seed + 2, seed=seed)
    dropped = {}
    for verify in (True, False):
        settings = {"normalize": "text", "threshold": 0.5, "bands": 20, "rows": 2, "verify": verify}
        memory = run_dedup(corpus, tmp_path / f"memory-{verify}", shuffle="memory", **settings)
        sharded = run_dedup(corpus, tmp_path / f"sharded-{verify}", shuffle="sharded", partitions=(1, 4, 9)[seed],
                            **settings)
        assert shard_tables(sharded) == shard_tables(memory)
        dropped[verify] = data.read_dataset(memory / data.DROPPED).num_rows
    assert dropped[True] < dropped[False], "the check rejected candidate pairs"


def test_shuffle_and_partitions_are_not_in_the_fingerprint():
    from textbooks.pipeline.runner import fingerprint

    def digest(**settings) -> str:
        stage = DedupStage(DedupConfig(**settings), "in")
        return fingerprint(stage, stage)[0]

    assert digest() == digest(shuffle="sharded", partitions=7) != digest(threshold=0.8)


def test_cli_runs_the_stage_and_refuses_bad_settings(planted, tmp_path, capsys):
    corpus = str(planted[0])
    flags = ["--threshold", "0.8", "--no-verify", "--bands", "8", "--workers", "2"]
    assert cli.main(["dedup", "--input", corpus, "--out", str(tmp_path / "cli"), *flags]) == 0
    config = data.read_stats(tmp_path / "cli")["config"]
    assert (config["threshold"], config["bands"], config["verify"]) == (0.8, 8, False)
    assert cli.main(["dedup", "--input", corpus, "--out", str(tmp_path / "bad"), "--rows", "200"]) == 2
    error = capsys.readouterr().err
    assert "flag '--rows'" in error and "at most num_perm (128) rows per band" in error and "(got '200')" in error


def test_text_mode_finds_reworded_prose(tmp_path):
    rng = random.Random(3)
    words = "the of and to in a is that for it as was with be by on not he this are or his from".split()
    paragraphs = [" ".join(rng.choice(words) for _ in range(120)) for _ in range(20)]
    write_jsonl(tmp_path / "prose.jsonl", [*paragraphs, paragraphs[4].upper().replace(" ", "  ")], "p")
    out = run_dedup(tmp_path / "prose.jsonl", tmp_path / "out", normalize="text")
    dropped = data.read_dataset(out / data.DROPPED).to_pylist()
    assert [(row["id"], row["duplicate_of"], row["drop_reason"]) for row in dropped] == [
        ("p20", "p4", "near_duplicate")]


def test_texts_without_tokens_are_only_exact_duplicates(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_jsonl(corpus / "a.jsonl", ["", "# one comment\n", FUNCTION, "# another\n", "\n\n"], "a")
    (corpus / "b.jsonl").write_text("")
    out = run_dedup(corpus, tmp_path / "out")
    verdicts = {row["id"]: (row.get("drop_reason"), row.get("duplicate_of")) for row in all_rows(out)}
    assert verdicts == {"a0": (None, None), "a1": (None, None), "a2": (None, None), "a3": (None, None),
                        "a4": ("exact_duplicate", "a0")}


@pytest.mark.parametrize(("point", "resumed"), [
    ("dedup:map:2", {"map": 2, "reduce": False, "apply": 0}),
    ("dedup:reduce", {"map": 3, "reduce": True, "apply": 0}),
    ("dedup:apply:2", {"map": 3, "reduce": True, "apply": 2}),
])
def test_killed_in_map_reduce_or_apply_resumes_to_the_same_dataset(planted, deduplicated, tmp_path, capsys, point,
                                                                   resumed):
    """kill -9 (the test hook) right after the named record: the re-run does only what was not recorded."""
    out = tmp_path / "killed"
    args = ["dedup", "--input", str(planted[0]), "--out", str(out), "--workers", "1"]
    killed = subprocess.run([sys.executable, "-m", "textbooks", *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TEXTBOOKS_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not data.is_complete(out)
    assert cli.main(args) == 0
    said = capsys.readouterr().out
    assert f"dedup: resuming, {resumed['map']}/3 shards done earlier" in said
    assert ("the reduce result was recorded earlier" in said) == resumed["reduce"]
    assert data.read_stats(out)["done_earlier"] == resumed
    assert shard_tables(out) == shard_tables(deduplicated)


@pytest.mark.parametrize(("point", "phases"), [
    ("dedup:bands:2", {"exact": 3, "bands": 2, "send": 0, "check": 0, "components": 0}),
    ("dedup:check:2", {"exact": 3, "bands": 3, "send": 3, "check": 2, "components": 0}),
])
def test_a_sharded_reduce_killed_in_a_phase_redoes_only_its_unfinished_tasks(planted, deduplicated, tmp_path, capsys,
                                                                              point, phases):
    out = tmp_path / "killed"
    args = ["dedup", "--input", str(planted[0]), "--out", str(out), "--workers", "1", "--shuffle", "sharded",
            "--partitions", "3"]
    killed = subprocess.run([sys.executable, "-m", "textbooks", *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TEXTBOOKS_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert cli.main([*args[:-1], "5"]) == 0, "resumed with another grouping: the recorded one is kept"
    _, phase, count = point.split(":")
    said = capsys.readouterr().out
    assert f"dedup: {phase} resuming, {count}/3 tasks done earlier" in said
    assert "dedup: keeping the 3 tasks per phase of the run this one resumes" in said
    assert data.read_stats(out)["done_earlier"] == {"map": 3, "reduce": False, "apply": 0, **phases}
    assert shard_tables(out) == shard_tables(deduplicated)
