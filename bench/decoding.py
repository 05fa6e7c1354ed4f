"""Benchmark: every decoding strategy on two real polyseq models, at batch 1 and 32.

A corrector (Ukrainian error correction trained on ua-gec, evaluated on documents held out from
training) and a translator (multi30k en->de), each with a smaller draft model that shares its
tokenizer (one decoder layer) for speculative decoding. The translator's draft learns from the
translator's own greedy output on the training sources (sequence-level distillation), so that it
predicts what the translator will say rather than what the references say. For each strategy:
sentences/s, target tokens/s, forward passes per sentence, the speed-up over greedy at the same
batch size, and the rate of outputs identical to greedy's. The strategies take turns five times
(`--repeats`) and each keeps its fastest run: on a shared machine other processes only ever add
time, so the minimum is the closest to what the code costs (the rule of Python's timeit); every
run is in the JSON.

    python bench/decoding.py                                      # train what is missing, measure
    python bench/decoding.py --translator bench/work/multi30k/best  # reuse a trained translator
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from polyseq.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.evaluate import write_report
from polyseq.files import write_atomic
from polyseq.train.loop import train
from polyseq.translator import Translator, read_text_lines

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
STRATEGIES: list[tuple[str, str, dict[str, Any]]] = [
    ("greedy", "greedy", {}),
    ("beam5", "beam", {"beam_size": 5}),
    ("aggressive", "aggressive", {}),
    ("aggressive-adaptive", "aggressive", {"adaptive": True}),
    ("speculative-ngram", "speculative", {"draft": "ngram"}),
    ("speculative-model", "speculative", {"draft": "model"}),
]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ua-gec", type=Path, default=DATA / "ua-gec")
    parser.add_argument("--multi30k", type=Path, default=DATA / "multi30k")
    parser.add_argument("--translator", type=Path, default=None,
                        help="a trained en->de polyseq model (default: train one)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per main model")
    parser.add_argument("--draft-minutes", type=float, default=5.0, help="budget per draft model")
    parser.add_argument("--sentences", type=int, default=200, help="evaluation sentences per model")
    parser.add_argument("--repeats", type=int, default=5, help="runs per strategy (fastest kept)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "work" / "decoding")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "decoding.json")
    return parser.parse_args()


def corrector_corpus(ua_gec: Path, output: Path, held_out_docs: int = 40) -> tuple[Path, list[str]]:
    """ua-gec pairs as JSONL for training; the last `held_out_docs` documents are the dev slice
    (also written to corrector-dev.uk for other benchmarks)."""
    sources = read_text_lines(ua_gec / "gec-only.train.src.txt")
    targets = read_text_lines(ua_gec / "gec-only.train.ref0.txt")
    documents = read_text_lines(ua_gec / "gec-only.train.docids.txt")
    held = set(sorted(set(documents))[-held_out_docs:])
    output.mkdir(parents=True, exist_ok=True)
    train_path = output / "ua-gec.train.jsonl"
    with train_path.open("w", encoding="utf-8") as handle:
        for source, target, document in zip(sources, targets, documents, strict=True):
            if document not in held and source.strip() and target.strip():
                handle.write(json.dumps({"src": source, "tgt": target}, ensure_ascii=False) + "\n")
    dev = [s for s, d in zip(sources, documents, strict=True) if d in held and s.strip()]
    write_atomic(output / "corrector-dev.uk", "".join(line + "\n" for line in dev))
    return train_path, dev


def distill(translator_dir: Path, sources: Path, tgt_lang: str, output: Path) -> Path:
    """The translator's greedy translations of `sources`, beside a copy of them, as a parallel
    corpus prefix for training its draft (reused when present)."""
    src_lang = sources.suffix.lstrip(".")
    prefix = output / "distilled" / "train"
    target = prefix.with_suffix(f".{tgt_lang}")
    if not target.is_file():
        prefix.parent.mkdir(parents=True, exist_ok=True)
        translator = Translator.load(translator_dir)
        translator.translate_file(sources, target, src_lang, tgt_lang, strategy="greedy", chunk_lines=2048)
    shutil.copyfile(sources, prefix.with_suffix(f".{src_lang}"))
    return prefix


def train_model(name: str, output: Path, data: DataConfig, minutes: float, draft_of: Path | None,
                max_positions: int) -> Path:
    """Train (or reuse) a model; a draft model shares its main model's tokenizer."""
    run = output / name
    if (run / "best" / "model.safetensors").is_file():
        return run / "best"
    # small enough to learn its task within minutes on two cores
    preset = ModelConfig(d_model=128, encoder_layers=3, decoder_layers=3, heads=4, ffn_dim=512,
                         dropout=0.1, max_positions=max_positions)
    if draft_of is not None:
        preset = replace(preset, decoder_layers=1)
        (run / "tokenizer").mkdir(parents=True, exist_ok=True)
        shutil.copy(draft_of / "tokenizer.model", run / "tokenizer" / "tokenizer.model")
    config = ExperimentConfig(
        model=preset, data=data,
        train=TrainConfig(output_dir=str(run), steps=1_000_000, time_budget_minutes=minutes,
                          lr=3e-3, warmup_steps=300, eval_every=500, eval_bleu_sentences=100,
                          log_every=100, average_last=0),
        preset="d128-3x3" if draft_of is None else "d128-3x1",
    )
    return train(config, resume=(run / "last").is_dir()).best_dir


def measure(translator: Translator, texts: list[str], tgt_lang: str, batch: int, strategy: str,
            settings: dict[str, Any]) -> tuple[list[str], dict[str, float]]:
    translator.max_batch_sentences = batch
    started = time.perf_counter()
    output = translator.translate_detailed(texts, None, tgt_lang, strategy, **settings)
    seconds = time.perf_counter() - started
    tokens = sum(len(h[0].tokens) for h in output.hypotheses if h)
    return output.texts, {
        "seconds": round(seconds, 3), "sentences_per_s": round(len(texts) / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "forward_passes_per_sentence": round(output.stats.forward_passes / len(texts), 2),
        "accepted_draft_tokens": output.stats.accepted_draft_tokens,
    }


def race(translator: Translator, draft: Path, texts: list[str], tgt_lang: str,
         repeats: int) -> dict[str, Any]:
    """Every strategy at batch 1 and 32. The strategies take turns `repeats` times, so that a
    burst of load on the shared machine hits one run, not one strategy; each keeps its fastest."""
    results: dict[str, Any] = {}
    for batch in (1, 32):
        runs: dict[str, list[tuple[list[str], dict[str, float]]]] = {}
        for _ in range(repeats):
            for name, strategy, settings in STRATEGIES:
                if strategy == "speculative" and settings.get("draft") == "model":
                    settings = {**settings, "draft_model": str(draft)}
                runs.setdefault(name, []).append(
                    measure(translator, texts, tgt_lang, batch, strategy, settings))
        fastest = {name: min(found, key=lambda run: run[1]["seconds"]) for name, found in runs.items()}
        greedy_texts, greedy_figures = fastest["greedy"]
        for name, (outputs, figures) in fastest.items():
            figures["speedup_over_greedy"] = round(greedy_figures["seconds"] / figures["seconds"], 2)
            same = sum(a == b for a, b in zip(outputs, greedy_texts, strict=True))
            figures["identical_to_greedy"] = round(100.0 * same / len(texts), 2)
            figures["seconds_all_runs"] = [run[1]["seconds"] for run in runs[name]]
            results[f"batch{batch}/{name}"] = figures
            print(f"batch {batch:>2} {name:<18} {figures['sentences_per_s']:>8.2f} sent/s "
                  f"{figures['tokens_per_s']:>9.1f} tok/s {figures['forward_passes_per_sentence']:>6.2f}"
                  f" passes/sent  x{figures['speedup_over_greedy']:<5} identical "
                  f"{figures['identical_to_greedy']}%", flush=True)
    return results


def main() -> None:
    args = parse_arguments()
    for needed in (args.ua_gec / "gec-only.train.src.txt", args.multi30k / "train.en"):
        if not needed.is_file():
            sys.exit(f"{needed} not found: pass --ua-gec / --multi30k (see ../shared/data/README.md)")
    torch.set_num_threads(2)
    train_jsonl, dev = corrector_corpus(args.ua_gec, args.output)
    gec = DataConfig(train=str(train_jsonl), languages=("uk",), directions=("uk-uk",),
                     vocab_size=4000, max_tokens=4096, max_length=120, max_ratio=2.0, valid_size=300)
    corrector = train_model("corrector", args.output, gec, args.minutes, None, 256)
    corrector_draft = train_model("corrector-draft", args.output, gec, args.draft_minutes, corrector, 256)
    mt = DataConfig(train=str(args.multi30k / "train"), valid=str(args.multi30k / "val"),
                    languages=("en", "de"), directions=("en-de",), vocab_size=4000, max_tokens=4096)
    translator_dir = args.translator or train_model("translator", args.output, mt, args.minutes, None, 128)
    distilled = replace(mt, train=str(distill(translator_dir, args.multi30k / "train.en", "de", args.output)))
    translator_draft = train_model("translator-draft-distilled", args.output, distilled,
                                   args.draft_minutes, translator_dir, 128)
    mt_sources = read_text_lines(args.multi30k / "test_2016_flickr.en")[: args.sentences]
    report = {
        "command": "python " + shlex.join(sys.argv), "threads": torch.get_num_threads(),
        "models": {"corrector": str(corrector), "corrector_draft": str(corrector_draft),
                   "translator": str(translator_dir), "translator_draft": str(translator_draft)},
        "corrector_dev": f"{len(dev[: args.sentences])} ua-gec sentences from held-out documents",
        "translator_test": f"first {len(mt_sources)} lines of multi30k test_2016_flickr.en",
    }
    print("corrector (uk -> uk)")
    report["corrector"] = race(Translator.load(corrector), corrector_draft, dev[: args.sentences], "uk",
                               args.repeats)
    print("translator (en -> de)")
    report["translator"] = race(Translator.load(translator_dir), translator_draft, mt_sources, "de",
                                args.repeats)
    write_report(args.result, report)


if __name__ == "__main__":
    main()
