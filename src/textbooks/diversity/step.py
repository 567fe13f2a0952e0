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

from textbooks.diversity import families
from textbooks.diversity.dataset import FAMILY, measure_dataset, vectors_for
from textbooks.errors import UserError
from textbooks.pipeline.refs import DatasetInput
from textbooks.pipeline.stage import ShardResult, Stage, WorkShard, run_stage
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
    has_reduce = True
    config: DiversityConfig

    def plan(self) -> list[Part]:
        return plan_parts(self.input)  # reading a part checks it has id, text and source

    def map(self, task: Part) -> ShardResult:
        return ShardResult(kept=read_table(task, ["id", "text"]))

    def reduce(self, shards: list[WorkShard]) -> list[Slice]:
        tables = [shard.read("kept") for shard in shards]
        texts = [text or "" for table in tables for text in table["text"].to_pylist()]
        vectors = None
        if self.config.embeddings is not None:
            ids = [str(row_id) for table in tables for row_id in table["id"].to_pylist()]
            vectors = vectors_for(self.config.embeddings, ids)
        found = families.find_families(texts, threshold=self.config.threshold, ngram=self.config.ngram,
                                       seed=self.config.seed, embeddings=vectors, cosine=self.config.cosine)
        bounds = np.cumsum([0] + [table.num_rows for table in tables]).tolist()
        return [Slice(part, found.family[start:end]) for part, start, end in zip(self.plan(), bounds[:-1], bounds[1:])]

    def apply(self, shard: WorkShard, state: Slice) -> ShardResult:
        table = read_table(state.part)
        if table.num_rows != len(state.family):
            raise UserError(f"{state.part.path}: has {table.num_rows} rows now, {len(state.family)} when the stage "
                            "began; it changed during the run, so run the stage again")
        if FAMILY in table.column_names:
            table = table.drop_columns([FAMILY])
        return ShardResult(kept=table.append_column(FAMILY, pa.array(state.family, pa.int64())))

    def run(self, ctx: Context) -> dict:
        stats = run_stage(self, ctx)
        family = np.concatenate([data.read_shard(path, [FAMILY])[FAMILY].to_numpy()
                                 for path in data.shard_paths(ctx.out)]) if data.shard_paths(ctx.out) else None
        settings = {"threshold": self.config.threshold, "cosine": self.config.cosine, "ngram": self.config.ngram,
                    "seed": self.config.seed}
        stats["diversity"] = measure_dataset(ctx.out, self.config.embeddings, family=family, **settings)
        ctx.say(summary_line(self.name, str(self.input), stats["diversity"]))
        compared = {}
        for other in self.config.compare:
            compared[other] = measure_dataset(other, **settings)
            ctx.say(summary_line(self.name, other, compared[other]))
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
    say(summary_line("diversity", str(folder), found))


DIVERSITY_FILE = "diversity.json"

__all__ = ["DIVERSITY_FILE", "DiversityConfig", "DiversityStage", "measure_step"]
