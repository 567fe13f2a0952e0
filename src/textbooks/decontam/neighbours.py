"""Embedding distance to benchmark problems: the L2 distance of normalised vectors, nearest rows per problem.

    nearest = Nearest(k=10)
    for start, vectors in blocks:                        # the rows of a dataset, part by part
        nearest.add(start, distances(vectors, problem_vectors))
    problem, row, distance = nearest.result()             # the k nearest rows of each problem

Vectors are scaled to unit length, as the paper's appendix C says its CodeGen embeddings were, so the distance
is `sqrt(2 - 2 cos)`: 0 for the same direction, sqrt(2) for orthogonal vectors, 2 for opposite ones; a zero
vector is sqrt(2) from everything. The search is exact (one matrix product per block of rows against all
problems, a few hundred to a few thousand columns) and keeps only the k best rows per problem, so memory does
not grow with the dataset: at 664 problems (HumanEval and MBPP) and 256 dimensions, BLAS does about a million
row-problem distances per millisecond on one core, so no approximate index is needed below a few hundred million
rows x problems.
"""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 8192
STRUCTURE_DIMENSION = 1024


class StructureVectors:
    """Signed feature hashing of a text's code tokens with its local names numbered (`dedup.tokens`) and of
    adjacent token pairs, L2-normalised: near 1 in cosine for a copy with its variables, parameters and layout
    changed, which the embedding of a renamed copy may not be. The second source of candidates."""

    def __init__(self, dimension: int = STRUCTURE_DIMENSION) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.vectorizer = HashingVectorizer(analyzer=_with_pairs, n_features=dimension, alternate_sign=True,
                                            norm="l2", dtype=np.float32)

    def of(self, token_lists: list[list[str]]) -> np.ndarray:
        return self.vectorizer.transform(token_lists).toarray()


def _with_pairs(tokens: list[str]) -> list[str]:
    return tokens + [f"{first} {second}" for first, second in zip(tokens, tokens[1:])]


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32); a zero row stays zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def distances(rows: np.ndarray, problems: np.ndarray) -> np.ndarray:
    """The L2 distance of every unit row to every unit problem: (rows, problems) float32."""
    cosine = unit(rows) @ unit(problems).T
    return np.sqrt(np.clip(2.0 - 2.0 * cosine, 0.0, 4.0))


class Nearest:
    """The `k` nearest rows of each problem over blocks of rows, ties to the earlier row."""

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"k = {k}: keep at least one row per problem")
        self.k = k
        self._problem: list[np.ndarray] = []
        self._row: list[np.ndarray] = []
        self._distance: list[np.ndarray] = []

    def add(self, start: int, block: np.ndarray) -> None:
        """`block` is (rows, problems) distances of rows start, start + 1, ...: its k best per problem."""
        if block.size == 0:
            return
        keep = min(self.k, block.shape[0])
        if keep < block.shape[0]:  # the k smallest of each column, in no order (`result` sorts them)
            best = np.argpartition(block, keep - 1, axis=0)[:keep]
        else:
            best = np.broadcast_to(np.arange(keep)[:, None], block.shape)
        problems = np.broadcast_to(np.arange(block.shape[1]), best.shape)
        self._problem.append(problems.ravel())
        self._row.append((best + start).ravel())
        self._distance.append(block[best, problems].ravel())
        if len(self._problem) > 64:
            self._merge()

    def _merge(self) -> None:
        problem, row, distance = self.result()
        self._problem, self._row, self._distance = [problem], [row], [distance]

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(problem, row, distance)`, the k nearest rows of each problem, by problem then distance."""
        if not self._problem:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        problem, row = np.concatenate(self._problem), np.concatenate(self._row)
        distance = np.concatenate(self._distance).astype(np.float32)
        order = np.lexsort((row, distance, problem))
        problem, row, distance = problem[order], row[order], distance[order]
        first = np.searchsorted(problem, problem, side="left")
        rank = np.arange(problem.size) - first
        keep = rank < self.k
        return problem[keep].astype(np.int64), row[keep].astype(np.int64), distance[keep]
