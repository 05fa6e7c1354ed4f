"""claps: contrastive learning with adversarial perturbations (CLAPS; Lee et al. 2021), on the
translation batches.

The anchor is the source's mean-pooled encoder states, the positive the target's mean-pooled
decoder states. Two perturbations of the decoder states make the hard cases:
  - an imposter (a hard negative): a small step (objectives.claps_imposter of each state's norm)
    along the gradient of the target's NLL, so close to the target but less likely;
  - a distant target (a hard positive): a large step (objectives.claps_distant) along the
    gradient of the contrastive loss, away from the source, then a smaller one
    (objectives.claps_back) back along the gradient of the KL divergence from the target's
    distribution, so far from the target but about as likely.
The loss per sentence is InfoNCE of the anchor against its target and against its distant
target, each among the batch's other targets and every imposter. The perturbation directions are
constants (no gradient flows through them), as in the paper. Beside translation, claps reads
translation's own teacher-forced pass over the batch (one forward and one backward for both), so
the contrastive loss sees the states whose NLL translation trains, under the same dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from polyseq.config import ObjectivesConfig
from polyseq.data.batching import Batch
from polyseq.model.transformer import Seq2Seq
from polyseq.train.objectives.base import Forward, OnTranslationBatches, Term
from polyseq.train.objectives.losses import info_nce, mean_pool


def _step(direction: Tensor, states: Tensor, size: float) -> Tensor:
    """A step of `size` x each position's state norm along each position's unit direction."""
    unit = F.normalize(direction, dim=-1)
    return (size * unit * states.detach().norm(dim=-1, keepdim=True)).detach()


class Claps(OnTranslationBatches):
    name, unit, reads_states = "claps", "sentences", True

    def __init__(self, pad_id: int, settings: ObjectivesConfig):
        self.pad_id = pad_id
        self.imposter, self.distant, self.back = (settings.claps_imposter, settings.claps_distant,
                                                  settings.claps_back)
        self.temperature = settings.temperature

    def count(self, batch: Batch) -> int:
        return batch.size

    def loss(self, forward: Forward, model: Seq2Seq, batch: Batch) -> Term:
        out = forward.teacher_forced(batch)  # translation's pass over the batch, when it trains too
        mask = batch.tgt_out != self.pad_id  # (B, T)
        hidden = out.hidden  # (B, T, D)
        log_probs = out.logits.float().log_softmax(-1)
        nll = -(log_probs.gather(-1, batch.tgt_out[..., None]).squeeze(-1) * mask).sum()
        source = mean_pool(out.memory.states, out.memory.mask)  # (B, D)
        target = mean_pool(hidden, mask)
        plain, _ = info_nce(source, target, self.temperature)
        less_likely = torch.autograd.grad(nll, hidden, retain_graph=True)[0]
        away = torch.autograd.grad(plain, hidden, retain_graph=True)[0]
        imposters = hidden + _step(less_likely, hidden, self.imposter)
        far = (hidden + _step(away, hidden, self.distant)).detach().requires_grad_(True)
        drift = self._drift(model, far, log_probs)
        back = torch.autograd.grad((drift * mask).sum(), far)[0]
        distant = hidden + _step(away, hidden, self.distant) - _step(back, hidden, self.back)
        negatives = mean_pool(imposters, mask)
        with_target, top = info_nce(source, target, self.temperature, negatives)
        with_distant, _ = info_nce(source, mean_pool(distant, mask), self.temperature, negatives)
        with torch.no_grad():  # how far the distant targets drifted from the targets' distributions
            kl_per_sentence = ((self._drift(model, distant, log_probs) * mask).sum(1) / mask.sum(1)).sum()
        return Term(with_target + with_distant,
                    {"retrieval": top.item(), "distant_kl": kl_per_sentence.item()})

    @staticmethod
    def _drift(model: Seq2Seq, states: Tensor, log_probs: Tensor) -> Tensor:
        """KL(target distribution || the distribution at `states`) per position (B, T)."""
        return F.kl_div(model.project(states).float().log_softmax(-1), log_probs.detach(),
                        log_target=True, reduction="none").sum(-1)
