"""MaxMatch (M2) scoring: hand-made M2 files with known counts, and the NUS M2 scorer's own
figures on the shared CWEB and JFLEG M2 files."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from polyseq.evaluate.m2 import read_m2, score_m2
from polyseq.files import InputError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

TWO_ANNOTATORS = """\
S This are a apple .
A 1 2|||R:VERB:SVA|||is|||REQUIRED|||-NONE-|||0
A 2 3|||R:DET|||an|||REQUIRED|||-NONE-|||0
A 1 2|||R:VERB:SVA|||is|||REQUIRED|||-NONE-|||1
A 2 4|||R:NOUN|||an apple||one apple|||REQUIRED|||-NONE-|||1

S It rains .
A -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||0
A -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||1

S He go to to school yesterday .
A 1 2|||R:VERB:TENSE|||went|||REQUIRED|||-NONE-|||0
A 3 4|||U:PREP||||||REQUIRED|||-NONE-|||0
A -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||1
"""


def m2_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gold.m2"
    path.write_text(text, encoding="utf-8")
    return path


def test_counts_on_a_hand_made_file(tmp_path: Path) -> None:
    sentences = read_m2(m2_file(tmp_path, TWO_ANNOTATORS))
    assert [len(s.annotators) for s in sentences] == [2, 2, 2]
    assert sentences[1].unchanged_by_all and not sentences[2].unchanged_by_all
    perfect = ["This is an apple .", "It rains .", "He went to school yesterday ."]
    score = score_m2(perfect, sentences)
    assert (score.correct, score.proposed, score.gold) == (4, 4, 4) and score.f == 1.0
    # a merged edit ("a apple" -> "one apple") matches annotator 1's two-word edit; its other
    # correction counts too
    score = score_m2(["This is one apple .", "It rains .", "He went to school yesterday ."], sentences)
    assert (score.correct, score.proposed, score.gold) == (4, 4, 4)
    # copying: nothing proposed; per sentence the annotator with the best F is the one with fewest
    # edits (sentence 3: annotator 1 made none)
    score = score_m2([s.source for s in sentences], sentences)
    assert (score.correct, score.proposed, score.gold, score.precision, score.recall) == (0, 0, 2, 1.0, 0.0)
    # a changed sentence that nobody changed is an over-correction
    score = score_m2(["This is an apple .", "It rained .", "He go to to school yesterday ."], sentences)
    assert (score.overcorrected, score.unchanged_by_all, score.overcorrection_rate) == (1, 1, 1.0)
    assert (score.correct, score.proposed, score.gold) == (2, 3, 2)
    assert score.gold_by_kind == {"R:VERB:SVA": 1, "R:DET": 1} and score.correct_by_kind == score.gold_by_kind


def test_f_half_from_counts(tmp_path: Path) -> None:
    sentences = read_m2(m2_file(tmp_path, TWO_ANNOTATORS))
    score = score_m2(["This is a apple .", "It rains .", "He goes to school yesterday ."], sentences)
    # sentence 1: annotator 0 (1 of 2); sentence 3: "to to" -> "to" matches, "goes" does not
    assert (score.correct, score.proposed, score.gold) == (2, 3, 4)
    precision, recall = 2 / 3, 2 / 4
    assert score.f == pytest.approx(1.25 * precision * recall / (0.25 * precision + recall))


def test_bad_files_and_lengths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 2: not an M2 edit"):
        read_m2(m2_file(tmp_path, "S A b .\nA one two|||R|||x|||REQUIRED|||-NONE-|||0\n"))
    with pytest.raises(InputError, match="line 1: expected an 'S ' or 'A ' line"):
        read_m2(m2_file(tmp_path, "Hello\n"))
    with pytest.raises(InputError, match="2 system sentences for 3 M2 sentences"):
        score_m2(["a", "b"], read_m2(m2_file(tmp_path, TWO_ANNOTATORS)))


def test_records_the_reference_reads_its_own_way(tmp_path: Path) -> None:
    # an edit that ends before it starts is a gold edit no system edit matches; a sentence whose
    # blank line is missing ends at the next "S"; an edit listed twice is matched once (the
    # reference would count 2 correct of 1 proposed)
    text = ("S a b c .\nA 2 1|||X|||z|||REQUIRED|||-NONE-|||0\nA 0 1|||X|||A|||REQUIRED|||-NONE-|||0\n"
            "S He go .\nA 1 2|||R:VERB|||goes|||REQUIRED|||-NONE-|||0\n"
            "A 1 2|||R:VERB|||goes||went|||REQUIRED|||-NONE-|||0\n")
    sentences = read_m2(m2_file(tmp_path, text))
    assert [s.source for s in sentences] == ["a b c .", "He go ."]
    score = score_m2(["A b c .", "He goes ."], sentences)
    assert (score.correct, score.proposed, score.gold) == (2, 2, 4)


def test_degenerate_output_is_bounded_in_time(tmp_path: Path) -> None:
    sentences = read_m2(m2_file(tmp_path, "S the the the the the the the the the the the the .\n"
                                          "A 1 2|||U:DET||||||REQUIRED|||-NONE-|||0\n"))
    start = time.perf_counter()
    score = score_m2([" ".join(["the"] * 400)], sentences, max_vertices=300)
    assert time.perf_counter() - start < 30 and score.bounded == 1 and score.proposed >= 1


def test_output_unrelated_to_a_long_source_is_bounded_in_time(tmp_path: Path) -> None:
    """Every run of edits merges with the next when nothing is left unchanged: the merged arcs
    are bounded too (an untrained model's output hung the scorer before)."""
    source = " ".join(f"w{i % 50}" for i in range(120))
    sentences = read_m2(m2_file(tmp_path, f"S {source}\nA 1 2|||R:OTHER|||x|||REQUIRED|||-NONE-|||0\n"))
    start = time.perf_counter()
    score = score_m2([" ".join(["the"] * 250)], sentences)
    assert time.perf_counter() - start < 30 and score.bounded == 1 and score.proposed >= 1


# The reference's figures: python2.7 m2scorer/scripts/m2scorer.py HYP GOLD (nusnlp/m2scorer at
# cb874a7), for three system outputs made from each file by the hypotheses() below.
REFERENCE = {
    ("jfleg/dev.ref.m2", "copy"): (1.0000, 0.0000, 0.0000),
    ("jfleg/dev.ref.m2", "annotator"): (0.9966, 0.9936, 0.9960),
    ("jfleg/dev.ref.m2", "noisy"): (0.5450, 0.5661, 0.5491),
    ("cweb/m2/CWEB-S.dev.m2", "copy"): (1.0000, 0.0000, 0.0000),
    ("cweb/m2/CWEB-S.dev.m2", "annotator"): (1.0000, 1.0000, 1.0000),
    ("cweb/m2/CWEB-S.dev.m2", "noisy"): (0.0754, 0.7321, 0.0919),
    ("cweb/m2/CWEB-G.dev.m2", "copy"): (1.0000, 0.0000, 0.0000),
    ("cweb/m2/CWEB-G.dev.m2", "annotator"): (0.9994, 0.9994, 0.9994),
    ("cweb/m2/CWEB-G.dev.m2", "noisy"): (0.0934, 0.5975, 0.1124),
}


def hypotheses(sentences: list, kind: str) -> list[str]:
    """copy: the sources; annotator: the lowest-numbered annotator's first corrections applied;
    noisy: that for odd sentences, the source for even ones, then seeded drops, doublings and
    case flips."""

    def corrected(sentence) -> list[str]:  # type: ignore[no-untyped-def]
        tokens = sentence.source.split()
        for edit in sorted(sentence.annotators[min(sentence.annotators)], key=lambda e: (e.start, e.end),
                           reverse=True):
            tokens[edit.start : edit.end] = edit.corrections[0].split()
        return tokens

    if kind == "copy":
        return [s.source for s in sentences]
    if kind == "annotator":
        return [" ".join(corrected(s)) for s in sentences]
    rng, out = random.Random(7), []
    for index, sentence in enumerate(sentences):
        words: list[str] = []
        for token in corrected(sentence) if index % 2 else sentence.source.split():
            draw = rng.random()
            if draw < 0.05:
                continue
            if draw < 0.10:
                words += [token, token]
            elif draw < 0.13:
                words.append(token.lower() if token[:1].isupper() else token.capitalize())
            else:
                words.append(token)
        out.append(" ".join(words))
    return out


@pytest.mark.parametrize(("name", "kind"), sorted(REFERENCE))
def test_the_reference_scorers_figures_on_real_m2_files(name: str, kind: str) -> None:
    path = DATA / name
    assert path.is_file(), f"{path} is missing: the shared data (../shared/data) is needed"
    sentences = read_m2(path)
    score = score_m2(hypotheses(sentences, kind), sentences)
    assert (round(score.precision, 4), round(score.recall, 4), round(score.f, 4)) == REFERENCE[(name, kind)]
    assert score.bounded == 0


def test_gold_edits_from_corrected_text() -> None:
    from polyseq.evaluate.m2 import GoldEdit, m2_from_pairs

    sources = ["He go to to school .", "It rains ."]
    gold = m2_from_pairs(sources, [["He went to school .", "It rains ."],
                                   ["He goes to school .", "It rains ."]])
    # one edit per run of changed words (difflib keeps the longest common run, "to school .")
    assert gold[0].annotators[0] == [GoldEdit(1, 3, "go to", ("went",))]
    assert gold[0].annotators[1] == [GoldEdit(1, 3, "go to", ("goes",))]
    assert gold[1].unchanged_by_all
    score = score_m2(["He went to school .", "It rains ."], gold)
    assert (score.precision, score.recall, score.f) == (1.0, 1.0, 1.0)
    with pytest.raises(InputError, match="one line per source"):
        m2_from_pairs(sources, [["only one"]])
