"""Beam search, batched, on the cache, with a length penalty and n-best lists.

Each source keeps `beam_size` rows in the cache. Every step takes the 2K best extensions per source
(so that K live beams remain even when some candidates end with EOS), finalizes EOS candidates that
rank inside the top K, and stops a source once K hypotheses are final (the fairseq criterion).
Scores are normalised as log_prob / length ** length_penalty, the length counting the EOS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from polyseq.config import ConfigError
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
class BeamConfig:
    beam_size: int = 5
    n_best: int = 1
    length_penalty: float = 1.0
    max_length: LengthLimit = field(default_factory=LengthLimit)

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError("beam_size must be >= 1")
        if not 1 <= self.n_best <= self.beam_size:
            raise ConfigError(f"n_best must be between 1 and beam_size ({self.beam_size})")


def _normalised(log_prob: float, length: int, penalty: float) -> float:
    return log_prob / max(length, 1) ** penalty


@dataclass
class _Group:
    """One source sentence's search state."""

    sentence: int
    limit: int
    final: list[Hypothesis] = field(default_factory=list)


@register_strategy("beam", BeamConfig)
def beam_search(model: Any, inputs: DecodeInput, config: BeamConfig) -> DecodeResult:
    batch, beam, prefix_length = inputs.batch_size, config.beam_size, inputs.prefix.shape[1]
    limits = config.max_length.for_input(inputs, max_positions(model) - prefix_length).tolist()
    memory = model.encode(inputs.src)
    cache = model.init_cache(memory, capacity=prefix_length + max(limits) + 1)
    cache.reorder(torch.arange(batch, device=inputs.src.device).repeat_interleave(beam))
    groups = [_Group(sentence, limits[sentence]) for sentence in range(batch)]
    alive = list(groups)
    histories: list[list[int]] = [[] for _ in range(batch * beam)]
    scores = torch.full((batch, beam), -math.inf)
    scores[:, 0] = 0.0  # all beams start identical: keep one so the first step has no duplicates
    step_input = inputs.prefix.repeat_interleave(beam, dim=0)  # (B*K, P)
    stats = DecodeStats()
    while alive:
        logits = model.decode_step(step_input, memory, cache)[:, -1]  # (A*K, V)
        stats.forward_passes += 1
        vocab = logits.shape[-1]
        candidates = scores.view(-1, 1) + logits.float().log_softmax(dim=-1)  # (A*K, V)
        top_scores, top_index = candidates.view(len(alive), -1).topk(min(2 * beam, beam * vocab))
        rows, tokens, new_scores, still_alive = [], [], [], []
        for group_index, group in enumerate(alive):
            chosen = _advance_group(
                group, group_index, histories, top_scores[group_index].tolist(),
                top_index[group_index].tolist(), vocab, inputs.eos_id, beam, config.length_penalty,
            )
            if chosen:
                still_alive.append(group)
                for row, token, score in chosen:
                    rows.append(row)
                    tokens.append(token)
                    new_scores.append(score)
        if not still_alive:
            break
        index = torch.tensor(rows, dtype=torch.long, device=inputs.src.device)
        cache.reorder(index)
        histories = [histories[row] + [token] for row, token in zip(rows, tokens, strict=True)]
        scores = torch.tensor(new_scores).view(len(still_alive), beam)
        step_input = torch.tensor(tokens, dtype=torch.long, device=inputs.src.device)[:, None]
        alive = still_alive
    hypotheses = [sorted(g.final, key=lambda h: -h.score)[: config.n_best] for g in groups]
    stats.generated_tokens = sum(len(candidates[0].tokens) for candidates in hypotheses)
    return DecodeResult(hypotheses, stats)


def _advance_group(
    group: _Group, group_index: int, histories: list[list[int]], top_scores: list[float],
    top_index: list[int], vocab: int, eos_id: int, beam: int, penalty: float,
) -> list[tuple[int, int, float]]:
    """Finalize this step's ending candidates; return the K (row, token, score) that go on,
    or [] when the source is done."""
    chosen: list[tuple[int, int, float]] = []
    for rank, (score, flat) in enumerate(zip(top_scores, top_index, strict=True)):
        if score == -math.inf:
            break
        row = group_index * beam + flat // vocab
        token, history = flat % vocab, histories[group_index * beam + flat // vocab]
        if token == eos_id:
            if rank < beam:
                normalised = _normalised(score, len(history) + 1, penalty)
                group.final.append(Hypothesis(tuple(history), normalised, score, True))
            continue
        if len(history) + 1 >= group.limit:  # the length limit ends it without EOS
            if len(chosen) + len(group.final) < beam:
                tokens = (*history, token)
                normalised = _normalised(score, len(tokens), penalty)
                group.final.append(Hypothesis(tokens, normalised, score, False))
            continue
        chosen.append((row, token, score))
        if len(chosen) == beam:
            break
    if len(group.final) >= beam or not chosen:
        return []
    while len(chosen) < beam:  # too few live candidates (tiny vocabulary): pad with dead beams
        chosen.append((chosen[0][0], chosen[0][1], -math.inf))
    return chosen
