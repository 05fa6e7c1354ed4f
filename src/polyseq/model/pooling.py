"""Sentence embeddings from the encoder: states averaged over a span of each row, at every layer.

The layers' outputs are read with forward hooks for the length of one call, so the model's code
is the same one that translates; the last entry is the encoder's output (after its final norm),
what the decoder reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from polyseq.data.batching import pad_rows
from polyseq.model.transformer import Seq2Seq


@torch.inference_mode()
def pooled_states(model: Seq2Seq, rows: Sequence[Sequence[int]], spans: Sequence[tuple[int, int]],
                  batches: Sequence[Sequence[int]], pad_id: int) -> list[Tensor]:
    """Per encoder layer, an (N, D) tensor: row i's states averaged over positions
    spans[i][0] .. spans[i][1] - 1. `batches` groups the row indices (each index once)."""
    if len(spans) != len(rows) or any(not 0 <= a < b <= len(row)
                                      for (a, b), row in zip(spans, rows, strict=True)):
        raise ValueError("each row needs a non-empty span inside it")
    device = next(model.parameters()).device
    layers = list(model.encoder_layers)
    pooled = [torch.zeros(len(rows), model.config.d_model) for _ in range(len(layers))]
    seen: list[Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, output: seen.append(output)) for layer in layers[:-1]]
    try:
        for batch in batches:
            seen.clear()
            src = pad_rows([rows[i] for i in batch], pad_id).to(device)  # (B, S)
            memory = model.encode(src)
            weights = _span_weights([spans[i] for i in batch], src.shape[1]).to(device)  # (B, S)
            for layer, states in enumerate([*seen, memory.states]):
                mean = torch.einsum("bs,bsd->bd", weights, states.float())  # (B, D)
                pooled[layer][torch.tensor(list(batch))] = mean.cpu()
    finally:
        for hook in hooks:
            hook.remove()
    return pooled


def _span_weights(spans: Sequence[tuple[int, int]], length: int) -> Tensor:
    """(B, S): 1 / span length inside each row's span, 0 elsewhere."""
    positions = torch.arange(length)[None, :]  # (1, S)
    starts = torch.tensor([a for a, _ in spans])[:, None]
    ends = torch.tensor([b for _, b in spans])[:, None]
    inside = (positions >= starts) & (positions < ends)
    return inside.float() / (ends - starts).float()
