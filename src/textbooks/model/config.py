"""The phi-1 architecture's settings and its presets.

Field names follow transformers' `PhiConfig`, so export to and import from `PhiForCausalLM` is a copy of values.
`vocab_size=None` (the CPU presets) means "take it from the tokenizer", rounded up to a multiple of 64 by the
trainer; the phi-1 presets keep CodeGen's padded 51,200.

    from textbooks.model import preset
    config = preset("phi-1-small")            # 356,794,368 parameters
    config = preset("tiny", vocab_size=4096)  # a CPU model for the demo
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from textbooks.errors import UserError

VOCAB_MULTIPLE = 64


class ModelConfig(BaseModel):
    """One phi-style decoder: parallel attention + MLP blocks, partial rotary, tanh-GELU, biases everywhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: int | None = Field(51200, ge=1, description="Embedding rows (None: from the tokenizer).")
    hidden_size: int = Field(2048, ge=1, description="Width of the residual stream.")
    intermediate_size: int = Field(8192, ge=1, description="Width of the MLP.")
    num_hidden_layers: int = Field(24, ge=1, description="Decoder blocks.")
    num_attention_heads: int = Field(32, ge=1, description="Attention heads (multi-head, no grouped keys).")
    max_position_embeddings: int = Field(2048, ge=1, description="Longest sequence the model is meant for.")
    partial_rotary_factor: float = Field(0.5, gt=0, le=1, description="Share of each head's dims that rotate.")
    rope_theta: float = Field(10000.0, gt=0, description="Rotary base.")
    layer_norm_eps: float = Field(1e-5, gt=0, description="LayerNorm epsilon.")
    embd_pdrop: float = Field(0.0, ge=0, lt=1, description="Dropout on the embeddings while training.")
    attention_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on attention weights (paper: 0.1).")
    resid_pdrop: float = Field(0.1, ge=0, lt=1, description="Dropout on both residual branches (paper: 0.1).")
    initializer_range: float = Field(0.02, gt=0, description="Std of the normal initialisation.")

    @model_validator(mode="after")
    def _check_shapes(self) -> "ModelConfig":
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.rotary_dim % 2 or self.rotary_dim == 0:
            raise ValueError(f"rotary dims per head ({self.rotary_dim} = head_dim {self.head_dim} x "
                             f"partial_rotary_factor {self.partial_rotary_factor}) must be even and positive")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)

    def num_parameters(self) -> int:
        """Exact parameter count, computed from the shapes (no weights allocated)."""
        if self.vocab_size is None:
            raise UserError("vocab_size is not set; it comes from the tokenizer")
        d, f, v = self.hidden_size, self.intermediate_size, self.vocab_size
        per_layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * d
        return v * d + self.num_hidden_layers * per_layer + 2 * d + (d * v + v)


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's models (section 2.3): 24 x 2048 and 20 x 1024, 64-dim heads, CodeGen vocabulary padded to 51,200.
    "phi-1": {},
    "phi-1-small": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 20,
                    "num_attention_heads": 16},
    # CPU sizes with phi-1's head shape (64 dims, 32 rotary); vocabulary from the tokenizer.
    "tiny": {"vocab_size": None, "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
             "num_attention_heads": 4, "max_position_embeddings": 1024},
    "small": {"vocab_size": None, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 8,
              "num_attention_heads": 8, "max_position_embeddings": 2048},
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The named preset with `overrides` applied; an unknown name or bad value is a `UserError`."""
    if name not in PRESETS:
        raise UserError(f"unknown model preset {name!r}; expected one of: {', '.join(PRESETS)}")
    try:
        return ModelConfig(**{**PRESETS[name], **overrides})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc'])) or 'config'}: {item['msg']}"
                             for item in error.errors())
        raise UserError(f"model preset {name!r} with {overrides}: {problems}") from None


def padded_vocab(size: int, multiple: int = VOCAB_MULTIPLE) -> int:
    """`size` rounded up to a multiple of `multiple` (phi-1 pads CodeGen's 50,295 entries to 51,200)."""
    return -(-size // multiple) * multiple
