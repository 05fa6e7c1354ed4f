"""Learning-rate schedules as pure functions of the step (so resuming needs no scheduler state)."""

from __future__ import annotations

import math


def inverse_sqrt(step: int, *, peak_lr: float, warmup_steps: int) -> float:
    """Linear warm-up to `peak_lr`, then decay with 1/sqrt(step) (Vaswani et al., fairseq)."""
    step = max(step, 1)
    if warmup_steps == 0:
        return peak_lr
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    return peak_lr * math.sqrt(warmup_steps / step)
