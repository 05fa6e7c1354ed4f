"""Training data for a Sequence-to-Action model (model.actions = "s2a"): every target, training and
validation, becomes its action sequence over its source (polyseq.model.actions.action_target), so
that the loss and the validation BLEU see what the model decodes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from polyseq.data.corpus import Example
from polyseq.model.actions import COPY, GEN, SKIP, action_target, actions
from polyseq.train.data import PreparedData, ValidSet


def to_action_targets(examples: Sequence[Example], skip_id: int) -> list[Example]:
    """Each example with its target as an action sequence over its source."""
    return [Example(example.src, action_target(example.src, example.tgt, skip_id)) for example in examples]


def action_counts(examples: Sequence[Example], skip_id: int) -> dict[str, int]:
    """How many target tokens (after the decoder's first) are SKIP, COPY and GEN."""
    counts = [0, 0, 0]
    for example in examples:
        for action in actions(example.src, example.tgt, skip_id)[1:]:
            counts[action] += 1
    return {"skip": counts[SKIP], "copy": counts[COPY], "gen": counts[GEN]}


def with_action_targets(data: PreparedData, skip_id: int, max_length: int, log: Any = print) -> PreparedData:
    """`data` with action-sequence targets. A training target that its skips make longer than
    `max_length` tokens is left out, as data.max_length leaves out long pairs."""
    converted = to_action_targets(data.train, skip_id)
    kept = [i for i, example in enumerate(converted) if len(example.tgt) <= max_length]
    train = [converted[i] for i in kept]
    directions = [data.train_directions[i] for i in kept] if data.train_directions else []
    valid = [ValidSet(v.direction, v.pairs, to_action_targets(v.examples, skip_id)) for v in data.valid]
    counts = action_counts(train, skip_id)
    total = max(sum(counts.values()), 1)
    log(f"action targets: {', '.join(f'{name} {100 * n / total:.1f}%' for name, n in counts.items())} "
        f"of {total:,} target tokens; {len(converted) - len(train):,} examples longer than "
        f"data.max_length={max_length} with their skips left out")
    summary = {**data.summary, "train_examples": len(train), "actions": counts}
    return replace(data, train=train, valid=valid, summary=summary, train_directions=directions)
