"""MinHash signatures for many documents at once, equal to what `datasketch.MinHash` computes.

The permutations are datasketch's own (`MinHash(num_perm, seed).permutations`) and the arithmetic is its
`update_batch` formula, `(a * h + b) % (2**61 - 1) & (2**32 - 1)` (products wrapping at 64 bits, as
there) then a column minimum, so a signature here
equals `MinHash(num_perm, seed, hashfunc=int)` updated with the same shingle hashes (tests check it). What
differs is the loop: datasketch pays Python and NumPy call overhead per document (or per shingle with
`update`); here one NumPy expression covers the shingles of many documents and `np.minimum.reduceat` takes
each document's minimum, in chunks that stay in cache.

The LSH shape (bands x rows) comes from datasketch's own optimiser, the one `MinHashLSH(threshold, num_perm)`
uses, so the same threshold gives the same index shape here and there. datasketch is imported only where it
is needed, in the driver: it imports scipy, which costs a worker more than a small task's whole map.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MERSENNE_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)
_PRIME_BITS = np.uint64(61)
_CHUNK_SHINGLES = 1024  # 1024 x 128 permutations x 8 bytes = 1 MiB per temporary: fits in L2


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's permutation parameters `(a, b)` for `num_perm` and `seed`."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    return a, b


@lru_cache(maxsize=32)
def optimal_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) that `datasketch.MinHashLSH(threshold, num_perm)` would pick (equal FP/FN weights)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def signatures(values: np.ndarray, offsets: np.ndarray, permutation: tuple[np.ndarray, np.ndarray]
               ) -> np.ndarray:
    """One `uint32` signature row per document (shingle sets as in `shingle_sets`); none: all `MAX_HASH`."""
    a, b = permutation
    num_perm, count = len(a), len(offsets) - 1
    result = np.full((count, num_perm), MAX_HASH, dtype=np.uint64)
    first = 0
    while first < count:
        last = int(np.searchsorted(offsets, offsets[first] + _CHUNK_SHINGLES, side="right")) - 1
        last = min(max(last, first + 1), count)
        _chunk_minimum(values, offsets[first:last + 1], a, b, result[first:last])
        first = last
    return result.astype(np.uint32)


def _chunk_minimum(values: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray,
                   out: np.ndarray) -> None:
    """Signatures of the documents whose shingles are `values[offsets[0]:offsets[-1]]`, written into `out`."""
    begin, end = int(offsets[0]), int(offsets[-1])
    if end == begin:
        return
    hashed = values[begin:end].astype(np.uint64)[:, None] * a
    hashed += b
    # `% MERSENNE_PRIME` without a division (three times faster): 2**61 is 1 modulo the prime, so
    # x = high * 2**61 + low has the remainder of high + low (< 2**61 + 8), which one subtraction finishes.
    high = hashed >> _PRIME_BITS
    hashed &= MERSENNE_PRIME
    hashed += high
    np.subtract(hashed, MERSENNE_PRIME, out=hashed, where=hashed >= MERSENNE_PRIME)
    hashed &= MAX_HASH
    filled = offsets[1:] > offsets[:-1]
    out[filled] = np.minimum.reduceat(hashed, offsets[:-1][filled] - begin, axis=0)
