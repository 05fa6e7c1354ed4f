"""Benchmark: what one decoder step, the encoder and the output layer cost, alone and inside a
decoding run.

1. One greedy step (one token per row, then argmax) of each model, through the model's
   `decode_step` and through `FlatDecoder` (the flat pass that polyseq's strategies take), at
   batch 1 and 8, with rows at one length. The calls repeat back to back, so the weights stay in
   the CPU's caches: this is the per-call overhead, not what a step costs inside a decoding run.
   Likewise the encoder and the decoder cache's set-up (`encode` + `init_cache`) on 30 source
   tokens, through the modules and through `FlatEncoder` + `FlatDecoder.init_cache`.
2. The output layer (`Seq2Seq.project`) on 1 to 9 rows of states: a verifying pass projects the
   k draft positions plus one, and its cost per row is what a draft token must save.
3. With `--decode MODEL TEXTS LANG`: greedy, beam search (5 beams) and aggressive decoding at
   batch 1 on the first `--sentences` lines of TEXTS, through flat passes (what polyseq does)
   and through the modules (the same model seen only through the model protocol), sentence by
   sentence, each sentence's fastest of `--repeats` runs, the two paths taking turns; outputs
   compared.

Figures 1 and 2 are the fastest of `--repeats` rounds of `--steps` calls, the variants taking turns.

    python bench/decoder_step.py --model bench/work/multi30k/averaged \\
        --model bench/work/decoding-mt/translator-draft-distilled/best \\
        --decode bench/work/multi30k/averaged ../shared/data/multi30k/test_2016_flickr.en de \\
        --decode bench/work/decoding-mt/corrector/best bench/work/decoding-mt/corrector-dev.uk uk

(bench/decoding.py trains the models in bench/work/ and writes the corrector's dev slice, with
bench/prepare.py, which can also be called alone.)
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from polyseq.evaluate import write_report
from polyseq.files import read_text_lines
from polyseq.model.checkpoint import load_model
from polyseq.model.flat import FlatDecoder, FlatEncoder
from polyseq.translator import Translator

ROOT = Path(__file__).resolve().parents[1]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="a model directory")
    parser.add_argument("--steps", type=int, default=200, help="calls per timed round")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode", nargs=3, action="append", default=[], metavar=("MODEL", "TEXTS", "LANG"),
                        help="also time greedy and beam search on real sentences")
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "decoder_step.json")
    return parser.parse_args()


def fastest(variants: dict[str, Callable[[], Any]], steps: int, repeats: int) -> dict[str, float]:
    """Milliseconds per call of each variant, the fastest of `repeats` interleaved rounds."""
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeats):
        for name, call in variants.items():
            call()  # warm
            started = time.perf_counter()
            for _ in range(steps):
                call()
            best[name] = min(best[name], (time.perf_counter() - started) / steps * 1000)
    return {name: round(ms, 4) for name, ms in best.items()}


@torch.inference_mode()
def step_costs(model: Any, batch: int, steps: int, repeats: int) -> dict[str, float]:
    vocab = model.config.vocab_size
    memory = model.encode(torch.randint(4, vocab, (batch, 15), generator=torch.Generator().manual_seed(0)))
    flat = FlatDecoder(model)
    token = torch.full((batch,), 5)
    caches = {name: model.init_cache(memory, capacity=64) for name in ("decode_step", "flat")}
    for cache in caches.values():  # a prefix of 20 tokens, rolled back to it after every step
        model.decode_step(torch.randint(4, vocab, (batch, 20)), memory, cache)

    def model_step() -> None:
        model.decode_step(token[:, None], memory, caches["decode_step"])[:, -1].argmax(-1)
        caches["decode_step"].truncate(20)

    def flat_step() -> None:
        model.project(flat(token[:, None], caches["flat"])[:, -1]).argmax(-1)
        caches["flat"].truncate(20)

    costs = fastest({"decode_step": model_step, "flat": flat_step}, steps, repeats)
    costs["flat_speedup"] = round(costs["decode_step"] / costs["flat"], 2)
    return costs


@torch.inference_mode()
def encoder_costs(model: Any, batch: int, steps: int, repeats: int) -> dict[str, float]:
    src = torch.randint(4, model.config.vocab_size, (batch, 30), generator=torch.Generator().manual_seed(0))
    encoder, decoder = FlatEncoder(model), FlatDecoder(model)
    costs = fastest({"modules": lambda: model.init_cache(model.encode(src), capacity=64),
                     "flat": lambda: decoder.init_cache(encoder(src), capacity=64)}, steps, repeats)
    costs["flat_speedup"] = round(costs["modules"] / costs["flat"], 2)
    return costs


@torch.inference_mode()
def output_layer_costs(model: Any, steps: int, repeats: int) -> dict[str, float]:
    states = torch.randn(9, model.config.d_model)
    variants = {f"{rows}_rows": (lambda rows=rows: model.project(states[:rows])) for rows in range(1, 10)}
    return fastest(variants, steps, repeats)


class ThroughModules:
    """A model seen only through the model protocol, so strategies run its modules (`encode`,
    `init_cache`, `decode_step`), not flat passes."""

    def __init__(self, model: Any):
        self.model, self.config = model, model.config

    def encode(self, src: torch.Tensor) -> Any:
        return self.model.encode(src)

    def init_cache(self, memory: Any, capacity: int = 64) -> Any:
        return self.model.init_cache(memory, capacity)

    def decode_step(self, tokens: torch.Tensor, memory: Any, cache: Any = None) -> torch.Tensor:
        return self.model.decode_step(tokens, memory, cache)


def decoding_costs(directory: str, texts: Path, lang: str, sentences: int, repeats: int) -> dict[str, Any]:
    translator = Translator.load(directory, max_batch_sentences=1)
    paths = {"flat": translator.model, "modules": ThroughModules(translator.model)}
    report: dict[str, Any] = {"texts": f"first {sentences} lines of {texts.name}"}
    for strategy, settings in (("greedy", {}), ("beam", {"beam_size": 5}), ("aggressive", {})):
        seconds = dict.fromkeys(paths, 0.0)
        outputs: dict[str, list[str]] = {name: [] for name in paths}
        for text in read_text_lines(texts)[:sentences]:
            fastest_run = dict.fromkeys(paths, float("inf"))
            for repeat in range(repeats):
                for name, model in paths.items():
                    translator.model = model
                    started = time.perf_counter()
                    output = translator.translate([text], None, lang, strategy, **settings)
                    fastest_run[name] = min(fastest_run[name], time.perf_counter() - started)
                    if repeat == 0:
                        outputs[name].extend(output)
            for name in paths:
                seconds[name] += fastest_run[name]
        translator.model = paths["flat"]
        report[strategy] = {**{f"{name}_seconds": round(value, 3) for name, value in seconds.items()},
                            "flat_speedup": round(seconds["modules"] / seconds["flat"], 2),
                            "identical_outputs": outputs["flat"] == outputs["modules"]}
    return report


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(2)
    report: dict[str, Any] = {"command": "python " + shlex.join(sys.argv), "threads": torch.get_num_threads(),
                              "unit": "models: milliseconds per call; decoding: seconds for all sentences",
                              "models": {}}
    for directory in args.model:
        model = load_model(directory)
        config = model.config
        shape = f"d{config.d_model}, {config.decoder_layers} decoder layers, vocabulary {config.vocab_size}"
        entry: dict[str, Any] = {"shape": shape}
        for batch in (1, 8):
            entry[f"step_batch{batch}"] = step_costs(model, batch, args.steps, args.repeats)
            print(directory, f"batch {batch}", entry[f"step_batch{batch}"], flush=True)
            entry[f"encoder_batch{batch}"] = encoder_costs(model, batch, args.steps, args.repeats)
            print(directory, f"encoder, batch {batch}", entry[f"encoder_batch{batch}"], flush=True)
        entry["output_layer"] = output_layer_costs(model, args.steps, args.repeats)
        print(directory, "output layer", entry["output_layer"], flush=True)
        report["models"][str(directory)] = entry
    report["decoding"] = {}
    for directory, texts, lang in args.decode:
        costs = decoding_costs(directory, Path(texts), lang, args.sentences, args.repeats)
        report["decoding"][directory] = costs
        print(directory, costs, flush=True)
    write_report(args.result, report)


if __name__ == "__main__":
    main()
