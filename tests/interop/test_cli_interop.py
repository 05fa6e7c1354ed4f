"""`polyseq convert` and `polyseq export` through Typer's runner, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from hf_models import make_hf_model
from tokenizer_files import TEXTS, marian_greedy_texts, marian_model
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.model.checkpoint import load_model

runner = CliRunner()


def test_export_to_hf_and_ct2_then_convert_back(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tiny_model_dir), str(tmp_path / "hf"), "--to", "hf"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["model_type"] == "pegasus"
    result = runner.invoke(app, ["convert", "--from", "hf", str(tmp_path / "hf"), str(tmp_path / "back")])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "back").config == load_model(tiny_model_dir).config
    result = runner.invoke(app, ["export", str(tiny_model_dir), str(tmp_path / "ct2"), "--to", "ct2",
                                 "--quantization", "int8"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ct2" / "model.bin").is_file()


def test_convert_errors_name_the_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(tmp_path), str(tmp_path / "out")])
    assert result.exit_code == 2 and "config.json is missing" in result.output
    make_hf_model("marian", tmp_path / "hf")  # weights without tokenizer files
    result = runner.invoke(app, ["convert", str(tmp_path / "hf"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "source.spm" in result.output
    result = runner.invoke(app, ["convert", "--no-tokenizer", str(tmp_path / "hf"), str(tmp_path / "ids")])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "ids").config.vocab_size == 96
    result = runner.invoke(app, ["export", str(tmp_path / "ids"), str(tmp_path / "ct2"), "--to", "ct2"])
    assert result.exit_code == 2 and "imported without its tokenizer" in result.output, result.output
    result = runner.invoke(app, ["export", str(tmp_path / "hf"), str(tmp_path / "x"), "--to", "onnx"])
    assert result.exit_code == 2


def test_convert_then_translate_an_opus_mt_style_model(tmp_path: Path) -> None:
    """What a user of an OPUS-MT checkpoint does: convert, then translate text from stdin with
    several strategies; greedy gives what transformers' tokenizer + generate give."""
    hf_dir = tmp_path / "hf"
    expected = marian_greedy_texts(marian_model(hf_dir), hf_dir)
    result = runner.invoke(app, ["convert", "--from", "hf", str(hf_dir), str(tmp_path / "opus")])
    assert result.exit_code == 0, result.output
    for strategy in ("greedy", "aggressive", "speculative"):
        result = runner.invoke(app, ["translate", "--model", str(tmp_path / "opus"), "--src", "en",
                                     "--tgt", "de", "--strategy", strategy, "-O", "max_len_a=0",
                                     "-O", "max_len_b=40"], input="\n".join(TEXTS) + "\n")
        assert result.exit_code == 0, result.output
        assert result.stdout.split("\n")[:3] == expected, strategy
