"""Helpers shared by test modules: the tiny model size and experiments on generated data.
(A plain module, not conftest.py: several folders have a conftest of their own.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from num2words import num2words

from polyseq.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.quickstart import split_numbers, write_corpus

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


def write_copy_corpus(directory: Path, numbers: range) -> str:
    """'xx' is English number words; 'yy' the same without 'and' and commas: mostly a copy."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = [num2words(n) for n in numbers]
    targets = [s.replace(" and", "").replace(",", "") for s in sources]
    (directory / "train.xx").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (directory / "train.yy").write_text("\n".join(targets) + "\n", encoding="utf-8")
    return str(directory / "train")


def overfit_losses(model: Any, batch: Any, steps: int = 150) -> list[float]:
    """Per-token losses of `model` trained with Adam on one batch, step by step."""
    import torch

    from polyseq.train.objectives import label_smoothed_nll

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss, _, tokens = label_smoothed_nll(model(batch.src, batch.tgt_in), batch.tgt_out,
                                             smoothing=0.0, pad_id=0)
        (loss / tokens).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item() / tokens)
    return losses
