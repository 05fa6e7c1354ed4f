"""Greedy decoding: the most likely next token at every step, batched, on the cache.

`stepwise_decode` is the one-token-per-step loop that greedy and sampling share; they differ only
in how a token is chosen from the processed logits. Finished rows leave the batch
(`cache.reorder`), so a long sentence does not make the short ones in its batch pay for every
step. With a cache, the model reads everything per row from the cache, so the encoder memory is
not reordered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from polyseq.decoding.core import (
    DecodeInput,
    DecodeResult,
    DecodeStats,
    Hypothesis,
    LengthLimit,
    StrategySpec,
    log_probs_of,
    max_positions,
    model_runner,
    without,
)
from polyseq.decoding.processors import Processing

Chooser = Callable[[Tensor], Tensor]  # processed logits (A, V) -> chosen tokens (A,)


@dataclass(frozen=True)
class GreedyConfig:
    max_length: LengthLimit = field(default_factory=LengthLimit)
    processing: Processing = field(default_factory=Processing)


def greedy(model: Any, inputs: DecodeInput, config: GreedyConfig) -> DecodeResult:
    return stepwise_decode(model, inputs, config.max_length, config.processing, choose=None)


def stepwise_decode(model: Any, inputs: DecodeInput, max_length: LengthLimit,
                    processing: Processing, choose: Chooser | None, copies: int = 1) -> DecodeResult:
    """Decode `copies` outputs per input one token at a time; each input's outputs come back
    most likely first. `log_prob` is under the processed distribution (before any sampling
    temperature or truncation, which `choose` applies itself). `choose` None is greedy's choice,
    the runner's own (fused into the output layer by the native passes) where nothing processes
    the logits."""
    batch, prefix_length = inputs.batch_size, inputs.prefix.shape[1]
    limits = max_length.for_input(inputs, max_positions(model) - prefix_length)
    limits_per_row = limits.repeat_interleave(copies).tolist()
    run = model_runner(model, inputs.banned_id)
    memory = run.encode(inputs.src)
    cache = run.init_cache(memory, capacity=prefix_length + max(limits_per_row) + 1)
    if copies > 1:
        cache.reorder(torch.arange(batch, device=inputs.src.device).repeat_interleave(copies))
    rows = batch * copies
    tokens: list[list[int]] = [[] for _ in range(rows)]
    log_probs, finished = [0.0] * rows, [False] * rows
    alive = list(range(rows))  # the output row of each cache row
    step_input = inputs.prefix.repeat_interleave(copies, dim=0)  # (B*copies, P)
    user_prefixes = inputs.user_prefixes()  # the processors read each row's output after its prefix
    stats = DecodeStats()
    while alive:
        states, project = run.decode(step_input, memory, cache)
        stats.forward_passes += 1
        if choose is None and not processing.active:
            chosen_tokens, chosen_log_probs = run.choose(states[:, -1], project)
        else:
            seen = [user_prefixes[row // copies] + tokens[row] for row in alive]
            logits = processing(project(states[:, -1]).float(), seen, inputs.eos_id)
            valid = without(logits, inputs.banned_id)  # log_prob stays under `logits`, as run.choose's
            chosen = valid.argmax(dim=-1) if choose is None else choose(valid)  # (A,)
            chosen_tokens, chosen_log_probs = chosen.tolist(), log_probs_of(logits, chosen)
        keep = []
        for position, (row, token) in enumerate(zip(alive, chosen_tokens, strict=True)):
            log_probs[row] += chosen_log_probs[position]
            if token == inputs.eos_id:
                finished[row] = True
                continue
            tokens[row].append(token)
            if len(tokens[row]) < limits_per_row[row]:
                keep.append(position)
        if len(keep) < len(alive):
            cache.reorder(torch.tensor(keep, dtype=torch.long, device=inputs.src.device))
            alive = [alive[position] for position in keep]
        step_input = torch.tensor([[chosen_tokens[position]] for position in keep], dtype=torch.long,
                                  device=inputs.src.device)  # (A, 1)
    hypotheses = []
    for sentence in range(batch):
        outputs = [Hypothesis(tuple(tokens[r]), log_probs[r], log_probs[r], finished[r])
                   for r in range(sentence * copies, (sentence + 1) * copies)]
        hypotheses.append(sorted(outputs, key=lambda h: -h.score))
    stats.generated_tokens = sum(len(h[0].tokens) for h in hypotheses)
    return DecodeResult(hypotheses, stats)


STRATEGY = StrategySpec("greedy", greedy, GreedyConfig)
