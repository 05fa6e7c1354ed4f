"""Logits processors on small hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from polyseq.config import ConfigError
from polyseq.decoding import processors as p

INF = math.inf


def logits() -> torch.Tensor:
    return torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.5, 0.5, 4.0, -1.0]])


def test_temperature_scales() -> None:
    assert torch.equal(p.temperature(logits(), 2.0), logits() / 2)
    with pytest.raises(ConfigError):
        p.temperature(logits(), 0.0)


def test_top_k_keeps_the_k_largest_and_ties() -> None:
    out = p.top_k(logits(), 2)
    assert out[0].tolist() == [-INF, 3.0, 2.0, -INF]
    assert out[1].tolist() == [0.5, 0.5, 4.0, -INF]  # both tied second values survive


def test_top_p_keeps_the_smallest_nucleus() -> None:
    probabilities = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = p.top_p(probabilities.log(), 0.7)
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]
    out = p.top_p(probabilities.log(), 0.4)
    assert torch.isfinite(out).tolist() == [[True, False, False, False]]


def test_no_repeat_ngram_bans_completing_tokens() -> None:
    histories = [[1, 2, 1], [3]]
    out = p.no_repeat_ngram(logits(), histories, 2)
    assert out[0].tolist() == [1.0, 3.0, -INF, 0.0]  # "1 2" seen: after 1, 2 is banned
    assert torch.equal(out[1], logits()[1])
    out = p.no_repeat_ngram(logits(), histories, 1)
    assert out[0].tolist() == [1.0, -INF, -INF, 0.0]  # n=1: no token may repeat


def test_repetition_penalty_divides_positive_and_multiplies_negative() -> None:
    values = torch.tensor([[2.0, -2.0, 1.0]])
    out = p.repetition_penalty(values, [[0, 1]], 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]


def test_min_length_bans_eos_for_short_rows() -> None:
    out = p.min_length(logits(), [1, 5], minimum=3, eos_id=1)
    assert out[0, 1] == -INF and out[1, 1] == 0.5


def test_banned_and_forced_tokens() -> None:
    out = p.ban_tokens(logits(), [0, 2])
    assert out[0].tolist() == [-INF, 3.0, -INF, 0.0]
    forced = p.force_token(logits(), 3).log_softmax(dim=-1)
    assert forced[:, 3].tolist() == [0.0, 0.0]
    assert torch.isinf(forced[:, :3]).all()


def test_processing_composes_in_order() -> None:
    processing = p.Processing(min_length=1, banned_tokens=(0,), force_first_token=2)
    out = processing(logits(), [[], [3]], eos_id=1)
    assert out[0].argmax() == 2 and torch.isinf(out[0, [0, 1, 3]]).all()  # forced first token
    assert out[1].tolist() == [-INF, 0.5, 4.0, -1.0]
    assert not p.Processing().active


# A user's prefix (`--prefix`) is the start of the output: the processors count it as transformers
# and fairseq do, on every strategy that takes them; the framing before it (the tag) they do not.
PAD, EOS, A, B, C, TAG = range(6)
PROCESSING_STRATEGIES = [("greedy", {}), ("beam", {"beam_size": 2}),
                         ("diverse-beam", {"beam_size": 2, "groups": 2, "n_best": 2}),
                         ("sampling", {"top_k": 1, "num_samples": 2})]


class FixedCache:
    def reorder(self, index: torch.Tensor) -> None:
        pass

    def truncate(self, length: int | torch.Tensor) -> None:
        pass


class FixedModel:
    """Gives every step the same logits, whatever came before: what the processors change shows."""

    def __init__(self, logits: dict[int, float]):
        self.logits = torch.full((6,), -INF)
        for token, value in logits.items():
            self.logits[token] = value

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        return src

    def init_cache(self, memory: torch.Tensor, capacity: int = 0) -> FixedCache:
        return FixedCache()

    def decode_step(self, tokens: torch.Tensor, memory: torch.Tensor, cache: FixedCache) -> torch.Tensor:
        return self.logits.expand(tokens.shape[0], tokens.shape[1], 6).clone()


def outputs(model: FixedModel, prefix: list[int], user: int, strategy: str,
            **settings: object) -> list[tuple[int, ...]]:
    """Every candidate's generated tokens for one input framed by TAG, then `prefix`, of which
    the last `user` tokens are the user's."""
    from polyseq.decoding import generate
    from polyseq.decoding.core import DecodeInput, LengthLimit

    inputs = DecodeInput(torch.tensor([[A, B, C]]), torch.tensor([[TAG, *prefix]]), eos_id=EOS, pad_id=PAD,
                         user_prefix_length=user)
    result = generate(model, inputs, strategy, max_length=LengthLimit(0.0, 4), **settings)
    return [h.tokens for h in result.hypotheses[0]]


PREFERS_A = {EOS: 0.0, A: 3.0, B: 2.0, C: 1.0}


@pytest.mark.parametrize(("strategy", "settings"), PROCESSING_STRATEGIES)
def test_no_repeat_ngram_counts_the_users_prefix(strategy: str, settings: dict) -> None:
    model = FixedModel(PREFERS_A)
    for candidate in outputs(model, [A], 1, strategy, no_repeat_ngram=1, **settings):
        assert A not in candidate  # "A" is in the output already: the prefix's
    # the same token as framing is no part of the output
    assert any(A in c for c in outputs(model, [A], 0, strategy, no_repeat_ngram=1, **settings))


@pytest.mark.parametrize(("strategy", "settings"), PROCESSING_STRATEGIES)
def test_repetition_penalty_counts_the_users_prefix(strategy: str, settings: dict) -> None:
    model = FixedModel(PREFERS_A)
    # A's logit 3 / 10 falls below B's 2: the best output starts with B
    assert outputs(model, [A], 1, strategy, repetition_penalty=10.0, **settings)[0][0] == B
    assert outputs(model, [A], 0, strategy, repetition_penalty=10.0, **settings)[0][0] == A


@pytest.mark.parametrize(("strategy", "settings"), PROCESSING_STRATEGIES)
def test_min_length_counts_the_users_prefix(strategy: str, settings: dict) -> None:
    model = FixedModel({EOS: 3.0, A: 0.0})
    assert outputs(model, [B, C], 2, strategy, min_length=2, **settings)[0] == ()  # the prefix's 2 suffice
    assert outputs(model, [B, C], 1, strategy, min_length=2, **settings)[0] == (A,)  # one more is needed


@pytest.mark.parametrize(("strategy", "settings"), PROCESSING_STRATEGIES)
def test_a_users_prefix_is_the_first_token_force_first_token_would_force(strategy: str,
                                                                        settings: dict) -> None:
    model = FixedModel(PREFERS_A)
    assert outputs(model, [B], 1, strategy, force_first_token=C, **settings)[0][0] == A
    assert outputs(model, [B], 0, strategy, force_first_token=C, **settings)[0][0] == C


def test_a_user_prefix_longer_than_the_prefix_is_refused() -> None:
    from polyseq.decoding.core import DecodeInput

    with pytest.raises(ConfigError, match="user_prefix_length"):
        DecodeInput(torch.tensor([[A]]), torch.tensor([[TAG]]), eos_id=EOS, pad_id=PAD, user_prefix_length=2)
