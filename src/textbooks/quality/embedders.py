"""Embedders: text in, one fixed-size vector per text out. One small file per provider behind this base class.

    embedder = make_embedder(EmbedConfig(embedder="hashing"))
    vectors = embedder.embed(["def add(a, b): ..."])   # float32, shape (1, embedder.dimension)

| name | file | what |
|---|---|---|
| hashing | `hashing.py` | signed feature hashing of code tokens and token pairs; no weights, deterministic |
| causal-lm | `causal_lm.py` | the mean of a transformers causal LM's last hidden state over the text's tokens |
| sentence-transformers | `sentence.py` | a sentence-transformers model (the optional extra `textbooks[embed]`) |

The paper's filter used "the output embedding of a pretrained CodeGen model" (section 2.1); `causal-lm` with
`Salesforce/codegen-350M-mono` is that, with mean pooling (the paper does not say how it pooled).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from textbooks.quality.config import EmbedConfig

EMBEDDERS: dict[str, str] = {
    "hashing": "textbooks.quality.hashing:HashingEmbedder",
    "causal-lm": "textbooks.quality.causal_lm:CausalLMEmbedder",
    "sentence-transformers": "textbooks.quality.sentence:SentenceTransformerEmbedder",
}
class Embedder:
    """Turns texts into vectors of `dimension` floats, in the order given."""

    name: ClassVar[str]
    dimension: int
    model: str | None = None

    @classmethod
    def from_config(cls, config: EmbedConfig) -> Embedder:
        raise NotImplementedError

    def embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def embedder_class(name: str) -> type[Embedder]:
    module, _, attribute = EMBEDDERS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_embedder(config: EmbedConfig) -> Embedder:
    """The embedder `config` names, loaded (a model's weights are read here: call it once per worker)."""
    return embedder_class(config.embedder).from_config(config)
