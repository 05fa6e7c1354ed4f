"""Prometheus metrics of one server (its own registry: two apps in one process keep theirs apart)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from polyseq.serve.batcher import BatchStats


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue_depth = Gauge("polyseq_queue_items", "Items waiting for a model", ["model"],
                                 registry=self.registry)
        self.in_progress = Gauge("polyseq_requests_in_progress", "Requests received and not yet answered",
                                 ["endpoint"], registry=self.registry)
        self.batch_items = Histogram("polyseq_batch_items", "Items decoded in one call", ["model"],
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.batch_seconds = Histogram("polyseq_batch_seconds", "Time of one decoding call", ["model"],
                                       registry=self.registry)
        self.tokens = Counter("polyseq_generated_tokens", "Tokens generated", ["model"],
                              registry=self.registry)
        self.tokens_per_second = Gauge("polyseq_tokens_per_second", "Tokens per second of the last call",
                                       ["model"], registry=self.registry)
        self.latency = Histogram("polyseq_request_seconds", "Time to answer a request", ["endpoint"],
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                                 registry=self.registry)
        self.requests = Counter("polyseq_requests", "Requests answered", ["endpoint", "status"],
                                registry=self.registry)

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model).set_function(lambda: float(depth()))

    def record_batch(self, model: str, stats: BatchStats) -> None:
        self.batch_items.labels(model).observe(stats.items)
        self.batch_seconds.labels(model).observe(stats.seconds)
        self.tokens.labels(model).inc(stats.generated_tokens)
        self.tokens_per_second.labels(model).set(stats.generated_tokens / max(stats.seconds, 1e-9))

    def render(self) -> bytes:
        return generate_latest(self.registry)
