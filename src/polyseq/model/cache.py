"""DecoderCache: the decoder's incremental state, explicit and owned by the decoding strategy.

Self-attention keys/values are preallocated per layer and written in place; cross-attention
keys/values are computed once from the encoder memory. Every row keeps its own length, so a batched
strategy can accept a different number of draft tokens per row and roll back with `truncate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class DecoderCache:
    self_keys: list[Tensor]  # per layer (B, H, capacity, Dh)
    self_values: list[Tensor]  # per layer (B, H, capacity, Dh)
    cross_keys: list[Tensor]  # per layer (B, H, S, Dh)
    cross_values: list[Tensor]  # per layer (B, H, S, Dh)
    source_mask: Tensor  # (B, S) True at real source tokens
    lengths: Tensor  # (B,) long: decoder tokens already cached per row
    language: Tensor | None = None  # (B, D) target-language vectors, for models that add them

    @property
    def batch_size(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def capacity(self) -> int:
        return int(self.self_keys[0].shape[2])

    def max_length(self) -> int:
        return int(self.lengths.max()) if self.batch_size else 0

    def uniform_length(self) -> int | None:
        """The common length when every row holds the same number of tokens, else None."""
        if self.batch_size == 0:
            return 0
        low, high = int(self.lengths.min()), int(self.lengths.max())
        return low if low == high else None

    def ensure_capacity(self, needed: int) -> None:
        """Grow the preallocated self-attention buffers (doubling) to hold `needed` positions."""
        if needed <= self.capacity:
            return
        new_capacity = max(needed, 2 * self.capacity)
        for buffers in (self.self_keys, self.self_values):
            for layer, old in enumerate(buffers):
                grown = old.new_zeros(*old.shape[:2], new_capacity, old.shape[3])
                grown[:, :, : old.shape[2]] = old
                buffers[layer] = grown

    def write(self, layer: int, keys: Tensor, values: Tensor, start: int | None) -> None:
        """Store new keys/values (B, H, k, Dh) at each row's current length (not yet advanced)."""
        k = keys.shape[2]
        if start is not None:  # every row at the same length: a plain slice write
            self.self_keys[layer][:, :, start : start + k] = keys
            self.self_values[layer][:, :, start : start + k] = values
            return
        positions = self.lengths[:, None] + torch.arange(k, device=keys.device)  # (B, k)
        index = positions[:, None, :, None].expand_as(keys)
        self.self_keys[layer].scatter_(2, index, keys)
        self.self_values[layer].scatter_(2, index, values)

    def advance(self, k: int) -> None:
        self.lengths = self.lengths + k

    def truncate(self, length: int | Tensor) -> None:
        """Roll rows back to `length` tokens (an int for all rows, or a (B,) tensor per row)."""
        target = torch.as_tensor(length, dtype=self.lengths.dtype, device=self.lengths.device)
        if bool((target > self.lengths).any()) or bool((target < 0).any()):
            raise ValueError("truncate can only shorten the cache to a length >= 0")
        self.lengths = target.expand_as(self.lengths).clone()

    def reorder(self, index: Tensor) -> None:
        """Keep rows `index` (B',) in that order: beam reordering, or dropping finished rows."""
        for buffers in (self.self_keys, self.self_values, self.cross_keys, self.cross_values):
            for layer, tensor in enumerate(buffers):
                buffers[layer] = tensor.index_select(0, index)
        self.source_mask = self.source_mask.index_select(0, index)
        self.lengths = self.lengths.index_select(0, index)
        if self.language is not None:
            self.language = self.language.index_select(0, index)
