"""Input-guided aggressive decoding (IAD; Sun et al. 2021, Ge et al. 2022), lossless.

For tasks whose output mostly copies the input (error correction, simplification, post-editing)
the draft is the input itself. Each iteration verifies the whole remaining draft in one
`decode_step`, accepts the longest prefix greedy agrees with plus the model's own next token, and
after a mismatch re-aligns the draft to the input: it finds the last few generated tokens in the
source, nearest to where the draft was, and continues the draft after them. Output == greedy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyseq.config import ConfigError
from polyseq.decoding.core import DecodeInput, DecodeResult, LengthLimit, StrategySpec
from polyseq.decoding.drafting import Row, draft_and_verify, find_continuation

Cursor = Callable[[Sequence[int], Sequence[int]], int]  # (source, output so far) -> next source index


@dataclass(frozen=True)
class AggressiveConfig:
    max_length: LengthLimit = field(default_factory=LengthLimit)
    max_draft: int = 0  # tokens verified per pass at most; 0 = the whole remaining input
    adaptive: bool = False  # after a mismatch, verify less of the input next time (see InputDrafter)
    min_draft: int = 4
    align_ngram: int = 2  # generated tokens matched against the input to re-align after a mismatch

    def __post_init__(self) -> None:
        if self.max_draft < 0 or self.align_ngram < 1 or self.min_draft < 1:
            raise ConfigError("max_draft must be >= 0, min_draft and align_ngram >= 1")


class InputDrafter:
    """Proposes the rest of each row's source from a cursor that follows the output.

    Every position of a draft costs compute in the verifying pass, and all positions after a
    mismatch are wasted; so with `adaptive`, a row that left its draft verifies twice what it
    accepted (at least `min_draft`) next time, and doubles its budget again while it agrees."""

    confident = True  # the input is mostly right (see drafting.ROUND_POSITIONS)

    def __init__(self, rows: Sequence[Row], config: AggressiveConfig, cursor_of: Cursor | None = None):
        self.config = config
        self.cursor_of = cursor_of
        self.cursors = [0] * len(rows)  # index in the row's source of the next expected token
        self.budgets = [config.max_draft or len(row.source) + 1 for row in rows]

    def propose(self, rows: Sequence[Row]) -> list[list[int]]:
        return [row.source[cursor : cursor + budget]
                for row, cursor, budget in zip(rows, self.cursors, self.budgets, strict=True)]

    def accepted(self, rows: Sequence[Row], counts: Sequence[int], drafts: Sequence[list[int]]) -> None:
        for position, (row, count, draft) in enumerate(zip(rows, counts, drafts, strict=True)):
            cursor = self.cursors[position] + count
            if count < len(draft) or cursor < len(row.source):  # the model left the draft
                cursor = self._realign(row, cursor)
            self.cursors[position] = cursor
            if self.config.adaptive:
                budget = 2 * self.budgets[position] if count == len(draft) else 2 * (count + 1)
                ceiling = self.config.max_draft or len(row.source) + 1
                self.budgets[position] = min(max(budget, self.config.min_draft), ceiling)

    def _realign(self, row: Row, cursor: int) -> int:
        """Where in the source the output continues: where the model says (`cursor_of`), or judged
        by the output's last few tokens."""
        if self.cursor_of is not None:
            return self.cursor_of(row.source, row.tokens)
        for n in range(self.config.align_ngram, 0, -1):
            found = find_continuation(row.source, row.tokens[-n:], near=cursor + 1)
            if found is not None and len(row.tokens) >= n:
                return found
        return cursor + 1  # no anchor: assume the model replaced one source token

    def keep(self, positions: Sequence[int]) -> None:
        self.cursors = [self.cursors[p] for p in positions]
        self.budgets = [self.budgets[p] for p in positions]


def copy_sources(inputs: DecodeInput) -> list[list[int]]:
    """What the output is expected to copy: each source without padding and without leading
    tokens that repeat the decoder prefix (polyseq puts the target-language tag on both sides)."""
    sources = []
    for row in range(inputs.batch_size):
        tokens = [t for t in inputs.src[row].tolist() if t != inputs.pad_id]
        prefix = inputs.prefix[row].tolist()
        if tokens[: len(prefix)] == prefix:
            tokens = tokens[len(prefix) :]
        sources.append(tokens)
    return sources


def aggressive(model: Any, inputs: DecodeInput, config: AggressiveConfig) -> DecodeResult:
    # a model that follows its source with a pointer (Sequence-to-Action) knows where its output
    # is in the source, where the n-gram search would guess
    cursor_of = getattr(model, "source_cursor", None)
    return draft_and_verify(model, inputs, config.max_length, copy_sources(inputs),
                            lambda model, memory, rows, inputs: InputDrafter(rows, config, cursor_of))


STRATEGY = StrategySpec("aggressive", aggressive, AggressiveConfig)
