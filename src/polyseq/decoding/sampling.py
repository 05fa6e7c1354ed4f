"""Sampling: temperature, top-k and top-p, several samples per input, reproducible with a seed.

Randomness comes only from an explicit torch.Generator seeded from the config, so the same seed,
inputs and model give the same samples, whatever else the process does with torch's global RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from polyseq.config import ConfigError
from polyseq.decoding.core import DecodeInput, DecodeResult, LengthLimit, StrategySpec
from polyseq.decoding.greedy import stepwise_decode
from polyseq.decoding.processors import Processing, temperature, top_k, top_p


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0
    num_samples: int = 1
    seed: int = 0
    max_length: LengthLimit = field(default_factory=LengthLimit)
    processing: Processing = field(default_factory=Processing)

    def __post_init__(self) -> None:
        if not 0 < self.temperature < math.inf:  # NaN too: it would pass `<= 0`
            raise ConfigError(f"temperature must be a finite number > 0, got {self.temperature}")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("top_k must be >= 0 and top_p in (0, 1]")
        if self.num_samples < 1:
            raise ConfigError("num_samples must be >= 1")


def sample(model: Any, inputs: DecodeInput, config: SamplingConfig) -> DecodeResult:
    """`num_samples` samples per input, most likely first."""
    generator = torch.Generator(device=inputs.src.device).manual_seed(config.seed)

    def choose(logits: Tensor) -> Tensor:
        shaped = top_p(top_k(temperature(logits, config.temperature), config.top_k), config.top_p)
        return torch.multinomial(shaped.softmax(dim=-1), 1, generator=generator)[:, 0]

    return stepwise_decode(model, inputs, config.max_length, config.processing, choose,
                           copies=config.num_samples)


STRATEGY = StrategySpec("sampling", sample, SamplingConfig)
