"""What translation needs from a tokenizer: the `TextTokenizer` protocol and a direction's `Framing`.

polyseq's own `Tokenizer` and the imported families (`polyseq.interop.tokenizers`) both implement
the protocol, so the translation path never asks which kind of tokenizer it holds. Each frames a
direction its own way: polyseq's as `<2tgt> text </s>` with the decoder starting at `<2tgt>`;
Marian, M2M-100, NLLB and mBART as those models were trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Framing:
    """The special ids of one translation direction."""

    source_head: tuple[int, ...]
    source_tail: tuple[int, ...]
    decoder_prefix: tuple[int, ...]  # the forced start of every output
    eos_id: int

    def source(self, ids: Sequence[int]) -> list[int]:
        """Encoder input: the head, the text's ids, the tail."""
        return [*self.source_head, *ids, *self.source_tail]

    def target(self, ids: Sequence[int]) -> list[int]:
        """Decoder prefix + target ids + EOS: to score a target, the decoder reads ids[:-1] and
        predicts ids[1:]."""
        return [*self.decoder_prefix, *ids, self.eos_id]


class TextTokenizer(Protocol):
    """A tokenizer as translation uses it."""

    @property
    def pad_id(self) -> int: ...

    @property
    def eos_id(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def languages(self) -> tuple[str, ...]: ...

    def encode(self, text: str) -> list[int]:
        """Source text -> ids, without framing."""
        ...

    def encode_target(self, text: str) -> list[int]:
        """Target text -> ids, without framing (a model may have a tokenizer per side)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Output ids -> text, without special ids and language tags."""
        ...

    def framing(self, src_lang: str | None, tgt_lang: str) -> Framing:
        """The framing of one direction; UnknownLanguageError for a language it does not know."""
        ...
