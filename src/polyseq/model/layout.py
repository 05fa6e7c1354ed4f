"""Weights laid out for decoding on a CPU.

PyTorch stores a linear layer's weight output-major, (out, in) row by row. Decoding multiplies it
by one or a few rows of states at a time, and on a CPU that product reads a weight that is not in
cache about 3x faster from an input-major copy, (in, out) row by row: 0.24 against 0.77 ms for a
192 x 8000 output layer on one row (`bench/results/layout.json`). Inside a decoding run the other
layers' weights pass through the caches between two uses of a weight. A layer that narrows (more
inputs than outputs, like the feed-forward's second) is the exception: on one row it was faster
in PyTorch's order, so it keeps it. `for_decoding` adds packed copies of the large weights
(`polyseq.model.packed`)."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from polyseq.model.packed import pack_weights

ModelType = TypeVar("ModelType", bound=nn.Module)


def input_major(model: ModelType) -> ModelType:
    """Store `model`'s CPU `Linear` and `Embedding` weights that do not narrow input-major, in
    place: the same parameters with the same values, only in another memory order (each weight
    becomes a transposed view of an input-major tensor). Checkpoints save them in the usual order.
    Weights on other devices keep theirs: the gain was measured on a CPU. Returns `model`."""
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, (nn.Linear, nn.Embedding)) or parametrize.is_parametrized(module):
                continue
            weight = module.weight
            widens = weight.dim() == 2 and weight.shape[0] >= weight.shape[1]
            if widens and weight.device.type == "cpu" and weight.is_contiguous():
                weight.data = weight.data.t().contiguous().t()
    return model


def for_decoding(model: ModelType) -> ModelType:
    """A model's weights as decoding on a CPU reads them fastest: `input_major`, then a packed
    copy of the large ones (`pack_weights`). What the Translator does to its models."""
    return pack_weights(input_major(model))
