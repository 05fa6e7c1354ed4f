"""Training losses. Each returns a summed loss (and, for the token-level ones, the count it covers),
so that callers can normalise across gradient-accumulation steps by the true count of the whole
global batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def label_smoothed_nll(
    logits: Tensor, targets: Tensor, *, smoothing: float, pad_id: int
) -> tuple[Tensor, Tensor, int]:
    """Label-smoothed cross-entropy (Szegedy et al. 2016) summed over non-pad targets.

    logits (B, T, V), targets (B, T). Returns (smoothed loss sum, plain NLL sum, token count); the
    smoothing mass is spread uniformly over the vocabulary as in fairseq, less the tokens the model
    can never produce (a logit of -inf everywhere: an imported Marian model's <pad>).
    """
    log_probs = logits.float().log_softmax(dim=-1)  # (B, T, V)
    mask = targets != pad_id  # (B, T)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    loss = (1.0 - smoothing) * nll + smoothing * -_possible_mean(log_probs) if smoothing else nll
    return loss[mask].sum(), nll[mask].sum(), int(mask.sum())


def _possible_mean(log_probs: Tensor) -> Tensor:
    """The mean log-probability of the tokens the model can produce, (B, T). A suppressed token
    is -inf at every position, so one position tells which they are."""
    suppressed = torch.isneginf(log_probs.reshape(-1, log_probs.shape[-1])[0])
    if not bool(suppressed.any()):
        return log_probs.mean(dim=-1)
    return log_probs[..., ~suppressed].mean(dim=-1)


def mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    """states (B, T, D) averaged over the True positions of mask (B, T): (B, D)."""
    weights = mask.to(states.dtype)
    return (states * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp(min=1.0)


def same_sentence(src: Tensor, pad_id: int) -> Tensor:
    """(B, B), True where two rows of a right-padded source batch (B, S) hold the same sentence,
    their first token (the target-language tag) aside; False on the diagonal. An English-centric
    batch holds the same English sentence on its way to several languages, and a corpus repeats
    short lines ("2."): such rows are no negatives of each other."""
    bodies = src[:, 1:]
    same = (bodies[:, None, :] == bodies[None, :, :]).all(-1)  # equal padding too: equal lengths
    return same & ~torch.eye(len(src), dtype=torch.bool, device=src.device)


def info_nce(anchors: Tensor, positives: Tensor, temperature: float,
             extra_negatives: Tensor | None = None, same: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """InfoNCE (van den Oord et al. 2018) with in-batch negatives, summed over the rows.

    anchors, positives (B, D): row i's positive is positives[i], its negatives every other row of
    `positives` but those `same` (B, B) marks as the same sentence, and, when given, every row of
    extra_negatives (N, D). Cosine similarity over `temperature`. Returns (loss sum, how many rows
    rank their positive first)."""
    a = F.normalize(anchors.float(), dim=-1)
    candidates = positives if extra_negatives is None else torch.cat([positives, extra_negatives])
    scores = a @ F.normalize(candidates.float(), dim=-1).T / temperature  # (B, B [+ N])
    if same is not None:
        scores = torch.cat([scores[:, : len(a)].masked_fill(same, -math.inf), scores[:, len(a):]], 1)
    labels = torch.arange(a.shape[0], device=a.device)
    loss = F.cross_entropy(scores, labels, reduction="sum")
    return loss, (scores.argmax(-1) == labels).sum()
