"""Linear products on a CPU through oneDNN, with weights reordered once into its blocked layout.

On this project's CPU, PyTorch's matrix product (MKL) multiplies a weight by 2 to 4 rows of states
in about the time of that many one-row products, and decoding makes such products all the time
(beam search, verifying a draft, a small batch's last rows). oneDNN's linear on a weight packed
once into its layout costs about one row's time for them: for a 192 x 8000 output layer out of
cache, 247 against 721 us on 4 rows, 614 against 1271 us on 32 (`bench/results/layout.json`).
But each call costs about 80 us at least, against 30-45 us for PyTorch's product of a small
weight. So weights under PACK_ELEMENTS stay unpacked (in a sweep of shapes, oneDNN drew level at
256 x 1024 and led by 1.3-2x on 4 to 32 rows from 384 x 1536), and a single row uses the packed
weight only from ONE_ROW_ELEMENTS, where the two cost about the same.

A packed weight is a second copy, kept beside its parameter (`pack_weights`); it is used only
while the parameter holds the values it was packed from: the same storage, unchanged by autograd's
count of in-place writes. Writes that bypass that count (through `.data` or a NumPy view) are not
noticed: after them, `unpack_weights` and `pack_weights` again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary

PACK_ELEMENTS = 1 << 18  # weights at least this large are packed
ONE_ROW_ELEMENTS = 1 << 20  # and used on a single row when at least this large

ModelType = TypeVar("ModelType", bound=nn.Module)

_cpu_autocast: Callable[[], bool]
try:
    torch.is_autocast_enabled("cpu")
    _cpu_autocast = functools.partial(torch.is_autocast_enabled, "cpu")
except TypeError:  # PyTorch before 2.4: one function per device
    _cpu_autocast = torch.is_autocast_cpu_enabled


@dataclass(frozen=True)
class _Packed:
    weight: Tensor  # oneDNN's blocked layout
    data_ptr: int  # where the parameter's values were when it was packed, and their version
    version: int
    storage: torch.UntypedStorage  # held, so that no new storage can take that address meanwhile


_PACKED = WeakIdKeyDictionary()  # parameter -> _Packed, for as long as the parameter lives


def packing_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


def pack_weights(model: ModelType, min_elements: int = PACK_ELEMENTS) -> ModelType:
    """Pack the float32 CPU weights of `model`'s `Linear` layers, and of its embedding where it is
    the output layer too (a polyseq model with tied embeddings), that have at least `min_elements`
    elements, for `Product`. Returns `model`; where this build of PyTorch has no oneDNN for this
    CPU, it stays unpacked, and so do weights created in `torch.inference_mode`."""
    if not packing_available():
        return model
    weights = [module.weight for module in model.modules() if isinstance(module, nn.Linear)]
    embed = getattr(model, "embed", None)
    if isinstance(embed, nn.Embedding) and getattr(model, "output", 0) is None:
        weights.append(embed.weight)
    for weight in weights:
        # an inference tensor has no version counter: a change to it could not be noticed
        if (weight.device.type == "cpu" and weight.dtype == torch.float32 and weight.numel() >= min_elements
                and not weight.is_inference() and packed(weight) is None):
            try:
                reordered = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), None)
            except RuntimeError:  # oneDNN without kernels for this CPU
                return model
            _PACKED[weight] = _Packed(reordered, weight.data_ptr(), weight._version, weight.untyped_storage())
    return model


def unpack_weights(model: ModelType) -> ModelType:
    """Drop the packed copies of `model`'s weights (their memory is freed); returns `model`."""
    for parameter in model.parameters():
        _PACKED.pop(parameter, None)
    return model


def packed(weight: Tensor) -> Tensor | None:
    """The packed copy of `weight`, if it has one that still holds its values (a stale one is
    dropped)."""
    entry = _PACKED.get(weight)
    if entry is None:
        return None
    if entry.data_ptr != weight.data_ptr() or entry.version != weight._version:
        _PACKED.pop(weight, None)  # another thread may have dropped it already
        return None
    return entry.weight


class Product:
    """`x (N, in) -> x @ weight.T + bias`, through the packed weight where that is faster (on at
    least `min_rows` rows; by default 1 for weights of ONE_ROW_ELEMENTS, else 2) on float32 states,
    where no gradient is wanted (oneDNN's product has none) and no autocast changes the product's
    dtype. Build one per decoding call: it looks the packed weight up once."""

    def __init__(self, weight: Tensor, bias: Tensor | None, min_rows: int | None = None):
        self.transposed, self.bias = weight.t(), bias
        self.packed = packed(weight)
        self.min_rows = min_rows if min_rows is not None else (1 if weight.numel() >= ONE_ROW_ELEMENTS else 2)

    def __call__(self, x: Tensor) -> Tensor:
        if (self.packed is not None and x.shape[0] >= self.min_rows and x.dtype == torch.float32
                and not torch.is_grad_enabled() and not _cpu_autocast()):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        if self.bias is None:
            return torch.mm(x, self.transposed)
        return torch.addmm(self.bias, x, self.transposed)
