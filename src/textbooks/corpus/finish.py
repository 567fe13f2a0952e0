"""Ingest's look at the whole corpus: exact duplicates across tasks, and ids made unique across tasks.

`plan_fixes` reads only the `id` and `text_hash` columns of every task's map output, in task order then row
order (dataset order), and says per task which kept rows are exact duplicates of an earlier one and which
ids must be renamed because an earlier task used them (records with repeated ids in different files).
It also gives the records' own columns one type across tasks (a column that is null in one file and text in
another is text in both). `apply_fix` carries that out on one task's tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from textbooks.corpus.filters import EXACT_DUPLICATE
from textbooks.corpus.rows import DROPPED_SCHEMA, RESERVED, SCHEMA, UniqueIds, dropped_table
from textbooks.pipeline.stage import DROP_REASON, DUPLICATE_OF, WorkShard
from textbooks.store import data


@dataclass(frozen=True)
class ShardFix:
    """What the reduce step decided for one task: row numbers are those of the map output's tables."""

    duplicate_of: dict[int, str] = field(default_factory=dict)  # kept row -> id of the earlier row kept
    kept_renames: dict[int, str] = field(default_factory=dict)
    dropped_renames: dict[int, str] = field(default_factory=dict)
    extra: pa.Schema = field(default_factory=lambda: pa.schema([]))  # records' own columns, every task's


def _extra_schema(shards: list[WorkShard]) -> pa.Schema:
    """The records' own columns of every task's output, with one type each (nulls of a task that has none)."""
    fields: dict[str, list[pa.DataType]] = {}
    for shard in shards:
        for what in ("kept", "dropped"):
            path = shard.path(what)
            if path.is_file():
                for item in pq.read_schema(path):
                    if item.name not in RESERVED:
                        fields.setdefault(item.name, []).append(item.type)
    unified = []
    for name, types in fields.items():
        known = list(dict.fromkeys(kind for kind in types if kind != pa.null()))
        if len(known) > 1:
            try:
                kind = pa.unify_schemas([pa.schema([(name, kind)]) for kind in known],
                                        promote_options="permissive").field(name).type
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                kind = pa.string()  # the values as JSON text, as within one task
        else:
            kind = known[0] if known else pa.null()
        unified.append(pa.field(name, kind))
    return pa.schema(unified)


def _conform(table: pa.Table, base: pa.Schema, extra: pa.Schema) -> pa.Table:
    """`table` with every task's extra columns in one order and type (after ours, before the drop columns)."""
    columns, fields = [], []
    names = [name for name in base.names if name not in (DROP_REASON, DUPLICATE_OF)]
    tail = [name for name in base.names if name in (DROP_REASON, DUPLICATE_OF)]
    for item in [base.field(name) for name in names] + list(extra) + [base.field(name) for name in tail]:
        if item.name in table.column_names:
            column = table[item.name]
            if column.type != item.type:
                column = _cast(column, item.type)
        else:
            column = pa.nulls(table.num_rows, item.type)
        columns.append(column)
        fields.append(item)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _cast(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    if kind == pa.string() and not pa.types.is_string(column.type):
        return pa.chunked_array([pa.array([None if value is None else json.dumps(value, default=str)
                                           for value in column.to_pylist()], pa.string())])
    return column.cast(kind)


def _column(shard: WorkShard, what: str, name: str) -> list:
    path = shard.path(what)
    return data.read_shard(path, [name])[name].to_pylist() if path.is_file() else []


def plan_fixes(shards: list[WorkShard], exact_dedup: bool) -> list[ShardFix]:
    ids = UniqueIds()
    first_of_hash: dict[str, str] = {}
    fixes = []
    extra = _extra_schema(shards)
    for shard in shards:
        fix = ShardFix(extra=extra)
        kept_ids = _column(shard, "kept", "id")
        hashes = _column(shard, "kept", "text_hash") if exact_dedup else [None] * len(kept_ids)
        for row, (row_id, text_hash) in enumerate(zip(kept_ids, hashes)):
            final_id = ids.claim(row_id)
            if final_id != row_id:
                fix.kept_renames[row] = final_id
            if text_hash is not None and text_hash in first_of_hash:
                fix.duplicate_of[row] = first_of_hash[text_hash]
            elif text_hash is not None:
                first_of_hash[text_hash] = final_id
        for row, row_id in enumerate(_column(shard, "dropped", "id")):
            final_id = ids.claim(row_id)
            if final_id != row_id:
                fix.dropped_renames[row] = final_id
        fixes.append(fix)
    return fixes


def _renamed(table: pa.Table, renames: dict[int, str]) -> pa.Table:
    if not renames:
        return table
    ids = table["id"].to_pylist()
    for row, new_id in renames.items():
        ids[row] = new_id
    return table.set_column(table.schema.get_field_index("id"), "id", pa.array(ids, pa.string()))


def _read(shard: WorkShard, what: str, schema: pa.Schema) -> pa.Table:
    table = shard.read(what)
    return schema.empty_table() if table is None else table


def apply_fix(shard: WorkShard, fix: ShardFix) -> tuple[pa.Table, pa.Table]:
    """This task's final kept and dropped tables: duplicates moved to dropped, after the map's drops."""
    kept = _conform(_renamed(_read(shard, "kept", SCHEMA), fix.kept_renames), SCHEMA, fix.extra)
    dropped = _conform(_renamed(_read(shard, "dropped", DROPPED_SCHEMA), fix.dropped_renames), DROPPED_SCHEMA,
                       fix.extra)
    if not fix.duplicate_of:
        return kept, dropped
    rows = sorted(fix.duplicate_of)
    duplicates = dropped_table(kept.take(rows), EXACT_DUPLICATE, [fix.duplicate_of[row] for row in rows])
    is_duplicate = pa.array([row in fix.duplicate_of for row in range(kept.num_rows)])
    return kept.filter(pc.invert(is_duplicate)), pa.concat_tables([dropped, duplicates])
