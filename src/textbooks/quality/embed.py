"""`textbooks embed`: one vector per row of a dataset, for `textbooks classify` (and embedding decontamination).

    textbooks embed --input runs/x/ingest --out runs/x/embed                      # hashing: offline, no weights
    textbooks embed --input runs/x/ingest --out runs/x/embed --embedder causal-lm  # CodeGen-350M-mono, as the paper
    textbooks embed ... --embedder causal-lm --model runs/x/export-hf             # our own exported model

The output is a dataset of `id` and `embedding` (float16) only, shard i for the input's task i, with
`embedder.json` saying which embedder and model made it (`textbooks.quality.vectors`); the corpus itself is not
copied. The embedder is loaded once per worker (`setup`); a model runs on the GPU when there is one. On Ray, give
a recipe step `executor: {name: ray, num_gpus: 1}` to place each worker on a GPU; on the process pool, a model
on the CPU wants `--workers 1` (torch already spreads one batch over every core).
"""

from __future__ import annotations

import importlib.util

import pyarrow.compute as pc

from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.stage import ShardResult, Stage, run_stage
from textbooks.pipeline.step import Context, SettingError
from textbooks.quality.config import EmbedConfig
from textbooks.quality.embedders import Embedder, make_embedder
from textbooks.quality.vectors import EMBEDDING, META, embeddings_table
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table


class EmbedStage(Stage):
    name = "embed"
    Config = EmbedConfig
    outputs = (*Stage.outputs, META)
    unfingerprinted = frozenset({"batch_size", "device"})
    state: Embedder
    config: EmbedConfig

    @classmethod
    def check(cls, config: EmbedConfig) -> None:
        if config.embedder == "hashing" and config.model:
            raise SettingError("model", "the hashing embedder reads no model; remove model, or choose embedder "
                                        "causal-lm or sentence-transformers")
        if config.embedder != "hashing" and config.dimension:
            raise SettingError("dimension", f"the {config.embedder} embedder's dimension is its model's hidden "
                                            "size; remove dimension")
        if config.embedder == "sentence-transformers" and importlib.util.find_spec("sentence_transformers") is None:
            raise SettingError("embedder", "the sentence-transformers embedder needs the sentence-transformers "
                                           "package: pip install 'textbooks[embed]' (or choose embedder hashing "
                                           "or causal-lm)")

    def plan(self) -> list[Part]:
        return plan_parts(self.input)

    def setup(self, worker: Worker) -> Embedder:
        return make_embedder(self.config)

    def map(self, task: Part) -> ShardResult:
        table = read_table(task, ["id", "text"])
        texts = [text or "" for text in table["text"].to_pylist()]
        vectors = self.state.embed(texts)
        ids = pc.cast(table["id"], "string").to_pylist()
        return ShardResult(kept=embeddings_table(ids, vectors), counters={"texts": len(texts)})

    def run(self, ctx: Context) -> dict:
        stats = run_stage(self, ctx)
        shards = data.shard_paths(ctx.out)
        dimension = data.read_shard(shards[0], [EMBEDDING]).schema.field(EMBEDDING).type.list_size
        meta = {"embedder": self.config.embedder, "model": self.config.model_name(), "dimension": dimension,
                "max_tokens": None if self.config.embedder == "hashing" else self.config.max_tokens,
                "dtype": "float16", "rows": stats["rows_out"]}
        if ctx.main:
            data.write_json(meta, ctx.out / META)
        return {**stats, "embedder": meta}
