"""Benchmark: correctors trained within a time budget, scored as the GEC field does, with the speed
of polyseq's greedy, beam 5 and aggressive decoding against CTranslate2 on the same weights.

    python bench/correct.py --task uk --minutes 28 --result bench/results/correct-uagec.json
    python bench/correct.py --task en --minutes 30 --result bench/results/correct-en.json

`--task uk`: a Ukrainian corrector trained on UA-GEC's pairs (and `--synthetic N` pairs of
synthetic errors made from their corrected side), scored on the last 40 documents, held out
(bench/prepare.py). UA-GEC has no M2 file here, so the gold edits are the word-level differences
between each source and its correction (`m2_from_pairs`).

`--task en`: an English corrector trained on synthetic errors alone, made from clean English
(multi30k's captions and the FastAPI docs' prose), scored on JFLEG dev (GLEU, four references)
and on CWEB-G and CWEB-S dev (M2 against the two annotators' corrections, and over-correction).
JFLEG's tokenized text is detokenized for the model; every side of every score (sources,
corrections, references) is then tokenized alike into words and punctuation marks, so the figures
compare with each other and with copying the input, and only roughly with published ones.

`--actions s2a` trains a Sequence-to-Action corrector instead (`polyseq.model.actions`), in a run
of its own; CTranslate2 cannot load one, so its speed race is polyseq's alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from peers import race
from prepare import (
    DATA,
    DEFAULT_PRESET,
    PRESETS,
    RESULTS,
    WORK,
    corrector_corpus,
    english_corrector_corpus,
    peer_task,
    run_name,
    train_model,
)

from polyseq.config import Actions, DataConfig
from polyseq.evaluate import write_report
from polyseq.evaluate.gleu import gleu
from polyseq.evaluate.m2 import m2_from_pairs, score_m2
from polyseq.files import read_text_lines, write_atomic
from polyseq.translator import Translator

WORD = re.compile(r"\w+(?:['’ʼ-]\w+)*|[^\w\s]")
STRATEGIES = {"greedy": ("greedy", {}), "beam5": ("beam", {"beam_size": 5}), "aggressive": ("aggressive", {})}


@dataclass(frozen=True)
class DevSet:
    name: str
    sources: list[str]  # what the corrector reads
    references: list[list[str]]  # one stream per annotator (or JFLEG reference)
    metric: str  # "m2" or "gleu"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tokens(text: str) -> str:
    """Words and punctuation marks, space-separated, as M2 and GLEU scoring read them."""
    return " ".join(WORD.findall(text))


def quality(dev: DevSet, outputs: list[str]) -> dict[str, Any]:
    sources = [tokens(s) for s in dev.sources]
    references = [[tokens(r) for r in stream] for stream in dev.references]
    hypotheses = [tokens(o) for o in outputs]
    if dev.metric == "gleu":
        score = gleu(sources, hypotheses, references)
        return {"gleu": round(100 * score.score, 2), "ci95": [round(100 * score.ci_low, 2),
                                                             round(100 * score.ci_high, 2)]}
    m2 = score_m2(hypotheses, m2_from_pairs(sources, references))
    return {"precision": round(m2.precision, 4), "recall": round(m2.recall, 4), "f0.5": round(m2.f, 4),
            "overcorrection": round(m2.overcorrection_rate, 4), "correct": m2.correct,
            "proposed": m2.proposed, "gold": m2.gold}


# ------------------------------------------------------------------------------------- tasks


def ukrainian(args: argparse.Namespace) -> tuple[DataConfig, list[DevSet]]:
    train_jsonl, dev, references = corrector_corpus(args.data / "ua-gec", args.output)
    data = DataConfig(train=str(train_jsonl), languages=("uk",), directions=("uk-uk",), vocab_size=4000,
                      max_tokens=4096, max_length=120, max_ratio=2.0, valid_size=300)
    if args.synthetic:
        clean = args.output / "ua-gec.clean.uk"
        # the corrected side of the training pairs only: the held-out documents stay unseen
        corrected = [json.loads(line)["tgt"] for line in read_text_lines(train_jsonl)]
        write_atomic(clean, "".join(line + "\n" for line in corrected if line.strip()))
        data = replace(data, noise_source=str(clean), noise_lang="uk", noise_pairs=args.synthetic)
    return data, [DevSet("ua-gec", dev, [references], "m2")]


def jfleg_detokenize() -> Callable[[str], str]:
    from sacremoses import MosesDetokenizer

    moses = MosesDetokenizer("en")
    return lambda line: re.sub(r" (n't)\b", r"\1", moses.detokenize(line.split()))


def english(args: argparse.Namespace) -> tuple[DataConfig, list[DevSet]]:
    clean, valid = english_corrector_corpus(args.data, args.output)
    data = DataConfig(valid=str(valid), languages=("en",), directions=("en-en",), vocab_size=4000,
                      max_tokens=4096, max_length=120, max_ratio=2.0, noise_source=str(clean),
                      noise_lang="en", noise_pairs=args.synthetic or 100_000, noise_confusions_from="")
    jfleg, cweb = args.data / "jfleg", args.data / "cweb" / "raw"
    detokenize = jfleg_detokenize()
    dev_sets = [DevSet("jfleg", [detokenize(line) for line in read_text_lines(jfleg / "dev.src")],
                       [[detokenize(line) for line in read_text_lines(jfleg / f"dev.ref{i}")]
                        for i in range(4)], "gleu")]
    for genre in ("G", "S"):
        dev_sets.append(DevSet(f"cweb-{genre.lower()}", read_text_lines(cweb / f"CWEB-{genre}.dev.source"),
                               [read_text_lines(cweb / f"CWEB-{genre}.dev.ann{i}") for i in (1, 2)], "m2"))
    return data, dev_sets


TASKS = {"uk": ukrainian, "en": english}


def training_summary(model: Path) -> dict[str, Any]:
    """What docs/correction.md quotes of the run (steps, parameters), from its last checkpoint."""
    metadata = json.loads((model.parent / "last" / "metadata.json").read_text(encoding="utf-8"))
    return {key: metadata.get(key) for key in ("steps", "tokens", "parameters", "train_pairs")}


# ------------------------------------------------------------------------------------- speed


def speed(model: Path, lang: str, texts: list[str], output: Path, threads: int,
          peers: bool) -> list[dict[str, Any]]:
    """polyseq greedy, beam 5 and aggressive (and with `peers`, CTranslate2 float32 on the same
    weights), on token ids, each in a fresh process (bench/peers.py's race)."""
    source_file = output / f"speed.{lang}"
    write_atomic(source_file, "".join(text + "\n" for text in texts))
    task = peer_task(f"corrector-{lang}={model}:{lang}:{lang}:{source_file}", output / "peers", len(texts),
                     export=peers)
    engines = ["polyseq", "ct2-float32"] if peers else ["polyseq"]
    measurements = race(task, [1, 32], [threads], engines, repeats=1, log=log)
    return [{key: row[key] for key in ("engine", "strategy", "batch", "threads", "ms_per_sentence",
                                       "tokens_per_s", "identical_to_greedy", "error", "load_before")}
            | {"sentences_per_s": round(1000 / row["ms_per_sentence"], 2) if row["ms_per_sentence"] else 0}
            for row in (m.summary() for m in measurements)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(TASKS), default="uk")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--output", type=Path, help="where models train (bench/work/correct[-en])")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS))
    parser.add_argument("--minutes", type=float, default=60.0, help="training budget")
    parser.add_argument("--synthetic", type=int, default=0, help="synthetic pairs (en: default 100000)")
    parser.add_argument("--dev-sentences", type=int, default=0, help="score the first N of each set (0: all)")
    parser.add_argument("--speed-sentences", type=int, default=100)
    parser.add_argument("--actions", default="none", choices=[a.value for a in Actions],
                        help="model.actions: s2a for Sequence-to-Action")
    parser.add_argument("--threads", type=int, default=2, help="torch threads; every engine's in the race")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--result", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.output = args.output or WORK / ("correct" if args.task == "uk" else "correct-en")
    args.result = args.result or RESULTS / ("correct-uagec.json" if args.task == "uk" else "correct-en.json")
    data, dev_sets = TASKS[args.task](args)
    if args.dev_sentences:
        dev_sets = [replace(d, sources=d.sources[: args.dev_sentences],
                            references=[r[: args.dev_sentences] for r in d.references]) for d in dev_sets]
    lang = data.languages[0]
    name = run_name("corrector", args.preset) + (f"-synthetic{args.synthetic}" if args.synthetic else "")
    name += f"-{args.actions}" if args.actions != "none" else ""
    start = time.perf_counter()
    model = train_model(name, args.output, data, args.minutes, 256, args.device, args.preset,
                        actions=args.actions)
    trained = time.perf_counter() - start
    translator = Translator.load(model, device=args.device, max_batch_sentences=32)
    results: dict[str, dict[str, Any]] = {}
    for dev in dev_sets:
        outputs, tokens = {}, {}
        for label, (strategy, settings) in STRATEGIES.items():
            log(f"correcting {len(dev.sources)} sentences of {dev.name} with {label}")
            done = translator.translate_detailed(dev.sources, lang, lang, strategy, **settings)  # correct()'s
            outputs[label], tokens[label] = done.texts, [h[0].tokens if h else () for h in done.hypotheses]
        results[dev.name] = {"sentences": len(dev.sources), "copy": quality(dev, dev.sources)}
        results[dev.name] |= {label: quality(dev, texts) for label, texts in outputs.items()}
        # token for token, as lossless means: two outputs can detokenize to one text
        results[dev.name]["aggressive"]["identical_to_greedy"] = tokens["aggressive"] == tokens["greedy"]
    report = {
        "command": "python bench/correct.py " + " ".join(sys.argv[1:]),
        "setup": f"{args.preset} {lang} corrector (model.actions={args.actions}), {args.minutes:g} min "
                 f"budget on {args.device}, {args.threads} threads "
                 f"({trained / 60:.1f} min spent here, 0 when reused); speed on the first "
                 f"{args.speed_sentences} sentences of {dev_sets[0].name}",
        "model": str(model), "training": training_summary(model), "quality": results,
        "speed": speed(model, lang, dev_sets[0].sources[: args.speed_sentences], args.output, args.threads,
                       peers=args.actions == "none"),
        "model_config": {k: getattr(v, "value", v) for k, v in asdict(translator.model.config).items()},
    }
    print_report(report)
    write_report(args.result, report)


def print_report(report: dict[str, Any]) -> None:
    for dev, rows in report["quality"].items():
        for label, row in rows.items():
            if label == "sentences":
                continue
            figures = (f"GLEU {row['gleu']:.2f}" if "gleu" in row else
                       f"P {row['precision']:.3f}  R {row['recall']:.3f}  F0.5 {row['f0.5']:.3f}  "
                       f"over-correction {100 * row['overcorrection']:.1f}%")
            print(f"{dev:8s} {label:10s} {figures}")
    for row in report["speed"]:
        print(f"{row['engine']:12s} {row['strategy']:10s} batch {row['batch']:2d}: "
              f"{row['sentences_per_s']:7.2f} sentences/s  identical to greedy: {row['identical_to_greedy']}")


if __name__ == "__main__":
    main()
