"""Token folders: what `textbooks tokenize` writes and the trainer reads.

    OUT/meta.json     format, version, dtype, vocab_size, eos_id, tokenizer folder, splits, sources,
                      val_unigram_entropy (see `textbooks.tokens.pack` for every field)
    OUT/train.bin     token ids, little-endian, uint16 when vocab_size <= 65536 else uint32, with
    OUT/val.bin       `<|endoftext|>` after every document; `np.memmap` reads them in place
    OUT/tokenizer/    the tokenizer (transformers `save_pretrained`)
    OUT/_SUCCESS      written last; a folder without it is not finished

`open_tokens(folder)` checks a folder and returns a `TokenData`; `write_token_folder` makes one from arrays
already packed (tests and tools that make token data without the step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textbooks.errors import UserError
from textbooks.store import data
from textbooks.tokens.tokenizer import eos_id, load_tokenizer, vocab_size

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FORMAT, VERSION = "textbooks-tokens", 1
META = "meta.json"
TOKENIZER_DIR = "tokenizer"
SPLITS = ("train", "val")


def token_dtype(vocab_entries: int) -> np.dtype:
    """uint16 when every id fits (GPT-2 and CodeGen tokenizers do), else uint32; little-endian either way."""
    return np.dtype("<u2") if vocab_entries <= 1 << 16 else np.dtype("<u4")


@dataclass(frozen=True)
class TokenData:
    """A finished token folder, as the trainer sees it."""

    folder: Path
    meta: dict

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.meta["eos_id"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta["dtype"]).newbyteorder("<")

    @property
    def tokenizer_dir(self) -> Path:
        """The tokenizer the ids come from; `textbooks.tokens.tokenizer.load_tokenizer` loads it."""
        return self.folder / self.meta["tokenizer"]

    @property
    def val_unigram_entropy(self) -> float:
        return float(self.meta["val_unigram_entropy"])

    def split(self, name: str) -> np.ndarray:
        """The split's token ids as a read-only memory map (nothing is loaded until sliced)."""
        if name not in self.meta["splits"]:
            raise UserError(f"{self.folder}: no split {name!r}; it has {', '.join(self.meta['splits'])}")
        if not self.meta["splits"][name]["tokens"]:
            empty = np.empty(0, self.dtype)  # a memory map cannot be empty
            empty.flags.writeable = False
            return empty
        return np.memmap(self.folder / f"{name}.bin", dtype=self.dtype, mode="r")


def open_tokens(folder: str | Path) -> TokenData:
    """A finished token folder; anything else (unfinished, another format, truncated files) is a `UserError`."""
    folder = Path(folder)
    meta_path = folder / META
    try:
        meta = data.read_json(meta_path) if meta_path.is_file() else {}
    except ValueError:
        meta = {}
    if not data.is_complete(folder) or meta.get("format") != FORMAT:
        raise UserError(f"{folder}: not a finished token dataset; run `textbooks tokenize` first")
    if meta.get("version") != VERSION:
        raise UserError(f"{folder}: token format version {meta.get('version')}, this toolkit reads {VERSION}; "
                        "run `textbooks tokenize` again")
    tokens = TokenData(folder, meta)
    for name, split in meta["splits"].items():
        path = folder / f"{name}.bin"
        expected = split["tokens"] * tokens.dtype.itemsize
        if not path.is_file() or path.stat().st_size != expected:
            raise UserError(f"{path}: missing or not {expected} bytes as meta.json says; run `textbooks tokenize` "
                            "again into a fresh folder")
    return tokens


def write_token_folder(out: Path, splits: dict[str, np.ndarray], tokenizer: PreTrainedTokenizerBase | str | Path,
                       *, tokenizer_source: str = "given", meta_extra: dict | None = None) -> TokenData:
    """A finished token folder from arrays already packed (with eos after each document), for tests and tools
    that make token data without the step; `tokenizer` is a transformers tokenizer or its folder."""
    out = Path(out)
    tokenizer = load_tokenizer(str(tokenizer)) if isinstance(tokenizer, (str, Path)) else tokenizer
    dtype, eos = token_dtype(vocab_size(tokenizer)), eos_id(tokenizer)
    tokenizer.save_pretrained(out / TOKENIZER_DIR)
    for name, array in splits.items():
        data.write_bytes(np.asarray(array, dtype).tobytes(), out / f"{name}.bin")
    counts = {name: {"tokens": len(array), "documents": int(np.count_nonzero(np.asarray(array) == eos))}
              for name, array in splits.items()}
    val = np.asarray(splits.get("val", np.empty(0, dtype)))
    entropy = unigram_entropy(np.bincount(val, minlength=vocab_size(tokenizer)))
    data.write_json(folder_meta(tokenizer, tokenizer_source, counts, [], entropy) | (meta_extra or {}), out / META)
    data.write_marker(out, {"stage": "tokenize", "fingerprint": None, "finished": time.time()})
    return open_tokens(out)


def folder_meta(tokenizer: PreTrainedTokenizerBase, tokenizer_source: str, splits: dict, sources: list[dict],
          entropy: float) -> dict:
    return {"format": FORMAT, "version": VERSION, "dtype": token_dtype(vocab_size(tokenizer)).name,
            "vocab_size": vocab_size(tokenizer), "eos_id": eos_id(tokenizer), "tokenizer": TOKENIZER_DIR,
            "tokenizer_source": tokenizer_source, "splits": splits, "sources": sources,
            "val_unigram_entropy": entropy}


def unigram_entropy(counts: np.ndarray) -> float:
    """Entropy in nats of the distribution with these counts."""
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())
