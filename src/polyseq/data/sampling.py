"""Direction sampling with a temperature (Arivazhagan et al. 2019), for many-to-many training.

Directions of unequal size are balanced per epoch: an epoch holds as many examples as the data,
direction d's share in proportion to n_d^(1/T). T = 1 keeps the data's own proportions (every
example exactly once, so the stream is the plain `BatchStream`, batch for batch), T = 5 raises
small directions, T = inf draws every direction equally. A direction drawn more often than it has
examples repeats all of them as often as they fit and samples the rest; one drawn less often is
sampled. The draw depends only on (seed, epoch), so `state()` / `load_state()` still resume
exactly, and the counts of examples drawn per direction (`drawn()`) are replayed from the state.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from polyseq.data.batching import BatchStream, token_batches

if TYPE_CHECKING:
    from polyseq.data.corpus import Example


def direction_shares(sizes: Mapping[str, int], temperature: float) -> dict[str, float]:
    """Each direction's probability: n_d^(1/T) normalised (T = inf: equal shares)."""
    if not sizes or min(sizes.values()) < 1:
        raise ValueError(f"every direction needs at least one example, got {dict(sizes)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    exponent = 0.0 if math.isinf(temperature) else 1.0 / temperature
    # relative to the largest direction, so that n^(1/T) cannot overflow for small T
    largest = max(sizes.values())
    weights = {name: (size / largest) ** exponent for name, size in sizes.items()}
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def epoch_counts(sizes: Mapping[str, int], temperature: float) -> dict[str, int]:
    """Examples of each direction in one epoch: the shares of sum(sizes), rounded by largest
    remainder so that they add up to it; T = 1 gives `sizes` exactly."""
    if temperature == 1.0:
        direction_shares(sizes, temperature)  # the same checks
        return dict(sizes)
    total = sum(sizes.values())
    exact = {name: share * total for name, share in direction_shares(sizes, temperature).items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (counts[name] - exact[name], name))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def epoch_indices(groups: Mapping[str, Sequence[int] | np.ndarray], counts: Mapping[str, int], *, seed: int,
                  epoch: int) -> list[int]:
    """The example indices of one epoch, sorted: per direction, all of its indices as many whole
    times as its count allows, and a seeded sample without replacement for the rest."""
    chosen: list[int] = []
    for number, name in enumerate(sorted(groups)):
        members = np.asarray(groups[name], dtype=np.int64)
        whole, rest = divmod(counts[name], len(members))
        chosen += members.tolist() * whole
        if rest:
            rng = np.random.default_rng([seed, epoch, number, 0x5A])
            chosen += members[rng.choice(len(members), rest, replace=False)].tolist()
    return sorted(chosen)


class DirectionBatchStream(BatchStream):
    """A `BatchStream` whose epochs draw each direction as `temperature` says, and which counts
    the examples it has returned per direction (`drawn()`). `directions[i]` names example i's
    direction ("en-de")."""

    def __init__(self, examples: Sequence[Example], directions: Sequence[str], temperature: float,
                 max_tokens: int, pad_id: int, seed: int):
        super().__init__(examples, max_tokens, pad_id, seed)
        if len(directions) != len(examples):
            raise ValueError(f"{len(directions)} directions for {len(examples)} examples")
        self._directions = list(directions)
        code = {name: number for number, name in enumerate(sorted(set(self._directions)))}
        codes = np.fromiter((code[name] for name in self._directions), dtype=np.int64,
                            count=len(self._directions))
        # each direction's example indices, as an array (a list of ints costs 36 bytes an index)
        self._groups = {name: np.flatnonzero(codes == number) for name, number in code.items()}
        self._counts = epoch_counts({name: len(m) for name, m in self._groups.items()}, temperature)
        # every example once per epoch: exactly the plain stream's batches
        self._plain = all(self._counts[name] == len(m) for name, m in self._groups.items())
        self._drawn: Counter[str] = Counter()

    @property
    def shares(self) -> dict[str, float]:
        """Each direction's share of an epoch."""
        total = sum(self._counts.values())
        return {name: count / total for name, count in sorted(self._counts.items())}

    def drawn(self) -> dict[str, int]:
        """Examples returned so far per direction, since the start of training."""
        return {name: self._drawn[name] for name in sorted(self._groups)}

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        if self._plain:
            return super()._epoch_batches(epoch)
        if self._batches_epoch != epoch:
            pool = epoch_indices(self._groups, self._counts, seed=self._seed, epoch=epoch)
            lengths = self._lengths[pool]
            batches = token_batches(lengths, self._max_tokens, seed=self._seed, epoch=epoch)
            self._batches = [[pool[i] for i in batch] for batch in batches]
            self._batches_epoch = epoch
        return self._batches

    def _advance(self) -> list[int]:
        indices = super()._advance()  # a batch skipped for another process counts too
        self._count(indices)
        return indices

    def _count(self, indices: Sequence[int]) -> None:
        self._drawn.update(self._directions[i] for i in indices)

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state()`; the counts drawn so far are replayed: whole epochs from the
        counts per epoch, the current one batch by batch."""
        super().load_state(state)
        self._drawn = Counter({name: count * self._epoch for name, count in self._counts.items()})
        for indices in self._epoch_batches(self._epoch)[: self._position]:
            self._count(indices)
