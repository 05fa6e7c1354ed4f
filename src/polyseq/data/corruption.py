"""Corruptions of the denoising and E2S2 training objectives: what a model must undo.

This module owns the corruptions and nothing else (the objectives in polyseq.train.objectives
choose what to corrupt and what to predict):

- BART's text infilling (Lewis et al. 2020): spans with Poisson(λ) lengths, each replaced by one
  mask id, so that the model must also learn how many tokens are missing (`span_infill`);
- BART's sentence permutation, on text (`permute_sentences`);
- E2S2's locality-constrained corruption (Zhong et al. 2022): masks, random tokens and swaps with
  a near neighbour, length-preserving so that position i of the output is position i of the
  input (`corrupt_tokens`).

Token functions work on the ids of a sentence body: no language tag and no eos (the caller strips
and re-adds them, so that they are never masked or moved).

Every function is pure given its `random.Random`: it reads only its arguments, draws only from
the generator it is passed (no numpy or module-level random state), and returns new values; the
same generator state gives the same output.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from random import Random

# Above this mean the inverse CDF's first term exp(-λ) loses precision (it underflows near 745),
# so a larger λ is drawn as a sum of Poisson draws with means of at most this.
_POISSON_CHUNK = 30.0

# A sentence ends with . ! ? or … (repeated: "?!", "..."), then any closing quotes or brackets,
# then whitespace; or with 。！？ and its closing marks, which Chinese and Japanese follow with no
# space. The whitespace (group 1, maybe empty) is the separator that stays in place.
_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？]+[」』\"'”’»）)\]]*)(\s*)")


# --------------------------------------------------------------------------- settings


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_denoising(ratio: float, poisson_lambda: float) -> None:
    _check_share("ratio", ratio)
    if not (poisson_lambda > 0.0 and math.isfinite(poisson_lambda)):
        raise ValueError(f"poisson_lambda (the mean span length) must be a finite number > 0, "
                         f"got {poisson_lambda}")


def _check_e2s2(rate: float, mask_share: float, random_share: float, shuffle_distance: int) -> None:
    _check_share("rate", rate)
    _check_share("mask_share", mask_share)
    _check_share("random_share", random_share)
    if mask_share + random_share > 1.0:
        raise ValueError(f"mask_share + random_share must be at most 1 (the rest are swaps), "
                         f"got {mask_share} + {random_share}")
    if isinstance(shuffle_distance, bool) or not isinstance(shuffle_distance, int) \
            or shuffle_distance < 1:
        raise ValueError(f"shuffle_distance must be an int >= 1, got {shuffle_distance!r}")


# --------------------------------------------------------------------------- text infilling


def poisson(mean: float, rng: Random) -> int:
    """A draw from Poisson(`mean`) by inverse CDF: one rng.random() per chunk of the mean."""
    if not (mean > 0.0 and math.isfinite(mean)):
        raise ValueError(f"a Poisson mean must be a finite number > 0, got {mean}")
    chunks = math.ceil(mean / _POISSON_CHUNK)  # a sum of Poissons is Poisson with the summed mean
    total = 0
    for _ in range(chunks):
        part = mean / chunks
        u, k = rng.random(), 0
        p = cumulative = math.exp(-part)
        while u > cumulative and p > 0.0:  # p reaches 0 only where rounding keeps cumulative < 1
            k += 1
            p *= part / k
            cumulative += p
        total += k
    return total


def infill_spans(length: int, rng: Random, *, ratio: float = 0.3,
                 poisson_lambda: float = 3.0) -> list[tuple[int, int]]:
    """The spans that `span_infill` masks in a body of `length` tokens: (start, length) pairs
    in order, not overlapping, whose lengths sum to round(ratio * length). A 0-length span is an
    insertion before `start`.

    Lengths are drawn from Poisson(λ) until they reach the count (the last one cut to fit), then
    placed uniformly: the spans and the kept tokens are put in a random order.
    """
    _check_denoising(ratio, poisson_lambda)
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    count = min(round(ratio * length), length)
    lengths: list[int] = []
    total = 0
    while total < count:
        span = min(poisson(poisson_lambda, rng), count - total)
        lengths.append(span)
        total += span
    rng.shuffle(lengths)  # else the cut span would always come last
    slots = sorted(rng.sample(range(len(lengths) + length - count), len(lengths)))
    spans: list[tuple[int, int]] = []
    masked = 0
    for rank, (slot, span) in enumerate(zip(slots, lengths, strict=True)):
        kept = slot - rank  # kept tokens before this span
        spans.append((kept + masked, span))
        masked += span
    return spans


def span_infill(ids: Sequence[int], rng: Random, *, mask_id: int, ratio: float = 0.3,
                poisson_lambda: float = 3.0, max_length: int | None = None) -> list[int]:
    """`ids` with the spans of `infill_spans` each replaced by one `mask_id` (a 0-length span
    inserts one). Two spans may touch: their masks are then neighbours.

    With `max_length`, the last 0-length spans insert nothing while the result would be longer
    (as far as they allow: a span that covers tokens always keeps its mask, so `len(ids)` is
    always reached); the generator is drawn from as without it."""
    spans = infill_spans(len(ids), rng, ratio=ratio, poisson_lambda=poisson_lambda)
    if max_length is not None:
        excess = len(ids) - sum(length for _, length in spans) + len(spans) - max_length
        for index in range(len(spans) - 1, -1, -1):
            if excess > 0 and spans[index][1] == 0:
                del spans[index]
                excess -= 1
    result: list[int] = []
    position = 0
    for start, span in spans:
        result.extend(ids[position:start])
        result.append(mask_id)
        position = start + span
    result.extend(ids[position:])
    return result


# --------------------------------------------------------------------------- sentence permutation


def split_sentences(text: str) -> tuple[list[str], list[str]]:
    """The sentences of `text` and the whitespace around them: `separators` has one more item
    than `sentences`, the leading whitespace first and the trailing last, so that
    text == separators[0] + sentences[0] + separators[1] + ... + sentences[-1] + separators[-1].

    A sentence ends after . ! ? or … (and any closing quotes or brackets) followed by
    whitespace, or after 。！？ (and their closing marks) followed by anything, so that a separator
    may be empty. The rule needs no model or dependency, and splits after abbreviations ("Dr. No"):
    for denoising that only makes a few more, shorter pieces to order.
    """
    body = text.strip()
    if not body:
        return [], [text]
    lead = text[:len(text) - len(text.lstrip())]
    sentences: list[str] = []
    separators = [lead]
    start = 0
    for match in _SENTENCE_END.finditer(body):
        if match.end() == len(body):  # a final 。 ends the last sentence, which follows the loop
            break
        sentences.append(body[start:match.start(1)])
        separators.append(body[match.start(1):match.end(1)])
        start = match.end(1)
    sentences.append(body[start:])
    separators.append(text[len(text.rstrip()):])
    return sentences, separators


def permute_sentences(text: str, rng: Random) -> str:
    """`text` with its sentences (see `split_sentences`) in a random order; the separators stay
    where they were, so only the sentences move. A text of one sentence comes back unchanged."""
    sentences, separators = split_sentences(text)
    if len(sentences) < 2:
        return text
    rng.shuffle(sentences)
    parts = [separators[0]]
    for sentence, separator in zip(sentences, separators[1:], strict=True):
        parts += (sentence, separator)
    return "".join(parts)


# --------------------------------------------------------------------------- E2S2 corruption


def corrupt_tokens(ids: Sequence[int], rng: Random, *, rate: float, mask_id: int,
                   vocabulary: Sequence[int], mask_share: float = 0.8, random_share: float = 0.1,
                   shuffle_distance: int = 3) -> tuple[list[int], list[bool]]:
    """`ids` corrupted in place of their positions, and `changed[i] = output[i] != ids[i]`.

    round(rate * len(ids)) positions are chosen; round(mask_share * chosen) of them become
    `mask_id`, round(random_share * chosen) a token drawn from `vocabulary`, and each of the rest
    is swapped with a position at most `shuffle_distance` away that was not chosen and not yet
    swapped (none free: left as is). Every token thus moves at most once and at most
    `shuffle_distance`; a swap also changes its partner, so up to rate * (1 + swap share) of the
    positions change. A random token equal to the original, or a swap of equal tokens, is not a
    change.
    """
    _check_e2s2(rate, mask_share, random_share, shuffle_distance)
    if random_share > 0.0 and not vocabulary:
        raise ValueError("corrupt_tokens needs a non-empty vocabulary to draw random tokens from "
                         "(or random_share=0)")
    result = list(ids)
    chosen = rng.sample(range(len(result)), round(rate * len(result)))  # in a random order
    masks = round(mask_share * len(chosen))
    randoms = min(round(random_share * len(chosen)), len(chosen) - masks)
    for i in chosen[:masks]:
        result[i] = mask_id
    for i in chosen[masks:masks + randoms]:
        result[i] = rng.choice(vocabulary)
    # partners are never chosen positions: a masked one would move its mask, a swapped one its
    # token a second time (up to twice the distance)
    busy = set(chosen)
    for i in chosen[masks + randoms:]:
        near = range(max(0, i - shuffle_distance), min(len(result), i + shuffle_distance + 1))
        free = [j for j in near if j not in busy]
        if free:
            j = rng.choice(free)
            busy.add(j)
            result[i], result[j] = result[j], result[i]
    return result, [new != old for new, old in zip(result, ids, strict=True)]


__all__ = [
    "corrupt_tokens",
    "infill_spans",
    "permute_sentences",
    "poisson",
    "span_infill",
    "split_sentences",
]
