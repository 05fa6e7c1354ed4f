"""Benchmark: every decoding strategy on two real polyseq models, at batch 1 and 32.

A corrector (Ukrainian error correction trained on ua-gec, evaluated on documents held out from
training) and a translator (multi30k en->de), each with a smaller draft model that shares its
tokenizer (one decoder layer) for speculative decoding. The translator's draft learns from the
translator's own greedy output on the training sources (sequence-level distillation), and is
validated on its output for the validation sources, so that it predicts what the translator will
say rather than what the references say. For each strategy:
sentences/s, target tokens/s, forward passes per sentence, the speed-up over greedy at the same
batch size, and the rate of outputs identical to greedy's. The `oracle` row drafts greedy's own
output, recorded beforehand: one verifying pass per input, the ceiling of any lossless drafter.
On each chunk of the texts (a batch of 32, or 20 sentences at batch 1) the strategies take turns
five times (`--repeats`) and each keeps its fastest run: on a shared machine other processes only
ever add time, so the minimum is the closest to what the code costs (the rule of Python's timeit),
and taking turns chunk by chunk lets a slow spell of the machine slow every strategy alike. Each
repeat's total is in the JSON too. Beside the speed, the quality of
greedy's output (which every lossless strategy returns) against the references, and what copying
the input scores on the corrector's dev slice.

    python bench/decoding.py                                      # train what is missing, measure
    python bench/decoding.py --translator bench/work/multi30k/best  # reuse a trained translator
    python bench/decoding.py --corrector-preset d256-6x6 --translator-preset d384-6x6 \
        --result bench/results/decoding-larger.json               # larger models, costlier passes
    python bench/decoding.py --tasks corrector                    # the corrector alone
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from polyseq.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.decoding.core import DecodeInput, DecodeResult, LengthLimit, register_strategy
from polyseq.decoding.drafting import Row, draft_and_verify
from polyseq.decoding.greedy import GreedyConfig, greedy
from polyseq.devices import usable_device
from polyseq.evaluate import score, write_report
from polyseq.files import write_atomic
from polyseq.train.loop import train
from polyseq.translator import Translator, read_text_lines

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _shape(width: int, encoder_layers: int, decoder_layers: int) -> ModelConfig:
    return ModelConfig(d_model=width, encoder_layers=encoder_layers, decoder_layers=decoder_layers, heads=4,
                       ffn_dim=4 * width, dropout=0.1)


# d128-3x3 learns its task within minutes on two cores; d128-3x1 is the draft models' shape. On a
# model that small, fixed costs (the encoder, the per-call overhead) weigh on every strategy alike,
# so the bench can also train larger models (--corrector-preset, --translator-preset) to show how
# the speed-ups grow with the cost of a forward pass.
PRESETS = {"d128-3x3": _shape(128, 3, 3), "d128-3x1": _shape(128, 3, 1), "d256-6x6": _shape(256, 6, 6),
           "d384-6x6": _shape(384, 6, 6)}
MAIN_PRESETS = sorted(set(PRESETS) - {"d128-3x1"})
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
    ("oracle", "oracle", {}),
]


@dataclass(frozen=True)
class ReplayConfig:
    outputs: dict[tuple[int, ...], list[int]] = field(default_factory=dict)  # source ids -> greedy's ids
    max_length: LengthLimit = field(default_factory=LengthLimit)


def _source_key(inputs: DecodeInput, row: int) -> tuple[int, ...]:
    return tuple(token for token in inputs.src[row].tolist() if token != inputs.pad_id)


@register_strategy("record-greedy", ReplayConfig)
def record_greedy(model: Any, inputs: DecodeInput, config: ReplayConfig) -> DecodeResult:
    """Greedy, noting each output (with its EOS) in `config.outputs` for the oracle."""
    result = greedy(model, inputs, GreedyConfig(max_length=config.max_length))
    for row, hypotheses in enumerate(result.hypotheses):
        best = hypotheses[0]
        config.outputs[_source_key(inputs, row)] = [*best.tokens, *([inputs.eos_id] if best.finished else [])]
    return result


class ReplayDrafter:
    """Drafts greedy's own output, so every draft token is accepted and each input takes one
    verifying pass: no drafter can do better, so this is the ceiling of every lossless strategy
    on this model and machine."""

    confident = True

    def __init__(self, outputs: list[list[int]]):
        self.outputs = outputs

    def propose(self, rows: Sequence[Row]) -> list[list[int]]:
        return [self.outputs[row.index][len(row.tokens) :] for row in rows]

    def accepted(self, rows: Sequence[Row], counts: Sequence[int], drafts: Sequence[list[int]]) -> None:
        pass

    def keep(self, positions: Sequence[int]) -> None:
        pass


@register_strategy("oracle", ReplayConfig)
def oracle(model: Any, inputs: DecodeInput, config: ReplayConfig) -> DecodeResult:
    outputs = [config.outputs[_source_key(inputs, row)] for row in range(inputs.batch_size)]
    no_sources: list[list[int]] = [[] for _ in outputs]  # the replayed drafts need none
    return draft_and_verify(model, inputs, config.max_length, no_sources, lambda *_: ReplayDrafter(outputs))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ua-gec", type=Path, default=DATA / "ua-gec")
    parser.add_argument("--multi30k", type=Path, default=DATA / "multi30k")
    parser.add_argument("--translator", type=Path, default=None,
                        help="a trained en->de polyseq model (default: train one of --translator-preset)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per main model")
    parser.add_argument("--draft-minutes", type=float, default=5.0, help="budget per draft model")
    for model in ("corrector", "translator"):
        parser.add_argument(f"--{model}-preset", choices=MAIN_PRESETS, default="d128-3x3",
                            help=f"the {model}'s shape (its draft model is always d128-3x1)")
    parser.add_argument("--sentences", type=int, default=200, help="evaluation sentences per model")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs per strategy on each chunk (fastest kept)")
    parser.add_argument("--tasks", default="corrector,translator",
                        help="which models to race, comma-separated (corrector, translator)")
    parser.add_argument("--device", default="cpu", help="where the models train and decode: cpu, cuda, ...")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "work" / "decoding")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "decoding.json")
    args = parser.parse_args()
    if args.translator and args.translator_preset != "d128-3x3":
        parser.error("--translator is a trained model: its shape is its own, give no --translator-preset")
    args.tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    if not args.tasks or set(args.tasks) - {"corrector", "translator"}:
        parser.error(f"--tasks takes corrector and/or translator, not {','.join(args.tasks)!r}")
    return args


def corrector_corpus(ua_gec: Path, output: Path,
                     held_out_docs: int = 40) -> tuple[Path, list[str], list[str]]:
    """ua-gec pairs as JSONL for training; the last `held_out_docs` documents are the dev slice,
    returned as sources and references (the sources also written to corrector-dev.uk for other
    benchmarks)."""
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
    dev = [(s, t) for s, t, d in zip(sources, targets, documents, strict=True) if d in held and s.strip()]
    write_atomic(output / "corrector-dev.uk", "".join(source + "\n" for source, _ in dev))
    return train_path, [source for source, _ in dev], [target for _, target in dev]


def distill(translator_dir: Path, corpus: Path, splits: Sequence[str], src_lang: str, tgt_lang: str,
            output: Path, device: str) -> Path:
    """The translator's greedy translations of each split's sources (`corpus`/SPLIT.SRC_LANG),
    beside a copy of them, as parallel corpora `output`/SPLIT for training its draft (reused when
    present). A draft trained on them, and validated on them, learns and is chosen for how well
    it predicts what the translator says rather than what the references say."""
    translator = None
    for split in splits:
        sources, prefix = corpus / f"{split}.{src_lang}", output / split
        target = prefix.with_suffix(f".{tgt_lang}")
        if not target.is_file():
            prefix.parent.mkdir(parents=True, exist_ok=True)
            if translator is None:
                translator = Translator.load(translator_dir, device=device)
            translator.translate_file(sources, target, src_lang, tgt_lang, strategy="greedy",
                                      chunk_lines=2048)
        shutil.copyfile(sources, prefix.with_suffix(f".{src_lang}"))
    return output


def run_name(name: str, preset: str) -> str:
    """Runs of the default shape keep their plain names, so earlier runs are reused."""
    return name if preset == "d128-3x3" else f"{name}-{preset}"


def train_model(name: str, output: Path, data: DataConfig, minutes: float, max_positions: int, device: str,
                preset: str = "d128-3x3", tokenizer_of: Path | None = None) -> Path:
    """Train (or reuse) a model; with `tokenizer_of`, on that model's tokenizer (a draft model
    shares its main model's)."""
    run = output / name
    if (run / "best" / "model.safetensors").is_file():
        return run / "best"
    shape = replace(PRESETS[preset], max_positions=max_positions)
    if tokenizer_of is not None:
        (run / "tokenizer").mkdir(parents=True, exist_ok=True)
        shutil.copy(tokenizer_of / "tokenizer.model", run / "tokenizer" / "tokenizer.model")
    config = ExperimentConfig(
        model=shape, data=data,
        # the rate falls with the width, as usual for Transformers (the d128 models train at 3e-3)
        train=TrainConfig(output_dir=str(run), steps=1_000_000, time_budget_minutes=minutes,
                          lr=3e-3 * 128 / shape.d_model, warmup_steps=300, eval_every=500,
                          eval_bleu_sentences=100, log_every=100, average_last=0, device=device),
        preset=preset,
    )
    return train(config, resume=(run / "last").is_dir()).best_dir


@dataclass
class Run:
    """One strategy's runs on one chunk of the texts."""

    texts: list[str]
    seconds: list[float]  # one per repeat
    tokens: int
    forward_passes: int
    accepted_draft_tokens: int


def measure(translator: Translator, texts: list[str], tgt_lang: str, strategy: str, settings: dict[str, Any],
            run: Run | None) -> Run:
    """Translate `texts` once more; the first time (`run` None) also note what came out."""
    started = time.perf_counter()
    output = translator.translate_detailed(texts, None, tgt_lang, strategy, **settings)
    seconds = time.perf_counter() - started
    if run is not None:
        run.seconds.append(seconds)
        return run
    return Run(output.texts, [seconds], sum(len(h[0].tokens) for h in output.hypotheses if h),
               output.stats.forward_passes, output.stats.accepted_draft_tokens)


def race(translator: Translator, draft: Path, texts: list[str], references: list[str], tgt_lang: str,
         repeats: int) -> dict[str, Any]:
    """Every strategy at batch 1 and 32, and the quality of greedy's output (which every lossless
    strategy returns too). The texts, in the translator's order (by length), are cut into chunks:
    one batch of 32, or CHUNK_SENTENCES single sentences. On each chunk the strategies take turns
    `repeats` times and each keeps its fastest run, so a slow spell of the shared machine (they
    last minutes, and stretched greedy's batch-1 runs from 19 s to 29 s in one race) slows every
    strategy on the chunk it covers rather than one strategy's whole run. A strategy's time is the
    sum of its chunks' fastest runs."""
    results: dict[str, Any] = {}
    order = sorted(range(len(texts)), key=lambda i: len(translator.tokenizer.encode(texts[i].strip())))
    for batch in (1, 32):
        translator.max_batch_sentences = batch
        greedy_outputs: dict[tuple[int, ...], list[int]] = {}  # the oracle's drafts, at this batch size
        translator.translate_detailed(texts, None, tgt_lang, "record-greedy", outputs=greedy_outputs)
        plans = [(name, strategy, _resolved(strategy, settings, draft, greedy_outputs))
                 for name, strategy, settings in STRATEGIES]
        size = max(batch, CHUNK_SENTENCES)
        runs: dict[str, list[Run]] = {name: [] for name, _, _ in STRATEGIES}
        for begin in range(0, len(order), size):
            chunk = [texts[i] for i in order[begin : begin + size]]
            chunk_runs: dict[str, Run] = {}
            for _ in range(repeats):
                for name, strategy, settings in plans:
                    chunk_runs[name] = measure(translator, chunk, tgt_lang, strategy, settings,
                                               chunk_runs.get(name))
            for name, run in chunk_runs.items():
                runs[name].append(run)
        figures = {name: summary(chunks, order) for name, chunks in runs.items()}
        greedy_texts, greedy_seconds = figures["greedy"].pop("texts"), figures["greedy"]["seconds"]
        if batch == 1:
            results["greedy_quality"] = quality(greedy_texts, references)
        for name, figure in figures.items():
            outputs = figure.pop("texts", greedy_texts)
            figure["speedup_over_greedy"] = round(greedy_seconds / figure["seconds"], 2)
            same = sum(a == b for a, b in zip(outputs, greedy_texts, strict=True))
            figure["identical_to_greedy"] = round(100.0 * same / len(texts), 2)
            results[f"batch{batch}/{name}"] = figure
            print(f"batch {batch:>2} {name:<18} {figure['sentences_per_s']:>8.2f} sent/s "
                  f"{figure['tokens_per_s']:>9.1f} tok/s {figure['forward_passes_per_sentence']:>6.2f}"
                  f" passes/sent  x{figure['speedup_over_greedy']:<5} identical "
                  f"{figure['identical_to_greedy']}%", flush=True)
    return results


def _resolved(strategy: str, settings: dict[str, Any], draft: Path,
              greedy_outputs: dict[tuple[int, ...], list[int]]) -> dict[str, Any]:
    """A strategy's settings with the race's draft model, or for the oracle greedy's outputs."""
    if strategy == "oracle":
        return {"outputs": greedy_outputs}
    if settings.get("draft") == "model":
        return {**settings, "draft_model": str(draft)}
    return settings


def summary(chunks: list[Run], order: list[int]) -> dict[str, Any]:
    """One strategy's figures over all chunks, with its outputs in the texts' own order."""
    seconds = sum(min(run.seconds) for run in chunks)
    texts = [""] * len(order)
    for position, text in zip(order, (text for run in chunks for text in run.texts), strict=True):
        texts[position] = text
    return {
        "texts": texts, "seconds": round(seconds, 3), "sentences_per_s": round(len(order) / seconds, 2),
        "tokens_per_s": round(sum(run.tokens for run in chunks) / seconds, 1),
        "forward_passes_per_sentence": round(sum(run.forward_passes for run in chunks) / len(order), 2),
        "accepted_draft_tokens": sum(run.accepted_draft_tokens for run in chunks),
        # each repeat's time over all chunks: the spread the fastest runs were taken from
        "seconds_per_repeat": [round(sum(times), 3)
                               for times in zip(*(run.seconds for run in chunks), strict=True)],
    }


def quality(texts: list[str], references: list[str]) -> dict[str, float]:
    scores = score(texts, [references])
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

    if "corrector" in args.tasks:
        race_corrector(args, report)
    if "translator" in args.tasks:
        race_translator(args, report)


def race_corrector(args: argparse.Namespace, report: dict[str, Any]) -> None:
    train_jsonl, dev, dev_references = corrector_corpus(args.ua_gec, args.output)
    dev, dev_references = dev[: args.sentences], dev_references[: args.sentences]
    gec = DataConfig(train=str(train_jsonl), languages=("uk",), directions=("uk-uk",),
                     vocab_size=4000, max_tokens=4096, max_length=120, max_ratio=2.0, valid_size=300)
    corrector = train_model(run_name("corrector", args.corrector_preset), args.output, gec, args.minutes, 256,
                            args.device, args.corrector_preset)
    corrector_draft = train_model(run_name("corrector-draft", args.corrector_preset), args.output, gec,
                                  args.draft_minutes, 256, args.device, "d128-3x1", corrector)
    report["models"].update(corrector=str(corrector), corrector_draft=str(corrector_draft))
    report["corrector_dev"] = f"{len(dev)} ua-gec sentences from held-out documents"
    report["corrector_dev_input_quality"] = quality(dev, dev_references)  # what copying the input scores
    print("corrector (uk -> uk)")
    report["corrector"] = race(Translator.load(corrector, device=args.device), corrector_draft, dev,
                               dev_references, "uk", args.repeats)
    write_report(args.result, report)  # the corrector's figures stay if the translator's run fails


def race_translator(args: argparse.Namespace, report: dict[str, Any]) -> None:
    mt = DataConfig(train=str(args.multi30k / "train"), valid=str(args.multi30k / "val"),
                    languages=("en", "de"), directions=("en-de",), vocab_size=4000, max_tokens=4096)
    translator = args.translator or train_model(run_name("translator", args.translator_preset), args.output,
                                                mt, args.minutes, 128, args.device, args.translator_preset)
    distilled = distill(translator, args.multi30k, ("train", "val"), "en", "de",
                        args.output / run_name("distilled", args.translator_preset), args.device)
    draft_data = replace(mt, train=str(distilled / "train"), valid=str(distilled / "val"))
    translator_draft = train_model(run_name("translator-draft-distilled", args.translator_preset),
                                   args.output, draft_data, args.draft_minutes, 128, args.device, "d128-3x1",
                                   translator)
    mt_sources = read_text_lines(args.multi30k / "test_2016_flickr.en")[: args.sentences]
    mt_references = read_text_lines(args.multi30k / "test_2016_flickr.de")[: args.sentences]
    report["models"].update(translator=str(translator), translator_draft=str(translator_draft))
    report["translator_test"] = f"first {len(mt_sources)} lines of multi30k test_2016_flickr.en"
    print("translator (en -> de)")
    report["translator"] = race(Translator.load(translator, device=args.device), translator_draft,
                                mt_sources, mt_references, "de", args.repeats)
    write_report(args.result, report)


if __name__ == "__main__":
    main()
