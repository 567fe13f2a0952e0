"""Solution loss: the mean cross-entropy of each canonical solution given its prompt, in nats per token.

    result = solution_loss(model, tokenizer, [(problem["prompt"], problem["canonical_solution"]), ...])
    result.mean, result.per_problem[0], result.tokens

Small models score about 0 pass@1 early in training, so this is the signal that moves: it falls as a model
learns to write the benchmark's kind of code, long before the code passes tests. `model` is our `Phi` or a
transformers causal LM (anything that maps ids (batch, seq) to logits, or to an output with `.logits`).

`token_loss_totals` is the validation loss's sum: the trainer adds it over its validation windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100
SUM_CHUNK_ELEMENTS = 1 << 24  # logits converted to fp32 at a time by `token_loss_totals` (64 MB)


@dataclass(frozen=True)
class SolutionLoss:
    mean: float  # over every solution token of every problem (token-weighted)
    per_problem: list[float]  # each problem's mean over its own solution tokens
    tokens: int  # solution tokens in all
    problem_tokens: list[int]  # solution tokens per problem


def solution_ids(tokenizer: Any, prompt: str, solution: str) -> tuple[list[int], int]:
    """The ids of `prompt + solution` and how many of them are the prompt's.

    The prompt's share is the longest common prefix of the two tokenizations: the prompt alone, when the
    tokenizer splits at the seam (the usual case: prompts end with a newline), else up to the token that merges
    across it, which then counts as a solution token, so that no character of the solution goes unscored.
    """
    prompt_ids = tokenizer(prompt)["input_ids"]
    full_ids = tokenizer(prompt + solution)["input_ids"]
    shared = 0
    for prompt_id, full_id in zip(prompt_ids, full_ids):
        if prompt_id != full_id:
            break
        shared += 1
    return full_ids, shared


def solution_loss(model: nn.Module, tokenizer: Any, pairs: list[tuple[str, str]],
                  batch_size: int = 8) -> SolutionLoss:
    """Cross-entropy of each solution's tokens given the prompt and the solution before them (prompt tokens
    are masked with -100), batched with right padding, longest sequences first. The model runs in eval mode
    and returns to its previous mode."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    examples = [solution_ids(tokenizer, prompt, solution) for prompt, solution in pairs]
    for index, (ids, shared) in enumerate(examples):
        if len(ids) == shared or len(ids) < 2:
            raise ValueError(f"problem {index}: its solution adds no token to score (prompt {shared} tokens, "
                             f"prompt + solution {len(ids)})")
    order = sorted(range(len(examples)), key=lambda index: -len(examples[index][0]))
    sums, counts = [0.0] * len(examples), [0] * len(examples)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                losses, masks = _token_losses(model, [examples[index] for index in batch])
                for index, loss, mask in zip(batch, losses.sum(dim=1).tolist(), masks.sum(dim=1).tolist()):
                    sums[index], counts[index] = loss, int(mask)
    finally:
        model.train(was_training)
    total = sum(counts)
    return SolutionLoss(mean=sum(sums) / total if total else float("nan"),
                        per_problem=[loss / count for loss, count in zip(sums, counts)], tokens=total,
                        problem_tokens=counts)


def _token_losses(model: nn.Module, examples: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position losses (batch, width - 1), zero off the solution, and the mask of solution positions."""
    device = next(model.parameters()).device
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.zeros(len(examples), width, dtype=torch.long)
    targets = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, (ids, shared) in enumerate(examples):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        targets[row, shared:len(ids)] = torch.tensor(ids[shared:])
    input_ids, targets = input_ids.to(device), targets[:, 1:].to(device)  # position t predicts token t + 1
    output = model(input_ids)
    logits = getattr(output, "logits", output)[:, :-1]
    scored = targets != IGNORE
    losses = torch.zeros(scored.shape, device=device)  # fp32 logits of the solution positions only, not all
    losses[scored] = F.cross_entropy(logits[scored].float(), targets[scored], reduction="none")
    return losses, scored


def token_loss_totals(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[summed loss, token count] in fp64 of the next-token cross-entropy at every target that is not -100.

    Each token's loss is computed in fp32 from its own row of logits and the sum is fp64, so totals added over
    any cut of the same windows into batches give the same mean: bit for bit for the tiny model on the CPU
    with micro-batches of 4, 8 and 16 (kernels may round a row's logits differently with the batch's shape
    elsewhere). A mean of the model's own fp32 loss per batch moved by 3e-7 nats between the same three cuts.
    """
    logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    rows = max(1, SUM_CHUNK_ELEMENTS // logits.shape[1])
    total = torch.zeros((), dtype=torch.float64, device=logits.device)
    for chunk, chunk_targets in zip(logits.split(rows), targets.split(rows)):
        losses = F.cross_entropy(chunk.float(), chunk_targets, ignore_index=IGNORE, reduction="none")
        total += losses.double().sum()
    return torch.stack([total, (targets != IGNORE).sum().double()])


__all__ = ["SolutionLoss", "solution_ids", "solution_loss", "token_loss_totals"]
