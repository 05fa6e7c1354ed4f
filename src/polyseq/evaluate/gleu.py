"""GLEU for grammatical error correction, as the official JFLEG script computes it.

GLEU (Generalized Language Evaluation Understanding; Napoles, Sakaguchi, Post and Tetreault, ACL 2015,
updated for several references in 2016, arXiv:1605.02592) is BLEU for corrections: it rewards the
n-grams a hypothesis shares with a reference and penalizes those it shares with the source that the
reference changed, so copying an error the annotator fixed costs a point instead of counting as
overlap. It is JFLEG's official metric (Napoles, Sakaguchi and Tetreault, EACL 2017); this module
reproduces `eval/gleu.py` of github.com/keisks/jfleg (Python 2) number for number.

For each sentence, reference r and order n = 1..4, with n-gram counts H (hypothesis), R (reference)
and S' (the source's n-grams that do not occur in R at all, with their source counts):

    match_n = max(0, |H ∩ R| - |H ∩ S'|)      (∩ takes the smaller count of each n-gram)
    total_n = max(0, len(hypothesis) + 1 - n)

The corpus score sums these, with hypothesis and reference lengths c and r, over sentences and is
BLEU's: exp(min(0, 1 - r/c) + sum_n log(match_n / total_n) / 4), or 0 when any sum is 0 (no
smoothing). With several references, each of `iterations` rounds picks one reference per sentence
at random (round j seeded with j * 101 and drawn as Python 2's `random.randint`) and scores the
corpus; the result is the mean over rounds, their standard deviation and a normal 95% interval
(one reference: one round, no spread). Text is tokenized, as in JFLEG: tokens are split on ASCII
whitespace, as the script splits its bytes.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from polyseq.evaluate import check_references

ORDER = 4  # the official script's n-gram order (and its fixed divisor in the geometric mean)


@dataclass(frozen=True)
class GleuScore:
    score: float  # mean corpus GLEU over the rounds, in [0, 1]; JFLEG papers report 100 × this
    std: float  # population standard deviation of the rounds' scores (0 with one reference)
    ci_low: float  # normal 95% confidence interval: score ± 1.96 std
    ci_high: float
    iterations: int
    sentences: int


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) + 1 - n))


def _sentence_stats(source: list[str], hypothesis: list[str], reference: list[str]) -> list[int]:
    """[c, r, match_1, total_1, ..., match_4, total_4] for one sentence against one reference."""
    stats = [len(hypothesis), len(reference)]
    for n in range(1, ORDER + 1):
        hyp, ref = _ngrams(hypothesis, n), _ngrams(reference, n)
        source_only = Counter({g: k for g, k in _ngrams(source, n).items() if g not in ref})
        matched = sum((hyp & ref).values()) - sum((hyp & source_only).values())
        stats += [max(matched, 0), max(len(hypothesis) + 1 - n, 0)]
    return stats


def _corpus_gleu(stats: Sequence[int]) -> float:
    if any(value == 0 for value in stats):
        return 0.0
    c, r = stats[0], stats[1]
    log_precision = sum(math.log(m / t) for m, t in zip(stats[2::2], stats[3::2], strict=True)) / ORDER
    return math.exp(min(0.0, 1.0 - r / c) + log_precision)


def _reference_choices(iterations: int, sentences: int, references: int) -> np.ndarray:
    """(I, N) reference index per round and sentence, the official script's draws: Python 2's
    `random.seed(j * 101)` then `randint(0, references - 1)`, which is int(random() * references)."""
    rounds = []
    for j in range(iterations):
        rng = random.Random(j * 101)  # Python 3 seeds an int exactly as Python 2 did
        rounds.append([int(rng.random() * references) for _ in range(sentences)])
    return np.array(rounds, dtype=np.int64)


def _words(text: str) -> list[str]:
    """Words between ASCII whitespace, as the reference scorer splits its bytes: a no-break space
    is part of a word."""
    return [word for word in re.split(r"[ \t\n\r\x0b\x0c]+", text) if word]


def gleu(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    iterations: int = 500,
) -> GleuScore:
    """Corpus GLEU of `hypotheses` (corrections of `sources`); `references` is a list of reference
    streams (one per annotator, as JFLEG's dev.ref0..3), each as long as `sources`."""
    if len(hypotheses) != len(sources):
        raise ValueError(f"there are {len(hypotheses)} hypotheses but {len(sources)} source sentences")
    if not sources:
        raise ValueError("GLEU needs at least one sentence")
    check_references(references, len(sources), "sentences", "sources")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    stats = np.array(  # (N, R, 2 + 2 * ORDER)
        [
            [_sentence_stats(_words(source), _words(hypothesis), _words(stream[i])) for stream in references]
            for i, (source, hypothesis) in enumerate(zip(sources, hypotheses, strict=True))
        ],
        dtype=np.int64,
    )
    if len(references) == 1:  # every draw is the same: one score, no spread (as the reference)
        iterations = 1
    choices = _reference_choices(iterations, len(sources), len(references))  # (I, N)
    rows = np.arange(len(sources))
    scores = [_corpus_gleu(stats[rows, chosen].sum(axis=0).tolist()) for chosen in choices]
    mean, std = float(np.mean(scores)), float(np.std(scores))
    half_width = NormalDist().inv_cdf(0.975) * std
    return GleuScore(
        score=mean, std=std, ci_low=mean - half_width, ci_high=mean + half_width,
        iterations=iterations, sentences=len(sources),
    )
