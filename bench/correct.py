"""Benchmark: a Ukrainian corrector trained on UA-GEC within a time budget, scored as the GEC field
does (M2 precision, recall, F0.5 and over-correction) on documents held out from training, with
the speed of greedy, beam 5 and aggressive decoding at batch 1 and 32.

    python bench/correct.py --minutes 60 --result bench/results/correct-uagec.json

The dev slice is the last 40 documents of UA-GEC's training split (bench/prepare.py). UA-GEC has no
M2 file here, so the gold edits are the word-level differences between each source and its
correction (`polyseq.evaluate.m2.m2_from_pairs`), on text tokenized into words and punctuation;
the figures compare with each other and with copying the input, and only roughly with the UNLP
2023 shared task's (which scores ERRANT-typed edits). `--synthetic N` adds N pairs of synthetic
errors made from the corrected side of the training pairs (`polyseq.data.noise`). `--actions s2a`
trains a Sequence-to-Action model instead (`polyseq.model.actions`), in a run of its own.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from prepare import DATA, DEFAULT_PRESET, PRESETS, RESULTS, WORK, corrector_corpus, run_name, train_model

from polyseq.config import Actions, DataConfig
from polyseq.evaluate import write_report
from polyseq.evaluate.m2 import m2_from_pairs, score_m2
from polyseq.files import read_text_lines, write_atomic
from polyseq.translator import Translator

WORD = re.compile(r"\w+(?:['’ʼ-]\w+)*|[^\w\s]")
STRATEGIES = {"greedy": ("greedy", {}), "beam5": ("beam", {"beam_size": 5}), "aggressive": ("aggressive", {})}


def tokens(text: str) -> str:
    """Words and punctuation marks, space-separated, as M2 scoring reads them."""
    return " ".join(WORD.findall(text))


def quality(outputs: list[str], sources: list[str], references: list[str]) -> dict[str, Any]:
    gold = m2_from_pairs([tokens(s) for s in sources], [[tokens(r) for r in references]])
    score = score_m2([tokens(o) for o in outputs], gold)
    return {"precision": round(score.precision, 4), "recall": round(score.recall, 4),
            "f0.5": round(score.f, 4), "overcorrection": round(score.overcorrection_rate, 4),
            "correct": score.correct, "proposed": score.proposed, "gold": score.gold}


def speed(translator: Translator, texts: list[str]) -> list[dict[str, Any]]:
    rows = []
    greedy_outputs: list[str] = []
    for name, (strategy, settings) in STRATEGIES.items():
        for batch in (1, 32):
            start = time.perf_counter()
            outputs = [text for i in range(0, len(texts), batch)
                       for text in translator.correct(texts[i : i + batch], "uk", strategy, **settings)]
            seconds = time.perf_counter() - start
            if name == "greedy" and batch == 1:
                greedy_outputs = outputs
            rows.append({"strategy": name, "batch": batch, "identical_to_greedy": outputs == greedy_outputs,
                         "sentences_per_s": round(len(texts) / seconds, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ua-gec", type=Path, default=DATA / "ua-gec")
    parser.add_argument("--output", type=Path, default=WORK / "correct")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS))
    parser.add_argument("--minutes", type=float, default=60.0, help="training budget")
    parser.add_argument("--synthetic", type=int, default=0, help="synthetic pairs to add")
    parser.add_argument("--dev-sentences", type=int, default=0, help="score the first N (0: all)")
    parser.add_argument("--speed-sentences", type=int, default=100)
    parser.add_argument("--actions", default="none", choices=[a.value for a in Actions],
                        help="model.actions: s2a for Sequence-to-Action")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--result", type=Path, default=RESULTS / "correct-uagec.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_jsonl, dev, references = corrector_corpus(args.ua_gec, args.output)
    if args.dev_sentences:
        dev, references = dev[: args.dev_sentences], references[: args.dev_sentences]
    data = DataConfig(train=str(train_jsonl), languages=("uk",), directions=("uk-uk",), vocab_size=4000,
                      max_tokens=4096, max_length=120, max_ratio=2.0, valid_size=300)
    if args.synthetic:
        clean = args.output / "ua-gec.clean.uk"
        # the corrected side of the training pairs only: the held-out documents stay unseen
        corrected = [json.loads(line)["tgt"] for line in read_text_lines(train_jsonl)]
        write_atomic(clean, "".join(line + "\n" for line in corrected if line.strip()))
        data = replace(data, noise_source=str(clean), noise_lang="uk", noise_pairs=args.synthetic)
    name = run_name("corrector", args.preset) + (f"-synthetic{args.synthetic}" if args.synthetic else "")
    name += f"-{args.actions}" if args.actions != "none" else ""
    start = time.perf_counter()
    model = train_model(name, args.output, data, args.minutes, 256, args.device, args.preset,
                        actions=args.actions)
    trained = time.perf_counter() - start
    translator = Translator.load(model, device=args.device, max_batch_sentences=32)
    results: dict[str, Any] = {"copy": quality(dev, dev, references)}
    outputs = {name_: translator.correct(dev, "uk", strategy, **settings)
               for name_, (strategy, settings) in STRATEGIES.items()}
    for name_, texts in outputs.items():
        results[name_] = quality(texts, dev, references)
    results["aggressive"]["identical_to_greedy"] = outputs["aggressive"] == outputs["greedy"]
    report = {
        "command": "python bench/correct.py " + " ".join(sys.argv[1:]),
        "setup": f"{args.preset} corrector (model.actions={args.actions}), {args.minutes:g} min budget on "
                 f"{args.device}, {torch.get_num_threads()} torch threads "
                 f"({trained / 60:.1f} min spent here, 0 when reused), {len(dev)} dev sentences from "
                 f"40 held-out documents; gold edits from the corrections (m2_from_pairs)",
        "model": str(model), "quality": results,
        "speed": speed(translator, dev[: args.speed_sentences]),
        "model_config": {k: getattr(v, "value", v) for k, v in asdict(translator.model.config).items()},
    }
    for label, row in results.items():
        print(f"{label:10s} P {row['precision']:.3f}  R {row['recall']:.3f}  F0.5 {row['f0.5']:.3f}  "
              f"over-correction {100 * row['overcorrection']:.1f}%")
    for row in report["speed"]:
        print(f"{row['strategy']:10s} batch {row['batch']:2d}: {row['sentences_per_s']:7.2f} sentences/s"
              f"  identical to greedy: {row['identical_to_greedy']}")
    write_report(args.result, report)


if __name__ == "__main__":
    main()
