"""The encoder-decoder Transformer: `encode(src) -> Memory` and `decode_step(tokens, memory, cache)`.

The model knows nothing about generation. `decode_step` takes any number of new tokens at once
(one for greedy, k to verify a draft) and returns their logits; with a DecoderCache it continues
from each row's cached length, without one it treats `tokens` as the whole prefix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polyseq.config import Activation, ModelConfig, NormPlacement
from polyseq.model.cache import DecoderCache


@dataclass
class Memory:
    states: Tensor  # (B, S, D) encoder output
    mask: Tensor  # (B, S) True at real tokens

    def select(self, index: Tensor) -> Memory:
        return Memory(self.states.index_select(0, index), self.mask.index_select(0, index))


def sinusoidal_table(positions: int, dim: int) -> Tensor:
    """The fixed positional encodings of Vaswani et al.: sin on even dims, cos on odd."""
    position = torch.arange(positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table  # (P, D)


def _split_heads(x: Tensor, heads: int) -> Tensor:
    batch, length, dim = x.shape
    return x.view(batch, length, heads, dim // heads).transpose(1, 2)  # (B, H, T, Dh)


def _merge_heads(x: Tensor) -> Tensor:
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)  # (B, T, D)


class SelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.heads = config.heads
        self.dropout = config.attention_dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def projections(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return _split_heads(q, self.heads), _split_heads(k, self.heads), _split_heads(v, self.heads)

    def forward(self, x: Tensor, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        q, k, v = self.projections(x)
        return self.attend(q, k, v, mask, causal)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
        return self.out(_merge_heads(y))


class CrossAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.heads = config.heads
        self.dropout = config.attention_dropout
        self.q = nn.Linear(config.d_model, config.d_model)
        self.kv = nn.Linear(config.d_model, 2 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.kv(memory).chunk(2, dim=-1)
        return _split_heads(k, self.heads), _split_heads(v, self.heads)  # (B, H, S, Dh) each

    def forward(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        q = _split_heads(self.q(x), self.heads)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.out(_merge_heads(y))


class FeedForward(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.inner = nn.Linear(config.d_model, config.ffn_dim)
        self.outer = nn.Linear(config.ffn_dim, config.d_model)
        self.activation = F.gelu if config.activation is Activation.GELU else F.relu
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.outer(self.dropout(self.activation(self.inner(x))))


class Residual(nn.Module):
    """A sublayer with its residual connection, dropout and layer norm (pre or post)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.d_model)
        self.pre = config.norm is NormPlacement.PRE
        self.dropout = nn.Dropout(config.dropout)

    def input(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre else x

    def output(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.dropout(y)
        return x if self.pre else self.norm(x)


class EncoderLayer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention, self.attention_residual = SelfAttention(config), Residual(config)
        self.ffn, self.ffn_residual = FeedForward(config), Residual(config)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.attention_residual.output(x, self.attention(self.attention_residual.input(x), mask))
        return self.ffn_residual.output(x, self.ffn(self.ffn_residual.input(x)))


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self_attention, self.self_residual = SelfAttention(config), Residual(config)
        self.cross_attention, self.cross_residual = CrossAttention(config), Residual(config)
        self.ffn, self.ffn_residual = FeedForward(config), Residual(config)

    def forward(
        self, x: Tensor, attended: Tensor, cross_kv: tuple[Tensor, Tensor], cross_mask: Tensor
    ) -> Tensor:
        """`attended` is this layer's self-attention output, computed by the caller from `x`
        either over the whole prefix or over the cache."""
        x = self.self_residual.output(x, attended)
        y = self.cross_attention(self.cross_residual.input(x), *cross_kv, cross_mask)
        x = self.cross_residual.output(x, y)
        return self.ffn_residual.output(x, self.ffn(self.ffn_residual.input(x)))


class Seq2Seq(nn.Module):
    """Encoder-decoder Transformer with a shared vocabulary (tied embeddings by default)."""

    positions: Tensor  # (max_positions, D) sinusoidal table, a non-persistent buffer

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_id)
        nn.init.normal_(self.embed.weight, std=config.d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[config.pad_id].zero_()
        self.embed_scale = math.sqrt(config.d_model)
        self.register_buffer("positions", sinusoidal_table(config.max_positions, config.d_model),
                             persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        pre = config.norm is NormPlacement.PRE
        self.encoder_norm = nn.LayerNorm(config.d_model) if pre else nn.Identity()
        self.decoder_norm = nn.LayerNorm(config.d_model) if pre else nn.Identity()
        self.output = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size,
                                                                    bias=False)

    @property
    def decoders(self) -> list[DecoderLayer]:
        return list(self.decoder_layers)  # type: ignore[arg-type]

    def _embed(self, tokens: Tensor, positions: Tensor) -> Tensor:
        if int(positions.max()) >= self.config.max_positions:
            raise ValueError(
                f"sequence of {int(positions.max()) + 1} tokens exceeds the model's "
                f"max_positions={self.config.max_positions}"
            )
        x = self.embed(tokens) * self.embed_scale + self.positions[positions]
        return self.dropout(x)  # (B, T, D)

    def encode(self, src: Tensor) -> Memory:
        """src (B, S) right-padded token ids -> Memory with states (B, S, D)."""
        mask = src != self.config.pad_id  # (B, S)
        positions = torch.arange(src.shape[1], device=src.device)[None, :]
        x = self._embed(src, positions)
        attention_mask = mask[:, None, None, :]  # (B, 1, 1, S)
        for layer in self.encoder_layers:
            x = layer(x, attention_mask)
        return Memory(self.encoder_norm(x), mask)

    def init_cache(self, memory: Memory, capacity: int = 64) -> DecoderCache:
        """A cache for `memory`'s rows: cross-attention keys/values computed once, empty self K/V."""
        batch, config = memory.states.shape[0], self.config
        shape = (batch, config.heads, capacity, config.head_dim)
        keys, values = [], []
        for layer in self.decoders:
            k, v = layer.cross_attention.keys_values(memory.states)
            keys.append(k)
            values.append(v)
        empty = [memory.states.new_zeros(shape) for _ in self.decoder_layers]
        return DecoderCache(
            self_keys=empty, self_values=[t.clone() for t in empty], cross_keys=keys,
            cross_values=values, source_mask=memory.mask,
            lengths=torch.zeros(batch, dtype=torch.long, device=memory.states.device),
        )

    def decode_step(self, tokens: Tensor, memory: Memory, cache: DecoderCache | None = None) -> Tensor:
        """Logits (B, k, V) for k new tokens (B, k).

        With a cache, the tokens continue each row's cached prefix and are appended to the cache
        (in place). Without one, `tokens` is the whole prefix from position 0.
        """
        if cache is None:
            return self._decode_uncached(tokens, memory)
        k = tokens.shape[1]
        start = cache.uniform_length()
        cache.ensure_capacity(cache.max_length() + k)
        steps = torch.arange(k, device=tokens.device)
        positions = cache.lengths[:, None] + steps  # (B, k)
        x = self._embed(tokens, positions)
        total = cache.max_length() + k
        if start is not None and k == 1:
            self_mask = None  # one new token may see every cached position
        else:  # key j is visible to new token i of row b when j <= lengths[b] + i
            self_mask = torch.arange(total, device=tokens.device)[None, None, :] <= positions[:, :, None]
            self_mask = self_mask[:, None]  # (B, 1, k, total)
        cross_mask = cache.source_mask[:, None, None, :]  # (B, 1, 1, S)
        for index, layer in enumerate(self.decoders):
            q, new_k, new_v = layer.self_attention.projections(layer.self_residual.input(x))
            cache.write(index, new_k, new_v, start)
            keys = cache.self_keys[index][:, :, :total]
            values = cache.self_values[index][:, :, :total]
            cross = (cache.cross_keys[index], cache.cross_values[index])
            attended = layer.self_attention.attend(q, keys, values, self_mask, causal=False)
            x = layer(x, attended, cross, cross_mask)
        cache.advance(k)
        return self._logits(x)

    def _decode_uncached(self, tokens: Tensor, memory: Memory) -> Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)[None, :]
        x = self._embed(tokens, positions)
        cross_mask = memory.mask[:, None, None, :]
        for layer in self.decoders:
            q, k, v = layer.self_attention.projections(layer.self_residual.input(x))
            cross = layer.cross_attention.keys_values(memory.states)
            attended = layer.self_attention.attend(q, k, v, None, causal=True)
            x = layer(x, attended, cross, cross_mask)
        return self._logits(x)

    def _logits(self, x: Tensor) -> Tensor:
        x = self.decoder_norm(x)
        if self.output is None:
            return F.linear(x, self.embed.weight)  # (B, T, V)
        return self.output(x)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V) for training and scoring."""
        return self._decode_uncached(tgt_in, self.encode(src))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
