"""Sequence-to-Action (S2A; Li et al. 2022): a decoder that skips, copies or generates over its source.

An S2A model's target is an action sequence: the corrected text with a `<skip>` token (the config's
`skip_id`, polyseq's unused `<s>`) for each source token it drops. A pointer walks the source as the
output is read (`follow`): it starts at the source's first token and moves on after a `<skip>` and
after the token under it. So every output token is SKIP (`<skip>`), COPY (the token under the
pointer) or GEN (any other), by construction: training (`action_target` builds the sequence from
a source and its correction) and decoding (the pointer follows the tokens decoded so far) agree.
In polyseq's framing the decoder's first token, the language tag, copies the source's, and EOS
copies the source's EOS.

Each step's distribution mixes the three actions (`mixture`):
    p(y) = P(COPY) [y = src[j]] + P(SKIP) [y = <skip>] + P(GEN) p_gen(y)
with the actions from a small head on the decoder state and the encoder state under the pointer,
and p_gen the usual softmax, also told what is under the pointer. `decode_step` returns log p, so
every strategy runs on it unchanged (log_softmax of a log-distribution is the same), and
`Tokenizer.decode` leaves `<s>` out, so users see plain text.

The pointer after each cached position lives in the cache (`ActionCache`) and follows `truncate`
and `reorder` as the keys and values do. The native passes (polyseq.model.native) know no pointer, so
an S2A model decodes on the module path.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polyseq.config import Actions, ConfigError, ModelConfig
from polyseq.model.cache import DecoderCache
from polyseq.model.transformer import Memory, Seq2Seq

SKIP, COPY, GEN = 0, 1, 2  # action indices in the action head's output
ACTION_NAMES = ("SKIP", "COPY", "GEN")


# ----------------------------------------------------------------------------- actions of ids


def action_of(source: Sequence[int], pointer: int, token: int, skip_id: int) -> int:
    """SKIP, COPY or GEN: what reading `token` with the pointer at `pointer` is. Past the end of
    the source there is nothing to skip or copy."""
    if pointer < len(source):
        if token == skip_id:
            return SKIP
        if token == source[pointer]:
            return COPY
    return GEN


def follow(source: Sequence[int], tokens: Sequence[int], skip_id: int, start: int = 0) -> list[int]:
    """The pointer into `source` after each of `tokens`, from `start`."""
    pointers, pointer = [], start
    for token in tokens:
        if action_of(source, pointer, token, skip_id) != GEN:
            pointer += 1
        pointers.append(pointer)
    return pointers


def actions(source: Sequence[int], tokens: Sequence[int], skip_id: int) -> list[int]:
    """Each token's action as the pointer reads `tokens` from the start of `source`."""
    before = [0, *follow(source, tokens, skip_id)[:-1]]
    return [action_of(source, pointer, token, skip_id) for pointer, token in zip(before, tokens, strict=True)]


def action_target(source: Sequence[int], target: Sequence[int], skip_id: int) -> list[int]:
    """`target` as an action sequence over `source` (both framed alike): difflib's alignment of the
    ids, with equal runs copied, a `<skip>` for each deleted source token, and a replaced run as
    its skips followed by the new tokens. Removing the skips gives `target` back."""
    if skip_id in source or skip_id in target:
        raise ValueError(f"the S2A skip id {skip_id} occurs in a source or target; it must mark "
                         "skipped source tokens only")
    matcher = difflib.SequenceMatcher(a=list(source), b=list(target), autojunk=False)
    sequence: list[int] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            sequence += [skip_id] * (i2 - i1)
        if tag != "delete":
            sequence += target[j1:j2]
    return sequence


# ----------------------------------------------------------------------------- the distribution


def mixture(gen_logits: Tensor, action_logits: Tensor, copy_ids: Tensor, *, skip_id: int,
            pad_id: int) -> Tensor:
    """log p (..., V) of P(COPY) [y = copy_id] + P(SKIP) [y = skip_id] + P(GEN) softmax(gen_logits)
    from gen_logits (..., V), action_logits (..., 3) and copy_ids (...), the source token under
    the pointer, `pad_id` where the pointer is past the source (SKIP and COPY then have no mass)."""
    past_end = copy_ids == pad_id  # (...)
    blocked = torch.stack([past_end, past_end, torch.zeros_like(past_end)], dim=-1)  # (..., 3)
    action = action_logits.float().masked_fill(blocked, -torch.inf).log_softmax(dim=-1)  # (..., 3)
    gen = gen_logits.float().log_softmax(dim=-1)  # (..., V)
    mixed = gen + action[..., GEN, None]  # (..., V)
    index = torch.stack([copy_ids, torch.full_like(copy_ids, skip_id)], dim=-1)  # (..., 2)
    extra = torch.stack([action[..., COPY], action[..., SKIP]], dim=-1)  # (..., 2)
    # a blocked action adds log 0 = -inf, which logaddexp leaves out; written in place (no
    # backward reads `mixed`), which spares a copy of the (..., V) tensor in training
    both = torch.logaddexp(gen.gather(-1, index) + action[..., GEN, None], extra)  # (..., 2)
    return mixed.scatter_(-1, index, both)


@dataclass(frozen=True)
class PointedStates:
    """Decoder states and what the S2A output layer reads beside them at each position: the
    encoder state under the pointer and the source token there. Indexed like the states
    (`states[:, -1]`, `states[rows, positions]`), so strategies that project only some positions
    (polyseq.decoding.drafting) work on it unchanged."""

    hidden: Tensor  # (..., D) decoder states
    pointed: Tensor  # (..., D) the encoder state under the pointer (zero past the source)
    copy_ids: Tensor  # (...) long: the source token under the pointer (pad past the source)

    def __getitem__(self, index: Any) -> PointedStates:
        return PointedStates(self.hidden[index], self.pointed[index], self.copy_ids[index])

    @property
    def device(self) -> torch.device:
        return self.hidden.device


# ----------------------------------------------------------------------------- memory and cache


@dataclass(kw_only=True)  # after Memory's fields with defaults
class SourceMemory(Memory):
    """The encoder's Memory with the source ids, which the pointer reads."""

    source: Tensor  # (B, S) right-padded source ids

    def select(self, index: Tensor) -> SourceMemory:
        selected = super().select(index)
        return SourceMemory(selected.states, selected.mask, language=selected.language,
                            source=self.source.index_select(0, index))

    def rows(self) -> list[list[int]]:
        """Each row's source ids without padding."""
        lengths = self.mask.sum(dim=1).tolist()
        return [ids[:length] for ids, length in zip(self.source.tolist(), lengths, strict=True)]


@dataclass(kw_only=True)  # after DecoderCache's fields with defaults
class ActionCache(DecoderCache):
    """A DecoderCache that also holds each row's source and the pointer after each cached position."""

    sources: list[list[int]]  # each row's source ids without padding
    source_states: Tensor  # (B, S, D) encoder states, read under the pointer
    pointers: Tensor  # (B, capacity) long: the pointer after each cached position

    def ensure_capacity(self, needed: int) -> None:
        super().ensure_capacity(needed)
        if self.pointers.shape[1] < self.capacity:
            grown = self.pointers.new_zeros(self.pointers.shape[0], self.capacity)
            grown[:, : self.pointers.shape[1]] = self.pointers
            self.pointers = grown

    def reorder(self, index: Tensor) -> None:
        super().reorder(index)
        self.sources = [self.sources[row] for row in index.tolist()]
        self.source_states = self.source_states.index_select(0, index)
        self.pointers = self.pointers.index_select(0, index)

    def follow(self, tokens: Tensor, skip_id: int) -> list[list[int]]:
        """Record the pointers after `tokens` (B, k), which continue each row's cached prefix (the
        cache not yet advanced), and return them."""
        k = tokens.shape[1]
        lengths = self.lengths.tolist()
        self.ensure_capacity(max(lengths, default=0) + k)
        last = self.pointers.gather(1, (self.lengths - 1).clamp(min=0)[:, None])[:, 0].tolist()
        pointers = [follow(source, row, skip_id, start=last[b] if lengths[b] else 0)
                    for b, (source, row) in enumerate(zip(self.sources, tokens.tolist(), strict=True))]
        positions = self.lengths[:, None] + torch.arange(k, device=tokens.device)  # (B, k)
        self.pointers.scatter_(1, positions, torch.tensor(pointers, dtype=torch.long, device=tokens.device))
        return pointers


# ----------------------------------------------------------------------------- the model


class ActionSeq2Seq(Seq2Seq):
    """A Seq2Seq whose output layer is the S2A mixture (`model.actions = "s2a"`): `decode_step`
    returns log-probabilities, and the decoder's target is an action sequence (`action_target`)."""

    def __init__(self, config: ModelConfig):
        if config.actions is not Actions.S2A:
            raise ConfigError(f"ActionSeq2Seq needs model.actions = 's2a', not {config.actions.value!r}")
        super().__init__(config)
        d = config.d_model
        # the encoder state under the pointer, added to what the token layer reads; zero at first,
        # so that a new S2A model generates as the plain model would
        self.pointer_input = nn.Linear(d, d, bias=False)
        nn.init.zeros_(self.pointer_input.weight)
        # SKIP / COPY / GEN from the decoder state beside the encoder state under the pointer
        self.action_head = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 3))

    def encode(self, src: Tensor) -> SourceMemory:
        skip = self.config.skip_id
        if bool((src == skip).any()):
            raise ValueError(f"a source holds the S2A skip id {skip}, which marks skipped source tokens "
                             "only; polyseq's tokenizer never encodes text to it")
        memory = super().encode(src)
        return SourceMemory(memory.states, memory.mask, language=memory.language, source=src)

    def init_cache(self, memory: Memory, capacity: int = 64) -> ActionCache:
        memory = _source_memory(memory)
        cache = super().init_cache(memory, capacity)
        return ActionCache(**{item.name: getattr(cache, item.name) for item in fields(cache)},
                           sources=memory.rows(), source_states=memory.states,
                           pointers=cache.lengths.new_zeros(cache.batch_size, cache.capacity))

    # decode_hidden and project pass PointedStates where Seq2Seq passes state tensors: the
    # strategies only index the states and hand them back to `project`
    def decode_hidden(  # type: ignore[override]
            self, tokens: Tensor, memory: Memory, cache: DecoderCache) -> PointedStates:
        if not isinstance(cache, ActionCache):
            raise TypeError("an S2A model decodes on its own cache (init_cache), not a "
                            f"{type(cache).__name__}")
        pointers = cache.follow(tokens, self.config.skip_id)
        hidden = super().decode_hidden(tokens, memory, cache)  # (B, k, D)
        return self._pointed(hidden, pointers, cache.sources, cache.source_states)

    def _decode_uncached(self, tokens: Tensor, memory: Memory) -> Tensor:
        memory = _source_memory(memory)
        hidden = self._hidden_uncached(tokens, memory)  # (B, T, D)
        sources = memory.rows()
        pointers = [follow(source, row, self.config.skip_id)
                    for source, row in zip(sources, tokens.tolist(), strict=True)]
        return self.project(self._pointed(hidden, pointers, sources, memory.states))

    def source_cursor(self, source: Sequence[int], tokens: Sequence[int]) -> int:
        """Where in `source` the output `tokens` continues: the pointer after them (for drafters
        that copy the source, such as aggressive decoding's)."""
        return follow(source, tokens, self.config.skip_id)[-1] if tokens else 0

    def _pointed(self, hidden: Tensor, pointers: list[list[int]], sources: list[list[int]],
                 source_states: Tensor) -> PointedStates:
        """What the output layer reads at each position, given the pointers (B, T) after them."""
        last = source_states.shape[1] - 1
        pad = self.config.pad_id
        copy_ids = [[source[j] if j < len(source) else pad for j in row]
                    for source, row in zip(sources, pointers, strict=True)]
        device = hidden.device
        copy = torch.tensor(copy_ids, dtype=torch.long, device=device)  # (B, T)
        index = torch.tensor(pointers, dtype=torch.long, device=device).clamp(max=last)  # (B, T)
        pointed = source_states.gather(1, index[:, :, None].expand(-1, -1, source_states.shape[2]))
        return PointedStates(hidden, pointed * (copy != pad)[:, :, None].to(pointed.dtype), copy)

    def project(self, states: PointedStates) -> Tensor:  # type: ignore[override]
        """PointedStates (...) -> log-probabilities (..., V) of the S2A mixture."""
        normed = self.decoder_norm(states.hidden)  # (..., D)
        weight = self.embed.weight if self.output is None else self.output.weight
        gen = F.linear(normed + self.pointer_input(states.pointed), weight, self.output_bias)  # (..., V)
        action = self.action_head(torch.cat([normed, states.pointed], dim=-1))  # (..., 3)
        return mixture(gen, action, states.copy_ids, skip_id=self.config.skip_id, pad_id=self.config.pad_id)


def _source_memory(memory: Memory) -> SourceMemory:
    if not isinstance(memory, SourceMemory):
        raise TypeError("an S2A model reads its source under the pointer: pass the Memory of its own "
                        f"encode, not a {type(memory).__name__}")
    return memory


def build_model(config: ModelConfig) -> Seq2Seq:
    """The model that `config` describes: a Seq2Seq, or an ActionSeq2Seq for model.actions = 's2a'."""
    return ActionSeq2Seq(config) if config.actions is Actions.S2A else Seq2Seq(config)
