"""The `sentence-transformers` embedder: a sentence-transformers model (its own pooling), when installed.

    pip install 'textbooks[embed]'
    textbooks embed --input runs/x/ingest --out runs/x/embed --embedder sentence-transformers \
        --model sentence-transformers/all-MiniLM-L6-v2
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textbooks.errors import UserError
from textbooks.quality.causal_lm import pick_device
from textbooks.quality.embedders import Embedder
from textbooks.store import hub

if TYPE_CHECKING:
    from textbooks.quality.config import EmbedConfig

INSTALL = "pip install 'textbooks[embed]'"


class SentenceTransformerEmbedder(Embedder):
    name = "sentence-transformers"

    def __init__(self, model: str, max_tokens: int, batch_size: int, device: str = "auto") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise UserError(f"embed: the sentence-transformers embedder needs its package: {INSTALL}") from None
        if not Path(model).expanduser().is_dir():
            hub.prepare()
        try:
            self.encoder = SentenceTransformer(model, device=pick_device(device))
        except Exception as error:  # noqa: BLE001 - offline, unknown repo, malformed files: the setting's fault
            raise UserError(f"embed: cannot load the sentence-transformers model {model} "
                            f"({type(error).__name__}: {error})") from None
        tokenizer = getattr(self.encoder, "tokenizer", None)
        if tokenizer is not None and tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token  # a causal LM wrapped as a sentence model: pad with EOS
        self.encoder.max_seq_length = min(max_tokens, self.encoder.max_seq_length or max_tokens)
        self.model, self.batch_size = model, batch_size
        dimension = getattr(self.encoder, "get_embedding_dimension", None)  # the name from sentence-transformers 5.x
        self.dimension = int((dimension or self.encoder.get_sentence_embedding_dimension)())

    @classmethod
    def from_config(cls, config: EmbedConfig) -> SentenceTransformerEmbedder:
        return cls(config.model_name(), config.max_tokens, config.batch_size, config.device)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.encoder.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                      show_progress_bar=sys.stderr.isatty())
        return np.asarray(vectors, np.float32).reshape(len(texts), self.dimension)
