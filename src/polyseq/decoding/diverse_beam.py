"""Diverse beam search (Vijayakumar et al. 2016): the beam split into G groups, each penalised
by λ for tokens that earlier groups chose at the same step; n-best across all groups.

With G = 1 it is plain beam search, exactly: both run the same grouped search. With λ = 0 it is
G independent beams of width W, which mostly find the same outputs; the n-best list holds each
output once (its best copy), so it may be shorter than n_best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from polyseq.config import ConfigError
from polyseq.decoding.beam import BeamConfig, grouped_beam_search
from polyseq.decoding.core import DecodeInput, DecodeResult, LengthLimit, StrategySpec
from polyseq.decoding.processors import Processing


@dataclass(frozen=True)
class DiverseBeamConfig:
    beam_size: int = 6
    groups: int = 3
    diversity: float = 0.5  # λ: penalty per earlier-group choice of the same token
    n_best: int = 3
    length_penalty: float = 1.0
    max_length: LengthLimit = field(default_factory=LengthLimit)
    processing: Processing = field(default_factory=Processing)

    def __post_init__(self) -> None:
        if self.groups < 1 or self.beam_size % self.groups:
            raise ConfigError(f"beam_size {self.beam_size} must be a positive multiple of groups "
                              f"{self.groups}")
        if not 0 <= self.diversity < math.inf:  # NaN too: it would pass `< 0`
            raise ConfigError(f"diversity must be a finite number >= 0, got {self.diversity}")
        self.beam()  # beam_size, n_best and length_penalty are checked as beam search's, now

    def beam(self) -> BeamConfig:
        return BeamConfig(beam_size=self.beam_size, n_best=self.n_best,
                          length_penalty=self.length_penalty, max_length=self.max_length,
                          processing=self.processing)


def diverse_beam_search(model: Any, inputs: DecodeInput, config: DiverseBeamConfig) -> DecodeResult:
    return grouped_beam_search(model, inputs, config.beam(), groups=config.groups,
                               diversity=config.diversity)


STRATEGY = StrategySpec("diverse-beam", diverse_beam_search, DiverseBeamConfig)
