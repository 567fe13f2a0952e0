"""LSH banding on a signature matrix, and clusters from candidate pairs.

Banding is the one `datasketch.MinHashLSH` does (band `i` is signature rows `i*r .. (i+1)*r`; two documents
are candidates when any band is equal), vectorised: each band's rows are hashed into one 64-bit key, and one
stable `argsort` per band puts equal keys next to each other. Within a bucket the members are in dataset
order, and each member is paired with the one before it: a chain connects the bucket as well as all pairs
would, with one pair per member instead of a quadratic number, so a bucket of a thousand copies costs a
thousand checks. When pairs are verified, a member is compared with its predecessor only; a near-duplicate
it misses there (a false positive sat between them) it meets in the other bands, where the false positive
is rarely a neighbour again.

`cluster_roots` joins pairs with union-find, the smaller position always becoming the root, so the root of
each cluster is its first row in dataset order: the row to keep, and the cluster's id.

This is the in-memory reduce, every row at once; `textbooks.dedup.sharded` computes the same pairs and roots
bucket by bucket in tasks, and its docstring says why the two agree.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from textbooks.dedup.minhash import MAX_HASH
from textbooks.dedup.shingles import mix64


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """A `(documents, bands)` array of 64-bit keys, one per band of each signature. The signatures are read one
    row of every band at a time, never widened to 64 bits at once (that copy would be 8 bytes a permutation)."""
    keys = np.zeros((signatures.shape[0], bands), dtype=np.uint64)
    for row in range(rows):
        keys = mix64(keys ^ signatures[:, row:bands * rows:rows])
    return keys


def candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """Distinct `(earlier, later)` index pairs that are neighbours in some bucket, sorted."""
    count = keys.shape[0]
    found = []
    for band in range(keys.shape[1]):
        order = np.argsort(keys[:, band], kind="stable")
        ordered = keys[order, band]
        same = ordered[1:] == ordered[:-1]
        found.append(order[:-1][same].astype(np.int64) * count + order[1:][same])
    codes = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    return np.stack([codes // max(count, 1), codes % max(count, 1)], axis=1)


def near_duplicate_roots(parents: np.ndarray, signatures: np.ndarray, bands: int, rows: int,
                         similar: Callable[[int, int], bool] | None = None) -> np.ndarray:
    """The root of every row after joining the LSH candidate pairs (that `similar` accepts) to `parents`.

    Only rows that are their own parent in `parents` (e.g. the first of exact copies) and have shingles enter
    the index: an empty set's signature is all `MAX_HASH`, and two empty sets are no evidence of anything.
    """
    return keyed_roots(parents, band_keys(signatures, bands, rows), indexed(signatures), similar)


def indexed(signatures: np.ndarray) -> np.ndarray:
    """Whether each row enters the LSH index: an empty set's signature is all `MAX_HASH`."""
    return (signatures != MAX_HASH).any(axis=1)


def keyed_roots(parents: np.ndarray, keys: np.ndarray, has_keys: np.ndarray,
                similar: Callable[[int, int], bool] | None = None) -> np.ndarray:
    """`near_duplicate_roots` from every row's band keys (`band_keys`), of which those of the rows `has_keys`
    marks count."""
    candidates = np.flatnonzero((parents == np.arange(len(parents))) & has_keys)
    pairs = candidates[candidate_pairs(keys[candidates])]
    return cluster_roots(parents, pairs, similar)


def cluster_roots(parents: np.ndarray, pairs: np.ndarray,
                  similar: Callable[[int, int], bool] | None = None) -> np.ndarray:
    """The root of every row after joining the `pairs` that `similar` accepts (all, when it is None).

    `parents` is a starting forest in which every row points at itself or at an earlier row (e.g. the first
    copy of its exact duplicates).
    """
    parent = parents.tolist()

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for earlier, later in pairs.tolist():
        first, second = find(earlier), find(later)
        if first == second:
            continue
        if similar is not None and not similar(earlier, later):
            continue
        parent[max(first, second)] = min(first, second)
    roots = np.asarray(parent, dtype=np.int64)
    while True:
        jumped = roots[roots]
        if np.array_equal(jumped, roots):
            return roots
        roots = jumped


def jaccard_check(values: np.ndarray, offsets: np.ndarray, threshold: float) -> Callable[[int, int], bool]:
    """Whether two documents' sorted shingle sets have exact Jaccard similarity >= `threshold`."""

    def similar(first: int, second: int) -> bool:
        left = values[offsets[first]:offsets[first + 1]]
        right = values[offsets[second]:offsets[second + 1]]
        if left.size > right.size:
            left, right = right, left
        if left.size == 0:
            return False
        found = np.searchsorted(right, left)
        found[found == right.size] = 0
        shared = int(np.count_nonzero(right[found] == left))
        return shared >= threshold * (left.size + right.size - shared)

    return similar
