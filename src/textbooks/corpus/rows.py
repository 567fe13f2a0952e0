"""The ingest dataset's rows: one schema for every shard, and ids that are unique within a task.

An id is `{source}:{path}` for a whole file or record and `{source}:{path}::{name}` for a function or class;
when an id repeats in one task (two `def f` in one module, two records with the same id), the later ones get
`#2`, `#3`. Ids repeated across tasks (records only: a file belongs to one task) are renamed the same way in
the stage's reduce step. Records' own columns (a license, a repository), or an installed file's `package`,
come after ours, one type per column across the dataset (`textbooks.corpus.finish` makes the tasks agree).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

from textbooks.corpus.filters import split_lines
from textbooks.dedup.exact import normalized_hash
from textbooks.pipeline.stage import DROP_REASON, DUPLICATE_OF, with_drop_reason

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("text", pa.string()),
    ("source", pa.string()),
    ("path", pa.string()),  # relative path of the file, or the record's id
    ("kind", pa.string()),  # file | record | function | class
    ("name", pa.string()),  # the function's or class's name; null for whole files and records
    ("lines", pa.int32()),
    ("text_hash", pa.string()),  # textbooks.dedup.exact.normalized_hash
])
DROPPED_SCHEMA = SCHEMA.append(pa.field(DROP_REASON, pa.string())).append(pa.field(DUPLICATE_OF, pa.string()))
RESERVED = frozenset(DROPPED_SCHEMA.names)


def dropped_table(rows: pa.Table, reasons: str | list[str],
                  duplicate_of: list[str | None] | None = None) -> pa.Table:
    """`rows` (in SCHEMA) as dropped rows: a `drop_reason` and a `duplicate_of` column added."""
    table = with_drop_reason(rows, reasons)
    column = pa.array(duplicate_of if duplicate_of is not None else [None] * rows.num_rows, pa.string())
    return table.append_column(DUPLICATE_OF, column)


class UniqueIds:
    """Hands out ids, renaming a repeated one `id#2`, `id#3`... (skipping any name taken already)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._next_number: dict[str, int] = {}

    def claim(self, row_id: str) -> str:
        if row_id not in self._taken:
            self._taken.add(row_id)
            return row_id
        number = self._next_number.get(row_id, 2)
        while f"{row_id}#{number}" in self._taken:
            number += 1
        self._next_number[row_id] = number + 1
        self._taken.add(f"{row_id}#{number}")
        return f"{row_id}#{number}"


def extra_name(name: str) -> str:
    """The column a record's own column `name` becomes: itself, or `record_NAME` where it is one of ours."""
    return f"record_{name}" if name in RESERVED else name


def _extra_array(values: list) -> pa.Array:
    """A column of a record's own values: its type as pyarrow infers it, or JSON text where the values do not
    share one type (a number in one record, a string in the next)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if value is None else json.dumps(value, default=str) for value in values],
                        pa.string())


def _table(columns: dict[str, list], extras: list[dict | None]) -> pa.Table:
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    names = list(dict.fromkeys(name for extra in extras if extra for name in extra))
    for name in names:
        table = table.append_column(extra_name(name), _extra_array([(extra or {}).get(name) for extra in extras]))
    return table


@dataclass
class ShardRows:
    """The kept and dropped rows of one task, in the order they were added; a record's own columns (`extra`)
    follow ours."""

    kept: dict[str, list] = field(default_factory=lambda: {name: [] for name in SCHEMA.names})
    dropped: dict[str, list] = field(default_factory=lambda: {name: [] for name in SCHEMA.names})
    kept_extra: list[dict | None] = field(default_factory=list)
    dropped_extra: list[dict | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    ids: UniqueIds = field(default_factory=UniqueIds)

    def add(self, source: str, path: str, kind: str, name: str | None, text: str, reason: str | None,
            extra: dict | None = None) -> None:
        """One row; kept when `reason` is None, else dropped with that reason."""
        row_id = self.ids.claim(f"{source}:{path}" + (f"::{name}" if name else ""))
        values = (row_id, text, source, path, kind, name, len(split_lines(text)), normalized_hash(text))
        into = self.kept if reason is None else self.dropped
        for column, value in zip(SCHEMA.names, values):
            into[column].append(value)
        (self.kept_extra if reason is None else self.dropped_extra).append(extra)
        if reason is not None:
            self.reasons.append(reason)

    def kept_table(self) -> pa.Table:
        return _table(self.kept, self.kept_extra)

    def dropped_table(self) -> pa.Table:
        return dropped_table(_table(self.dropped, self.dropped_extra), self.reasons)
