"""`NativePasses`: one model's weights packed for the native library, and its encoder, decoder
pass and output layer as calls into it, on a `NativeCache`."""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from polyseq.config import Activation, LanguageEmbedding, NormPlacement
from polyseq.model.cache import DecoderCache
from polyseq.model.transformer import Memory, Seq2Seq

_ACTIVATIONS = {Activation.RELU: 0, Activation.GELU: 1, Activation.SWISH: 2}
_LANGUAGE_AT = {LanguageEmbedding.NONE: 0, LanguageEmbedding.DECODER: 1, LanguageEmbedding.OUTPUT: 2}


@dataclass
class NativeCache(DecoderCache):
    """The `DecoderCache` of the native passes. Its cross-attention keys, values and source mask
    stay one per source: row b reads source `sources[b]`'s, so `reorder` (every step of a beam)
    moves only the self-attention keys and values, and only the positions a later pass reads.
    It remembers, between passes, its buffers' addresses (until `reorder` or growth replaces
    them) and its longest row (a read of `lengths` less per pass). Its tensors are contiguous, as
    the native pass reads them."""

    sources: Tensor | None = None  # (B,) long: the source row each row attends to
    library: Any = field(default=None, repr=False)
    _addresses: tuple[Any, ...] | None = field(default=None, repr=False)
    _longest: int | None = field(default=None, repr=False)

    def addresses(self) -> tuple[Any, ...]:
        if self._addresses is None:
            self._addresses = tuple(_pointers(buffers) for buffers in
                                    (self.self_keys, self.self_values, self.cross_keys, self.cross_values))
        return self._addresses

    def max_length(self) -> int:
        if self._longest is None:
            self._longest = super().max_length()
        return self._longest

    def ensure_capacity(self, needed: int) -> None:
        if needed > self.capacity:
            super().ensure_capacity(needed)
            self._addresses = None

    def advance(self, k: int) -> None:
        longest = self.max_length()
        super().advance(k)
        self._longest = longest + k

    def truncate(self, length: int | Tensor) -> None:
        super().truncate(length)
        self._longest = length if isinstance(length, int) else None

    def reorder(self, index: Tensor) -> None:
        assert self.sources is not None
        index = index.to(torch.long).contiguous()
        lengths = self.lengths.index_select(0, index)  # an index out of range fails here, in PyTorch
        old = self.self_keys + self.self_values
        new = [t.new_empty(index.shape[0], *t.shape[1:]) for t in old]
        _, heads, capacity, head_dim = old[0].shape
        self.library.polyseq_native_reorder(_pointers(old), _pointers(new), len(old), index.data_ptr(),
                                            index.shape[0], heads, capacity, head_dim, self.max_length(),
                                            torch.get_num_threads())
        half = len(new) // 2
        self.self_keys, self.self_values = new[:half], new[half:]
        self.lengths = lengths
        self.sources = self.sources.index_select(0, index)
        if self.language is not None:
            self.language = self.language.index_select(0, index)
        self._addresses, self._longest = None, None


class NativePasses:
    """One model's weights packed for the native passes (a copy: later changes to the model do not
    reach it; `native_passes` makes a new one when they happen). Calls on one model from two
    threads take turns."""

    def __init__(self, model: Seq2Seq, lib: ctypes.CDLL, signature: Any):
        self.lib, self.config, self.signature = lib, model.config, signature
        self.target_language, self.embed = model.target_language, model.embed
        config = model.config
        norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
        dims = (ctypes.c_int64 * 9)(config.d_model, config.heads, config.ffn_dim, config.vocab_size,
                                    config.encoder_layers, config.decoder_layers, config.max_positions,
                                    int(config.norm is NormPlacement.PRE), _ACTIVATIONS[config.activation])
        scales = (ctypes.c_float * 2)(model.embed_scale, norms[0].eps if norms else 1e-5)
        weights = _weights(model)
        pointers = (ctypes.c_void_p * len(weights))(*(0 if w is None else w.data_ptr() for w in weights))
        self.handle = lib.polyseq_native_new(dims, scales, pointers)  # copies what it keeps
        if not self.handle:
            raise MemoryError("no memory for the native passes' copy of the weights")
        weakref.finalize(self, lib.polyseq_native_free, self.handle)
        self.dim, self.heads, self.layers = config.d_model, config.heads, config.decoder_layers
        self.language_at = _LANGUAGE_AT[config.language_embedding]

    def encode(self, src: Tensor) -> Memory:
        """src (B, S) token ids, padding anywhere -> Memory with states (B, S, D), zeros at padding."""
        batch, length = src.shape
        _check_length(length, self.config.max_positions)
        src = src.to("cpu", torch.long).contiguous()
        states = torch.empty(batch, length, self.dim, dtype=torch.float32, device="cpu")
        code = self.lib.polyseq_native_encode(self.handle, src.data_ptr(), batch, length, self.config.pad_id,
                                              states.data_ptr(), torch.get_num_threads())
        _raise_for(code, src)
        language = None
        if self.target_language is not None:  # row by row: a row's vector must not depend on the batch
            with torch.no_grad():
                language = torch.cat([self.target_language(self.embed, src[row : row + 1])
                                      for row in range(batch)]).contiguous()
        return Memory(states, src != self.config.pad_id, language)

    def init_cache(self, memory: Memory, capacity: int = 64) -> NativeCache:
        """What `Seq2Seq.init_cache` returns: cross-attention keys/values, empty self K/V."""
        states = memory.states.to("cpu", torch.float32).contiguous()
        batch, length = states.shape[:2]
        head_dim = self.dim // self.heads
        keys = [states.new_empty(batch, self.heads, length, head_dim) for _ in range(self.layers)]
        values = [states.new_empty(batch, self.heads, length, head_dim) for _ in range(self.layers)]
        self.lib.polyseq_native_cross(self.handle, states.data_ptr(), batch, length, _pointers(keys),
                                      _pointers(values), torch.get_num_threads())
        empty = (batch, self.heads, capacity, head_dim)
        return NativeCache(self_keys=[states.new_zeros(empty) for _ in range(self.layers)],
                           self_values=[states.new_zeros(empty) for _ in range(self.layers)],
                           cross_keys=keys, cross_values=values, source_mask=memory.mask.contiguous(),
                           lengths=torch.zeros(batch, dtype=torch.long, device="cpu"),
                           language=memory.language, sources=torch.arange(batch, device="cpu"),
                           library=self.lib)

    def decode(self, tokens: Tensor, cache: NativeCache, widths: Sequence[int] | None = None) -> Tensor:
        """States (B, k, D) for k new tokens per row (B, k), which continue each row's cached
        prefix and enter the cache. With `widths`, row b's first widths[b] tokens are real and the
        rest padding, whose states are zeros and which do not enter the cache (the caller
        truncates past them)."""
        batch, k = tokens.shape
        if batch != cache.batch_size:
            raise ValueError(f"{batch} rows of tokens for a cache of {cache.batch_size} rows")
        if widths is not None and (len(widths) != batch or not all(0 <= w <= k for w in widths)):
            raise ValueError(f"widths must give each of the {batch} rows 0 to {k} real tokens, "
                             f"not {list(widths)}")
        total = cache.max_length() + k
        _check_length(total, self.config.max_positions)
        cache.ensure_capacity(total)
        tokens = tokens.to("cpu", torch.long).contiguous()
        row_widths = None if widths is None else torch.tensor(widths, dtype=torch.long, device="cpu")
        language = None
        if self.language_at:
            if cache.language is None:
                raise ValueError("this model adds target-language vectors, but the cache has none: "
                                 "encode the source with this model")
            language = cache.language.to(torch.float32).contiguous()  # held until the call returns
        states = torch.empty(batch, k, self.dim, dtype=torch.float32, device="cpu")
        self_keys, self_values, cross_keys, cross_values = cache.addresses()
        assert cache.sources is not None
        code = self.lib.polyseq_native_decode(
            self.handle, tokens.data_ptr(), batch, k, cache.lengths.data_ptr(),
            None if row_widths is None else row_widths.data_ptr(), self_keys, self_values, cache.capacity,
            cache.sources.data_ptr(), cross_keys, cross_values, cache.source_mask.shape[1],
            cache.source_mask.data_ptr(),
            None if language is None else language.data_ptr(), self.language_at,
            states.data_ptr(), torch.get_num_threads())
        _raise_for(code, tokens)
        cache.advance(k)
        return states

    def project(self, states: Tensor) -> Tensor:
        """`Seq2Seq.project`: decoder states (..., D) -> logits (..., V)."""
        rows = states.reshape(-1, self.dim).to("cpu", torch.float32).contiguous()
        logits = torch.empty(rows.shape[0], self.config.vocab_size, dtype=torch.float32, device="cpu")
        self.lib.polyseq_native_project(self.handle, rows.data_ptr(), rows.shape[0], logits.data_ptr(),
                                        torch.get_num_threads())
        return logits.view(*states.shape[:-1], -1)

    def choose(self, states: Tensor) -> tuple[list[int], list[float]]:
        """Greedy's choice after decoder states (N, D): each row's most likely token (the first
        of equal ones, as `argmax`) and its log-probability, the output layer fused with the
        choice, without the logits."""
        rows = states.reshape(-1, self.dim).to("cpu", torch.float32).contiguous()
        tokens = torch.empty(rows.shape[0], dtype=torch.long, device="cpu")
        log_probs = torch.empty(rows.shape[0], dtype=torch.float32, device="cpu")
        self.lib.polyseq_native_choose(self.handle, rows.data_ptr(), rows.shape[0], tokens.data_ptr(),
                                       log_probs.data_ptr(), torch.get_num_threads())
        return tokens.tolist(), log_probs.tolist()


    def top(self, states: Tensor, count: int) -> tuple[Tensor, Tensor]:
        """Each row's `count` most likely next tokens after decoder states (N, D), most likely
        first, and their log-probabilities: ids (N, count) and log-probabilities (N, count), the
        output layer fused with the choice (beam search's candidates), without the logits."""
        rows = states.reshape(-1, self.dim).to("cpu", torch.float32).contiguous()
        tokens = torch.empty(rows.shape[0], count, dtype=torch.long, device="cpu")
        log_probs = torch.empty(rows.shape[0], count, dtype=torch.float32, device="cpu")
        self.lib.polyseq_native_top(self.handle, rows.data_ptr(), rows.shape[0], count, tokens.data_ptr(),
                                    log_probs.data_ptr(), torch.get_num_threads())
        return tokens, log_probs


def _weights(model: Seq2Seq) -> list[Tensor | None]:
    """The weights in the order polyseq_native_new reads them, float32 and contiguous; None for
    a norm or bias the model leaves out."""
    config = model.config

    def norm(module: Any) -> list[Tensor | None]:
        return [module.weight, module.bias] if isinstance(module, nn.LayerNorm) else [None, None]

    def linear(module: Any) -> list[Tensor | None]:
        return [module.weight, module.bias]

    rows = slice(config.position_offset, config.position_offset + config.max_positions)
    encoder_positions = model.positions if model.encoder_positions is None else model.encoder_positions.weight
    decoder_positions = model.positions if model.decoder_positions is None else model.decoder_positions.weight
    output = model.embed.weight if model.output is None else model.output.weight
    weights: list[Tensor | None] = [
        model.embed.weight, encoder_positions[rows], decoder_positions[rows],
        *norm(model.encoder_embedding_norm), *norm(model.decoder_embedding_norm), *norm(model.encoder_norm),
        *norm(model.decoder_norm), output, model.output_bias]
    encoder_layers: list[Any] = list(model.encoder_layers)
    for layer in encoder_layers:
        weights += [*norm(layer.attention_residual.norm), *linear(layer.attention.qkv),
                    *linear(layer.attention.out), *norm(layer.ffn_residual.norm), *linear(layer.ffn.inner),
                    *linear(layer.ffn.outer)]
    for layer in model.decoders:
        weights += [*norm(layer.self_residual.norm), *linear(layer.self_attention.qkv),
                    *linear(layer.self_attention.out), *norm(layer.cross_residual.norm),
                    *linear(layer.cross_attention.q), *linear(layer.cross_attention.kv),
                    *linear(layer.cross_attention.out), *norm(layer.ffn_residual.norm),
                    *linear(layer.ffn.inner), *linear(layer.ffn.outer)]
    return [None if w is None else w.detach().float().contiguous() for w in weights]


def _pointers(tensors: Sequence[Tensor]) -> Any:
    return (ctypes.c_void_p * len(tensors))(*(t.data_ptr() for t in tensors))


def _check_length(length: int, max_positions: int) -> None:
    if length > max_positions:
        raise ValueError(f"sequence of {length} tokens exceeds the model's max_positions={max_positions}")


def _raise_for(code: int, tokens: Tensor) -> None:
    if code == 1:
        raise IndexError(f"token ids must lie in the vocabulary; got ids from {int(tokens.min())} "
                         f"to {int(tokens.max())}")
    if code:
        raise RuntimeError(f"the native pass failed (code {code})")
