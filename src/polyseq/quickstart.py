"""The quickstart: a multilingual model trained end to end on data that polyseq makes itself.

Numbers are written out with num2words in several languages (327 -> "three hundred and
twenty-seven" / "dreihundertsiebenundzwanzig" / "trois cent vingt-sept"); the digits themselves
are one more language, `num`. The model trains on some directions between them and is tested on
numbers it never saw, in every trained direction and in directions it never trained on (zero-shot).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from num2words import num2words

from polyseq.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.evaluate import score_translations, write_report
from polyseq.train.loop import TrainResult, train
from polyseq.translator import Translator

WORD_LANGUAGES = ("en", "de", "fr", "es")
LANGUAGES = ("num", *WORD_LANGUAGES)
# every word language to and from digits, and English to and from the others: de<->fr, de<->es
# and fr<->es are never trained, so they are zero-shot
TRAINED = tuple(
    [f"num-{lang}" for lang in WORD_LANGUAGES] + [f"{lang}-num" for lang in WORD_LANGUAGES]
    + [f"en-{lang}" for lang in WORD_LANGUAGES[1:]] + [f"{lang}-en" for lang in WORD_LANGUAGES[1:]]
)
ZERO_SHOT = ("de-fr", "fr-de", "es-de")
REPORTED = ("num-en", "num-de", "en-fr", "de-en", "fr-num", "es-en", *ZERO_SHOT)


def write_number(number: int, lang: str) -> str:
    return str(number) if lang == "num" else num2words(number, lang=lang)


def write_corpus(directory: Path, numbers: Sequence[int], name: str) -> str:
    """Write `name.<lang>` files, one number per line, aligned across languages."""
    directory.mkdir(parents=True, exist_ok=True)
    for lang in LANGUAGES:
        lines = "".join(write_number(n, lang) + "\n" for n in numbers)
        (directory / f"{name}.{lang}").write_text(lines, encoding="utf-8")
    return str(directory / name)


@dataclass(frozen=True)
class Split:
    train: list[int]
    valid: list[int]
    test: list[int]


def split_numbers(limit: int, test_size: int, valid_size: int, seed: int) -> Split:
    """Disjoint train/valid/test numbers from [0, limit): the test numbers are never trained on."""
    numbers = list(range(limit))
    random.Random(seed).shuffle(numbers)
    test, valid = numbers[:test_size], numbers[test_size : test_size + valid_size]
    return Split(numbers[test_size + valid_size :], valid, test)


def quickstart_config(data_dir: Path, output_dir: Path, minutes: float, split: Split,
                      seed: int) -> ExperimentConfig:
    train_spec = write_corpus(data_dir, split.train, "train")
    valid_spec = write_corpus(data_dir, split.valid, "valid")
    return ExperimentConfig(
        model=ModelConfig(d_model=128, encoder_layers=2, decoder_layers=2, heads=4, ffn_dim=512,
                          dropout=0.1, max_positions=64),
        data=DataConfig(train=train_spec, valid=valid_spec, languages=LANGUAGES, directions=TRAINED,
                        valid_directions=("num-en", "en-de", "de-fr"), vocab_size=600,
                        max_tokens=3000, max_length=60, max_ratio=12.0),
        train=TrainConfig(output_dir=str(output_dir), steps=100_000, time_budget_minutes=minutes,
                          lr=3e-3, warmup_steps=400, eval_every=500, eval_bleu_sentences=100,
                          log_every=25, seed=seed),
        preset="quickstart",
    )


def evaluate_directions(translator: Translator, numbers: Sequence[int],
                        directions: Sequence[str]) -> dict[str, dict[str, Any]]:
    report: dict[str, dict[str, Any]] = {}
    for direction in directions:
        src_lang, tgt_lang = direction.split("-")
        sources = [write_number(n, src_lang) for n in numbers]
        references = [write_number(n, tgt_lang) for n in numbers]
        hypotheses = translator.translate(sources, src_lang, tgt_lang, strategy="greedy")
        scores = score_translations(hypotheses, [references])
        report[direction] = {
            "zero_shot": direction in ZERO_SHOT, "exact_match": scores.exact_match,
            "chrf": scores.chrf, "samples": [
                {"source": s, "output": h, "reference": r}
                for s, h, r in list(zip(sources, hypotheses, references, strict=True))[:3]
            ],
        }
    return report


def run_quickstart(output: str | Path = "quickstart", minutes: float = 4.0, seed: int = 1,
                   limit: int = 10_000, test_size: int = 200, log: Any = print) -> dict[str, Any]:
    """Make the corpus, train, evaluate on unseen numbers, and write report.json and the plot."""
    output = Path(output)
    split = split_numbers(limit, test_size, valid_size=100, seed=seed)
    config = quickstart_config(output / "data", output / "run", minutes, split, seed)
    log(f"corpus: {len(split.train):,} numbers in {', '.join(LANGUAGES)}; "
        f"{len(TRAINED)} trained directions, zero-shot: {', '.join(ZERO_SHOT)}")
    result: TrainResult = train(config, log=log)
    translator = Translator.load(result.best_dir)
    directions = evaluate_directions(translator, split.test, REPORTED)
    report = {"model": str(result.best_dir), "steps": result.steps,
              "test_numbers": len(split.test), "directions": directions,
              "plot": str(result.plot) if result.plot else None}
    write_report(output / "report.json", report)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'direction':<10} {'exact %':>8} {'chrF++':>7}"]
    for direction, item in report["directions"].items():
        note = "  (zero-shot)" if item["zero_shot"] else ""
        lines.append(f"{direction:<10} {item['exact_match']:>8.1f} {item['chrf']:>7.1f}{note}")
    lines.append("")
    for direction, item in report["directions"].items():
        sample = item["samples"][0]
        lines.append(f"{direction}: {sample['source']!r} -> {sample['output']!r} "
                     f"(reference {sample['reference']!r})")
    return "\n".join(lines)
