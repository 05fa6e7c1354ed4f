"""Benchmark: polyseq against transformers and CTranslate2 on identical weights.

Each polyseq model is exported (polyseq export --to hf / --to ct2) and the same source token ids are
decoded by polyseq (greedy, beam 5, aggressive), by transformers' `generate` (greedy, beam 5,
`prompt_lookup_num_tokens`, `assistant_model`) and by CTranslate2 (float32 and int8; greedy and
beam 5), at batch 1 and 32, each at every thread count given, in a fresh process per measurement
(so that peak memory belongs to one engine). Reports tokens/s, ms/sentence, peak RSS and the rate
of outputs identical to polyseq greedy, as JSON and a table; checks the issue's speed targets.

    python bench/peers.py --sentences 500 \\
        --task translate=bench/work/multi30k/best:en:de:../shared/data/multi30k/test_2016_flickr.en:DRAFT \\
        --task correct=CORRECTOR_DIR:uk:uk:CORRECTOR_DEV_SOURCES[:DRAFT]
    python bench/peers.py --task translate=MODEL:en:de:FILE --sentences 20 --batches 1 --threads 1   # smoke

Timing covers decoding only: tokenization is done once, before, and is the same for every engine.
Notes: transformers' prompt lookup matches n-grams of the decoder's own output (never the source),
and its assisted and prompt-lookup generation refuse batches above one; the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = {
    "polyseq": ("greedy", "beam5", "aggressive"),
    "transformers": ("greedy", "beam5", "prompt_lookup", "assisted"),
    "ct2-float32": ("greedy", "beam5"),
    "ct2-int8": ("greedy", "beam5"),
}


@dataclass(frozen=True)
class Task:
    """One model and its test inputs, as token ids (the framing of its tokenizer applied)."""

    name: str
    model_dir: str
    hf_dir: str
    ct2_dir: str
    sources: list[list[int]]
    prefix: list[int]
    eos: int
    pad: int
    max_new: int
    assistant_dir: str = ""


@dataclass(frozen=True)
class Run:
    engine: str
    strategy: str
    batch: int
    threads: int


@dataclass
class Measurement:
    run: Run
    sentences: int = 0
    tokens: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    baseline_rss_mb: float = 0.0  # after imports, before the model is loaded
    error: str = ""  # why this run has no numbers: a refusal (batch > 1) or a failure
    load_before: float = 0.0  # the machine's 1-minute load average as the run began: other work shows here
    identical_to_greedy: float | None = None
    outputs: list[list[int]] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def ms_per_sentence(self) -> float:
        return 1000 * self.seconds / self.sentences if self.sentences else 0.0

    def summary(self) -> dict[str, Any]:
        values = {**asdict(self.run), "sentences": self.sentences, "tokens": self.tokens,
                  "seconds": round(self.seconds, 4), "tokens_per_s": round(self.tokens_per_second, 1),
                  "ms_per_sentence": round(self.ms_per_sentence, 3), "peak_rss_mb": round(self.peak_rss_mb),
                  "baseline_rss_mb": round(self.baseline_rss_mb), "identical_to_greedy":
                  self.identical_to_greedy, "error": self.error, "load_before": self.load_before}
        return values


# ------------------------------------------------------------------------------------- engines


def _rss_mb() -> float:
    """Peak resident memory of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    exec, so a spawned child would report its parent's peak."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere, KiB (Linux) at best


def _padded(rows: list[list[int]], pad: int) -> Any:
    import torch

    src = torch.full((len(rows), max(map(len, rows))), pad, dtype=torch.long)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    return src


def _polyseq_decoder(task: Task, strategy: str) -> Any:
    import torch

    from polyseq.decoding.core import DecodeInput, LengthLimit, decode, strategy_names
    from polyseq.model.checkpoint import load_model
    from polyseq.model.layout import for_decoding

    name = {"beam5": "beam"}.get(strategy, strategy)
    if name not in strategy_names():
        raise LookupError(f"polyseq has no {name!r} strategy in this tree")
    settings: dict[str, Any] = {"max_length": LengthLimit(0.0, task.max_new)}
    if name == "beam":
        settings |= {"beam_size": 5, "length_penalty": 1.0}
    model = for_decoding(load_model(task.model_dir))  # as polyseq's Translator decodes

    def run(rows: list[list[int]]) -> list[list[int]]:
        prefix = torch.tensor([task.prefix] * len(rows))
        inputs = DecodeInput(_padded(rows, task.pad), prefix, task.eos, task.pad)
        return [list(h.tokens) for h in decode(model, inputs, name, **settings).best()]

    return run


def _transformers_decoder(task: Task, strategy: str) -> Any:
    import torch
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(task.hf_dir).eval()
    settings: dict[str, Any] = {"num_beams": 1, "do_sample": False}
    if strategy == "beam5":
        settings |= {"num_beams": 5, "early_stopping": True, "length_penalty": 1.0}
    elif strategy == "prompt_lookup":
        settings["prompt_lookup_num_tokens"] = 10
    elif strategy == "assisted":
        if not task.assistant_dir:
            raise LookupError("no assistant model given (the task's fifth field)")
        settings["assistant_model"] = AutoModelForSeq2SeqLM.from_pretrained(task.assistant_dir).eval()

    def run(rows: list[list[int]]) -> list[list[int]]:
        src = _padded(rows, task.pad)
        prefix = torch.tensor([task.prefix] * len(rows))
        with torch.inference_mode():
            out = model.generate(input_ids=src, attention_mask=src != task.pad, decoder_input_ids=prefix,
                                 decoder_start_token_id=task.prefix[0], max_new_tokens=task.max_new,
                                 forced_eos_token_id=None, forced_bos_token_id=None, **settings)
        return [_cut(row, task.eos) for row in out[:, len(task.prefix):].tolist()]

    return run


def _ct2_decoder(task: Task, strategy: str, compute_type: str, threads: int) -> Any:
    import ctranslate2  # and not polyseq, whose import brings torch: peak memory is CTranslate2's own

    translator = ctranslate2.Translator(task.ct2_dir, device="cpu", compute_type=compute_type,
                                        intra_threads=threads, inter_threads=1)
    tokens = json.loads((Path(task.ct2_dir) / "shared_vocabulary.json").read_text(encoding="utf-8"))
    index = {token: i for i, token in enumerate(tokens)}
    config = json.loads((Path(task.ct2_dir) / "config.json").read_text(encoding="utf-8"))
    # a model without a fixed decoder start starts from the prefix's first token and does not
    # return it; a model with one (Marian, M2M-100) starts from it and returns the rest of the prefix
    prefix = task.prefix if config.get("decoder_start_token") is None else task.prefix[1:]
    skip = max(len(prefix) - (1 if config.get("decoder_start_token") is None else 0), 0)
    target_prefix = [tokens[i] for i in prefix] or None
    beam = 5 if strategy == "beam5" else 1

    def run(rows: list[list[int]]) -> list[list[int]]:
        batch = [[tokens[i] for i in row] for row in rows]
        results = translator.translate_batch(
            batch, target_prefix=[target_prefix] * len(rows) if target_prefix else None, beam_size=beam,
            max_decoding_length=task.max_new, length_penalty=1.0)  # as polyseq: EOS not counted
        return [[index[t] for t in result.hypotheses[0][skip:]] for result in results]

    return run


def _cut(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


def _decoder(task: Task, run: Run) -> Any:
    if run.engine == "polyseq":
        return _polyseq_decoder(task, run.strategy)
    if run.engine == "transformers":
        return _transformers_decoder(task, run.strategy)
    return _ct2_decoder(task, run.strategy, run.engine.removeprefix("ct2-"), run.threads)


def measure(task: Task, run: Run) -> Measurement:
    """One engine, strategy, batch size and thread count, in this (fresh) process."""
    if not run.engine.startswith("ct2"):
        import torch

        torch.set_num_threads(run.threads)
    result = Measurement(run, baseline_rss_mb=_rss_mb())
    try:
        decoder = _decoder(task, run)
        order = sorted(range(len(task.sources)), key=lambda i: len(task.sources[i]))
        batches = [order[i : i + run.batch] for i in range(0, len(order), run.batch)]
        decoder([task.sources[i] for i in batches[0]])  # warm-up: allocator, caches, lazy init
        outputs: list[list[int]] = [[] for _ in task.sources]
        started = time.perf_counter()
        for batch in batches:
            for index, output in zip(batch, decoder([task.sources[i] for i in batch]), strict=True):
                outputs[index] = output
        result.seconds = time.perf_counter() - started
    except (ValueError, LookupError, NotImplementedError) as error:  # e.g. "batch size > 1" refusals
        result.error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        return result
    result.sentences, result.outputs = len(outputs), outputs
    result.tokens = sum(len(o) for o in outputs)
    result.peak_rss_mb = _rss_mb()
    return result


def measure_in_child(task: Task, run: Run) -> Measurement:
    load = round(os.getloadavg()[0], 2)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        result = pool.submit(measure, task, run).result()
    result.load_before = load
    return result


# ------------------------------------------------------------------------------------- preparing


def prepare(spec: str, work: Path, sentences: int) -> Task:
    """`name=MODEL_DIR:SRC_LANG:TGT_LANG:SOURCE_FILE[:ASSISTANT_DIR]` -> a Task with exported copies
    of the model (and of the assistant: a smaller polyseq model with the same tokenizer, for
    transformers' assisted generation)."""
    from polyseq.interop.ct2 import export_ct2
    from polyseq.interop.hf import export_hf
    from polyseq.interop.tokenizers import framing_for, load_tokenizer
    from polyseq.model.checkpoint import load_model_config
    from polyseq.translator import read_text_lines

    name, _, rest = spec.partition("=")
    model_dir, src_lang, tgt_lang, source_file, *extra = rest.split(":")
    assistant = extra[0] if extra else ""
    tokenizer = load_tokenizer(model_dir)
    framing = framing_for(tokenizer, src_lang or None, tgt_lang)
    lines = [line for line in read_text_lines(Path(source_file)) if line.strip()][:sentences]
    sources = [framing.source(tokenizer.encode(line)) for line in lines]
    hf_dir, ct2_dir = work / name / "hf", work / name / "ct2"
    export_hf(model_dir, hf_dir)
    export_ct2(model_dir, ct2_dir)  # float32 weights; int8 is CTranslate2's load-time quantization
    assistant_dir = ""
    if assistant:
        assistant_dir = str(export_hf(assistant, work / name / "assistant"))
    limit = load_model_config(Path(model_dir)).max_positions - len(framing.decoder_prefix) - 1
    return Task(name, model_dir, str(hf_dir), str(ct2_dir), sources, list(framing.decoder_prefix),
                tokenizer.eos_id, tokenizer.pad_id, min(limit, 200), assistant_dir)


def race(task: Task, batches: list[int], threads: list[int], engines: list[str],
         log: Any) -> list[Measurement]:
    measurements: list[Measurement] = []
    for engine in engines:
        for strategy in STRATEGIES[engine]:
            for batch in batches:
                for count in threads:
                    result = measure_in_child(task, Run(engine, strategy, batch, count))
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


def check_targets(task: str, best: dict[tuple[str, str, int], Measurement],
                  copying: bool) -> list[dict[str, Any]]:
    """The issue's targets, each with the numbers it was judged on; the aggressive-decoding one only
    for tasks whose output mostly copies the input (`copying`: the corrector)."""
    checks: list[dict[str, Any]] = []

    def add(name: str, ours: Measurement | None, theirs: Measurement | None, ratio: float, faster: float,
            same: bool = True) -> None:
        if ours is None or theirs is None or ours.error or theirs.error:
            checks.append({"task": task, "target": name, "met": None, "why": "not measured"})
            return
        checks.append({"task": task, "target": name, "ratio": round(ratio, 3), "required": faster,
                       "met": ratio >= faster and same})

    for batch in sorted({key[2] for key in best}):
        for strategy in ("greedy", "beam5"):
            ours, hf = best.get(("polyseq", strategy, batch)), best.get(("transformers", strategy, batch))
            if ours and hf and ours.seconds and hf.seconds:
                add(f"polyseq {strategy} >= 2x transformers at batch {batch}", ours, hf,
                    hf.seconds / ours.seconds, 2.0)
        greedy, ct2 = best.get(("polyseq", "greedy", batch)), best.get(("ct2-float32", "greedy", batch))
        if greedy and ct2 and greedy.seconds and ct2.seconds:
            if batch == 1:
                add("polyseq greedy ms/sentence <= CT2 float32 at batch 1", greedy, ct2,
                    ct2.ms_per_sentence / greedy.ms_per_sentence, 1.0)
            else:
                add(f"polyseq greedy tokens/s >= 0.8x CT2 float32 at batch {batch}", greedy, ct2,
                    greedy.tokens_per_second / max(ct2.tokens_per_second, 1e-9), 0.8)
        fast, int8 = best.get(("polyseq", "aggressive", batch)), best.get(("ct2-int8", "greedy", batch))
        if copying and fast and int8 and fast.seconds and int8.seconds:
            add(f"polyseq aggressive faster than CT2 int8 greedy at batch {batch} (identical to greedy)",
                fast, int8, int8.seconds / fast.seconds, 1.0, fast.identical_to_greedy == 1.0)
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


def profile_greedy(task: Task, threads: int, sentences: int = 30) -> dict[str, Any]:
    """Where polyseq greedy at batch 1 spends its time: the top operators by self CPU time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    decoder = _polyseq_decoder(task, "greedy")
    decoder(task.sources[:1])
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for row in task.sources[:sentences]:
            decoder([row])
    wall_ms = 1000 * (time.perf_counter() - started)
    averages = profiler.key_averages()
    events = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:15]
    ops_ms = sum(e.self_cpu_time_total for e in averages) / 1000
    # what the operators do not account for is Python: the strategy loop, module calls, dispatch
    return {"wall_ms": round(wall_ms, 1), "operators_ms": round(ops_ms, 1),
            "outside_operators_share": round(1 - ops_ms / wall_ms, 3), "note": "profiler overhead included",
            "top_operators": [
                {"op": e.key, "calls": e.count, "self_ms": round(e.self_cpu_time_total / 1e3, 2),
                 "share_of_wall": round(e.self_cpu_time_total / 1e3 / wall_ms, 3)}
                for e in events]}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", action="append", required=True,
                        help="name=MODEL_DIR:SRC_LANG:TGT_LANG:SOURCE_FILE[:ASSISTANT_DIR] (repeatable)")
    parser.add_argument("--sentences", type=int, default=500, help="sentences per task")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--threads", default="1,2", help="thread counts tried for every engine")
    parser.add_argument("--engines", default=",".join(STRATEGIES))
    parser.add_argument("--copy-tasks", default="correct",
                        help="tasks judged on the aggressive-decoding target (output copies input)")
    parser.add_argument("--profile", action="store_true", help="profile polyseq greedy at batch 1")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "peers")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    ints = lambda text: [int(v) for v in text.split(",") if v]  # noqa: E731
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    report: dict[str, Any] = {"command": sys.argv, "tasks": {}, "notes": [
        "transformers' prompt lookup matches n-grams of the decoder's own output, never the source",
        "transformers' assisted and prompt-lookup generation refuse batches above one (see 'error')",
        "each engine runs at its own best thread count (column 'threads'); all counts are in 'runs'",
        "timing covers decoding only; tokenization happens once, before, for every engine alike"]}
    for spec in args.task:
        task = prepare(spec, args.work, args.sentences)
        measurements = race(task, ints(args.batches), ints(args.threads), args.engines.split(","), log)
        best = best_runs(measurements)
        entry: dict[str, Any] = {
            "model": task.model_dir, "sentences": len(task.sources),
            "best": [m.summary() for m in best.values()], "runs": [m.summary() for m in measurements],
            "targets": check_targets(task.name, best, task.name in args.copy_tasks.split(","))}
        if args.profile:
            entry["profile_polyseq_greedy_batch1"] = profile_greedy(task, min(ints(args.threads)))
        report["tasks"][task.name] = entry
        print(table(task.name, best))
        for check in entry["targets"]:
            print(f"  {'MET ' if check['met'] else 'MISS' if check['met'] is False else '----'} "
                  f"{check['target']}: {check.get('ratio', '-')} (required {check.get('required', '-')})")
        args.result.parent.mkdir(parents=True, exist_ok=True)  # after every task: a long run keeps
        args.result.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")  # what it has
    print(f"\nwrote {args.result}")


if __name__ == "__main__":
    main()
