"""claps: contrastive learning with adversarial perturbations (CLAPS; Lee et al. 2021), on the
translation batches.

A projection head of its own (Linear + ReLU, trained with the model, saved with the run for
resume) maps the states into the space where the contrast is measured, so the contrastive pull
lands on the head first and not whole on the states translation reads. The anchor is the source's
mean-pooled projected encoder states, the positive the target's mean-pooled projected decoder
states. Two perturbations of the (detached) decoder states make each sentence's hard cases:
  - its imposter (a hard negative): a small step (objectives.claps_imposter of each state's norm)
    along the gradient of the target's NLL, so close to the target but less likely;
  - its distant target (a hard positive): a large step (objectives.claps_distant) along the
    gradient of the contrastive loss, away from the source, then a smaller one
    (objectives.claps_back) back along the gradient of the KL divergence from the target's
    distribution, so far from the target but about as likely.
The loss per sentence is the mean of two InfoNCE terms: the anchor against its target, and
against its distant target (at temperature 1), each among the batch's other targets and its own
imposter. As in the authors' code, the perturbed views are built from detached states, so their
gradient reaches the head alone; the anchor and the target pass theirs into the model. Beside
translation, claps reads translation's own teacher-forced pass over the batch (one forward and one
backward for both).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polyseq.config import ObjectivesConfig
from polyseq.data.batching import Batch
from polyseq.model.transformer import Seq2Seq
from polyseq.train.objectives.base import Forward, OnTranslationBatches, Term
from polyseq.train.objectives.losses import mean_pool, same_sentence


def _step(direction: Tensor, states: Tensor, size: float) -> Tensor:
    """A step of `size` x each position's state norm along each position's unit direction."""
    return (size * F.normalize(direction, dim=-1) * states.norm(dim=-1, keepdim=True)).detach()


class Claps(OnTranslationBatches):
    name, unit, reads_states = "claps", "sentences", True

    def __init__(self, pad_id: int, settings: ObjectivesConfig, width: int, seed: int):
        self.pad_id = pad_id
        self.imposter, self.distant, self.back = (settings.claps_imposter, settings.claps_distant,
                                                  settings.claps_back)
        self.temperature = settings.temperature
        with torch.random.fork_rng(devices=[]):  # the same head in every process, the RNG untouched
            torch.manual_seed(seed)
            self.head: nn.Module = nn.Sequential(nn.Linear(width, width), nn.ReLU())

    def count(self, batch: Batch) -> int:
        return batch.size

    def loss(self, forward: Forward, model: Seq2Seq, batch: Batch) -> Term:
        out = forward.teacher_forced(batch)  # translation's pass over the batch, when it trains too
        mask = batch.tgt_out != self.pad_id  # (B, T)
        memory, states = out.memory, out.hidden.detach()  # (B, S, D), (B, T, D)
        source = self._pooled(forward, memory.states, memory.mask)  # (B, D), gradient into the model
        target = self._pooled(forward, out.hidden, mask)
        log_probs = out.logits.detach().float().log_softmax(-1)  # (B, T, V)
        imposters = states + _step(self._gradient(self._nll(forward, model, batch), states), states,
                                   self.imposter)
        anchors = self._pooled(forward, memory.states.detach(), memory.mask)
        same = same_sentence(batch.src, self.pad_id)
        away = self._gradient(lambda s: self._contrast(anchors, self._pooled(forward, s, mask), same)[0],
                              states)
        far = states + _step(away, states, self.distant)
        back = self._gradient(lambda s: (self._drift(forward, model, s, log_probs) * mask).sum(), far)
        distant = far - _step(back, states, self.back)
        imposter = self._pooled(forward, imposters, mask)  # gradient into the head alone
        with_target, top = self._contrast(source, target, same, imposter=imposter)
        # at temperature 1, as in the authors' code: the distant target carries the gradient of the
        # anchor's own loss, and sharpened it becomes a shortcut the contrast learns in place of the
        # source (on a tiny model, retrieval among the targets then stays at chance)
        with_distant, _ = self._contrast(source, target, same, imposter=imposter, temperature=1.0,
                                         distant=self._pooled(forward, distant, mask))
        with torch.no_grad():  # how far the distant targets drifted from the targets' distributions
            drift = self._drift(forward, model, distant, log_probs)
            kl_per_sentence = ((drift * mask).sum(1) / mask.sum(1)).sum()
        return Term(0.5 * (with_target + with_distant),
                    {"retrieval": top.item(), "distant_kl": kl_per_sentence.item()})

    def _pooled(self, forward: Forward, states: Tensor, mask: Tensor) -> Tensor:
        with forward.autocast():
            return mean_pool(self.head(states), mask).float()

    def _contrast(self, source: Tensor, target: Tensor, same: Tensor, *, distant: Tensor | None = None,
                  imposter: Tensor | None = None, temperature: float | None = None) -> tuple[Tensor, Tensor]:
        """InfoNCE summed over the rows: row i's positive is target i (or, given, distant i), its
        negatives the other targets but those of the same source sentence (`same`, (B, B): they
        translate it too) and (given) its own imposter; cosine similarities over the temperature
        (objectives.temperature unless given). Returns (loss, rows that rank their positive first)."""
        anchors = F.normalize(source, dim=-1)
        scores = (anchors @ F.normalize(target, dim=-1).T).masked_fill(same, -math.inf)  # (B, B) cosines
        if distant is not None:
            scores = scores.diagonal_scatter((anchors * F.normalize(distant, dim=-1)).sum(-1))
        if imposter is not None:
            scores = torch.cat([scores, (anchors * F.normalize(imposter, dim=-1)).sum(-1, keepdim=True)], 1)
        labels = torch.arange(scores.shape[0], device=scores.device)
        scores = scores / (self.temperature if temperature is None else temperature)
        return F.cross_entropy(scores, labels, reduction="sum"), (scores.argmax(-1) == labels).sum()

    def _nll(self, forward: Forward, model: Seq2Seq, batch: Batch) -> Callable[[Tensor], Tensor]:
        """The targets' NLL as a function of the decoder states."""
        def nll(states: Tensor) -> Tensor:
            with forward.autocast():
                logits = model.project(states)
            return F.cross_entropy(logits.float().transpose(1, 2), batch.tgt_out, ignore_index=self.pad_id,
                                   reduction="sum")
        return nll

    @staticmethod
    def _gradient(function: Callable[[Tensor], Tensor], states: Tensor) -> Tensor:
        """d function(states) / d states, for a perturbation's direction (a constant: no graph)."""
        with torch.enable_grad():
            leaf = states.detach().requires_grad_(True)
            return torch.autograd.grad(function(leaf), leaf)[0]

    @staticmethod
    def _drift(forward: Forward, model: Seq2Seq, states: Tensor, log_probs: Tensor) -> Tensor:
        """KL(target distribution || the distribution at `states`) per position (B, T)."""
        with forward.autocast():
            logits = model.project(states)
        return F.kl_div(logits.float().log_softmax(-1), log_probs, log_target=True,
                        reduction="none").sum(-1)
