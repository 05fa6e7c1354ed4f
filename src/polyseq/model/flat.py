"""The encoder and the decoder's cached step as flat tensor operations, with the per-call
overhead taken out.

A small model's pass on a CPU costs mostly the framework's overhead per operation (module calls,
shape handling, masks), not arithmetic. Decoding takes many such passes, so `FlatDecoder` runs
`Seq2Seq.init_cache`, `Seq2Seq.decode_hidden` and `Seq2Seq.project`, and `FlatEncoder` runs
`Seq2Seq.encode`, as flat sequences of tensor operations on weights gathered once per decoding
call: the same arithmetic on the same `Memory` and `DecoderCache`, without the module calls, with
plain slices when every row is at one length and masks only where rows are at different lengths,
read several tokens at once, or have padding. Products go through `Product`, which uses a weight's
packed copy where the model holds one (`Seq2Seq.packed`): the same product, summed in another order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polyseq.config import NormPlacement
from polyseq.model.cache import DecoderCache
from polyseq.model.packed import PackedWeights, Product
from polyseq.model.transformer import (
    CrossAttention,
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    Memory,
    Residual,
    SelfAttention,
    Seq2Seq,
)

# A pass runs its products on the real tokens alone when they are at most this share of its
# (B, k) block: packing and unpacking copy the states around each attention, which costs about
# what the products save at nine real tokens in ten (bench/results/ragged.json: x1.46 faster at
# 55% real tokens, x1.43 at 73%, x1.02 at 90%, x0.97 at 93%).
PACK_BELOW = 0.85

# The module classes whose arithmetic flat passes reproduce. Any other module (a subclass, an
# adapter, a parametrized or quantized layer) may compute something else, and so may a hook.
_REPRODUCED = frozenset({Seq2Seq, EncoderLayer, DecoderLayer, SelfAttention, CrossAttention, FeedForward,
                         Residual, nn.Linear, nn.LayerNorm, nn.Embedding, nn.Dropout, nn.Identity,
                         nn.ModuleList})


def runs_flat(model: Any) -> bool:
    """Whether flat passes compute what `model`'s modules compute: a polyseq model made only of
    the module classes they reproduce, every one in evaluation mode, without forward hooks."""
    if not isinstance(model, Seq2Seq):
        return False
    modules: list[nn.Module | None] = [model]
    while modules:  # a plain walk: `model.modules()` costs four times as much, on every call
        module = modules.pop()
        if module is None:  # an optional submodule left out
            continue
        if (type(module) not in _REPRODUCED or module.training or module._forward_hooks
                or module._forward_pre_hooks):
            return False
        modules.extend(module._modules.values())
    return True


def _evaluating(model: Any) -> None:
    if model.training:
        raise ValueError("flat passes run evaluation-mode models only (no dropout)")


class FlatEncoder:
    """`encode` of an evaluation-mode `Seq2Seq`, on views of its parameters: build one per
    decoding call, after any `to()`."""

    def __init__(self, model: Any):
        _evaluating(model)
        self.pad_id, self.pre = model.config.pad_id, model.config.norm is NormPlacement.PRE
        self.embed = _Embedding(model, model.encoder_positions, model.encoder_embedding_norm)
        self.final_norm = model.encoder_norm
        self.layers = [_EncoderLayerWeights(layer, model.packed) for layer in model.encoder_layers]

    def __call__(self, src: Tensor) -> Memory:
        """src (B, S) right-padded token ids -> Memory with states (B, S, D)."""
        batch, length = src.shape
        self.embed.check(length)
        real = src != self.pad_id  # (B, S)
        # without padding there is nothing to hide
        mask = None if bool(real.all()) else _additive(real[:, None, None, :], self.embed.weight.dtype)
        x = self.embed(src, slice(0, length)).reshape(batch * length, -1)
        for layer in self.layers:
            x = _residual(self.pre, x, layer.attention_norm, layer.self_attention, (batch, length), mask)
            x = _residual(self.pre, x, layer.ffn_norm, layer.feed_forward)
        return Memory(self.final_norm(x.view(batch, length, -1)), real)


class FlatDecoder:
    """`decode_hidden` of an evaluation-mode `Seq2Seq`. It holds views of the model's parameters,
    not copies: build one per decoding call, after any `to()`."""

    def __init__(self, model: Any):
        _evaluating(model)
        config = model.config
        self.heads, self.dim = config.heads, config.d_model
        self.pre = config.norm is NormPlacement.PRE
        self.embed = _Embedding(model, model.decoder_positions, model.decoder_embedding_norm)
        self.layers = [_LayerWeights(layer, model.packed) for layer in model.decoders]
        norm = model.decoder_norm
        self.output_norm = _layer_norm(norm) if isinstance(norm, nn.LayerNorm) else (lambda x: x)
        output = model.embed if model.output is None else model.output
        self.output = Product(output.weight, model.output_bias, model.packed)
        self.cross: tuple[Tensor, Tensor | None] | None = None  # a source mask and its additive mask

    def _cross_mask(self, cache: DecoderCache) -> Tensor | None:
        """The additive cross-attention mask (None without padding), made again only when the
        cache's source mask is another tensor (after `reorder`), not on every pass."""
        source = cache.source_mask
        if self.cross is None or self.cross[0] is not source:
            dtype = cache.self_keys[0].dtype
            mask = None if bool(source.all()) else _additive(source[:, None, None, :], dtype)
            self.cross = (source, mask)
        return self.cross[1]

    def project(self, states: Tensor) -> Tensor:
        """`Seq2Seq.project`: decoder states (..., D) -> logits (..., V)."""
        x = self.output_norm(states)
        return self.output(x.reshape(-1, self.dim)).view(*x.shape[:-1], -1)

    def init_cache(self, memory: Memory, capacity: int = 64) -> DecoderCache:
        """What `Seq2Seq.init_cache` returns: cross-attention keys/values, empty self K/V."""
        states = memory.states
        batch, length = states.shape[:2]
        flat = states.reshape(batch * length, self.dim)
        keys, values = [], []
        for layer in self.layers:
            kv = layer.kv(flat).view(batch, length, 2, self.heads, -1)
            k, v = kv.permute(2, 0, 3, 1, 4)  # (B, H, S, Dh) each
            keys.append(k)
            values.append(v)
        shape = (batch, self.heads, capacity, self.dim // self.heads)
        return DecoderCache(
            self_keys=[states.new_zeros(shape) for _ in self.layers],
            self_values=[states.new_zeros(shape) for _ in self.layers], cross_keys=keys,
            cross_values=values, source_mask=memory.mask,
            lengths=torch.zeros(batch, dtype=torch.long, device=states.device),
        )

    def __call__(self, tokens: Tensor, cache: DecoderCache, widths: Sequence[int] | None = None) -> Tensor:
        """States (B, k, D) for k new tokens per row (B, k), which continue each row's cached
        prefix and enter the cache. With `widths`, row b's first widths[b] tokens are real and the
        rest padding, whose states are zeros (and whose keys and values the caller truncates)."""
        batch, k = tokens.shape
        step = _Step(cache, k, self.heads, self._cross_mask(cache), widths)
        self.embed.check(step.total)
        cache.ensure_capacity(step.total)
        x = self.embed(tokens, slice(step.start, step.total) if step.uniform else step.where)
        x = step.pack(x.reshape(batch * k, self.dim))
        for index, layer in enumerate(self.layers):
            x = _residual(self.pre, x, layer.self_norm, layer.self_attention, step, index)
            x = _residual(self.pre, x, layer.cross_norm, layer.cross_attention, step, index)
            x = _residual(self.pre, x, layer.ffn_norm, layer.feed_forward)
        cache.advance(k)
        return step.unpack(x).view(batch, k, self.dim)


class _Embedding:
    """One side's token embeddings, scaled, plus its positions, then its optional norm."""

    def __init__(self, model: Any, learned_positions: Any, norm: Any):
        config = model.config
        self.weight, self.scale, self.norm = model.embed.weight, model.embed_scale, norm
        table = model.positions if learned_positions is None else learned_positions.weight
        self.positions = table[config.position_offset :]  # row p: position p
        self.max_positions = config.max_positions

    def check(self, length: int) -> None:
        if length > self.max_positions:
            raise ValueError(f"sequence of {length} tokens exceeds the model's "
                             f"max_positions={self.max_positions}")

    def __call__(self, tokens: Tensor, positions: slice | Tensor) -> Tensor:
        """(B, T) tokens at `positions`: a slice shared by every row, or (B, T) per row."""
        x = self.weight[tokens]
        if self.scale != 1.0:
            x = x * self.scale
        x = x + self.positions[positions]
        return x if self.norm is None else self.norm(x)


def _residual(pre: bool, x: Tensor, norm: Callable[[Tensor], Tensor], sublayer: Callable[..., Tensor],
              *arguments: Any) -> Tensor:
    """A sublayer with its residual connection and its layer norm, before or after."""
    return x + sublayer(norm(x), *arguments) if pre else norm(x + sublayer(x, *arguments))


class _Step:
    """What every layer of one pass shares: the cache, where each row's new tokens go, the masks,
    and which of the (B, k) positions are real tokens.

    Rows of a verifying pass carry drafts of different lengths, padded to the longest. Where
    padding is a large part of the block, the products (most of a pass's arithmetic) run on the
    real tokens alone, packed; only attention, which needs the (B, k) layout, sees the padding."""

    def __init__(self, cache: DecoderCache, k: int, heads: int, cross_mask: Tensor | None,
                 widths: Sequence[int] | None = None):
        lengths = cache.lengths
        self.cache, self.k, self.heads = cache, k, heads
        batch, device, dtype = lengths.shape[0], lengths.device, cache.self_keys[0].dtype
        self.batch = batch
        self.real: Tensor | None = None  # (N,) indices of the real tokens in the (B * k) block
        if widths is not None and sum(widths) <= PACK_BELOW * batch * k:
            real = torch.arange(k)[None, :] < torch.tensor(widths)[:, None]  # (B, k)
            self.real = real.view(-1).nonzero()[:, 0].to(device)
        low, high = (int(bound) for bound in lengths.aminmax())
        self.uniform, self.start, self.total = low == high, low, high + k
        # new token i of row b sees key j when j <= lengths[b] + i; one token per row at one
        # length sees every cached key and needs no mask (the common step, kept cheapest)
        self.self_mask: Tensor | None = None
        if self.uniform and k > 1:  # one (k, total) mask for every row: -inf where j - i > start
            hidden = torch.full((k, self.total), float("-inf"), dtype=dtype, device=device)
            self.self_mask = hidden.triu_(low + 1)
        elif not self.uniform:
            self.where = lengths[:, None] + torch.arange(k, device=device)  # (B, k) new positions
            keys = torch.arange(self.total, device=device)
            self.self_mask = _additive((keys <= self.where[:, :, None])[:, None], dtype)  # (B, 1, k, total)
            self.rows = torch.arange(batch, device=device)[:, None]
        self.cross_mask = cross_mask

    def pack(self, x: Tensor) -> Tensor:
        """(B * k, C) -> the real tokens' rows (N, C); unchanged when the block is not packed."""
        return x if self.real is None else x.index_select(0, self.real)

    def unpack(self, x: Tensor) -> Tensor:
        """The real tokens' rows (N, C) -> (B * k, C), zeros at padding."""
        if self.real is None:
            return x
        return x.new_zeros(self.batch * self.k, x.shape[1]).index_copy_(0, self.real, x)

    def write(self, keys: Tensor, values: Tensor, new_keys: Tensor, new_values: Tensor) -> None:
        """Store the new tokens' keys and values (B, k, H, Dh) at their positions."""
        if self.uniform:
            keys[:, :, self.start : self.total] = new_keys.transpose(1, 2)
            values[:, :, self.start : self.total] = new_values.transpose(1, 2)
        else:
            keys[self.rows, :, self.where] = new_keys
            values[self.rows, :, self.where] = new_values


class _LayerWeights:
    """One decoder layer's products and norms."""

    def __init__(self, layer: Any, packed: PackedWeights | None):
        attention, cross = layer.self_attention, layer.cross_attention
        self.qkv, self.out = _product(attention.qkv, packed), _product(attention.out, packed)
        self.query, self.kv = _product(cross.q, packed), _product(cross.kv, packed)
        self.cross_out = _product(cross.out, packed)
        self.feed_forward = _FeedForward(layer.ffn, packed)
        norms = (layer.self_residual.norm, layer.cross_residual.norm, layer.ffn_residual.norm)
        self.self_norm, self.cross_norm, self.ffn_norm = (_layer_norm(norm) for norm in norms)

    def self_attention(self, h: Tensor, step: _Step, index: int) -> Tensor:
        keys, values = step.cache.self_keys[index], step.cache.self_values[index]
        qkv = step.unpack(self.qkv(h)).view(step.batch, step.k, 3, step.heads, -1)
        step.write(keys, values, qkv[:, :, 1], qkv[:, :, 2])
        y = F.scaled_dot_product_attention(qkv[:, :, 0].transpose(1, 2), keys[:, :, : step.total],
                                           values[:, :, : step.total], attn_mask=step.self_mask)
        return self.out(step.pack(y.transpose(1, 2).reshape(step.batch * step.k, -1)))

    def cross_attention(self, h: Tensor, step: _Step, index: int) -> Tensor:
        q = step.unpack(self.query(h)).view(step.batch, step.k, step.heads, -1).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, step.cache.cross_keys[index], step.cache.cross_values[index],
                                           attn_mask=step.cross_mask)
        return self.cross_out(step.pack(y.transpose(1, 2).reshape(step.batch * step.k, -1)))


class _EncoderLayerWeights:
    """One encoder layer's products and norms."""

    def __init__(self, layer: Any, packed: PackedWeights | None):
        attention = layer.attention
        self.heads = attention.heads
        self.qkv, self.out = _product(attention.qkv, packed), _product(attention.out, packed)
        self.feed_forward = _FeedForward(layer.ffn, packed)
        self.attention_norm = _layer_norm(layer.attention_residual.norm)
        self.ffn_norm = _layer_norm(layer.ffn_residual.norm)

    def self_attention(self, h: Tensor, shape: tuple[int, int], mask: Tensor | None) -> Tensor:
        batch, length = shape
        qkv = self.qkv(h).view(batch, length, 3, self.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, S, Dh) each
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(h.shape))


class _FeedForward:
    def __init__(self, ffn: Any, packed: PackedWeights | None):
        self.inner, self.outer = _product(ffn.inner, packed), _product(ffn.outer, packed)
        self.activation = ffn.activation

    def __call__(self, h: Tensor) -> Tensor:
        return self.outer(self.activation(self.inner(h)))


def _product(linear: nn.Linear, packed: PackedWeights | None) -> Product:
    return Product(linear.weight, linear.bias, packed)


def _additive(allowed: Tensor, dtype: torch.dtype) -> Tensor:
    """A boolean attention mask as the additive one attention makes of it on every call (0 where
    allowed, -inf elsewhere): made once per pass, not once per layer."""
    additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return additive.masked_fill_(~allowed, float("-inf"))


def _layer_norm(norm: torch.nn.LayerNorm) -> Any:
    shape, weight, bias, eps = norm.normalized_shape, norm.weight, norm.bias, norm.eps
    return lambda x: F.layer_norm(x, shape, weight, bias, eps)
