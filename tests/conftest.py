"""Shared fixtures: a tiny model trained inside the test session, on numbers written out with
num2words, so that Translator, CLI and decoding tests run against a real trained polyseq model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from num2words import num2words

from polyseq.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.quickstart import split_numbers, write_corpus
from polyseq.translator import Translator

torch.set_num_threads(1)  # deterministic, and fair to the other core

TINY_MODEL = ModelConfig(d_model=32, encoder_layers=1, decoder_layers=1, heads=2, ffn_dim=64,
                         dropout=0.0, max_positions=48)


def tiny_experiment(data_dir: Path, output_dir: Path, *, steps: int = 60, eval_every: int = 30,
                    directions: tuple[str, ...] = ("num-en", "num-de", "en-de", "de-en"),
                    seed: int = 1, dropout: float = 0.0) -> ExperimentConfig:
    split = split_numbers(400, test_size=20, valid_size=20, seed=seed)
    train_spec = write_corpus(data_dir, split.train, "train")
    valid_spec = write_corpus(data_dir, split.valid, "valid")
    return ExperimentConfig(
        model=replace(TINY_MODEL, dropout=dropout),
        data=DataConfig(train=train_spec, valid=valid_spec, languages=("num", "en", "de"),
                        directions=directions, valid_directions=("num-en",), vocab_size=320,
                        max_tokens=600, max_length=40, max_ratio=12.0),
        train=TrainConfig(output_dir=str(output_dir), steps=steps, lr=5e-3, warmup_steps=10,
                          eval_every=eval_every, eval_bleu_sentences=10, log_every=10, seed=seed,
                          progress=False),
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output directory of a short training run (best/, last/, metrics.jsonl, training.png)."""
    from polyseq.train.loop import train

    root = tmp_path_factory.mktemp("tiny")
    config = tiny_experiment(root / "data", root / "run", steps=120, eval_every=60)
    train(config, log=lambda message: None)
    return root / "run"


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_run: Path) -> Path:
    return tiny_run / "best"


def write_copy_corpus(directory: Path, numbers: range) -> str:
    """'xx' is English number words; 'yy' the same without 'and' and commas: mostly a copy."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = [num2words(n) for n in numbers]
    targets = [s.replace(" and", "").replace(",", "") for s in sources]
    (directory / "train.xx").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (directory / "train.yy").write_text("\n".join(targets) + "\n", encoding="utf-8")
    return str(directory / "train")


@pytest.fixture(scope="session")
def copy_translator(tmp_path_factory: pytest.TempPathFactory) -> Translator:
    from polyseq.train.loop import train

    root = tmp_path_factory.mktemp("copy")
    spec = write_copy_corpus(root / "data", range(100, 2000, 3))
    config = ExperimentConfig(
        model=replace(TINY_MODEL, max_positions=64),
        data=DataConfig(train=spec, languages=("xx", "yy"), directions=("xx-yy",), vocab_size=300,
                        max_tokens=1500, max_length=60, valid_size=30),
        train=TrainConfig(output_dir=str(root / "run"), steps=200, lr=5e-3, warmup_steps=20,
                          eval_every=200, eval_bleu_sentences=10, progress=False),
    )
    result = train(config, log=lambda message: None)
    return Translator.load(result.best_dir)
