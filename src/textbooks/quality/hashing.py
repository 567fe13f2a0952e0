"""The `hashing` embedder: signed feature hashing of code tokens and adjacent token pairs, L2-normalised.

No weights, no fitting, no network: the same text gives the same vector on every machine. Tokens are
identifiers and words (the parts of snake_case and camelCase names too), numbers and punctuation runs, so a
docstring's prose and the code's names both count. Signed hashing into `dimension` buckets is itself a random
projection of the bag of tokens (inner products are kept in expectation), so no second projection is needed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from textbooks.quality.embedders import Embedder

if TYPE_CHECKING:
    from textbooks.quality.config import EmbedConfig

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[^\w\s]+")
NAME_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
BATCH = 1024


def code_features(text: str) -> list[str]:
    """The tokens of `text`, the parts of its compound names, and its adjacent token pairs."""
    tokens = TOKEN.findall(text)
    parts = [part.lower() for token in tokens if "_" in token.strip("_") or not token.islower()
             for part in NAME_PART.findall(token)]
    pairs = [f"{first} {second}" for first, second in zip(tokens, tokens[1:])]
    return tokens + [f"~{part}" for part in parts] + pairs


class HashingEmbedder(Embedder):
    name = "hashing"

    def __init__(self, dimension: int) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.dimension = dimension
        self.vectorizer = HashingVectorizer(analyzer=code_features, n_features=dimension, alternate_sign=True,
                                            norm="l2", dtype=np.float32)

    @classmethod
    def from_config(cls, config: EmbedConfig) -> HashingEmbedder:
        from textbooks.quality.config import HASHING_DIMENSION

        return cls(config.dimension or HASHING_DIMENSION)

    def embed(self, texts: list[str]) -> np.ndarray:
        batches = [self.vectorizer.transform(texts[start:start + BATCH]).toarray()
                   for start in range(0, len(texts), BATCH)]
        return np.concatenate(batches) if batches else np.zeros((0, self.dimension), np.float32)
