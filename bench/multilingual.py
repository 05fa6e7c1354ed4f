"""Benchmark: one English-centric model for en<->de, en<->fr, en<->cs on multi30k, its six
non-English directions decoded zero-shot and through English, the share of outputs in the wrong
language, two remedies for it, and how well the encoder aligns the four languages.

    python bench/multilingual.py --budget-steps 1200             # the full benchmark
    python bench/multilingual.py --quick --budget-min 1 --result /tmp/multilingual.json  # smoke

It trains (or reuses, in --output) three kinds of model:
  english-centric     the six English-centric directions for --budget-steps steps (or --budget-min
                      minutes; steps make the comparison independent of the machine's load)
  language-embedding  the same with model.language_embedding=output (the training-time remedy;
                      --language-embedding decoder for the other placement)
  bilingual-en-XX     en->XX alone for a sixth of the budget: the English-centric model's share
                      per direction, for the "supervised within 2 BLEU" comparison
and decodes test_2016_flickr in every setting: the baseline, + restrict-vocab (the decode-time
remedy: only tokens of the target language's training targets), + language embedding, and both;
each supervised, zero-shot and pivot (x -> en -> y). Off-target: each output's language identified
among en, de, fr, cs (polyseq.text.langid). The best checkpoint of each run is chosen on the
mean validation BLEU of its supervised directions; nothing is tuned on test.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from polyseq.config import DataConfig, ExperimentConfig, LanguageEmbedding, TrainConfig, model_preset
from polyseq.evaluate import read_metrics, score_translations, write_report
from polyseq.evaluate.alignment import align_scores, plot_alignment
from polyseq.evaluate.directions import direction_rows
from polyseq.evaluate.offtarget import off_target
from polyseq.files import read_text_lines
from polyseq.text.langid import LanguageDetector
from polyseq.train.loop import TRAINER_STATE, train
from polyseq.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
LANGS = ("en", "de", "fr", "cs")
OTHERS = LANGS[1:]
SUPERVISED = tuple(d for x in OTHERS for d in (f"en-{x}", f"{x}-en"))
ZERO_SHOT = tuple(f"{a}-{b}" for a in OTHERS for b in OTHERS if a != b)
TEST = "test_2016_flickr"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "multi30k")
    parser.add_argument("--budget-min", type=float, default=60.0,
                        help="training minutes of each English-centric model (bilingual: a sixth)")
    parser.add_argument("--budget-steps", type=int, default=0,
                        help="training steps of each English-centric model (bilingual: a sixth); "
                             "replaces --budget-min")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "work" / "multilingual")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "multilingual.json")
    parser.add_argument("--d-model", type=int, default=192)
    parser.add_argument("--layers", type=int, default=3, help="encoder and decoder layers (each)")
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=300, help="warm-up steps of a full-budget run")
    parser.add_argument("--eval-every", type=int, default=400, help="steps between validations (full budget)")
    parser.add_argument("--temperature", type=float, default=1.0, help="data.temperature")
    parser.add_argument("--language-embedding", default="output", choices=["output", "decoder"],
                        help="model.language_embedding of the training-time remedy")
    parser.add_argument("--strategy", default="greedy", choices=["greedy", "beam"], help="decoding strategy")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--sentences", type=int, default=0, help="test sentences (0: all 1,000)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny model and vocabulary, 100 test sentences: a smoke run")
    args = parser.parse_args()
    if args.quick and not args.sentences:
        args.sentences = 100
    return args


def experiment(args: argparse.Namespace, directions: tuple[str, ...], share: float, run: Path,
               language: LanguageEmbedding) -> ExperimentConfig:
    """The shared settings for `share` of the budget; warm-up and validation interval scale with it."""
    size = {} if args.quick else dict(d_model=args.d_model, encoder_layers=args.layers,
                                      decoder_layers=args.layers, ffn_dim=4 * args.d_model)
    model = model_preset("tiny" if args.quick else "small", dropout=0.1, max_positions=128,
                         language_embedding=language, **size)
    languages = tuple(lang for lang in LANGS if any(lang in d.split("-") for d in directions))
    data = DataConfig(train=str(args.data / "train"), valid=str(args.data / "val"), languages=languages,
                      directions=directions, vocab_size=2000 if args.quick else args.vocab,
                      max_tokens=4096, max_length=100, max_ratio=3.0, temperature=args.temperature)
    return ExperimentConfig(model=model, data=data, train=TrainConfig(
        output_dir=str(run),
        steps=max(1, round(args.budget_steps * share)) if args.budget_steps else 1_000_000,
        time_budget_minutes=0.0 if args.budget_steps else args.budget_min * share, lr=args.lr,
        warmup_steps=max(10, round(args.warmup * share)), eval_every=max(20, round(args.eval_every * share)),
        eval_bleu_sentences=20 if args.quick else 100, log_every=10 if args.quick else 50, seed=1,
        threads=args.threads))


def budget_label(args: argparse.Namespace, share: float) -> str:
    if args.budget_steps:
        return f"{round(args.budget_steps * share)}steps"
    return f"{args.budget_min * share:g}min"


def trained(args: argparse.Namespace, name: str, directions: tuple[str, ...], share: float,
            language: LanguageEmbedding = LanguageEmbedding.NONE) -> Path:
    """A run's best checkpoint, trained now or reused from an earlier call with the same budget."""
    run = args.output / f"{name}-{budget_label(args, share)}"
    config = experiment(args, directions, share, run, language)
    if not finished(config):
        train(config, resume=(run / "last").is_dir(), log=lambda m: print(f"[{name}] {m}", file=sys.stderr))
    return run


def finished(config: ExperimentConfig) -> bool:
    """Whether the run has trained to its end. best/ exists from its first validation on, so a run
    with a step budget also needs last/ at its last step."""
    run = Path(config.train.output_dir)
    if not (run / "best" / "model.safetensors").is_file():
        return False
    if config.train.time_budget_minutes:
        return True
    state = torch.load(run / "last" / TRAINER_STATE, weights_only=True)
    return state["counters"]["step"] >= config.train.steps


def texts(args: argparse.Namespace, lang: str) -> list[str]:
    lines = read_text_lines(args.data / f"{TEST}.{lang}")
    return lines[: args.sentences or None]


def score(args: argparse.Namespace, hypotheses: list[str], direction: str, kind: str, setting: str,
          detector: LanguageDetector) -> dict[str, Any]:
    tgt = direction.split("-")[1]
    quality = score_translations(hypotheses, [texts(args, tgt)])
    wrong = off_target(hypotheses, tgt, detector)
    return {"direction": direction, "kind": kind, "setting": setting, "bleu": quality.bleu,
            "chrf": quality.chrf, "off_target": round(wrong.rate, 4), "empty": wrong.empty,
            "detected": wrong.detected}


def decode_setting(args: argparse.Namespace, translator: Translator, setting: str, options: dict[str, Any],
                   detector: LanguageDetector) -> list[dict[str, Any]]:
    """Supervised, zero-shot and pivot rows of one setting."""
    decoding = {"beam_size": args.beam_size} if args.strategy == "beam" else {}
    rows = []
    plan = ([(d, "supervised", None) for d in SUPERVISED] + [(d, "zero-shot", None) for d in ZERO_SHOT]
            + [(d, "pivot", "en") for d in ZERO_SHOT])
    for direction, kind, pivot in plan:
        src, tgt = direction.split("-")
        started = time.perf_counter()
        outputs = translator.translate(texts(args, src), src, tgt, args.strategy, pivot=pivot,
                                       **options, **decoding)
        seconds = round(time.perf_counter() - started, 1)  # the translation's, not the scoring's
        row = score(args, outputs, direction, kind, setting, detector)
        rows.append({**row, "seconds": seconds})
        print(f"{setting:34s} {kind:10s} {direction}  BLEU {row['bleu']:6.2f}  chrF {row['chrf']:6.2f}  "
              f"off-target {100 * row['off_target']:5.1f}%", file=sys.stderr)
    return rows


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, setting by setting: zero-shot BLEU >= 70% of pivot BLEU with < 5%
    off-target in every zero-shot direction; supervised en->x within 2 BLEU of bilingual."""
    by = {(r["setting"], r["kind"], r["direction"]): r for r in rows}
    result: dict[str, Any] = {}
    for setting in sorted({r["setting"] for r in rows if r["kind"] == "zero-shot"}):
        checks = {}
        for direction in ZERO_SHOT:
            zero, pivot = by[(setting, "zero-shot", direction)], by[(setting, "pivot", direction)]
            ratio = zero["bleu"] / pivot["bleu"] if pivot["bleu"] else 0.0
            checks[direction] = {"zero_shot_over_pivot": round(ratio, 3), "off_target": zero["off_target"],
                                 "met": ratio >= 0.7 and zero["off_target"] < 0.05}
        supervised = {f"en-{x}": round(by[(setting, "supervised", f"en-{x}")]["bleu"]
                                       - by[("bilingual", "supervised", f"en-{x}")]["bleu"], 2)
                      for x in OTHERS if ("bilingual", "supervised", f"en-{x}") in by}
        result[setting] = {"zero_shot": checks, "all_zero_shot_met": all(c["met"] for c in checks.values()),
                           "en_x_minus_bilingual_bleu": supervised,
                           "en_x_within_2_bleu": all(gap >= -2.0 for gap in supervised.values())}
    return result


def alignment(args: argparse.Namespace, translators: dict[str, Translator]) -> dict[str, Any]:
    """align-score on the test sentences for each English-centric model, with a heat-map each."""
    sentences = {lang: texts(args, lang) for lang in LANGS}
    reports = {}
    for name, translator in translators.items():
        report = align_scores(translator, sentences)
        plot_alignment(report, args.result.with_name(f"{args.result.stem}-alignment-{name}.png"))
        reports[name] = report.to_dict()
    return reports


def run_summary(run: Path) -> dict[str, Any]:
    counters = torch.load(run / "last" / TRAINER_STATE, weights_only=True)["counters"]
    return {"run": str(run), "steps": counters["step"], "training_seconds": round(counters["seconds"], 1),
            "validation": direction_rows(read_metrics(run / "metrics.jsonl"))}


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'setting':34s} {'kind':10s} {'direction':9s} {'BLEU':>6s} {'chrF':>6s} {'off-target':>10s} "
          f"{'empty':>5s}")
    for row in rows:
        print(f"{row['setting']:34s} {row['kind']:10s} {row['direction']:9s} {row['bleu']:6.2f} "
              f"{row['chrf']:6.2f} {100 * row['off_target']:9.1f}% {row['empty']:5d}")


def main() -> None:
    args = parse_arguments()
    if not (args.data / f"{TEST}.cs").is_file():
        sys.exit(f"multi30k not found in {args.data}: pass --data DIR (see ../shared/data/README.md)")
    started = time.perf_counter()
    runs = {"english-centric": trained(args, "english-centric", SUPERVISED, 1.0),
            "language-embedding": trained(args, f"language-embedding-{args.language_embedding}", SUPERVISED,
                                          1.0, LanguageEmbedding(args.language_embedding))}
    runs |= {f"bilingual-en-{x}": trained(args, f"bilingual-en-{x}", (f"en-{x}",), 1 / 6) for x in OTHERS}
    training_wall = time.perf_counter() - started
    detector = LanguageDetector(LANGS)
    baseline = Translator.load(runs["english-centric"] / "best", max_batch_sentences=128)
    embedded = Translator.load(runs["language-embedding"] / "best", max_batch_sentences=128)
    restrict = {"restrict_vocabulary": True}
    rows = [*decode_setting(args, baseline, "baseline", {}, detector),
            *decode_setting(args, baseline, "restrict-vocab", restrict, detector),
            *decode_setting(args, embedded, "language-embedding", {}, detector),
            *decode_setting(args, embedded, "language-embedding+restrict-vocab", restrict, detector)]
    for x in OTHERS:
        bilingual = Translator.load(runs[f"bilingual-en-{x}"] / "best", max_batch_sentences=128)
        outputs = bilingual.translate(texts(args, "en"), "en", x, args.strategy,
                                      **({"beam_size": args.beam_size} if args.strategy == "beam" else {}))
        rows.append(score(args, outputs, f"en-{x}", "supervised", "bilingual", detector))
    report = {
        "command": "python " + shlex.join(["bench/multilingual.py", *sys.argv[1:]]),
        "setup": f"multi30k {TEST}, {len(texts(args, 'en'))} sentences; {args.strategy} decoding; off-target "
                 f"identified among {', '.join(LANGS)} with py3langid; {torch.get_num_threads()} threads",
        "budget": {"english_centric": budget_label(args, 1.0), "language_embedding": budget_label(args, 1.0),
                   "bilingual_each": budget_label(args, 1 / 6), "wall_minutes": None,
                   "training_wall_minutes": round(training_wall / 60, 1)},
        "runs": {name: run_summary(run) for name, run in runs.items()},
        "model": experiment(args, SUPERVISED, 1.0, args.output, LanguageEmbedding.NONE).to_dict()["model"],
        "rows": rows, "targets": targets(rows),
        "alignment": alignment(args, {"baseline": baseline, "language-embedding": embedded}),
    }
    report["budget"]["wall_minutes"] = round((time.perf_counter() - started) / 60, 1)
    write_report(args.result, report)
    print_table(rows)
    for name, value in report["targets"].items():
        print(f"{name}: zero-shot targets met in every direction: {value['all_zero_shot_met']}; "
              f"en->x within 2 BLEU of bilingual: {value['en_x_within_2_bleu']}")


if __name__ == "__main__":
    main()
