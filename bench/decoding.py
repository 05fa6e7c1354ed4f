"""Benchmark: every decoding strategy on two real polyseq models, at batch 1 and 32.

A corrector (Ukrainian error correction trained on ua-gec, evaluated on documents held out from
training) and a translator (multi30k en->de), each with a smaller draft model that shares its
tokenizer (one decoder layer) for speculative decoding. The translator's draft learns from the
translator's own greedy output on the training sources (sequence-level distillation), and is
validated on its output for the validation sources, so that it predicts what the translator will
say rather than what the references say (bench/prepare.py trains, distills and reuses them). For
each strategy: sentences/s, target tokens/s, forward passes per sentence, the speed-up over greedy
at the same batch size, and the rate of outputs identical to greedy's. The `oracle` row drafts
greedy's own output, recorded beforehand: one verifying pass per input, the ceiling of any
lossless drafter (bench/oracle.py). On each chunk of the texts (a batch of 32, or 20 sentences at
batch 1) the strategies take turns five times (`--repeats`) and each keeps its fastest run: on a
shared machine other processes only ever add time, so the minimum is the closest to what the code
costs (the rule of Python's timeit), and taking turns chunk by chunk lets a slow spell of the
machine slow every strategy alike. Each repeat's total is in the JSON too. Beside the speed, the
quality of greedy's output (which every lossless strategy returns) against the references, and
what copying the input scores on the corrector's dev slice.

    python bench/decoding.py                                      # train what is missing, measure
    python bench/decoding.py --translator bench/work/multi30k/best  # reuse a trained translator
    python bench/decoding.py --corrector-preset d256-6x6 --translator-preset d384-6x6 \\
        --result bench/results/decoding-larger.json               # larger models, costlier passes
    python bench/decoding.py --tasks corrector                    # the corrector alone
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from oracle import Oracle
from prepare import (
    DATA,
    DEFAULT_PRESET,
    MAIN_PRESETS,
    RESULTS,
    WORK,
    Prepared,
    prepare_corrector,
    prepare_translator,
)

from polyseq import score_translations
from polyseq.devices import usable_device
from polyseq.evaluate import write_report
from polyseq.translator import Translator

CHUNK_SENTENCES = 20  # texts per timed chunk at batch 1 (see race)
STRATEGIES: list[tuple[str, str, dict[str, Any]]] = [
    ("greedy", "greedy", {}),
    ("beam5", "beam", {"beam_size": 5}),
    ("aggressive", "aggressive", {}),
    ("aggressive-adaptive", "aggressive", {"adaptive": True}),
    ("speculative-ngram", "speculative", {"draft": "ngram"}),
    ("speculative-model", "speculative", {"draft": "model"}),
    # drafts up to 12 tokens, each ending after the first the draft model gives under 50%
    ("speculative-model-sure", "speculative",
     {"draft": "model", "confidence": 0.5, "k": 12, "adaptive": False}),
    ("oracle", "oracle", {}),  # not a polyseq strategy: bench/oracle.py
]
Decode = Callable[[list[str]], Any]  # texts -> an output with .texts, .hypotheses and .stats


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ua-gec", type=Path, default=DATA / "ua-gec")
    parser.add_argument("--multi30k", type=Path, default=DATA / "multi30k")
    parser.add_argument("--translator", type=Path, default=None,
                        help="a trained en->de polyseq model (default: train one of --translator-preset)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per main model")
    parser.add_argument("--draft-minutes", type=float, default=5.0, help="budget per draft model")
    for model in ("corrector", "translator"):
        parser.add_argument(f"--{model}-preset", choices=MAIN_PRESETS, default=DEFAULT_PRESET,
                            help=f"the {model}'s shape (its draft model is always d128-3x1)")
    parser.add_argument("--sentences", type=int, default=200, help="evaluation sentences per model")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs per strategy on each chunk (fastest kept)")
    parser.add_argument("--tasks", default="corrector,translator",
                        help="which models to race, comma-separated (corrector, translator)")
    parser.add_argument("--device", default="cpu", help="where the models train and decode: cpu, cuda, ...")
    parser.add_argument("--output", type=Path, default=WORK / "decoding")
    parser.add_argument("--result", type=Path, default=RESULTS / "decoding.json")
    args = parser.parse_args()
    if args.translator and args.translator_preset != DEFAULT_PRESET:
        parser.error("--translator is a trained model: its shape is its own, give no --translator-preset")
    args.tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    if not args.tasks or set(args.tasks) - {"corrector", "translator"}:
        parser.error(f"--tasks takes corrector and/or translator, not {','.join(args.tasks)!r}")
    if args.repeats < 1 or args.sentences < 1:
        parser.error("--repeats and --sentences take a number of at least 1")
    return args


@dataclass
class Run:
    """One strategy's runs on one chunk of the texts."""

    texts: list[str]
    outputs: list[tuple[int, ...]]  # per text, the token ids of its translation
    seconds: list[float]  # one per repeat
    tokens: int
    forward_passes: int
    accepted_draft_tokens: int


def measure(decode: Decode, texts: list[str], run: Run | None) -> Run:
    """Translate `texts` once more; the first time (`run` None) also note what came out."""
    started = time.perf_counter()
    output = decode(texts)
    seconds = time.perf_counter() - started
    if run is not None:
        run.seconds.append(seconds)
        return run
    outputs = [h[0].tokens if h else () for h in output.hypotheses]
    return Run(output.texts, outputs, [seconds], sum(map(len, outputs)), output.stats.forward_passes,
               output.stats.accepted_draft_tokens)


def decoders(translator: Translator, draft: Path, tgt_lang: str, texts: list[str]) -> dict[str, Decode]:
    """Each strategy of STRATEGIES as a function of the texts: the named ones through the
    translator, with the race's draft model; the oracle with greedy's outputs for `texts`."""
    oracle = Oracle(translator, tgt_lang)
    oracle.record(texts)  # its drafts, at this batch size
    plans: dict[str, Decode] = {}
    for name, strategy, settings in STRATEGIES:
        if strategy == "oracle":
            plans[name] = oracle.translate
            continue
        if settings.get("draft") == "model":
            settings = {**settings, "draft_model": str(draft)}
        plans[name] = functools.partial(translator.translate_detailed, src_lang=None, tgt_lang=tgt_lang,
                                        strategy=strategy, **settings)
    return plans


def race(prepared: Prepared, tgt_lang: str, repeats: int, device: str) -> dict[str, Any]:
    """Every strategy at batch 1 and 32, and the quality of greedy's output (which every lossless
    strategy returns too). The texts, in the translator's order (by length), are cut into chunks:
    one batch of 32, or CHUNK_SENTENCES single sentences. On each chunk the strategies take turns
    `repeats` times and each keeps its fastest run, so a slow spell of the shared machine (they
    last minutes, and stretched greedy's batch-1 runs from 19 s to 29 s in one race) slows every
    strategy on the chunk it covers rather than one strategy's whole run. A strategy's time is the
    sum of its chunks' fastest runs."""
    texts, results = prepared.texts, {}
    for batch in (1, 32):
        translator = Translator.load(prepared.model, device=device, max_batch_sentences=batch)
        order = sorted(range(len(texts)), key=lambda i: len(translator.tokenizer.encode(texts[i].strip())))
        plans = decoders(translator, prepared.draft, tgt_lang, texts)
        size = max(batch, CHUNK_SENTENCES)
        for decode in plans.values():  # untimed: what a strategy does once (load its draft model)
            decode([texts[i] for i in order[:size]])
        runs: dict[str, list[Run]] = {name: [] for name in plans}
        for begin in range(0, len(order), size):
            chunk = [texts[i] for i in order[begin : begin + size]]
            chunk_runs: dict[str, Run] = {}
            for _ in range(repeats):
                for name, decode in plans.items():
                    chunk_runs[name] = measure(decode, chunk, chunk_runs.get(name))
            for name, run in chunk_runs.items():
                runs[name].append(run)
        figures = {name: summary(chunks, order) for name, chunks in runs.items()}
        greedy = figures["greedy"].copy()
        if batch == 1:
            results["greedy_quality"] = quality(greedy["texts"], prepared.references)
        for name, figure in figures.items():
            figure.pop("texts")
            # token for token: texts can agree where tokens do not (pieces that detokenize alike)
            outputs = figure.pop("outputs")
            figure["speedup_over_greedy"] = round(greedy["seconds"] / figure["seconds"], 2)
            same = sum(a == b for a, b in zip(outputs, greedy["outputs"], strict=True))
            figure["identical_to_greedy"] = round(100.0 * same / len(texts), 2)
            results[f"batch{batch}/{name}"] = figure
            print(f"batch {batch:>2} {name:<18} {figure['sentences_per_s']:>8.2f} sent/s "
                  f"{figure['tokens_per_s']:>9.1f} tok/s {figure['forward_passes_per_sentence']:>6.2f}"
                  f" passes/sent  x{figure['speedup_over_greedy']:<5} identical "
                  f"{figure['identical_to_greedy']}%", flush=True)
    return results


def summary(chunks: list[Run], order: list[int]) -> dict[str, Any]:
    """One strategy's figures over all chunks, with its texts and outputs in the texts' own order."""
    seconds = sum(min(run.seconds) for run in chunks)
    texts: list[str] = [""] * len(order)
    outputs: list[tuple[int, ...]] = [()] * len(order)
    done = [pair for run in chunks for pair in zip(run.texts, run.outputs, strict=True)]
    for position, (text, tokens) in zip(order, done, strict=True):
        texts[position], outputs[position] = text, tokens
    return {
        "texts": texts, "outputs": outputs, "seconds": round(seconds, 3),
        "sentences_per_s": round(len(order) / seconds, 2),
        "tokens_per_s": round(sum(run.tokens for run in chunks) / seconds, 1),
        "forward_passes_per_sentence": round(sum(run.forward_passes for run in chunks) / len(order), 2),
        "accepted_draft_tokens": sum(run.accepted_draft_tokens for run in chunks),
        # each repeat's time over all chunks: the spread the fastest runs were taken from
        "seconds_per_repeat": [round(sum(times), 3)
                               for times in zip(*(run.seconds for run in chunks), strict=True)],
    }


def quality(texts: list[str], references: list[str]) -> dict[str, float]:
    scores = score_translations(texts, [references])
    return {"bleu": scores.bleu, "chrf": scores.chrf}


def main() -> None:
    args = parse_arguments()
    needs = {"corrector": args.ua_gec / "gec-only.train.src.txt", "translator": args.multi30k / "train.en"}
    for task in args.tasks:
        if not needs[task].is_file():
            sys.exit(f"{needs[task]} not found: pass --ua-gec / --multi30k (see ../shared/data/README.md)")
    torch.set_num_threads(2)
    device = usable_device(args.device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    report: dict[str, Any] = {"command": "python " + shlex.join(sys.argv), "threads": torch.get_num_threads(),
                              "device": device_name, "models": {}}
    budget = {"minutes": args.minutes, "draft_minutes": args.draft_minutes, "sentences": args.sentences,
              "device": args.device}
    if "corrector" in args.tasks:
        corrector = prepare_corrector(args.ua_gec, args.output, args.corrector_preset, **budget)
        report["models"].update(corrector=str(corrector.model), corrector_draft=str(corrector.draft))
        report["corrector_dev"] = corrector.description
        # what copying the input scores
        report["corrector_dev_input_quality"] = quality(corrector.texts, corrector.references)
        print("corrector (uk -> uk)")
        report["corrector"] = race(corrector, "uk", args.repeats, args.device)
        write_report(args.result, report)  # the corrector's figures stay if the translator's run fails
    if "translator" in args.tasks:
        translator = prepare_translator(args.multi30k, args.output, args.translator_preset,
                                        translator=args.translator, **budget)
        report["models"].update(translator=str(translator.model), translator_draft=str(translator.draft))
        report["translator_test"] = translator.description
        print("translator (en -> de)")
        report["translator"] = race(translator, "de", args.repeats, args.device)
        write_report(args.result, report)


if __name__ == "__main__":
    main()
