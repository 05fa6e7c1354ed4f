"""Shared fixtures: a tiny model trained inside the test session, on numbers written out with
num2words, so that Translator, CLI and decoding tests run against a real trained polyseq model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from helpers import TINY_MODEL, tiny_experiment, write_copy_corpus
from polyseq.config import DataConfig, ExperimentConfig, TrainConfig
from polyseq.translator import Translator

torch.set_num_threads(1)  # deterministic, and fair to the other core


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
