"""Beam search, batched, on the cache, with a length penalty, n-best lists and logits processors.

Each source keeps `beam_size` rows in the cache, split into G groups of W = beam_size / G beams
(G = 1 for plain beam search; diverse beam search uses G > 1, see diverse_beam.py). Every step each
group takes its 2W best extensions (so W live beams remain even when some end with EOS), finalizes
EOS candidates that rank inside the top W, and stops once W hypotheses are final (the fairseq
criterion; unlike fairseq, a step's EOS candidates are all kept, even past W, so the n-best list
may hold a better hypothesis than fairseq's). Scores are normalised as
log_prob / length ** length_penalty, the length counting EOS.
Groups of one source are chosen in order, each penalised by λ for every token that earlier groups
chose at this step (Hamming diversity, Vijayakumar et al. 2016); selection uses the penalised
scores, hypotheses keep their true log-probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from polyseq.config import ConfigError
from polyseq.decoding.core import (
    DecodeInput,
    DecodeResult,
    DecodeStats,
    Hypothesis,
    LengthLimit,
    StrategySpec,
    max_positions,
    model_runner,
    without,
)
from polyseq.decoding.processors import Processing


@dataclass(frozen=True)
class BeamConfig:
    beam_size: int = 5
    n_best: int = 1
    length_penalty: float = 1.0
    max_length: LengthLimit = field(default_factory=LengthLimit)
    processing: Processing = field(default_factory=Processing)

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError("beam_size must be >= 1")
        if not 1 <= self.n_best <= self.beam_size:
            raise ConfigError(f"n_best must be between 1 and beam_size ({self.beam_size})")
        if not math.isfinite(self.length_penalty):  # NaN scores would rank hypotheses at random
            raise ConfigError(f"length_penalty must be a finite number, got {self.length_penalty}")


def _normalised(log_prob: float, length: int, penalty: float) -> float:
    return log_prob / max(length, 1) ** penalty


@dataclass
class _Group:
    """One group of beams of one source sentence."""

    sentence: int
    group: int
    limit: int
    final: list[Hypothesis] = field(default_factory=list)


def beam_search(model: Any, inputs: DecodeInput, config: BeamConfig) -> DecodeResult:
    return grouped_beam_search(model, inputs, config, groups=1, diversity=0.0)


def grouped_beam_search(model: Any, inputs: DecodeInput, config: BeamConfig, groups: int,
                        diversity: float) -> DecodeResult:
    batch, prefix_length = inputs.batch_size, inputs.prefix.shape[1]
    if config.beam_size % groups:
        raise ConfigError(f"beam_size {config.beam_size} must be a multiple of groups {groups}")
    width = config.beam_size // groups
    limits = config.max_length.for_input(inputs, max_positions(model) - prefix_length).tolist()
    run = model_runner(model, inputs.banned_id)
    memory = run.encode(inputs.src)
    # the self-attention buffers start small and double as the beams lengthen (see
    # DecoderCache.ensure_capacity): a reorder of the module path's cache copies them whole
    cache = run.init_cache(memory, capacity=prefix_length + 1)
    device = inputs.src.device
    cache.reorder(torch.arange(batch, device=device).repeat_interleave(config.beam_size))
    alive = [_Group(s, g, limits[s]) for s in range(batch) for g in range(groups)]
    units = list(alive)
    histories: list[list[int]] = [[] for _ in range(batch * config.beam_size)]
    scores = torch.full((len(alive), width), -math.inf, device=device)
    scores[:, 0] = 0.0  # the beams of a group start identical: keep one so there are no duplicates
    step_input = inputs.prefix.repeat_interleave(config.beam_size, dim=0)  # (B*K, P)
    user_prefixes = inputs.user_prefixes()  # the processors read each beam's output after its prefix
    stats = DecodeStats()
    while alive:
        states, project = run.decode(step_input, memory, cache)
        stats.forward_passes += 1
        if config.processing.active or diversity:  # over whole distributions
            seen = [user_prefixes[alive[row // width].sentence] + history  # row: group * W + beam
                    for row, history in enumerate(histories)] if config.processing.active else histories
            logits = config.processing(project(states[:, -1]).float(), seen, inputs.eos_id)
            log_probs = without(logits.log_softmax(dim=-1), inputs.banned_id)  # (A*W, V)
            candidates = (scores.view(-1, 1) + log_probs).view(len(alive), -1)  # (A, W*V)
            top_scores, top_index = _select(candidates, alive, width, log_probs.shape[-1], diversity)
            top_beams, top_tokens = top_index // log_probs.shape[-1], top_index % log_probs.shape[-1]
        else:  # a group's 2W best candidates are among its beams' 2W best tokens each
            ids, log_probs = run.top(states[:, -1], project, 2 * width)  # (A*W, 2W) each
            candidates = (scores.view(-1, 1) + log_probs).view(len(alive), -1)  # (A, W*2W)
            top_scores, picked = candidates.topk(min(2 * width, candidates.shape[1]), dim=1)
            top_beams, top_tokens = picked // ids.shape[1], ids.view(len(alive), -1).gather(1, picked)
        rows, tokens, new_scores, still_alive = [], [], [], []
        # one read each, not one per group
        group_scores, group_beams, group_tokens = top_scores.tolist(), top_beams.tolist(), top_tokens.tolist()
        for index, group in enumerate(alive):
            chosen = _advance_group(group, index, histories, group_scores[index], group_beams[index],
                                    group_tokens[index], inputs.eos_id, width, config.length_penalty)
            if chosen:
                still_alive.append(group)
                for row, token, score in chosen:
                    rows.append(row)
                    tokens.append(token)
                    new_scores.append(score)
        if not still_alive:
            break
        index_tensor = torch.tensor(rows, dtype=torch.long, device=device)
        cache.reorder(index_tensor)
        histories = [histories[row] + [token] for row, token in zip(rows, tokens, strict=True)]
        scores = torch.tensor(new_scores, device=device).view(len(still_alive), width)
        step_input = torch.tensor(tokens, dtype=torch.long, device=device)[:, None]
        alive = still_alive
    hypotheses: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for unit in units:
        hypotheses[unit.sentence].extend(unit.final)
    hypotheses = [_distinct(sorted(h, key=lambda h: -h.score))[: config.n_best] for h in hypotheses]
    stats.generated_tokens = sum(len(candidates[0].tokens) for candidates in hypotheses)
    return DecodeResult(hypotheses, stats)


def _distinct(ranked: list[Hypothesis]) -> list[Hypothesis]:
    """The best copy of each output: groups of a diverse beam can finish the same one."""
    best: dict[tuple[int, ...], Hypothesis] = {}
    for hypothesis in ranked:
        best.setdefault(hypothesis.tokens, hypothesis)
    return list(best.values())


def _select(candidates: Tensor, alive: list[_Group], width: int, vocab: int,
            diversity: float) -> tuple[Tensor, Tensor]:
    """The 2W best (true score, flat index) per group; with diversity, chosen group by group
    under the Hamming penalty from the earlier groups of the same sentence."""
    count = min(2 * width, candidates.shape[1])
    if diversity == 0.0 or all(group.group == 0 for group in alive):
        return candidates.topk(count, dim=1)
    device = candidates.device
    top_scores = torch.empty(len(alive), count, device=device)
    top_index = torch.empty(len(alive), count, dtype=torch.long, device=device)
    used: dict[int, Tensor] = {}  # sentence -> (V,) how often earlier groups chose each token
    for order in sorted(range(len(alive)), key=lambda i: (alive[i].group, alive[i].sentence)):
        group = alive[order]
        penalty = used.get(group.sentence, torch.zeros(vocab, device=device))
        penalised = candidates[order].view(width, vocab) - diversity * penalty
        _, index = penalised.view(-1).topk(count)
        top_index[order], top_scores[order] = index, candidates[order, index]
        live = [i for i in index.tolist() if candidates[order, i] > -math.inf][:width]
        used[group.sentence] = penalty + torch.bincount(
            torch.tensor([i % vocab for i in live], dtype=torch.long, device=device), minlength=vocab).float()
    return top_scores, top_index


def _advance_group(
    group: _Group, group_index: int, histories: list[list[int]], top_scores: list[float],
    top_beams: list[int], top_tokens: list[int], eos_id: int, width: int, penalty: float,
) -> list[tuple[int, int, float]]:
    """Finalize this step's ending candidates (best first: their scores, the beams they extend
    and their tokens); return the W (row, token, score) that go on, or [] when the group is done."""
    chosen: list[tuple[int, int, float]] = []
    for rank, (score, beam, token) in enumerate(zip(top_scores, top_beams, top_tokens, strict=True)):
        if score == -math.inf:
            continue
        row = group_index * width + beam
        history = histories[row]
        if token == eos_id:
            if rank < width:
                normalised = _normalised(score, len(history) + 1, penalty)
                group.final.append(Hypothesis(tuple(history), normalised, score, True))
            continue
        if len(history) + 1 >= group.limit:  # the length limit ends it without EOS
            if len(chosen) + len(group.final) < width:
                tokens = (*history, token)
                normalised = _normalised(score, len(tokens), penalty)
                group.final.append(Hypothesis(tokens, normalised, score, False))
            continue
        chosen.append((row, token, score))
        if len(chosen) == width:
            break
    if len(group.final) >= width or not chosen:
        return []
    while len(chosen) < width:  # too few live candidates (tiny vocabulary): pad with dead beams
        chosen.append((chosen[0][0], chosen[0][1], -math.inf))
    return chosen


STRATEGY = StrategySpec("beam", beam_search, BeamConfig)
