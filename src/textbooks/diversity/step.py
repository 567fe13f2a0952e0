"""`textbooks diversity`: how many variations of each row a dataset holds, how redundant and how spread out it is.

    textbooks diversity --input runs/demo/mine-exercises --out runs/demo/diversity
    textbooks diversity --input runs/x/synth --embeddings runs/x/embed --compare runs/x/ingest runs/x/filter

The paper's open problem (its conclusion): how many variations of each exercise exist, and how they are
distributed. The output is the input with `family_id` per row (the connected components of its duplicate graph:
exact, near, AST-shape and, with embeddings, cosine duplicates; `families.py`); stats.json holds the family sizes,
the redundancy measures (near-duplicate and shape-duplicate rates, distinct-n, zstd long-window compression, the
share a greedy dedup would remove at several thresholds), the balance of imported libraries and of the sampler's
axes, and, with embeddings, the spread (Vendi score, k-means cluster entropy, nearest-neighbour distance).
`compare` measures more datasets in the same way, side by side (raw vs filtered vs synthetic, or two prompts).
In a recipe, `diversity: true` measures every dataset the recipe makes (`measure_step`), so redundancy is seen
before and after each stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from textbooks.diversity.dataset import FAMILY, measure_dataset, measure_with_families
from textbooks.errors import UserError
from textbooks.pipeline.card import write_dataset_card
from textbooks.pipeline.refs import DatasetInput
from textbooks.pipeline.stage import ShardResult, Stage, run_stage
from textbooks.pipeline.step import Context, StepConfig
from textbooks.store import data
from textbooks.store.atomic import read_json, write_json
from textbooks.store.inputs import Part, plan_parts, read_table


class DiversityConfig(StepConfig):
    embeddings: DatasetInput | None = Field(None, description="embeddings of the input (textbooks embed), for "
                                                              "cosine duplicates and the spread measures")
    compare: list[DatasetInput] = Field(default_factory=list, description="more datasets measured the same way, "
                                                                          "side by side in stats and the report")
    threshold: float = Field(0.7, gt=0, le=1, description="Jaccard similarity of near-duplicates (token "
                                                          "shingles, local names canonicalised)")
    cosine: float = Field(0.95, gt=0, le=1, description="cosine similarity of embedding duplicates")
    ngram: int = Field(5, ge=1, description="tokens per shingle")
    seed: int = Field(0, ge=0, description="seed of the MinHash permutations and the samples")


@dataclass(frozen=True)
class Slice:
    part: Part
    family: np.ndarray  # the family of each of the part's rows


class DiversityStage(Stage):
    name = "diversity"
    Config = DiversityConfig
    config: DiversityConfig
    measured: dict | None = None  # the input's measures, made by `plan` in the driver

    def _settings(self) -> dict:
        return {"threshold": self.config.threshold, "cosine": self.config.cosine, "ngram": self.config.ngram,
                "seed": self.config.seed}

    def plan(self) -> list[Slice]:
        """Every measure of the input, families included, at once (families need all rows together); then one
        task per part, which adds the part's `family_id` column."""
        parts = plan_parts(self.input)
        self.measured, family = measure_with_families(self.input, self.config.embeddings, **self._settings())
        sizes = [read_table(part, ["id"]).num_rows for part in parts]
        bounds = np.cumsum([0, *sizes]).tolist()
        return [Slice(part, family[start:end]) for part, start, end in zip(parts, bounds[:-1], bounds[1:])]

    def map(self, task: Slice) -> ShardResult:
        table = read_table(task.part)
        if table.num_rows != len(task.family):
            raise UserError(f"{task.part.path}: has {table.num_rows} rows now, {len(task.family)} when the stage "
                            "began; it changed during the run, so run the stage again")
        if FAMILY in table.column_names:
            table = table.drop_columns([FAMILY])
        return ShardResult(kept=table.append_column(FAMILY, pa.array(task.family, pa.int64())))

    def run(self, ctx: Context) -> dict:
        stats = run_stage(self, ctx)
        stats["diversity"] = self.measured
        ctx.say(summary_line(self.name, str(self.input), self.measured))
        compared = {other: measure_dataset(other, **self._settings()) for other in self.config.compare}
        for other, found in compared.items():
            ctx.say(summary_line(self.name, other, found))
        if compared:
            stats["compared"] = compared
        return stats


def summary_line(name: str, what: str, found: dict) -> str:
    redundancy = found["redundancy"]
    family = found["families"]
    return (f"{name}: {Path(what).name}: {found['rows']:,} rows in {family['families']:,} families "
            f"({family['share_in_families']:.1%} of rows have a variation), shape duplicates "
            f"{redundancy['shape_duplicate_rate']:.1%}, distinct-4 {redundancy['distinct_n'].get('4', 0):.3f}, "
            f"compression {redundancy['compression_ratio']:.2f}x")


def measure_step(folder: Path, say: Callable[[str], None]) -> None:
    """`diversity: true` in a recipe: measure a finished dataset step into FOLDER/diversity.json, once per
    version of it (the marker's fingerprint); a dataset without text (embeddings) is left alone."""
    marker = data.read_marker(folder)
    shards = data.shard_paths(folder)
    if marker is None or not shards or "text" not in pq.read_schema(shards[0]).names:
        return
    path = folder / DIVERSITY_FILE
    earlier = read_json(path) if path.is_file() else None
    if earlier and earlier.get("fingerprint") == marker.get("fingerprint"):
        return
    found = measure_dataset(folder)
    write_json({"fingerprint": marker.get("fingerprint"), **found}, path)
    write_dataset_card(folder, data.read_stats(folder), marker.get("parts"), found)  # the card, with the figures
    say(summary_line("diversity", str(folder), found))


DIVERSITY_FILE = "diversity.json"

__all__ = ["DIVERSITY_FILE", "DiversityConfig", "DiversityStage", "measure_step"]
