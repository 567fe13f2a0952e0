"""The embeddings dataset that `textbooks embed` writes and `textbooks classify` reads.

    OUT/part-00000.parquet   id (string), embedding (fixed-size list of float16), one row per input row
    OUT/embedder.json        {"embedder": "hashing", "model": null, "dimension": 256, ...}: what made them

Shard i holds the embeddings of the input's task i, so a step that reads the same corpus finds a part's
embeddings in the shard of the same number; `lookup` falls back to every shard when the ids do not match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textbooks.errors import UserError
from textbooks.store import data

EMBEDDING = "embedding"
META = "embedder.json"
FLOAT16_MAX = float(np.finfo(np.float16).max)


def embeddings_table(ids: list[str], vectors: np.ndarray) -> pa.Table:
    """The rows `id`, `embedding` (float16; values beyond its range are clipped, never infinite)."""
    values = np.clip(np.asarray(vectors, dtype=np.float32), -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
    column = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), pa.float16()), values.shape[1])
    return pa.table({"id": pa.array(ids, pa.string()), EMBEDDING: column})


def as_matrix(column: pa.ChunkedArray | pa.Array, dimension: int) -> np.ndarray:
    """An `embedding` column as a float32 matrix, one row per value."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dimension)


def read_meta(folder: str | Path, step: str) -> dict:
    """What made the embeddings in `folder`; refused when it is not an embed output."""
    path = Path(folder) / META
    if not path.is_file():
        raise UserError(f"{step}: {folder} holds no embeddings (no {META}); give the folder `textbooks embed` "
                        "wrote for this corpus (`embeddings: @embed` in a recipe)")
    return data.read_json(path)


def describe(meta: dict) -> str:
    """`hashing embeddings (dimension 256)`, `causal-lm embeddings of MODEL (dimension 1024)`."""
    model = f" of {meta['model']}" if meta.get("model") else ""
    return f"{meta['embedder']} embeddings{model} (dimension {meta['dimension']})"


def lookup(folder: str | Path, ids: list[str], step: str, shard_index: int | None = None) -> np.ndarray:
    """The embeddings of `ids`, in their order, from the embed output `folder`.

    With `shard_index` the shard of that number is read first; when its ids are exactly `ids` (the same corpus
    cut the same way) nothing else is read. Otherwise every shard is scanned for the ids. A missing id is a
    `UserError`: the embeddings were made for another dataset.
    """
    folder = Path(folder)
    dimension = int(read_meta(folder, step)["dimension"])
    if shard_index is not None:
        path = folder / data.shard_name(shard_index)
        if path.is_file():
            table = data.read_shard(path, ["id", EMBEDDING])
            if table["id"].to_pylist() == ids:
                return as_matrix(table[EMBEDDING], dimension)
    wanted = pa.array(sorted(set(ids)), pa.string())
    found: dict[str, np.ndarray] = {}
    for path in data.shard_paths(folder):
        table = data.read_shard(path, ["id", EMBEDDING])
        table = table.filter(pc.is_in(table["id"], value_set=wanted))
        if table.num_rows:
            matrix = as_matrix(table[EMBEDDING], dimension)
            for row_id, vector in zip(table["id"].to_pylist(), matrix):
                found.setdefault(row_id, vector)
    missing = [row_id for row_id in ids if row_id not in found]
    if missing:
        shown = ", ".join(repr(row_id) for row_id in missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise UserError(f"{step}: {len(missing):,} of {len(ids):,} rows have no embedding in {folder} ({shown}); "
                        "embed the dataset these rows come from (`textbooks embed --input ...`) and give that "
                        "output")
    return np.stack([found[row_id] for row_id in ids]) if ids else np.zeros((0, dimension), np.float32)
