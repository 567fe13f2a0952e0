"""n-gram overlap with benchmark problems: which rows share runs of `n` code tokens with which problem.

    index = NgramIndex([target.document for target in targets], n=13)
    rows, problems, shared, counts = index.match(texts)   # each (row, problem) sharing n-grams; n-grams per text
    overlap(shared, counts[rows], index.sizes[problems])  # 1.0: all of the row is in the problem, or all of it
                                                          # in the row

Tokens are the dedup step's code tokens with names as written (`dedup.tokens.written_tokens`): comments are gone,
layout does not exist and a string counts by its words, so a copy that was re-indented, re-wrapped or re-commented
still shares its n-grams. Each distinct n-gram of a document is a 64-bit hash (`window_keys`: Python's hash of each
token, a polynomial over the window by prefix sums); a row's hashes are looked up in the sorted hashes of every
problem's n-grams at once, so one pass over a part of the dataset does all problems, and false matches are about
n-grams x problems' n-grams / 2^64 (none in practice). A document shorter than `n` tokens is one n-gram of all its
tokens. The paper (section 5) counted 13-grams over docstrings; here a problem's text is its prompt and its
solution, so a shared 13-gram may be a common line of code. The overlap coefficient (shared n-grams over those of
the smaller of the two) tells a copy from a coincidence: a verbatim copy of a solution without its prompt, and a
problem pasted inside a long file, both score near 1.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import chain
from typing import Callable, Sequence

import numpy as np

from textbooks.dedup.tokens import written_tokens

_BASE = np.uint64(0x100000001B3)  # odd, so it has an inverse modulo 2^64
_BASE_INVERSE = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_OWNER_BITS = 24  # parts of up to 16M rows: (key top bits | owner) counts distinct n-grams per row


def tokens(text: str) -> list[str]:
    """The code tokens of `text` with names as written (`dedup.tokens.written_tokens`)."""
    return written_tokens(text)


def window_keys(token_lists: Sequence[list[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """`(owner, key)` for every window of `n` tokens of every token list (a shorter list is one window of all its
    tokens): its index (int64) and a 64-bit polynomial hash of the window's tokens, in text order.

    Tokens are hashed with Python's `hash` (salted per process: keys are only compared within the process that
    made them, where the index is built) and each window's hash comes from prefix sums modulo 2^64:
    `P[i] = sum t[j] B^(i-j)`, window `[s, e)` = `P[e-1] - P[s-1] B^(e-s)`, so the cost is one pass however
    long the windows are."""
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    total = int(lengths.sum())
    hashed = np.fromiter(map(hash, chain.from_iterable(token_lists)), dtype=np.int64, count=total).view(np.uint64)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(total + 1, _BASE, dtype=np.uint64))
        powers[1:] = powers[:-1]
        powers[0] = 1
        inverses = np.cumprod(np.full(total + 1, _BASE_INVERSE, dtype=np.uint64))
        inverses[1:] = inverses[:-1]
        inverses[0] = 1
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(hashed * inverses[:total], dtype=np.uint64)))
        windows = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
        owner = np.repeat(np.arange(len(lengths), dtype=np.int64), windows)
        first_token = np.cumsum(lengths) - lengths
        starts = np.repeat(first_token - np.cumsum(windows) + windows, windows) + np.arange(windows.sum())
        ends = starts + np.repeat(np.minimum(lengths, n), windows)
        # sum_{j in [s, e)} t_j B^(e-1-j) = (prefix[e] - prefix[s]) * B^(e-1)
        keys = (prefix[ends] - prefix[starts]) * powers[ends - 1]
        keys = keys * _BASE + np.repeat(np.minimum(lengths, n).astype(np.uint64), windows)  # length apart
    return owner, keys


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (np.unique sorts again, and is ten times slower on uint64)."""
    keep = np.ones(ordered.size, dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def distinct_per_owner(owner: np.ndarray, keys: np.ndarray, owners: int) -> np.ndarray:
    """The number of distinct keys of each owner (0..owners-1)."""
    if owners >= 1 << _OWNER_BITS:
        raise ValueError(f"{owners} rows in one part: at most {1 << _OWNER_BITS} are counted at once")
    low = np.uint64((1 << _OWNER_BITS) - 1)
    packed = _distinct(np.sort((keys & ~low) | owner.astype(np.uint64)))
    return np.bincount((packed & low).astype(np.int64), minlength=owners).astype(np.int64)


class NgramIndex:
    """The n-grams of a list of documents (the benchmark problems), sorted for lookup."""

    def __init__(self, documents: Sequence[str], n: int = 13) -> None:
        if n < 1:
            raise ValueError(f"n-gram length {n} must be at least 1")
        self.n = n
        owner, keys = window_keys([tokens(document) for document in documents], n)
        pairs = np.unique(np.stack([keys, owner.astype(np.uint64)], axis=1), axis=0)  # distinct per document
        self.keys, self.owners = pairs[:, 0], pairs[:, 1].astype(np.int64)  # sorted by key
        self.sizes = np.bincount(self.owners, minlength=len(documents)).astype(np.int64)  # n-grams per document

    def match(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`(row, problem, shared, counts)`: every pair of a text and a document that share `shared` >= 1
        n-grams, sorted by row then problem, and the number of distinct n-grams of each text."""
        return self.match_tokens([tokens(text) for text in texts])

    def match_tokens(self, token_lists: Sequence[list[str]]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`match` for texts already cut into `tokens`."""
        owner, keys = window_keys(token_lists, self.n)
        per_text = distinct_per_owner(owner, keys, len(token_lists))
        found = np.searchsorted(self.keys, keys, side="left")
        hit = np.flatnonzero(self.keys[np.minimum(found, max(self.keys.size - 1, 0))] == keys) \
            if self.keys.size else np.zeros(0, dtype=np.int64)
        # a row's repeated n-gram counts once
        unique_hits = np.unique(np.stack([owner[hit].astype(np.uint64), keys[hit]], axis=1), axis=0)
        owner, keys = unique_hits[:, 0].astype(np.int64), unique_hits[:, 1]
        left = np.searchsorted(self.keys, keys, side="left")
        right = np.searchsorted(self.keys, keys, side="right")
        hits = np.flatnonzero(right > left)
        counts = (right - left)[hits]
        starts = np.repeat(left[hits] - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        rows = np.repeat(owner[hits], counts)
        problems = self.owners[starts]
        width = max(len(self.sizes), 1)
        pairs, shared = np.unique(rows * width + problems, return_counts=True)
        return pairs // width, pairs % width, shared.astype(np.int64), per_text


def overlap(shared: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The overlap coefficient: shared n-grams over the n-grams of the smaller of the two texts."""
    return np.asarray(shared, dtype=np.float64) / np.maximum(np.minimum(first, second), 1)


def set_overlap(documents: Sequence[str], texts: Sequence, n: int = 13,
                tokenize: Callable[[str], list[str]] = tokens) -> dict[tuple[int, int], int]:
    """The straightforward way (a set of token tuples per problem, a dict from n-gram to problems, a loop over
    each row's n-grams): `{(row, problem): shared}`. The peer `bench/decontam_speed.py` measures `NgramIndex`
    against; documents shorter than `n` tokens have no n-gram here. `tokenize` may be `list` for texts given as
token lists already."""
    owners: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for problem, document in enumerate(documents):
        words = tokens(document)
        for gram in {tuple(words[start:start + n]) for start in range(len(words) - n + 1)}:
            owners[gram].append(problem)
    found: dict[tuple[int, int], int] = defaultdict(int)
    for row, text in enumerate(texts):
        words = tokenize(text)
        for gram in {tuple(words[start:start + n]) for start in range(len(words) - n + 1)}:
            for problem in owners.get(gram, ()):
                found[row, problem] += 1
    return dict(found)
