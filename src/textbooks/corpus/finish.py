"""Ingest's look at the whole corpus: exact duplicates across tasks, and ids made unique across tasks.

`plan_fixes` reads only the `id` and `text_hash` columns of every task's map output, in task order then row
order (dataset order), and says per task which kept rows are exact duplicates of an earlier one and which
ids must be renamed because an earlier task used them (records with repeated ids in different files).
`apply_fix` carries that out on one task's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from textbooks.corpus.filters import EXACT_DUPLICATE
from textbooks.corpus.rows import DROPPED_SCHEMA, SCHEMA, UniqueIds, dropped_table
from textbooks.pipeline.stage import WorkShard
from textbooks.store import data


@dataclass(frozen=True)
class ShardFix:
    """What the reduce step decided for one task: row numbers are those of the map output's tables."""

    duplicate_of: dict[int, str] = field(default_factory=dict)  # kept row -> id of the earlier row kept
    kept_renames: dict[int, str] = field(default_factory=dict)
    dropped_renames: dict[int, str] = field(default_factory=dict)


def _column(shard: WorkShard, what: str, name: str) -> list:
    path = shard.path(what)
    return data.read_shard(path, [name])[name].to_pylist() if path.is_file() else []


def plan_fixes(shards: list[WorkShard], exact_dedup: bool) -> list[ShardFix]:
    ids = UniqueIds()
    first_of_hash: dict[str, str] = {}
    fixes = []
    for shard in shards:
        fix = ShardFix()
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
    kept = _renamed(_read(shard, "kept", SCHEMA), fix.kept_renames)
    dropped = _renamed(_read(shard, "dropped", DROPPED_SCHEMA), fix.dropped_renames)
    if not fix.duplicate_of:
        return kept, dropped
    rows = sorted(fix.duplicate_of)
    duplicates = dropped_table(kept.take(rows), EXACT_DUPLICATE, [fix.duplicate_of[row] for row in rows])
    is_duplicate = pa.array([row in fix.duplicate_of for row in range(kept.num_rows)])
    return kept.filter(pc.invert(is_duplicate)), pa.concat_tables([dropped, duplicates])
