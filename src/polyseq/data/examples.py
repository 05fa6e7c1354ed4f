"""Encoded training examples: one `Example`, and an `ExampleStore` that holds millions of them.

A corpus kept as Python lists of token ids takes about 57 bytes a token (a pointer and an int
object each; bench/data_memory.py), so a WMT-sized corpus does not fit in the memory of the
machine that trains on it. An `ExampleStore` keeps each side's ids end to end in one int32 array,
with where each example starts, about 4.5 bytes a token; reading an example makes its lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np


@dataclass(frozen=True, slots=True)
class Example:
    """Token ids of one pair (read-only: identical sequences may share one list)."""

    src: list[int]
    tgt: list[int]


class ExampleStore(Sequence[Example]):
    """Examples as flat arrays: `src` and `tgt` hold each side's ids end to end (int32), and
    `src_starts`, `tgt_starts` where example i's begin (int64, with the end as a last entry)."""

    def __init__(self, src: np.ndarray, src_starts: np.ndarray, tgt: np.ndarray, tgt_starts: np.ndarray):
        if len(src_starts) != len(tgt_starts) or len(src_starts) < 1:
            raise ValueError("an ExampleStore needs as many source as target starts, and at least one")
        self.src, self.src_starts, self.tgt, self.tgt_starts = src, src_starts, tgt, tgt_starts

    @classmethod
    def of(cls, examples: Iterable[Example]) -> ExampleStore:
        listed = list(examples)
        return cls(*_flat([e.src for e in listed]), *_flat([e.tgt for e in listed]))

    @classmethod
    def joined(cls, stores: Sequence[ExampleStore]) -> ExampleStore:
        """The examples of `stores`, in order, in one store."""
        if not stores:
            return cls.of([])
        return cls(*_join([(s.src, s.src_starts) for s in stores]),
                   *_join([(s.tgt, s.tgt_starts) for s in stores]))

    def __len__(self) -> int:
        return len(self.src_starts) - 1

    @overload
    def __getitem__(self, index: int) -> Example: ...

    @overload
    def __getitem__(self, index: slice) -> ExampleStore: ...

    def __getitem__(self, index: int | slice) -> Example | ExampleStore:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        index %= len(self)
        return Example(self.src[self.src_starts[index]:self.src_starts[index + 1]].tolist(),
                       self.tgt[self.tgt_starts[index]:self.tgt_starts[index + 1]].tolist())

    def lengths(self) -> np.ndarray:
        """(N, 2): each example's source and target lengths."""
        return np.stack([np.diff(self.src_starts), np.diff(self.tgt_starts)], axis=1)

    def take(self, indices: Sequence[int] | np.ndarray) -> ExampleStore:
        """The examples at `indices`, in their order, as a store of their own."""
        rows = np.asarray(indices, dtype=np.int64)
        return ExampleStore(*_gather(self.src, self.src_starts, rows),
                            *_gather(self.tgt, self.tgt_starts, rows))

    def target_ids(self, head: int) -> np.ndarray:
        """Every target's ids without its first `head` (the decoder's forced start) and its last
        (EOS), end to end."""
        lengths = np.diff(self.tgt_starts)
        position = np.arange(len(self.tgt)) - np.repeat(self.tgt_starts[:-1], lengths)
        return self.tgt[(position >= head) & (position < np.repeat(lengths - 1, lengths))]


def _flat(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in rows], out=starts[1:])
    ids = np.fromiter((i for row in rows for i in row), dtype=np.int32, count=int(starts[-1]))
    return ids, starts


def _join(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0, *(len(ids) for ids, _ in parts)])
    starts = np.concatenate([[0], *(s[1:] + offset for (_, s), offset in zip(parts, offsets, strict=False))])
    return np.concatenate([ids for ids, _ in parts]).astype(np.int32, copy=False), starts.astype(np.int64)


def _gather(ids: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = starts[rows + 1] - starts[rows]
    new_starts = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_starts[1:])
    positions = np.arange(new_starts[-1]) + np.repeat(starts[rows] - new_starts[:-1], lengths)
    return ids[positions], new_starts
