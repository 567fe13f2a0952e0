"""Text continuation with a KV cache: one forward over the prompt, then one position per new token.

    new_ids = generate(model, prompt_ids, max_new_tokens=256, eos_id=tokenizer.eos_token_id)   # greedy
    new_ids = generate(model, prompt_ids, 256, temperature=0.8, top_p=0.95, generator=rng)     # nucleus
    rows = generate_batch(model, [ids_a, ids_b], 256, eos_id=eos, stop=stop_at_text(decode, ["\\ndef"]))

`generate` takes a tensor of prompts, all of one length, or left-padded with an `attention_mask`.
`generate_batch` takes prompts of any lengths as lists of ids, left-pads them itself and returns each row's new
tokens as a list that ends where the row finished: at `eos_id` or where `stop` (token sequences or a function of
the row's new ids, e.g. `stop_at_text`) said so. A padded row decodes exactly as the prompt alone would
(greedy, fp32: `tests/test_generate.py`). Decoding stops when every row has finished, and finished rows leave
the batch (their cache rows are dropped), so one long completion does not keep the others computing.

Greedy decoding (temperature 0) is what phi-1's pass@1 figures use; sampling serves pass@k. The cache grows
by `torch.cat` each step rather than into a preallocated buffer: it keeps the cache format `Phi` documents,
and code completions are a few hundred tokens, where the copies are small next to the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from textbooks.model.phi import Phi

StopCondition = Callable[[list[int]], bool]  # a row's new token ids so far -> has it finished?


def stop_at_tokens(sequences: Sequence[Sequence[int]]) -> StopCondition:
    """A row finishes when its new tokens end with any of `sequences` (token ids)."""
    tails = [list(sequence) for sequence in sequences if len(sequence) > 0]
    return lambda ids: any(ids[-len(tail):] == tail for tail in tails)


def stop_at_text(decode: Callable[[list[int]], str], stops: Sequence[str]) -> StopCondition:
    """A row finishes once the text of its new tokens, `decode(ids)`, contains any of `stops`.

    The whole row is decoded at each step, so a stop split across tokens is found; a fast tokenizer decodes a
    few hundred tokens in tens of microseconds, little next to a forward pass.
    """
    def finished(ids: list[int]) -> bool:
        text = decode(ids)
        return any(stop in text for stop in stops)

    return finished


def generate(model: Phi, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_p: float = 1.0, eos_id: int | None = None, generator: torch.Generator | None = None,
             attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The new tokens (batch, new_len) after `input_ids` (batch, prompt_len), new_len <= max_new_tokens.

    `attention_mask` (batch, prompt_len), 1 at real tokens, makes a left-padded batch of prompts of different
    lengths. A row that has produced `eos_id` keeps emitting it, and decoding stops once every row has. The model
    runs in eval mode (no dropout) and returns to its previous mode afterwards, so a trainer can sample mid-run.
    """
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be (batch, prompt_len) with prompt_len >= 1, got {tuple(input_ids.shape)}")
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask must have input_ids' shape {tuple(input_ids.shape)}, got "
                             f"{tuple(attention_mask.shape)}")
        if not bool(attention_mask[:, -1].all()):
            raise ValueError("attention_mask must be 1 at every row's last position: pad prompts on the left")
    rows = _run(model, input_ids, attention_mask, max_new_tokens, temperature, top_p, eos_id, None, generator)
    width = max(map(len, rows))
    filled = [row + [eos_id] * (width - len(row)) for row in rows]  # only rows that ended at eos_id are short
    return torch.tensor(filled, dtype=input_ids.dtype, device=input_ids.device).view(len(rows), width)


def generate_batch(model: Phi, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 0.0,
                   top_p: float = 1.0, eos_id: int | None = None,
                   stop: StopCondition | Sequence[Sequence[int]] | None = None,
                   generator: torch.Generator | None = None) -> list[list[int]]:
    """Each prompt's new token ids, the prompts left-padded into one batch on the model's device.

    A row ends with the token that finished it, `eos_id` or the one after which `stop` held, or after
    `max_new_tokens`. `stop` is a `StopCondition` or token-id sequences (`stop_at_tokens`).
    """
    if not prompts:
        return []
    if any(len(prompt) == 0 for prompt in prompts):
        raise ValueError("every prompt needs at least one token")
    device = next(model.parameters()).device
    width = max(map(len, prompts))
    pad = eos_id if eos_id is not None else 0  # never attended to: any id does
    input_ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], dtype=torch.long, device=device)
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    if stop is not None and not callable(stop):
        stop = stop_at_tokens(stop)
    return _run(model, input_ids, attention_mask, max_new_tokens, temperature, top_p, eos_id, stop, generator)


def _run(model: Phi, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, max_new_tokens: int,
         temperature: float, top_p: float, eos_id: int | None, stop: StopCondition | None,
         generator: torch.Generator | None) -> list[list[int]]:
    if max_new_tokens < 0 or temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need max_new_tokens >= 0, temperature >= 0 and 0 < top_p <= 1; got {max_new_tokens}, "
                         f"{temperature}, {top_p}")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return _decode(model, input_ids, attention_mask, max_new_tokens, temperature, top_p, eos_id, stop,
                           generator)
    finally:
        model.train(was_training)


def _decode(model: Phi, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, max_new_tokens: int,
            temperature: float, top_p: float, eos_id: int | None, stop: StopCondition | None,
            generator: torch.Generator | None) -> list[list[int]]:
    rows: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    if max_new_tokens == 0:
        return rows
    active = list(range(len(rows)))  # the row each position of the batch decodes
    logits, cache = model(input_ids, return_cache=True, attention_mask=attention_mask)
    for step in range(max_new_tokens):
        token = next_token(logits[:, -1], temperature, top_p, generator)
        keep = []
        for position, (row, value) in enumerate(zip(active, token.tolist())):
            rows[row].append(value)
            if value != eos_id and (stop is None or not stop(rows[row])):
                keep.append(position)
        if not keep or step == max_new_tokens - 1:
            break
        token = token[:, None]
        if len(keep) < len(active):  # finished rows leave the batch
            index = torch.tensor(keep, device=token.device)
            cache = [(keys.index_select(0, index), values.index_select(0, index)) for keys, values in cache]
            token = token[index]
            attention_mask = attention_mask[index] if attention_mask is not None else None
            active = [active[position] for position in keep]
        if attention_mask is not None:
            attention_mask = torch.cat((attention_mask, attention_mask.new_ones(len(active), 1)), dim=1)
        logits, cache = model(token, cache=cache, return_cache=True, attention_mask=attention_mask)
    return rows


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


__all__ = ["StopCondition", "generate", "generate_batch", "next_token", "stop_at_text", "stop_at_tokens"]
