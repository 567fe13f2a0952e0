"""The `causal-lm` embedder: the mean of a transformers causal LM's last hidden state over a text's tokens.

Any model `AutoModelForCausalLM` loads: a hub name (`Salesforce/codegen-350M-mono`, the paper's CodeGen) or a
folder with config.json (an `export-hf` output). Only the decoder runs (`model.base_model`), never the LM head,
whose logits would cost more than the embedding. Texts are sorted by length before they are batched, so a batch
pads little; padding is masked out of the mean, so a text's vector does not depend on its batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from textbooks.errors import UserError
from textbooks.quality.embedders import Embedder
from textbooks.store import hub

if TYPE_CHECKING:
    from textbooks.quality.config import EmbedConfig


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def load_causal_lm(name: str, device: str, dtype: Any) -> tuple[Any, Any]:
    """The tokenizer and the model (in eval mode, on `device`) that `name` names; a UserError when it cannot."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(name).expanduser()
    if path.is_dir() and not (path / "config.json").is_file():
        hint = (" (a textbooks model folder: write it as a transformers folder with `textbooks export-hf`)"
                if (path / "model.json").is_file() else "")
        raise UserError(f"embed: {name} has no config.json{hint}; give a transformers model folder or a hub name")
    if not path.is_dir():
        hub.prepare()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
    # Offline, unknown repo, malformed files: transformers raises many types, all the setting's fault.
    except Exception as error:  # noqa: BLE001
        raise UserError(f"embed: cannot load a causal LM from {name} ({type(error).__name__}: {error}); give a "
                        "transformers model folder or a hub name (online, or in the Hugging Face cache)") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer, model.to(device).eval()


def max_positions(model: Any) -> int | None:
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    return None


class CausalLMEmbedder(Embedder):
    name = "causal-lm"

    def __init__(self, model: str, max_tokens: int, batch_size: int, device: str = "auto",
                 dtype: str = "auto") -> None:
        self.model = model
        self.device = pick_device(device)
        self.tokenizer, self.lm = load_causal_lm(model, self.device, pick_dtype(dtype, self.device))
        self.decoder = self.lm.base_model
        self.dimension = int(self.lm.config.get_text_config().hidden_size)
        self.max_tokens = min(max_tokens, max_positions(self.lm) or max_tokens)
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, config: EmbedConfig) -> CausalLMEmbedder:
        return cls(config.model_name(), config.max_tokens, config.batch_size, config.device, config.dtype)

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        # A text with no tokens reads as the end-of-text token alone, so every row has a vector.
        texts = [text if text.strip() else self.tokenizer.eos_token for text in texts]
        order = np.argsort([len(text) for text in texts], kind="stable")
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        starts = range(0, len(texts), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc="embed", unit="batch", leave=False, disable=None):
                rows = order[start:start + self.batch_size]
                vectors[rows] = self._mean_hidden([texts[row] for row in rows])
        return vectors

    def _mean_hidden(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, truncation=True, max_length=self.max_tokens, padding=True,
                               return_tensors="pt").to(self.device)
        hidden = self.decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              use_cache=False).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1).float() / mask.sum(dim=1).float()
        return mean.cpu().numpy()
