"""The packed token streams: which documents, from which weighted sources, in what order, written end to end.

phi-1's CodeTextbook is filtered code plus synthetic textbooks, and the paper trains on it for about 8 passes;
how much of each part the model sees is a choice the toolkit makes explicit. Each source gets the share
weight / sum(weights) of the training tokens (a document counts its tokens plus the `<|endoftext|>` after it).
The total is the `tokens` setting when given; otherwise the largest total that repeats no source, so the source
that runs out first is used exactly once and the others are subsampled.

A source's documents are drawn whole, in a seeded shuffled order; when its share needs more than the source
holds, it is drawn again in a fresh shuffled order (every document repeated before any is repeated twice),
and the last pass stops at the first document that reaches the share. All drawn documents of all sources are
then shuffled together, so a training window mixes sources.

`write_stream` copies the chosen documents' tokens out of the tokenized parts into one flat file, with the
separator after each document, in vectorised slices rather than a Python loop per document.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WRITE_TOKENS = 1 << 22  # about this many tokens gathered per write: bounds the index arrays (2 x 32 MiB)
# Each random stream has its own tag, so no two of them share a seed sequence.
DRAW, INTERLEAVE, VALIDATION = range(3)


@dataclass(frozen=True)
class Draw:
    """What one source gives the training stream: positions into its documents, in draw order, and counts."""

    picks: np.ndarray
    documents: int
    natural_tokens: int
    tokens: int
    target_share: float

    def summary(self, total_tokens: int) -> dict:
        """The per-source record kept in meta.json and stats.json."""
        unique = int(np.unique(self.picks).size)
        return {
            "documents": self.documents,
            "natural_tokens": self.natural_tokens,
            "tokens": self.tokens,
            "target_share": round(self.target_share, 6),
            "share": round(self.tokens / total_tokens, 6) if total_tokens else 0.0,
            "documents_drawn": int(self.picks.size),
            "documents_unused": self.documents - unique,
            "repeated_documents": int(self.picks.size) - unique,
            "passes": round(self.tokens / self.natural_tokens, 4) if self.natural_tokens else 0.0,
        }


def draw_sources(costs: list[np.ndarray], weights: list[float], tokens: int | None, seed: int) -> list[Draw]:
    """One `Draw` per source; `costs[i]` holds the token count (with separator) of each document of source i."""
    total_weight = sum(weights)
    shares = [weight / total_weight for weight in weights]
    natural = [int(cost.sum()) for cost in costs]
    total = tokens if tokens is not None else min(tokens_i / share for tokens_i, share in zip(natural, shares))
    draws = []
    for index, (cost, share) in enumerate(zip(costs, shares)):
        # round() makes the limiting source's target exactly its natural size despite the float division above.
        picks = draw_documents(cost, round(total * share), seed, index)
        draws.append(Draw(picks, int(cost.size), natural[index], int(cost[picks].sum()), share))
    return draws


def draw_documents(cost: np.ndarray, target: int, seed: int, source: int) -> np.ndarray:
    """Positions of whole documents, in seeded shuffled passes, until their tokens first reach `target`."""
    natural = int(cost.sum())
    if target <= 0 or natural == 0:
        return np.empty(0, np.int64)
    full_passes, rest = divmod(target, natural)
    passes = [_order(cost.size, seed, source, number) for number in range(full_passes)]
    if rest:
        last = _order(cost.size, seed, source, full_passes)
        count = int(np.searchsorted(np.cumsum(cost[last]), rest, side="left")) + 1
        passes.append(last[:count])
    return np.concatenate(passes)


def interleave(draws: list[Draw], documents: list[np.ndarray], seed: int) -> np.ndarray:
    """Every drawn document, named by `documents[source]` (its global index), in one seeded shuffle."""
    drawn = np.concatenate([names[draw.picks] for draw, names in zip(draws, documents)])
    return shuffled(drawn, seed, INTERLEAVE)


def shuffled(indices: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """`indices` in a seeded random order; `stream` is one of this module's tags."""
    return np.random.default_rng([seed, stream]).permutation(indices)


def _order(count: int, seed: int, source: int, number: int) -> np.ndarray:
    return np.random.default_rng([seed, DRAW, source, number]).permutation(count).astype(np.int64)


@dataclass(frozen=True)
class Documents:
    """Every document of every source: the tokenized part that holds it, where, how long, its source, id hash."""

    part: np.ndarray
    start: np.ndarray
    length: np.ndarray
    source: np.ndarray
    id_hash: np.ndarray

    @classmethod
    def from_parts(cls, parts: Iterable[tuple[int, int, np.ndarray, np.ndarray]]) -> Documents:
        """From (part number, source index, token count of each document, id hash of each document) per part."""
        columns: dict[str, list[np.ndarray]] = {name: [] for name in ("part", "start", "length", "source", "id_hash")}
        for number, source, lengths, id_hash in parts:
            columns["part"].append(np.full(lengths.size, number, np.int32))
            columns["start"].append(np.cumsum(lengths) - lengths)
            columns["length"].append(lengths.astype(np.int64))
            columns["source"].append(np.full(lengths.size, source, np.int32))
            columns["id_hash"].append(id_hash)
        return cls(**{name: np.concatenate(arrays) for name, arrays in columns.items()})


def write_stream(path: Path, order: np.ndarray, documents: Documents, tokens_of: Callable[[int], np.ndarray],
                 eos: int, dtype: np.dtype, counts: np.ndarray | None = None, desc: str | None = None) -> dict:
    """Write the documents `order` names, each followed by `eos`, to `path` (fsynced); `tokens_of(part)` gives
    a part's tokens end to end. Token frequencies are added to `counts` when given; `desc` names a progress
    bar in tokens (on a terminal)."""
    from tqdm.auto import tqdm

    ends = np.cumsum(documents.length[order] + 1)
    cuts = np.searchsorted(ends, np.arange(WRITE_TOKENS, int(ends[-1]) if ends.size else 0, WRITE_TOKENS))
    tokens = 0
    with open(path, "wb") as handle, tqdm(total=int(ends[-1]) if ends.size else 0, desc=desc, unit="token",
                                           unit_scale=True, disable=None if desc else True, leave=False) as bar:
        for chosen in np.split(order, np.unique(cuts)):
            chunk = _gather(chosen, documents, tokens_of, eos, dtype)
            chunk.tofile(handle)
            tokens += chunk.size
            bar.update(chunk.size)
            if counts is not None:
                counts += np.bincount(chunk, minlength=counts.size)
        handle.flush()
        os.fsync(handle.fileno())
    return {"tokens": tokens, "documents": int(order.size)}


def _gather(chosen: np.ndarray, documents: Documents, tokens_of: Callable[[int], np.ndarray], eos: int,
            dtype: np.dtype) -> np.ndarray:
    """The chosen documents' tokens end to end with eos after each, copied one part at a time."""
    lengths = documents.length[chosen]
    destination = np.cumsum(lengths + 1) - (lengths + 1)
    out = np.empty(int(lengths.sum()) + chosen.size, dtype)
    out[destination + lengths] = eos
    part_of = documents.part[chosen]
    by_part = np.argsort(part_of, kind="stable")
    for group in np.split(by_part, np.flatnonzero(np.diff(part_of[by_part])) + 1):
        if group.size:
            source_range = _ranges(documents.start[chosen[group]], lengths[group])
            out[_ranges(destination[group], lengths[group])] = tokens_of(int(part_of[group[0]]))[source_range]
    return out


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(start, start + length) for each pair, without a Python loop."""
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
