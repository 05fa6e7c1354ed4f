"""Ensembles: models with one tokenizer decode as one, each step's distribution the mean of theirs;
every strategy runs them, the lossless ones still give greedy's output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput, LengthLimit
from polyseq.files import InputError
from polyseq.model.checkpoint import CheckpointError, load_metadata, load_model, save_model_files
from polyseq.model.ensemble import Ensemble
from polyseq.text.tokenizer import Tokenizer
from polyseq.translator import Translator

TEXTS = ["12", "205", "1001", "77", "318"]


def shaken(source: Path, target: Path, seed: int) -> Path:
    """A copy of the model directory `source` whose weights are moved a little: another member."""
    shutil.copytree(source, target)
    model = load_model(source)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(0.3 * parameter.std().nan_to_num() * noise)
    save_model_files(target, model, load_metadata(source))
    return target


def reference_greedy(models: list[torch.nn.Module], src: torch.Tensor, prefix: list[int], eos: int,
                     limit: int) -> list[int]:
    """Greedy on the mean of the models' probabilities, every step from the whole prefix without a
    cache: the ensemble's arithmetic by another road."""
    tokens: list[int] = []
    for _ in range(limit):
        tgt_in = torch.tensor([prefix + tokens])
        probs = sum(model(src, tgt_in)[0, -1].float().softmax(-1) for model in models) / len(models)
        token = int(probs.argmax())
        if token == eos:
            break
        tokens.append(token)
    return tokens


def test_an_ensemble_decodes_greedy_on_the_mean_of_its_members(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = shaken(tiny_model_dir, tmp_path / "other", seed=3)
    members = [load_model(tiny_model_dir).eval(), load_model(other).eval()]
    ensemble = Ensemble(members).eval()
    tokenizer = Tokenizer.load(tiny_model_dir)
    framing = tokenizer.framing("num", "en")
    outputs = {}
    for text in TEXTS:
        src = torch.tensor([framing.source(tokenizer.encode(text))])
        inputs = DecodeInput(src, torch.tensor([framing.decoder_prefix]), tokenizer.eos_id, tokenizer.pad_id)
        for strategy in ("greedy", "aggressive", "speculative"):
            outputs[text, strategy] = generate(ensemble, inputs, strategy, max_length=LengthLimit(0.0, 12)
                                               ).best()[0].tokens
        with torch.inference_mode():
            expected = reference_greedy(members, src, list(framing.decoder_prefix), tokenizer.eos_id, 12)
        assert list(outputs[text, "greedy"]) == expected, text
        assert outputs[text, "aggressive"] == outputs[text, "speculative"] == outputs[text, "greedy"]
    alone = [generate(members[0], DecodeInput(torch.tensor([framing.source(tokenizer.encode(t))]),
                                              torch.tensor([framing.decoder_prefix]), tokenizer.eos_id,
                                              tokenizer.pad_id), "greedy", max_length=LengthLimit(0.0, 12)
                      ).best()[0].tokens for t in TEXTS]
    assert alone != [outputs[text, "greedy"] for text in TEXTS]  # the second member counts


def test_a_model_ensembled_with_itself_translates_as_it_does(tiny_model_dir: Path) -> None:
    single = Translator.load(tiny_model_dir)
    double = Translator.load_ensemble([tiny_model_dir, tiny_model_dir], weights=[2.0, 1.0])
    for strategy in ("greedy", "beam"):
        assert double.translate(TEXTS, "num", "en", strategy) == single.translate(TEXTS, "num", "en",
                                                                                  strategy)
    words = single.translate(TEXTS, "num", "en", "greedy")
    expected = single.log_probs(TEXTS, words, "en")
    assert double.log_probs(TEXTS, words, "en") == pytest.approx(expected, abs=1e-4)
    with pytest.raises(InputError, match="an ensemble has no one encoder"):
        double.embed(TEXTS, "num")


def test_the_command_line_ensembles_and_refuses_what_cannot_be(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = shaken(tiny_model_dir, tmp_path / "other", seed=3)
    runner = CliRunner()
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--ensemble", str(other), "--src",
                                 "num", "--tgt", "en", "-s", "greedy"], input="\n".join(TEXTS) + "\n")
    assert result.exit_code == 0, result.output
    python = Translator.load_ensemble([tiny_model_dir, other]).translate(TEXTS, "num", "en", "greedy")
    assert result.stdout.splitlines() == python
    retokenized = tmp_path / "retokenized"
    shutil.copytree(tiny_model_dir, retokenized)
    texts = [f"{word} {n}" for n in range(300) for word in ("alpha", "beta", "gamma")]
    tokenizer = Tokenizer.load(tiny_model_dir)
    Tokenizer.train(texts, retokenized, vocab_size=tokenizer.vocab_size, languages=tokenizer.languages)
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--ensemble", str(retokenized),
                                 "--src", "num", "--tgt", "en"], input="12\n")
    assert result.exit_code == 2 and "different tokenizers (tokenizer.model)" in result.stderr
    with pytest.raises(CheckpointError, match="needs as many positive weights"):
        Ensemble([load_model(tiny_model_dir)] * 2, weights=[1.0, 0.0])
