"""The native CPU passes: the encoder, the decoder's cached pass over k new tokens per row and the
output layer of a `Seq2Seq`, each one call into polyseq's own C++ kernels (kernels.cpp, built for
this machine at first use by `build`), on the explicit `DecoderCache`.

A small model's pass through PyTorch's modules costs mostly per-operation overhead (a hundred
small calls), not arithmetic; a native pass is one call with its weights packed once, its buffers
reused and its sublayers fused (bias, activation and residual in the products' epilogue). Its
products sum in one fixed order per output, so a token's states and logits have the same bits
whichever other rows and tokens share the pass: greedy and the verification of a draft (aggressive,
speculative) agree exactly.

`native_passes(model)` is the one place that decides: the model's `NativePasses` where the native
passes compute what its modules compute (a float32 CPU `Seq2Seq` of the classes they reproduce, in
evaluation mode, without hooks), else None, with one log line per reason the first time. The
modules stay the reference path for training, GPUs and every other model.
"""

from __future__ import annotations

import ctypes
import logging
import weakref
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules import module as torch_modules

from polyseq.config import Actions
from polyseq.model.native.build import build
from polyseq.model.native.passes import NativeCache, NativePasses
from polyseq.model.transformer import (
    CrossAttention,
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    Residual,
    SelfAttention,
    Seq2Seq,
)

logger = logging.getLogger(__name__)

# The module classes whose arithmetic the native passes reproduce. Any other module (a subclass,
# an adapter, a parametrized or quantized layer) may compute something else, and so may a hook.
_REPRODUCED = frozenset({Seq2Seq, EncoderLayer, DecoderLayer, SelfAttention, CrossAttention, FeedForward,
                         Residual, nn.Linear, nn.LayerNorm, nn.Embedding, nn.Dropout, nn.Identity,
                         nn.ModuleList})

_library: ctypes.CDLL | None = None
_build_error: str | None = None
_said: set[str] = set()  # the reasons already logged
_passes: weakref.WeakKeyDictionary[Seq2Seq, NativePasses] = weakref.WeakKeyDictionary()


def library() -> ctypes.CDLL | None:
    """The native library, built at the first call; None where it cannot be built here."""
    global _library, _build_error
    if _library is None and _build_error is None:
        try:
            _library = _declare(build())
        except (OSError, RuntimeError) as error:  # a BuildError, or no home folder for the cache
            _build_error = str(error)
    return _library


def native_passes(model: Any) -> NativePasses | None:
    """`model`'s native passes, laid out at the first call and again after its weights change;
    None (and one log line per reason) where they would not compute what its modules compute."""
    reason, weights = _walk(model)
    if reason is None:
        signature = _signature(weights)
        passes = _passes.get(model)
        if passes is not None and passes.signature == signature:
            return passes
        reason = _unpackable(model, weights)
    if reason is not None:
        if reason not in _said:
            _said.add(reason)
            logger.warning("polyseq decodes on the module path: %s", reason)
        return None
    assert _library is not None
    passes = _passes[model] = NativePasses(model, _library, signature)
    return passes


def _signature(weights: list[Tensor]) -> tuple[tuple[int, int], ...]:
    """Where each weight's values are and how often they were written in place (-1: not counted,
    for inference tensors). Writes through .data, NumPy or a fused optimizer step are not counted
    (docs/decoding.md says so): a content checksum on every call would cost more than it guards."""
    try:
        return tuple((w.data_ptr(), w._version) for w in weights)
    except RuntimeError:  # an inference tensor has no version counter
        return tuple((w.data_ptr(), -1 if w.is_inference() else w._version) for w in weights)


def uncovered(model: Any) -> str | None:
    """Why the native passes would not compute what `model`'s modules compute, or None."""
    reason, weights = _walk(model)
    return reason or _unpackable(model, weights)


def _walk(model: Any) -> tuple[str | None, list[Tensor]]:
    """What can change between two decoding calls without changing a weight, checked in one walk
    over the modules (why the native passes would not reproduce them, or None), and the weights.
    It runs before every decoding call, so it reads the modules' own dictionaries:
    `model.modules()`, `model.parameters()` and nn.Module's attribute lookup cost several times
    as much."""
    if not isinstance(model, Seq2Seq):
        return f"{type(model).__name__} is not a polyseq Seq2Seq", []
    if model.config.actions is not Actions.NONE:
        return "a Sequence-to-Action model (its pointer has no native pass)", []
    if torch_modules._global_forward_hooks or torch_modules._global_forward_pre_hooks:
        return "forward hooks are registered for every module (register_module_forward_hook)", []
    reproduced = _REPRODUCED | {type(model.target_language)}
    weights: list[Tensor | None] = []
    modules: list[nn.Module | None] = [model]
    while modules:
        module = modules.pop()
        if module is None:  # an optional submodule left out
            continue
        state = module.__dict__
        if type(module) not in reproduced:
            return f"it holds a {type(module).__name__}, which the native passes do not reproduce", []
        if state["training"]:
            return "the model is in training mode", []
        if state["_forward_hooks"] or state["_forward_pre_hooks"]:
            return "it has forward hooks", []
        weights.extend(state["_parameters"].values())
        modules.extend(state["_modules"].values())
    return None, [w for w in weights if w is not None]


def _unpackable(model: Seq2Seq, weights: list[Tensor]) -> str | None:
    """Why `model`'s weights cannot be packed for the native passes (checked when they change)."""
    if any(w.device.type != "cpu" or w.dtype != torch.float32 for w in weights):
        return "its weights are not float32 on the CPU"
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    if any(n.weight is None or n.bias is None or n.eps != norms[0].eps for n in norms):
        return "its layer norms differ in eps or lack an affine weight and bias"
    if library() is None:
        return f"the native library could not be built: {_build_error}"
    return None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    pointer, size, integer = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.polyseq_native_new.restype = pointer
    lib.polyseq_native_new.argtypes = [pointer, pointer, pointer]
    lib.polyseq_native_free.argtypes = [pointer]
    lib.polyseq_native_free.restype = None
    lib.polyseq_native_encode.argtypes = [pointer, pointer, size, size, size, pointer, integer]
    lib.polyseq_native_cross.argtypes = [pointer, pointer, size, size, pointer, pointer, integer]
    lib.polyseq_native_decode.argtypes = [pointer, pointer, size, size, pointer, pointer, pointer, pointer,
                                          size, pointer, pointer, pointer, size, pointer, pointer, integer,
                                          pointer, integer]
    lib.polyseq_native_reorder.argtypes = [pointer, pointer, size, pointer, size, size, size, size, size,
                                           integer]
    lib.polyseq_native_reorder.restype = None
    lib.polyseq_native_project.argtypes = [pointer, pointer, size, pointer, integer]
    lib.polyseq_native_choose.argtypes = [pointer, pointer, size, pointer, pointer, integer]
    lib.polyseq_native_top.argtypes = [pointer, pointer, size, size, pointer, pointer, integer]
    for function in (lib.polyseq_native_encode, lib.polyseq_native_cross, lib.polyseq_native_decode,
                     lib.polyseq_native_project, lib.polyseq_native_choose, lib.polyseq_native_top):
        function.restype = integer
    return lib


__all__ = ["NativeCache", "NativePasses", "library", "native_passes", "uncovered"]
