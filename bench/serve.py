"""Benchmark: `polyseq serve` under load, with dynamic batching and without (one item per model call,
as LibreTranslate decodes), in one run, against a real uvicorn process on loopback.

    python bench/serve.py --model MODEL --src en --tgt de --result bench/results/serve.json

For 1, 4, 16 and 64 concurrent clients, each sending single sentences and then 20-item lists as
fast as it is answered: sentences/s and the p50/p95/p99 latency of a request. Then an overload
phase on a fresh batching server: requests at twice the measured capacity for 30 seconds, open
loop (sent on schedule whether or not earlier ones were answered): how many got 429, how many any
other error, how many were lost (no answer at all), and the server's peak memory before and after.
Every phase is bounded in time and in count and sends only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k" / "test_2016_flickr.en"
MAX_REQUESTS = 5000  # per phase, whatever the time


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A `polyseq serve` process on loopback."""

    def __init__(self, model: str, settings: dict[str, Any]):
        self.port = free_port()
        options = [item for key, value in settings.items() for item in ("--set", f"serve.{key}={value}")]
        # the server's messages, for when it fails to start; open while it runs, closed by stop()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "polyseq", "serve", model, "--port",
                                         str(self.port), *options], stderr=self.log)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:  # a bad model or setting: say why now, not in 120 s
                self.log.seek(0)
                message = self.log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
                raise SystemExit(f"polyseq serve {model} exited ({self.process.returncode}) before it "
                                 "was ready:\n" + "\n".join(message))
            try:
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("the server did not get ready in 120 s")

    def memory_mb(self) -> dict[str, float]:
        """Resident memory now and at its peak (VmRSS, VmHWM)."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.process.pid}/status").read_text()
                      .splitlines() if ":" in line)
        return {name: int(fields[key].split()[0]) / 1024
                for name, key in (("rss", "VmRSS"), ("peak", "VmHWM"))}

    def mean_batch_seconds(self) -> float:
        text = httpx.get(f"{self.base}/metrics", timeout=10).text
        values = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("polyseq_batch_seconds_")}
        return values["polyseq_batch_seconds_sum"] / max(values["polyseq_batch_seconds_count"], 1.0)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


async def closed_loop(base: str, body: dict[str, Any], texts: list[str], clients: int, items: int,
                      seconds: float) -> dict[str, Any]:
    """`clients` clients, each sending its next request when the last is answered."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent = 0
    deadline = time.monotonic() + seconds

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < deadline and sent < MAX_REQUESTS:
            start_index = (sent * items) % len(texts)
            sent += 1
            q = texts[start_index] if items == 1 else (texts * 2)[start_index : start_index + items]
            begin = time.monotonic()
            response = await http.post(f"{base}/translate", json={**body, "q": q})
            latencies.append(time.monotonic() - begin)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1

    start = time.monotonic()
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(number, http) for number in range(clients)))
    elapsed = time.monotonic() - start
    answered = statuses.get("200", 0)
    return {"clients": clients, "items_per_request": items, "requests": len(latencies),
            "statuses": statuses, "seconds": round(elapsed, 2),
            "sentences_per_s": round(answered * items / elapsed, 2), **percentiles(latencies)}


def percentiles(latencies: list[float]) -> dict[str, float]:
    if len(latencies) < 2:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": round(1000 * cuts[49], 1), "p95_ms": round(1000 * cuts[94], 1),
            "p99_ms": round(1000 * cuts[98], 1)}


async def open_loop(base: str, body: dict[str, Any], texts: list[str], rate: float, seconds: float
                    ) -> dict[str, Any]:
    """Single-sentence requests at `rate` per second for `seconds`, whatever the answers."""
    outcomes: dict[str, int] = {}
    lost: dict[str, int] = {}  # requests without an answer, by the client's exception

    async def one(http: httpx.AsyncClient, text: str) -> None:
        try:
            response = await http.post(f"{base}/translate", json={**body, "q": text})
        except httpx.HTTPError as error:
            lost[type(error).__name__] = lost.get(type(error).__name__, 0) + 1
            return
        key = str(response.status_code)
        if response.status_code == 200 and not response.json().get("translatedText", "x"):
            key = "200-empty"
        outcomes[key] = outcomes.get(key, 0) + 1

    tasks = []
    count = min(int(rate * seconds), MAX_REQUESTS * 4)
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=180, limits=httpx.Limits(max_connections=1024)) as http:
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(http, texts[index % len(texts)])))
        await asyncio.gather(*tasks)
    return {"rate_per_s": round(rate, 1), "sent": count, "outcomes": outcomes, "lost": sum(lost.values()),
            "lost_by_error": lost,
            "other_errors": sum(v for k, v in outcomes.items() if k not in ("200", "429")),
            "seconds": round(time.monotonic() - start, 1)}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (speed, latency) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, style in (("batching", "-"), ("one item per call", "--")):
        for items, marker in ((1, "o"), (20, "s")):
            chosen = [r for r in rows if r["mode"] == mode and r["items_per_request"] == items]
            clients = [r["clients"] for r in chosen]
            label = f"{mode}, {'single sentences' if items == 1 else '20-item lists'}"
            speed.plot(clients, [r["sentences_per_s"] for r in chosen], style, marker=marker, label=label)
            latency.plot(clients, [r["p95_ms"] for r in chosen], style, marker=marker, label=label)
    for axis, title in ((speed, "sentences/s"), (latency, "p95 latency of a request (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    latency.set_yscale("log")
    speed.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def client_counts(text: str) -> list[int]:
    """--clients: comma-separated numbers of concurrent clients, each at least 1."""
    try:
        counts = [int(count) for count in text.split(",") if count]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers >= 1")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--src", default="en")
    parser.add_argument("--tgt", default="de")
    parser.add_argument("--texts", type=Path, default=DATA, help="one sentence per line")
    parser.add_argument("--clients", type=client_counts, default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=20.0, help="per load point")
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="the model worker's torch threads")
    parser.add_argument("--strategy", default="greedy")
    parser.add_argument("--result", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    for path in (args.result, args.plot):  # checked now, not after minutes of load
        if path is not None and not path.parent.is_dir():
            parser.error(f"{path}: the folder {path.parent} does not exist")
    texts = [line for line in args.texts.read_text(encoding="utf-8").splitlines() if line.strip()]
    body = {"source": args.src, "target": args.tgt}
    common = {"strategy": args.strategy, "threads": args.threads, "max_wait_ms": args.max_wait_ms,
              "requests_per_minute": 10**9, "chars_per_minute": 10**12, "request_timeout_s": 120}
    rows: list[dict[str, Any]] = []
    batch_seconds = 0.0
    for mode, batching in (("batching", True), ("one item per call", False)):
        server = Server(args.model, {**common, "batching": batching})
        try:
            for clients in args.clients:
                for items in (1, 20):
                    row = asyncio.run(closed_loop(server.base, body, texts, clients, items, args.seconds))
                    rows.append({"mode": mode, **row})
                    print(json.dumps(rows[-1]), flush=True)
            if batching:
                batch_seconds = server.mean_batch_seconds()
        finally:
            server.stop()
    capacity = max(r["sentences_per_s"] for r in rows
                   if r["mode"] == "batching" and r["items_per_request"] == 1)
    server = Server(args.model, {**common, "queue_items": max(128, int(5 * capacity))})
    try:
        # one request first: what a first decoding allocates once (caches, the native passes'
        # library) is then in `before`, and the growth is the overload's
        httpx.post(f"{server.base}/translate", json={**body, "q": texts[:20]}, timeout=120).raise_for_status()
        before = server.memory_mb()
        overload = asyncio.run(open_loop(server.base, body, texts, 2 * capacity, args.overload_seconds))
        overload["memory_mb"] = {"before": before, "after": server.memory_mb()}
        print(json.dumps(overload), flush=True)
    finally:
        server.stop()
    report = summarize(rows, overload, batch_seconds, args)
    print(json.dumps(report["targets"], indent=2))
    if args.result:
        from polyseq.files import write_json_atomic  # here: polyseq brings torch, which the clients need not

        write_json_atomic(args.result, report)
    if args.plot:
        plot(rows, args.plot)


def summarize(rows: list[dict[str, Any]], overload: dict[str, Any], batch_seconds: float,
              args: argparse.Namespace) -> dict[str, Any]:
    def at(mode: str, clients: int, items: int) -> dict[str, Any]:
        return next(r for r in rows
                    if r["mode"] == mode and r["clients"] == clients and r["items_per_request"] == items)

    counts = {r["clients"] for r in rows}
    clients = max((c for c in counts if c <= 16), default=min(counts))  # 16, or the nearest run
    batched, single = at("batching", clients, 1), at("one item per call", clients, 1)
    bound_ms = args.max_wait_ms + 2000 * batch_seconds
    memory = overload["memory_mb"]
    return {
        "command": "python bench/serve.py " + " ".join(sys.argv[1:]),
        "setup": f"2-core shared CPU; server and clients on one machine; model worker {args.threads} "
                 f"thread(s); strategy {args.strategy}; {len(rows)} load points of {args.seconds:g} s",
        "rows": rows, "overload": overload, "mean_batch_seconds": round(batch_seconds, 4),
        "targets": {
            "clients": clients,
            "throughput_over_one_item_per_call": round(
                batched["sentences_per_s"] / max(single["sentences_per_s"], 1e-9), 2),
            "p95_ms": batched["p95_ms"],
            "p95_bound_ms (max wait + two batch times)": round(bound_ms, 1),
            "overload_other_errors": overload["other_errors"], "overload_lost": overload["lost"],
            "overload_429": overload["outcomes"].get("429", 0),
            "peak_memory_mb_before_after": [round(memory["before"]["peak"]), round(memory["after"]["peak"])],
        },
    }


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
