"""Decoding strategies, chosen by name: the one list of them, their settings, and `generate`.

Every strategy module defines `STRATEGY` (a `StrategySpec`); this module lists them and nothing
else does, so adding a strategy is adding its module to `STRATEGIES` below.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import typing
from collections.abc import Iterator
from typing import Any

import torch

from polyseq.config import ConfigError, coerce_value, did_you_mean
from polyseq.decoding import aggressive, beam, diverse_beam, greedy, sampling, speculative
from polyseq.decoding.core import DecodeInput, DecodeResult, LengthLimit, StrategySpec

STRATEGIES: dict[str, StrategySpec] = {
    module.STRATEGY.name: module.STRATEGY
    for module in (aggressive, beam, diverse_beam, greedy, sampling, speculative)
}


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)


def get_strategy(name: str) -> StrategySpec:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown decoding strategy {name!r}{did_you_mean(name, strategy_names())}")
    return STRATEGIES[name]


def make_config(name: str, settings: dict[str, Any] | None = None) -> Any:
    """The strategy's config from keyword settings, each turned into its field's type (a command
    line's text, a request's JSON), with a ConfigError naming an unknown or ill-typed setting.

    Settings of nested configs (the length limit's `a`/`b` as `max_len_a`/`max_len_b`, the
    processors' `min_length`, `no_repeat_ngram`, ...) are given flat, as the CLI does; the nested
    config itself (`max_length=LengthLimit(...)`) only as an instance, from Python.
    """
    spec = get_strategy(name)
    top: dict[str, Any] = dict(settings or {})
    nested: dict[str, dict[str, Any]] = {}
    fields = {item.name: item for item in dataclasses.fields(spec.config_type)}
    hints = _hints(spec.config_type)
    flat_names = {}  # flat setting name -> (field of the config, field of the nested config)
    for item in fields.values():
        inner = _nested_type(spec.config_type, item.name)
        if inner is not None:
            for sub in dataclasses.fields(inner):
                flat = f"max_len_{sub.name}" if inner is LengthLimit else sub.name
                flat_names[flat] = (item.name, sub.name)
    for key in list(top):
        inner = _nested_type(spec.config_type, key) if key in fields else None
        if key in flat_names and key not in fields:
            outer, inner_name = flat_names[key]
            value = coerce_value(top.pop(key), _hints(hints[outer])[inner_name], f"setting {key}")
            nested.setdefault(outer, {})[inner_name] = value
        elif inner is not None and not isinstance(top[key], inner):
            own = [flat for flat, (outer, _) in flat_names.items() if outer == key]
            raise ConfigError(f"setting {key} is given by its parts: {', '.join(own)}")
        elif key in fields:
            top[key] = coerce_value(top[key], hints[key], f"setting {key}")
        else:
            known = sorted(set(fields) - {item for item, _ in flat_names.values()} | set(flat_names))
            raise ConfigError(f"strategy {name!r} has no setting {key!r}{did_you_mean(key, known)}")
    for outer, values in nested.items():
        base = top.get(outer) or _nested_type(spec.config_type, outer)()  # type: ignore[misc]
        top[outer] = dataclasses.replace(base, **values)
    return spec.config_type(**top)


@functools.cache  # get_type_hints evaluates annotations: a cost every decoding call would pay
def _hints(config_type: type) -> dict[str, Any]:
    return typing.get_type_hints(config_type)


def _nested_type(config_type: type, name: str) -> type | None:
    hint = _hints(config_type).get(name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def generate(model: Any, inputs: DecodeInput, strategy: str = "greedy", config: Any = None,
             **settings: Any) -> DecodeResult:
    """Run the named strategy on `model`; `config` or keyword settings configure it. Python's
    cyclic garbage collector waits until it returns (`collector_paused`)."""
    spec = get_strategy(strategy)
    if config is None:
        config = make_config(strategy, settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    with torch.inference_mode(), collector_paused():
        return spec.run(model, inputs, config)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, then on again if it was. A search
    keeps many small lists alive for a few steps, and every collection they set off walks all
    the objects of the process (PyTorch's too): about a sixth of a beam search's time at batch 1
    on a small model. Decoding makes no reference cycles to wait for; reference counting frees
    its garbage as before."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


__all__ = ["STRATEGIES", "generate", "get_strategy", "make_config", "strategy_names"]
