"""The stage interface: a pure step from dataset to dataset.

A stage cuts its work into tasks (`plan`), turns each task into a `ShardResult` (`map`), and, when it needs a
look at all shards at once (exact or near-duplicate removal), computes one state per task from the map outputs
(`reduce`) and finishes each shard with it (`apply`). The runner (`textbooks.runner`) decides what is already
done, hands tasks to an engine and writes the dataset; a stage never touches the output folder itself.

Adding a stage: subclass `Stage`, give it a pydantic `Config` (its fields are the recipe keys and the CLI
flags) and register it with `@register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from textbooks import data
from textbooks.errors import UserError

DROP_REASON = "drop_reason"
DUPLICATE_OF = "duplicate_of"  # on a dropped duplicate: the id of the row kept in its place


class StageConfig(BaseModel):
    """Settings of one stage; unknown keys are refused so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class ShardResult:
    """What one task produced: kept rows, dropped rows (with `drop_reason`), side tables and counters."""

    kept: pa.Table | None = None
    dropped: pa.Table | None = None
    side: dict[str, pa.Table] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkShard:
    """Where the map outputs of one task live, for `reduce` and `apply` to read."""

    index: int
    folder: Path

    def path(self, what: str) -> Path:
        return self.folder / f"map-{self.index:05d}.{what}.parquet"

    def read(self, what: str) -> pa.Table | None:
        path = self.path(what)
        return data.read_shard(path) if path.is_file() else None


class Stage:
    """Base class of every dataset stage."""

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    summary: ClassVar[str] = ""
    takes_input: ClassVar[bool] = True
    has_reduce: ClassVar[bool] = False

    def __init__(self, config: StageConfig, input: str | None = None) -> None:
        self.config = config
        self.input = input
        if self.takes_input and not input:
            raise UserError(f"stage {self.name}: needs an input (a dataset folder, Parquet/JSONL file or hf:NAME)")

    def plan(self) -> list[Any]:
        """The tasks, in a fixed order: the same input and settings always give the same list."""
        raise NotImplementedError

    def fingerprint(self) -> Any:
        """What identifies the input's content (settings are added by the runner)."""
        return None

    def map(self, task: Any) -> ShardResult:
        raise NotImplementedError

    def reduce(self, shards: list[WorkShard]) -> list[Any]:
        """One state per task, computed from all map outputs (only when `has_reduce`)."""
        raise NotImplementedError

    def apply(self, shard: WorkShard, state: Any) -> ShardResult:
        """Finish one shard with its state from `reduce` (only when `has_reduce`)."""
        raise NotImplementedError


REGISTRY: dict[str, type[Stage]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    REGISTRY[cls.name] = cls
    return cls


def load_stages() -> dict[str, type[Stage]]:
    """Import the modules that register stages, and return the registry."""
    import textbooks.corpus.ingest  # noqa: F401
    import textbooks.dedup.stage  # noqa: F401

    return REGISTRY


def with_drop_reason(table: pa.Table, reason: str | list[str]) -> pa.Table:
    reasons = [reason] * table.num_rows if isinstance(reason, str) else reason
    if DROP_REASON in table.column_names:
        table = table.drop_columns([DROP_REASON])
    return table.append_column(DROP_REASON, pa.array(reasons, pa.string()))
