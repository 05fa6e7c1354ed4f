"""The memory that training data takes: `prepare_data` on a large corpus, peak and kept.

A corpus of `--pairs` en-de pairs is made from multi30k's training captions, each pair's words
shuffled alike on both sides with a seeded generator (so that nearly every sentence is distinct,
as in a real corpus, with multi30k's vocabulary and lengths). `prepare_data` encodes and filters it
(with a tokenizer trained on the first run and kept) in a fresh process, twice: once for the
process's RSS above what it had before (its peak, and what it holds after, when it has kept what a
run of translation alone keeps and handed freed memory back), once under tracemalloc for the bytes
that data holds alive (`live_mb`; the allocator may hold more, and reuses it). Nothing is timed.

    python bench/data_memory.py --pairs 1000000 --result bench/results/data_memory.json

Run it at two commits (PYTHONPATH=OTHER/src measures another checkout's polyseq) to compare them:
the result file keeps a row per commit and size.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "multi30k"
WORK = ROOT / "bench" / "work" / "data_memory"

MEASURE = r"""
import ctypes, gc, json, resource, sys, tracemalloc
from pathlib import Path

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

import numpy, sentencepiece, torch  # imports apart from the data
import polyseq
from polyseq.config import DataConfig
from polyseq.train.data import prepare_data
live = sys.argv[3] == "live"
gc.collect()
before = rss_mb()
if live:  # in a run of its own: tracing costs memory of its own, which the peak must not count
    tracemalloc.start()
config = DataConfig(train=sys.argv[1], languages=("en", "de"), directions=("en-de",), vocab_size=8000,
                    valid_size=1000, max_length=128)
data = prepare_data(config, Path(sys.argv[2]), seed=1, log=lambda message: None)
data.pairs = ()  # what a run of translation alone keeps (polyseq.train.loop drops the text)
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed memory back to the system, where it can be
figures = {"live_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1)} if live else {
    "retained_rss_mb": round(rss_mb() - before, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before, 1)}
print(json.dumps({"polyseq": polyseq.__file__, "examples": len(data.train),
                  "tokens": sum(len(e.src) + len(e.tgt) for e in data.train), **figures}))
"""


def make_corpus(pairs: int, folder: Path) -> str:
    """`pairs` shuffled multi30k pairs as folder/train.en, folder/train.de (made once)."""
    prefix = folder / f"train{pairs}"
    if prefix.with_suffix(".de").is_file():
        return str(prefix)
    english = (DATA / "train.en").read_text(encoding="utf-8").splitlines()
    german = (DATA / "train.de").read_text(encoding="utf-8").splitlines()
    rng = random.Random(1)
    folder.mkdir(parents=True, exist_ok=True)
    with open(prefix.with_suffix(".en.tmp"), "w", encoding="utf-8") as en_file, \
            open(prefix.with_suffix(".de.tmp"), "w", encoding="utf-8") as de_file:
        for _ in range(pairs):
            index = rng.randrange(len(english))
            en_words, de_words = english[index].split(), german[index].split()
            rng.shuffle(en_words)
            rng.shuffle(de_words)
            en_file.write(" ".join(en_words) + "\n")
            de_file.write(" ".join(de_words) + "\n")
    for lang in ("en", "de"):
        prefix.with_suffix(f".{lang}.tmp").replace(prefix.with_suffix(f".{lang}"))
    return str(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--result", type=Path, default=None, help="write the figures here (JSON)")
    args = parser.parse_args()
    if args.pairs < 10_000:
        parser.error("--pairs must be at least 10000 (a tenth is held out for validation, at most 1000)")
    if not (DATA / "train.en").is_file():
        sys.exit(f"multi30k not found at {DATA} (see shared/data/README.md)")
    corpus = make_corpus(args.pairs, WORK)
    tokenizer = WORK / f"tokenizer{args.pairs}"  # trained first: the runs measure the data, not SentencePiece
    if not (tokenizer / "tokenizer.model").is_file():
        subprocess.run([sys.executable, "-c", MEASURE, corpus, str(tokenizer), "rss"], check=True,
                       capture_output=True, cwd=ROOT)
    figures: dict[str, object] = {}
    for mode in ("rss", "live"):
        run = subprocess.run([sys.executable, "-c", MEASURE, corpus, str(tokenizer), mode], check=True,
                             capture_output=True, text=True, cwd=ROOT)
        figures |= json.loads(run.stdout.strip().splitlines()[-1])
    package = Path(figures.pop("polyseq")).parent  # the polyseq measured (PYTHONPATH may choose another)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=package).stdout.strip()
    result = {"command": f"python bench/data_memory.py --pairs {args.pairs}", "commit": commit,
              "pairs": args.pairs, **figures,
              "live_bytes_per_token": round(float(figures["live_mb"]) * 2**20 / float(figures["tokens"]), 1)}
    print(json.dumps(result, indent=2))
    if args.result:  # one row per commit and size: a run at another commit is kept beside it
        from polyseq.files import write_json_atomic

        runs = json.loads(args.result.read_text())["runs"] if args.result.is_file() else []
        runs = [r for r in runs if (r["commit"], r["pairs"]) != (commit, args.pairs)] + [result]
        write_json_atomic(args.result, {"runs": runs})


if __name__ == "__main__":
    main()
