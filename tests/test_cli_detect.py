"""`polyseq detect`: one line out per line in, the language and its probability, among the
languages asked for or a model's own."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from polyseq.cli import app

runner = CliRunner()
LINES = ["Guten Morgen, wie geht es Ihnen heute?", "", "A dog runs across the green field.",
         "Le chat dort sur le canapé du salon."]


def test_each_line_gets_its_language_and_blank_lines_stay_blank(tmp_path: Path) -> None:
    source = tmp_path / "mixed.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["detect", "-i", str(source)])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in rows] == ["de", "", "en", "fr"]
    assert all(0.5 < float(row[1]) <= 1 for row in rows if row[0])
    result = runner.invoke(app, ["detect", "--among", "en,fr", "--candidates", "2", "--format", "jsonl"],
                           input="\n".join(LINES) + "\n")
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(row) for row in found] == [2, 0, 2, 2]
    assert [row[0]["language"] for row in found if row][1:] == ["en", "fr"]
    assert all({d["language"] for d in row} == {"en", "fr"} for row in found if row)


def test_a_models_languages_are_told_apart_in_its_codes(tiny_model_dir: Path) -> None:
    result = runner.invoke(app, ["detect", "-m", str(tiny_model_dir), "--candidates", "3"],
                           input="dreihundertzwölf und sieben\ntwo hundred and five\n")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in rows] == ["de", "en"]
    assert {row[2] for row in rows} <= {"de", "en"} and all(len(row) == 4 for row in rows)  # no "num"


def test_bad_options_are_one_line_errors(tiny_model_dir: Path) -> None:
    for args, message in ((["--among", "en,dee"], "does not know dee"),
                          (["--candidates", "0"], "--candidates must be at least 1"),
                          (["--among", "en", "-m", str(tiny_model_dir)], "give one of them")):
        result = runner.invoke(app, ["detect", *args], input="Hello there\n")
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
