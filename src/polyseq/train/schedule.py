"""Learning-rate schedules as pure functions of the step (so resuming needs no scheduler state).

Each warms up linearly to the peak over `warmup_steps`, then: `inverse_sqrt` decays with
1/sqrt(step) (Vaswani et al., fairseq's default for translation); `linear` and `cosine` decay to 0
at `total_steps` (transformers' schedules for fine-tuning; the horizon is train.steps, so a run
resumed with more steps decays more slowly from there); `constant` stays at the peak.
"""

from __future__ import annotations

import math

from polyseq.config import SCHEDULES


def learning_rate(schedule: str, step: int, *, peak_lr: float, warmup_steps: int, total_steps: int) -> float:
    """The learning rate of (1-based) `step` under `schedule`."""
    step = max(step, 1)
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    if schedule == "inverse_sqrt":
        return inverse_sqrt(step, peak_lr=peak_lr, warmup_steps=warmup_steps)
    if schedule == "constant":
        return peak_lr
    left = max(total_steps - step, 0) / max(total_steps - warmup_steps, 1)  # 1 after warm-up, 0 at the end
    if schedule == "linear":
        return peak_lr * left
    if schedule == "cosine":
        return peak_lr * 0.5 * (1.0 + math.cos(math.pi * (1.0 - left)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; known: {', '.join(SCHEDULES)}")


def inverse_sqrt(step: int, *, peak_lr: float, warmup_steps: int) -> float:
    """Linear warm-up to `peak_lr`, then decay with 1/sqrt(step) (Vaswani et al., fairseq); without
    warm-up, `peak_lr` throughout."""
    step = max(step, 1)
    if warmup_steps == 0:
        return peak_lr
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    return peak_lr * math.sqrt(warmup_steps / step)
