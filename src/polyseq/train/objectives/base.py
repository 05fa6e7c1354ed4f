"""What every training objective is: a name, the unit its loss is counted in, the batches it
trains on in a step, and its loss on one of them (`Objective`); and the weighted sum of the chosen
objectives that one optimizer step trains on (`Objectives.step`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from polyseq.data.batching import Batch, BatchStream, pad_rows
from polyseq.model.transformer import Seq2Seq, TeacherForced

Take = Callable[[BatchStream], list[Batch]]  # this process's share of a stream's next global batch


class Forward:
    """The model's forward for one batch of a step, through its DDP replica and under autocast:
    `forward(*args)` runs it. When an objective reads the states of the teacher-forced pass
    (`share`), `teacher_forced(batch)` runs that pass over `batch` once and hands the same output
    to every objective that reads it, so that translation and claps on the same batch share one
    forward and one backward; otherwise `logits(batch)` is the plain pass, as translation alone
    always ran (and as models without states, such as S2A correctors, need)."""

    def __init__(self, module: nn.Module, autocast: Callable[[], AbstractContextManager[Any]],
                 share: bool = False):
        self.module, self.autocast, self.share = module, autocast, share
        self.passes: dict[int, tuple[Batch, TeacherForced]] = {}  # by id(batch), the batch kept alive

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.autocast():
            return self.module(*args, **kwargs)

    def teacher_forced(self, batch: Batch) -> TeacherForced:
        if id(batch) not in self.passes:
            self.passes[id(batch)] = (batch, self(batch.src, batch.tgt_in, states=True))
        return self.passes[id(batch)][1]

    def logits(self, batch: Batch) -> Tensor:
        return self.teacher_forced(batch).logits if self.share else self(batch.src, batch.tgt_in)


@dataclass(frozen=True)
class StepContext:
    """Where in the run a step is, for objectives that corrupt their batches as they draw them:
    the same (seed, step, batch of the global batch) always gives the same corruption, so a
    resumed run needs no generator state, and N processes corrupt what one process would."""

    seed: int
    step: int
    rank: int = 0
    world_size: int = 1

    def rng(self, objective: str, index: int) -> random.Random:
        """The generator of this process's index-th batch (see polyseq.train.distributed.take_share)."""
        position = index * self.world_size + self.rank
        return random.Random(f"polyseq.objectives:{objective}:{self.seed}:{self.step}:{position}")


@dataclass
class Term:
    """An objective's loss on one batch, summed over its units, and its metrics (sums too)."""

    loss: Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    name: str
    unit: str  # what count() counts and the loss is averaged over: "tokens" or "sentences"
    reads_states: bool  # reads the states of the teacher-forced pass (Forward.teacher_forced)

    @property
    def head(self) -> nn.Module | None:
        """Parameters of its own that train with the model (claps's projection); None if none."""

    def batches(self, translation: list[Batch], take: Take, context: StepContext,
                device: torch.device) -> list[Any]:
        """This process's batches of the step, one per translation batch, on `device`."""

    def count(self, batch: Any) -> int:
        """The units in `batch` (known before the forward, to normalise by the global batch)."""

    def loss(self, forward: Forward, model: Seq2Seq, batch: Any) -> Term:
        """The loss on `batch`; `forward` runs the model (as its DDP replica), `model` is the
        module itself, for the parts of it an objective reads outside a forward."""

    def state(self) -> dict[str, Any]:
        """What a resumed run needs (its stream's position); {} when nothing."""

    def load_state(self, state: dict[str, Any]) -> None: ...


class OnTranslationBatches:
    """An objective that trains on the step's translation batches and keeps no state of its own."""

    reads_states = False
    head: nn.Module | None = None

    def batches(self, translation: list[Batch], take: Take, context: StepContext,
                device: torch.device) -> list[Any]:
        return translation

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class StepResult:
    loss: float  # sum over objectives of weight x mean loss
    tokens: int  # target tokens of the objectives counted in tokens, in the global batch
    metrics: dict[str, dict[str, float]]  # per objective: loss and its metrics, per unit


class Objectives:
    """The objectives a run trains on, with their weights, in the order of train.objectives."""

    def __init__(self, chosen: Sequence[tuple[Objective, float]]):
        if not chosen:
            raise ValueError("a run needs at least one objective")
        self.chosen = list(chosen)

    @property
    def names(self) -> list[str]:
        return [objective.name for objective, _ in self.chosen]

    def heads(self) -> nn.ModuleDict:
        """The objectives' own parameters, by objective: the trainer optimizes and saves them."""
        return nn.ModuleDict({o.name: o.head for o, _ in self.chosen if o.head is not None})

    def step(self, translation: list[Batch], take: Take, context: StepContext, *,
             module: nn.Module, model: Seq2Seq, sum_all: Callable[[list[float]], list[float]],
             accumulating: Callable[[bool], AbstractContextManager[Any]],
             autocast: Callable[[], AbstractContextManager[Any]]) -> StepResult:
        """Forward and backward of one optimizer step: every objective's loss over the global
        batch is divided by its global count, weighted and summed; gradients accumulate over the
        step's batches (`accumulating(last)` around each, for DDP)."""
        device = translation[0].src.device
        parts = [(objective, weight, objective.batches(translation, take, context, device))
                 for objective, weight in self.chosen]
        counts = [int(c) for c in sum_all([float(sum(o.count(b) for b in bs)) for o, _, bs in parts])]

        sums: list[dict[str, float]] = [{} for _ in parts]
        share = any(objective.reads_states for objective, _ in self.chosen)
        for index in range(len(translation)):
            with accumulating(index == len(translation) - 1):
                total: Tensor | None = None
                forward = Forward(module, autocast, share)
                for (objective, weight, batches), count, found in zip(parts, counts, sums, strict=True):
                    term = objective.loss(forward, model, batches[index])
                    # weight 1.0 multiplies nothing: translation alone keeps its exact arithmetic
                    scaled = term.loss / count if weight == 1.0 else term.loss / count * weight
                    total = scaled if total is None else total + scaled
                    for key, value in {"loss": term.loss.item(), **term.metrics}.items():
                        found[key] = found.get(key, 0.0) + float(value)
                assert total is not None
                total.backward()
        keys = [sorted(found) for found in sums]
        flat = sum_all([found[key] for found, names in zip(sums, keys, strict=True) for key in names])
        metrics, at = {}, 0
        for (objective, _, _), count, names in zip(parts, counts, keys, strict=True):
            metrics[objective.name] = {key: flat[at + i] / max(count, 1) for i, key in enumerate(names)}
            at += len(names)
        loss = sum(weight * metrics[o.name]["loss"] for o, weight in self.chosen)
        tokens = sum(count for (o, _, _), count in zip(parts, counts, strict=True) if o.unit == "tokens")
        return StepResult(loss, tokens, metrics)

    def state(self) -> dict[str, Any]:
        return {objective.name: objective.state() for objective, _ in self.chosen}

    def load_state(self, state: dict[str, Any]) -> None:
        for objective, _ in self.chosen:
            objective.load_state(state.get(objective.name, {}))


def body_rows(src: Tensor, pad_id: int) -> list[list[int]]:
    """The rows of a right-padded (B, S) batch without their padding."""
    return [row[row != pad_id].tolist() for row in src.cpu()]


def repad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> Tensor:
    return pad_rows(rows, pad_id).to(device)
