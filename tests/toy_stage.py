"""Small real stages for runner and executor tests.

`MinCharsStage` keeps rows whose text has at least `min_chars` characters; it reads its input through
`textbooks.store.inputs` like every stage, and with `fail_on` set the task whose input contains that text
raises, to test what a failed run leaves behind. The others each show one part of the step contract: a
reference among the settings (`ExcludeStage`), an empty result (`VerifyStage`), the async executor with one
LLM client per step (`AskStage`), Ray resources and a setup per worker (`PlacedStage`).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pyarrow as pa
from pydantic import Field

from textbooks.errors import UserError
from textbooks.llm import LLMClient, LLMConfig
from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.refs import DatasetInput
from textbooks.pipeline.stage import ShardResult, Stage, with_drop_reason
from textbooks.pipeline.step import StepConfig
from textbooks.store import data
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


class ExcludeConfig(StepConfig):
    exclude: DatasetInput | None = Field(None, description="Drop rows whose text is in this dataset.")


class ExcludeStage(Stage):
    """Keeps the rows whose text is not in the `exclude` dataset: a stage with a reference among its settings,
    and nothing of its own about fingerprints."""

    name = "exclude"
    Config = ExcludeConfig

    def plan(self) -> list[Part]:
        return plan_parts(self.input)

    def map(self, task: Part) -> ShardResult:
        rows = [{key: row[key] for key in SCHEMA.names} for row in read_part(task)]
        known = set(data.read_dataset(self.config.exclude)["text"].to_pylist()) if self.config.exclude else set()
        return ShardResult(kept=pa.Table.from_pylist([row for row in rows if row["text"] not in known], SCHEMA),
                           dropped=with_drop_reason(pa.Table.from_pylist(
                               [row for row in rows if row["text"] in known], SCHEMA), "excluded"))


class VerifyConfig(StepConfig):
    passing: str = Field("ok", description="The text a row must have to pass.")


class VerifyStage(Stage):
    """A verification step whose every row may fail: an empty output is a result, with its drop reasons."""

    name = "verify"
    Config = VerifyConfig
    allow_empty = True

    def plan(self) -> list[Part]:
        return plan_parts(self.input)

    def map(self, task: Part) -> ShardResult:
        rows = [{key: row[key] for key in SCHEMA.names} for row in read_part(task)]
        good = [row for row in rows if row["text"] == self.config.passing]
        bad = [row for row in rows if row["text"] != self.config.passing]
        return ShardResult(kept=pa.Table.from_pylist(good, SCHEMA),
                           dropped=with_drop_reason(pa.Table.from_pylist(bad, SCHEMA), "failed_check"))


class AskConfig(StepConfig):
    base_url: str = Field(description="The OpenAI-compatible server to ask.")


class AskStage(Stage):
    """An I/O-bound stage on the async executor: one completion request per row, through one LLM client that
    shares the step's limiter; the answer becomes a column."""

    name = "ask"
    Config = AskConfig
    executor = "async"

    def setup(self, worker: Worker) -> LLMClient:
        return LLMClient(LLMConfig(model="toy", base_url=self.config.base_url, concurrency=100_000),
                         limiter=worker.limiter)

    def plan(self) -> list[Part]:
        return plan_parts(self.input)

    async def map(self, task: Part) -> ShardResult:
        rows = [{key: row[key] for key in SCHEMA.names} for row in read_part(task)]
        answers = await asyncio.gather(*(self.state.complete(row["text"]) for row in rows))
        table = pa.Table.from_pylist(rows, SCHEMA).append_column("answer", pa.array([a.text for a in answers]))
        return ShardResult(kept=table, counters={"requests": len(rows)})


class PlacedConfig(StepConfig):
    setups: str = Field(description="A folder where each setup() call leaves a file.")


def _node() -> str:
    """The Ray node this runs on, or `local` outside Ray."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"


class PlacedStage(Stage):
    """A stage that asks Ray for a custom resource and loads its 'model' once per worker: each task reports the
    node it ran on and the name of its worker's setup."""

    name = "placed"
    Config = PlacedConfig
    takes = ()
    resources = {"resources": {"special": 1}}

    def setup(self, worker: Worker) -> str:
        marker = Path(self.config.setups) / f"setup-{os.getpid()}-{time.monotonic_ns()}"
        marker.write_text(_node())
        return marker.name

    def plan(self) -> list[int]:
        return list(range(6))

    def map(self, task: int) -> ShardResult:
        table = pa.table({"id": [f"task-{task}"], "text": [_node()], "source": [self.state]})
        return ShardResult(kept=table)
