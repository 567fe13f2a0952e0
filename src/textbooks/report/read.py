"""Reading just enough of a dataset for the report: one or two columns, a bounded sample, early stops.

A report over a large run must not read every text: lengths come from at most `SAMPLE_ROWS` rows taken from
evenly spaced shards (one shard in memory at a time), and drop samples stop reading once every reason has
its few examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from textbooks.errors import UserError
from textbooks.pipeline.stage import DROP_REASON, DUPLICATE_OF
from textbooks.store import data

SAMPLE_ROWS = 200_000


def _schema_names(path: Path) -> list[str]:
    try:
        return pq.read_schema(path).names
    except (pa.ArrowException, OSError) as error:
        raise UserError(f"{path}: not a readable Parquet file ({error}); re-create it or remove it") from None


def shards_with(folder: Path, *columns: str) -> list[Path]:
    """The shards of `folder` that have all of `columns` (a stage may write shards without text)."""
    return [path for path in data.shard_paths(folder) if set(columns) <= set(_schema_names(path))]


def _evenly_spaced(paths: list[Path], limit: int) -> list[Path]:
    """Enough evenly spaced shards to hold about `limit` rows, so a sample spans the whole dataset."""
    counts = [pq.read_metadata(path).num_rows for path in paths]
    total = sum(counts)
    if total <= limit:
        return paths
    wanted = min(len(paths), int(np.ceil(limit * len(paths) / total)) + 1)
    return [paths[index] for index in np.unique(np.linspace(0, len(paths) - 1, wanted).round().astype(int))]


def _byte_lengths(path: Path) -> np.ndarray:
    texts = data.read_shard(path, ["text"])["text"].drop_null()
    return pc.binary_length(pc.cast(texts, pa.binary())).to_numpy().astype(np.int64)


def text_lengths(folder: Path, limit: int = SAMPLE_ROWS) -> np.ndarray:
    """UTF-8 byte lengths of the `text` of at most `limit` rows of `folder`, spread over its shards."""
    lengths = [_byte_lengths(path) for path in _evenly_spaced(shards_with(folder, "text"), limit)]
    values = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    if len(values) > limit:
        values = values[np.linspace(0, len(values) - 1, limit).round().astype(int)]
    return values


def drop_samples(folder: Path, reasons: list[str], per_reason: int) -> dict[str, list[dict]]:
    """The first `per_reason` dropped rows of each reason (id, text, and `duplicate_of` where the stage wrote
    it, to audit a duplicate against its original), reading no further than needed."""
    samples: dict[str, list[dict]] = {}
    required = ["id", "text", DROP_REASON]
    for path in shards_with(folder, *required):
        columns = required + [name for name in (DUPLICATE_OF,) if name in _schema_names(path)]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=2048, columns=columns):
            for row in batch.to_pylist():
                bucket = samples.setdefault(str(row[DROP_REASON]), [])
                if len(bucket) < per_reason:
                    bucket.append(row)
            if reasons and all(len(samples.get(reason, [])) >= per_reason for reason in reasons):
                return samples
    return samples


def cluster_sizes(folders: list[Path], column: str) -> np.ndarray:
    """The size of every cluster in `column` over all `folders`; a row with no cluster counts as one of size 1."""
    tables = [data.read_shard(path, [column]) for folder in folders for path in shards_with(folder, column)]
    if not tables:
        return np.zeros(0, dtype=np.int64)
    values = pa.concat_tables(tables, promote_options="default")[column]
    sizes = pc.value_counts(values.drop_null()).field("counts").to_numpy(zero_copy_only=False)
    return np.concatenate([sizes, np.ones(values.null_count, dtype=np.int64)]).astype(np.int64)
