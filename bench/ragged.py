"""Benchmark: a verifying pass over rows of different lengths, with its products on the real
tokens alone (packed) and on the whole padded block.

Rows of a batch verify drafts of different lengths, padded to the longest; `FlatDecoder` runs the
products on the real tokens alone where they are at most `flat.PACK_BELOW` of the block. For each
shape (rows, padded width, share of real tokens) both ways are timed on a model's flat passes, the
fastest of `--repeats` calls each, taking turns; the states of the real tokens are compared.

    python bench/ragged.py --model bench/work/decoding-mt/corrector-d256-6x6/best \\
        --result bench/results/ragged.json
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from polyseq.decoding.core import model_runner
from polyseq.evaluate import write_report
from polyseq.model import flat
from polyseq.model.checkpoint import load_model
from polyseq.model.layout import for_decoding

ROOT = Path(__file__).resolve().parents[1]
# (rows, padded width, the fewest real tokens a row has): from a few rows left after a first pass
# to a full batch of 32, real shares from about a half to nine in ten
SHAPES = [(32, 32, 4), (32, 32, 16), (32, 32, 26), (16, 40, 2), (8, 60, 4), (8, 16, 13), (4, 40, 2)]


def time_pass(run: Any, vocabulary: int, rows: int, width: int, fewest: int, repeats: int,
              seed: int) -> dict[str, Any]:
    widths = [random.Random(seed + row).randint(fewest, width) for row in range(rows)]
    widths[0] = width  # the longest row sets the padded width
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(5, vocabulary, (rows, 30), generator=generator)
    prefix = torch.randint(5, vocabulary, (rows, 10), generator=generator)
    tokens = torch.randint(5, vocabulary, (rows, width), generator=generator)
    memory = run.encode(src)
    cache = run.init_cache(memory, capacity=10 + width + 2)
    run.decode(prefix, memory, cache)
    best = {"packed": float("inf"), "padded": float("inf")}
    states = {}
    for _ in range(repeats):
        for way, share in (("packed", 1.0), ("padded", 0.0)):
            flat.PACK_BELOW = share  # 1.0: always pack a ragged block; 0.0: never
            started = time.perf_counter()
            states[way] = run.decode(tokens, memory, cache, widths)[0]
            best[way] = min(best[way], time.perf_counter() - started)
            cache.truncate(10)
    same = all(torch.allclose(states["packed"][row, :w], states["padded"][row, :w], atol=1e-4)
               for row, w in enumerate(widths))
    return {"rows": rows, "width": width, "real_share": round(sum(widths) / (rows * width), 2),
            "packed_ms": round(1000 * best["packed"], 2), "padded_ms": round(1000 * best["padded"], 2),
            "speedup": round(best["padded"] / best["packed"], 2), "same_states": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a polyseq model directory")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "ragged.json")
    args = parser.parse_args()
    if not (args.model / "model.safetensors").is_file():
        sys.exit(f"{args.model} is not a polyseq model directory (no model.safetensors)")
    torch.set_num_threads(2)
    model = for_decoding(load_model(args.model), in_place=True)
    run = model_runner(model)
    default = flat.PACK_BELOW
    rows = []
    with torch.inference_mode():
        for batch, width, fewest in SHAPES:
            row = time_pass(run, model.config.vocab_size, batch, width, fewest, args.repeats, seed=len(rows))
            rows.append(row)
            print(f"{row['rows']:>3} rows x {row['width']:>3}  real {row['real_share']:.2f}  packed "
                  f"{row['packed_ms']:>7.1f} ms  padded {row['padded_ms']:>7.1f} ms  x{row['speedup']}",
                  flush=True)
    flat.PACK_BELOW = default
    write_report(args.result, {"command": "python " + shlex.join(sys.argv),
                               "threads": torch.get_num_threads(), "model": str(args.model),
                               "pack_below": default, "passes": rows})


if __name__ == "__main__":
    main()
