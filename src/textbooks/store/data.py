"""Dataset folders, and the marker and stats every finished step folder has.

A dataset is a folder::

    OUT/part-00000.parquet ...   rows with at least `id`, `text`, `source` (+ stage columns)
    OUT/stats.json               rows in/out, bytes, seconds, drop reasons with counts
    OUT/dropped/                 the rows the stage removed, same layout, with a `drop_reason` column
    OUT/_SUCCESS                 written last: a folder without it is not a finished dataset

Every file is written through `textbooks.store.atomic` (temporary name, fsync, rename), so a killed process
never leaves a half-written shard under a final name. Read a dataset with `read_dataset(OUT)`, or from any
Parquet reader with the glob `OUT/*.parquet` (the glob keeps `dropped/` out). Every step's folder, dataset or
not, gets `stats.json` and the `_SUCCESS` marker from the runner (`textbooks.pipeline.runner`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from textbooks.errors import UserError
from textbooks.store.atomic import atomic_file, read_json, write_bytes, write_json

__all__ = ["read_json", "write_bytes", "write_json"]  # re-exported: most callers of this module write JSON too

MARKER = "_SUCCESS"
STATS = "stats.json"
DROPPED = "dropped"
SHARD_GLOB = "part-*.parquet"
REQUIRED_COLUMNS = ("id", "text", "source")


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def write_table(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` as one zstd-compressed Parquet file, atomically."""
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_partitions(tables: list[pa.Table], path: Path) -> None:
    """Write `tables` (one schema) to `path` atomically, each as one row group: partition `i` of a shuffle is row
    group `i`, which `read_partitions` reads without the others."""
    with atomic_file(path) as tmp:
        with pq.ParquetWriter(tmp, tables[0].schema, compression="zstd") as writer:
            for table in tables:
                writer.write_table(table, row_group_size=max(1, table.num_rows))
        written = pq.ParquetFile(tmp).num_row_groups
        if written != len(tables):
            raise RuntimeError(f"{path}: {written} row groups written for {len(tables)} partitions")


def read_partitions(path: Path, first: int, end: int | None = None, columns: list[str] | None = None) -> pa.Table:
    """Partitions `first` to `end` (default: `first` alone) of a file `write_partitions` wrote, as one table."""
    try:
        return pq.ParquetFile(path).read_row_groups(list(range(first, first + 1 if end is None else end)),
                                                    columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise UserError(f"{path}: not a readable Parquet file ({error}); re-create it or remove it") from None


def count_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    return pq.ParquetFile(path).metadata.num_rows


def is_complete(folder: Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def read_marker(folder: Path) -> dict | None:
    """The completion marker's content, or None when the folder is not a finished dataset."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    try:
        return read_json(marker)
    except (OSError, json.JSONDecodeError):
        return None


def write_marker(folder: Path, content: dict) -> None:
    write_json(content, Path(folder) / MARKER)


def read_stats(folder: Path) -> dict:
    path = Path(folder) / STATS
    return read_json(path) if path.is_file() else {}


def shard_paths(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob(SHARD_GLOB))


def read_shard(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read one Parquet file, turning a corrupt file into a `UserError` that names it."""
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise UserError(f"{path}: not a readable Parquet file ({error}); re-create it or remove it") from None


def read_dataset(folder: Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of a finished dataset as one table, in shard order."""
    folder = Path(folder)
    if not is_complete(folder):
        raise UserError(f"{folder}: not a finished dataset (no {MARKER} marker); run the stage that makes it")
    tables = [read_shard(path, columns) for path in shard_paths(folder)]
    if not tables:
        return pa.table({name: pa.array([], pa.string()) for name in (columns or REQUIRED_COLUMNS)})
    return pa.concat_tables(tables, promote_options="default")


def iter_rows(folder: Path, columns: list[str] | None = None) -> Iterator[dict]:
    for path in shard_paths(folder):
        yield from read_shard(path, columns).to_pylist()


def check_columns(table: pa.Table, where: str, required: tuple[str, ...] = REQUIRED_COLUMNS) -> None:
    missing = [name for name in required if name not in table.column_names]
    if missing:
        raise UserError(
            f"{where}: missing column(s) {', '.join(missing)}; a dataset needs {', '.join(required)} "
            f"(it has {', '.join(table.column_names)})"
        )
