"""Language identification and off-target rates on short real sentences: multi30k captions in
en, de, fr and cs (the shared data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyseq.evaluate.offtarget import off_target
from polyseq.files import read_text_lines
from polyseq.text.langid import LanguageDetector, LanguageIdError, identifier_code

MULTI30K = Path(__file__).resolve().parents[3] / "shared" / "data" / "multi30k"
LANGS = ("en", "de", "fr", "cs")


def captions(lang: str, count: int = 150) -> list[str]:
    path = MULTI30K / f"val.{lang}"
    if not path.is_file():
        pytest.fail(f"{path} is missing: these tests read multi30k from the shared data beside the "
                    "project (../shared/data/multi30k)")
    return read_text_lines(path)[:count]


@pytest.mark.parametrize("among", [LANGS, None], ids=["model-languages", "all-97"])
def test_short_captions_are_identified_in_each_language(among: tuple[str, ...] | None) -> None:
    detector = LanguageDetector(among)
    for lang in LANGS:
        texts = captions(lang)
        assert max(len(text.split()) for text in texts) < 40  # short sentences, most about 12 words
        found = [d.language for d in detector.detect_each(texts)]
        assert found.count(lang) / len(found) >= 0.97, (lang, found)


def test_off_target_rate_of_right_and_wrong_languages() -> None:
    detector = LanguageDetector(LANGS)
    german, french = captions("de", 100), captions("fr", 100)
    right = off_target(german, "de", detector)
    assert right.rate <= 0.02 and right.outputs == 100 and right.empty == 0
    mixed = off_target(german[:70] + french[:30] + ["", "  "], "de", detector)
    assert mixed.outputs == 100 and mixed.empty == 2
    assert mixed.off_target == pytest.approx(30, abs=2) and mixed.detected["fr"] == pytest.approx(30, abs=2)
    assert "off-target 3" in mixed.summary() and "fr " in mixed.summary()
    with pytest.raises(LanguageIdError, match="cannot recognise 'uk'"):
        off_target(german, "uk", detector)


def test_outputs_without_letters_have_no_language_and_are_counted_apart() -> None:
    outputs = ["Ein Hund läuft über die Wiese.", "2024", "15:30", "!!!", ""]
    for among in (None, LANGS):
        found = off_target(outputs, "de", languages=among)
        assert (found.outputs, found.off_target, found.empty, found.without_letters) == (1, 0, 1, 3)
        assert found.summary() == ("off-target 0.0% (0 of 1 outputs not identified as de); 1 empty, "
                                   "3 without letters")
    assert off_target(["我喜欢吃苹果。"], "zh", languages=["zh", "en"]).outputs == 1  # Han are letters


def test_a_language_the_identifier_does_not_know_is_named_not_left_out() -> None:
    czech = "Pes běží přes louku a štěká na kočku."
    with pytest.raises(LanguageIdError, match=r"does not know 'cz' \("):  # EN is read as en
        off_target([czech], "de", languages=["de", "fr", "cz", "EN"])
    assert off_target([czech], "cs", languages=["de", "fr", "cs"]).off_target == 0


@pytest.mark.parametrize(("code", "expected"), [
    ("de", "de"), ("EN", "en"), ("de_DE", "de"), ("en-US", "en"), ("zh_Hant", "zh"), ("sr@latin", "sr"),
    ("deu_Latn", "de"), ("zho_Hans", "zh"), ("arb_Arab", "ar"), ("ukr_Cyrl", "uk"),
    ("num", None), ("xx", None), ("", None)])
def test_a_models_language_code_is_read_as_the_identifiers(code: str, expected: str | None) -> None:
    known = LanguageDetector().languages
    assert identifier_code(code, known) == expected


def test_a_detector_answers_in_the_models_codes() -> None:
    """An NLLB model's codes (deu_Latn) or mBART's (de_DE) are detected, and answered as given."""
    nllb = LanguageDetector(["eng_Latn", "deu_Latn", "fra_Latn", "ces_Latn", "num"])
    assert nllb.languages == ("ces_Latn", "deu_Latn", "eng_Latn", "fra_Latn")
    for lang, code in zip(LANGS, ("eng_Latn", "deu_Latn", "fra_Latn", "ces_Latn"), strict=True):
        found = [d.language for d in nllb.detect_each(captions(lang, 50))]
        assert found.count(code) >= 45, (lang, found)
    mbart = LanguageDetector(["en_XX", "de_DE"])
    assert mbart.detect("Ein Mann fährt mit dem Fahrrad durch die Stadt.", 1)[0].language == "de_DE"
