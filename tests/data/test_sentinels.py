"""Sentinel augmentation puts the same sentinels on both sides of a share of the pairs, at
corresponding places, reproducibly."""

from __future__ import annotations

import random
from collections import Counter

from polyseq.data.corpus import Pair
from polyseq.data.sentinels import add_sentinels, with_sentinels
from polyseq.documents.protect import SENTINEL_RE, sentinel_ids

PAIRS = [Pair(f"the cat number {n} sat on Anna 's mat .", f"die Katze Nummer {n} saß auf Annas "
              "Matte .", "en", "de") for n in range(200)]


def test_every_augmented_pair_has_the_same_sentinels_on_both_sides() -> None:
    augmented = add_sentinels(PAIRS, 1.0, seed=3)
    assert all(SENTINEL_RE.search(p.src) for p in augmented)
    for pair, original in zip(augmented, PAIRS, strict=True):
        assert Counter(sentinel_ids(pair.src)) == Counter(sentinel_ids(pair.tgt)), pair
        for side, before in ((pair.src, original.src), (pair.tgt, original.tgt)):
            words, kept = before.split(), SENTINEL_RE.sub(" ", side).split()
            # untouched but for the sentinels and the one shared word (the number) they replace
            assert kept in (words, words[:3] + words[4:])
    assert add_sentinels(PAIRS, 1.0, seed=3) == augmented  # reproducible
    assert add_sentinels(PAIRS, 0.0, seed=3) == PAIRS


def test_a_share_of_the_pairs_is_augmented() -> None:
    augmented = add_sentinels(PAIRS, 0.25, seed=1)
    changed = sum(a != b for a, b in zip(augmented, PAIRS, strict=True))
    assert 25 <= changed <= 75


def test_a_word_found_once_on_each_side_is_replaced_or_wrapped_in_place() -> None:
    rng = random.Random(0)
    forms = set()
    for _ in range(100):
        pair = with_sentinels(PAIRS[7], rng)
        src, tgt = pair.src.split(" "), pair.tgt.split(" ")
        if SENTINEL_RE.sub("", src[3]) == "7" != src[3]:  # the only word on both sides
            assert src[3] == tgt[3] and SENTINEL_RE.fullmatch(src[3][-3:])
            forms.add("wrapped")
        elif "7" not in src:
            assert SENTINEL_RE.fullmatch(src[3]) and src[3] == tgt[3]
            forms.add("replaced")
        else:  # inserted at the same relative place
            at = next(i for i, w in enumerate(src) if SENTINEL_RE.fullmatch(w))
            to = next(i for i, w in enumerate(tgt) if SENTINEL_RE.fullmatch(w))
            assert abs(at / (len(src) - 1) - to / (len(tgt) - 1)) < 0.2
            forms.add("inserted")
    assert forms == {"replaced", "wrapped", "inserted"}


def test_training_data_and_tokenizer_carry_the_sentinels(tmp_path) -> None:
    from dataclasses import replace

    from helpers import tiny_experiment
    from polyseq.train.data import prepare_data

    config = tiny_experiment(tmp_path / "data", tmp_path / "run")
    data = replace(config.data, sentinel_rate=0.5)
    prepared = prepare_data(data, tmp_path / "tokenizer", seed=1, log=lambda m: None)
    tokenizer = prepared.tokenizer
    decoded = [tokenizer.decode(example.tgt) for example in prepared.train]
    with_sentinels = [text for text in decoded if SENTINEL_RE.search(text)]
    assert 0.3 < len(with_sentinels) / len(decoded) < 0.7
    assert tokenizer.decode(tokenizer.encode("vier ⟦12⟧ und ⟦3⟧fünf⟦4⟧")) == "vier ⟦12⟧ und ⟦3⟧fünf⟦4⟧"
    assert not any(SENTINEL_RE.search(pair.src) for valid in prepared.valid for pair in valid.pairs)
