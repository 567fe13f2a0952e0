"""Text continuation with a KV cache: one forward over the prompt, then one position per new token.

    new_ids = generate(model, prompt_ids, max_new_tokens=256, eos_id=tokenizer.eos_token_id)   # greedy
    new_ids = generate(model, prompt_ids, 256, temperature=0.8, top_p=0.95, generator=rng)     # nucleus

Greedy decoding (temperature 0) is what phi-1's pass@1 figures use; sampling serves pass@k. Every prompt in a
batch has the same length (no padding yet).
"""

from __future__ import annotations

import torch

from textbooks.model.phi import Phi


def generate(model: Phi, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_p: float = 1.0, eos_id: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The new tokens (batch, new_len) after `input_ids` (batch, prompt_len), new_len <= max_new_tokens.

    A row that has produced `eos_id` keeps emitting it, and decoding stops once every row has. The model runs
    in eval mode (no dropout) and returns to its previous mode afterwards, so a trainer can sample mid-run.
    """
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be (batch, prompt_len) with prompt_len >= 1, got {tuple(input_ids.shape)}")
    if max_new_tokens < 0 or temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need max_new_tokens >= 0, temperature >= 0 and 0 < top_p <= 1; got {max_new_tokens}, "
                         f"{temperature}, {top_p}")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return _decode(model, input_ids, max_new_tokens, temperature, top_p, eos_id, generator)
    finally:
        model.train(was_training)


def _decode(model: Phi, input_ids: torch.Tensor, max_new_tokens: int, temperature: float, top_p: float,
            eos_id: int | None, generator: torch.Generator | None) -> torch.Tensor:
    batch = input_ids.shape[0]
    tokens: list[torch.Tensor] = []
    done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    logits, cache = model(input_ids, return_cache=True)
    for step in range(max_new_tokens):
        token = next_token(logits[:, -1], temperature, top_p, generator)
        if eos_id is not None:
            token = torch.where(done, eos_id, token)
            done |= token == eos_id
        tokens.append(token)
        if step == max_new_tokens - 1 or (eos_id is not None and bool(done.all())):
            break
        logits, cache = model(token[:, None], cache=cache, return_cache=True)
    if not tokens:
        return input_ids.new_empty((batch, 0))
    return torch.stack(tokens, dim=1)


def next_token(logits: torch.Tensor, temperature: float = 0.0, top_p: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of `logits` (batch, vocab): argmax at temperature 0, else a nucleus sample.

    Nucleus (top-p) sampling keeps the most likely tokens whose probabilities sum to at least `top_p` (always
    at least one) and samples among them after dividing the logits by `temperature`.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the more likely tokens
        sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


__all__ = ["generate", "next_token"]
