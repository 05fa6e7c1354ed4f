"""N-best reranking: reorder the candidates of beam, diverse beam or sampling with a scorer.

A scorer maps (source texts, candidate lists) to one score per candidate, higher is better:
- `LengthNormalised(alpha)`: the model's log-probability divided by length ** alpha;
- `ReverseModel(translator, src_lang, weight)`: adds weight × log P(source | candidate) from a
  model of the opposite direction (noisy-channel reranking), normalised by length;
- or any callable with the same signature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from polyseq.config import ConfigError, did_you_mean


@dataclass(frozen=True)
class Candidate:
    text: str
    tokens: tuple[int, ...]
    log_prob: float


Scorer = Callable[[Sequence[str], Sequence[Sequence[Candidate]]], list[list[float]]]


@dataclass(frozen=True)
class LengthNormalised:
    alpha: float = 1.0

    def __call__(
        self, sources: Sequence[str], candidates: Sequence[Sequence[Candidate]]
    ) -> list[list[float]]:
        return [[c.log_prob / max(len(c.tokens) + 1, 1) ** self.alpha for c in group]
                for group in candidates]


@dataclass(frozen=True)
class ReverseModel:
    """Noisy-channel reranking with a reverse-direction polyseq Translator."""

    translator: Any  # a Translator that translates candidate language -> source language
    src_lang: str  # the language of the sources (the reverse model's target)
    weight: float = 1.0

    def __call__(
        self, sources: Sequence[str], candidates: Sequence[Sequence[Candidate]]
    ) -> list[list[float]]:
        pairs = zip(sources, candidates, strict=True)
        flat_sources = [source for source, group in pairs for _ in group]
        flat = [candidate for group in candidates for candidate in group]
        reverse = self.translator.log_probs([c.text for c in flat], flat_sources, self.src_lang)
        combined = iter(
            (c.log_prob + self.weight * r) / (len(c.tokens) + 1)
            for c, r in zip(flat, reverse, strict=True)
        )
        return [[next(combined) for _ in group] for group in candidates]


def rerank(sources: Sequence[str], candidates: Sequence[Sequence[Candidate]],
           scorer: Scorer) -> list[list[Candidate]]:
    """Each source's candidates, best first by `scorer` (ties keep the original order)."""
    scores = scorer(sources, candidates)
    if len(scores) != len(candidates) or any(
        len(s) != len(c) for s, c in zip(scores, candidates, strict=True)
    ):
        raise ValueError("a reranking scorer must return one score per candidate")
    return [
        [c for _, _, c in sorted(zip(s, range(len(c)), c, strict=True), key=lambda t: (-t[0], t[1]))]
        for s, c in zip(scores, candidates, strict=True)
    ]


def make_scorer(name: str, **options: Any) -> Scorer:
    """A scorer by name, for the CLI: `normalised` or `reverse` (needs translator and src_lang)."""
    if name == "normalised":
        return LengthNormalised(**options)
    if name == "reverse":
        return ReverseModel(**options)
    raise ConfigError(f"unknown reranker {name!r}{did_you_mean(name, ['normalised', 'reverse'])}")
