"""The corruptions of the denoising and E2S2 objectives on hand-made ids and sentences:
determinism and purity, BART's infilling (masked share, one mask per span, kept order, Poisson
lengths), sentence permutation (only the order changes), E2S2's length-preserving corruption
(shares, `changed`, local swaps), and argument errors."""

from __future__ import annotations

import itertools
import math
import statistics
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyseq.data.corruption import (
    corrupt_tokens,
    infill_spans,
    permute_sentences,
    poisson,
    span_infill,
    split_sentences,
)

MASK = 9999
LONG = list(range(1000))  # distinct ids: where a token went can be read off the output
VOCABULARY = list(range(5000, 6000))  # disjoint from LONG: a random token is recognisable
TEXT = ("Колись давно я прочитав статтю. Чи просто коментар? Вже не згадаю! "
        "The fox jumped… Then it slept.\n\n\"Really?\" she asked.")
SEEDS = range(10)
SEED = st.integers(0, 2**32 - 1)
RATIO = st.floats(0.0, 1.0)


def is_subsequence(short: list[int], long: list[int]) -> bool:
    rest = iter(long)
    return all(token in rest for token in short)


def infill(ids: list[int], seed: int, **kwargs: float) -> list[int]:
    return span_infill(ids, Random(seed), mask_id=MASK, **kwargs)


def corrupt(ids: list[int], seed: int, **kwargs: float) -> tuple[list[int], list[bool]]:
    return corrupt_tokens(ids, Random(seed), mask_id=MASK, vocabulary=VOCABULARY,
                          **{"rate": 0.15, **kwargs})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- Poisson lengths


@pytest.mark.parametrize(("mean", "draws", "tolerance"), [(0.5, 20000, 0.03), (3.0, 20000, 0.06),
                                                         (100.0, 2000, 1.0)])
def test_poisson_draws_have_the_mean_and_variance_of_lambda(mean: float, draws: int,
                                                            tolerance: float) -> None:
    rng = Random(0)
    values = [poisson(mean, rng) for _ in range(draws)]  # 100: a sum of chunks
    assert all(isinstance(v, int) and v >= 0 for v in values)
    assert abs(statistics.fmean(values) - mean) < tolerance  # about 4 standard errors
    assert abs(statistics.variance(values) / mean - 1) < 0.1
    if mean < 10:
        assert abs(values.count(0) / draws - math.exp(-mean)) < 0.02


# ----------------------------------------------------------------------------- text infilling


def test_infilling_is_deterministic_pure_and_depends_on_the_seed() -> None:
    ids = list(range(40))
    assert infill(ids, 3) == infill(ids, 3)
    assert ids == list(range(40))  # the input is not changed
    assert len({tuple(infill(ids, seed)) for seed in SEEDS}) > 5


def test_infilling_at_ratio_0_or_on_nothing_changes_nothing() -> None:
    ids = [5, 6, 7, 8]
    result = infill(ids, 0, ratio=0.0)
    assert result == ids and result is not ids
    assert infill([], 0, ratio=0.5) == []
    assert infill([5], 0, ratio=0.4) == [5]  # round(0.4) = 0 tokens to mask


def test_ratio_1_masks_everything() -> None:
    result = infill(list(range(50)), 0, ratio=1.0)
    assert set(result) == {MASK}


def test_the_masked_share_of_a_long_input_is_the_ratio_and_each_span_is_one_mask() -> None:
    for seed in SEEDS:
        result = infill(LONG, seed)
        spans = infill_spans(len(LONG), Random(seed))
        assert result.count(MASK) == len(spans) > 50  # about 300 / 3 spans
        masked = len(LONG) - (len(result) - result.count(MASK))  # the tokens no longer there
        assert masked == sum(length for _, length in spans) == 300
        assert abs(masked / len(LONG) - 0.3) <= 0.5 / len(LONG)  # rounding to a whole count
        assert [t for t in result if t != MASK] == [t for i, t in enumerate(LONG)
                                                    if not any(s <= i < s + n for s, n in spans)]


def test_zero_length_spans_insert_a_mask() -> None:
    # with a small λ most spans have length 0: many more masks than masked tokens
    result = infill(LONG, 0, ratio=0.05, poisson_lambda=0.2)
    masked = len(LONG) - (len(result) - result.count(MASK))
    assert masked == 50 and result.count(MASK) > 100
    assert len(result) > len(LONG)


def test_a_length_limit_leaves_out_the_masks_of_0_length_spans_not_those_of_covered_tokens() -> None:
    # seed 31 on 5 tokens: spans (0, 1), (1, 0) and (4, 1), one mask more than masked tokens
    assert infill_spans(5, Random(31)) == [(0, 1), (1, 0), (4, 1)]
    ids = [10, 11, 12, 13, 14]
    assert infill(ids, 31) == [MASK, MASK, 11, 12, 13, MASK]
    # the insertion goes; token 14 keeps the mask that says it is missing
    assert span_infill(ids, Random(31), mask_id=MASK, max_length=5) == [MASK, 11, 12, 13, MASK]
    assert span_infill(ids, Random(31), mask_id=MASK, max_length=6) == infill(ids, 31)
    assert span_infill([10, 11], Random(31), mask_id=MASK, max_length=2) == [10, MASK]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=30), SEED, RATIO, st.floats(0.1, 4.0))
def test_infilling_within_the_input_length_masks_every_covered_span(ids: list[int], seed: int, ratio: float,
                                                                     lam: float) -> None:
    distinct = list(range(100, 100 + len(ids)))  # where a token went can be read off the output
    spans = infill_spans(len(ids), Random(seed), ratio=ratio, poisson_lambda=lam)
    rng = Random(seed)
    result = span_infill(distinct, rng, mask_id=MASK, ratio=ratio, poisson_lambda=lam,
                         max_length=len(ids))
    reference = Random(seed)
    infill_spans(len(ids), reference, ratio=ratio, poisson_lambda=lam)
    assert rng.getstate() == reference.getstate()  # drawn from as without the limit
    assert len(result) <= len(ids)
    assert result.count(MASK) >= sum(1 for _, length in spans if length)
    # a token is missing only where a mask stands in its place: no silent deletion
    expected = [t for t in distinct if not any(s <= t - 100 < s + n for s, n in spans)]
    assert [t for t in result if t != MASK] == expected
    for before, after in zip(result, result[1:], strict=False):
        if before != MASK and after != MASK:
            assert after == before + 1
    kept = [t for t in result if t != MASK]
    if kept:
        assert kept[0] == 100 or result[0] == MASK
        assert kept[-1] == 100 + len(ids) - 1 or result[-1] == MASK


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=80), SEED, RATIO, st.floats(0.1, 12.0))
def test_infilling_properties(ids: list[int], seed: int, ratio: float, lam: float) -> None:
    spans = infill_spans(len(ids), Random(seed), ratio=ratio, poisson_lambda=lam)
    result = span_infill(ids, Random(seed), mask_id=MASK, ratio=ratio, poisson_lambda=lam)
    assert result.count(MASK) == len(spans)
    assert sum(length for _, length in spans) == min(round(ratio * len(ids)), len(ids))
    ends = [0] + [start + length for start, length in spans]
    assert all(end <= start for end, (start, _) in zip(ends, spans, strict=False))  # no overlap
    assert ends[-1] <= len(ids)
    assert is_subsequence([t for t in result if t != MASK], ids)


# ----------------------------------------------------------------------------- sentence permutation


def reorderings(text: str) -> set[str]:
    """Every text made of `text`'s sentences in some order, with its separators in place."""
    sentences, separators = split_sentences(text)
    made = set()
    for order in itertools.permutations(sentences):
        made.add(separators[0] + "".join(s + sep for s, sep in zip(order, separators[1:], strict=True)))
    return made


def test_split_sentences_on_a_hand_made_text() -> None:
    sentences, separators = split_sentences("  Hi there. How are you?! \"Fine.\" Ok…\n\nEnd ")
    assert sentences == ["Hi there.", "How are you?!", "\"Fine.\"", "Ok…", "End"]
    assert separators == ["  ", " ", " ", " ", "\n\n", " "]
    assert split_sentences("3.14 is pi.") == (["3.14 is pi."], ["", ""])  # no space after the point
    assert split_sentences("") == ([], [""]) and split_sentences(" \n") == ([], [" \n"])


def test_chinese_and_japanese_sentences_end_without_a_space() -> None:
    assert split_sentences("今天天气很好。我喜欢吃苹果！你呢？") == (
        ["今天天气很好。", "我喜欢吃苹果！", "你呢？"], ["", "", "", ""])
    assert split_sentences(" 「行こう。」と言った。 はい。\n") == (
        ["「行こう。」", "と言った。", "はい。"], [" ", "", " ", "\n"])
    text = "今天天气很好。我喜欢吃苹果。你呢？"
    outputs = {permute_sentences(text, Random(seed)) for seed in SEEDS}
    assert len(outputs) > 2 and outputs <= reorderings(text)


def test_permutation_only_reorders_the_sentences_and_depends_on_the_seed() -> None:
    outputs = {permute_sentences(TEXT, Random(seed)) for seed in SEEDS}
    assert len(outputs) > 5
    assert outputs <= reorderings(TEXT)
    for output in outputs:
        assert sorted(split_sentences(output)[0]) == sorted(split_sentences(TEXT)[0])
    assert permute_sentences(TEXT, Random(4)) == permute_sentences(TEXT, Random(4))


@pytest.mark.parametrize("text", ["", "  ", "One sentence.", "No end mark", " Padded! ", "Ok.Then"])
def test_a_single_sentence_is_unchanged(text: str) -> None:
    assert permute_sentences(text, Random(0)) == text


SENTENCE_TEXT = st.text(alphabet="ab .!?…\"»)\n\t。！」", max_size=40)


@settings(max_examples=300, deadline=None)
@given(SENTENCE_TEXT, SEED)
def test_sentences_and_separators_rebuild_the_text_and_permutation_keeps_them(text: str,
                                                                             seed: int) -> None:
    sentences, separators = split_sentences(text)
    assert len(separators) == len(sentences) + 1
    rebuilt = separators[0] + "".join(s + sep for s, sep in zip(sentences, separators[1:], strict=True))
    assert rebuilt == text
    assert all(s and s == s.strip() for s in sentences)
    assert all(not sep.strip() for sep in separators[1:-1])  # whitespace, or none after 。
    if len(sentences) <= 5:  # a few permutations to try
        assert permute_sentences(text, Random(seed)) in reorderings(text)


# ----------------------------------------------------------------------------- E2S2 corruption


def test_e2s2_is_deterministic_pure_and_depends_on_the_seed() -> None:
    ids = list(range(60))
    assert corrupt(ids, 1) == corrupt(ids, 1)
    assert ids == list(range(60))
    assert len({tuple(corrupt(ids, seed)[0]) for seed in SEEDS}) > 5


def test_e2s2_at_rate_0_or_on_nothing_changes_nothing() -> None:
    assert corrupt([5, 6, 7], 0, rate=0.0) == ([5, 6, 7], [False] * 3)
    assert corrupt([], 0, rate=0.5) == ([], [])


def test_e2s2_shares_on_a_long_input() -> None:
    for seed in SEEDS:
        result, changed = corrupt(LONG, seed)  # 150 chosen: 120 masks, 15 random, 15 swaps
        assert len(result) == len(changed) == len(LONG)
        assert result.count(MASK) == 120
        assert sum(t in VOCABULARY for t in result) == 15
        moved = [i for i, t in enumerate(result) if t in LONG and t != i]
        assert 26 <= len(moved) <= 30  # two per swap (a swap without a free neighbour is rare)
        assert all(abs(result[i] - i) <= 3 for i in moved)
        assert sum(changed) == 120 + 15 + len(moved)


def test_e2s2_other_shares() -> None:
    result, changed = corrupt(LONG, 0, rate=0.5, mask_share=0.0, random_share=0.0,
                              shuffle_distance=1)
    assert MASK not in result and sorted(result) == LONG  # only swaps, with the next neighbour
    assert all(abs(t - i) <= 1 for i, t in enumerate(result))
    assert sum(changed) % 2 == 0 and 200 < sum(changed) <= 1000  # many have no free neighbour
    result, _ = corrupt(LONG, 0, rate=0.2, mask_share=0.0, random_share=1.0)
    assert sum(t in VOCABULARY for t in result) == 200


def test_unchanged_corruptions_are_not_counted() -> None:
    same = [7] * 30
    result, changed = corrupt_tokens(same, Random(0), rate=1.0, mask_id=MASK, vocabulary=[7],
                                     mask_share=0.0, random_share=0.5)
    assert result == same and changed == [False] * 30  # random 7 for 7, swaps of 7 with 7
    result, changed = corrupt_tokens([MASK, 1], Random(0), rate=1.0, mask_id=MASK, vocabulary=[],
                                     random_share=0.0)
    assert result == [MASK, MASK] and changed == [False, True]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=60), SEED, RATIO, st.integers(1, 5),
       st.floats(0.0, 0.5), st.floats(0.0, 0.5))
def test_e2s2_properties(ids: list[int], seed: int, rate: float, distance: int, mask_share: float,
                         random_share: float) -> None:
    result, changed = corrupt_tokens(ids, Random(seed), rate=rate, mask_id=MASK,
                                     vocabulary=[0, 1, 100], mask_share=mask_share,
                                     random_share=random_share, shuffle_distance=distance)
    assert len(result) == len(changed) == len(ids)
    assert changed == [a != b for a, b in zip(result, ids, strict=True)]
    # with distinct ids, every token that is still there moved at most `distance`
    distinct = list(range(len(ids)))
    result, _ = corrupt_tokens(distinct, Random(seed), rate=rate, mask_id=MASK, vocabulary=[MASK + 1],
                               mask_share=mask_share, random_share=random_share,
                               shuffle_distance=distance)
    kept = [(i, t) for i, t in enumerate(result) if t in distinct]
    assert all(abs(i - t) <= distance for i, t in kept)
    assert len({t for _, t in kept}) == len(kept)  # nothing duplicated


# ----------------------------------------------------------------------------- settings and errors


def test_functions_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="ratio"):
        infill([1, 2], 0, ratio=2.0)
    with pytest.raises(ValueError, match="poisson_lambda"):
        infill([1, 2], 0, poisson_lambda=0.0)
    with pytest.raises(ValueError, match="length must be >= 0"):
        infill_spans(-1, Random(0))
    with pytest.raises(ValueError, match="Poisson mean"):
        poisson(-1.0, Random(0))
    with pytest.raises(ValueError, match="rate"):
        corrupt([1, 2], 0, rate=-1.0)
    with pytest.raises(ValueError, match="at most 1"):
        corrupt([1, 2], 0, mask_share=0.6, random_share=0.6)
    with pytest.raises(ValueError, match="shuffle_distance"):
        corrupt([1, 2], 0, shuffle_distance=0)
    with pytest.raises(ValueError, match="non-empty vocabulary"):
        corrupt_tokens([1, 2], Random(0), rate=0.5, mask_id=MASK, vocabulary=[])
