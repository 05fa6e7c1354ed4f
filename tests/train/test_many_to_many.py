"""Training over directions of unequal size: data.temperature, the examples drawn per direction in
metrics.jsonl, exact resumption, validation per direction (table and plot) and the target
vocabularies written with every model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from num2words import num2words
from safetensors.torch import load_file

from helpers import TINY_MODEL
from polyseq.config import ConfigError, DataConfig, ExperimentConfig, TrainConfig, load_config
from polyseq.evaluate.directions import direction_table
from polyseq.text.tokenizer import Tokenizer
from polyseq.text.vocabularies import LanguageVocabularies
from polyseq.train.loop import train

SIZES = {("num", "en"): 240, ("num", "de"): 60, ("en", "de"): 15}


def write_unequal_corpus(directory: Path) -> tuple[str, str]:
    """A 4-column TSV with 240 num-en, 60 num-de and 15 en-de pairs, and a validation TSV."""
    directory.mkdir(parents=True, exist_ok=True)
    text = {"num": str, "en": num2words, "de": lambda n: num2words(n, lang="de")}
    rows = [f"{a}\t{b}\t{text[a](n)}\t{text[b](n)}" for (a, b), size in SIZES.items()
            for n in range(7, 7 + 3 * size, 3)]
    (directory / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    valid = [f"{a}\t{b}\t{text[a](n)}\t{text[b](n)}" for (a, b) in SIZES for n in range(1000, 1010)]
    (directory / "valid.tsv").write_text("\n".join(valid) + "\n", encoding="utf-8")
    return str(directory / "train.tsv"), str(directory / "valid.tsv")


def experiment(tmp_path: Path, name: str, steps: int, temperature: float) -> ExperimentConfig:
    train_spec, valid_spec = write_unequal_corpus(tmp_path / "data")
    return ExperimentConfig(
        model=replace(TINY_MODEL, dropout=0.1),
        data=DataConfig(train=train_spec, valid=valid_spec, languages=("num", "en", "de"),
                        directions=("num-en", "num-de", "en-de"), vocab_size=300, max_tokens=300,
                        max_length=40, max_ratio=12.0, temperature=temperature),
        train=TrainConfig(output_dir=str(tmp_path / name), steps=steps, lr=5e-3, warmup_steps=5,
                          eval_every=steps // 2, eval_bleu_sentences=4, log_every=5, progress=False),
    )


def test_the_temperature_setting() -> None:
    assert load_config(None, ["data.temperature=inf"]).data.temperature == float("inf")
    for bad in ("0", "-1", "nan"):
        with pytest.raises(ConfigError, match="data.temperature must be > 0"):
            load_config(None, [f"data.temperature={bad}"])


def drawn_records(run: Path) -> list[dict[str, int]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [r["drawn"] for r in records if r["kind"] == "train"]


def test_temperature_balances_directions_and_a_resumed_run_is_exact(tmp_path: Path) -> None:
    quiet = {"log": lambda message: None}
    straight = experiment(tmp_path, "straight", steps=50, temperature=float("inf"))
    train(straight, **quiet)
    stopped = replace(straight, train=replace(straight.train, output_dir=str(tmp_path / "resumed"),
                                              steps=25))
    train(stopped, **quiet)
    train(replace(stopped, train=replace(stopped.train, steps=50, eval_every=25)), resume=True, **quiet)
    expected = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    actual = load_file(str(tmp_path / "resumed" / "last" / "model.safetensors"))
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert drawn_records(tmp_path / "resumed") == drawn_records(tmp_path / "straight")
    final = drawn_records(tmp_path / "straight")[-1]
    assert set(final) == {"num-en", "num-de", "en-de"}
    # uniform within the epoch in progress, where proportional would draw 16 num-en for 1 en-de
    assert max(final.values()) < 1.5 * min(final.values())


def test_proportional_draws_follow_the_data_and_runs_report_each_direction(tmp_path: Path) -> None:
    messages: list[str] = []
    result = train(experiment(tmp_path, "run", steps=12, temperature=1.0), log=messages.append)
    final = drawn_records(tmp_path / "run")[-1]
    assert final["num-en"] > 2 * final["num-de"] > 2 * final["en-de"] > 0
    table = direction_table(tmp_path / "run" / "metrics.jsonl")
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == ["| en-de", "| num-de", "| num-en"]
    assert table in messages[-1]
    assert (tmp_path / "run" / "directions.png").read_bytes()[:4] == b"\x89PNG"
    vocabularies = LanguageVocabularies.load(result.best_dir)
    tokenizer = Tokenizer.load(result.best_dir)
    assert vocabularies.languages == ("de", "en")  # the target languages
    german = set(vocabularies.allowed("de"))
    assert set(tokenizer.encode("dreihundert")) <= german
    assert not set(tokenizer.encode("three hundred")) <= german
