"""The many-to-many commands through Typer's runner: translate --pivot and --restrict-vocab, eval
--tgt-lang (off-target rate) and align-score."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.quickstart import write_corpus
from polyseq.translator import Translator

runner = CliRunner()
NUMBERS = "12\n\n300\n47\n"


def test_translate_with_a_pivot_and_a_restricted_vocabulary(tiny_model_dir: Path) -> None:
    command = ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "de", "-s", "greedy"]
    result = runner.invoke(app, [*command, "--pivot", "en", "--restrict-vocab"], input=NUMBERS)
    assert result.exit_code == 0, result.output
    translator = Translator.load(tiny_model_dir)
    expected = translator.translate(["12", "", "300", "47"], "num", "de", "greedy", pivot="en",
                                    restrict_vocabulary=True)
    assert result.stdout.splitlines() == expected
    result = runner.invoke(app, [*command, "--pivot", "fr"], input=NUMBERS)
    assert result.exit_code == 2 and "pivot language 'fr'" in result.stderr
    result = runner.invoke(app, [*command, "--restrict-vocab", "-s", "aggressive"], input=NUMBERS)
    assert result.exit_code == 2 and "processes logits" in result.stderr


def test_eval_reports_the_off_target_rate(tmp_path: Path) -> None:
    hyp, ref = tmp_path / "hyp.de", tmp_path / "ref.de"
    hyp.write_text("Ein Mann fährt Fahrrad auf der Straße.\nA dog runs across the green field.\n"
                   "Zwei Kinder spielen im Sand am Strand.\n\n", encoding="utf-8")
    ref.write_text("Ein Mann fährt Fahrrad.\nEin Hund rennt über die Wiese.\nZwei Kinder spielen.\n"
                   "Eine Frau.\n", encoding="utf-8")
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["eval", "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "de",
                                 "--langid-among", "en,de,fr,cs", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "BLEU" in result.stdout and "off-target 33.3% (1 of 3 outputs" in result.stdout
    assert "1 empty" in result.stdout
    off = json.loads(report.read_text())["off_target"]
    assert off["detected"] == {"de": 2, "en": 1} and off["rate"] == 0.3333
    alone = runner.invoke(app, ["eval", "--hyp", str(hyp), "--tgt-lang", "de"])
    assert alone.exit_code == 0 and "BLEU" not in alone.stdout and "off-target" in alone.stdout
    wrong = runner.invoke(app, ["eval", "--hyp", str(hyp), "--tgt-lang", "de", "--langid-among", "en,fr"])
    assert wrong.exit_code == 2 and "cannot recognise 'de'" in wrong.stderr


def test_align_score_prints_writes_and_plots(tiny_model_dir: Path, tmp_path: Path) -> None:
    prefix = write_corpus(tmp_path, range(40, 80), "aligned")
    report, plot = tmp_path / "align.json", tmp_path / "align.png"
    result = runner.invoke(app, ["align-score", str(tiny_model_dir), "--data", prefix, "--langs",
                                 "num,en,de", "--sentences", "30", "--report", str(report),
                                 "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("30 sentences") and [line.split()[0] for line in lines[1:]] == [
        "num-en", "num-de", "en-de"]
    data = json.loads(report.read_text())
    assert data["languages"] == ["num", "en", "de"] and len(data["pairs"]) == 3
    assert plot.read_bytes()[:4] == b"\x89PNG"
    missing = runner.invoke(app, ["align-score", str(tiny_model_dir), "--data", prefix, "--langs", "num,xx"])
    assert missing.exit_code == 2 and "aligned.xx does not exist" in missing.stderr
    unknown = runner.invoke(app, ["align-score", str(tiny_model_dir), "--data", prefix, "--langs", "num,fr"])
    assert unknown.exit_code == 2 and "no language 'fr'; known languages: num, en, de" in unknown.stderr
