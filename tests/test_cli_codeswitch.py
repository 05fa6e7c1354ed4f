"""`polyseq codeswitch` through Typer's runner: text and JSONL output, a lexicon induced from a
corpus and saved gives the same output when read back, and bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path
from random import Random

import pytest
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.data.codeswitch import Lexicon
from polyseq.data.corpus import load_corpus

runner = CliRunner()
TEXT = "The dog runs.\n\n  A DOG and a cat, 2 cats!\n"


@pytest.fixture
def lexicon_file(tmp_path: Path) -> Path:
    path = tmp_path / "en-de.tsv"
    path.write_text("en\tde\nthe\tder\ndog\tHund\nruns\trennt\ncat\tKatze\nand\tund\n", encoding="utf-8")
    return path


def corpus(tmp_path: Path) -> Path:
    """Aligned files where dog/Hund and cat/Katze go together among random other words."""
    rng = Random(0)
    fillers = [("red", "rot"), ("big", "groß"), ("old", "alt"), ("small", "klein"), ("new", "neu")]
    en, de = [], []
    for _ in range(200):
        src, tgt = ["the"], ["der"]
        for word, translation in (("dog", "Hund"), ("cat", "Katze")):
            if rng.random() < 0.3:
                src.append(word)
                tgt.append(translation)
        src.append(rng.choice(fillers)[0])  # drawn apart: no filler goes with its translation
        tgt.append(rng.choice(fillers)[1])
        en.append(" ".join(src) + ".")
        de.append(" ".join(tgt) + ".")
    (tmp_path / "train.en").write_text("\n".join(en) + "\n", encoding="utf-8")
    (tmp_path / "train.de").write_text("\n".join(de) + "\n", encoding="utf-8")
    return tmp_path / "train"


def test_text_output_keeps_lines_and_prints_a_summary(lexicon_file: Path) -> None:
    result = runner.invoke(app, ["codeswitch", "--lexicon", str(lexicon_file), "--rate", "1"], input=TEXT)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Der Hund rennt.\n\n  A HUND und a Katze, 2 cats!\n"
    assert result.stderr.strip() == "switched 6 of 9 words into de (100.0% of the 6 the lexicon covers)"
    result = runner.invoke(app, ["codeswitch", "--lexicon", str(lexicon_file), "--rate", "0"], input=TEXT)
    assert result.exit_code == 0 and result.stdout == TEXT


def test_jsonl_output_is_a_corpus_of_restore_pairs(lexicon_file: Path, tmp_path: Path) -> None:
    source, target = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text(TEXT, encoding="utf-8")
    result = runner.invoke(app, ["codeswitch", "--lexicon", str(lexicon_file), "-i", str(source), "-o",
                                 str(target), "--jsonl", "--rate", "0.5", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "blank lines left out: 1" in result.stderr
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["tgt"] for r in records] == ["The dog runs.", "  A DOG and a cat, 2 cats!"]
    assert all(r["src_lang"] == r["tgt_lang"] == "en" for r in records)
    text = runner.invoke(app, ["codeswitch", "--lexicon", str(lexicon_file), "-i", str(source),
                               "--rate", "0.5", "--seed", "3"]).stdout
    assert [r["src"] for r in records] == [line for line in text.splitlines() if line]
    pairs = load_corpus(target, ["en"], [("en", "en")])
    # read as a corpus, a sentence's ends lose their whitespace
    assert [(p.src, p.tgt) for p in pairs] == [(r["src"].strip(), r["tgt"].strip()) for r in records]


def test_a_saved_lexicon_gives_the_same_output(tmp_path: Path) -> None:
    spec, saved = corpus(tmp_path), tmp_path / "saved.tsv"
    source = tmp_path / "in.txt"
    source.write_text("The dog and the cat.\nA red dog.\n", encoding="utf-8")
    induced = runner.invoke(app, ["codeswitch", "-i", str(source), "--corpus", str(spec), "--src", "en",
                                  "--tgt", "de", "--save-lexicon", str(saved), "--rate", "0.7",
                                  "--min-score", "0.5"])  # above the fillers met by chance
    assert induced.exit_code == 0, induced.output
    assert "induced 2 word pairs en -> de" in induced.stderr
    assert Lexicon.load(saved).translations == {"dog": "Hund", "cat": "Katze"}
    loaded = runner.invoke(app, ["codeswitch", "-i", str(source), "--lexicon", str(saved), "--rate", "0.7"])
    assert loaded.exit_code == 0 and loaded.stdout == induced.stdout != source.read_text(encoding="utf-8")


def test_switched_text_augments_a_parallel_corpus_line_for_line(tmp_path: Path) -> None:
    # docs/objectives.md: switch train.en, append it to train.en and train.de to itself
    spec = corpus(tmp_path)
    english = Path(f"{spec}.en").read_text(encoding="utf-8")
    english = english.replace("\n", "\n\n", 1)  # a blank line (a pair the corpus skips) stays one
    Path(f"{spec}.en").write_text(english, encoding="utf-8")
    Path(f"{spec}.de").write_text(Path(f"{spec}.de").read_text(encoding="utf-8").replace("\n", "\n\n", 1),
                                  encoding="utf-8")
    switched = tmp_path / "switched.en"
    result = runner.invoke(app, ["codeswitch", "--corpus", str(spec), "--src", "en", "--tgt", "de", "-i",
                                 f"{spec}.en", "-o", str(switched), "--min-score", "0.5", "--rate", "1"])
    assert result.exit_code == 0, result.output
    german = Path(f"{spec}.de").read_text(encoding="utf-8")
    (tmp_path / "augmented.en").write_text(english + switched.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "augmented.de").write_text(german + german, encoding="utf-8")
    original = load_corpus(spec, ["en", "de"], [("en", "de")])
    augmented = load_corpus(tmp_path / "augmented", ["en", "de"], [("en", "de")])
    assert len(augmented) == 2 * len(original) == 400
    extra = augmented[len(original):]
    assert [p.tgt for p in extra] == [p.tgt for p in original]
    assert [p.src for p in extra] == [p.src.replace("dog", "Hund").replace("cat", "Katze") for p in original]


@pytest.mark.parametrize(("args", "message"), [
    (["--lexicon", "{lexicon}", "-i", "{tmp}/missing.txt"], "missing.txt does not exist"),
    (["--lexicon", "{lexicon}", "--rate", "1.5"], "--rate must be in [0, 1], got 1.5"),
    (["--corpus", "{tmp}/train", "--src", "en", "--tgt", "de", "--min-count", "0"],
     "--min-count must be at least 1, got 0"),
    (["--corpus", "{tmp}/train", "--src", "en", "--tgt", "de", "--min-score", "2"],
     "--min-score must be in [0, 1], got 2.0"),
    (["--lexicon", "{lexicon}", "--src", "fr"], "--src fr does not match"),
    (["--lexicon", "{tmp}/bad.tsv"], "bad.tsv, line 3: found 3 tab-separated columns"),
    (["--corpus", "{tmp}/train", "--src", "en", "--tgt", "xx"], "train.xx does not exist"),
    (["--corpus", "{tmp}/train", "--src", "en"], "--corpus needs --src and --tgt"),
    ([], "give either --lexicon FILE.tsv or --corpus SPEC"),
    (["--lexicon", "{lexicon}", "--save-lexicon", "{tmp}/x.tsv"],
     "--save-lexicon: only for a lexicon induced with --corpus, not one read with --lexicon"),
    (["--lexicon", "{lexicon}", "--min-count", "5", "--min-score", "0.5"],
     "--min-count, --min-score: only for a lexicon induced with --corpus"),
])
def test_bad_input_exits_2_with_one_line(lexicon_file: Path, tmp_path: Path, args: list[str],
                                         message: str) -> None:
    corpus(tmp_path)
    (tmp_path / "bad.tsv").write_text("en\tde\ndog\tHund\ncat\tKatze\tx\n", encoding="utf-8")
    args = [arg.format(lexicon=lexicon_file, tmp=tmp_path) for arg in args]
    result = runner.invoke(app, ["codeswitch", *args], input="The dog.\n")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1 and result.stdout == ""
