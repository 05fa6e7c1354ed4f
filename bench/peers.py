"""Benchmark: polyseq against transformers and CTranslate2 on identical weights.

Each polyseq model is exported (polyseq export --to hf / --to ct2) and the same source token ids are
decoded by polyseq (greedy, beam 5, aggressive, speculative with the task's draft model), by
transformers' `generate` (greedy, beam 5,
`prompt_lookup_num_tokens`, `assistant_model`) and by CTranslate2 (float32 and int8; greedy and
beam 5), at batch 1 and 32, each at every thread count given, in a fresh process per measurement
(so that peak memory belongs to one engine). Reports tokens/s, ms/sentence, peak RSS and the rate
of outputs identical to polyseq greedy, as JSON and a table; checks the issue's speed targets.

    python bench/peers.py --sentences 500 \\
        --task translate=TRANSLATOR_DIR:en:de:../shared/data/multi30k/test_2016_flickr.en:DRAFT_DIR \\
        --task correct=CORRECTOR_DIR:uk:uk:CORRECTOR_DEV_SOURCES[:DRAFT]
    python bench/peers.py --task translate=MODEL:en:de:FILE --sentences 20 --batches 1 --threads 1   # smoke

Timing covers decoding only: tokenization is done once, before, and is the same for every engine.
bench/prepare.py exports the models and tokenizes the inputs; bench/engines.py runs the engines.
Notes: transformers' prompt lookup matches n-grams of the decoder's own output (never the source),
and its assisted and prompt-lookup generation refuse batches above one; the table says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engines import STRATEGIES, Measurement, Run, Task, measure_in_child

ROOT = Path(__file__).resolve().parents[1]


def race(task: Task, batches: list[int], threads: list[int], engines: list[str], repeats: int,
         log: Any) -> list[Measurement]:
    measurements: list[Measurement] = []
    for engine in engines:
        for strategy in STRATEGIES[engine]:
            for batch in batches:
                for count in threads:
                    result = measure_in_child(task, Run(engine, strategy, batch, count, repeats))
                    measurements.append(result)
                    log(f"{task.name:10} {engine:13} {strategy:13} b={batch:<3} t={count} "
                        f"{result.ms_per_sentence:9.2f} ms/sent {result.tokens_per_second:9.1f} tok/s "
                        f"load {result.load_before:4.2f} {result.error}")
    greedy = next((m.outputs for m in measurements if m.run.engine == "polyseq"
                   and m.run.strategy == "greedy" and m.outputs), None)
    for result in measurements:
        if greedy and result.outputs:
            same = sum(a == b for a, b in zip(result.outputs, greedy, strict=True))
            result.identical_to_greedy = round(same / len(greedy), 4)
    return measurements


def best_runs(measurements: list[Measurement]) -> dict[tuple[str, str, int], Measurement]:
    """Each engine at its own best thread setting (lowest ms/sentence) per strategy and batch."""
    best: dict[tuple[str, str, int], Measurement] = {}
    for result in measurements:
        key = (result.run.engine, result.run.strategy, result.run.batch)
        current = best.get(key)
        # a run that has numbers beats one that has none, then the faster one wins
        faster = current is not None and not result.error and result.seconds < current.seconds
        if current is None or faster or (bool(current.error) and not result.error):
            best[key] = result
    return best


def check_targets(task: str, best: dict[tuple[str, str, int], Measurement], copying: bool,
                  drafted: bool) -> list[dict[str, Any]]:
    """The targets against CTranslate2 (and transformers), each with the numbers it was judged
    on: greedy and beam 5 at least as fast as CTranslate2's float32 at batch 1 and at every larger
    batch (time for the same sentences); on tasks whose output mostly copies the input (`copying`:
    the corrector), aggressive decoding 2x CTranslate2's float32 greedy at batch 1 and 1.2x at
    larger ones, and faster than its int8 greedy at batch 1; on tasks with a draft model
    (`drafted`), speculative decoding faster than its float32 greedy at batch 1. A lossless
    strategy meets a target only with every output identical to greedy's."""
    checks: list[dict[str, Any]] = []

    def add(name: str, ours: Measurement | None, theirs: Measurement | None, faster: float) -> None:
        if ours is None or theirs is None or ours.error or theirs.error or not ours.seconds:
            checks.append({"task": task, "target": name, "met": None, "why": "not measured"})
            return
        # time for the same sentences (as ms/sentence); tokens/s would differ where the outputs'
        # lengths do (beam 5: polyseq's and CTranslate2's beams end differently)
        ratio = theirs.seconds / ours.seconds
        same = ours.run.strategy == "beam5" or ours.identical_to_greedy == 1.0
        checks.append({"task": task, "target": name, "ratio": round(ratio, 3), "required": faster,
                       "met": ratio >= faster and same})

    for batch in sorted({key[2] for key in best}):
        for strategy in ("greedy", "beam5"):
            ours = best.get(("polyseq", strategy, batch))
            theirs = best.get(("transformers", strategy, batch))
            if theirs is not None:
                add(f"polyseq {strategy} >= 2x transformers at batch {batch}", ours, theirs, 2.0)
            add(f"polyseq {strategy} >= 1x CT2 float32 {strategy} at batch {batch}", ours,
                best.get(("ct2-float32", strategy, batch)), 1.0)
        ct2, int8 = best.get(("ct2-float32", "greedy", batch)), best.get(("ct2-int8", "greedy", batch))
        if copying:
            aggressive = best.get(("polyseq", "aggressive", batch))
            add(f"polyseq aggressive >= {2.0 if batch == 1 else 1.2}x CT2 float32 greedy at batch {batch}",
                aggressive, ct2, 2.0 if batch == 1 else 1.2)
            if batch == 1:
                add("polyseq aggressive faster than CT2 int8 greedy at batch 1", aggressive, int8, 1.0)
        elif drafted and batch == 1:
            add("polyseq speculative faster than CT2 float32 greedy at batch 1",
                best.get(("polyseq", "speculative", batch)), ct2, 1.0)
    return checks


def table(task: str, best: dict[tuple[str, str, int], Measurement]) -> str:
    lines = [f"\n{task}", f"{'engine':13} {'strategy':13} {'batch':>5} {'threads':>7} {'ms/sent':>9} "
             f"{'tok/s':>9} {'peak MB':>8} {'+model MB':>9} {'same as greedy':>14}  note"]
    for (engine, strategy, batch), m in sorted(best.items()):
        same = "" if m.identical_to_greedy is None else f"{100 * m.identical_to_greedy:.1f}%"
        grown = m.peak_rss_mb - m.baseline_rss_mb  # what loading and decoding added to the process
        if m.error:
            lines.append(f"{engine:13} {strategy:13} {batch:5} {m.run.threads:7} {'-':>9} {'-':>9} "
                         f"{'-':>8} {'-':>9} {'':>14}  not run: {m.error}")
            continue
        lines.append(f"{engine:13} {strategy:13} {batch:5} {m.run.threads:7} {m.ms_per_sentence:9.2f} "
                     f"{m.tokens_per_second:9.1f} {m.peak_rss_mb:8.0f} {grown:9.0f} "
                     f"{same:>14}")
    return "\n".join(lines)


# the options are checked before any export or race, which take minutes, can fail on them


def task_spec(text: str) -> str:
    """--task: name=MODEL_DIR:SRC_LANG:TGT_LANG:SOURCE_FILE[:ASSISTANT_DIR], its files present."""
    name, _, rest = text.partition("=")
    fields = rest.split(":")
    if not name or not 4 <= len(fields) <= 5:
        raise argparse.ArgumentTypeError(f"{text!r} is not name=MODEL_DIR:SRC_LANG:TGT_LANG:SOURCE_FILE"
                                         "[:ASSISTANT_DIR]")
    for path in (fields[0], fields[3], *fields[4:]):
        if not Path(path).exists():
            raise argparse.ArgumentTypeError(f"{text!r}: {path} does not exist")
    return text


def counts(text: str) -> list[int]:
    """--batches, --threads: comma-separated whole numbers, each at least 1."""
    try:
        values = [int(value) for value in text.split(",") if value]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers >= 1")
    return values


def engine_names(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown engines {','.join(unknown)!r}: choose among "
                                         f"{', '.join(STRATEGIES)}")
    return names


def at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", action="append", required=True, type=task_spec,
                        help="name=MODEL_DIR:SRC_LANG:TGT_LANG:SOURCE_FILE[:ASSISTANT_DIR] (repeatable)")
    parser.add_argument("--sentences", type=at_least_one, default=500, help="sentences per task")
    parser.add_argument("--batches", type=counts, default="1,32")
    parser.add_argument("--threads", type=counts, default="1,2", help="thread counts tried for every engine")
    parser.add_argument("--engines", type=engine_names, default=",".join(STRATEGIES))
    parser.add_argument("--repeats", type=at_least_one, default=1,
                        help="timed passes per run; the fastest counts")
    parser.add_argument("--copy-tasks", default="correct",
                        help="tasks judged on the aggressive-decoding target (output copies input)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "peers")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    report: dict[str, Any] = {"command": sys.argv, "tasks": {}, "notes": [
        "transformers' prompt lookup matches n-grams of the decoder's own output, never the source",
        "transformers' assisted and prompt-lookup generation refuse batches above one (see 'error')",
        "each engine runs at its own best thread count (column 'threads'); all counts are in 'runs'",
        "timing covers decoding only; tokenization happens once, before, for every engine alike"]}
    from prepare import peer_task  # here: a spawned measurement imports this module, and no torch

    from polyseq.files import write_json_atomic

    for spec in args.task:
        task = peer_task(spec, args.work, args.sentences)
        measurements = race(task, args.batches, args.threads, args.engines, args.repeats, log)
        best = best_runs(measurements)
        entry: dict[str, Any] = {
            "model": task.model_dir, "sentences": len(task.sources),
            "best": [m.summary() for m in best.values()], "runs": [m.summary() for m in measurements],
            "targets": check_targets(task.name, best, task.name in args.copy_tasks.split(","),
                                     bool(task.draft_dir))}
        report["tasks"][task.name] = entry
        print(table(task.name, best))
        for check in entry["targets"]:
            print(f"  {'MET ' if check['met'] else 'MISS' if check['met'] is False else '----'} "
                  f"{check['target']}: {check.get('ratio', '-')} (required {check.get('required', '-')})")
        # after every task, so that a long run keeps what it has; atomically, so that a run stopped
        # while writing leaves the previous file whole
        args.result.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.result, report)
    print(f"\nwrote {args.result}")


if __name__ == "__main__":
    main()
