"""Ensembles: models that share a tokenizer decoding as one, each step's distribution the mean of
theirs (fairseq's ensembling; a weighted mean with `weights`). The models may differ in size and
depth; every decoding strategy runs an ensemble through the model protocol (encode, init_cache,
decode_step), on a cache that holds each model's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
from torch import Tensor, nn

from polyseq.model.cache import DecoderCache
from polyseq.model.checkpoint import CheckpointError
from polyseq.model.transformer import Seq2Seq


@dataclass
class EnsembleCache:
    """Each model's DecoderCache, kept in step: every row holds as many tokens in each."""

    caches: list[DecoderCache]

    @property
    def lengths(self) -> Tensor:
        return self.caches[0].lengths

    def truncate(self, length: int | Tensor) -> None:
        for cache in self.caches:
            cache.truncate(length)

    def reorder(self, index: Tensor) -> None:
        for cache in self.caches:
            cache.reorder(index)


class Ensemble(nn.Module):
    """`models` (Seq2Seq of one vocabulary, same special ids and S2A setting) as one model whose
    logits are the log of the (weighted) mean of their probabilities."""

    def __init__(self, models: Sequence[Seq2Seq], weights: Sequence[float] | None = None):
        super().__init__()
        if not models:
            raise CheckpointError("an ensemble needs at least one model")
        first = models[0].config
        for index, model in enumerate(models[1:], start=2):
            differ = [name for name in ("vocab_size", "pad_id", "actions", "skip_id")
                      if getattr(model.config, name) != getattr(first, name)]
            if differ:
                raise CheckpointError(f"model {index} of the ensemble differs from the first in "
                                      f"{', '.join(differ)}: ensembled models need one vocabulary")
        weights = [1.0] * len(models) if weights is None else list(weights)
        if len(weights) != len(models) or not all(w > 0 and math.isfinite(w) for w in weights):
            raise CheckpointError(f"an ensemble of {len(models)} models needs as many positive weights, "
                                  f"got {weights}")
        self.registered = nn.ModuleList(models)  # for parameters(), eval(), to() and deepcopy
        self.log_weights = [math.log(w / sum(weights)) for w in weights]
        # positions: the fewest any member reads
        self.config = replace(first, max_positions=min(m.config.max_positions for m in models))

    @property
    def members(self) -> list[Seq2Seq]:
        return cast(list[Seq2Seq], list(self.registered))

    def encode(self, src: Tensor) -> list[Any]:
        return [member.encode(src) for member in self.members]

    def init_cache(self, memory: list[Any], capacity: int = 64) -> EnsembleCache:
        return EnsembleCache([member.init_cache(states, capacity=capacity)
                              for member, states in zip(self.members, memory, strict=True)])

    def decode_step(self, tokens: Tensor, memory: list[Any], cache: EnsembleCache | None = None) -> Tensor:
        """Log mean probabilities (B, k, V) for k new tokens (B, k), as decode_step's logits."""
        caches: list[DecoderCache | None] = [None] * len(self.members)
        if cache is not None:
            caches = list(cache.caches)
        return self._mean([member.decode_step(tokens, states, member_cache) for member, states, member_cache
                           in zip(self.members, memory, caches, strict=True)])

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced log mean probabilities (B, T, V), for scoring."""
        return self._mean([member(src, tgt_in) for member in self.members])

    def _mean(self, logits: list[Tensor]) -> Tensor:
        log_probs = torch.stack([x.float().log_softmax(dim=-1) for x in logits])  # (M, B, k, V)
        weights = torch.tensor(self.log_weights, device=log_probs.device)[:, None, None, None]
        return torch.logsumexp(log_probs + weights, dim=0)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
