"""Candidate pairs (a row, a benchmark problem) for the AST and execution checks of `textbooks decontaminate`.

    matcher = Matcher(index, problem_vectors, embedder, structure, problem_structures)   # once per worker
    side = candidates(matcher, texts, row_vectors, config)   # per part: its nearest rows per problem, n-gram hits
    pairs = selected(shards, config)                          # in the reduce: the nearest over the whole dataset

A part's candidates are each problem's `neighbours` nearest rows of the part by embedding distance and by the
distance of structure vectors (`neighbours.StructureVectors`: a renamed copy is near in structure when its
embedding is not), every row sharing an n-gram with a problem, and every pair within `distance`. The reduce
keeps each problem's nearest rows over all parts, so the candidates are at most problems x neighbours x 2 pairs
plus the n-gram and distance hits, however large the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from textbooks.decontam.neighbours import BLOCK_ROWS, Nearest, StructureVectors, distances, unit
from textbooks.decontam.ngrams import NgramIndex
from textbooks.dedup.tokens import code_token_views
from textbooks.errors import UserError
from textbooks.pipeline.stage import WorkShard

CANDIDATES = "candidates"
CANDIDATE_SCHEMA = pa.schema([("position", pa.int64()), ("target", pa.int32()), ("distance", pa.float32()),
                              ("structure_distance", pa.float32()), ("shared", pa.int64()), ("row_ngrams", pa.int64()),
                              ("near_embedding", pa.bool_()), ("near_structure", pa.bool_()), ("id", pa.string())])


@dataclass
class Matcher:
    """What a worker compares each part with: the problems' n-grams and embeddings, and the row embedder."""

    index: NgramIndex
    vectors: np.ndarray  # (problems, dimensions)
    embedder: Any | None  # None: the rows' embeddings are read from `embeddings`
    structure: StructureVectors
    structure_vectors: np.ndarray  # (problems, STRUCTURE_DIMENSION)


def candidates(matcher: Matcher, texts: list[str], rows: np.ndarray, config: Any) -> pa.Table:
    """The part's candidate pairs: each problem's nearest rows in the part by embedding and by structure, every
    row sharing an n-gram with a problem, every pair within `distance`; with both distances and the n-grams."""
    problems = matcher.vectors.shape[0]
    views = [code_token_views(text) for text in texts]
    gram_rows, gram_problems, shared, row_ngrams = matcher.index.match_tokens([view[0] for view in views])
    shapes = matcher.structure.of([view[1] for view in views])
    by_embedding, by_structure = Nearest(config.neighbours), Nearest(config.neighbours)
    keys = [gram_rows * problems + gram_problems]
    for start in range(0, len(texts), BLOCK_ROWS):
        block = distances(rows[start:start + BLOCK_ROWS], matcher.vectors)
        by_embedding.add(start, block)
        by_structure.add(start, distances(shapes[start:start + BLOCK_ROWS], matcher.structure_vectors))
        if config.distance is not None:
            close_rows, close_problems = np.nonzero(block <= config.distance)
            keys.append((close_rows + start) * problems + close_problems)
    near = {}
    for name, nearest in (("embedding", by_embedding), ("structure", by_structure)):
        near_problem, near_row, _ = nearest.result()
        near[name] = near_row * problems + near_problem
        keys.append(near[name])
    unique = np.unique(np.concatenate(keys)).astype(np.int64)
    positions, targets = unique // problems, unique % problems
    counts = np.zeros(unique.size, dtype=np.int64)
    counts[np.searchsorted(unique, gram_rows * problems + gram_problems)] = shared
    return pa.table({"position": pa.array(positions, pa.int64()), "target": pa.array(targets, pa.int32()),
                     "distance": pa.array(_pair_distance(rows, matcher.vectors, positions, targets), pa.float32()),
                     "structure_distance": pa.array(_pair_distance(shapes, matcher.structure_vectors, positions,
                                                                   targets), pa.float32()),
                     "shared": pa.array(counts, pa.int64()),
                     "row_ngrams": pa.array(row_ngrams[positions], pa.int64()),
                     "near_embedding": pa.array(np.isin(unique, near["embedding"]), pa.bool_()),
                     "near_structure": pa.array(np.isin(unique, near["structure"]), pa.bool_())})


def _pair_distance(rows: np.ndarray, problems: np.ndarray, positions: np.ndarray, targets: np.ndarray
                   ) -> np.ndarray:
    cosine = np.einsum("ij,ij->i", unit(rows[positions]), unit(problems[targets]))
    return np.sqrt(np.clip(2.0 - 2.0 * cosine, 0.0, 4.0))


def selected(shards: list[WorkShard], config: Any) -> pa.Table:
    """All parts' candidates, each problem's nearest rows (by embedding, by structure) now over the whole
    dataset, and every pair sharing an n-gram or within `distance`."""
    tables = []
    for shard in shards:
        table = shard.read(CANDIDATES)
        if table is None:
            raise UserError(f"{shard.path(CANDIDATES)}: map output missing; delete the output folder's .work and "
                            "run the stage again")
        tables.append(table.append_column("shard", pa.array(np.full(table.num_rows, shard.index), pa.int64())))
    table = pa.concat_tables(tables)
    target, distance = table["target"].to_numpy(), table["distance"].to_numpy()
    keep = table["shared"].to_numpy() > 0
    for flag, measured in (("near_embedding", distance), ("near_structure", table["structure_distance"].to_numpy())):
        keep |= _nearest_overall(table[flag].to_numpy(zero_copy_only=False), measured, target,
                                 table["shard"].to_numpy(), table["position"].to_numpy(), config.neighbours)
    if config.distance is not None:
        keep |= distance <= config.distance
    return table.filter(pa.array(keep)).drop_columns(["near_embedding", "near_structure"])


def _nearest_overall(flagged: np.ndarray, measured: np.ndarray, target: np.ndarray, shard: np.ndarray,
                     position: np.ndarray, k: int) -> np.ndarray:
    """Which flagged pairs are among the k nearest of their problem over all shards (ties: earlier rows)."""
    order = np.lexsort((position, shard, measured, ~flagged, target))
    sorted_target = target[order]
    ranked = np.empty(order.size, dtype=np.int64)
    ranked[order] = np.arange(order.size) - np.searchsorted(sorted_target, sorted_target, side="left")
    return flagged & (ranked < k)
