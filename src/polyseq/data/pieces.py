"""Texts as the pieces a model decodes, and back.

A text longer than the model takes is split at sentence ends, then between words, until every
piece fits; its pieces' outputs are joined with a space. Nothing is cut: one enormous word is split
between its token ids. An empty (or whitespace-only) text has no piece and comes back as "".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

Item = TypeVar("Item")

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class Pieces:
    ids: list[list[int]]  # each piece's token ids, unframed
    owners: list[int]  # the input each piece belongs to, in input order
    inputs: int  # how many texts there were

    @property
    def split_inputs(self) -> int:
        """Inputs too long for the model, decoded in more than one piece."""
        return sum(count > 1 for count in Counter(self.owners).values())

    def firsts(self) -> list[bool]:
        """Whether each piece is its input's first."""
        return [i == 0 or self.owners[i - 1] != owner for i, owner in enumerate(self.owners)]

    def by_input(self, outputs: Sequence[Item]) -> list[list[Item]]:
        """One output per piece, grouped by the input they belong to (none for an empty one)."""
        grouped: list[list[Item]] = [[] for _ in range(self.inputs)]
        for owner, output in zip(self.owners, outputs, strict=True):
            grouped[owner].append(output)
        return grouped

    def join(self, outputs: Sequence[str]) -> list[str]:
        """One text per input from one output per piece."""
        return [" ".join(parts) for parts in self.by_input(outputs)]


def split_into_pieces(texts: Sequence[str], encode: Encode, max_tokens: int) -> Pieces:
    """Every text as pieces of at most `max_tokens` token ids (see the module's docstring)."""
    ids: list[list[int]] = []
    owners: list[int] = []
    for owner, text in enumerate(texts):
        if not text.strip():
            continue
        for piece in _split_to_fit(text.strip(), encode, max_tokens):
            ids.append(piece)
            owners.append(owner)
    return Pieces(ids, owners, len(texts))


def _split_to_fit(text: str, encode: Encode, max_tokens: int) -> list[list[int]]:
    ids = encode(text)
    if len(ids) <= max_tokens:
        return [ids]
    sentences = _SENTENCE_END.split(text)
    if len(sentences) == 1:
        words = text.split()
        if len(words) == 1:  # one enormous word: cut its token ids, which keeps every token
            return [ids[i : i + max_tokens] for i in range(0, len(ids), max_tokens)]
        half = len(words) // 2
        sentences = [" ".join(words[:half]), " ".join(words[half:])]
    pieces: list[list[int]] = []
    current = ""
    for sentence in sentences:  # greedily pack sentences into pieces that still fit
        candidate = f"{current} {sentence}" if current else sentence
        if current and len(encode(candidate)) > max_tokens:
            pieces.extend(_split_to_fit(current, encode, max_tokens))
            current = sentence
        else:
            current = candidate
    pieces.extend(_split_to_fit(current, encode, max_tokens))
    return pieces
