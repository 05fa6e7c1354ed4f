"""What every decoding strategy shares: the model protocol, inputs, results, how a strategy runs
the model, and the shape of a strategy (`StrategySpec`).

A strategy is a function `(model, DecodeInput, config) -> DecodeResult` that talks to the model only
through `encode`, `init_cache` and `decode_step`, so any backend with those gets every strategy.
This module knows no strategy: `polyseq.decoding` lists them and chooses one by name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from polyseq.config import ConfigError
from polyseq.model.native import native_passes


class DecoderCacheLike(Protocol):
    def reorder(self, index: Tensor) -> None: ...
    def truncate(self, length: int | Tensor) -> None: ...


class Seq2SeqModel(Protocol):
    def encode(self, src: Tensor) -> Any: ...
    # capacity: decoder positions to preallocate; the cache must grow past them (beam search starts small)
    def init_cache(self, memory: Any, capacity: int = ...) -> Any: ...
    def decode_step(self, tokens: Tensor, memory: Any, cache: Any = ...) -> Tensor: ...


@dataclass
class DecodeInput:
    src: Tensor  # (B, S) right-padded source ids
    prefix: Tensor  # (B, P) forced start of every output (the target-language tag)
    eos_id: int
    pad_id: int
    # the prefix's last this many tokens are a user's start of the output text (`--prefix`), which
    # the logits processors count as output; the tokens before them (a language tag, the decoder's
    # start) frame the output and are not in it, so the processors leave them out
    user_prefix_length: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.user_prefix_length <= self.prefix.shape[1]:
            raise ConfigError(f"user_prefix_length must be from 0 to the prefix's {self.prefix.shape[1]} "
                              f"tokens, got {self.user_prefix_length}")

    @property
    def batch_size(self) -> int:
        return int(self.src.shape[0])

    def user_prefixes(self) -> list[list[int]]:
        """Each input's user prefix (empty without one): the start of its output, which the
        processors see before the generated tokens."""
        start = self.prefix.shape[1] - self.user_prefix_length
        return self.prefix[:, start:].tolist()

    def source_lengths(self) -> Tensor:
        return (self.src != self.pad_id).sum(dim=1)  # (B,)

    @property
    def banned_id(self) -> int | None:
        """The id no strategy chooses: padding, which no output holds, though label smoothing
        gives it probability (fairseq never selects it either). None where EOS is padding too."""
        return None if self.pad_id == self.eos_id else self.pad_id


@dataclass(frozen=True)
class LengthLimit:
    """Generate at most `a * source_length + b` tokens (at least 1, at most `ceiling`)."""

    a: float = 1.5
    b: int = 10

    def __post_init__(self) -> None:
        # b < 1 would cut every output to the one token the clamp below still allows
        if not (0.0 <= self.a < math.inf and self.b >= 1):
            raise ConfigError(f"max_len_a must be a number >= 0 and max_len_b an integer >= 1 (at most "
                              f"a * source length + b tokens), got {self.a} and {self.b}")

    def for_input(self, inputs: DecodeInput, ceiling: int) -> Tensor:
        limit = (inputs.source_lengths().double() * self.a).floor().long() + self.b
        return limit.clamp(min=1, max=max(1, ceiling))  # (B,)


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]  # generated ids, without the prefix and the final EOS
    score: float  # the strategy's ranking score (beam: length-normalised log-probability)
    log_prob: float  # sum of token log-probabilities, EOS included when it was generated
    finished: bool = True  # False when the length limit stopped it before EOS

    @staticmethod
    def joined(parts: Sequence[Hypothesis]) -> Hypothesis:
        """The hypothesis of a text decoded in pieces: their tokens in order, scores and
        log-probabilities summed, finished when every piece is."""
        return Hypothesis(tuple(token for part in parts for token in part.tokens),
                          sum(part.score for part in parts), sum(part.log_prob for part in parts),
                          all(part.finished for part in parts))


@dataclass
class DecodeStats:
    forward_passes: int = 0  # decode_step calls
    generated_tokens: int = 0  # tokens in the returned best hypotheses
    draft_tokens: int = 0  # tokens proposed by a draft (accelerated strategies)
    accepted_draft_tokens: int = 0

    def add(self, other: DecodeStats) -> None:
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass
class DecodeResult:
    hypotheses: list[list[Hypothesis]]  # per input, best first
    stats: DecodeStats = field(default_factory=DecodeStats)

    def best(self) -> list[Hypothesis]:
        return [candidates[0] for candidates in self.hypotheses]


StrategyFn = Callable[[Any, DecodeInput, Any], DecodeResult]


@dataclass(frozen=True)
class StrategySpec:
    """A strategy as users pick it: its name, the function that runs it, and its settings' type.
    Each strategy module defines one as `STRATEGY`; `polyseq.decoding` lists them."""

    name: str
    run: StrategyFn
    config_type: type


def max_positions(model: Any) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "max_positions", 1 << 30))


Project = Callable[[Tensor], Tensor]


class StatesDecoder(Protocol):
    """(tokens (A, T), memory, cache) -> the decoder's states (A, T, D) and the output layer.
    `widths` (A,), when given, says how many of each row's tokens are real (the rest padding,
    whose states the caller ignores and whose cache entries it truncates): a runner may skip
    the arithmetic on padding."""

    def __call__(self, tokens: Tensor, memory: Any, cache: Any,
                 widths: Sequence[int] | None = None) -> tuple[Tensor, Project]: ...


@dataclass(frozen=True)
class ModelRunner:
    """How a strategy runs the model, chosen once per decoding call. `decode` maps (tokens (A, T),
    memory, cache) to the decoder's states (A, T, D) and the output layer, when the model splits
    them, else to the logits (A, T, V) and the identity. `choose` maps states (N, D) and the
    output layer to greedy's choice after each row: its most likely token and that token's
    log-probability; `top`, with a count, to each row's that many most likely tokens and their
    log-probabilities, (N, count) each (the native passes fuse both into the output layer).
    Neither ever picks the banned id (`DecodeInput.banned_id`)."""

    encode: Callable[[Tensor], Any]
    init_cache: Callable[..., Any]  # (memory, capacity=...)
    decode: StatesDecoder
    choose: Callable[[Tensor, Project], tuple[list[int], list[float]]]
    top: Callable[[Tensor, Project, int], tuple[Tensor, Tensor]]


def without(scores: Tensor, banned: int | None) -> Tensor:
    """scores (N, V) with the `banned` id at -inf (a copy); `scores` itself when None."""
    return scores if banned is None else scores.index_fill(-1, torch.tensor(banned, device=scores.device),
                                                           -math.inf)


def greedy_choice(logits: Tensor, banned: int | None = None) -> tuple[list[int], list[float]]:
    """Each row's most likely token in logits (N, V), never `banned`, and its log-probability
    (under the whole distribution, as the native passes give it)."""
    logits = logits.float()
    chosen = without(logits, banned).argmax(dim=-1)
    return chosen.tolist(), log_probs_of(logits, chosen)


def log_probs_of(logits: Tensor, chosen: Tensor) -> list[float]:
    """The log-probability of each row's chosen token (N,) under logits (N, V)."""
    return logits.log_softmax(dim=-1).gather(1, chosen[:, None])[:, 0].tolist()


def most_likely(logits: Tensor, count: int, banned: int | None = None) -> tuple[Tensor, Tensor]:
    """Each row's `count` most likely tokens in logits (N, V) other than `banned`, most likely
    first, and their log-probabilities: (N, count) each (-inf where too few tokens are left)."""
    log_probs = without(logits.float().log_softmax(dim=-1), banned)
    values, ids = log_probs.topk(min(count, logits.shape[-1]), dim=-1)
    return ids, values


def model_runner(model: Any, banned: int | None = None) -> ModelRunner:
    """The native passes (`polyseq.model.native`: one call per pass) where they compute what the
    model's modules compute; else the model protocol, the reference path. Its choices leave out
    `banned` (a strategy gives `DecodeInput.banned_id`)."""
    native = native_passes(model)
    if native is not None:
        return ModelRunner(native.encode, native.init_cache,
                           lambda tokens, memory, cache, widths=None: (native.decode(tokens, cache, widths),
                                                                       native.project),
                           lambda states, project: _native_choice(native, states, banned),
                           lambda states, project, count: _native_top(native, states, count, banned))
    choose = lambda states, project: greedy_choice(project(states), banned)  # noqa: E731
    top = lambda states, project, count: most_likely(project(states), count, banned)  # noqa: E731
    if hasattr(model, "decode_hidden") and hasattr(model, "project"):
        return ModelRunner(model.encode, model.init_cache, lambda tokens, memory, cache, widths=None: (
            model.decode_hidden(tokens, memory, cache), model.project), choose, top)
    return ModelRunner(model.encode, model.init_cache, lambda tokens, memory, cache, widths=None: (
        model.decode_step(tokens, memory, cache), lambda logits: logits), choose, top)


def _native_choice(native: Any, states: Tensor, banned: int | None) -> tuple[list[int], list[float]]:
    """The fused choice; the rows where it is `banned` choose again from their logits (rare: a
    trained model gives padding little probability)."""
    tokens, log_probs = native.choose(states)
    again = [row for row, token in enumerate(tokens) if token == banned]
    if again:
        tokens_again, log_probs_again = greedy_choice(native.project(states[again]), banned)
        for row, token, log_prob in zip(again, tokens_again, log_probs_again, strict=True):
            tokens[row], log_probs[row] = token, log_prob
    return tokens, log_probs


def _native_top(native: Any, states: Tensor, count: int, banned: int | None) -> tuple[Tensor, Tensor]:
    """The fused top `count`, from one more than that when `banned` may be among them."""
    if banned is None:
        return native.top(states, count)
    ids, log_probs = native.top(states, min(count + 1, native.config.vocab_size))
    log_probs = log_probs.masked_fill(ids == banned, -math.inf)
    order = log_probs.argsort(dim=1, descending=True, stable=True)[:, :count]  # the banned id last
    return ids.gather(1, order), log_probs.gather(1, order)
