"""ExampleStore: examples as flat arrays read back exactly as they went in, whatever the chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyseq.data.corpus import filter_indices
from polyseq.data.examples import Example, ExampleStore

rows = st.lists(st.integers(0, 2**31 - 1), min_size=0, max_size=6)
examples = st.lists(st.builds(Example, rows, rows), max_size=12)


@given(examples, st.integers(1, 5))
def test_a_store_reads_back_its_examples_however_it_was_joined(items: list[Example], size: int) -> None:
    chunks = [ExampleStore.of(items[i:i + size]) for i in range(0, len(items), size)]
    store = ExampleStore.joined(chunks)
    assert list(store) == items and len(store) == len(items)
    assert store.lengths().tolist() == [[len(e.src), len(e.tgt)] for e in items]
    picked = [i for i in range(len(items)) if i % 2] + [0] * bool(items)
    assert list(store.take(picked)) == [items[i] for i in picked]
    assert list(store[1:-1]) == items[1:-1]
    if items:
        assert store[-1] == items[-1]


def test_target_ids_leave_out_the_forced_start_and_eos() -> None:
    store = ExampleStore.of([Example([1], [7, 8, 9, 2]), Example([1], [7, 2]), Example([1], [7, 5, 6, 8, 2])])
    assert store.target_ids(1).tolist() == [8, 9, 5, 6, 8]
    assert store.target_ids(2).tolist() == [9, 6, 8]
    with pytest.raises(IndexError):
        store[3]


def test_the_length_filter_reads_a_store_as_it_reads_a_list() -> None:
    items = [Example([1] * n, [2] * m) for n, m in [(3, 3), (50, 4), (6, 40), (5, 26), (5, 25), (1, 99)]]
    for given_as in (items, ExampleStore.of(items)):
        kept, report = filter_indices(given_as, max_length=45, max_ratio=5.0)
        assert kept == [0, 4] and (report.too_long, report.bad_ratio) == (2, 2)
    assert ExampleStore.of(items).src.dtype == np.int32
