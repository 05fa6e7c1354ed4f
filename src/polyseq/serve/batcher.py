"""Dynamic batching: the items of concurrent requests are decoded together on one model.

Each model has one worker thread that alone runs it, with a fixed number of torch threads. Items
(every text of every request) wait in a bounded queue. Once the worker has one, it keeps taking
more until their source tokens reach `max_batch_tokens` or for at most `max_wait_ms` (only under
load: a client alone is not kept waiting), groups them
by what must be decoded alike (direction, strategy and its settings), and decodes each group with
the Translator, which sorts a group by length into token-budget batches. Each item's future is
answered as soon as its group is done, so a request is answered as soon as all its items are.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from polyseq.translator import TranslationCandidate, Translator


class Overloaded(Exception):
    """The queue has no room for a request's items: answer 429 with Retry-After."""


class ShuttingDown(Exception):
    """The server is stopping and takes no new work."""


@dataclass(frozen=True)
class Job:
    """How a group of items is decoded: one direction, one strategy with its settings."""

    src_lang: str | None
    tgt_lang: str
    strategy: str
    settings: str = "{}"  # the strategy's settings as sorted JSON (hashable)

    @staticmethod
    def of(src_lang: str | None, tgt_lang: str, strategy: str, settings: dict[str, Any]) -> Job:
        return Job(src_lang, tgt_lang, strategy, json.dumps(settings, sort_keys=True))


@dataclass
class Item:
    text: str
    job: Job
    prefix: str | None
    future: asyncio.Future[list[TranslationCandidate]]
    loop: asyncio.AbstractEventLoop
    tokens: int = 0  # source tokens, counted by the worker

    def answer(self, result: list[TranslationCandidate] | BaseException) -> None:
        def settle() -> None:
            if self.future.done():  # the request gave up (timeout) meanwhile
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(settle)


@dataclass
class BatchStats:
    """What the worker reports after each decoding call (for /metrics)."""

    items: int
    seconds: float
    generated_tokens: int


@dataclass
class Batcher:
    name: str
    translator: Translator
    max_batch_tokens: int = 6000
    max_wait_ms: float = 10.0
    queue_items: int = 2048
    threads: int = 0
    batching: bool = True  # False: one item per decoding call (for comparison)
    on_batch: Callable[[str, BatchStats], None] = lambda name, stats: None
    _queue: queue.Queue[Item | None] = field(default_factory=queue.Queue, init=False)
    _waiting: int = field(default=0, init=False)  # items queued, not yet taken by the worker
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _closed: bool = field(default=False, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _last_items: int = field(default=1, init=False)  # items of the last collection
    seconds_per_item: float = field(default=0.05, init=False)  # a running mean, for Retry-After

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"polyseq-{self.name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._waiting

    async def submit(self, texts: Sequence[str], job: Job, prefix: str | None = None
                     ) -> list[list[TranslationCandidate]]:
        """Each text's candidates, best first. All of a request's items enter the queue, or none."""
        loop = asyncio.get_running_loop()
        items = [Item(text, job, prefix, loop.create_future(), loop) for text in texts]
        with self._lock:
            if self._closed:
                raise ShuttingDown()
            if self._waiting + len(items) > self.queue_items:
                raise Overloaded()
            self._waiting += len(items)
            for item in items:
                self._queue.put(item)
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        finally:
            for item in items:
                item.future.cancel()  # a request that gave up: the worker skips what is left

    def close(self) -> None:
        """Take no new items; the worker finishes those queued, then stops."""
        with self._lock:
            self._closed = True
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self, block: bool, timeout: float | None = None) -> Item | None:
        item = self._queue.get(block, timeout)
        if item is not None:
            with self._lock:
                self._waiting -= 1
        return item

    def _run(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        stopping = False
        while not stopping:
            first = self._take(block=True)
            if first is None:
                break
            items, stopping = self._collect(first)
            for job, group in _groups(items).items():
                self._decode(job, group)  # answers every item, with its result or its error
        while True:  # after close: anything still queued is answered too
            try:
                item = self._take(block=False)
            except queue.Empty:
                return
            if item is not None:
                self._decode(item.job, [item])

    def _collect(self, first: Item) -> tuple[list[Item], bool]:
        """`first` and what arrives within max_wait_ms, up to max_batch_tokens; and whether the
        queue was closed meanwhile."""
        items = [first]
        if not self.batching:
            return items, False
        tokens = self._count(first)
        # waiting pays only under load: a client alone (the last collection was one item and
        # nothing else waits) would just be answered later
        wait = self.max_wait_ms if self._last_items > 1 or not self._queue.empty() else 0.0
        deadline = time.monotonic() + wait / 1000
        while tokens < self.max_batch_tokens:
            left = deadline - time.monotonic()
            try:
                item = self._take(block=True, timeout=left) if left > 0 else self._take(block=False)
            except queue.Empty:
                break
            if item is None:
                return items, True
            if item.future.cancelled():  # its request gave up: no room for it
                continue
            items.append(item)
            tokens += self._count(item)
        self._last_items = len(items)
        return items, False

    def _count(self, item: Item) -> int:
        try:
            item.tokens = len(self.translator.tokenizer.encode(item.text))
        except Exception:  # noqa: BLE001 - decoding will fail for this item alone, and say why
            item.tokens = 1
        return item.tokens

    def _decode(self, job: Job, items: list[Item]) -> None:
        alive = [item for item in items if not item.future.cancelled()]
        if not alive:
            return
        start = time.perf_counter()
        try:
            prefixes = [item.prefix or "" for item in alive]
            output = self.translator.translate_detailed(
                [item.text for item in alive], job.src_lang, job.tgt_lang, job.strategy,
                prefix=prefixes if any(prefixes) else None, **json.loads(job.settings))
        except Exception as error:  # noqa: BLE001 - the worker must live on; the request hears why
            if len(alive) == 1:
                alive[0].answer(error)
            else:  # one bad item fails only its own request
                for item in alive:
                    self._decode(job, [item])
            return
        seconds = time.perf_counter() - start
        self.seconds_per_item = 0.8 * self.seconds_per_item + 0.2 * seconds / len(alive)
        # counted before anyone hears back, so that a client's next /metrics includes its batch
        self.on_batch(self.name, BatchStats(len(alive), seconds, output.stats.generated_tokens))
        for item, candidates in zip(alive, output.candidates, strict=True):
            item.answer(candidates)


def _groups(items: list[Item]) -> dict[Job, list[Item]]:
    groups: dict[Job, list[Item]] = {}
    for item in items:
        groups.setdefault(item.job, []).append(item)
    return groups
