"""Draft-and-verify: the loop behind the lossless strategies (aggressive, speculative).

Each iteration, a Drafter proposes some tokens per row; the model reads every row's pending token
and its draft in one `decode_step`, and each row keeps the longest draft prefix that greedy agrees
with plus the model's own next token. The cache is rolled back per row with `truncate`, so rows
accept different lengths in the same batch. Accepted tokens are, by construction, the argmax
choices greedy makes after the same prefix, so the output is greedy's output; what the draft
changes is only how many forward passes it takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from polyseq.decoding.core import (
    DecodeInput,
    DecodeResult,
    DecodeStats,
    Hypothesis,
    LengthLimit,
    max_positions,
)


@dataclass
class Row:
    """One input's progress: what is generated, and what the model has not read yet."""

    index: int  # the input row
    limit: int  # at most this many generated tokens
    source: list[int]  # the source tokens (for drafters that copy from it)
    tokens: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # accepted, not yet in the model's cache
    log_prob: float = 0.0
    finished: bool = False  # ended with EOS
    done: bool = False  # ended with EOS or at the length limit


class Drafter(Protocol):
    def propose(self, rows: Sequence[Row]) -> list[list[int]]:
        """Draft tokens to verify for each alive row (possibly none)."""
        ...

    def accepted(self, rows: Sequence[Row], counts: Sequence[int], drafts: Sequence[list[int]]) -> None:
        """Told how many draft tokens each row accepted (rows already updated)."""
        ...

    def keep(self, positions: Sequence[int]) -> None:
        """The alive rows were narrowed to `positions` (finished rows left)."""
        ...


def draft_and_verify(model: Any, inputs: DecodeInput, max_length: LengthLimit, sources: list[list[int]],
                     make_drafter: Any) -> DecodeResult:
    """Decode greedily with drafts from `make_drafter(model, memory, rows, inputs)`."""
    prefix_length = inputs.prefix.shape[1]
    limits = max_length.for_input(inputs, max_positions(model) - prefix_length).tolist()
    memory = model.encode(inputs.src)
    cache = model.init_cache(memory, capacity=prefix_length + max(limits) + 2)
    rows = [Row(i, limits[i], sources[i], pending=inputs.prefix[i].tolist())
            for i in range(inputs.batch_size)]
    results, alive = list(rows), list(rows)
    drafter = make_drafter(model, memory, alive, inputs)
    stats = DecodeStats()
    while alive:
        # a row's draft never runs past its length limit, and the padded block of the batch must
        # stay inside the model's positions for the longest row too
        room = max_positions(model) - int(cache.lengths.max())
        drafts = [d[: max(min(row.limit - len(row.tokens) - 1, room - len(row.pending)), 0)]
                  for d, row in zip(drafter.propose(alive), alive, strict=True)]
        counts = verify(model, memory, cache, alive, drafts, inputs.eos_id, inputs.pad_id)
        stats.forward_passes += 1
        stats.draft_tokens += sum(len(d) for d in drafts)
        stats.accepted_draft_tokens += sum(counts)
        drafter.accepted(alive, counts, drafts)
        keep = [position for position, row in enumerate(alive) if not row.done]
        if len(keep) < len(alive):
            cache.reorder(torch.tensor(keep, dtype=torch.long, device=inputs.src.device))
            drafter.keep(keep)
            alive = [alive[position] for position in keep]
    hypotheses = [[Hypothesis(tuple(r.tokens), r.log_prob, r.log_prob, r.finished)] for r in results]
    stats.generated_tokens = sum(len(r.tokens) for r in results)
    return DecodeResult(hypotheses, stats)


def verify(model: Any, memory: Any, cache: Any, rows: Sequence[Row], drafts: Sequence[list[int]],
           eos_id: int, pad_id: int) -> list[int]:
    """One forward pass over each row's pending tokens and draft; update the rows with the
    accepted draft prefix and the model's next token; roll the cache back. Returns the number
    of draft tokens each row accepted."""
    blocks = [row.pending + draft for row, draft in zip(rows, drafts, strict=True)]
    width = max(len(block) for block in blocks)
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for position, block in enumerate(blocks):
        tokens[position, : len(block)] = torch.tensor(block)
    start = cache.lengths.clone()
    logits = model.decode_step(tokens.to(cache.lengths.device), memory, cache).float()  # (A, W, V)
    predicted = logits.argmax(dim=-1).tolist()  # (A, W): the greedy choice after each position
    counts, kept, accepted_tokens, where = [], [], [], []
    for position, (row, draft) in enumerate(zip(rows, drafts, strict=True)):
        first = len(row.pending) - 1  # the position whose prediction is the first new token
        guesses = predicted[position][first:]
        accepted = 0
        while accepted < len(draft) and guesses[accepted] == draft[accepted]:
            accepted += 1
        new_tokens = draft[:accepted] + [guesses[accepted]]
        accepted_tokens.append(new_tokens)
        where += [(position, first + offset, token) for offset, token in enumerate(new_tokens)]
        counts.append(accepted)
        kept.append(len(row.pending) + accepted)
    # log-probabilities only where tokens were accepted: a softmax over every draft position
    # would cost as much as the rest of the verification
    index = torch.tensor(where, device=logits.device)  # (N, 3): row, position, token
    chosen = logits[index[:, 0], index[:, 1]]  # (N, V)
    scores = (chosen.gather(1, index[:, 2:]).squeeze(1) - chosen.logsumexp(dim=-1)).tolist()
    for row, new_tokens in zip(rows, accepted_tokens, strict=True):
        _extend(row, new_tokens, scores[: len(new_tokens)], eos_id)
        scores = scores[len(new_tokens) :]
    cache.truncate(start + torch.tensor(kept, device=start.device))
    return counts


def _extend(row: Row, new_tokens: list[int], scores: list[float], eos_id: int) -> None:
    """Append accepted tokens up to EOS or the length limit, as greedy would have."""
    for token, score in zip(new_tokens, scores, strict=True):
        row.log_prob += score
        if token == eos_id:
            row.finished = row.done = True
            return
        row.tokens.append(token)
        if len(row.tokens) >= row.limit:
            row.done = True
            return
    row.pending = [new_tokens[-1]]


def find_continuation(haystack: Sequence[int], tail: Sequence[int], *, near: int = 0) -> int | None:
    """The index just after an occurrence of `tail` in `haystack`, the one ending closest to
    `near`; None if `tail` does not occur (or is empty)."""
    n = len(tail)
    if n == 0 or n > len(haystack):
        return None
    tail = list(tail)
    ends = [i + n for i in range(len(haystack) - n + 1) if list(haystack[i : i + n]) == tail]
    if not ends:
        return None
    return min(ends, key=lambda end: (abs(end - near), end))
