"""Tokenizers: train a byte-level BPE on our own text, or load the paper's (CodeGen's) from a folder or the hub.

    tokenizer = train_tokenizer(texts, vocab_size=8192, out_dir=Path("runs/x/tokenizer"))
    tokenizer = load_tokenizer("Salesforce/codegen-350M-mono")   # phi-1's: 50,295 entries, <|endoftext|> = 50256

phi-1 uses CodeGen's tokenizer, GPT-2's byte-level BPE plus tokens for runs of spaces and tabs. The offline demo
cannot download it, so it trains the same kind of tokenizer on its own corpus: byte-level, so every string
(indentation, tabs, any unicode) decodes back exactly, with `<|endoftext|>` as its only special token, the
document separator of the packed stream. Either way the result is a transformers fast tokenizer folder that
`AutoTokenizer.from_pretrained` loads.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer

from textbooks.errors import UserError
from textbooks.store import hub

if TYPE_CHECKING:  # transformers takes seconds to import: only the functions that need it do
    from transformers import PreTrainedTokenizerBase

EOS = "<|endoftext|>"
BYTE_ALPHABET = 256
ENCODE_BATCH = 1024  # documents per call into the Rust tokenizer, which spreads a batch over every core


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: Path, min_frequency: int = 2) -> Path:
    """Train a byte-level BPE with `vocab_size` entries (256 bytes, `<|endoftext|>`, merges) into `out_dir`.

    GPT-2's pre-tokenizer without a prefix space, so a text is encoded the same at the start of a document as
    anywhere else, and decoding gives back the original text byte for byte.
    """
    from tokenizers import decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < BYTE_ALPHABET + 1:
        raise UserError(f"vocab_size {vocab_size} is too small: a byte-level BPE needs the {BYTE_ALPHABET} bytes "
                        f"and {EOS}; use at least {BYTE_ALPHABET + 1}")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=sys.stderr.isatty())  # its bars, on a terminal only
    bpe.train_from_iterator(texts, trainer=trainer)
    # A byte-level BPE never needs an unknown token; transformers wants one named, so it is the separator.
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, unk_token=EOS,
                                   clean_up_tokenization_spaces=False)
    out_dir = Path(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """A fast tokenizer from a local folder (a `save_pretrained` output) or a hub name such as
    `Salesforce/codegen-350M-mono`; refused without an end-of-text token, which packing needs between documents."""
    from transformers import AutoTokenizer

    where = str(name_or_path)
    path = Path(where).expanduser()
    if not path.is_dir() and (path.is_absolute() or where.startswith((".", "~")) or where.count("/") > 1):
        raise UserError(f"tokenizer {where!r}: no such folder; pass a folder with tokenizer.json (a "
                        "save_pretrained output), or a hub name such as Salesforce/codegen-350M-mono")
    if not path.is_dir():
        hub.prepare()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path) if path.is_dir() else where)
    # Offline, unknown repo, malformed files: transformers raises many types, all the setting's fault.
    except Exception as error:  # noqa: BLE001
        raise UserError(f"tokenizer {where!r}: cannot load it ({type(error).__name__}: {error}); pass a local "
                        "folder with tokenizer.json (a save_pretrained output), or a hub name when online") from None
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"tokenizer {where!r}: not a fast (Rust) tokenizer; save one with tokenizer.json")
    if tokenizer.eos_token_id is None:
        raise UserError(f"tokenizer {where!r}: has no end-of-text (eos) token, which separates documents when "
                        f"packing; set eos_token in its tokenizer_config.json (e.g. {EOS!r})")
    return tokenizer


def eos_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id of the document separator."""
    return int(tokenizer.eos_token_id)


def vocab_size(tokenizer: PreTrainedTokenizerBase) -> int:
    """Entries including added tokens (CodeGen's whitespace runs): the embedding needs at least this many rows."""
    return len(tokenizer)


def text_encoder(tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    """A copy of the Rust tokenizer that reads special-token text inside a document (a file that mentions
    `<|endoftext|>`) as plain text, so the separator id only ever marks a document boundary."""
    encoder = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    encoder.encode_special_tokens = True
    encoder.no_truncation()
    encoder.no_padding()
    return encoder


def encode_documents(encoder: Tokenizer, texts: list[str], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The documents' token ids end to end (no separators) and each document's token count, encoded in
    batches so Rust works on many documents at once and Python only copies ids into one array."""
    lengths, chunks = np.empty(len(texts), np.int64), []
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = [encoding.ids for encoding in
                 encoder.encode_batch_fast(texts[start:start + ENCODE_BATCH], add_special_tokens=False)]
        lengths[start:start + len(batch)] = [len(ids) for ids in batch]
        count = int(lengths[start:start + len(batch)].sum())
        chunks.append(np.fromiter(itertools.chain.from_iterable(batch), dtype, count=count))
    return (np.concatenate(chunks) if chunks else np.empty(0, dtype)), lengths
