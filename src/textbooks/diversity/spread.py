"""How spread out a dataset is in embedding space, from one row of embedding per document.

- `vendi_score` (Friedman & Dieng 2023, cosine kernel): the effective number of distinct documents, between 1
  (all the same direction) and the embedding width; k orthogonal groups of copies score exp(entropy of their
  shares), k when equal. Computed from the d x d matrix X^T X / n, whose positive eigenvalues are those of the
  n x n kernel K / n: O(n d^2) time, O(d^2) memory, so millions of rows fit. `vendi_score_direct` is the
  n x n form, for checking.
- `cluster_entropy`: how evenly k-means clusters share the rows (2**entropy = effective clusters). k-means
  always splits even one tight blob into k clusters, so this measures balance across regions of the space,
  not spread; the Vendi score and the nearest-neighbour distance measure spread.
- `nearest_neighbour_distance`: mean cosine distance from a sample of rows to their nearest other row: 0 when
  every sampled row has a copy, 1 when all rows are orthogonal.

Rows are L2-normalised in float64 (float16 input is fine); rows of zeros, which have no direction, and rows
with a NaN or an infinity are left out of every measure. The input is read a chunk of rows at a time, so a
`np.memmap` of the embeddings works without loading it whole.

    from textbooks.diversity.spread import cluster_entropy, nearest_neighbour_distance, vendi_score
    from textbooks.quality import vectors

    dimension = vectors.read_meta(embed_folder, "diversity")["dimension"]   # a `textbooks embed` output
    embeddings = vectors.as_matrix(data.read_dataset(embed_folder).column(vectors.EMBEDDING), dimension)
    vendi_score(embeddings), cluster_entropy(embeddings)["effective_clusters"], nearest_neighbour_distance(embeddings)
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from textbooks.diversity.measures import balance

_CHUNK_ROWS = 4096  # rows per pass: 2000 sampled rows x 4096 similarities x 8 bytes = 64 MiB
_KMEANS_INITS = 3  # k-means++ restarts; the best of them (by inertia) is kept


def vendi_score(embeddings: np.ndarray) -> float:
    """exp(entropy of the eigenvalues of K / n), K the rows' cosine kernel, from the d x d dual; 0.0 for no rows."""
    width = _check_matrix(embeddings)
    gram = np.zeros((width, width), dtype=np.float64)
    rows = 0
    for _, unit, valid in _unit_chunks(embeddings):
        gram += unit.T @ unit  # a left-out row is zeros here: it adds nothing
        rows += int(valid.sum())
    return _vendi(np.linalg.eigvalsh(gram / rows)) if rows else 0.0


def vendi_score_direct(embeddings: np.ndarray) -> float:
    """The Vendi score from the n x n kernel's eigenvalues: the definition, O(n^3), for small inputs."""
    _check_matrix(embeddings)
    unit, valid = _unit_rows(embeddings)
    unit = unit[valid]
    return _vendi(np.linalg.eigvalsh(unit @ unit.T / len(unit))) if len(unit) else 0.0


def _vendi(eigenvalues: np.ndarray) -> float:
    positive = eigenvalues[eigenvalues > 0]  # the rest are zero up to rounding, and 0 log 0 = 0
    return float(np.exp(-np.sum(positive * np.log(positive))))


def cluster_entropy(embeddings: np.ndarray, clusters: int = 50, seed: int = 0, sample: int = 100_000) -> dict:
    """How evenly k-means clusters of the L2-normalised rows share them.

    MiniBatchKMeans (seeded) is fit on a seeded sample of at most `sample` rows, with k = `clusters` capped at
    the sample's number of distinct rows, then every row is assigned. Returns `{"clusters": k, "entropy_bits":
    H of the cluster sizes, "effective_clusters": 2**H, "largest_share": the largest cluster's share}`.
    """
    from sklearn.cluster import MiniBatchKMeans  # sklearn imports scipy: only callers of this pay for it
    from threadpoolctl import threadpool_limits  # sklearn's own dependency

    _check_matrix(embeddings)
    if clusters < 1 or sample < 1:
        raise ValueError(f"cluster_entropy: clusters and sample must be >= 1, got {clusters} and {sample}")
    picked = np.random.default_rng(seed).choice(len(embeddings), size=min(sample, len(embeddings)), replace=False)
    fit_rows, valid = _unit_rows(embeddings[np.sort(picked)])
    fit_rows = fit_rows[valid]
    k = min(clusters, len(np.unique(fit_rows.astype(np.float32), axis=0)))  # float32: one direction, any length
    if k == 0:
        return {"clusters": 0, "entropy_bits": 0.0, "effective_clusters": 0.0, "largest_share": None}
    sizes = np.zeros(k, dtype=np.int64)
    if k == 1:
        sizes[0] = sum(int(valid.sum()) for _, _, valid in _unit_chunks(embeddings))
    else:
        # One OpenMP thread: a mini-batch is too little work to share, and on a busy 2-core machine threads that
        # wait on each other took 1.7 s to cluster 1,000 rows where one thread took 0.012 s.
        with threadpool_limits(limits=1, user_api="openmp"):
            model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=_KMEANS_INITS).fit(fit_rows)
            for _, unit, valid in _unit_chunks(embeddings):
                if valid.any():
                    sizes += np.bincount(model.predict(unit[valid]), minlength=k)
    summary = balance({str(label): int(size) for label, size in enumerate(sizes)})
    return {"clusters": k, "entropy_bits": summary["entropy_bits"],
            "effective_clusters": 2.0 ** summary["entropy_bits"], "largest_share": summary["largest_share"]}


def nearest_neighbour_distance(embeddings: np.ndarray, sample: int = 2000, seed: int = 0) -> float | None:
    """Mean cosine distance (1 - cosine similarity) from each of a seeded sample of at most `sample` rows to
    its nearest other row in the whole set, a chunk of rows at a time; None when there are under 2 rows."""
    _check_matrix(embeddings)
    if sample < 1:
        raise ValueError(f"nearest_neighbour_distance: sample must be >= 1, got {sample}")
    candidates = np.concatenate([start + np.flatnonzero(valid) for start, _, valid in _unit_chunks(embeddings)]
                                or [np.empty(0, dtype=np.int64)])
    if len(candidates) < 2:
        return None
    picked = np.sort(np.random.default_rng(seed).choice(candidates, size=min(sample, len(candidates)),
                                                        replace=False))
    queries, _ = _unit_rows(embeddings[picked])
    nearest = np.full(len(picked), -np.inf)
    for start, unit, valid in _unit_chunks(embeddings):
        similarity = queries @ unit.T
        similarity[:, ~valid] = -np.inf
        own = np.flatnonzero((picked >= start) & (picked < start + len(unit)))
        similarity[own, picked[own] - start] = -np.inf  # a row is not its own neighbour
        np.maximum(nearest, similarity.max(axis=1), out=nearest)
    return float(np.mean(np.clip(1.0 - nearest, 0.0, 2.0)))


def _check_matrix(embeddings: np.ndarray) -> int:
    """The embedding width; a ValueError that names the shape when `embeddings` is not rows x dimensions."""
    if getattr(embeddings, "ndim", None) != 2 or embeddings.shape[1] == 0:
        raise ValueError(f"embeddings must be a 2-D array of rows x dimensions (d >= 1), got shape "
                         f"{getattr(embeddings, 'shape', type(embeddings).__name__)}")
    return int(embeddings.shape[1])


def _unit_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`rows` in float64 scaled to length 1 (the left-out rows set to zero), and which rows are kept."""
    rows = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1)
    valid = np.isfinite(norms) & (norms > 0)
    unit = np.zeros_like(rows)
    unit[valid] = rows[valid] / norms[valid, None]
    return unit, valid


def _unit_chunks(embeddings: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first row's index, unit rows, kept rows) for each chunk of `_CHUNK_ROWS` rows."""
    for start in range(0, len(embeddings), _CHUNK_ROWS):
        yield (start, *_unit_rows(embeddings[start:start + _CHUNK_ROWS]))
