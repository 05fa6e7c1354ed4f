"""Benchmark: each training objective beside translation against translation alone, at the same
budget in steps, two seeds each.

    python bench/objectives.py --budget-steps 1200 --seeds 1,2        # the full benchmark
    python bench/objectives.py --quick --budget-steps 20 --seeds 1 --output /tmp/objectives \\
        --result /tmp/objectives.json                                  # a smoke run

Part `multilingual` (bench/multilingual.py's English-centric setting: en<->de, en<->fr, en<->cs on
multi30k, the same model and budget): one run per setting and seed, scored on test2016 for
en->de BLEU, the six zero-shot directions' mean BLEU and off-target rate, and the alignment
score (the encoder output's MEXA score, mean over the six language pairs). TransliCo adds
Ukrainian (UA-GEC's corrected side and its Latin transliteration) to the data and the tokenizer,
so it is compared with `translico-control` too, which adds them without the objective; every
scored language is in Latin script, so the benchmark shows what TransliCo does to a model beside
its own task, not across the script barrier it is meant for. Part `uagec`: a
UA-GEC corrector with and without E2S2 (bench/correct.py's set-up and scorer), F0.5 on the held-out
documents. A setting's gain counts when it is larger than the spread of either setting's seeds
(half their range). Runs already trained in --output are reused, so an interrupted benchmark
continues where it was; every row is written as soon as it is measured. Invocations given
different --settings or --parts may run at once (one per core) and share --result: each adds its
rows under a lock and summarises the whole file. `--table` prints the summary as markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import shlex
import statistics
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from correct import DevSet, quality
from multilingual import LANGS, SUPERVISED, TEST, ZERO_SHOT, experiment, finished, texts
from prepare import corrector_corpus

from polyseq.config import DataConfig, ExperimentConfig, LanguageEmbedding, ObjectivesConfig
from polyseq.evaluate import read_metrics, score_translations, write_report
from polyseq.evaluate.alignment import align_scores
from polyseq.evaluate.offtarget import off_target
from polyseq.files import read_text_lines, write_atomic
from polyseq.text.langid import LanguageDetector
from polyseq.train.loop import train
from polyseq.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
# each objective's weight beside translation's 1.0
SETTINGS: dict[str, dict[str, float]] = {
    "translation": {}, "denoising": {"denoising": 0.5}, "e2s2": {"e2s2": 0.3}, "csr": {"csr": 0.5},
    "claps": {"claps": 0.1}, "translico": {"translico": 0.2},
    # TransliCo's control: Ukrainian in the data and the tokenizer, without the objective
    "translico-control": {"translico": 0.0},
}
METRICS = ("bleu_en_de", "zero_shot_bleu", "off_target", "alignment")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = ROOT.parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=data / "multi30k")
    parser.add_argument("--ua-gec", type=Path, default=data / "ua-gec")
    parser.add_argument("--parts", default="multilingual,uagec")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help="objectives to run (multilingual part)")
    parser.add_argument("--budget-steps", type=int, default=1200, help="training steps of every run")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "work" / "objectives")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "objectives.json")
    parser.add_argument("--translit-lines", type=int, default=10_000, help="UA-GEC lines for TransliCo")
    parser.add_argument("--sentences", type=int, default=0, help="test sentences (0: all 1,000)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny model, 100 test sentences: a smoke run")
    parser.add_argument("--table", action="store_true", help="print --result's summary as tables, and stop")
    args = parser.parse_args()
    # what bench/multilingual.py's experiment() reads: the same model, data and schedule
    args.budget_min, args.d_model, args.layers, args.vocab, args.lr = 0.0, 192, 3, 8000, 3e-3
    args.warmup, args.eval_every, args.temperature = 300, 400, 1.0
    if args.quick and not args.sentences:
        args.sentences = 100
    return args


def multilingual_config(args: argparse.Namespace, setting: str, seed: int, run: Path) -> ExperimentConfig:
    config = experiment(args, SUPERVISED, 1.0, run, LanguageEmbedding.NONE)
    training = replace(config.train, seed=seed, objectives={"translation": 1.0, **SETTINGS[setting]})
    if not setting.startswith("translico"):
        return replace(config, train=training)
    source = args.output / "ua-gec.translit.uk"
    if not source.is_file():
        lines = [line for line in read_text_lines(args.ua_gec / "gec-only.train.ref0.txt") if line.strip()]
        write_atomic(source, "".join(line + "\n" for line in lines[: args.translit_lines]))
    languages = (*config.data.languages, "uk")
    return replace(config, train=training, data=replace(config.data, languages=languages),
                   objectives=ObjectivesConfig(translit_source=str(source), translit_lang="uk"))


def trained(config: ExperimentConfig, name: str) -> Path:
    run = Path(config.train.output_dir)
    if not finished(config):
        train(config, resume=(run / "last").is_dir(), log=lambda m: print(f"[{name}] {m}", file=sys.stderr))
    return run


def measure_translation(args: argparse.Namespace, run: Path, detector: LanguageDetector) -> dict[str, Any]:
    translator = Translator.load(run / "best", max_batch_sentences=128)
    en_de = translator.translate(texts(args, "en"), "en", "de", "greedy")
    zero_shot = []
    for direction in ZERO_SHOT:
        src, tgt = direction.split("-")
        outputs = translator.translate(texts(args, src), src, tgt, "greedy")
        zero_shot.append((score_translations(outputs, [texts(args, tgt)]).bleu,
                          off_target(outputs, tgt, detector).rate))
    report = align_scores(translator, {lang: texts(args, lang) for lang in LANGS})
    return {"bleu_en_de": round(score_translations(en_de, [texts(args, "de")]).bleu, 2),
            "zero_shot_bleu": round(statistics.mean(b for b, _ in zero_shot), 2),
            "off_target": round(statistics.mean(r for _, r in zero_shot), 4),
            "alignment": round(statistics.mean(pair.last.mutual for pair in report.pairs), 4)}


def run_summary(run: Path) -> dict[str, Any]:
    records = read_metrics(run / "metrics.jsonl")
    trained_steps = [r for r in records if r.get("kind") == "train"]
    last = trained_steps[-1] if trained_steps else {}
    return {"steps": last.get("step"), "training_minutes": round(last.get("elapsed_s", 0.0) / 60, 1),
            "objective_metrics": last.get("objectives", {})}


def uagec_rows(args: argparse.Namespace, seeds: list[int]) -> None:
    train_jsonl, dev, references = corrector_corpus(args.ua_gec, args.output)
    dev_set = DevSet("ua-gec", dev[: args.sentences or 300], [references[: args.sentences or 300]], "m2")
    data = DataConfig(train=str(train_jsonl), languages=("uk",), directions=("uk-uk",), vocab_size=4000,
                      max_tokens=4096, max_length=120, max_ratio=2.0, valid_size=300)
    base = experiment(args, SUPERVISED, 1.0, args.output, LanguageEmbedding.NONE)
    for setting in ("translation", "e2s2"):
        for seed in seeds:
            if is_measured(args, "uagec", setting, seed):
                continue
            run = args.output / f"uagec-{setting}-seed{seed}-{args.budget_steps}steps"
            # UA-GEC's held-out sentences are longer than multi30k's (bench/correct.py: 256 positions)
            config = replace(base, data=data, model=replace(base.model, max_positions=256), train=replace(
                base.train, output_dir=str(run), seed=seed, eval_bleu_sentences=50,
                objectives={"translation": 1.0, **SETTINGS[setting]}))
            trained(config, f"uagec {setting} seed {seed}")
            corrector = Translator.load(run / "best", max_batch_sentences=64)
            outputs = corrector.translate(dev_set.sources, "uk", "uk", "greedy")
            record(args, {"part": "uagec", "objective": setting, "seed": seed,
                          "budget_steps": args.budget_steps, "quick": args.quick,
                          **quality(dev_set, outputs), **run_summary(run)})


def spread(values: list[float]) -> dict[str, Any]:
    return {"mean": round(statistics.mean(values), 4), "spread": round((max(values) - min(values)) / 2, 4),
            "seeds": len(values)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per part and objective: each metric's mean and spread (half the range) over seeds, and
    whether its difference from translation alone is larger than both settings' spreads."""
    summary: dict[str, Any] = {}
    for part, metrics in (("multilingual", METRICS), ("uagec", ("f0.5",))):
        by_objective: dict[str, dict[str, Any]] = {}
        for objective in dict.fromkeys(r["objective"] for r in rows if r["part"] == part):
            mine = [r for r in rows if r["part"] == part and r["objective"] == objective]
            by_objective[objective] = {metric: spread([r[metric] for r in mine]) for metric in metrics}
        for objective, values in by_objective.items():
            for against in ("translation", "translico-control" if objective == "translico" else ""):
                base = by_objective.get(against)
                if base is None or objective == against:
                    continue
                for metric, value in values.items():
                    difference = value["mean"] - base[metric]["mean"]
                    value[f"minus_{against}"] = round(difference, 4)
                    value[f"beyond_spread_of_{against}"] = abs(difference) > max(value["spread"],
                                                                                 base[metric]["spread"])
        if by_objective:
            summary[part] = by_objective
    return summary


def matches(row: dict[str, Any], part: str, objective: str, seed: int) -> bool:
    return (row["part"], row["objective"], row["seed"]) == (part, objective, seed)


def measured_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows already in --result at this budget (another invocation may have added some)."""
    if not args.result.is_file():
        return []
    return [row for row in json.loads(args.result.read_text())["rows"]
            if row.get("budget_steps") == args.budget_steps and row.get("quick") == args.quick]


def is_measured(args: argparse.Namespace, part: str, objective: str, seed: int) -> bool:
    return any(matches(row, part, objective, seed) for row in measured_rows(args))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record(args: argparse.Namespace, row: dict[str, Any]) -> None:
    """Add a measured row to --result and summarise every row there again. The file is read and
    written under a lock, so invocations given different --settings or --parts (one per core,
    or per machine on shared storage) can run at once and fill one file."""
    command = "python " + shlex.join(["bench/objectives.py", *sys.argv[1:]])
    with locked(args.result):
        report = json.loads(args.result.read_text()) if args.result.is_file() else {}
        rows = [r for r in measured_rows(args) if not matches(r, row["part"], row["objective"], row["seed"])]
        rows.append(row)
        earlier = report.get("commands", [report["command"]] if "command" in report else [])
        commands = [c for c in earlier if c != command] + [command]
        write_report(args.result, {
            "commands": commands,
            "setup": f"multi30k {TEST}, English-centric training (bench/multilingual.py's model), "
                     f"greedy decoding; {args.budget_steps} steps per run; weights beside translation's "
                     f"1.0: {SETTINGS}",
            "rows": rows, "summary": summarise(rows)})


def markdown_table(summary: dict[str, Any]) -> str:
    """The summary as docs/objectives.md's tables: mean ± spread over the seeds, and the difference
    from translation alone (and translico's from its control), starred where it is beyond both
    settings' spreads."""
    def cell(value: dict[str, Any], metric: str) -> str:
        scale, digits = (100, 1) if metric == "off_target" else (1, 2 if "bleu" in metric else 3)
        text = f"{value['mean'] * scale:.{digits}f} ± {value['spread'] * scale:.{digits}f}"
        differences = [f"{value[f'minus_{against}'] * scale:+.{digits}f}{label}"
                       f"{'*' if value[f'beyond_spread_of_{against}'] else ''}"
                       for against, label in (("translation", ""), ("translico-control", " vs control"))
                       if f"minus_{against}" in value]
        return text + (f" ({'; '.join(differences)})" if differences else "")

    tables = []
    for part, objectives in summary.items():
        metrics = list(next(iter(objectives.values())))
        names = [f"{m} (%)" if m == "off_target" else m for m in metrics]
        lines = ["| objective | seeds | " + " | ".join(names) + " |", "|---" * (len(metrics) + 2) + "|"]
        for objective, values in objectives.items():
            seeds = next(iter(values.values()))["seeds"]
            lines.append(f"| {objective} | {seeds} | "
                         + " | ".join(cell(values[m], m) for m in metrics) + " |")
        tables.append(f"{part}:\n\n" + "\n".join(lines))
    return "\n\n".join(tables)


def main() -> None:
    args = parse_arguments()
    if args.table:
        if not args.result.is_file():
            sys.exit(f"no results in {args.result}: run the benchmark first")
        print(markdown_table(json.loads(args.result.read_text())["summary"]))
        return
    if not (args.data / f"{TEST}.cs").is_file():
        sys.exit(f"multi30k not found in {args.data}: pass --data DIR (see ../shared/data/README.md)")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.output.mkdir(parents=True, exist_ok=True)
    seeds = [int(seed) for seed in args.seeds.split(",") if seed]
    parts = [part for part in args.parts.split(",") if part]
    detector = LanguageDetector(LANGS)
    if "multilingual" in parts:
        for setting in [s for s in args.settings.split(",") if s]:
            for seed in seeds:
                if is_measured(args, "multilingual", setting, seed):
                    continue
                run = args.output / f"{setting}-seed{seed}-{args.budget_steps}steps"
                trained(multilingual_config(args, setting, seed, run), f"{setting} seed {seed}")
                row = {"part": "multilingual", "objective": setting, "seed": seed,
                       "budget_steps": args.budget_steps, "quick": args.quick,
                       **measure_translation(args, run, detector), **run_summary(run)}
                record(args, row)
                scores = "  ".join(f"{metric} {row[metric]}" for metric in METRICS)
                print(f"{setting:12s} seed {seed}: {scores}", file=sys.stderr)
    if "uagec" in parts:
        uagec_rows(args, seeds)
    if args.result.is_file():
        print(markdown_table(json.loads(args.result.read_text())["summary"]))

if __name__ == "__main__":
    main()
