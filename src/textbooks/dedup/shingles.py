"""Token streams to shingle sets: the 32-bit hashes of every run of `ngram` consecutive tokens.

A document shorter than `ngram` tokens is one shingle (its whole token sequence); an empty one has none.
Hashes are stable across processes and machines (BLAKE2b per token, then a fixed polynomial and mixer per
n-gram), never Python's salted `hash`, so the same input gives the same sets wherever a task runs.

The n-gram arithmetic runs on all documents of a part at once: one flat array of token hashes, one entry per
window, and one sort over `(document << 32) | shingle` that both de-duplicates each document's shingles and
sorts them, the form the MinHash and the exact-Jaccard check want.
"""

from __future__ import annotations

import hashlib
from itertools import chain
from typing import Iterable

import numpy as np

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_LOW_32 = np.uint64(0xFFFFFFFF)
_CACHE_LIMIT = 1 << 20

_token_hashes: dict[str, int] = {}


def token_hashes(tokens: list[str]) -> list[int]:
    """A 64-bit hash per token, cached: a corpus reuses a small vocabulary over and over."""
    cache = _token_hashes
    hashes = list(map(cache.get, tokens))
    if None in hashes:
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        for index, value in enumerate(hashes):
            if value is None:
                token = tokens[index]
                digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest()
                hashes[index] = cache[token] = int.from_bytes(digest, "little")
    return hashes


def mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads every input bit over every output bit (arrays wrap, never warn)."""
    values = (values ^ (values >> np.uint64(30))) * _MIX_1
    values = (values ^ (values >> np.uint64(27))) * _MIX_2
    return values ^ (values >> np.uint64(31))


def shingle_sets(documents: Iterable[list[int]], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Each document's sorted, distinct shingle hashes as one flat `uint32` array and `int64` offsets.

    Document `i` (a list of `token_hashes`) owns `values[offsets[i]:offsets[i + 1]]`.
    """
    documents = list(documents)
    lengths = np.fromiter(map(len, documents), dtype=np.int64, count=len(documents))
    flat = np.fromiter(chain.from_iterable(documents), dtype=np.uint64, count=int(lengths.sum()))
    owner, hashes = _window_hashes(flat, lengths, ngram)
    keys = np.sort((owner << np.uint64(32)) | (mix64(hashes) >> np.uint64(32)))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys
    values = (keys & _LOW_32).astype(np.uint32)
    offsets = np.searchsorted(keys >> np.uint64(32), np.arange(len(documents) + 1, dtype=np.uint64))
    return values, offsets.astype(np.int64)


def _window_hashes(flat: np.ndarray, lengths: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """For every window of `ngram` tokens (or whole shorter document): its document and its 64-bit hash."""
    windows = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    owner = np.repeat(np.arange(len(lengths), dtype=np.uint64), windows)
    first_token = np.cumsum(lengths) - lengths
    starts = np.repeat(first_token - np.cumsum(windows) + windows, windows) + np.arange(windows.sum())
    width = np.repeat(np.minimum(lengths, ngram), windows)
    hashes = flat[starts]
    for offset in range(1, ngram):
        following = flat[np.minimum(starts + offset, flat.size - 1)]
        hashes = np.where(offset < width, hashes * _MULTIPLIER + following, hashes)
    return owner, hashes
