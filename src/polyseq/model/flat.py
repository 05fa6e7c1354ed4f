"""The decoder's cached step as flat tensor operations, with the per-call overhead taken out.

A small model's decoder pass on a CPU costs mostly the framework's overhead per operation
(module calls, shape handling, masks), not arithmetic. Decoding takes many such passes, so
`FlatDecoder` runs `Seq2Seq.decode_hidden` as a flat sequence of tensor operations on weights
gathered once per decoding call: the same arithmetic on the same `DecoderCache`, without the
module calls, with plain slices when every row is at one length and masks only where rows are
at different lengths or read several tokens at once. The states go through `Seq2Seq.project`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from polyseq.config import NormPlacement
from polyseq.model.cache import DecoderCache


class FlatDecoder:
    """`decode_hidden` of an evaluation-mode `Seq2Seq`. It holds views of the model's parameters,
    not copies: build one per decoding call, after any `to()`."""

    def __init__(self, model: Any):
        if model.training:
            raise ValueError("FlatDecoder runs evaluation-mode models only (no dropout)")
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

    def __call__(self, tokens: Tensor, cache: DecoderCache) -> Tensor:
        """States (B, k, D) for k new tokens per row (B, k), which continue each row's cached
        prefix and enter the cache."""
        batch, k = tokens.shape
        step = _Step(cache, k, self.heads)
        if step.total > self.max_positions:
            raise ValueError(f"sequence of {step.total} tokens exceeds the model's "
                             f"max_positions={self.max_positions}")
        cache.ensure_capacity(step.total)
        x = self.embedding[tokens]
        if self.scale != 1.0:
            x = x * self.scale
        x = x + (self.positions[step.start : step.total] if step.uniform else self.positions[step.where])
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        x = x.reshape(batch * k, self.dim)
        for index, layer in enumerate(self.layers):
            x = self._sublayer(x, layer.self_norm, layer.self_attention, step, index)
            x = self._sublayer(x, layer.cross_norm, layer.cross_attention, step, index)
            x = self._sublayer(x, layer.ffn_norm, layer.feed_forward)
        cache.advance(k)
        return x.view(batch, k, self.dim)

    def _sublayer(self, x: Tensor, norm: Callable[[Tensor], Tensor], sublayer: Callable[..., Tensor],
                  *arguments: Any) -> Tensor:
        return x + sublayer(norm(x), *arguments) if self.pre else norm(x + sublayer(x, *arguments))


class _Step:
    """What every layer of one pass shares: the cache, where each row's new tokens go, the masks."""

    def __init__(self, cache: DecoderCache, k: int, heads: int):
        lengths = cache.lengths
        self.cache, self.k, self.heads = cache, k, heads
        batch, device = lengths.shape[0], lengths.device
        low, high = int(lengths.min()), int(lengths.max())
        self.uniform, self.start, self.total = low == high, low, high + k
        # new token i of row b sees key j when j <= lengths[b] + i; one token per row at one
        # length sees every cached key and needs no mask (the common step, kept cheapest)
        self.self_mask: Tensor | None = None
        if k > 1 or not self.uniform:
            self.where = lengths[:, None] + torch.arange(k, device=device)  # (B, k) new positions
            keys = torch.arange(self.total, device=device)
            self.self_mask = (keys <= self.where[:, :, None])[:, None]  # (B, 1, k, total)
        if not self.uniform:
            self.rows = torch.arange(batch, device=device)[:, None]
        source = cache.source_mask
        self.cross_mask = None if bool(source.all()) else source[:, None, None, :]

    def write(self, keys: Tensor, values: Tensor, new_keys: Tensor, new_values: Tensor) -> None:
        """Store the new tokens' keys and values (B, k, H, Dh) at their positions."""
        if self.uniform:
            keys[:, :, self.start : self.total] = new_keys.transpose(1, 2)
            values[:, :, self.start : self.total] = new_values.transpose(1, 2)
        else:
            keys[self.rows, :, self.where] = new_keys
            values[self.rows, :, self.where] = new_values


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
        batch = h.shape[0] // step.k
        keys, values = step.cache.self_keys[index], step.cache.self_values[index]
        qkv = torch.addmm(self.qkv_bias, h, self.qkv).view(batch, step.k, 3, step.heads, -1)
        step.write(keys, values, qkv[:, :, 1], qkv[:, :, 2])
        y = F.scaled_dot_product_attention(qkv[:, :, 0].transpose(1, 2), keys[:, :, : step.total],
                                           values[:, :, : step.total], attn_mask=step.self_mask)
        return torch.addmm(self.out_bias, y.transpose(1, 2).reshape(h.shape), self.out)

    def cross_attention(self, h: Tensor, step: _Step, index: int) -> Tensor:
        batch = h.shape[0] // step.k
        q = torch.addmm(self.query_bias, h, self.query).view(batch, step.k, step.heads, -1).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, step.cache.cross_keys[index], step.cache.cross_values[index],
                                           attn_mask=step.cross_mask)
        return torch.addmm(self.cross_out_bias, y.transpose(1, 2).reshape(h.shape), self.cross_out)

    def feed_forward(self, h: Tensor) -> Tensor:
        hidden = self.activation(torch.addmm(self.inner_bias, h, self.inner))
        return torch.addmm(self.outer_bias, hidden, self.outer)


def _layer_norm(norm: torch.nn.LayerNorm) -> Any:
    shape, weight, bias, eps = norm.normalized_shape, norm.weight, norm.bias, norm.eps
    return lambda x: F.layer_norm(x, shape, weight, bias, eps)
