"""The phi-1 model in plain PyTorch, single-device and free of parallelism (`textbooks.train` wraps it).

Module names are transformers' `PhiForCausalLM` names (`model.layers.3.self_attn.q_proj.weight`, ...), so a
state dict moves between the two unchanged (`textbooks.model.hf`). Per block, one LayerNorm feeds attention and
the MLP in parallel: `y = x + drop(attn(ln(x))) + drop(mlp(ln(x)))`. Rotary embeddings rotate the first
`rotary_dim` dims of each head in the rotate-half layout.

It computes what `PhiForCausalLM` computes (fp32 logits agree both ways, `tests/test_hf.py`) and trains faster.
Speed-up over transformers after each change, in `bench/train_speed.py`'s setting (tiny preset, vocabulary
8,192, 8 x 256 tokens, 2 CPU threads, dropout 0.1; medians of paired rounds, two runs on 2026-11-22):

- to start with, the tanh GELU as one kernel (transformers runs `gelu_new` as eight ops) and `is_causal=True`
  rather than a mask: 1.17-1.24x;
- `cross_entropy` below (no log-probabilities tensor, fewer passes over the logits): 1.20-1.23x;
- dropout masks from `rand` rather than `bernoulli_` on CPU (same distribution, 19 vs 29 ms per 2M): 1.21-1.28x;
- attention under dropout on CPU as `baddbmm`, softmax, dropout, `bmm` rather than SDPA's generic fallback (its
  CPU kernels have no dropout): 1.32-1.35x;
- that attention in blocks of 128 queries that skip the masked keys: 1.33-1.45x (and half the attention time
  at 1,024 tokens).

Tried and dropped: q, k and v as one matmul (weights concatenated in forward), 0.97-1.0x of the same without;
fc1 in that matmul as well, 0.97x. On GPUs the model uses SDPA and `F.dropout` throughout.

Batches of prompts of different lengths go left-padded with an `attention_mask` (1 for real tokens, as in
transformers): padded keys are masked out and positions count only real tokens, so a padded row computes what
the prompt alone computes (`tests/test_generate.py`). Without a mask the paths above run unchanged.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from textbooks.model.config import ModelConfig

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys and values, (batch, heads, seen, head_dim)
IGNORE = -100  # targets equal to this are left out of the loss, as in F.cross_entropy and transformers
ATTENTION_BLOCK = 128  # query rows per block in CPU training attention
LOSS_CHUNK_ELEMENTS = 2**19  # logits per loss chunk on CPU: 2 MB in fp32, so the exp passes stay in cache


def rotary_tables(config: ModelConfig, length: int, device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
    """cos and sin of shape (length, rotary_dim) in fp32, the layout transformers uses (frequencies twice)."""
    dim = config.rotary_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim))
    positions = torch.arange(length, dtype=torch.int64, device=device).float()
    freqs = torch.outer(positions, inv_freq)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotary_dim: int) -> torch.Tensor:
    """Rotate the first `rotary_dim` dims of each head of x (..., seq, head_dim); the rest pass."""
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    half = rotary_dim // 2
    rotated = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
    return torch.cat((rot * cos + rotated * sin, rest), dim=-1)


class _CpuDropout(torch.autograd.Function):
    """Dropout whose mask comes from `rand_like(x) >= p`, the same Bernoulli(1 - p) as `F.dropout`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        # Drawn in fp32 whatever x's dtype: a bf16 uniform has 8 bits, which would shift the keep rate.
        keep = torch.rand_like(x, dtype=torch.float32).ge_(p).to(x.dtype).mul_(1.0 / (1.0 - p))  # 0 or 1/(1-p)
        ctx.save_for_backward(keep)
        return x * keep

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (keep,) = ctx.saved_tensors
        return grad * keep, None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout`, with the mask drawn by `rand` on CPU: 19 ms per 2M elements where `bernoulli_` takes 29."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    return _CpuDropout.apply(x, p)


class Dropout(nn.Dropout):
    """`nn.Dropout` through `dropout` (same distribution, faster on CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


@lru_cache(maxsize=8)
def _causal_bias(length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(length, length): 0 on and below the diagonal, -inf above; built once per shape, not per call."""
    with torch.inference_mode(False):  # cached: must not be an inference tensor, which autograd refuses
        return torch.full((length, length), float("-inf"), device=device, dtype=dtype).triu(1)


def _attention_with_dropout(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: float) -> torch.Tensor:
    """Causal attention with dropout on the weights, for CPU training (SDPA's CPU kernels have no dropout, and
    its fallback computes, masks and drops out every score). Queries go in blocks that skip the keys after
    them, as FlashAttention does, so most of the masked half is never computed, drawn for dropout or
    differentiated; the scale and the mask ride in one `baddbmm` per block."""
    batch, heads, length, head_dim = q.shape
    flat = (batch * heads, length, head_dim)
    keys, values = k.reshape(flat), v.reshape(flat)
    bias = _causal_bias(length, q.device, q.dtype)
    outputs, start = [], 0
    for queries in q.reshape(flat).split(ATTENTION_BLOCK, dim=1):
        end = start + queries.shape[1]
        scores = torch.baddbmm(bias[start:end, :end], queries, keys[:, :end].transpose(1, 2), alpha=head_dim**-0.5)
        weights = dropout(torch.softmax(scores, dim=-1), p, training=True)
        outputs.append(torch.bmm(weights, values[:, :end]))
        start = end
    return torch.cat(outputs, dim=1).view(batch, heads, length, head_dim)


class PhiAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_heads, self.head_dim, self.rotary_dim = config.num_attention_heads, config.head_dim, config.rotary_dim
        self.dropout = config.attention_dropout
        self.q_proj = nn.Linear(d, d, bias=True)
        self.k_proj = nn.Linear(d, d, bias=True)
        self.v_proj = nn.Linear(d, d, bias=True)
        self.dense = nn.Linear(d, d, bias=True)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """`cos`/`sin` are (seq, rotary_dim), or (batch, 1, seq, rotary_dim) with per-row positions; `mask`,
        when given, is the boolean (batch, 1, seq, seen + seq) of keys each query may see (`_padding_mask`)."""
        batch, length, width = x.shape
        shape = (batch, length, self.num_heads, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)  # (batch, heads, seq, head_dim)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q, k = apply_rotary(q, cos, sin, self.rotary_dim), apply_rotary(k, cos, sin, self.rotary_dim)
        if cache is not None:
            k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
        seen = k.shape[2] - length
        dropout_p = self.dropout if self.training else 0.0
        if mask is not None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        elif seen == 0 and dropout_p > 0 and x.device.type == "cpu":
            out = _attention_with_dropout(q, k, v, dropout_p)
        elif seen == 0:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:  # new queries see every cached position and the new ones up to themselves
            mask = torch.ones(length, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=seen)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        out = out.transpose(1, 2).reshape(batch, length, width)
        return self.dense(out), (k, v)


class PhiMLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=True)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))  # transformers' gelu_new, as one kernel


class PhiDecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = PhiAttention(config)
        self.mlp = PhiMLP(config)
        self.resid_dropout = Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        h = self.input_layernorm(x)
        attn, new_cache = self.self_attn(h, cos, sin, cache, mask)
        return x + self.resid_dropout(attn) + self.resid_dropout(self.mlp(h)), new_cache


def _padding_mask(attention_mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention mask and positions of the last `length` tokens, for left-padded rows.

    `attention_mask` (batch, seen + length) is 1 at real tokens (cached and new), 0 at padding. Returns the
    boolean (batch, 1, length, seen + length) keys each query may see: real keys up to itself, plus itself (so
    a padded query's row is never empty, which would give NaN that its value then spreads to later layers; no
    real query ever sees a padded key), and each token's position (batch, length): real tokens before it in
    its row, so a row's first real token is at 0 whatever the padding before it.
    """
    real = attention_mask.bool()
    total = real.shape[1]
    seen = total - length
    visible = torch.ones(length, total, dtype=torch.bool, device=real.device).tril(diagonal=seen)
    itself = visible & ~visible.tril(diagonal=seen - 1)
    mask = (visible & real[:, None, :]) | itself
    positions = (real.long().cumsum(dim=-1)[:, seen:] - 1).clamp(min=0)
    return mask[:, None], positions


class PhiModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_dropout = Dropout(config.embd_pdrop)
        self.layers = nn.ModuleList(PhiDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.final_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class _CrossEntropy(torch.autograd.Function):
    """Mean next-token loss over targets != IGNORE, equal to `F.cross_entropy`, in fewer passes over the logits.

    Forward keeps only logsumexp per row (no log-probabilities tensor); backward writes
    `softmax(logits) * grad / count` and subtracts at the targets, instead of zero-filling a gradient, scattering
    into it and running log-softmax's backward. On CPU the rows go in chunks of about 2 MB, so that each chunk's
    temporaries stay in cache; elsewhere in one piece. Forward and backward on 2,048 x 8,192 logits, one thread:
    73 ms chunked, 99 ms in one piece, 128 ms for `F.cross_entropy`. Where every target is IGNORE the loss is 0
    (F.cross_entropy gives NaN).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        valid = targets != IGNORE
        count = valid.sum().clamp(min=1)
        safe_targets = targets.masked_fill(~valid, 0)
        rows = max(1, LOSS_CHUNK_ELEMENTS // logits.shape[1]) if logits.device.type == "cpu" else logits.shape[0]
        logsumexp = torch.cat([torch.logsumexp(chunk.float(), dim=-1) for chunk in logits.split(rows)])
        picked = logits.gather(1, safe_targets[:, None]).squeeze(1).float()
        ctx.save_for_backward(logits, safe_targets, valid, logsumexp, count)
        ctx.rows = rows
        return ((logsumexp - picked) * valid).sum() / count

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, safe_targets, valid, logsumexp, count = ctx.saved_tensors
        scale = grad.float() / count
        shift = torch.where(valid, logsumexp, torch.inf)[:, None]  # an ignored row: exp(-inf), a zero gradient
        out = torch.empty_like(logits)
        for out_chunk, chunk, shift_chunk in zip(out.split(ctx.rows), logits.split(ctx.rows), shift.split(ctx.rows)):
            if chunk.dtype == torch.float32:  # softmax * scale, written in place
                torch.sub(chunk, shift_chunk, out=out_chunk).exp_().mul_(scale)
            else:
                out_chunk.copy_(torch.sub(chunk.float(), shift_chunk).exp_().mul_(scale))
        out.scatter_add_(1, safe_targets[:, None], -(scale * valid).to(out.dtype)[:, None])
        return out, None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean loss of `logits` (..., vocab) against `targets` (...), IGNORE left out; fp32 whatever the logits."""
    return _CrossEntropy.apply(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class Phi(nn.Module):
    """phi-1: `forward(input_ids)` gives logits; with `targets` it gives the mean next-token loss too."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.vocab_size is None:
            raise ValueError("ModelConfig.vocab_size is None: set it from the tokenizer before building the model")
        self.config = config
        self.model = PhiModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        self._rotary: tuple[torch.Tensor, torch.Tensor] | None = None
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' Phi initialisation: normal(0, initializer_range) weights, zero biases, unit LayerNorms."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def rotary(self, start: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin rows for positions start..start+length, from a table grown on demand (not in the state dict)."""
        needed = start + length
        if self._rotary is None or self._rotary[0].shape[0] < needed or self._rotary[0].device != device:
            size = max(needed, self.config.max_position_embeddings)
            with torch.inference_mode(False):  # a table first built while generating must still serve training
                self._rotary = rotary_tables(self.config, size, device)
        cos, sin = self._rotary
        return cos[start:needed], sin[start:needed]

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, return_cache: bool = False,
                attention_mask: torch.Tensor | None = None):
        """Logits (batch, seq, vocab); with `targets`, `(logits, loss)`; with `return_cache`, the cache last.

        `cache` holds the keys and values of earlier positions (from a previous call with `return_cache`).
        Targets equal to -100 are ignored by the loss. `attention_mask` (batch, cached + seq), 1 at real
        tokens and 0 at padding, is for left-padded batches: padding is never attended to and positions start
        at each row's first real token (`_padding_mask`); pass it on every call that uses the cache, grown by
        the new tokens. Without it every token is real and the unmasked fast paths run.
        """
        start = cache[0][0].shape[2] if cache else 0
        length = input_ids.shape[1]
        mask = None
        if attention_mask is None:
            cos, sin = self.rotary(start, length, input_ids.device)
        else:
            expected = (input_ids.shape[0], start + length)
            if tuple(attention_mask.shape) != expected:
                raise ValueError(f"attention_mask must be (batch, cached + new tokens) = {expected}, got "
                                 f"{tuple(attention_mask.shape)}")
            mask, positions = _padding_mask(attention_mask, length)
            cos, sin = self.rotary(0, start + length, input_ids.device)  # positions < start + length
            cos, sin = cos[positions][:, None], sin[positions][:, None]  # (batch, 1, seq, rotary_dim): per head
        x = self.model.embed_dropout(self.model.embed_tokens(input_ids))
        new_cache: KVCache = []
        for index, layer in enumerate(self.model.layers):
            x, layer_cache = layer(x, cos, sin, cache[index] if cache else None, mask)
            if return_cache:
                new_cache.append(layer_cache)
        logits = self.lm_head(self.model.final_layernorm(x))
        outputs: tuple = (logits,)
        if targets is not None:
            outputs += (cross_entropy(logits, targets),)
        if return_cache:
            outputs += (new_cache,)
        return outputs[0] if len(outputs) == 1 else outputs

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward): 6 x weights + the attention term, as in PaLM's MFU."""
        c = self.config
        weights = self.num_parameters() - c.vocab_size * c.hidden_size  # embedding lookups are not matmuls
        return 6 * weights + 12 * c.num_hidden_layers * c.hidden_size * seq_len


def param_count_without_allocation(config: ModelConfig) -> int:
    """Build the model on the meta device and count: checks the architecture, not just the formula."""
    with torch.device("meta"):
        return Phi(config).num_parameters()


__all__ = [
    "KVCache",
    "Phi",
    "apply_rotary",
    "cross_entropy",
    "dropout",
    "param_count_without_allocation",
    "rotary_tables",
]
