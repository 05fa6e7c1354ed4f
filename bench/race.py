"""Training speed races: models taking turns on the same batches, so that a slow spell of the
shared machine slows each of them rather than one whole measurement (bench/multi30k.py,
bench/finetune.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from polyseq.data.batching import Batch, BatchStream

Logits = Callable[[nn.Module, Batch], torch.Tensor]


def model_logits(model: nn.Module, batch: Batch) -> torch.Tensor:
    return model(batch.src, batch.tgt_in)


class Racer:
    """A model in training (forward, cross-entropy, backward, AdamW step) on its own copy of the
    batch stream; `logits` runs its forward pass."""

    def __init__(self, model: nn.Module, stream: BatchStream, lr: float, logits: Logits = model_logits,
                 smoothing: float = 0.0):
        self.model, self.stream, self.logits, self.smoothing = model.train(), stream, logits, smoothing
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def steps(self, count: int) -> tuple[int, float]:
        """`count` training steps on the stream's next batches: target tokens and seconds."""
        tokens, started = 0, time.perf_counter()
        for _ in range(count):
            batch = next(self.stream)
            logits = self.logits(self.model, batch).float()  # (B, T, V)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(),
                                               ignore_index=batch.pad_id, label_smoothing=self.smoothing)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            tokens += batch.tgt_tokens
        return tokens, time.perf_counter() - started


def race(racers: dict[str, Racer], seconds: float, rounds: int, warmup: int) -> dict[str, Any]:
    """About `seconds` of training for each racer, in `rounds` rounds of equal steps, each racer
    going first every other round: target tokens per second for each, and per round the ratio of
    the second racer's time to the first's (above 1: the first is faster)."""
    for racer in racers.values():
        racer.steps(warmup)  # the allocator, lazy initialization
    paces = [racer.steps(warmup)[1] / warmup for racer in racers.values()]  # all, so the streams keep step
    steps = max(1, round(seconds / rounds / paces[0]))
    totals = {name: [0, 0.0] for name in racers}
    first, second = list(racers)[:2]
    ratios = []
    for index in range(rounds):
        spent = {}
        for name in list(racers)[:: 1 if index % 2 == 0 else -1]:
            tokens, spent[name] = racers[name].steps(steps)
            totals[name][0] += tokens
            totals[name][1] += spent[name]
        ratios.append(round(spent[second] / spent[first], 3))
    speeds = {f"{name}_tgt_tokens_per_s": round(tokens / taken, 1)
              for name, (tokens, taken) in totals.items()}
    return {**speeds, "rounds": rounds, "steps_per_round": steps, "ratio_per_round": ratios}
