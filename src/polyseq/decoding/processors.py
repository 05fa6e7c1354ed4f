"""Logits processors: pure functions from step logits to step logits.

Each takes `logits` (N, V) for the next token of N rows (and, where it needs them, each row's tokens
so far) and returns new logits; they compose by plain function application. `Processing` bundles
the settings a strategy exposes and applies them in a fixed, documented order.

A row's tokens so far are its output so far: a user's prefix (`--prefix`) and the tokens generated
after it, as transformers' and fairseq's processors read the prefix, but not the framing before it
(the target-language tag or decoder start token), which is no part of the output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from polyseq.config import ConfigError

NEG_INF = -math.inf


def temperature(logits: Tensor, value: float) -> Tensor:
    """Sharpen (< 1) or flatten (> 1) the distribution."""
    if not 0 < value < math.inf:
        raise ConfigError(f"temperature must be a finite number > 0, got {value}")
    return logits / value


def top_k(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits per row (ties at the k-th value are all kept)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    threshold = logits.topk(k, dim=-1).values[:, -1:]  # (N, 1)
    return logits.masked_fill(logits < threshold, NEG_INF)


def top_p(logits: Tensor, p: float) -> Tensor:
    """Nucleus: keep the smallest set of most likely tokens whose probability reaches p."""
    if not 0.0 < p <= 1.0:
        raise ConfigError("top_p must be in (0, 1]")
    if p == 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative - sorted_logits.softmax(dim=-1) >= p  # mass before this token already >= p
    remove[:, 0] = False  # the most likely token always stays
    return logits.masked_fill(remove.scatter(1, order, remove), NEG_INF)


def ban_tokens(logits: Tensor, token_ids: Sequence[int]) -> Tensor:
    if not token_ids:
        return logits
    logits = logits.clone()
    logits[:, list(token_ids)] = NEG_INF
    return logits


def allow_only(logits: Tensor, token_ids: Sequence[int], eos_id: int) -> Tensor:
    """Only `token_ids` and EOS may come next (a target language's vocabulary); no ids: all."""
    if not token_ids:
        return logits
    allowed = _mask(tuple(token_ids), eos_id, logits.shape[-1], logits.device)  # (V,)
    return logits.masked_fill(~allowed, NEG_INF)


@functools.lru_cache(maxsize=8)  # one mask per vocabulary, not one per decoding step
def _mask(token_ids: tuple[int, ...], eos_id: int, vocab: int, device: torch.device) -> Tensor:
    bad = [i for i in (*token_ids, eos_id) if not 0 <= i < vocab]
    if bad:
        raise ConfigError(f"allowed token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")
    mask = torch.zeros(vocab, dtype=torch.bool, device=device)
    mask[list(token_ids)] = True
    mask[eos_id] = True
    return mask


def force_token(logits: Tensor, token_id: int) -> Tensor:
    """Only `token_id` may come next (e.g. the target-language tag at the first step)."""
    forced = torch.full_like(logits, NEG_INF)
    forced[:, token_id] = 0.0  # log_softmax then gives the forced token log-probability 0
    return forced


def min_length(logits: Tensor, lengths: Sequence[int], minimum: int, eos_id: int) -> Tensor:
    """No EOS for rows whose output holds fewer than `minimum` tokens."""
    short = [row for row, length in enumerate(lengths) if length < minimum]
    if not short:
        return logits
    logits = logits.clone()
    logits[short, eos_id] = NEG_INF
    return logits


def repetition_penalty(logits: Tensor, histories: Sequence[Sequence[int]], penalty: float) -> Tensor:
    """Divide positive (multiply negative) logits of tokens already in the output (Keskar et al. 2019)."""
    if penalty == 1.0:
        return logits
    logits = logits.clone()
    for row, history in enumerate(histories):
        if history:
            seen = torch.tensor(sorted(set(history)), dtype=torch.long, device=logits.device)
            values = logits[row, seen]
            logits[row, seen] = torch.where(values > 0, values / penalty, values * penalty)
    return logits


def no_repeat_ngram(logits: Tensor, histories: Sequence[Sequence[int]], n: int) -> Tensor:
    """Ban any token that would complete an n-gram already present in the row's output."""
    if n <= 0:
        return logits
    logits = logits.clone()
    for row, history in enumerate(histories):
        if len(history) < n - 1:
            continue
        prefix = tuple(history[len(history) - n + 1 :]) if n > 1 else ()
        banned = [history[i + n - 1] for i in range(len(history) - n + 1)
                  if tuple(history[i : i + n - 1]) == prefix]
        if banned:
            logits[row, banned] = NEG_INF
    return logits


@dataclass(frozen=True)
class Processing:
    """Settings shared by greedy, beam, diverse beam and sampling; applied in this order:
    allowed tokens, banned tokens, minimum length, repetition penalty, no-repeat n-gram, forced
    first token. `histories` are each row's output so far, a user's prefix included (see the
    module's docstring): with a prefix, the output's first token is the prefix's, so
    `force_first_token` forces nothing (as transformers' forced BOS token after decoder_input_ids)."""

    min_length: int = 0
    no_repeat_ngram: int = 0
    repetition_penalty: float = 1.0
    banned_tokens: tuple[int, ...] = ()
    force_first_token: int = -1  # a token id every output must start with (-1: none)
    allowed_tokens: tuple[int, ...] = ()  # only these (and EOS) may be generated; empty: all

    def __post_init__(self) -> None:
        if self.min_length < 0 or self.no_repeat_ngram < 0:
            raise ConfigError("min_length and no_repeat_ngram must be >= 0")
        if not 0 < self.repetition_penalty < math.inf:  # NaN too: it would pass `<= 0`
            raise ConfigError(f"repetition_penalty must be a finite number > 0, "
                              f"got {self.repetition_penalty}")
        object.__setattr__(self, "banned_tokens", tuple(self.banned_tokens))
        object.__setattr__(self, "allowed_tokens", tuple(self.allowed_tokens))
        for name, ids in self._token_ids():
            if ids and min(ids) < 0:  # a negative index would ban or force a token from the end
                raise ConfigError(f"{name}: token ids are >= 0, got {min(ids)}")

    def _token_ids(self) -> list[tuple[str, tuple[int, ...]]]:
        first = (self.force_first_token,) if self.force_first_token != -1 else ()
        return [("banned_tokens", self.banned_tokens), ("allowed_tokens", self.allowed_tokens),
                ("force_first_token", first)]

    def check_vocabulary(self, size: int) -> None:
        """A token id past the vocabulary is an error naming its setting (not an IndexError)."""
        for name, ids in self._token_ids():
            if ids and max(ids) >= size:
                raise ConfigError(f"{name}: token id {max(ids)} is outside the vocabulary (0..{size - 1})")

    @property
    def active(self) -> bool:
        return bool(self.min_length or self.no_repeat_ngram or self.banned_tokens or self.allowed_tokens
                    or self.repetition_penalty != 1.0 or self.force_first_token >= 0)

    def __call__(self, logits: Tensor, histories: Sequence[Sequence[int]], eos_id: int) -> Tensor:
        if not self.active:
            return logits
        self.check_vocabulary(logits.shape[-1])
        logits = allow_only(logits, self.allowed_tokens, eos_id)
        logits = ban_tokens(logits, self.banned_tokens)
        logits = min_length(logits, [len(h) for h in histories], self.min_length, eos_id)
        logits = repetition_penalty(logits, histories, self.repetition_penalty)
        logits = no_repeat_ngram(logits, histories, self.no_repeat_ngram)
        first = [row for row, history in enumerate(histories) if not history]
        if self.force_first_token >= 0 and first:
            logits = logits.clone()
            logits[first] = force_token(logits[first], self.force_first_token)
        return logits
