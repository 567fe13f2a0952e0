"""Settings of `textbooks embed`: the recipe keys and, with `-` for `_`, the command's flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from textbooks.pipeline.refs import ModelInput
from textbooks.pipeline.step import StepConfig

EmbedderName = Literal["hashing", "causal-lm", "sentence-transformers"]
DEFAULT_MODELS: dict[str, str | None] = {
    "hashing": None,
    "causal-lm": "Salesforce/codegen-350M-mono",  # the CodeGen the paper names in section 5
    "sentence-transformers": "sentence-transformers/all-MiniLM-L6-v2",
}
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
