"""The encoder-decoder Transformer: `encode(src) -> Memory` and `decode_step(tokens, memory, cache)`.

The model knows nothing about generation. `decode_step` takes any number of new tokens at once
(one for greedy, k to verify a draft) and returns their logits; with a DecoderCache it continues
from each row's cached length, without one it treats `tokens` as the whole prefix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polyseq.config import (
    Activation,
    EmbeddingNorm,
    EmbeddingScale,
    LanguageEmbedding,
    ModelConfig,
    NormPlacement,
    OutputBias,
    Positions,
)
from polyseq.model.cache import DecoderCache


@dataclass
class Memory:
    states: Tensor  # (B, S, D) encoder output
    mask: Tensor  # (B, S) True at real tokens
    language: Tensor | None = None  # (B, D) target-language vectors (model.language_embedding)

    def select(self, index: Tensor) -> Memory:
        language = None if self.language is None else self.language.index_select(0, index)
        return Memory(self.states.index_select(0, index), self.mask.index_select(0, index), language)


@dataclass
class TeacherForced:
    """A teacher-forced pass with what it went through (for objectives that need the states)."""

    logits: Tensor  # (B, T, V)
    memory: Memory
    hidden: Tensor  # (B, T, D) decoder states before the output norm and projection


def sinusoidal_table(positions: int, dim: int) -> Tensor:
    """The fixed positional encodings of Vaswani et al.: sin on even dims, cos on odd."""
    position = torch.arange(positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table  # (P, D)


def fairseq_sinusoidal_table(positions: int, dim: int) -> Tensor:
    """fairseq's (tensor2tensor's) variant used by M2M-100 and NLLB: all sines, then all cosines,
    with frequencies spaced by log(10000) / (dim/2 - 1)."""
    half = dim // 2
    frequency = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
    angles = torch.arange(positions, dtype=torch.float32)[:, None] * frequency[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (P, D)


_ACTIVATIONS: dict[Activation, Callable[[Tensor], Tensor]] = {
    Activation.RELU: F.relu, Activation.GELU: F.gelu, Activation.SWISH: F.silu,
}


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
        self.activation = _ACTIVATIONS[config.activation]
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.activation(self.inner(x))
        if self.training:  # in eval Dropout is the identity; skipping the call saves decoding time
            hidden = self.dropout(hidden)
        return self.outer(hidden)


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
        x = x + (self.dropout(y) if self.training else y)  # see FeedForward.forward
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


class TargetLanguage(nn.Module):
    """A target-language vector per row, made from the embedding of the `<2xx>` tag that starts
    each source; zero at initialisation, so a new model starts as one without it."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.project = nn.Linear(config.d_model, config.d_model, bias=False)
        nn.init.zeros_(self.project.weight)

    def forward(self, embed: nn.Embedding, src: Tensor) -> Tensor:
        return self.project(embed(src[:, 0]))  # (B, D)


class Seq2Seq(nn.Module):
    """Encoder-decoder Transformer with a shared vocabulary (tied embeddings by default).

    The config's variants (positions, embedding scale and norm, output bias) exist so that Marian,
    M2M-100/NLLB and (m)BART checkpoints run here unchanged; each adds modules only when chosen, so
    a default model has exactly the parameters it always had.
    """

    positions: Tensor  # (offset + max_positions, D) sinusoidal table, a non-persistent buffer

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_id)
        nn.init.normal_(self.embed.weight, std=config.d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[config.pad_id].zero_()
        scaled = config.embedding_scale is EmbeddingScale.SQRT_D_MODEL
        self.embed_scale = math.sqrt(config.d_model) if scaled else 1.0
        rows = config.position_offset + config.max_positions
        self.encoder_positions: nn.Embedding | None = None
        self.decoder_positions: nn.Embedding | None = None
        if config.positions is Positions.LEARNED:  # BART keeps one table per side
            self.encoder_positions = nn.Embedding(rows, config.d_model)
            self.decoder_positions = nn.Embedding(rows, config.d_model)
        else:
            make = sinusoidal_table if config.positions is Positions.SINUSOIDAL else fairseq_sinusoidal_table
            self.register_buffer("positions", make(rows, config.d_model), persistent=False)
        norm = config.embedding_norm is EmbeddingNorm.LAYER_NORM
        self.encoder_embedding_norm = nn.LayerNorm(config.d_model) if norm else None
        self.decoder_embedding_norm = nn.LayerNorm(config.d_model) if norm else None
        self.dropout = nn.Dropout(config.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        pre = config.norm is NormPlacement.PRE
        self.encoder_norm = nn.LayerNorm(config.d_model) if pre else nn.Identity()
        self.decoder_norm = nn.LayerNorm(config.d_model) if pre else nn.Identity()
        self.output = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size,
                                                                    bias=False)
        with_bias = config.output_bias is OutputBias.BIAS
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size)) if with_bias else None
        with_language = config.language_embedding is not LanguageEmbedding.NONE
        self.target_language = TargetLanguage(config) if with_language else None

    @property
    def decoders(self) -> list[DecoderLayer]:
        return list(self.decoder_layers)  # type: ignore[arg-type]

    def _embed(self, tokens: Tensor, positions: Tensor | range, table: nn.Embedding | None,
               norm: nn.LayerNorm | None) -> Tensor:
        """Token embeddings plus positions for one side; `table` is its learned positions.
        `positions` is a range when every row is at the same positions (a slice of the table, the
        common case), else a (B, T) tensor (rows of a cache at different lengths)."""
        last = positions[-1] if isinstance(positions, range) else int(positions.max())
        if last >= self.config.max_positions:
            raise ValueError(
                f"sequence of {last + 1} tokens exceeds the model's "
                f"max_positions={self.config.max_positions}"
            )
        x = self.embed(tokens)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        offset = self.config.position_offset
        if isinstance(positions, range):
            rows = slice(positions.start + offset, positions.stop + offset)
            x = x + (self.positions[rows] if table is None else table.weight[rows])  # (T, D) broadcast
        else:
            index = positions + offset if offset else positions
            x = x + (self.positions[index] if table is None else table(index))
        if norm is not None:
            x = norm(x)
        return self.dropout(x) if self.training else x  # (B, T, D)

    def _embed_source(self, tokens: Tensor, positions: Tensor | range) -> Tensor:
        return self._embed(tokens, positions, self.encoder_positions, self.encoder_embedding_norm)

    def _embed_target(self, tokens: Tensor, positions: Tensor | range) -> Tensor:
        return self._embed(tokens, positions, self.decoder_positions, self.decoder_embedding_norm)

    def encode(self, src: Tensor) -> Memory:
        """src (B, S) right-padded token ids -> Memory with states (B, S, D)."""
        mask = src != self.config.pad_id  # (B, S)
        x = self._embed_source(src, range(src.shape[1]))
        attention_mask = mask[:, None, None, :]  # (B, 1, 1, S)
        for layer in self.encoder_layers:
            x = layer(x, attention_mask)
        language = None if self.target_language is None else self.target_language(self.embed, src)
        return Memory(self.encoder_norm(x), mask, language)

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
            language=memory.language,
        )

    def decode_step(self, tokens: Tensor, memory: Memory, cache: DecoderCache | None = None) -> Tensor:
        """Logits (B, k, V) for k new tokens (B, k).

        With a cache, the tokens continue each row's cached prefix and are appended to the cache
        (in place). Without one, `tokens` is the whole prefix from position 0.
        """
        if cache is None:
            return self._decode_uncached(tokens, memory)
        return self.project(self.decode_hidden(tokens, memory, cache))

    def decode_hidden(self, tokens: Tensor, memory: Memory, cache: DecoderCache) -> Tensor:
        """`decode_step` without the output layer: final states (B, k, D), for callers that
        need the logits of only some positions (`project` them)."""
        k = tokens.shape[1]
        start = cache.uniform_length()
        total = (cache.max_length() if start is None else start) + k  # start saves a read-back
        cache.ensure_capacity(total)
        self_mask: Tensor | None = None  # one new token may see every cached position
        if start is None or k > 1:  # key j is visible to new token i of row b when j <= lengths[b] + i
            positions = cache.lengths[:, None] + torch.arange(k, device=tokens.device)  # (B, k)
            self_mask = torch.arange(total, device=tokens.device)[None, None, :] <= positions[:, :, None]
            self_mask = self_mask[:, None]  # (B, 1, k, total)
        # rows at one length read a slice of the position table, the rest index it row by row
        x = self._embed_target(tokens, positions if start is None else range(start, total))
        x = self._add_language(x, cache.language, LanguageEmbedding.DECODER)
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
        return self._add_language(x, cache.language, LanguageEmbedding.OUTPUT)

    def _add_language(self, x: Tensor, language: Tensor | None, where: LanguageEmbedding) -> Tensor:
        """x (B, T, D) plus the rows' target-language vectors when this model adds them `where`."""
        if self.config.language_embedding is not where:
            return x
        if language is None:
            raise ValueError("this model adds target-language vectors, but the memory or cache has "
                             "none: encode the source with this model (Seq2Seq.encode)")
        return x + language[:, None, :]

    def _decode_uncached(self, tokens: Tensor, memory: Memory) -> Tensor:
        return self.project(self._hidden_uncached(tokens, memory))

    def _hidden_uncached(self, tokens: Tensor, memory: Memory) -> Tensor:
        """Final decoder states (B, T, D) for the whole prefix `tokens`, without a cache."""
        x = self._embed_target(tokens, range(tokens.shape[1]))
        x = self._add_language(x, memory.language, LanguageEmbedding.DECODER)
        cross_mask = memory.mask[:, None, None, :]
        for layer in self.decoders:
            q, k, v = layer.self_attention.projections(layer.self_residual.input(x))
            cross = layer.cross_attention.keys_values(memory.states)
            attended = layer.self_attention.attend(q, k, v, None, causal=True)
            x = layer(x, attended, cross, cross_mask)
        return self._add_language(x, memory.language, LanguageEmbedding.OUTPUT)

    def project(self, x: Tensor) -> Tensor:
        """Decoder states (..., D) -> logits (..., V)."""
        x = self.decoder_norm(x)
        weight = self.embed.weight if self.output is None else self.output.weight
        return F.linear(x, weight, self.output_bias)  # (B, T, V)

    def forward(self, src: Tensor, tgt_in: Tensor | None = None, *, states: bool = False) -> Any:
        """Teacher-forced logits (B, T, V) for training and scoring. The training objectives that
        read more than logits call it too, so that a replica under DDP sees each use as a forward:
        without `tgt_in` it returns the encoder's Memory, with `states` a TeacherForced."""
        memory = self.encode(src)
        if tgt_in is None:
            return memory
        if not states:
            return self._decode_uncached(tgt_in, memory)
        hidden = self._hidden_uncached(tgt_in, memory)
        return TeacherForced(self.project(hidden), memory, hidden)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def sequence_log_probs(logits: Tensor, targets: Tensor, *, pad_id: int) -> Tensor:
    """Sum of target-token log-probabilities per sequence (B,): the score of a target given its source."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    token = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return (token * (targets != pad_id)).sum(dim=1)
