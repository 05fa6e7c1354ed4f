"""Benchmark: output-major weights (PyTorch's order) against input-major ones (`input_major`, what
the Translator decodes with), on this CPU.

1. Matrix products of each model's shapes (the output layer, the attention's fused projection and
   the feed-forward's two layers) on 1 to 160 rows, with the weight evicted from the CPU's caches
   before every call, as it is inside a decoding run where every layer's weights pass through
   the caches each step. Median of `--calls` calls, microseconds.
2. Decoding runs: greedy and a lossless strategy at batch 1 and 32 on the first `--sentences`
   lines of each task's texts, the two layouts taking turns `--repeats` times; each keeps its
   fastest run, and the outputs are compared.

    python bench/layout.py \\
        --task bench/work/multi30k/averaged ../shared/data/multi30k/test_2016_flickr.en de \\
            speculative:bench/work/decoding-mt/translator-draft-distilled/best \\
        --task bench/work/decoding-mt/corrector/best bench/work/decoding-mt/corrector-dev.uk uk aggressive

(bench/decoding.py trains the models in bench/work/ and writes the corrector's dev slice.)
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
from polyseq.model.checkpoint import load_model
from polyseq.model.layout import input_major
from polyseq.translator import Translator, read_text_lines

ROOT = Path(__file__).resolve().parents[1]
ROWS = (1, 2, 4, 8, 32, 160)
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
    with torch.inference_mode():
        for name, (inputs, outputs) in shapes.items():
            output_major, bias = torch.randn(outputs, inputs), torch.randn(outputs)
            layouts = {"output_major": output_major, "input_major": output_major.t().contiguous().t()}
            per_rows: dict[int, dict[str, float]] = {}
            for rows in ROWS:
                states = torch.randn(rows, inputs)
                per_rows[rows] = {layout: cold_microseconds(
                    lambda weight=weight: torch.addmm(bias, states, weight.t()), calls)  # noqa: B023
                    for layout, weight in layouts.items()}
            costs[f"{name} {inputs}x{outputs}"] = per_rows
    return costs


def decoding_runs(model_dir: str, texts: list[str], lang: str, strategy: str,
                  repeats: int) -> dict[str, Any]:
    """Greedy and `strategy` at batch 1 and 32, in each layout, taking turns."""
    translators = {"output_major": Translator.load(model_dir), "input_major": Translator.load(model_dir)}
    translators["output_major"].model = load_model(model_dir)  # as loaded: PyTorch's order
    settings: dict[str, dict[str, Any]] = {layout: {} for layout in translators}
    name = strategy
    if strategy.startswith("speculative:"):
        draft = strategy.split(":", 1)[1]
        settings = {"output_major": {"draft": "model", "draft_model": load_model(draft)},
                    "input_major": {"draft": "model", "draft_model": input_major(load_model(draft))}}
        strategy, name = "speculative", "speculative-model"
    results: dict[str, Any] = {}
    for batch in (1, 32):
        runs: dict[tuple[str, str], list[float]] = {}
        outputs: dict[tuple[str, str], list[str]] = {}
        for _ in range(repeats):
            for label, chosen in (("greedy", "greedy"), (name, strategy)):
                for layout, translator in translators.items():
                    translator.max_batch_sentences = batch
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
            before, after = min(runs[label, "output_major"]), min(runs[label, "input_major"])
            results[f"batch{batch}/{label}/input_major_speedup"] = round(before / after, 2)
            print(f"{Path(model_dir).parent.name} batch {batch:>2} {label:<18} output-major "
                  f"{before:.3f}s input-major {after:.3f}s x{before / after:.2f}", flush=True)
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
