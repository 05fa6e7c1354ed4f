"""Two polyseq source trees race on the same model: the Translator's strategies at batch 1 and in
one batch, each tree in fresh processes that take turns, the fastest round of each kept. It also
checks that both trees translate every input to the same text. For a change that should cost
nothing (a refactor), the ratios should sit within the machine's noise.

    git worktree add /tmp/before COMMIT
    python bench/versions.py --before /tmp/before/src --model MODEL --src num --tgt en \
        --texts inputs.txt --draft DRAFT_MODEL --result bench/results/versions.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "greedy": ("greedy", {}),
    "beam5": ("beam", {"beam_size": 5}),
    "aggressive": ("aggressive", {}),
    "speculative-ngram": ("speculative", {}),
    "speculative-model": ("speculative", {"draft": "model"}),
}
HERE = Path(__file__).resolve().parent


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One round on whichever polyseq is importable: seconds per strategy and batch, and texts."""
    import torch

    from polyseq.translator import Translator

    torch.set_num_threads(args.threads)
    translator = Translator.load(args.model)
    texts = Path(args.texts).read_text(encoding="utf-8").splitlines()[: args.sentences]
    seconds: dict[str, float] = {}
    outputs: dict[str, list[str]] = {}
    for name, (strategy, settings) in STRATEGIES.items():
        if settings.get("draft") == "model":
            if not args.draft:
                continue
            settings = {**settings, "draft_model": args.draft}
        translate = functools.partial(translator.translate, src_lang=args.src, tgt_lang=args.tgt,
                                      strategy=strategy, **settings)
        translate(texts[:2])  # loads a draft model, warms the caches
        start = time.perf_counter()
        single = [translate([text])[0] for text in texts]
        seconds[f"{name}/batch1"] = time.perf_counter() - start
        start = time.perf_counter()
        outputs[name] = translate(texts)
        seconds[f"{name}/batch{len(texts)}"] = time.perf_counter() - start
        if single != outputs[name]:
            raise SystemExit(f"{name}: batch 1 and batch {len(texts)} disagree")
    return {"seconds": seconds, "outputs": outputs}


def race(args: argparse.Namespace) -> dict[str, Any]:
    trees = {"before": str(Path(args.before).resolve()), "after": str(HERE.parent / "src")}
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    outputs: dict[str, Any] = {}
    for round_ in range(args.rounds):
        for side in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
            env = dict(os.environ, PYTHONPATH=trees[side])
            command = [sys.executable, __file__, "--worker", *sys.argv[1:]]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode:  # the worker's own message: a bad option, or batch 1 and batch N disagreeing
                sys.exit(f"the {side} tree ({trees[side]}) failed:\n{done.stderr.strip()[-2000:]}")
            result = json.loads(done.stdout.splitlines()[-1])
            outputs[side] = result["outputs"]
            for key, value in result["seconds"].items():
                best[side][key] = min(best[side].get(key, float("inf")), value)
    rows = [{"run": key, "before_ms": round(1000 * best["before"][key], 1),
             "after_ms": round(1000 * best["after"][key], 1),
             "after_over_before": round(best["after"][key] / best["before"][key], 3)}
            for key in best["before"]]
    same = {name: outputs["before"][name] == outputs["after"][name] for name in outputs["before"]}
    return {"command": " ".join(["python", "bench/versions.py", *sys.argv[1:]]), "rows": rows,
            "identical_outputs": same, "sentences": args.sentences, "rounds": args.rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other tree's src/ folder")
    parser.add_argument("--model", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--tgt", required=True)
    parser.add_argument("--texts", required=True, help="one input per line")
    parser.add_argument("--draft", help="a draft model for speculative decoding")
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--result", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    report = race(args)
    for row in report["rows"]:
        print(f"{row['run']:28s} before {row['before_ms']:9.1f} ms  after {row['after_ms']:9.1f} ms  "
              f"x{row['after_over_before']:.3f}")
    print("identical outputs:", report["identical_outputs"])
    if args.result:
        sys.path.insert(0, str(HERE.parent / "src"))
        from polyseq.files import write_json_atomic

        write_json_atomic(args.result, report)


if __name__ == "__main__":
    main()
