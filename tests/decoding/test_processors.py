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
