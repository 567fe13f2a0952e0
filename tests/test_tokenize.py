"""The tokenize job on real code: exact round trips, splits, mixtures, repeats, resume after a kill, bad inputs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from textbooks.errors import UserError
from textbooks.pipeline.runner import run_step
from textbooks.store import data
from textbooks.tokens.folder import TokenData, open_tokens, token_dtype, write_token_folder
from textbooks.tokens.pack import MixtureSource, TokenizeConfig, TokenizeStep
from textbooks.tokens.tokenizer import EOS, eos_id, load_tokenizer, text_encoder, train_tokenizer, vocab_size

ROOT = Path(__file__).resolve().parents[1]
TRICKY = [
    "def f(x):\n\tif x:\n\t\treturn 'naïve café ☕ 𝔘 日本'\n\treturn None\n",
    "class A:\n    pass   \n\n\n\r\n  \t \n",
    "print('<|endoftext|>')  # the separator's text inside a document stays text\n",
    "",
]


def stdlib_snippets(limit: int) -> list[str]:
    """Distinct top-level chunks (a def, a class, a module header) of this interpreter's stdlib modules."""
    seen: dict[str, None] = dict.fromkeys(TRICKY)
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        for piece in re.split(r"\n(?=(?:def|class) )", path.read_text(encoding="utf-8")):
            if piece.strip() and len(piece) < 20_000:
                seen.setdefault(piece)
            if len(seen) >= limit:
                return list(seen)
    return list(seen)


@pytest.fixture(scope="module")
def snippets() -> list[str]:
    return stdlib_snippets(400)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory, snippets: list[str]) -> Path:
    """A small trained tokenizer folder, for tests about something else than training."""
    return train_tokenizer(snippets, 512, tmp_path_factory.mktemp("bpe"))


def write_dataset(folder: Path, texts: list[str], shards: int = 3, prefix: str = "doc") -> Path:
    """A finished dataset folder: `texts` as rows `{prefix}-{i}` spread round-robin over `shards` shards."""
    rows = [{"id": f"{prefix}-{index}", "text": text, "source": prefix} for index, text in enumerate(texts)]
    for shard in range(shards):
        data.write_table(pa.Table.from_pylist(rows[shard::shards]), folder / data.shard_name(shard))
    data.write_marker(folder, {"stage": "ingest", "fingerprint": f"{prefix}-{len(rows)}-{shards}"})
    return folder


def tokenize(out: Path, input: str | None = None, say=None, run_folder: Path | None = None, **settings) -> TokenData:
    run_step(TokenizeStep(TokenizeConfig(**settings), input), out, say=say or (lambda message: None),
             run_folder=run_folder)
    return open_tokens(out)


def decoded(tokens: TokenData, split: str) -> list[str]:
    """The split's documents: the text between separators, decoded by the saved tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(tokens.tokenizer_dir)
    ids = np.asarray(tokens.split(split))
    ends = np.flatnonzero(ids == tokens.eos_id)
    assert ends.size and ends[-1] == ids.size - 1, "the stream must end with a separator"
    starts = np.r_[0, ends[:-1] + 1]
    return [tokenizer.decode(ids[start:end].tolist()) for start, end in zip(starts, ends)]


def test_round_trip_format_and_rerun(tmp_path: Path, snippets: list[str]) -> None:
    dataset = write_dataset(tmp_path / "dataset", snippets)
    messages: list[str] = []
    tokens = tokenize(tmp_path / "tokens", str(dataset), messages.append, vocab_size=1024, val_fraction=0.1)

    train, val = decoded(tokens, "train"), decoded(tokens, "val")
    assert Counter(train + val) == Counter(snippets)
    assert set(train).isdisjoint(val) and len(val) >= 10
    meta = tokens.meta
    assert meta["format"] == "textbooks-tokens" and meta["tokenizer_source"] == "trained"
    assert meta["splits"]["train"] == {"tokens": tokens.split("train").size, "documents": len(train)}
    assert meta["splits"]["val"]["documents"] == len(val) == meta["sources"][0]["val_documents"]
    assert tokens.dtype == np.dtype("<u2") and meta["dtype"] == "uint16" and tokens.vocab_size == 1024
    assert not tokens.split("train").flags.writeable

    counts = np.bincount(np.asarray(tokens.split("val")), minlength=tokens.vocab_size)
    p = counts[counts > 0] / counts.sum()
    assert tokens.val_unigram_entropy == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)

    loaded = AutoTokenizer.from_pretrained(tokens.tokenizer_dir)
    assert loaded.eos_token == EOS and loaded.eos_token_id == tokens.eos_id and len(loaded) == 1024
    assert not (tmp_path / "tokens" / ".work").exists()
    stats = data.read_stats(tmp_path / "tokens")
    assert stats["tokens"] == {"train": meta["splits"]["train"]["tokens"], "val": meta["splits"]["val"]["tokens"]}
    assert stats["tokens_per_second"] > 0

    before = (tmp_path / "tokens" / "train.bin").stat().st_mtime_ns
    tokenize(tmp_path / "tokens", str(dataset), messages.append, vocab_size=1024, val_fraction=0.1)
    assert "done earlier" in messages[-1]
    assert (tmp_path / "tokens" / "train.bin").stat().st_mtime_ns == before


def test_trained_tokenizer_round_trips_code_exactly(tmp_path: Path, snippets: list[str]) -> None:
    folder = train_tokenizer(snippets, 600, tmp_path / "bpe")
    tokenizer = load_tokenizer(str(folder))
    assert (eos_id(tokenizer), vocab_size(tokenizer), tokenizer.eos_token) == (0, 600, EOS)
    encoder = text_encoder(tokenizer)
    for text in [*TRICKY, "\t\t  x = {'ключ': \"значение\"}\r\n# 🐍🐍\n"]:
        ids = encoder.encode(text, add_special_tokens=False).ids
        assert eos_id(tokenizer) not in ids
        assert tokenizer.decode(ids) == text
    with pytest.raises(UserError, match="at least 257"):
        train_tokenizer(snippets, 256, tmp_path / "too-small")


def test_dtype_fits_the_vocabulary() -> None:
    assert token_dtype(50_295) == np.dtype("<u2")  # CodeGen's tokenizer (phi-1)
    assert token_dtype(1 << 16) == np.dtype("<u2")
    assert token_dtype((1 << 16) + 1) == np.dtype("<u4")
    assert token_dtype(151_646) == np.dtype("<u4")


def test_split_is_stable_across_shard_layouts(tmp_path: Path, snippets: list[str], bpe: Path) -> None:
    first = write_dataset(tmp_path / "three", snippets, shards=3)
    second = write_dataset(tmp_path / "five", snippets[::-1], shards=5)
    # Same ids for the same texts in the second layout: rename rows by text.
    ids = {text: f"doc-{index}" for index, text in enumerate(snippets)}
    for path in data.shard_paths(second):
        table = data.read_shard(path)
        data.write_table(table.set_column(0, "id", pa.array([ids[text] for text in table["text"].to_pylist()])),
                         path)
    splits = []
    for dataset in (first, second):
        tokens = tokenize(tmp_path / f"tokens-{dataset.name}", str(dataset), tokenizer=str(bpe), val_fraction=0.2)
        assert tokens.meta["tokenizer_source"] == str(bpe)
        splits.append((set(decoded(tokens, "train")), set(decoded(tokens, "val"))))
    (train_a, val_a), (train_b, val_b) = splits
    assert val_a == val_b and train_a == train_b and val_a.isdisjoint(train_a)
    assert 0.1 < len(val_a) / len(snippets) < 0.3


def test_mixture_shares_follow_the_weights(tmp_path: Path, snippets: list[str], bpe: Path) -> None:
    half = len(snippets) // 2
    write_dataset(tmp_path / "code", snippets[:half], prefix="code")
    jsonl = tmp_path / "books.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"book-{index}", "text": text}) + "\n"
                             for index, text in enumerate(snippets[half:])), encoding="utf-8")
    mixture = [{"input": "@code", "weight": 3}, f"{jsonl}=1"]  # "@code": an earlier step of a recipe run
    tokens = tokenize(tmp_path / "tokens", run_folder=tmp_path, tokenizer=str(bpe), mixture=mixture,
                      val_fraction=0.05, seed=3)

    records = {Path(record["input"]).name.lstrip("@"): record for record in tokens.meta["sources"]}
    assert records["code"]["share"] == pytest.approx(0.75, abs=0.02)
    assert records["books.jsonl"]["share"] == pytest.approx(0.25, abs=0.02)
    assert sum(record["tokens"] for record in records.values()) == tokens.split("train").size
    # One source is used exactly once, the other subsampled; nothing repeats without a `tokens` target.
    assert records["code"]["passes"] == 1.0 and records["code"]["documents_unused"] == 0
    assert records["books.jsonl"]["passes"] < 0.9 and records["books.jsonl"]["documents_unused"] > 0
    assert all(record["repeated_documents"] == 0 for record in records.values())

    encoder = text_encoder(AutoTokenizer.from_pretrained(tokens.tokenizer_dir))
    taken = Counter()
    code_texts = set(snippets[:half])
    for text in decoded(tokens, "train"):
        cost = len(encoder.encode(text, add_special_tokens=False).ids) + 1
        taken["code" if text in code_texts else "books.jsonl"] += cost
    assert taken == {name: record["tokens"] for name, record in records.items()}


def test_tokens_target_repeats_documents_and_says_so(tmp_path: Path, snippets: list[str], bpe: Path) -> None:
    dataset = write_dataset(tmp_path / "dataset", snippets[:120])
    once = tokenize(tmp_path / "once", str(dataset), tokenizer=str(bpe), val_fraction=0.1)
    natural = once.split("train").size
    target = int(natural * 2.5)
    messages: list[str] = []
    tokens = tokenize(tmp_path / "twice", str(dataset), messages.append, tokenizer=str(bpe), val_fraction=0.1,
                      tokens=target)
    record = tokens.meta["sources"][0]
    assert record["passes"] == pytest.approx(2.5, abs=0.05) and record["repeated_documents"] > record["documents"]
    assert any("repeats" in message for message in messages)
    assert target <= tokens.split("train").size < target + 20_000
    # Every document is repeated before any is repeated a third time.
    assert set(Counter(decoded(tokens, "train")).values()) <= {2, 3}
    assert decoded(tokens, "val") == decoded(once, "val")


RUN_STEP = """
import sys
from textbooks.pipeline.runner import run_step
from textbooks.tokens.pack import TokenizeConfig, TokenizeStep
run_step(TokenizeStep(TokenizeConfig(tokenizer=sys.argv[1], val_fraction=0.05), sys.argv[2]), sys.argv[3])
"""


def test_killed_run_resumes_to_the_same_bytes(tmp_path: Path, bpe: Path) -> None:
    texts = stdlib_snippets(1000)
    dataset = write_dataset(tmp_path / "dataset", texts, shards=40)
    reference = tokenize(tmp_path / "reference", str(dataset), tokenizer=str(bpe), val_fraction=0.05)

    out = tmp_path / "killed"
    # The test hook kills the job with SIGKILL right after its seventh shard is recorded.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TEXTBOOKS_KILL_AT": "tokenize:encode:7"}
    killed = subprocess.run([sys.executable, "-c", RUN_STEP, str(bpe), str(dataset), str(out)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not data.is_complete(out)
    done = len(list((out / ".work").glob("part-*.docs.npz")))

    messages: list[str] = []
    tokenize(out, str(dataset), messages.append, tokenizer=str(bpe), val_fraction=0.05)
    assert any(f"resuming in {out}: {done} shard(s)" in message for message in messages)
    assert data.read_stats(out)["tokenized_this_run"] < data.read_stats(tmp_path / "reference")["tokenized_this_run"]
    for name in ("train.bin", "val.bin", "meta.json"):
        assert (out / name).read_bytes() == (reference.folder / name).read_bytes(), name


def test_bad_inputs_and_folders_are_refused(tmp_path: Path, snippets: list[str], bpe: Path) -> None:
    dataset = write_dataset(tmp_path / "dataset", snippets[:20])
    with pytest.raises(UserError, match="not a finished token dataset; run `textbooks tokenize` first"):
        open_tokens(dataset)

    no_text = tmp_path / "code.parquet"
    data.write_table(pa.table({"id": ["a", "b"], "content": ["x = 1\n", "y = 2\n"]}), no_text)
    with pytest.raises(UserError, match="no column 'text'.*set text_column"):
        tokenize(tmp_path / "t1", str(no_text), tokenizer=str(bpe))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="has no documents"):
        tokenize(tmp_path / "t2", str(empty), tokenizer=str(bpe))

    with pytest.raises(UserError, match="not both"):
        TokenizeStep(TokenizeConfig(mixture=[str(dataset)]), str(dataset))
    with pytest.raises(UserError, match="needs an input .* or a mixture"):
        TokenizeStep(TokenizeConfig())
    assert TokenizeStep.needs_input(TokenizeConfig()) and not TokenizeStep.needs_input(
        TokenizeConfig(mixture=[f"{dataset}=2"]))
    assert MixtureSource.model_validate("runs/a=b=2.5") == MixtureSource(input="runs/a=b", weight=2.5)
    with pytest.raises(UserError, match="names a recipe step"):
        tokenize(tmp_path / "t3", tokenizer=str(bpe), mixture=[{"input": "@filter"}])


def test_too_few_documents_for_a_val_split_names_a_fraction_that_works(tmp_path: Path, bpe: Path) -> None:
    texts = ["a = 1\n", "b = 2\n", "c = 3\n"]
    dataset = write_dataset(tmp_path / "dataset", texts, shards=1, prefix="tiny")
    with pytest.raises(UserError, match="val split would be empty: 3 documents") as refused:
        tokenize(tmp_path / "tokens", str(dataset), tokenizer=str(bpe), val_fraction=0.01)
    suggestion = float(re.search(r"use val_fraction ([0-9.e-]+)", str(refused.value)).group(1))
    tokens = tokenize(tmp_path / "tokens", str(dataset), tokenizer=str(bpe), val_fraction=suggestion)
    assert tokens.meta["splits"]["val"]["documents"] >= 1


def test_tokenizers_without_eos_or_folder_are_refused(tmp_path: Path, bpe: Path) -> None:
    backend = load_tokenizer(str(bpe)).backend_tokenizer
    PreTrainedTokenizerFast(tokenizer_object=backend).save_pretrained(tmp_path / "no-eos")
    with pytest.raises(UserError, match="no end-of-text"):
        load_tokenizer(str(tmp_path / "no-eos"))
    with pytest.raises(UserError, match="no such folder"):
        load_tokenizer(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="pass a local folder"):
        load_tokenizer("not a/hub name")


def test_write_token_folder_opens_like_a_job_output(tmp_path: Path, bpe: Path) -> None:
    tokenizer = load_tokenizer(str(bpe))
    eos = eos_id(tokenizer)
    train = np.array([5, 6, 7, eos, 8, eos], np.int64)
    tokens = write_token_folder(tmp_path / "tokens", {"train": train, "val": np.array([9, 9, eos])}, bpe)
    assert tokens.meta["splits"] == {"train": {"tokens": 6, "documents": 2}, "val": {"tokens": 3, "documents": 1}}
    assert np.array_equal(tokens.split("train"), train) and tokens.vocab_size == 512
    assert tokens.val_unigram_entropy == pytest.approx(-(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)))
    (tmp_path / "tokens" / "val.bin").write_bytes(b"\x00\x00")
    with pytest.raises(UserError, match="not 6 bytes"):
        open_tokens(tmp_path / "tokens")
