"""Padding into Batch tensors, token-budget batches, and the resumable batch stream."""

from __future__ import annotations

import json
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polyseq.data.batching import Batch, BatchStream, collate, token_batches
from polyseq.data.corpus import Example

PAD = 0


def test_collate_pads_right_and_shifts_the_target() -> None:
    examples = [Example([5, 6, 7, 3], [4, 8, 9, 3]), Example([5, 3], [4, 3])]
    batch = collate(examples, pad_id=PAD)
    assert batch.src.dtype == torch.long
    assert batch.src.tolist() == [[5, 6, 7, 3], [5, 3, 0, 0]]  # (B, S)
    assert batch.tgt_in.tolist() == [[4, 8, 9], [4, 0, 0]]  # (B, T)
    assert batch.tgt_out.tolist() == [[8, 9, 3], [3, 0, 0]]  # (B, T)
    assert (batch.size, batch.src_tokens, batch.tgt_tokens) == (2, 6, 4)
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.tgt_out, batch.tgt_out)


def test_collate_with_another_pad_id() -> None:
    batch = collate([Example([7], [4, 3]), Example([7, 7], [4, 9, 3])], pad_id=1)
    assert batch.src.tolist() == [[7, 1], [7, 7]]
    assert batch.tgt_in.tolist() == [[4, 1], [4, 9]]
    assert batch.src_tokens == 3 and batch.tgt_tokens == 3


def test_collate_rejects_bad_examples() -> None:
    with pytest.raises(ValueError, match="empty list"):
        collate([], pad_id=PAD)
    with pytest.raises(ValueError, match="example 1 has 2 source and 1 target ids"):
        collate([Example([5, 3], [4, 3]), Example([5, 3], [3])], pad_id=PAD)


LENGTHS = st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), max_size=300)


@settings(max_examples=100, deadline=None)
@given(LENGTHS, st.integers(1, 400), st.integers(0, 5), st.integers(0, 3))
def test_token_batches_cover_every_index_within_budget(
    lengths: list[tuple[int, int]], max_tokens: int, seed: int, epoch: int
) -> None:
    batches = token_batches(lengths, max_tokens, seed=seed, epoch=epoch)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        widest = max(max(lengths[i]) for i in batch)
        assert len(batch) * widest <= max_tokens or len(batch) == 1
    assert batches == token_batches(lengths, max_tokens, seed=seed, epoch=epoch)


def test_token_batches_group_similar_lengths_and_change_with_epoch() -> None:
    rng = random.Random(0)
    lengths = [(rng.randint(1, 50), rng.randint(1, 50)) for _ in range(2000)]
    first = token_batches(lengths, 500, seed=1, epoch=0)
    padded = sum(len(b) * max(max(lengths[i]) for i in b) for b in first)
    assert padded < 1.25 * sum(max(pair) for pair in lengths)  # little padding
    assert token_batches(lengths, 500, seed=1, epoch=1) != first
    assert token_batches(lengths, 500, seed=2, epoch=0) != first
    assert token_batches([], 500, seed=1, epoch=0) == []


def test_token_batches_give_oversized_examples_their_own_batch() -> None:
    batches = token_batches([(3, 3), (50, 2), (3, 3)], 10, seed=0, epoch=0)
    assert sorted(sorted(batch) for batch in batches) == [[0, 2], [1]]
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        token_batches([(1, 1)], 0, seed=0, epoch=0)


def make_examples(count: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    return [
        Example([4, *(rng.randint(5, 99) for _ in range(rng.randint(0, 20))), 3],
                [4, *(rng.randint(5, 99) for _ in range(rng.randint(0, 20))), 3])
        for _ in range(count)
    ]


def same(a: Batch, b: Batch) -> bool:
    return all(torch.equal(x, y) for x, y in ((a.src, b.src), (a.tgt_in, b.tgt_in),
                                              (a.tgt_out, b.tgt_out)))


def test_stream_resumes_exactly_across_epochs() -> None:
    examples = make_examples(200)
    stream = BatchStream(examples, max_tokens=120, pad_id=PAD, seed=3)
    per_epoch = len(token_batches([(len(e.src), len(e.tgt)) for e in examples], 120, seed=3,
                                  epoch=0))
    for _ in range(per_epoch - 2):
        next(stream)
    saved = json.loads(json.dumps(stream.state()))  # survives a JSON checkpoint
    expected = [next(stream) for _ in range(5)]  # crosses into epoch 1
    assert stream.epoch == 1
    resumed = BatchStream(examples, max_tokens=120, pad_id=PAD, seed=3)
    resumed.load_state(saved)
    assert all(same(a, b) for a, b in zip(expected, (next(resumed) for _ in range(5)),
                                          strict=True))


def test_stream_epoch_visits_every_example_once() -> None:
    examples = make_examples(150, seed=1)
    stream = BatchStream(examples, max_tokens=100, pad_id=PAD, seed=0)
    seen = []
    while stream.epoch == 0:
        batch = next(stream)
        if stream.epoch == 0:
            seen += [tuple(t for t in row if t != PAD) for row in batch.src.tolist()]
    assert sorted(seen) == sorted(tuple(e.src) for e in examples)


def test_stream_rejects_a_state_from_other_data() -> None:
    stream = BatchStream(make_examples(50), max_tokens=100, pad_id=PAD, seed=0)
    state = stream.state()
    other = BatchStream(make_examples(50), max_tokens=200, pad_id=PAD, seed=0)
    with pytest.raises(ValueError, match="resume with the same data, max_tokens and seed"):
        other.load_state(state)
    with pytest.raises(ValueError, match="position 9999 is outside epoch 0"):
        stream.load_state({**state, "position": 9999})
    with pytest.raises(ValueError, match="at least one example"):
        BatchStream([], max_tokens=100, pad_id=PAD, seed=0)
