"""`polyseq average`: the mean of model directories' weights, and clear errors for checkpoints
that cannot be averaged (other shapes, another tokenizer)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.model.average import average_models
from polyseq.model.checkpoint import CheckpointError, load_metadata, load_model, save_model_files
from polyseq.model.transformer import Seq2Seq
from polyseq.text.tokenizer import Tokenizer
from polyseq.translator import Translator

runner = CliRunner()


def variant(source: Path, target: Path, scale: float = 1.0, **config: int) -> Path:
    """A copy of the model directory `source` with its weights scaled, or a new model of another
    shape (`config` overrides) with the same tokenizer."""
    shutil.copytree(source, target)
    model = load_model(source)
    if config:
        torch.manual_seed(0)
        model = Seq2Seq(replace(model.config, **config))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(scale)
    save_model_files(target, model, load_metadata(source))
    return target


def test_the_average_of_identical_checkpoints_is_the_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    average_models([tiny_model_dir] * 3, tmp_path / "mean")
    expected = load_file(str(tiny_model_dir / "model.safetensors"))
    actual = load_file(str(tmp_path / "mean" / "model.safetensors"))
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    tokenizers = [(path / "tokenizer.model").read_bytes() for path in (tmp_path / "mean", tiny_model_dir)]
    assert tokenizers[0] == tokenizers[1]


def test_two_checkpoints_average_to_their_mean_and_the_result_translates(tiny_model_dir: Path,
                                                                         tmp_path: Path) -> None:
    other = variant(tiny_model_dir, tmp_path / "other", scale=0.5)
    result = runner.invoke(app, ["average", str(tiny_model_dir), str(other), "-o", str(tmp_path / "mean")])
    assert result.exit_code == 0, result.output
    first, second = (load_file(str(path / "model.safetensors")) for path in (tiny_model_dir, other))
    mean = load_file(str(tmp_path / "mean" / "model.safetensors"))
    for name, tensor in mean.items():
        torch.testing.assert_close(tensor, (first[name] + second[name]) / 2, rtol=1e-6, atol=1e-7)
    metadata = json.loads((tmp_path / "mean" / "metadata.json").read_text())
    assert metadata["averaged_from"] == [str(tiny_model_dir), str(other)]
    assert len(Translator.load(tmp_path / "mean").translate(["12"], "num", "en", "greedy")) == 1


def test_checkpoints_that_cannot_be_averaged_are_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    wider = variant(tiny_model_dir, tmp_path / "wider", d_model=48, heads=2)
    with pytest.raises(CheckpointError, match=r"different shapes \(d_model 32 vs 48\)"):
        average_models([tiny_model_dir, wider], tmp_path / "mean")
    retokenized = variant(tiny_model_dir, tmp_path / "retokenized")
    tokenizer = Tokenizer.load(tiny_model_dir)
    texts = [f"{word} {n}" for n in range(300) for word in ("alpha", "beta", "gamma")]
    Tokenizer.train(texts, retokenized, vocab_size=tokenizer.vocab_size, languages=tokenizer.languages)
    with pytest.raises(CheckpointError, match=r"different tokenizers \(tokenizer.model\)"):
        average_models([tiny_model_dir, retokenized], tmp_path / "mean")
    with pytest.raises(CheckpointError, match="is or holds the input"):
        average_models([tiny_model_dir, retokenized], retokenized)
    result = runner.invoke(app, ["average", str(tiny_model_dir), str(tmp_path / "nothing"), "-o",
                                 str(tmp_path / "mean")])
    assert result.exit_code == 2 and "nothing does not exist" in result.stderr
    assert not (tmp_path / "mean").exists()
