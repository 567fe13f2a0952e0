"""`textbooks filter`: keep the rows a score column ranks high, from a scored dataset, without scoring again.

    textbooks filter --input runs/x/classify --out runs/x/filter --threshold 0.5   # edu_score >= 0.5
    textbooks filter --input runs/x/classify --out runs/x/filter --fraction 0.17   # the top 17% (DCLM-style)

Exactly one of `threshold` and `fraction`. With a fraction the cut is found before any task runs, from the
score column alone (8 bytes a row): the `ceil(fraction x scored rows)` highest scores are kept, ties at the cut
broken by dataset order, so the same input always keeps the same rows. Dropped rows go to `dropped/` with their
score and `drop_reason` `low_edu_score` (`no_edu_score` for a row without a score). The paper reports no
threshold (section 2.1); its ~6B of ~35B tokens is a kept share of about 17%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from textbooks.errors import UserError
from textbooks.pipeline.stage import ShardResult, Stage, run_stage, with_drop_reason
from textbooks.pipeline.step import Context, SettingError, StepConfig
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table


class FilterConfig(StepConfig):
    column: str = Field("edu_score", description="The score column to rank by (classify writes edu_score).")
    threshold: float | None = Field(None, description="Keep the rows whose score is at least this.")
    fraction: float | None = Field(None, gt=0.0, le=1.0,
                                   description="Keep this share of the scored rows, the highest scores first.")


@dataclass(frozen=True)
class FilterTask:
    """One part and its cut: rows scored above `cutoff` are kept, and of the rows scored exactly `cutoff`
    the first `ties` (all of them when None)."""

    part: Part
    cutoff: float
    ties: int | None


class FilterStage(Stage):
    name = "filter"
    Config = FilterConfig
    config: FilterConfig
    cutoff: float | None = None  # the lowest score kept, found by `plan` for a fraction

    @classmethod
    def check(cls, config: FilterConfig) -> None:
        if (config.threshold is None) == (config.fraction is None):
            raise SettingError("threshold", "filter keeps rows by threshold (a score) or by fraction (a share of "
                                            "the rows): give exactly one of them")

    def plan(self) -> list[FilterTask]:
        parts = plan_parts(self.input)
        if self.config.threshold is not None:
            for part in parts:
                self._scores(part)  # refused here, before any task, when a part has no score column
            return [FilterTask(part, self.config.threshold, None) for part in parts]
        scores = [self._scores(part) for part in parts]
        scored = np.concatenate(scores)
        scored = scored[~np.isnan(scored)]
        if scored.size == 0:
            raise UserError(f"filter: no row of {self.input} has a {self.config.column}; score it with "
                            "`textbooks classify` first")
        keep = math.ceil(self.config.fraction * scored.size)
        cutoff = float(np.sort(scored)[::-1][keep - 1])
        self.cutoff = cutoff
        ties_left = keep - int((scored > cutoff).sum())
        tasks = []
        for part, part_scores in zip(parts, scores):
            ties = min(ties_left, int((part_scores == cutoff).sum()))
            ties_left -= ties
            tasks.append(FilterTask(part, cutoff, ties))
        return tasks

    def _scores(self, part: Part) -> np.ndarray:
        """A part's scores as floats, NaN where a row has none; refused without the column."""
        column = self.config.column
        if part.kind == "shard":  # a dataset's shard: only its score column is read
            names = pq.read_schema(part.path).names
            table = data.read_shard(Path(part.path), [column] if column in names else None)
        else:
            table = read_table(part)
        if column not in table.column_names:
            hint = ("score it first with `textbooks classify` (it adds edu_score)" if column == "edu_score"
                    else "set --column to the column that holds the score")
            raise UserError(f"filter: {part.path} has no column {column!r} (it has "
                            f"{', '.join(table.column_names)}); {hint}")
        try:
            values = pc.cast(table[column], pa.float64())
        except pa.ArrowInvalid:
            raise UserError(f"filter: column {column!r} of {part.path} is {table[column].type}, not a number; "
                            "set --column to a numeric score") from None
        return values.to_numpy(zero_copy_only=False)

    def map(self, task: FilterTask) -> ShardResult:
        table = read_table(task.part)
        scores = pc.cast(table[self.config.column], pa.float64()).to_numpy(zero_copy_only=False)
        tie = scores == task.cutoff
        kept = scores > task.cutoff
        kept |= tie if task.ties is None else tie & (np.cumsum(tie) <= task.ties)
        reasons = np.where(np.isnan(scores), f"no_{self.config.column}", f"low_{self.config.column}")
        dropped = ~kept
        return ShardResult(kept=table.filter(pa.array(kept)),
                           dropped=with_drop_reason(table.filter(pa.array(dropped)), reasons[dropped].tolist()),
                           counters={"scored": int((~np.isnan(scores)).sum())})

    def run(self, ctx: Context) -> dict:
        stats = run_stage(self, ctx)
        cutoff = self.config.threshold if self.cutoff is None else self.cutoff
        return {**stats, "column": self.config.column, "cutoff": cutoff,
                "kept_share": round(stats["rows_out"] / stats["rows_in"], 4)}
