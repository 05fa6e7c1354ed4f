"""Token-budget batching, for training and for decoding: group examples of similar length, pad
them into a Batch, and stream batches over epochs with explicit, resumable state
(`token_batches`, `BatchStream`); group texts to decode by length (`length_batches`).

Training batches follow fairseq: sort by (target length, source length) with a seeded shuffle among equal
lengths, cut consecutive runs so that count x widest side <= max_tokens, then shuffle the order of
the batches. Everything depends only on (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polyseq.data.examples import Example, ExampleStore


@dataclass
class Batch:
    src: Tensor  # (B, S) long, right-padded with pad_id
    tgt_in: Tensor  # (B, T) decoder input: target ids[:-1]
    tgt_out: Tensor  # (B, T) labels: target ids[1:]
    pad_id: int = 0

    @property
    def size(self) -> int:
        return self.src.shape[0]

    @property
    def src_tokens(self) -> int:
        """Non-pad source tokens."""
        return int((self.src != self.pad_id).sum())

    @property
    def tgt_tokens(self) -> int:
        """Non-pad labels: the number of tokens the loss is computed on."""
        return int((self.tgt_out != self.pad_id).sum())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            self.src.to(device, non_blocking=non_blocking),
            self.tgt_in.to(device, non_blocking=non_blocking),
            self.tgt_out.to(device, non_blocking=non_blocking),
            self.pad_id,
        )


def collate(examples: Sequence[Example], pad_id: int) -> Batch:
    """Right-pad examples into a Batch; per example tgt_in = tgt[:-1] and tgt_out = tgt[1:]."""
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    for index, example in enumerate(examples):
        if len(example.src) < 1 or len(example.tgt) < 2:
            raise ValueError(
                f"example {index} has {len(example.src)} source and {len(example.tgt)} target "
                "ids; a source needs >= 1 and a target >= 2 (language tag ... eos)"
            )
    src = pad_rows([example.src for example in examples], pad_id)  # (B, S)
    tgt_in = pad_rows([example.tgt[:-1] for example in examples], pad_id)  # (B, T)
    tgt_out = pad_rows([example.tgt[1:] for example in examples], pad_id)  # (B, T)
    return Batch(src, tgt_in, tgt_out, pad_id)


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> Tensor:
    """Token lists as one right-padded (B, T) long tensor."""
    width = max(len(row) for row in rows)
    return torch.tensor([[*row, *[pad_id] * (width - len(row))] for row in rows], dtype=torch.long)


def token_batches(
    lengths: Sequence[tuple[int, int]] | np.ndarray, max_tokens: int, *, seed: int, epoch: int
) -> list[list[int]]:
    """Indices grouped into batches of at most `max_tokens` padded tokens, in a seeded order.

    `lengths` holds (source length, target length) per example. A batch costs count x its widest
    side; an example wider than max_tokens gets a batch of its own. Every index appears once.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    sizes = np.asarray(lengths, dtype=np.int64).reshape(-1, 2)  # (N, 2): src, tgt
    if len(sizes) == 0:
        return []
    if (sizes < 0).any():
        raise ValueError("lengths must be >= 0")
    shuffled = np.random.default_rng([seed, epoch]).permutation(len(sizes))  # (N,)
    # lexsort is stable: equal (tgt, src) lengths keep their shuffled order
    order = shuffled[np.lexsort((sizes[shuffled, 0], sizes[shuffled, 1]))]  # (N,)
    widths = sizes.max(axis=1)[order].tolist()
    bounds = _cut(widths, max_tokens)
    indices = order.tolist()
    batches = [indices[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
    random.Random(f"polyseq-batches:{seed}:{epoch}").shuffle(batches)
    return batches


def length_batches(lengths: Sequence[int], max_tokens: int, max_sentences: int) -> list[list[int]]:
    """Indices of inputs to decode, sorted by length (ties in input order) and cut greedily so that
    count x longest <= max_tokens and count <= max_sentences; an input longer than max_tokens gets
    a batch of its own. Every index appears once."""
    if max_tokens < 1 or max_sentences < 1:
        raise ValueError(f"max_tokens and max_sentences must be >= 1, got {max_tokens}, {max_sentences}")
    if not lengths:
        return []
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    bounds = _cut([lengths[i] for i in order], max_tokens, max_sentences)
    return [order[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]


def _cut(widths: list[int], max_tokens: int, max_items: int | None = None) -> list[int]:
    """Batch boundaries over `widths` (in batch order): greedy, count x widest <= max_tokens and
    count <= max_items."""
    bounds = [0]
    start = widest = 0
    for i, width in enumerate(widths):
        wider = max(widest, width)
        if i > start and ((i - start + 1) * wider > max_tokens or i - start == max_items):
            bounds.append(i)
            start, widest = i, width
        else:
            widest = wider
    bounds.append(len(widths))
    return bounds


def example_lengths(examples: Sequence[Example]) -> np.ndarray:
    """(N, 2): each example's source and target lengths (a store knows them without lists)."""
    if isinstance(examples, ExampleStore):
        return examples.lengths()
    return np.array([(len(e.src), len(e.tgt)) for e in examples], dtype=np.int64).reshape(-1, 2)


class BatchStream:
    """Batches over epochs, forever; `state()` / `load_state()` resume exactly where it was."""

    def __init__(self, examples: Sequence[Example], max_tokens: int, pad_id: int, seed: int):
        if not examples:
            raise ValueError("BatchStream needs at least one example")
        self._examples = examples
        self._lengths = example_lengths(examples)  # (N, 2)
        self._max_tokens = max_tokens
        self._pad_id = pad_id
        self._seed = seed
        self._epoch = 0
        self._position = 0  # batches of this epoch already returned
        self._batches: list[list[int]] = []
        self._batches_epoch = -1
        self._total_tokens = int(self._lengths.sum())

    @property
    def epoch(self) -> int:
        return self._epoch

    def _fingerprint(self) -> dict[str, int]:
        return dict(examples=len(self._lengths), tokens=self._total_tokens,
                    max_tokens=self._max_tokens, seed=self._seed)

    def state(self) -> dict[str, Any]:
        return dict(epoch=self._epoch, position=self._position, **self._fingerprint())

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state()`; ValueError when it belongs to other data or settings."""
        expected = self._fingerprint()
        found = {key: state.get(key) for key in expected}
        if found != expected:
            raise ValueError(
                f"batch state {found} does not match this stream {expected}: resume with the "
                "same data, max_tokens and seed"
            )
        epoch, position = state.get("epoch"), state.get("position")
        if not isinstance(epoch, int) or not isinstance(position, int) or epoch < 0:
            raise ValueError(f"batch state needs integer epoch >= 0 and position, got {state}")
        if not 0 <= position <= len(self._epoch_batches(epoch)):
            raise ValueError(f"batch state position {position} is outside epoch {epoch}")
        self._epoch, self._position = epoch, position

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        if self._batches_epoch != epoch:
            self._batches = token_batches(
                self._lengths, self._max_tokens, seed=self._seed, epoch=epoch
            )
            self._batches_epoch = epoch
        return self._batches

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch:
        return collate([self._examples[i] for i in self._advance()], self._pad_id)

    def skip(self) -> None:
        """Move past the next batch without building it (another process trains on it)."""
        self._advance()

    def _advance(self) -> list[int]:
        """The indices of the next batch; the position moves past it."""
        if self._position >= len(self._epoch_batches(self._epoch)):
            self._epoch, self._position = self._epoch + 1, 0
        indices = self._epoch_batches(self._epoch)[self._position]
        self._position += 1
        return indices
