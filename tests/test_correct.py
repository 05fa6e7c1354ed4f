"""Correction end to end: a corrector trained here on synthetic errors alone (data.noise_*), then
`polyseq correct` on lines, paragraphs and documents, its edits, and `polyseq eval` with the
correction metrics."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from num2words import num2words
from typer.testing import CliRunner

from helpers import TINY_MODEL
from polyseq.cli import app
from polyseq.config import DataConfig, ExperimentConfig, TrainConfig
from polyseq.correction import TextEdit, correct_paragraphs, text_edits
from polyseq.translator import Translator

runner = CliRunner()


@pytest.fixture(scope="module")
def corrector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polyseq.train.loop import train

    root = tmp_path_factory.mktemp("corrector")
    clean = [num2words(n) for n in range(100, 1600, 3)]
    (root / "clean.en").write_text("\n".join(clean) + "\n", encoding="utf-8")
    valid = [(num2words(n).replace(" and", ""), num2words(n)) for n in range(2000, 2030)]
    (root / "valid.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in valid), encoding="utf-8")
    config = ExperimentConfig(
        model=replace(TINY_MODEL, max_positions=64),
        data=DataConfig(train="", valid=str(root / "valid.tsv"), languages=("en",),
                        directions=("en-en",), vocab_size=300, max_tokens=1500, max_length=60,
                        noise_source=str(root / "clean.en"), noise_lang="en", noise_confusions_from=""),
        train=TrainConfig(output_dir=str(root / "run"), steps=150, lr=5e-3, warmup_steps=20,
                          eval_every=150, eval_bleu_sentences=10, progress=False),
    )
    return Path(train(config, log=lambda message: None).best_dir)


def apply(source: str, edits: list[TextEdit]) -> str:
    for edit in reversed(edits):
        source = source[: edit.start] + edit.correction + source[edit.end :]
    return source


def test_text_edits_are_spans_of_the_source() -> None:
    assert text_edits("He go to school .", "He went to school .") == [TextEdit(3, 5, "go", "went")]
    assert text_edits("a  b", "a x  b") == [TextEdit(3, 3, "", "x ")]
    assert text_edits("a b ", "a b c") == [TextEdit(3, 3, "", " c")]
    assert text_edits("same", "same") == []
    assert text_edits("He go to to school .", "He go to school .") == [TextEdit(8, 11, " to", "")]
    assert text_edits("  the the cat", "the cat") == [TextEdit(2, 6, "the ", "")]
    for source, corrected in [("He go to to school .", "He went to school ."), ("x y z", "z y x"),
                              ("", "new words"), ("old words", "")]:
        edits = text_edits(source, corrected)
        assert all(source[e.start : e.end] == e.original for e in edits)
        assert apply(source, edits).split() == corrected.split()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "to", "the"]), max_size=8),
       st.lists(st.sampled_from(["a", "b", "c", "to", "the"]), max_size=8))
def test_applying_the_edits_gives_the_correction_exactly(source: list[str], corrected: list[str]) -> None:
    """Deletions take a separating space as insertions bring one: no double or stray spaces."""
    source_text, corrected_text = " ".join(source), " ".join(corrected)
    assert apply(source_text, text_edits(source_text, corrected_text)) == corrected_text


def test_paragraphs_keep_their_spacing_between_sentences() -> None:
    paragraphs = ["One sentence here.  Another one!\tA third?", "", "Dr. Smith came. He left."]
    shouted = correct_paragraphs(lambda texts: [t.upper() for t in texts], paragraphs, "en")
    assert shouted == ["ONE SENTENCE HERE.  ANOTHER ONE!\tA THIRD?", "", "DR. SMITH CAME. HE LEFT."]


def test_chinese_and_japanese_paragraphs_are_split_without_spaces_after_their_marks() -> None:
    seen: list[str] = []

    def record(texts: list[str]) -> list[str]:
        seen.extend(texts)
        return [f"<{text}>" for text in texts]

    assert correct_paragraphs(record, ["今天天气很好。我喜欢吃苹果。你呢？"], "zh") == [
        "<今天天气很好。><我喜欢吃苹果。><你呢？>"]
    assert correct_paragraphs(record, ["今日は晴れです。りんごが好きです。"], "ja") == [
        "<今日は晴れです。><りんごが好きです。>"]
    quoted = "「行こう！」と彼は言った。"  # a mark inside quotes ends no sentence
    assert correct_paragraphs(record, [quoted], "ja") == [f"<{quoted}>"]
    assert len(seen) == 6


def test_correct_keeps_lines_and_aggressive_equals_greedy(corrector_dir: Path) -> None:
    text = "one hundred and twenty\n\nthree hundred forty-five\nnine hundred and nine\n"
    default = runner.invoke(app, ["correct", "-m", str(corrector_dir)], input=text)
    greedy = runner.invoke(app, ["correct", "-m", str(corrector_dir), "-s", "greedy"], input=text)
    assert default.exit_code == 0, default.output
    lines = default.stdout.split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == "" and default.stdout == greedy.stdout
    translator = Translator.load(corrector_dir)
    assert translator.correct(["one hundred and twenty"]) == [lines[0]]


def test_correct_prints_edits_and_paragraphs(corrector_dir: Path) -> None:
    text = "three hundred forty-five\n"
    fixed = runner.invoke(app, ["correct", "-m", str(corrector_dir)], input=text).stdout.strip()
    diff = runner.invoke(app, ["correct", "-m", str(corrector_dir), "--diff"], input=text)
    assert diff.exit_code == 0, diff.output
    rebuilt = text.strip()
    for line in reversed(diff.stdout.splitlines()):
        number, start, end, original, correction = line.split("\t")
        assert number == "1" and rebuilt[int(start) : int(end)] == original
        rebuilt = rebuilt[: int(start)] + correction + rebuilt[int(end) :]
    assert rebuilt.split() == fixed.split()
    paragraph = runner.invoke(app, ["correct", "-m", str(corrector_dir), "--paragraphs"],
                              input="nine hundred and nine.  one hundred and one.\n")
    assert paragraph.exit_code == 0 and "  " in paragraph.stdout  # the spacing between sentences


def test_correct_a_document_keeps_its_markup(corrector_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_text("# one hundred\n\nRun `make test` and see https://example.com.\n\n```\nls\n```\n",
                      encoding="utf-8")
    result = runner.invoke(app, ["correct", str(source), "-m", str(corrector_dir)])
    assert result.exit_code == 0, result.output
    corrected = (tmp_path / "notes.corrected.md").read_text(encoding="utf-8")
    assert corrected.startswith("# ") and "`make test`" in corrected and "```\nls\n```" in corrected


def test_eval_with_the_correction_metrics(tmp_path: Path) -> None:
    gold = tmp_path / "gold.m2"
    gold.write_text("S He go to to school .\nA 1 2|||R:VERB|||went|||REQUIRED|||-NONE-|||0\n"
                    "A 3 4|||U:PREP||||||REQUIRED|||-NONE-|||0\n\nS It rains .\n"
                    "A -1 -1|||noop|||-NONE-|||REQUIRED|||-NONE-|||0\n", encoding="utf-8")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("He went to to school .\nIt rained .\n", encoding="utf-8")
    report = tmp_path / "m2.json"
    result = runner.invoke(app, ["eval", "--metric", "m2", "--hyp", str(hyp), "--m2", str(gold),
                                 "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "P 0.5000  R 0.5000" in result.stdout and "over-correction 100.0% (1 of 1" in result.stdout
    assert json.loads(report.read_text())["correct"] == 1
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("He go to to school today .\n", encoding="utf-8")
    ref.write_text("He went to school today .\n", encoding="utf-8")
    gleu = runner.invoke(app, ["eval", "--metric", "gleu", "--hyp", str(ref), "--src", str(src),
                               "--ref", str(ref)])
    assert gleu.exit_code == 0 and gleu.stdout.startswith("GLEU 1.0000")
    missing = runner.invoke(app, ["eval", "--metric", "m2", "--hyp", str(hyp)])
    assert missing.exit_code == 2 and "--metric m2 needs --m2" in missing.stderr


def test_the_guides_settings_load(tmp_path: Path) -> None:
    import re

    from polyseq.config import Actions, load_config

    guide = (Path(__file__).resolve().parents[1] / "docs" / "correction.md").read_text(encoding="utf-8")
    noise, s2a = re.findall(r"```toml\n(.*?)```", guide, flags=re.DOTALL)
    (tmp_path / "corrector.toml").write_text(noise, encoding="utf-8")
    data = load_config(tmp_path / "corrector.toml").data
    assert data.noise_lang == "uk" and data.noise_pairs == 200000 and data.directions == ("uk-uk",)
    (tmp_path / "s2a.toml").write_text(s2a, encoding="utf-8")
    assert load_config(tmp_path / "s2a.toml").model.actions is Actions.S2A
