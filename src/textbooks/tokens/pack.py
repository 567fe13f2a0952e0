"""`textbooks tokenize`: a dataset, or a weighted mixture of datasets, as flat token files for training.

    textbooks tokenize --input runs/x/dedup --out runs/x/tokens            # trains a byte-level BPE on it
    textbooks tokenize --input runs/x/dedup --tokenizer Salesforce/codegen-350M-mono --out runs/x/tokens
    textbooks tokenize --mixture runs/x/filter=3 runs/x/synth=1 --out runs/x/tokens
    # in a recipe: mixture: [{input: "@filter", weight: 3}, {input: "@synth", weight: 1}]

The output folder, read with `open_tokens` (the trainer does)::

    OUT/meta.json     {"format": "textbooks-tokens", "version": 1, "dtype": "uint16" | "uint32",
                       "vocab_size": N, "eos_id": E, "tokenizer": "tokenizer",
                       "tokenizer_source": "trained" | the tokenizer setting,
                       "splits": {"train": {"tokens": T, "documents": D}, "val": {...}},
                       "sources": [per source: input, weight, documents, natural_tokens, tokens, share,
                                   repeated_documents, passes, ... (see `textbooks.tokens.mixture`)],
                       "val_unigram_entropy": H}
    OUT/train.bin     token ids, little-endian, uint16 when vocab_size <= 65536 else uint32, with
    OUT/val.bin       `<|endoftext|>` after every document (paper §2.3); `np.memmap` reads them in place
    OUT/tokenizer/    the tokenizer (transformers `save_pretrained`), trained here or copied
    OUT/stats.json, OUT/_SUCCESS   written by the runner; a folder without _SUCCESS is not finished

A document is held out for val when a hash of its id falls under `val_fraction`: the split never depends on
shard order, and an id is never in both. val holds every held-out document of every source once, in a
seeded shuffle; train is drawn from the rest by `textbooks.tokens.mixture` (each source its weighted share).
A trained tokenizer learns from train documents only. `val_unigram_entropy` (nats) is the val loss of a model
that knows only token frequencies: a trained model should end well below it. Text inside a document that
spells `<|endoftext|>` is encoded as plain text, so the separator id only ever marks a boundary.

Work resumes per input shard: `OUT/.work/part-00003.tokens.npy` holds the shard's documents' tokens end to
end, `part-00003.docs.npz` each document's length and id hash, and the record `encode-00003.json` (written
last) says the shard is done. A killed run redoes only unfinished shards, then assembles the token files.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tqdm import tqdm

from textbooks.errors import UserError
from textbooks.pipeline.refs import DatasetInput, TokenizerInput
from textbooks.pipeline.step import Context, Say, Step, StepConfig
from textbooks.pipeline.work import Work
from textbooks.store import data
from textbooks.store.atomic import atomic_file, atomic_folder
from textbooks.store.inputs import Part, plan_parts, read_part
from textbooks.tokens import mixture
from textbooks.tokens.folder import META, SPLITS, TOKENIZER_DIR, folder_meta, token_dtype, unigram_entropy
from textbooks.tokens.tokenizer import (
    encode_documents,
    eos_id,
    load_tokenizer,
    text_encoder,
    train_tokenizer,
    vocab_size,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer


class MixtureSource(BaseModel):
    """One dataset of a mixture and its weight; on the command line `PATH=WEIGHT`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: DatasetInput = Field(description="A dataset folder, Parquet/JSONL file or glob, hf:NAME, or @step in a "
                                            "recipe.")
    weight: float = Field(1.0, gt=0, description="Relative share of the training tokens.")

    @model_validator(mode="before")
    @classmethod
    def _from_flag(cls, value: Any) -> Any:
        if isinstance(value, str):
            path, _, weight = value.rpartition("=")
            try:
                return {"input": path, "weight": float(weight)} if path else {"input": value}
            except ValueError:
                return {"input": value}
        return value


class TokenizeConfig(StepConfig):
    tokenizer: TokenizerInput = Field(
        "train",
        description="train: a byte-level BPE trained on the training split of the input; otherwise a hub name "
                    "(phi-1's: Salesforce/codegen-350M-mono) or a tokenizer folder (@step/tokenizer in a recipe).")
    vocab_size: int = Field(8192, ge=257, description="Entries of a trained tokenizer: 256 bytes, "
                                                      "<|endoftext|> and merges.")
    train_bytes: int = Field(200_000_000, gt=0, description="At most this much text (UTF-8 bytes) trains the "
                                                            "tokenizer, split between mixture sources by weight.")
    text_column: str = Field("text", description="The column (or JSONL field) that holds each document's text.")
    mixture: list[MixtureSource] | None = Field(
        None, min_length=1,
        description="Datasets with weights (PATH=WEIGHT on the command line) instead of one input: each gets "
                    "weight/sum(weights) of the training tokens.")
    tokens: int | None = Field(
        None, gt=0,
        description="Training tokens to draw, repeating documents when the sources hold fewer (default: every "
                    "document once, or with a mixture the most that repeats no source).")
    val_fraction: float = Field(0.01, gt=0, lt=1, description="Share of documents held out for validation, "
                                                              "chosen by a hash of the document id.")
    seed: int = Field(0, ge=0, description="Seed of the document order and of the mixture's draws.")


@dataclass(frozen=True)
class _Source:
    """One input of the step, planned into parts; its parts are numbered from `first_part` in `.work`."""

    label: str
    spec: str
    weight: float
    parts: list[Part]
    first_part: int

    def part_numbers(self) -> range:
        return range(self.first_part, self.first_part + len(self.parts))


class TokenizeStep(Step):
    name = "tokenize"
    Config = TokenizeConfig
    takes = ("dataset",)
    makes = "tokens"
    input_help = "a dataset folder, Parquet/JSONL file or glob, or hf:NAME (or give --mixture instead)"
    outputs = (META, *(f"{split}.bin" for split in SPLITS), TOKENIZER_DIR)
    config: TokenizeConfig

    def __init__(self, config: TokenizeConfig, input: str | None = None) -> None:
        if not config.mixture and not input:
            raise UserError(f"{self.name}: needs an input (--input PATH, or `input:` in a recipe) or a mixture "
                            "(--mixture PATH=WEIGHT ..., or `mixture:` in a recipe)")
        super().__init__(config, input)
        if config.mixture and input:
            raise UserError(f"{self.name}: give an input or a mixture, not both; add {input} to the mixture "
                            "with its weight")

    @classmethod
    def needs_input(cls, config: TokenizeConfig) -> bool:
        return not config.mixture

    def _inputs(self, settings: TokenizeConfig) -> list[tuple[str, str, float]]:
        """(label as written, path, weight) of every source."""
        if self.config.mixture:
            return [(str(written.input), str(item.input), item.weight)
                    for written, item in zip(settings.mixture or [], self.config.mixture)]
        return [(str(self.input), str(self.input), 1.0)]

    def run(self, ctx: Context) -> dict:
        started = time.perf_counter()
        work, say = ctx.work, ctx.say
        sources = self._plan(ctx.settings)
        if ctx.resuming:
            done = len(work.done("encode", sum(len(source.parts) for source in sources)))
            say(f"{self.name}: resuming in {ctx.out}: {done} shard(s) tokenized earlier")
        tokenizer = self._tokenizer(work.path(TOKENIZER_DIR), sources, say)
        dtype, eos = token_dtype(vocab_size(tokenizer)), eos_id(tokenizer)
        encoded, encode_seconds = self._encode(sources, tokenizer, dtype, work)
        documents = mixture.Documents.from_parts(_part_records(work, sources))
        is_val = documents.id_hash < _val_threshold(self.config.val_fraction)
        _check_splits(documents, is_val, sources, self.config.val_fraction)
        train_order, source_records = self._draw(documents, is_val, sources)
        val_order = mixture.shuffled(np.flatnonzero(is_val), self.config.seed, mixture.VALIDATION)
        tokens_of = functools.cache(lambda number: np.load(_tokens_path(work, number), mmap_mode="r"))
        counts = np.zeros(vocab_size(tokenizer), np.int64)
        out = ctx.out
        say(f"{self.name}: assembling train.bin ({train_order.size:,} documents) and val.bin "
            f"({val_order.size:,}) in {out}")
        with atomic_file(out / "train.bin") as train_path, atomic_file(out / "val.bin") as val_path:
            splits = {"train": mixture.write_stream(train_path, train_order, documents, tokens_of, eos, dtype,
                                                    desc="train.bin"),
                      "val": mixture.write_stream(val_path, val_order, documents, tokens_of, eos, dtype, counts,
                                                  desc="val.bin")}
        for index, record in enumerate(source_records):
            record["val_documents"] = int(np.count_nonzero(is_val & (documents.source == index)))
            if record["repeated_documents"]:
                say(f"{self.name}: {record['input']} repeats {record['repeated_documents']:,} documents "
                    f"({record['passes']} passes) to reach its share of the training tokens")
        source_name = "trained" if self.config.tokenizer == "train" else str(ctx.settings.tokenizer)
        meta = folder_meta(tokenizer, source_name, splits, source_records, unigram_entropy(counts))
        with atomic_folder(out / TOKENIZER_DIR) as folder:
            shutil.copytree(work.path(TOKENIZER_DIR), folder, dirs_exist_ok=True)
        data.write_json(meta, out / META)
        seconds = time.perf_counter() - started
        say(f"{self.name}: train {splits['train']['tokens']:,} tokens ({splits['train']['documents']:,} documents), "
            f"val {splits['val']['tokens']:,}; {encoded / max(encode_seconds, 1e-9):,.0f} tokens/s")
        return {"tokens": {name: split["tokens"] for name, split in splits.items()},
                "documents": {name: split["documents"] for name, split in splits.items()},
                "sources": source_records, "vocab_size": meta["vocab_size"], "dtype": meta["dtype"],
                "tokenizer_source": source_name, "val_unigram_entropy": meta["val_unigram_entropy"],
                "tokenized_this_run": encoded, "tokenize_seconds": round(encode_seconds, 3),
                "tokens_per_second": round(encoded / encode_seconds) if encode_seconds else None,
                "seconds": round(seconds, 3)}

    def _plan(self, settings: TokenizeConfig) -> list[_Source]:
        """Every source's parts, checked before any work: readable, with the text column, not empty."""
        sources, first = [], 0
        for label, path, weight in self._inputs(settings):
            parts = plan_parts(path)
            rows = [_check_parquet(part.path, self.config.text_column) for part in parts
                    if part.kind in ("shard", "parquet")]
            if len(rows) == len(parts) and sum(rows) == 0:
                raise UserError(f"{self.name}: input {label} has no documents; point it at a dataset with rows")
            sources.append(_Source(label, path, weight, parts, first))
            first += len(parts)
        return sources

    def _tokenizer(self, folder: Path, sources: list[_Source], say: Say) -> Any:
        """The tokenizer saved in `.work` (trained or copied there once), loaded back from there."""
        if not folder.is_dir():
            with atomic_folder(folder) as staging:
                if self.config.tokenizer == "train":
                    say(f"{self.name}: training a {self.config.vocab_size}-entry byte-level BPE on the training "
                        "split")
                    train_tokenizer(self._training_texts(sources), self.config.vocab_size, staging)
                else:
                    load_tokenizer(str(self.config.tokenizer)).save_pretrained(staging)
        return load_tokenizer(str(folder))

    def _training_texts(self, sources: list[_Source]) -> Iterator[str]:
        """Train-split documents in input order, each source up to its weighted part of `train_bytes`."""
        threshold = _val_threshold(self.config.val_fraction)
        total_weight = sum(source.weight for source in sources)
        for source in sources:
            budget, used = self.config.train_bytes * source.weight / total_weight, 0
            for part in source.parts:
                ids, texts = _read_texts(part, self.config.text_column)
                for text, held_out in zip(texts, _id_hashes(ids) < threshold):
                    if used >= budget:
                        break
                    if not held_out:
                        used += len(text.encode("utf-8"))
                        yield text
                if used >= budget:
                    break

    def _encode(self, sources: list[_Source], tokenizer: Any, dtype: np.dtype, work: Work) -> tuple[int, float]:
        """Tokenize every part not recorded as done into `.work`; the tokens encoded and the seconds it took."""
        encoder = text_encoder(tokenizer)
        encoded, seconds = 0, 0.0
        total = sum(len(source.parts) for source in sources)
        done = work.done("encode", total)
        with tqdm(total=total, desc=self.name, unit="shard", disable=None) as bar:
            for source in sources:
                for number, part in zip(source.part_numbers(), source.parts):
                    if number not in done:
                        started = time.perf_counter()
                        tokens = _encode_part(part, self.config.text_column, encoder, dtype, work, number)
                        work.record("encode", number, {"tokens": tokens})
                        encoded += tokens
                        seconds += time.perf_counter() - started
                    bar.update(1)
        return encoded, seconds

    def _draw(self, documents: mixture.Documents, is_val: np.ndarray,
              sources: list[_Source]) -> tuple[np.ndarray, list[dict]]:
        """The training stream's documents (global indices, in stream order) and the per-source records."""
        positions = [np.flatnonzero(~is_val & (documents.source == index)) for index in range(len(sources))]
        costs = [documents.length[where] + 1 for where in positions]
        draws = mixture.draw_sources(costs, [source.weight for source in sources], self.config.tokens,
                                     self.config.seed)
        total = sum(draw.tokens for draw in draws)
        order = mixture.interleave(draws, positions, self.config.seed)
        records = [{"input": source.label, "weight": source.weight, **draw.summary(total)}
                   for source, draw in zip(sources, draws)]
        return order, records


def _check_parquet(path: str, text_column: str) -> int:
    """Rows of a Parquet file with a string `text_column`, read from its footer."""
    try:
        footer = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise UserError(f"{path}: not a readable Parquet file ({error}); re-create it or remove it") from None
    schema = footer.schema_arrow
    if text_column not in schema.names:
        raise UserError(f"{path}: no column {text_column!r} (it has {', '.join(schema.names)}); set text_column "
                        "to the column that holds the text")
    if not (pa.types.is_string(schema.field(text_column).type) or
            pa.types.is_large_string(schema.field(text_column).type)):
        raise UserError(f"{path}: column {text_column!r} is {schema.field(text_column).type}, not text; set "
                        "text_column to the column that holds the text")
    return footer.metadata.num_rows


def _read_texts(part: Part, text_column: str) -> tuple[list[str], list[str]]:
    """Ids and texts of one part, in row order (a missing text is empty)."""
    if part.kind in ("shard", "parquet") and "id" in pq.read_schema(part.path).names:
        table = data.read_shard(Path(part.path), ["id", text_column])
        return [str(value) for value in table["id"].to_pylist()], [text or "" for text in table[text_column]
                                                                   .to_pylist()]
    records = list(read_part(part, text_column=text_column))
    return [record["id"] for record in records], [record["text"] or "" for record in records]


def _id_hashes(ids: list[str]) -> np.ndarray:
    """A stable 64-bit hash of each id (the same in every process and Python version, unlike `hash`)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little")
                        for value in ids), np.uint64, count=len(ids))


def _val_threshold(val_fraction: float) -> np.uint64:
    return np.uint64(min(int(val_fraction * 2.0**64), 2**64 - 1))


def _docs_path(work: Work, number: int) -> Path:
    return work.path(f"part-{number:05d}.docs.npz")


def _tokens_path(work: Work, number: int) -> Path:
    return work.path(f"part-{number:05d}.tokens.npy")


def _encode_part(part: Part, text_column: str, encoder: Tokenizer, dtype: np.dtype, work: Work, number: int) -> int:
    """Tokenize one part into `.work` (its tokens, and each document's length and id hash); its token count."""
    ids, texts = _read_texts(part, text_column)
    tokens, lengths = encode_documents(encoder, texts, dtype)
    _save(_tokens_path(work, number), tokens)
    _save(_docs_path(work, number), lengths=lengths, id_hash=_id_hashes(ids))
    return int(tokens.size)


def _save(path: Path, array: np.ndarray | None = None, **arrays: np.ndarray) -> None:
    """One array as .npy, or named arrays as .npz, written atomically."""
    buffer = io.BytesIO()
    if array is not None:
        np.save(buffer, array)
    else:
        np.savez(buffer, **arrays)
    data.write_bytes(buffer.getvalue(), path)


def _part_records(work: Work, sources: list[_Source]) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(part number, source index, document lengths, id hashes) of every tokenized part in `.work`."""
    for index, source in enumerate(sources):
        for number in source.part_numbers():
            with np.load(_docs_path(work, number)) as saved:
                yield number, index, saved["lengths"], saved["id_hash"]


def _check_splits(documents: mixture.Documents, is_val: np.ndarray, sources: list[_Source],
                  val_fraction: float) -> None:
    """Refuse an empty source, an empty val split, or a source with nothing left to train on."""
    for index, source in enumerate(sources):
        mine = documents.source == index
        if not mine.any():
            raise UserError(f"tokenize: input {source.label} has no documents; point it at a dataset with rows")
        if is_val[mine].all():
            raise UserError(f"tokenize: all {int(mine.sum())} documents of {source.label} fall in the validation "
                            f"split at val_fraction {val_fraction}; lower val_fraction or give it more documents")
    if not is_val.any():
        count = documents.id_hash.size
        if count < 2:
            raise UserError(f"tokenize: only {count} document; a train and a val split need at least 2")
        needed = (int(documents.id_hash.min()) + 1) / 2.0**64
        digits = 1 - math.floor(math.log10(needed))
        suggestion = math.ceil(needed * 10**digits) / 10**digits
        raise UserError(f"tokenize: the val split would be empty: {count} documents, none under val_fraction "
                        f"{val_fraction}; use val_fraction {suggestion} or more, or give more documents")
