"""Benchmark: the most any lossless drafter can gain on this machine, by the model's width.

On a sentence whose output has L tokens, greedy decoding runs the encoder and then L decoder
passes of one token each; a drafter whose every token is accepted (bench/decoding.py's oracle)
runs the encoder and one pass over all L. The ratio of the two is the ceiling of aggressive and
speculative decoding. It depends on what the passes cost, not on what the model learned, so this
bench times both on 6+6-layer models of several widths with random weights (vocabulary 4,000, as
the bench's corrector), through the native passes polyseq's strategies take: per sentence the
encoder, the cache's set-up, the passes, the output layer and the argmax, without the strategies'
bookkeeping. bench/decoding.py measures the real thing on trained models; its oracle row on the
d256 corrector is the check on this estimate.

    python bench/ceiling.py                       # widths 256, 384, 512; batch 1 and 32
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from polyseq.config import ModelConfig
from polyseq.decoding.core import model_runner
from polyseq.evaluate import write_report
from polyseq.model.transformer import Seq2Seq

ROOT = Path(__file__).resolve().parents[1]


def at_least_one(text: str) -> int:
    """A count of at least 1 (a batch of 0 sentences would time an empty pass, and report its ratio)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def width(text: str) -> int:
    """A model width: heads of 64 dimensions each, as make_model builds them."""
    if not text.isdigit() or int(text) < 64 or int(text) % 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a multiple of 64 (heads of 64 dimensions)")
    return int(text)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=width, nargs="+", default=[256, 384, 512])
    parser.add_argument("--batches", type=at_least_one, nargs="+", default=[1, 32])
    parser.add_argument("--length", type=at_least_one, default=28,
                        help="source and output tokens per sentence (the corrector's dev slice: 28)")
    parser.add_argument("--repeats", type=at_least_one, default=10,
                        help="rounds, the two taking turns; fastest kept")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "ceiling.json")
    return parser.parse_args()


def make_model(width: int, vocab: int, positions: int) -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=vocab, d_model=width, encoder_layers=6, decoder_layers=6,
                         heads=width // 64, ffn_dim=4 * width, dropout=0.0, max_positions=positions)
    return Seq2Seq(config).eval()


def greedy_steps(model: Seq2Seq, src: torch.Tensor, output: torch.Tensor) -> None:
    """Encode, then read `output` one token per pass, choosing a token after each as greedy does."""
    run, memory, cache = _started(model, src, output.shape[1])
    for step in range(output.shape[1]):
        states, project = run.decode(output[:, step : step + 1], memory, cache)
        run.choose(states[:, -1], project)  # what greedy does: the argmax and its log-probability


def one_pass(model: Seq2Seq, src: torch.Tensor, output: torch.Tensor) -> None:
    """Encode, then read all of `output` in one pass and choose a token after every position."""
    run, memory, cache = _started(model, src, output.shape[1])
    states, project = run.decode(output, memory, cache)
    run.choose(states.reshape(-1, states.shape[-1]), project)


def _started(model: Seq2Seq, src: torch.Tensor, length: int) -> tuple[Any, Any, Any]:
    """The runner, the encoded source and a cache with room for `length` decoder tokens."""
    run = model_runner(model)
    memory = run.encode(src)
    return run, memory, run.init_cache(memory, capacity=length + 1)


def fastest(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Each function's fastest of `repeats` calls, the functions taking turns."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: min(found) for name, found in times.items()}


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(2)
    report: dict[str, Any] = {"command": "python " + shlex.join(sys.argv), "threads": torch.get_num_threads(),
                              "length": args.length, "results": {}}
    generator = torch.Generator().manual_seed(1)
    for width in args.widths:
        model = make_model(width, 4000, 2 * args.length + 8)
        for batch in args.batches:
            src = torch.randint(4, 4000, (batch, args.length), generator=generator)
            output = torch.randint(4, 4000, (batch, args.length), generator=generator)
            with torch.inference_mode():
                seconds = fastest({"greedy": functools.partial(greedy_steps, model, src, output),
                                   "one_pass": functools.partial(one_pass, model, src, output)}, args.repeats)
            ceiling = seconds["greedy"] / seconds["one_pass"]
            report["results"][f"d{width}/batch{batch}"] = {
                "parameters": sum(p.numel() for p in model.parameters()),
                "greedy_ms": round(1000 * seconds["greedy"], 2),
                "one_pass_ms": round(1000 * seconds["one_pass"], 2), "ceiling": round(ceiling, 2)}
            print(f"d{width} batch {batch:>2}: greedy {1000 * seconds['greedy']:8.1f} ms, one pass "
                  f"{1000 * seconds['one_pass']:7.1f} ms, ceiling x{ceiling:.2f}", flush=True)
    write_report(args.result, report)


if __name__ == "__main__":
    main()
