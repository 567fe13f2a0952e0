"""Bootstrap intervals over problems: of one arm's mean score, and of the difference between two arms.

    indices = resample_indices(problems=164, resamples=2000, seed=0)   # one matrix per benchmark
    mean_interval(per_problem_pass_at_1, indices, 0.95)                # Interval(mean, low, high)
    paired_difference(first, second, indices, 0.95)                    # second - first, the same problems drawn

A benchmark is a sample of problems, and most of the noise in a score of 164 problems is which problems
were drawn. Each resample draws the benchmark's problems with replacement (`indices`, one row per resample);
the interval is the percentile interval of the resampled means. A difference is paired: both arms are scored
on the same resampled problems, so the problems both find easy or hard cancel and the interval is much
narrower than the two arms' intervals side by side. Two arms with equal per-problem values have the difference
[0, 0] exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """The interval lies on one side of 0: the difference is larger than its interval."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def resample_indices(problems: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, problems) indices of problems drawn with replacement, the same for a given seed."""
    if problems < 1 or resamples < 1:
        raise ValueError(f"resample_indices needs problems and resamples >= 1, got {problems} and {resamples}")
    return np.random.default_rng(seed).integers(0, problems, size=(resamples, problems))


def _interval(values: np.ndarray, indices: np.ndarray, confidence: float) -> Interval:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) != indices.shape[1]:
        raise ValueError(f"{values.shape} values for resamples of {indices.shape[1]} problems")
    means = values[indices].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(values.mean()), float(low), float(high))


def mean_interval(values: np.ndarray, indices: np.ndarray, confidence: float = 0.95) -> Interval:
    """The mean of one value per problem, with the bootstrap interval of that mean."""
    return _interval(values, indices, confidence)


def paired_difference(first: np.ndarray, second: np.ndarray, indices: np.ndarray,
                      confidence: float = 0.95) -> Interval:
    """The mean of `second - first` over problems (in the same problem order), with its paired bootstrap interval."""
    return _interval(np.asarray(second, dtype=np.float64) - np.asarray(first, dtype=np.float64), indices, confidence)


def seed_spread(per_seed: list[float]) -> dict[str, float | int]:
    """The mean and sample standard deviation of one score measured on several seeds (std 0 for one seed)."""
    values = np.asarray(per_seed, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"seeds": len(values), "mean": float(values.mean()), "std": std}
