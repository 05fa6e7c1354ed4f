"""Greedy decoding: the most likely next token at every step, batched, on the cache.

Finished rows leave the batch (`cache.reorder`), so a long sentence does not make the short ones in
its batch pay for every step. With a cache, the model reads everything per row from the cache, so
the encoder memory is not reordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from polyseq.decoding.core import (
    DecodeInput,
    DecodeResult,
    DecodeStats,
    Hypothesis,
    LengthLimit,
    max_positions,
    register_strategy,
)


@dataclass(frozen=True)
class GreedyConfig:
    max_length: LengthLimit = field(default_factory=LengthLimit)


@register_strategy("greedy", GreedyConfig)
def greedy(model: Any, inputs: DecodeInput, config: GreedyConfig) -> DecodeResult:
    batch, prefix_length = inputs.batch_size, inputs.prefix.shape[1]
    limits = config.max_length.for_input(inputs, max_positions(model) - prefix_length)  # (B,)
    memory = model.encode(inputs.src)
    cache = model.init_cache(memory, capacity=prefix_length + int(limits.max()) + 1)
    stats = DecodeStats()
    tokens: list[list[int]] = [[] for _ in range(batch)]
    log_probs = [0.0] * batch
    finished = [False] * batch
    alive = list(range(batch))  # original row of each cache row
    step_input = inputs.prefix
    while alive:
        logits = model.decode_step(step_input, memory, cache)[:, -1]  # (A, V)
        stats.forward_passes += 1
        step_log_probs = logits.float().log_softmax(dim=-1)
        best = step_log_probs.argmax(dim=-1)  # (A,)
        best_log_probs = step_log_probs.gather(1, best[:, None])[:, 0].tolist()
        keep = []
        for position, (row, token) in enumerate(zip(alive, best.tolist(), strict=True)):
            log_probs[row] += best_log_probs[position]
            if token == inputs.eos_id:
                finished[row] = True
                continue
            tokens[row].append(token)
            if len(tokens[row]) < int(limits[row]):
                keep.append(position)
        if len(keep) < len(alive):
            index = torch.tensor(keep, dtype=torch.long, device=best.device)
            cache.reorder(index)
            best = best.index_select(0, index)
            alive = [alive[position] for position in keep]
        step_input = best[:, None]  # (A, 1)
    stats.generated_tokens = sum(len(t) for t in tokens)
    hypotheses = [
        [Hypothesis(tuple(tokens[row]), log_probs[row], log_probs[row], finished[row])]
        for row in range(batch)
    ]
    return DecodeResult(hypotheses, stats)
