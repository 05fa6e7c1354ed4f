"""Sentinel augmentation: teach a model to copy the ⟦n⟧ sentinels of document translation.

polyseq.documents replaces code, placeholders, URLs and markup inside a sentence by sentinels
⟦1⟧, ⟦2⟧ ... and needs each back exactly once. A model that never saw them drops them, and the
sentence must then be repaired (translated in pieces, which reads worse). This puts sentinels
into a share of the training pairs, on both sides, at places that correspond without an aligner:
a word that occurs once on each side is replaced by a sentinel (like a placeholder) or wrapped in
two (like emphasis); otherwise a sentinel goes at the same relative word position, most often
the start or the end.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from polyseq.data.corpus import Pair
from polyseq.documents.protect import sentinel


def add_sentinels(pairs: Sequence[Pair], rate: float, seed: int) -> list[Pair]:
    """`pairs` with a share `rate` of them (chosen with `seed`) given sentinels."""
    rng = random.Random(seed)
    return [with_sentinels(pair, rng) if rng.random() < rate else pair for pair in pairs]


def with_sentinels(pair: Pair, rng: random.Random) -> Pair:
    src, tgt = pair.src.split(" "), pair.tgt.split(" ")
    first = rng.randint(1, 4)  # a sentence of a document may hold later sentinels of its segment
    shared = sorted(word for word in set(src) & set(tgt)
                    if src.count(word) == tgt.count(word) == 1 and any(c.isalnum() for c in word))
    if shared and rng.random() < 0.6:
        word = rng.choice(shared)
        wrapped = f"{sentinel(first)}{word}{sentinel(first + 1)}"  # emphasis around the word
        new = sentinel(first) if rng.random() < 0.5 else wrapped  # or a placeholder for it
        src[src.index(word)], tgt[tgt.index(word)] = new, new
    else:
        place = rng.choice((0, len(src), rng.randint(0, len(src))))
        src.insert(place, sentinel(first))
        tgt.insert(round(place * len(tgt) / max(len(src) - 1, 1)), sentinel(first))
    return Pair(" ".join(src), " ".join(tgt), pair.src_lang, pair.tgt_lang)
