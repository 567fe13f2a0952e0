"""What the dedup map writes per part, cut by hash into `BUCKETS` partitions, so that a later task reads one
bucket of every part and sees every row that can share a key with the rows it holds.

    map-00003.rows.parquet     per row: id, normalised hash, shingle set (with verify)
    map-00003.exact.parquet    per row: (row, high, low), the 128-bit normalised hash; bucket = high % BUCKETS
    map-00003.bands.parquet    per band of an indexed row: (row, band, key); bucket = key % BUCKETS

`row` is the row's number in its part. Partition `b` is row group `b` of the file (`data.write_partitions`), so
the layout is the same whatever the reduce does next: the in-memory reduce reads all of them, the sharded one
(`textbooks.dedup.sharded`) groups buckets into tasks. Keys and hashes are well mixed already (SplitMix64 and
BLAKE2b), so their low bits spread the rows evenly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

BUCKETS = 64


def partitioned(destination: np.ndarray, count: int, columns: dict[str, np.ndarray | pa.Array]) -> list[pa.Table]:
    """The rows of `columns` cut into `count` tables by `destination` (each row's table number), in row order."""
    order = np.argsort(destination, kind="stable")
    bounds = np.searchsorted(destination[order], np.arange(count + 1)).tolist()
    table = pa.table({name: column.take(pa.array(order)) if isinstance(column, pa.Array) else column[order]
                      for name, column in columns.items()})
    return [table.slice(begin, end - begin) for begin, end in zip(bounds[:-1], bounds[1:])]


def exact_partitions(digests: list[bytes]) -> list[pa.Table]:
    """Each row's 16-byte normalised hash as two 64-bit halves, by bucket."""
    halves = np.frombuffer(b"".join(digests), dtype=">u8").reshape(len(digests), 2).astype(np.uint64)
    bucket = (halves[:, 0] % np.uint64(BUCKETS)).astype(np.int64)
    rows = np.arange(len(digests), dtype=np.int32)
    return partitioned(bucket, BUCKETS, {"row": rows, "high": halves[:, 0], "low": halves[:, 1]})


def band_partitions(keys: np.ndarray, indexed: np.ndarray) -> list[pa.Table]:
    """The band keys (`lsh.band_keys`) of the rows that enter the LSH index, one entry per band, by bucket."""
    rows = np.flatnonzero(indexed)
    bands = keys.shape[1]
    flat = keys[rows].ravel()
    columns = {"row": np.repeat(rows, bands).astype(np.int32),
               "band": np.tile(np.arange(bands, dtype=np.uint16), len(rows)), "key": flat}
    return partitioned((flat % np.uint64(BUCKETS)).astype(np.int64), BUCKETS, columns)


def bucket_range(task: int, tasks: int) -> tuple[int, int]:
    """The buckets `[first, end)` of task `task` of `tasks`."""
    return task * BUCKETS // tasks, (task + 1) * BUCKETS // tasks


def part_of(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The part of each global row position, from the parts' first positions (`offsets`, one more than parts)."""
    return np.searchsorted(offsets, rows, side="right") - 1
