"""translation: label-smoothed cross-entropy of the target given the source, per target token.
The objective every run had before there were others; alone, it trains exactly as it always did."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from polyseq.data.batching import Batch, BatchStream
from polyseq.data.corpus import Example
from polyseq.model.transformer import Seq2Seq
from polyseq.train.objectives.base import Forward, OnTranslationBatches, StepContext, Take, Term
from polyseq.train.objectives.losses import label_smoothed_nll


def cross_entropy_term(forward: Forward, batch: Batch, smoothing: float, pad_id: int) -> Term:
    """Label-smoothed cross-entropy of batch's targets, teacher-forced, with the plain NLL."""
    logits = forward.logits(batch)
    loss, nll, _ = label_smoothed_nll(logits, batch.tgt_out, smoothing=smoothing, pad_id=pad_id)
    return Term(loss, {"nll": nll.item()})


class Translation(OnTranslationBatches):
    name, unit = "translation", "tokens"

    def __init__(self, smoothing: float, pad_id: int):
        self.smoothing, self.pad_id = smoothing, pad_id

    def count(self, batch: Batch) -> int:
        return batch.tgt_tokens

    def loss(self, forward: Forward, model: Seq2Seq, batch: Batch) -> Term:
        return cross_entropy_term(forward, batch, self.smoothing, self.pad_id)


class OwnExamples:
    """An objective that trains like translation on examples of its own, from a stream of its own
    (its position is saved with the run): the base of denoising, code-switching restore and TransliCo."""

    name, unit, reads_states = "", "tokens", False
    head: nn.Module | None = None

    def __init__(self, name: str, examples: Sequence[Example], pad_id: int, *, max_tokens: int,
                 smoothing: float, seed: int):
        if not examples:
            raise ValueError(f"the {name} objective has no examples (see docs/objectives.md for its data)")
        self.name, self.pad_id, self.smoothing = name, pad_id, smoothing
        self.stream = BatchStream(examples, max_tokens, pad_id, seed)

    def batches(self, translation: list[Batch], take: Take, context: StepContext,
                device: torch.device) -> list[Batch]:
        return [batch.to(device) for batch in take(self.stream)]

    def count(self, batch: Batch) -> int:
        return batch.tgt_tokens

    def loss(self, forward: Forward, model: Seq2Seq, batch: Batch) -> Term:
        return cross_entropy_term(forward, batch, self.smoothing, self.pad_id)

    def state(self) -> dict[str, Any]:
        return self.stream.state()

    def load_state(self, state: dict[str, Any]) -> None:
        if state:
            try:
                self.stream.load_state(state)
            except ValueError as error:  # its own data changed (objectives.monolingual's files, say)
                raise ValueError(f"cannot resume the {self.name} objective's data stream: {error}") from None
