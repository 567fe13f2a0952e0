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
from typing import Literal

import pyarrow.compute as pc
from pydantic import Field

from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.refs import ModelInput
from textbooks.pipeline.stage import ShardResult, Stage, run_stage
from textbooks.pipeline.step import Context, SettingError, StepConfig
from textbooks.quality.embedders import DEFAULT_MODELS, Embedder, EmbedderName, make_embedder
from textbooks.quality.vectors import EMBEDDING, META, embeddings_table
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table

HASHING_DIMENSION = 256


class EmbedConfig(StepConfig):
    embedder: EmbedderName = Field(
        "hashing",
        description="hashing: feature hashing of code tokens, no weights (offline); causal-lm: the mean of a "
                    "transformers causal LM's last hidden state (the paper: CodeGen); sentence-transformers: a "
                    "sentence-transformers model (pip install 'textbooks[embed]').")
    model: ModelInput | None = Field(
        None,
        description="causal-lm and sentence-transformers: a hub name or a model folder with config.json (an "
                    "export-hf output; `@export-hf` in a recipe); default Salesforce/codegen-350M-mono and "
                    "sentence-transformers/all-MiniLM-L6-v2. hashing takes none.")
    dimension: int | None = Field(
        None, ge=2, le=1 << 20,
        description=f"hashing: the vector's length (default {HASHING_DIMENSION}); a model's is its hidden size.")
    max_tokens: int = Field(
        1024, ge=1,
        description="causal-lm and sentence-transformers: tokens of a text that are read (longer texts are "
                    "cut), at most the model's own limit.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="causal-lm: the model's precision; auto: bfloat16 on a GPU, float32 on a CPU.")
    batch_size: int = Field(16, ge=1, description="Texts per forward pass of a model (texts of similar length "
                                                  "are batched together).")
    device: str = Field("auto", description="Where a model runs: auto (cuda when there is one, else cpu), cpu, "
                                            "cuda, cuda:1, mps.")

    def model_name(self) -> str | None:
        """The model that embeds: the setting, or the embedder's default."""
        return str(self.model) if self.model else DEFAULT_MODELS[self.embedder]


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
