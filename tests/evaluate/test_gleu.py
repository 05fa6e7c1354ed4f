"""GLEU: the official JFLEG script's figures on jfleg dev, hand-derived tiny cases, and input errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from polyseq.evaluate.gleu import gleu

JFLEG = Path(__file__).resolve().parents[3] / "shared" / "data" / "jfleg"

# Figures printed by the official script, github.com/keisks/jfleg @ ee06ff8 eval/gleu.py (Python 2.7.18,
# numpy 1.16.6, scipy 1.2.3), default settings (n = 4, 500 iterations, corpus level), run in a folder
# holding the hypothesis files, with D=shared/data/jfleg:
#   python2.7 gleu.py -r $D/dev.ref0 $D/dev.ref1 $D/dev.ref2 $D/dev.ref3 -s $D/dev.src \
#       --hyp src.hyp ref0.hyp half.hyp
#   python2.7 gleu.py -r $D/dev.ref1 $D/dev.ref2 -s $D/dev.src --hyp src.hyp half.hyp
#   python2.7 gleu.py -r $D/dev.ref0 -s $D/dev.src --hyp src.hyp ref0.hyp
# where src.hyp = dev.src (copying the input), ref0.hyp = dev.ref0, and half.hyp = the first 377 lines
# of dev.ref0 then lines 378..754 of dev.src. Each prints [[mean, std, '(ci_low,ci_high)']]; with one
# reference only the mean.
OFFICIAL = [
    # (hypothesis, reference numbers, mean, std, ci_low, ci_high)
    ("src", (0, 1, 2, 3), 0.382146, 0.009891, 0.363, 0.402),  # JFLEG's README: SOURCE 38.21 on dev
    ("ref0", (0, 1, 2, 3), 0.672553, 0.010951, 0.651, 0.694),
    ("half", (0, 1, 2, 3), 0.543406, 0.010622, 0.523, 0.564),
    ("src", (1, 2), 0.365696, 0.008600, 0.349, 0.383),
    ("half", (1, 2), 0.462501, 0.006630, 0.450, 0.475),
    ("src", (0,), 0.338472, 0.0, None, None),
    ("ref0", (0,), 1.0, 0.0, None, None),
]


@pytest.fixture(scope="module")
def jfleg_dev() -> dict[str, list[str]]:
    names = ["dev.src"] + [f"dev.ref{k}" for k in range(4)]
    missing = [name for name in names if not (JFLEG / name).is_file()]
    if missing:
        pytest.fail(
            f"JFLEG dev files {missing} not found in {JFLEG}: the GLEU check against the official script "
            "needs shared/data/jfleg beside the repository (see shared/data/README.md)"
        )
    lines = {name: (JFLEG / name).read_text(encoding="utf-8").splitlines() for name in names}
    src, ref0 = lines["dev.src"], lines["dev.ref0"]
    return {
        "src": src, "ref0": ref0, "half": ref0[:377] + src[377:],
        **{str(k): lines[f"dev.ref{k}"] for k in range(4)},
    }


@pytest.mark.parametrize(("hypothesis", "refs", "mean", "std", "ci_low", "ci_high"), OFFICIAL)
def test_official_figures_on_jfleg_dev(
    jfleg_dev: dict[str, list[str]], hypothesis: str, refs: tuple[int, ...],
    mean: float, std: float, ci_low: float | None, ci_high: float | None,
) -> None:
    result = gleu(jfleg_dev["src"], jfleg_dev[hypothesis], [jfleg_dev[str(k)] for k in refs])
    assert (result.sentences, result.iterations) == (754, 500 if len(refs) > 1 else 1)
    assert result.score == pytest.approx(mean, abs=5e-7)  # the script prints 6 decimals
    assert result.std == pytest.approx(std, abs=5e-7)
    if ci_low is not None:
        assert (round(result.ci_low, 3), round(result.ci_high, 3)) == (ci_low, ci_high)


SOURCE = "a b c d e f"


def test_hypothesis_equal_to_its_reference_scores_one() -> None:
    result = gleu([SOURCE], ["a b c d e g"], [["a b c d e g"]])
    assert (result.score, result.std, result.ci_low, result.ci_high) == (1.0, 0.0, 1.0, 1.0)


def test_source_ngrams_the_reference_changed_are_penalized() -> None:
    # Reference fixes f -> g. Hypothesis "... e h" matches 5/6, 4/5, 3/4, 2/3 n-grams and keeps no
    # source n-gram the reference dropped: GLEU = (5/6 * 4/5 * 3/4 * 2/3) ** (1/4) = (1/3) ** (1/4).
    assert gleu([SOURCE], ["a b c d e h"], [["a b c d e g"]]).score == pytest.approx((1 / 3) ** 0.25)
    # Copying the source matches as much but keeps f, e f, d e f, c d e f, which the reference
    # removed: each costs one match, (4/6 * 3/5 * 2/4 * 1/3) ** (1/4) = (1/15) ** (1/4).
    assert gleu([SOURCE], [SOURCE], [["a b c d e g"]]).score == pytest.approx((1 / 15) ** 0.25)


def test_brevity_penalty_and_zero_without_smoothing() -> None:
    # Every n-gram of the 5-token hypothesis is in the 6-token reference: only BP = exp(1 - 6/5).
    assert gleu([SOURCE], ["a b c d e"], [[SOURCE]]).score == pytest.approx(math.exp(-0.2))
    # Three tokens have no 4-gram: a zero count makes the corpus score 0 (the script does not smooth).
    assert gleu([SOURCE], ["a b c"], [[SOURCE]]).score == 0.0
    # ASCII whitespace alone separates tokens, as the script splits its bytes: a no-break space
    # joins "d e" into one word, which the reference does not have.
    assert gleu([SOURCE], [" a  b c d\te f "], [[SOURCE]]).score == 1.0
    assert gleu([SOURCE], ["a b c d\u00a0e f"], [[SOURCE]]).score == 0.0


def test_one_reference_is_one_round_without_spread() -> None:
    result = gleu([SOURCE, "g h i j k"], ["a b c d e h", "g h i j x"], [["a b c d e g", "g h i j k"]])
    assert (result.iterations, result.std, result.ci_low) == (1, 0.0, result.score)


def test_references_are_sampled_as_python2_randint_with_seed_j_times_101() -> None:
    # Python 2.7: random.seed(j * 101); random.randint(0, 1) gives, for j = 0..9,
    # 1 1 1 0 0 0 1 0 0 0: reference 0 six times, reference 1 four times.
    x = (1 / 3) ** 0.25  # the hypothesis against reference 1 (see above); against reference 0: 1
    result = gleu([SOURCE], ["a b c d e h"], [["a b c d e h"], ["a b c d e g"]], iterations=10)
    assert result.score == pytest.approx(0.6 + 0.4 * x)
    assert result.std == pytest.approx(math.sqrt(0.24) * (1 - x))
    assert result.ci_high - result.score == pytest.approx(1.959964 * result.std)
    assert result.score - result.ci_low == pytest.approx(1.959964 * result.std)


@pytest.mark.parametrize(
    ("sources", "hypotheses", "references", "message"),
    [
        (["a", "b"], ["a"], [["a", "b"]], "1 hypotheses but 2 source"),
        (["a", "b"], ["a", "b"], [["a", "b"], ["a"]], "reference 1 has 1 sentences"),
        (["a"], ["a"], [], "at least one reference"),
        ([], [], [[]], "at least one sentence"),
    ],
)
def test_mismatched_inputs_are_errors(
    sources: list[str], hypotheses: list[str], references: list[list[str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        gleu(sources, hypotheses, references)


def test_iterations_must_be_positive() -> None:
    with pytest.raises(ValueError, match="iterations must be at least 1"):
        gleu(["a"], ["a"], [["a"]], iterations=0)
