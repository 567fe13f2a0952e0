"""How far two judges agree on the same rows: Spearman's rank correlation of their scores, and Cohen's kappa
of their yes/no verdicts at a threshold (both from their definitions, with numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), float)
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(first: Sequence[float], second: Sequence[float]) -> float:
    """Pearson's correlation of the ranks; NaN when either judge gives every row the same score."""
    a, b = _ranks(np.asarray(first, float)), _ranks(np.asarray(second, float))
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def cohen_kappa(first: Sequence[bool], second: Sequence[bool]) -> float:
    """(observed - chance agreement) / (1 - chance agreement); NaN when chance agreement is certain."""
    a, b = np.asarray(first, bool), np.asarray(second, bool)
    if not len(a):
        return math.nan
    observed = float(np.mean(a == b))
    chance = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return math.nan if chance == 1 else (observed - chance) / (1 - chance)


def agreement(first: Sequence[float | None], second: Sequence[float | None], threshold: float) -> dict:
    """Both measures over the rows both judges scored, with how many rows that was and how often each said
    yes at `threshold`."""
    pairs = [(a, b) for a, b in zip(first, second) if a is not None and b is not None]
    a = [pair[0] for pair in pairs]
    b = [pair[1] for pair in pairs]
    yes_a, yes_b = [value >= threshold for value in a], [value >= threshold for value in b]
    return {"rows": len(pairs), "spearman": spearman(a, b), "kappa": cohen_kappa(yes_a, yes_b),
            "threshold": threshold, "yes_first": int(sum(yes_a)), "yes_second": int(sum(yes_b)),
            "both_yes": int(sum(x and y for x, y in zip(yes_a, yes_b)))}
