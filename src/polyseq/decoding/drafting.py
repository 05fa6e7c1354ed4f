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

from polyseq.data.batching import pad_rows
from polyseq.decoding.core import (
    DecodeInput,
    DecodeResult,
    DecodeStats,
    Hypothesis,
    LengthLimit,
    ModelRunner,
    max_positions,
    model_runner,
)

# The output layer runs in rounds: each costs a fixed part (reading the layer's weight) plus a part
# per position, and 8 positions per row cost about what 2 do. A confident drafter's first round
# has at least ROUND_POSITIONS positions in all: at batch 1 its whole draft at once; in a large
# batch the fixed part is shared, and small rounds still stop at each row's first mismatch.
FIRST_ROUND = 8
ROUND_POSITIONS = 64


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
    confident: bool  # most draft tokens are accepted (see ROUND_POSITIONS)

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
    run = model_runner(model, inputs.banned_id)
    memory = run.encode(inputs.src)
    cache = run.init_cache(memory, capacity=prefix_length + max(limits) + 2)
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
        counts = verify(run, memory, cache, alive, drafts, inputs.eos_id, inputs.pad_id, drafter.confident)
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


def verify(run: ModelRunner, memory: Any, cache: Any, rows: Sequence[Row], drafts: Sequence[list[int]],
           eos_id: int, pad_id: int, confident: bool) -> list[int]:
    """One forward pass over each row's pending tokens and draft; update the rows with the
    accepted draft prefix and the model's next token; roll the cache back. Returns the number
    of draft tokens each row accepted."""
    fed = [row.pending + draft for row, draft in zip(rows, drafts, strict=True)]
    start = cache.lengths.clone()
    states, project = run.decode(pad_rows(fed, pad_id).to(start.device), memory, cache, [len(f) for f in fed])
    firsts = [len(row.pending) - 1 for row in rows]  # the position predicting each first new token
    checked = _check_drafts(states, lambda chosen: run.choose(chosen, project), firsts, drafts, confident)
    counts, kept = [], []
    for row, (new_tokens, scores) in zip(rows, checked, strict=True):
        counts.append(len(new_tokens) - 1)
        kept.append(len(row.pending) + len(new_tokens) - 1)
        _extend(row, new_tokens, scores, eos_id)
    cache.truncate(start + torch.tensor(kept, device=start.device))
    return counts


def _check_drafts(states: torch.Tensor, choose: Any, firsts: Sequence[int], drafts: Sequence[list[int]],
                  confident: bool) -> list[tuple[list[int], list[float]]]:
    """Per row: the accepted draft prefix plus greedy's own next token, with their
    log-probabilities. The output layer (a large share of a pass) runs in rounds of growing
    size and only for rows that still agree with their draft, never on padding or on the
    positions after a row's first mismatch."""
    results: list[tuple[list[int], list[float]]] = [([], []) for _ in drafts]
    agreeing = list(range(len(drafts)))  # rows whose draft greedy has accepted so far
    begin = 0
    size = max(FIRST_ROUND, ROUND_POSITIONS // len(drafts)) if confident else FIRST_ROUND
    while agreeing:
        where = [(r, firsts[r] + j) for r in agreeing
                 for j in range(begin, min(begin + size, len(drafts[r]) + 1))]
        if len(agreeing) == 1:  # one row's positions in a row: a slice, not a gather
            row, first = where[0]
            picked = states[row, first : first + len(where)]  # (N, D)
        else:
            index = torch.tensor(where, device=states.device)  # (N, 2): row, position
            picked = states[index[:, 0], index[:, 1]]
        chosen, scores = choose(picked)  # greedy's choice and score, computed as greedy does
        for (r, _), token, score in zip(where, chosen, scores, strict=True):
            if _agrees(results[r][0], drafts[r]):  # else it left its draft earlier this round
                results[r][0].append(token)
                results[r][1].append(score)
        agreeing = [r for r in agreeing if _agrees(results[r][0], drafts[r])]
        begin, size = begin + size, 2 * size
    return results


def _agrees(tokens: list[int], draft: list[int]) -> bool:
    """Whether every token so far is the draft's, so the next prediction is still needed."""
    return not tokens or (len(tokens) <= len(draft) and tokens[-1] == draft[len(tokens) - 1])


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
