"""One decoder step of one token per row, with the per-call overhead taken out.

A small model's decoder step on a CPU costs mostly the framework's overhead per operation
(module calls, shape handling, masks), not arithmetic. Greedy search, beam search and draft
models take one token per row per step, so `OneTokenDecoder` runs `Seq2Seq.decode_hidden` for
the case k = 1 as a flat sequence of tensor operations on weights gathered once per decoding
call: the same arithmetic on the same `DecoderCache`, without the module calls and with only the
masking that rows at different lengths need. The states go through `Seq2Seq.project` as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from polyseq.config import NormPlacement
from polyseq.model.cache import DecoderCache


class OneTokenDecoder:
    """`decode_hidden` for one new token per row of an evaluation-mode `Seq2Seq`. It holds views
    of the model's parameters, not copies: build one per decoding call, after any `to()`."""

    def __init__(self, model: Any):
        if model.training:
            raise ValueError("OneTokenDecoder runs evaluation-mode models only (no dropout)")
        config = model.config
        self.heads, self.dim = config.heads, config.d_model
        self.pre = config.norm is NormPlacement.PRE
        self.scale = model.embed_scale
        self.embedding = model.embed.weight
        table = model.positions if model.decoder_positions is None else model.decoder_positions.weight
        self.positions = table[config.position_offset :]  # row p: position p
        self.max_positions = config.max_positions
        self.embedding_norm = model.decoder_embedding_norm
        self.layers = [_LayerWeights(layer) for layer in model.decoders]

    def __call__(self, tokens: Tensor, cache: DecoderCache, advance: Tensor | None = None) -> Tensor:
        """States (B, D) after one token per row (B,), each at its row's cached length; the
        token's keys/values enter the cache. Rows where `advance` (B,) is False keep their
        length: their write is overwritten by their next token and their state is meaningless."""
        lengths = cache.lengths
        total = int(lengths.max()) + 1
        if total > self.max_positions:
            raise ValueError(f"sequence of {total} tokens exceeds the model's "
                             f"max_positions={self.max_positions}")
        cache.ensure_capacity(total)
        x = self.embedding[tokens]
        if self.scale != 1.0:
            x = x * self.scale
        x = x + self.positions[lengths]  # (B, D)
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        step = _Step(cache, lengths, total, self.heads)
        for index, layer in enumerate(self.layers):
            x = self._sublayer(x, layer.self_norm, layer.self_attention, step, index)
            x = self._sublayer(x, layer.cross_norm, layer.cross_attention, step, index)
            x = self._sublayer(x, layer.ffn_norm, layer.feed_forward)
        cache.lengths = lengths + (1 if advance is None else advance.to(lengths.dtype))
        return x

    def _sublayer(self, x: Tensor, norm: Callable[[Tensor], Tensor], sublayer: Callable[..., Tensor],
                  *arguments: Any) -> Tensor:
        return x + sublayer(norm(x), *arguments) if self.pre else norm(x + sublayer(x, *arguments))


class _Step:
    """What every layer of one step shares: the cache, where each row writes, the masks."""

    def __init__(self, cache: DecoderCache, lengths: Tensor, total: int, heads: int):
        self.cache, self.lengths, self.total, self.heads = cache, lengths, total, heads
        batch, device = lengths.shape[0], lengths.device
        self.rows = torch.arange(batch, device=device)
        self.self_mask: Tensor | None = None  # rows at one length see every cached position
        if batch > 1 and not bool((lengths == lengths[0]).all()):
            visible = torch.arange(total, device=device) <= lengths[:, None]  # (B, total)
            self.self_mask = visible[:, None, None]
        source = cache.source_mask
        self.cross_mask = None if bool(source.all()) else source[:, None, None, :]


class _LayerWeights:
    """One decoder layer's weights, transposed for `addmm`, and its norms and activation."""

    def __init__(self, layer: Any):
        attention, cross, ffn = layer.self_attention, layer.cross_attention, layer.ffn
        self.qkv, self.qkv_bias = attention.qkv.weight.t(), attention.qkv.bias
        self.out, self.out_bias = attention.out.weight.t(), attention.out.bias
        self.query, self.query_bias = cross.q.weight.t(), cross.q.bias
        self.cross_out, self.cross_out_bias = cross.out.weight.t(), cross.out.bias
        self.inner, self.inner_bias = ffn.inner.weight.t(), ffn.inner.bias
        self.outer, self.outer_bias = ffn.outer.weight.t(), ffn.outer.bias
        self.activation = ffn.activation
        norms = (layer.self_residual.norm, layer.cross_residual.norm, layer.ffn_residual.norm)
        self.self_norm, self.cross_norm, self.ffn_norm = (_layer_norm(norm) for norm in norms)

    def self_attention(self, h: Tensor, step: _Step, index: int) -> Tensor:
        batch = h.shape[0]
        keys, values = step.cache.self_keys[index], step.cache.self_values[index]
        qkv = torch.addmm(self.qkv_bias, h, self.qkv).view(batch, 3, step.heads, -1)
        keys[step.rows, :, step.lengths] = qkv[:, 1]
        values[step.rows, :, step.lengths] = qkv[:, 2]
        y = F.scaled_dot_product_attention(qkv[:, 0, :, None], keys[:, :, : step.total],
                                           values[:, :, : step.total], attn_mask=step.self_mask)
        return torch.addmm(self.out_bias, y.reshape(batch, -1), self.out)

    def cross_attention(self, h: Tensor, step: _Step, index: int) -> Tensor:
        batch = h.shape[0]
        q = torch.addmm(self.query_bias, h, self.query).view(batch, step.heads, 1, -1)
        y = F.scaled_dot_product_attention(q, step.cache.cross_keys[index], step.cache.cross_values[index],
                                           attn_mask=step.cross_mask)
        return torch.addmm(self.cross_out_bias, y.reshape(batch, -1), self.cross_out)

    def feed_forward(self, h: Tensor) -> Tensor:
        hidden = self.activation(torch.addmm(self.inner_bias, h, self.inner))
        return torch.addmm(self.outer_bias, hidden, self.outer)


def _layer_norm(norm: torch.nn.LayerNorm) -> Any:
    shape, weight, bias, eps = norm.normalized_shape, norm.weight, norm.bias, norm.eps
    return lambda x: F.layer_norm(x, shape, weight, bias, eps)
