"""Weights laid out for decoding on a CPU.

PyTorch stores a linear layer's weight output-major, (out, in) row by row. Decoding multiplies it
by one or a few rows of states at a time, and on a CPU that product reads a weight that is not in
cache about 3x faster from an input-major copy, (in, out) row by row: 0.24 against 0.77 ms for a
192 x 8000 output layer on one row (`bench/results/layout.json`). Inside a decoding run the other
layers' weights pass through the caches between two uses of a weight. A layer that narrows (more
inputs than outputs, like the feed-forward's second) is the exception: on one row it was faster
in PyTorch's order, so it keeps it. `for_decoding` adds packed copies of the large weights
(`polyseq.model.packed`), which the model holds."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from polyseq.model.packed import PackedWeights
from polyseq.model.transformer import Seq2Seq


def input_major(model: nn.Module) -> nn.Module:
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


def for_decoding(model: Seq2Seq, *, in_place: bool = False) -> Seq2Seq:
    """A polyseq model (`Seq2Seq`) laid out as decoding on a CPU reads it fastest: `input_major`,
    with packed copies of its large weights in `model.packed`. A copy of `model` by default, which
    is left as it is; with `in_place`, `model` itself (for a model nobody else holds, such as one
    just loaded). A model already laid out is returned as it is."""
    if getattr(model, "packed", None) is not None:
        return model
    laid = model if in_place else copy.deepcopy(model)
    input_major(laid)
    laid.packed = PackedWeights(laid)
    return laid
