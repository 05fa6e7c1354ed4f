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

A packed weight is a second copy, held by the model that decodes with it (`PackedWeights`); it is
used only while the parameter holds the values it was packed from: the same storage, unchanged by
autograd's count of in-place writes. Writes that bypass that count (through `.data` or a NumPy view)
are not noticed: after them, lay the model out again (`polyseq.model.layout.for_decoding`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

PACK_ELEMENTS = 1 << 18  # weights at least this large are packed
ONE_ROW_ELEMENTS = 1 << 20  # and used on a single row when at least this large

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


def packing_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


class PackedWeights:
    """Packed copies of a model's float32 CPU weights of `Linear` layers, and of its embedding where
    it is the output layer too (a polyseq model with tied embeddings), that have at least
    `min_elements` elements, for `Product`. The model that decodes with them holds them
    (`Seq2Seq.packed`, see `polyseq.model.layout.for_decoding`); they are freed with it. None
    are made where this build of PyTorch has no oneDNN for this CPU, nor for weights created in
    `torch.inference_mode` (an inference tensor has no version counter: a change to it could not
    be noticed)."""

    def __init__(self, model: nn.Module, min_elements: int = PACK_ELEMENTS):
        self._copies: dict[int, tuple[Tensor, _Packed]] = {}  # id(weight) -> (weight, its copy)
        if not packing_available():
            return
        weights = [module.weight for module in model.modules() if isinstance(module, nn.Linear)]
        embed = getattr(model, "embed", None)
        if isinstance(embed, nn.Embedding) and getattr(model, "output", 0) is None:
            weights.append(embed.weight)
        for weight in weights:
            if (weight.device.type != "cpu" or weight.dtype != torch.float32
                    or weight.numel() < min_elements or weight.is_inference()):
                continue
            try:
                reordered = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), None)
            except RuntimeError:  # oneDNN without kernels for this CPU
                self._copies.clear()
                return
            entry = _Packed(reordered, weight.data_ptr(), weight._version, weight.untyped_storage())
            self._copies[id(weight)] = (weight, entry)

    def __len__(self) -> int:
        return len(self._copies)

    def get(self, weight: Tensor) -> Tensor | None:
        """The packed copy of `weight`, if it has one that still holds its values (a stale one is
        dropped)."""
        found = self._copies.get(id(weight))
        if found is None or found[0] is not weight:
            return None
        entry = found[1]
        if entry.data_ptr != weight.data_ptr() or entry.version != weight._version:
            self._copies.pop(id(weight), None)
            return None
        return entry.weight


class Product:
    """`x (N, in) -> x @ weight.T + bias`, through the packed weight where that is faster (on at
    least `min_rows` rows; by default 1 for weights of ONE_ROW_ELEMENTS, else 2) on float32 states,
    where no gradient is wanted (oneDNN's product has none) and no autocast changes the product's
    dtype. Build one per decoding call: it looks the weight up in `packed` once."""

    def __init__(self, weight: Tensor, bias: Tensor | None, packed: PackedWeights | None = None,
                 min_rows: int | None = None):
        self.transposed, self.bias = weight.t(), bias
        self.packed = None if packed is None else packed.get(weight)
        self.min_rows = min_rows if min_rows is not None else (1 if weight.numel() >= ONE_ROW_ELEMENTS else 2)

    def __call__(self, x: Tensor) -> Tensor:
        if (self.packed is not None and x.shape[0] >= self.min_rows and x.dtype == torch.float32
                and not torch.is_grad_enabled() and not _cpu_autocast()):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        if self.bias is None:
            return torch.mm(x, self.transposed)
        return torch.addmm(self.bias, x, self.transposed)
