"""The learning-rate schedule of both stages: linear warm-up, then linear decay (paper, section 2.3).

The rate is a pure function of the step, so a resumed run needs nothing but the step to continue the schedule.
"""

from __future__ import annotations


def learning_rate(step: int, peak: float, warmup_steps: int, decay_steps: int, min_lr: float = 0.0) -> float:
    """The rate for optimizer step `step` (0-based).

    Warm-up climbs from peak/warmup_steps at step 0 to `peak` at step warmup_steps - 1; from step warmup_steps the
    rate falls linearly from `peak` to `min_lr`, reached at step `decay_steps` and held after it.
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if step >= decay_steps:
        return min_lr
    progress = (step - warmup_steps) / (decay_steps - warmup_steps)
    return min_lr + (peak - min_lr) * (1.0 - progress)
