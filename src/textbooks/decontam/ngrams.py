"""n-gram overlap with benchmark problems: which rows share runs of `n` code tokens with which problem.

    index = NgramIndex([target.document for target in targets], n=13)
    rows, problems, shared, counts = index.match(texts)   # each (row, problem) sharing n-grams; n-grams per text
    overlap(shared, counts[rows], index.sizes[problems])  # 1.0: all of the row is in the problem, or all of it
                                                          # in the row

Tokens are the dedup step's code tokens with names as written (`dedup.tokens.code_token_views`, the first):
comments are gone, layout does not exist and a string counts by its words, so a copy that was re-indented,
re-wrapped or re-commented still shares its n-grams. Each distinct n-gram of a document is a 64-bit hash
(`dedup.shingles.window_hashes`, mixed); a row's hashes are looked up in the sorted hashes of every problem's
n-grams at once, so one pass over a part of the dataset does all problems, and false matches are about
n-grams x problems' n-grams / 2^64 (none in practice). A document shorter than `n` tokens is one n-gram of
all its tokens. The paper (section 5) counted 13-grams over docstrings; here a problem's text is its prompt and
its solution, so a shared 13-gram may be a common line of code. The overlap coefficient (shared n-grams over
those of the smaller of the two) tells a copy from a coincidence: a verbatim copy of a solution without its
prompt, and a problem pasted inside a long file, both score near 1.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from textbooks.dedup.shingles import mix64, token_hashes, window_hashes
from textbooks.dedup.tokens import code_token_views


def tokens(text: str) -> list[str]:
    """The code tokens of `text` with names as written."""
    return code_token_views(text)[0]


def ngram_keys(token_lists: Sequence[list[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """`(owner, key)` for every distinct n-gram of every token list: its index (int64) and the 64-bit hash."""
    streams = [token_hashes(words) for words in token_lists]
    lengths = np.fromiter(map(len, streams), dtype=np.int64, count=len(streams))
    flat = np.fromiter((value for stream in streams for value in stream), dtype=np.uint64,
                       count=int(lengths.sum()))
    owner, hashes = window_hashes(flat, lengths, n)
    keys = mix64(hashes)
    order = np.lexsort((keys, owner))
    owner, keys = owner[order].astype(np.int64), keys[order]
    distinct = np.ones(keys.size, dtype=bool)
    distinct[1:] = (owner[1:] != owner[:-1]) | (keys[1:] != keys[:-1])
    return owner[distinct], keys[distinct]


class NgramIndex:
    """The n-grams of a list of documents (the benchmark problems), sorted for lookup."""

    def __init__(self, documents: Sequence[str], n: int = 13) -> None:
        if n < 1:
            raise ValueError(f"n-gram length {n} must be at least 1")
        self.n = n
        owner, keys = ngram_keys([tokens(document) for document in documents], n)
        order = np.argsort(keys, kind="stable")
        self.keys, self.owners = keys[order], owner[order]
        self.sizes = np.bincount(owner, minlength=len(documents)).astype(np.int64)  # n-grams per document

    def match(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`(row, problem, shared, counts)`: every pair of a text and a document that share `shared` >= 1
        n-grams, sorted by row then problem, and the number of distinct n-grams of each text."""
        return self.match_tokens([tokens(text) for text in texts])

    def match_tokens(self, token_lists: Sequence[list[str]]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`match` for texts already cut into `tokens`."""
        owner, keys = ngram_keys(token_lists, self.n)
        per_text = np.bincount(owner, minlength=len(token_lists)).astype(np.int64)
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


def set_overlap(documents: Sequence[str], texts: Sequence[str], n: int = 13) -> dict[tuple[int, int], int]:
    """The straightforward way (a set of token tuples per problem, a dict from n-gram to problems, a loop over
    each row's n-grams): `{(row, problem): shared}`. The peer `bench/decontam_speed.py` measures `NgramIndex`
    against; documents shorter than `n` tokens have no n-gram here."""
    owners: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for problem, document in enumerate(documents):
        words = tokens(document)
        for gram in {tuple(words[start:start + n]) for start in range(len(words) - n + 1)}:
            owners[gram].append(problem)
    found: dict[tuple[int, int], int] = defaultdict(int)
    for row, text in enumerate(texts):
        words = tokens(text)
        for gram in {tuple(words[start:start + n]) for start in range(len(words) - n + 1)}:
            for problem in owners.get(gram, ()):
                found[row, problem] += 1
    return dict(found)
