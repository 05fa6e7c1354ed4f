"""Training losses. Each returns a summed loss and the token count it covers, so that callers can
normalise across gradient-accumulation steps by the true number of target tokens."""

from __future__ import annotations

from torch import Tensor


def label_smoothed_nll(
    logits: Tensor, targets: Tensor, *, smoothing: float, pad_id: int
) -> tuple[Tensor, Tensor, int]:
    """Label-smoothed cross-entropy (Szegedy et al. 2016) summed over non-pad targets.

    logits (B, T, V), targets (B, T). Returns (smoothed loss sum, plain NLL sum, token count); the
    smoothing mass is spread uniformly over the vocabulary as in fairseq.
    """
    log_probs = logits.float().log_softmax(dim=-1)  # (B, T, V)
    mask = targets != pad_id  # (B, T)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    uniform = -log_probs.mean(dim=-1)  # (B, T)
    loss = (1.0 - smoothing) * nll + smoothing * uniform
    return loss[mask].sum(), nll[mask].sum(), int(mask.sum())
