"""A small real stage for runner tests: keeps rows whose text has at least `min_chars` characters.

It reads its input through `textbooks.inputs` like every stage; with `fail_on` set, the task whose input
contains that text raises, to test what a failed run leaves behind.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from textbooks.errors import UserError
from textbooks.pipeline.stage import ShardResult, Stage, with_drop_reason
from textbooks.pipeline.step import StepConfig
from textbooks.store.inputs import Part, plan_parts, read_part

SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])


class MinCharsConfig(StepConfig):
    min_chars: int = Field(3, description="Shortest text kept.")
    fail_on: str | None = Field(None, description="Raise a UserError in the task that meets this text.")


class MinCharsStage(Stage):
    name = "min_chars"
    Config = MinCharsConfig

    def plan(self) -> list[Part]:
        return plan_parts(self.input)

    def map(self, task: Part) -> ShardResult:
        rows = [{key: row[key] for key in SCHEMA.names} for row in read_part(task)]
        if self.config.fail_on and any(row["text"] == self.config.fail_on for row in rows):
            raise UserError(f"{task.path}: met {self.config.fail_on!r}")
        kept = [row for row in rows if len(row["text"]) >= self.config.min_chars]
        dropped = [row for row in rows if len(row["text"]) < self.config.min_chars]
        return ShardResult(
            kept=pa.Table.from_pylist(kept, SCHEMA),
            dropped=with_drop_reason(pa.Table.from_pylist(dropped, SCHEMA), "too_short"),
            counters={"records": len(rows)},
        )
