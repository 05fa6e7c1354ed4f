"""Benchmark: weights as decoding reads them, on this CPU. Three layouts: output-major (PyTorch's
order), input-major (`input_major`), and input-major with a oneDNN-packed copy of the large
weights (`for_decoding`, what the Translator decodes with; `polyseq.model.packed`).

1. Matrix products of each model's shapes (the output layer, the attention's fused projection and
   the feed-forward's two layers) on 1 to 160 rows, with the weight evicted from the CPU's caches
   before every call, as it is inside a decoding run where every layer's weights pass through
   the caches each step. Median of `--calls` calls, microseconds. The packed column is oneDNN's
   product on every row count, also where `Product` leaves a weight to PyTorch's.
2. Decoding runs: greedy and a lossless strategy at batch 1 and 32 on the first `--sentences`
   lines of each task's texts, the layouts taking turns `--repeats` times; each keeps its
   fastest run, and the outputs are compared.

    python bench/layout.py \\
        --task bench/work/multi30k/averaged ../shared/data/multi30k/test_2016_flickr.en de \\
            speculative:bench/work/decoding-mt/translator-draft-distilled/best \\
        --task bench/work/decoding-mt/corrector/best bench/work/decoding-mt/corrector-dev.uk uk aggressive

(bench/decoding.py trains the models in bench/work/ and writes the corrector's dev slice, with
bench/prepare.py, which can also be called alone.)
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from polyseq.evaluate import write_report
from polyseq.files import read_text_lines
from polyseq.model.checkpoint import load_model
from polyseq.model.layout import for_decoding, input_major
from polyseq.model.packed import PackedWeights, Product
from polyseq.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
ROWS = (1, 2, 4, 8, 32, 160)
LAYOUTS = ("output_major", "input_major", "packed")  # the first is the reference
EVICT = torch.ones(16 * 1024 * 1024)  # 64 MB: more than this CPU's caches hold


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", nargs=4, action="append", required=True,
                        metavar=("MODEL", "TEXTS", "LANG", "STRATEGY"),
                        help="STRATEGY: aggressive, or speculative:DRAFT_MODEL")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "layout.json")
    return parser.parse_args()


def cold_microseconds(product: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        EVICT.add_(1.0)
        started = time.perf_counter()
        product()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1e6, 1)


def product_costs(model: Any, calls: int) -> dict[str, Any]:
    config = model.config
    shapes = {"output layer": (config.d_model, config.vocab_size),
              "attention q/k/v": (config.d_model, 3 * config.d_model),
              "feed-forward in": (config.d_model, config.ffn_dim),
              "feed-forward out": (config.ffn_dim, config.d_model)}
    costs: dict[str, Any] = {}
    for name, (inputs, outputs) in shapes.items():
        linear = torch.nn.Linear(inputs, outputs)
        packed = PackedWeights(linear, min_elements=0)
        weight, bias = linear.weight.detach(), linear.bias.detach()
        with torch.inference_mode():
            layouts = {"output_major": Product(weight.clone(), bias),
                       "input_major": Product(weight.t().contiguous().t(), bias),
                       "packed": Product(linear.weight, bias, packed, min_rows=1)}
            per_rows: dict[int, dict[str, float]] = {}
            for rows in ROWS:
                states = torch.randn(rows, inputs)
                per_rows[rows] = {layout: cold_microseconds(
                    lambda product=product: product(states), calls)  # noqa: B023
                    for layout, product in layouts.items()}
            costs[f"{name} {inputs}x{outputs}"] = per_rows
    return costs


def decoding_runs(model_dir: str, texts: list[str], lang: str, strategy: str,
                  repeats: int) -> dict[str, Any]:
    """Greedy and `strategy` at batch 1 and 32, in each layout, taking turns. Translator.load
    lays its model out for decoding (packed); the other layouts' translators decode the model
    in their layout instead."""
    models = {"output_major": load_model(model_dir),  # as loaded: PyTorch's order
              "input_major": input_major(load_model(model_dir))}  # without packed copies
    settings: dict[str, dict[str, Any]] = {layout: {} for layout in LAYOUTS}
    name = strategy
    if strategy.startswith("speculative:"):
        draft = strategy.split(":", 1)[1]
        drafts = {"output_major": load_model(draft), "input_major": input_major(load_model(draft)),
                  "packed": for_decoding(load_model(draft), in_place=True)}
        settings = {layout: {"draft": "model", "draft_model": model} for layout, model in drafts.items()}
        strategy, name = "speculative", "speculative-model"
    results: dict[str, Any] = {}
    for batch in (1, 32):
        translators = {layout: Translator.load(model_dir, max_batch_sentences=batch) for layout in LAYOUTS}
        for layout, model in models.items():
            translators[layout].model = model
        runs: dict[tuple[str, str], list[float]] = {}
        outputs: dict[tuple[str, str], list[str]] = {}
        for _ in range(repeats):
            for label, chosen in (("greedy", "greedy"), (name, strategy)):
                for layout, translator in translators.items():
                    extra = settings[layout] if chosen != "greedy" else {}
                    started = time.perf_counter()
                    outputs[label, layout] = translator.translate(texts, None, lang, chosen, **extra)
                    runs.setdefault((label, layout), []).append(round(time.perf_counter() - started, 3))
        reference = outputs["greedy", "output_major"]
        for (label, layout), seconds in runs.items():
            results[f"batch{batch}/{label}/{layout}"] = {
                "seconds": min(seconds), "seconds_all_runs": seconds,
                "identical_to_output_major_greedy": sum(
                    a == b for a, b in zip(outputs[label, layout], reference, strict=True)) / len(texts)}
        for label in ("greedy", name):
            base = min(runs[label, "output_major"])
            for layout in LAYOUTS[1:]:
                results[f"batch{batch}/{label}/{layout}_speedup"] = round(base / min(runs[label, layout]), 2)
            print(f"{Path(model_dir).parent.name} batch {batch:>2} {label:<18} " + "  ".join(
                f"{layout} {min(runs[label, layout]):.3f}s" for layout in LAYOUTS), flush=True)
    return results


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(2)
    report: dict[str, Any] = {"command": "python " + shlex.join(sys.argv), "threads": torch.get_num_threads(),
                              "unit": "products: microseconds per call, weights not in cache; "
                                      "decoding: seconds for all sentences",
                              "products": {}, "decoding": {}}
    for model_dir, texts_path, lang, strategy in args.task:
        if not Path(texts_path).is_file():
            sys.exit(f"{texts_path} not found (bench/decoding.py writes the corrector's dev slice)")
        report["products"][model_dir] = product_costs(load_model(model_dir), args.calls)
        print(model_dir, report["products"][model_dir], flush=True)
        texts = read_text_lines(Path(texts_path))[: args.sentences]
        report["decoding"][model_dir] = decoding_runs(model_dir, texts, lang, strategy, args.repeats)
    write_report(args.result, report)


if __name__ == "__main__":
    main()
