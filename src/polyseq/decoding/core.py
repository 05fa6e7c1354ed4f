"""What every decoding strategy shares: the model protocol, inputs, results, and the registry.

A strategy is a function `(model, DecodeInput, config) -> DecodeResult` that talks to the model only
through `encode`, `init_cache` and `decode_step`, so any backend with those gets every strategy.
Strategies are chosen by name; their settings live in a typed config dataclass.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from polyseq.config import ConfigError, did_you_mean
from polyseq.model.flat import FlatDecoder, FlatEncoder, runs_flat


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

    @property
    def batch_size(self) -> int:
        return int(self.src.shape[0])

    def source_lengths(self) -> Tensor:
        return (self.src != self.pad_id).sum(dim=1)  # (B,)


@dataclass(frozen=True)
class LengthLimit:
    """Generate at most `a * source_length + b` tokens (at least 1, at most `ceiling`)."""

    a: float = 1.5
    b: int = 10

    def for_input(self, inputs: DecodeInput, ceiling: int) -> Tensor:
        limit = (inputs.source_lengths().double() * self.a).floor().long() + self.b
        return limit.clamp(min=1, max=max(1, ceiling))  # (B,)


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]  # generated ids, without the prefix and the final EOS
    score: float  # the strategy's ranking score (beam: length-normalised log-probability)
    log_prob: float  # sum of token log-probabilities, EOS included when it was generated
    finished: bool = True  # False when the length limit stopped it before EOS


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
    name: str
    run: StrategyFn
    config_type: type


_STRATEGIES: dict[str, StrategySpec] = {}


def register_strategy(name: str, config_type: type) -> Callable[[StrategyFn], StrategyFn]:
    def decorator(run: StrategyFn) -> StrategyFn:
        _STRATEGIES[name] = StrategySpec(name, run, config_type)
        return run

    return decorator


def strategy_names() -> list[str]:
    _load_builtin_strategies()
    return sorted(_STRATEGIES)


def get_strategy(name: str) -> StrategySpec:
    _load_builtin_strategies()
    if name not in _STRATEGIES:
        raise ConfigError(f"unknown decoding strategy {name!r}{did_you_mean(name, sorted(_STRATEGIES))}")
    return _STRATEGIES[name]


def make_config(name: str, settings: dict[str, Any] | None = None) -> Any:
    """The strategy's config from keyword settings, with a clear error for an unknown setting.

    Settings of nested configs (the length limit's `a`/`b` as `max_len_a`/`max_len_b`, the
    processors' `min_length`, `no_repeat_ngram`, ...) may be given flat, as the CLI does.
    """
    spec = get_strategy(name)
    top: dict[str, Any] = dict(settings or {})
    nested: dict[str, dict[str, Any]] = {}
    fields = {item.name: item for item in dataclasses.fields(spec.config_type)}
    flat_names = {}  # flat setting name -> (field of the config, field of the nested config)
    for item in fields.values():
        inner = _nested_type(spec.config_type, item.name)
        if inner is not None:
            for sub in dataclasses.fields(inner):
                flat = f"max_len_{sub.name}" if inner is LengthLimit else sub.name
                flat_names[flat] = (item.name, sub.name)
    for key in list(top):
        if key in flat_names and key not in fields:
            outer, inner_name = flat_names[key]
            nested.setdefault(outer, {})[inner_name] = top.pop(key)
        elif key not in fields:
            known = sorted(set(fields) | set(flat_names))
            raise ConfigError(f"strategy {name!r} has no setting {key!r}{did_you_mean(key, known)}")
    for outer, values in nested.items():
        base = top.get(outer) or _nested_type(spec.config_type, outer)()  # type: ignore[misc]
        top[outer] = dataclasses.replace(base, **values)
    return spec.config_type(**top)


@functools.cache  # get_type_hints evaluates annotations: a cost every decoding call would pay
def _nested_type(config_type: type, name: str) -> type | None:
    hint = typing.get_type_hints(config_type).get(name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def decode(model: Any, inputs: DecodeInput, strategy: str = "greedy", config: Any = None,
           **settings: Any) -> DecodeResult:
    """Run the named strategy; `config` or keyword settings configure it."""
    spec = get_strategy(strategy)
    if config is None:
        config = make_config(strategy, settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    with torch.inference_mode():
        return spec.run(model, inputs, config)


def _load_builtin_strategies() -> None:
    # Imported lazily: the strategy modules register themselves and import this module.
    from polyseq.decoding import (  # noqa: F401
        aggressive,
        beam,
        diverse_beam,
        greedy,
        sampling,
        speculative,
    )


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
    them, else to the logits (A, T, V) and the identity."""

    encode: Callable[[Tensor], Any]
    init_cache: Callable[..., Any]  # (memory, capacity=...)
    decode: StatesDecoder


def model_runner(model: Any) -> ModelRunner:
    """Flat passes (`FlatEncoder`, `FlatDecoder`: what the model's modules compute, with a fraction
    of the per-call overhead) where they compute exactly that (`runs_flat`); else the model
    protocol."""
    if runs_flat(model):
        flat = FlatDecoder(model)
        return ModelRunner(FlatEncoder(model), flat.init_cache,
                           lambda tokens, memory, cache, widths=None: (flat(tokens, cache, widths),
                                                                       flat.project))
    if hasattr(model, "decode_hidden") and hasattr(model, "project"):
        return ModelRunner(model.encode, model.init_cache, lambda tokens, memory, cache, widths=None: (
            model.decode_hidden(tokens, memory, cache), model.project))
    return ModelRunner(model.encode, model.init_cache, lambda tokens, memory, cache, widths=None: (
        model.decode_step(tokens, memory, cache), lambda logits: logits))


def next_token_logits(decode: StatesDecoder) -> Callable[[Tensor, Any, Any], Tensor]:
    """A function (tokens (A, T), memory, cache) -> the logits (A, V) after each row's last token."""

    def step(tokens: Tensor, memory: Any, cache: Any) -> Tensor:
        states, project = decode(tokens, memory, cache)
        return project(states[:, -1])

    return step


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> Tensor:
    """Token lists as one right-padded (B, T) long tensor."""
    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [pad_id] * (width - len(row)) for row in rows], dtype=torch.long)
