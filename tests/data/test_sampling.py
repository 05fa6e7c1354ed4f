"""Direction sampling with a temperature: the proportions drawn at T = 1, 5 and inf on a
hand-made corpus of unequal directions, the plain stream kept at T = 1, and exact resumption."""

from __future__ import annotations

import math
import random

import pytest
import torch

from polyseq.data.batching import BatchStream
from polyseq.data.corpus import Example
from polyseq.data.sampling import DirectionBatchStream, direction_shares, epoch_counts, epoch_indices

SIZES = {"en-de": 600, "en-fr": 60, "en-cs": 12}


def corpus(seed: int = 0) -> tuple[list[Example], list[str]]:
    """Examples of three directions, 600 / 60 / 12 of them, with varied lengths, interleaved."""
    rng = random.Random(seed)
    labelled = [(name, Example([5] * rng.randint(1, 6) + [3], [4] * rng.randint(2, 7) + [3]))
                for name, size in SIZES.items() for _ in range(size)]
    rng.shuffle(labelled)
    return [example for _, example in labelled], [name for name, _ in labelled]


def expected_shares(temperature: float) -> dict[str, float]:
    weights = {name: 1.0 if math.isinf(temperature) else size ** (1 / temperature)
               for name, size in SIZES.items()}
    return {name: weight / sum(weights.values()) for name, weight in weights.items()}


@pytest.mark.parametrize("temperature", [1.0, 5.0, math.inf])
def test_each_epoch_draws_the_directions_in_the_expected_proportions(temperature: float) -> None:
    examples, directions = corpus()
    total = len(examples)
    counts = epoch_counts(SIZES, temperature)
    assert sum(counts.values()) == total
    for name, share in expected_shares(temperature).items():
        assert abs(counts[name] - share * total) < 1
    stream = DirectionBatchStream(examples, directions, temperature, max_tokens=64, pad_id=0, seed=3)
    before = stream.drawn()
    while stream.state()["epoch"] < 3:  # stop on the first batch of epoch 3
        before = stream.drawn()
        next(stream)
    assert before == {name: 3 * counts[name] for name in sorted(SIZES)}
    drawn = stream.drawn()
    for name, share in expected_shares(temperature).items():
        assert drawn[name] / sum(drawn.values()) == pytest.approx(share, abs=0.01)


def test_shares_and_counts_by_hand() -> None:
    assert direction_shares({"a": 3, "b": 1}, 1.0) == {"a": 0.75, "b": 0.25}
    assert direction_shares({"a": 4, "b": 1}, 2.0) == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert epoch_counts({"a": 4, "b": 1}, math.inf) == {"a": 3, "b": 2}  # 2.5 each, a tie: by name
    assert epoch_counts({"a": 7, "b": 7, "c": 7}, 5.0) == {"a": 7, "b": 7, "c": 7}
    with pytest.raises(ValueError, match="at least one example"):
        direction_shares({"a": 0}, 1.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        direction_shares({"a": 1}, 0.0)


def test_an_oversampled_direction_repeats_all_its_examples_before_sampling() -> None:
    groups = {"big": list(range(10)), "small": [10, 11, 12]}
    pool = epoch_indices(groups, {"big": 6, "small": 7}, seed=1, epoch=0)
    assert len(pool) == 13 and pool == sorted(pool)
    small = [i for i in pool if i >= 10]
    assert all(small.count(i) in (2, 3) for i in (10, 11, 12)) and len(small) == 7
    assert len(set(i for i in pool if i < 10)) == 6  # sampled without replacement
    assert pool == epoch_indices(groups, {"big": 6, "small": 7}, seed=1, epoch=0)
    assert pool != epoch_indices(groups, {"big": 6, "small": 7}, seed=1, epoch=1)


def test_temperature_one_is_the_plain_stream_batch_for_batch() -> None:
    examples, directions = corpus()
    plain = BatchStream(examples, max_tokens=64, pad_id=0, seed=5)
    sampled = DirectionBatchStream(examples, directions, 1.0, max_tokens=64, pad_id=0, seed=5)
    for _ in range(250):  # about two epochs
        a, b = next(plain), next(sampled)
        assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out)
    assert sampled.state() == plain.state()


def test_a_resumed_stream_continues_exactly_with_its_counts() -> None:
    examples, directions = corpus()
    first = DirectionBatchStream(examples, directions, 5.0, max_tokens=64, pad_id=0, seed=2)
    for _ in range(95):  # into the second epoch
        next(first)
    state, drawn = first.state(), first.drawn()
    assert state["epoch"] == 1
    second = DirectionBatchStream(examples, directions, 5.0, max_tokens=64, pad_id=0, seed=2)
    second.load_state(state)
    assert second.drawn() == drawn
    for _ in range(100):
        a, b = next(first), next(second)
        assert torch.equal(a.src, b.src) and torch.equal(a.tgt_in, b.tgt_in)
    assert second.drawn() == first.drawn() and second.state() == first.state()


def test_directions_must_match_the_examples() -> None:
    examples, directions = corpus()
    with pytest.raises(ValueError, match="directions for"):
        DirectionBatchStream(examples, directions[:-1], 1.0, max_tokens=64, pad_id=0, seed=1)
