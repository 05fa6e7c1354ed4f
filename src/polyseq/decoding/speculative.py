"""Speculative decoding (generalized aggressive decoding), lossless and batched.

Drafts come from one of two places:
- `draft="model"`: a smaller polyseq model with the same tokenizer proposes k tokens greedily on
  its own cache; k adapts to how much the main model accepts.
- `draft="ngram"`: no second model; the last few generated tokens are looked up in the source and
  in the output so far, and the tokens that followed there are the draft (prompt lookup that also
  searches the source).
The main model verifies every draft in one pass (see drafting.py), so the output is greedy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from polyseq.config import ConfigError
from polyseq.data.batching import pad_rows
from polyseq.decoding.aggressive import copy_sources
from polyseq.decoding.core import (
    DecodeInput,
    DecodeResult,
    LengthLimit,
    StrategySpec,
    max_positions,
    model_runner,
    without,
)
from polyseq.decoding.drafting import Row, draft_and_verify, find_continuation
from polyseq.model.checkpoint import load_model


@dataclass(frozen=True)
class SpeculativeConfig:
    draft: str = "ngram"  # "ngram" or "model"
    draft_model: Any = None  # a loaded model for draft="model" (see load_draft_model)
    k: int = 4  # draft-model tokens per pass (the start value when adaptive)
    adaptive: bool = True
    max_k: int = 16
    # draft="model": a row's draft ends after the first token the draft model gives less than
    # this probability (0: every row drafts k tokens)
    confidence: float = 0.0
    ngram: int = 3  # longest n-gram looked up for draft="ngram"
    max_length: LengthLimit = field(default_factory=LengthLimit)

    def __post_init__(self) -> None:
        if self.draft not in ("ngram", "model"):
            raise ConfigError(f"draft must be 'ngram' or 'model', not {self.draft!r}")
        if self.draft == "model" and self.draft_model is None:
            raise ConfigError("draft='model' needs draft_model (a loaded polyseq model)")
        if isinstance(self.draft_model, (str, Path)):
            raise ConfigError(f"draft_model {str(self.draft_model)!r} is a path: load it once with "
                              "polyseq.decoding.speculative.load_draft_model, or give the path to a "
                              "Translator, which does")
        if not 1 <= self.k <= self.max_k or self.ngram < 1:
            raise ConfigError("need 1 <= k <= max_k and ngram >= 1")
        if not 0.0 <= self.confidence <= 1.0:
            raise ConfigError(f"confidence is a probability, from 0 to 1, not {self.confidence}")


class NgramDrafter:
    """Looks the output's last n tokens up in the source and the output; proposes what followed.

    A lookup costs nothing, but every drafted position costs compute in the verifying pass. So
    a row drafts up to `max_k` tokens and, with `adaptive`, after a pass that left its draft,
    half its budget (at least one more than it accepted); after a pass that took the whole
    draft, twice its budget again. A copying task keeps long drafts, translation short ones."""

    confident = False

    def __init__(self, rows: Sequence[Row], config: SpeculativeConfig):
        self.config = config
        self.budgets = [config.max_k] * len(rows)

    def propose(self, rows: Sequence[Row]) -> list[list[int]]:
        return [self._lookup(row)[:budget] for row, budget in zip(rows, self.budgets, strict=True)]

    def _lookup(self, row: Row) -> list[int]:
        history = row.tokens
        for n in range(min(self.config.ngram, len(history)), 0, -1):
            tail = history[-n:]
            found = find_continuation(row.source, tail, near=len(history))
            if found is not None and found < len(row.source):
                return row.source[found : found + self.config.max_k]
            found = find_continuation(history[:-1], tail, near=len(history))
            if found is not None:
                return history[found : found + self.config.max_k]
        return [] if history else row.source[: self.config.max_k]

    def accepted(self, rows: Sequence[Row], counts: Sequence[int], drafts: Sequence[list[int]]) -> None:
        if not self.config.adaptive:
            return
        for position, (count, draft) in enumerate(zip(counts, drafts, strict=True)):
            if not draft:  # nothing was found to draft: the budget was not tried
                continue
            budget = self.budgets[position]
            if count == len(draft):
                self.budgets[position] = min(2 * budget, self.config.max_k)
            else:
                self.budgets[position] = max(budget // 2, count + 1)

    def keep(self, positions: Sequence[int]) -> None:
        self.budgets = [self.budgets[p] for p in positions]


class ModelDrafter:
    """A small model proposes up to k tokens greedily; its cache follows the accepted output.
    With `confidence`, a row's draft ends after the first token the small model is unsure of,
    and the drafting steps stop once every row's draft has ended: a token the main model would
    likely reject costs a drafting step and a verified position, and the ones after it are
    wasted. Its passes are native where they can be (see `model_runner`), as most of a small
    model's step is per-call overhead that they leave out. A draft model with fewer positions
    than the job needs drafts until they are full (or not at all, for a source longer than they
    are), then proposes nothing: the main model goes on alone, with greedy's output still."""

    confident = False

    def __init__(self, draft_model: Any, inputs: DecodeInput, rows: Sequence[Row], config: SpeculativeConfig):
        if not all(hasattr(draft_model, name) for name in ("encode", "init_cache", "decode_step")):
            raise ConfigError("draft_model must be a polyseq model or a model with "
                              f"encode, init_cache and decode_step, not {type(draft_model).__name__}")
        run = model_runner(draft_model)
        self.config, self.k, self.decode = config, config.k, run.decode
        self.pad_id, self.eos_id, self.banned = inputs.pad_id, inputs.eos_id, inputs.banned_id
        self.positions = max_positions(draft_model)
        self.pending = [list(row.pending) for row in rows]  # accepted, not yet in the draft cache
        self.fed = 0  # tokens of the last proposal that entered the draft cache
        self.full = inputs.src.shape[1] > self.positions  # no more room in the draft model
        if self.full:
            return
        capacity = inputs.prefix.shape[1] + max(row.limit for row in rows) + config.max_k + 2
        self.memory = run.encode(inputs.src)
        self.cache = run.init_cache(self.memory, capacity=min(capacity, self.positions))

    @torch.inference_mode()
    def propose(self, rows: Sequence[Row]) -> list[list[int]]:
        widths = [len(p) for p in self.pending]
        self.full = self.full or int(self.cache.lengths.max()) + max(widths) > self.positions
        if self.full:
            return [[] for _ in rows]
        self.start = self.cache.lengths.clone()
        counts = torch.tensor(widths, device=self.start.device)
        tokens = pad_rows(self.pending, self.pad_id).to(self.start.device)
        states, project = self.decode(tokens, self.memory, self.cache, widths)
        self.cache.truncate(self.start + counts)  # keep only the real pending tokens, then draft
        if min(widths) == max(widths):  # no padding: every row's last token is the last column
            last = states[:, -1]  # (A, D)
        else:
            last = states[torch.arange(len(rows), device=states.device), counts - 1]
        token, drafting = self._choose(project(last))  # (A,) each
        # drafting: rows whose draft has not ended (None: no floor, every row drafts k tokens)
        drafts, sures = [token], ([] if drafting is None else [drafting])
        # each further draft token enters the cache first: near the model's last position, fewer
        most = min(self.k, 1 + self.positions - int(self.cache.lengths.max()))
        while len(drafts) < most and (drafting is None or bool(drafting.any())):
            states, project = self.decode(token[:, None], self.memory, self.cache)
            token, sure = self._choose(project(states[:, 0]))
            drafts.append(token)
            if drafting is not None and sure is not None:
                sures.append(sure)
                drafting = drafting & sure
        self.fed = len(drafts) - 1  # the last draft token has not entered the draft cache
        proposed = torch.stack(drafts, dim=1).tolist()  # (A, n)
        if drafting is not None:  # cut each row's draft after its first unsure token
            ends = [row.index(False) + 1 if False in row else len(row)
                    for row in torch.stack(sures, dim=1).tolist()]
            proposed = [draft[:end] for draft, end in zip(proposed, ends, strict=True)]
        return [d[: d.index(self.eos_id) + 1] if self.eos_id in d else d for d in proposed]

    def _choose(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The draft model's choice per row (A,), and whether it is sure of it (A,) bool; None
        without a confidence floor, where there is nothing to check (and no sync on a GPU)."""
        logits = logits.float()
        if self.config.confidence <= 0.0:
            return without(logits, self.banned).argmax(dim=-1), None
        best, token = without(logits, self.banned).max(dim=-1)  # the main model never takes it
        probability = (best - logits.logsumexp(dim=-1)).exp()
        return token, probability >= self.config.confidence

    def accepted(self, rows: Sequence[Row], counts: Sequence[int], drafts: Sequence[list[int]]) -> None:
        if self.full:
            return
        # the draft cache holds pending + the proposal's first `fed` tokens; keep what was accepted
        in_cache = [min(count, self.fed) for count in counts]
        base = self.start + torch.tensor([len(p) for p in self.pending], device=self.start.device)
        self.cache.truncate(base + torch.tensor(in_cache, device=base.device))
        self.pending = [
            draft[kept:count] + row.pending
            for draft, kept, count, row in zip(drafts, in_cache, counts, rows, strict=True)
        ]
        if self.config.adaptive:  # grow while everything is accepted, shrink when little is
            if all(count == len(draft) for count, draft in zip(counts, drafts, strict=True)):
                self.k = min(self.k + 2, self.config.max_k)
            elif sum(counts) < len(counts) * self.k / 2:
                self.k = max(self.k - 1, 1)

    def keep(self, positions: Sequence[int]) -> None:
        self.pending = [self.pending[p] for p in positions]
        if not self.full:
            index = torch.tensor(positions, dtype=torch.long, device=self.cache.lengths.device)
            self.cache.reorder(index)


def load_draft_model(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """A draft model's directory, loaded for decoding."""
    return load_model(path, device=device)


def speculative(model: Any, inputs: DecodeInput, config: SpeculativeConfig) -> DecodeResult:
    if config.draft == "ngram":
        return draft_and_verify(model, inputs, config.max_length, copy_sources(inputs),
                                lambda model, memory, rows, inputs: NgramDrafter(rows, config))
    return draft_and_verify(
        model, inputs, config.max_length, copy_sources(inputs),
        lambda model, memory, rows, inputs: ModelDrafter(config.draft_model, inputs, rows, config),
    )


STRATEGY = StrategySpec("speculative", speculative, SpeculativeConfig)
