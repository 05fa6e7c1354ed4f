"""The engines bench/peers.py races: polyseq, transformers and CTranslate2, each decoding a task's
token ids with one strategy at one batch size and thread count, in a fresh process per
measurement (so that peak memory belongs to one engine).

Nothing here imports torch or polyseq at the top: a CTranslate2 measurement's process must hold
CTranslate2 alone, and a spawned process imports this module and bench/peers.py again.
"""

from __future__ import annotations

import json
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

STRATEGIES = {
    "polyseq": ("greedy", "beam5", "aggressive", "speculative"),
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
    assistant_dir: str = ""  # the draft model exported for transformers' assisted generation
    draft_dir: str = ""  # the same polyseq draft model, for polyseq's speculative decoding


@dataclass(frozen=True)
class Run:
    engine: str
    strategy: str
    batch: int
    threads: int
    repeats: int = 1  # timed passes over all sentences; the fastest counts


@dataclass
class Measurement:
    run: Run
    sentences: int = 0
    tokens: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    baseline_rss_mb: float = 0.0  # after the engine's imports, before the model is loaded
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

    from polyseq.decoding import generate, strategy_names
    from polyseq.decoding.core import DecodeInput, LengthLimit
    from polyseq.model.checkpoint import load_model

    name = {"beam5": "beam"}.get(strategy, strategy)
    if name not in strategy_names():
        raise LookupError(f"polyseq has no {name!r} strategy in this tree")
    settings: dict[str, Any] = {"max_length": LengthLimit(0.0, task.max_new)}
    if name == "beam":
        settings |= {"beam_size": 5, "length_penalty": 1.0}
    elif name == "speculative":
        if not task.draft_dir:
            raise LookupError("no draft model given (the task's fifth field)")
        settings |= {"draft": "model", "draft_model": load_model(task.draft_dir)}
    model = load_model(task.model_dir)

    def run(rows: list[list[int]]) -> list[list[int]]:
        prefix = torch.tensor([task.prefix] * len(rows))
        inputs = DecodeInput(_padded(rows, task.pad), prefix, task.eos, task.pad)
        return [list(h.tokens) for h in generate(model, inputs, name, **settings).best()]

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
    # polyseq never generates padding; CTranslate2 has no in-model ban, so it is asked per call
    suppress = [[tokens[task.pad]]] if task.pad != task.eos else None

    def run(rows: list[list[int]]) -> list[list[int]]:
        batch = [[tokens[i] for i in row] for row in rows]
        results = translator.translate_batch(
            batch, target_prefix=[target_prefix] * len(rows) if target_prefix else None, beam_size=beam,
            max_decoding_length=task.max_new, length_penalty=1.0,  # as polyseq: EOS not counted
            suppress_sequences=suppress)
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


def _import_engine(engine: str) -> None:
    """The engine's libraries, imported before the baseline is read, so that what the process
    grows by after it is the model's and its decoding's alike for every engine."""
    if engine.startswith("ct2"):
        import ctranslate2  # noqa: F401
    elif engine == "transformers":
        from transformers import AutoModelForSeq2SeqLM  # noqa: F401 (transformers imports lazily)
    else:
        import polyseq.decoding  # noqa: F401
        import polyseq.model.checkpoint  # noqa: F401


def measure(task: Task, run: Run) -> Measurement:
    """One engine, strategy, batch size and thread count, in this (fresh) process."""
    if not run.engine.startswith("ct2"):
        import torch

        torch.set_num_threads(run.threads)
    _import_engine(run.engine)
    result = Measurement(run, baseline_rss_mb=_rss_mb())
    try:
        decoder = _decoder(task, run)
        order = sorted(range(len(task.sources)), key=lambda i: len(task.sources[i]))
        batches = [order[i : i + run.batch] for i in range(0, len(order), run.batch)]
        decoder([task.sources[i] for i in batches[0]])  # warm-up: allocator, caches, lazy init
        outputs: list[list[int]] = [[] for _ in task.sources]
        for _ in range(run.repeats):  # a shared machine slows a pass now and then, never speeds one up
            started = time.perf_counter()
            for batch in batches:
                for index, output in zip(batch, decoder([task.sources[i] for i in batch]), strict=True):
                    outputs[index] = output
            seconds = time.perf_counter() - started
            result.seconds = seconds if not result.seconds else min(result.seconds, seconds)
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
