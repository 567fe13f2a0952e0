"""Pure measures of a dataset's redundancy and balance, read off its texts in one streaming pass.

- `distinct_n`: distinct token n-grams over all token n-grams of the dataset (lower = phrasing repeats). The
  tokens are dedup's `code_tokens`, so a copy with its local variables renamed, re-indented or re-commented
  repeats n-grams exactly as a verbatim copy does.
- `compression_ratio`: raw bytes over zstd bytes in long-distance mode (higher = more redundant). Its window
  (128 MiB by default) sees a row repeated far away, which gzip's 32 KB window does not.
- `imported_libraries`: the paper's figure 3.1 histogram, the top-level modules imported, once per row.
- `balance`: entropy, largest share and top entries of any histogram (libraries, topics, clusters).

Embedding-space spread (Vendi score, cluster entropy, nearest-neighbour distance) is in `spread.py`.

    from textbooks.diversity.measures import balance, compression_ratio, distinct_n, imported_libraries
    from textbooks.store import data

    texts = data.read_dataset(folder).column("text").to_pylist()
    distinct_n(texts)                    # {1: ..., 2: ..., 3: ..., 4: ...}, each in (0, 1]
    compression_ratio(texts)             # >= 1 for anything but tiny inputs
    balance(imported_libraries(texts))   # {"distinct": ..., "entropy_bits": ..., "top": [["typing", 812], ...]}

The incremental forms take a dataset in pieces (`update` per Parquet batch, then `result`) and give what the
one-shot functions give on the whole.

Measured (tests/test_diversity_measures.py, Python 3.11): 400 rows made by renaming and re-phrasing 20 short
exercises have distinct-1..4 of 0.021, 0.050, 0.067, 0.081 and compress 10.8x; 400 short functions of the
standard library have 0.089, 0.240, 0.405, 0.542 and compress 3.9x.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from itertools import chain, islice
from typing import Iterable, Mapping, Sequence

import numpy as np
import zstandard

from textbooks.corpus.units import parse_python
from textbooks.dedup.shingles import mix64, token_hashes
from textbooks.dedup.tokens import code_tokens

_BATCH_ROWS = 2048  # rows tokenized and hashed together: one NumPy pass per n instead of one per row
_MERGE_AT = 1 << 20  # pending n-gram hashes merged into the sorted set at this size (or half the set's)
_UTF8 = ("utf-8", "surrogatepass")  # a lone surrogate is a byte sequence to count, not an error


class DistinctN:
    """Distinct / all token n-grams of a dataset fed in pieces: `update(texts)` any number of times, `result()`.

    An n-gram is a 64-bit hash: each token's is dedup's BLAKE2b-64 digest (the same in every process, unlike
    `hash`), and an n-gram's is `mix64(mix64(t1) + t2) + t3 ...` over its tokens' in order. Two different
    n-grams share a hash with probability about 2**-64, so a count of D distinct ones is off by D**2 / 2**65
    in expectation: under 0.03 at a billion. The distinct hashes of each n are kept as a sorted uint64 array,
    8 bytes each (a Python set of ints takes about 70), plus the new ones waiting to be merged in, at most
    half as many again. n-grams never cross a row boundary.
    """

    def __init__(self, ns: Sequence[int] = (1, 2, 3, 4)) -> None:
        if not ns or any(not isinstance(n, int) or n < 1 for n in ns):
            raise ValueError(f"distinct-n: ns must be positive integers, got {list(ns)!r}")
        self.ns = tuple(ns)
        self._seen = {n: _HashSet() for n in self.ns}
        self._total = dict.fromkeys(self.ns, 0)

    def update(self, texts: Iterable[str]) -> None:
        rows = iter(texts)
        while batch := list(islice(rows, _BATCH_ROWS)):
            self._add(*_batch_token_hashes(batch))

    def update_hashes(self, hashes: Sequence[list[int]]) -> None:
        """`update` from each row's `token_hashes(code_tokens(text)[0])`, when the caller has them already."""
        for start in range(0, len(hashes), _BATCH_ROWS):
            self._add(*_flat(hashes[start:start + _BATCH_ROWS]))

    def _add(self, tokens: np.ndarray, row_of: np.ndarray) -> None:
        for n in self.ns:
            hashes = _ngram_hashes(tokens, row_of, n)
            self._total[n] += len(hashes)
            self._seen[n].add(hashes)

    def result(self) -> dict[int, float]:
        """Distinct / all n-grams for each n; 0.0 for an n no row is long enough to have."""
        return {n: len(self._seen[n]) / self._total[n] if self._total[n] else 0.0 for n in self.ns}


def distinct_n(texts: Iterable[str], ns: Sequence[int] = (1, 2, 3, 4)) -> dict[int, float]:
    """Distinct token n-grams / all token n-grams over the whole dataset, for each n (see `DistinctN`)."""
    counter = DistinctN(ns)
    counter.update(texts)
    return counter.result()


class _HashSet:
    """Distinct uint64 values: a sorted unique array plus a buffer of new ones, merged when it grows large."""

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, values: np.ndarray) -> None:
        values = np.unique(values)
        self._pending.append(values)
        self._pending_size += len(values)
        if self._pending_size >= max(_MERGE_AT, len(self._sorted) // 2):
            self._merge()

    def __len__(self) -> int:
        self._merge()
        return len(self._sorted)

    def _merge(self) -> None:
        if self._pending:
            self._sorted = np.unique(np.concatenate([self._sorted, *self._pending]))
            self._pending, self._pending_size = [], 0


def _batch_token_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of every row's code tokens, concatenated, and the row each token belongs to."""
    return _flat([token_hashes(code_tokens(text)[0]) for text in texts])


def _flat(hashes: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, hashes), dtype=np.int64, count=len(hashes))
    tokens = np.fromiter(chain.from_iterable(hashes), dtype=np.uint64, count=int(lengths.sum()))
    return tokens, np.repeat(np.arange(len(hashes)), lengths)


def _ngram_hashes(tokens: np.ndarray, row_of: np.ndarray, n: int) -> np.ndarray:
    """The hash of every n-gram that lies within one row (uint64 arithmetic wraps, as intended)."""
    count = len(tokens) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    hashes = tokens[:count]
    for offset in range(1, n):
        hashes = mix64(hashes) + tokens[offset:offset + count]
    return hashes[row_of[:count] == row_of[n - 1:]]


class Compression:
    """Raw / zstd-compressed bytes of texts fed in pieces: `update(texts)` any number of times, then `result()`.

    zstd runs in long-distance-matching mode with a window of 2**window_log bytes (the compressor holds that
    much history: 128 MiB at the default 27), so a row repeated anywhere in the last window compresses to a
    few bytes. Rows are joined with newlines. `result()` ends the zstd frame: no `update` after it.
    """

    def __init__(self, level: int = 3, window_log: int = 27) -> None:
        if not zstandard.WINDOWLOG_MIN <= window_log <= zstandard.WINDOWLOG_MAX:
            raise ValueError(f"compression: window_log must be in [{zstandard.WINDOWLOG_MIN}, "
                             f"{zstandard.WINDOWLOG_MAX}], got {window_log}")
        parameters = zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log, enable_ldm=True)
        self._stream = zstandard.ZstdCompressor(compression_params=parameters).compressobj()
        self._rows = 0
        self._raw_bytes = 0
        self._compressed_bytes = 0
        self._ratio: float | None = None

    def update(self, texts: Iterable[str]) -> None:
        if self._ratio is not None:
            raise RuntimeError("Compression.update after result(): the zstd frame is closed; start a new one")
        for text in texts:
            raw = (text if not self._rows else "\n" + text).encode(*_UTF8)
            self._rows += 1
            self._raw_bytes += len(raw)
            self._compressed_bytes += len(self._stream.compress(raw))

    def result(self) -> float:
        """Raw / compressed bytes; 1.0 when there were no bytes at all."""
        if self._ratio is None:
            self._compressed_bytes += len(self._stream.flush())
            self._ratio = self._raw_bytes / self._compressed_bytes if self._raw_bytes else 1.0
        return self._ratio


def compression_ratio(texts: Iterable[str], level: int = 3, window_log: int = 27) -> float:
    """Raw bytes / zstd long-distance-mode bytes of the texts joined by newlines (see `Compression`)."""
    compression = Compression(level, window_log)
    compression.update(texts)
    return compression.result()


_IMPORT_LINE = re.compile(r"^[ \t]*import[ \t]+([^#;\n]+)", re.MULTILINE)
_FROM_LINE = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import\b", re.MULTILINE)


def imported_libraries(texts: Iterable[str]) -> Counter[str]:
    """In how many rows each top-level module is imported (`import x.y` and `from x.y import z` count `x`).

    Relative imports and `__future__` (a compiler directive) are not libraries and do not count. A row that
    does not parse falls back to reading `import` / `from ... import` lines with a regex (which also reads
    such lines inside strings).
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_row_imports(text) - {"__future__"})
    return counts


def _row_imports(text: str) -> set[str]:
    tree = parse_python(text)
    return _line_imports(text) if tree is None else tree_imports(tree)


def tree_imports(tree: ast.AST) -> set[str]:
    """The top-level modules a parsed tree imports (relative imports and `__future__` left out). Only statements
    are visited (an import is one), not the expressions that are most of a tree's nodes."""
    modules = set()
    statements = list(getattr(tree, "body", []))
    while statements:
        node = statements.pop()
        if isinstance(node, ast.Import):
            modules.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.partition(".")[0])
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            statements.extend(child for child in getattr(node, field, ()) if isinstance(child, ast.AST))
    return modules - {"__future__"}


def _line_imports(text: str) -> set[str]:
    modules = {name.partition(".")[0] for name in _FROM_LINE.findall(text) if not name.startswith(".")}
    for names in _IMPORT_LINE.findall(text):
        for alias in names.split(","):
            words = alias.split()
            module = words[0].partition(".")[0] if words else ""
            if module.isidentifier():
                modules.add(module)
    return modules


def balance(counts: Mapping[str, int], top: int = 10) -> dict:
    """How evenly a histogram spreads: entropy in bits, that entropy over its maximum, the largest share.

    `{"distinct", "total", "entropy_bits", "normalized_entropy" (1.0 when at most one entry), "largest_share"
    (None when empty), "top": [[name, count], ...]}` (most first, ties by name). Zero counts are left out.
    """
    negative = {name: count for name, count in counts.items() if count < 0}
    if negative:
        raise ValueError(f"balance: counts must not be negative, got {negative}")
    present = {name: count for name, count in counts.items() if count > 0}
    total = sum(present.values())
    ranked = sorted(present.items(), key=lambda item: (-item[1], item[0]))
    # summed in this fixed order: a Counter filled from sets is in an order that changes with PYTHONHASHSEED
    shares = np.array([count for _, count in ranked], dtype=np.float64) / max(total, 1)
    entropy = float(np.sum(shares * np.log2(1 / shares))) if present else 0.0
    return {
        "distinct": len(present),
        "total": total,
        "entropy_bits": entropy,
        "normalized_entropy": entropy / math.log2(len(present)) if len(present) > 1 else 1.0,
        "largest_share": ranked[0][1] / total if present else None,
        "top": [[name, count] for name, count in ranked[:top]],
    }
