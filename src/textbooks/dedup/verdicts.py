"""What `apply` needs for one part, from either reduce: per row its cluster id, and for a dropped row why and the
id of the row kept in its place.

The in-memory reduce hands each part its `DedupState` directly; the sharded one writes every part's verdicts as
one partition of `.work/verdicts.parquet` and hands each part a `ShardedVerdicts` that reads it in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textbooks.store import data
from textbooks.store.inputs import Part

NEAR, EXACT = "near_duplicate", "exact_duplicate"
REASONS = (None, EXACT, NEAR)  # `reason` codes of the verdicts file: kept, exact copy, near-duplicate
VERDICTS = "verdicts.parquet"


@dataclass(frozen=True)
class DedupState:
    part: Part
    cluster: np.ndarray
    reason: list[str | None]
    duplicate_of: list[str | None]

    def load(self, folder: Path) -> DedupState:
        return self


@dataclass(frozen=True)
class ShardedVerdicts:
    """Partition `index` of the verdicts file in the step's `.work/` folder."""

    part: Part
    index: int

    def load(self, folder: Path) -> DedupState:
        table = data.read_partitions(folder / VERDICTS, self.index)
        reasons = [REASONS[code] for code in table["reason"].to_pylist()]
        return DedupState(self.part, table["cluster"].to_numpy(), reasons, table["duplicate_of"].to_pylist())


def row_verdicts(roots: np.ndarray, exact: list[bytes], ids: list[str]
                 ) -> tuple[list[str | None], list[str | None]]:
    """Per row: why it is dropped and the id of the row kept in its place; None and None for a kept row."""
    reasons: list[str | None] = []
    duplicate_of: list[str | None] = []
    for row, root in enumerate(roots.tolist()):
        if row == root:
            reasons.append(None)
            duplicate_of.append(None)
        else:
            reasons.append(EXACT if exact[row] == exact[root] else NEAR)
            duplicate_of.append(ids[root])
    return reasons, duplicate_of
