"""Concurrent requests are decoded together, each answered with its own result; a full queue
answers 429 and loses nothing it accepted; a request past its timeout gets 503; stopping finishes
what is in flight and refuses what comes after."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from conftest import client as client_of
from conftest import make_app, running
from polyseq.translator import Translator

NUMBERS = [str(n) for n in range(11, 400, 13)]


def count_calls(app: Any, delay: float = 0.0, slow_calls: int | None = None) -> list[int]:
    """Record how many texts each decoding call of the app's model gets; `delay` slows each call,
    or the first `slow_calls` (the real decoding still runs)."""
    sizes: list[int] = []
    server = app.state.server
    original = server.load

    def load() -> None:
        original()
        translator = server.models.served[0].translator
        decode = translator.translate_detailed

        def counted(texts: list[str], *args: Any, **kwargs: Any) -> Any:
            sizes.append(len(texts))
            if slow_calls is None or len(sizes) <= slow_calls:
                time.sleep(delay)
            return decode(texts, *args, **kwargs)

        translator.translate_detailed = counted

    server.load = load
    return sizes


def test_concurrent_requests_share_model_calls_and_keep_their_own_results(tiny_model_dir: Path) -> None:
    expected = Translator.load(tiny_model_dir).translate(NUMBERS, "num", "en", strategy="greedy")
    app = make_app(tiny_model_dir, strategy="greedy", max_wait_ms=200)
    sizes = count_calls(app)

    async def go() -> list[Any]:
        async with running(app) as client:
            requests = [client.post("/translate", json={"q": text, "source": "num", "target": "en"})
                        for text in NUMBERS]
            return list(await asyncio.gather(*requests))

    responses = asyncio.run(go())
    assert [r.json()["translatedText"] for r in responses] == expected
    assert sum(sizes) == len(NUMBERS) and len(sizes) < len(NUMBERS) / 2, sizes


def test_without_batching_each_item_is_a_call_of_its_own(tiny_model_dir: Path) -> None:
    from polyseq.config import ServeConfig
    from polyseq.serve.app import create_app

    app = create_app(ServeConfig(strategy="greedy", max_wait_ms=200, batching=False), [tiny_model_dir])
    sizes = count_calls(app)

    async def go() -> Any:
        async with running(app) as client:
            return await client.post("/translate", json={"q": NUMBERS[:6], "source": "num", "target": "en"})

    assert asyncio.run(go()).status_code == 200 and sizes == [1] * 6


def test_overload_answers_429_and_loses_no_accepted_request(tiny_model_dir: Path) -> None:
    app = make_app(tiny_model_dir, strategy="greedy", queue_items=4, batch_limit=2, max_wait_ms=0)
    count_calls(app, delay=0.05)

    async def go() -> list[Any]:
        async with running(app) as client:
            requests = [client.post("/translate", json={"q": [text, text], "source": "num", "target": "en"})
                        for text in NUMBERS[:20]]
            return list(await asyncio.gather(*requests))

    responses = asyncio.run(go())
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 429} and statuses.count(429) >= 5, statuses
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1 and "busy" in response.json()["error"]
        else:
            assert len(response.json()["translatedText"]) == 2


def test_a_request_past_its_timeout_gets_503_and_the_server_goes_on(tiny_model_dir: Path) -> None:
    app = make_app(tiny_model_dir, strategy="greedy", request_timeout_s=0.2, max_wait_ms=0)
    count_calls(app, delay=0.5, slow_calls=1)

    async def go() -> tuple[Any, Any]:
        async with running(app) as client:
            slow = await client.post("/translate", json={"q": "12", "source": "num", "target": "en"})
            await asyncio.sleep(0.6)  # the worker finishes the abandoned call
            after = await client.post("/translate", json={"q": "13", "source": "num", "target": "en"})
            return slow, after

    slow, after = asyncio.run(go())
    assert slow.status_code == 503 and "waited more than 0.2 s" in slow.json()["error"]
    assert after.status_code == 200


def test_stopping_finishes_requests_in_flight_and_refuses_new_ones(tiny_model_dir: Path) -> None:
    app = make_app(tiny_model_dir, strategy="greedy", max_wait_ms=0)
    count_calls(app, delay=0.3)

    async def go() -> tuple[Any, Any]:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        async with client_of(app) as client:
            flight = asyncio.create_task(client.post("/translate", json={"q": NUMBERS[:3], "source": "num",
                                                                        "target": "en"}))
            await asyncio.sleep(0.1)  # in the worker now
            stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))
            await asyncio.sleep(0.05)
            late = await client.post("/translate", json={"q": "12", "source": "num", "target": "en"})
            done = await flight
            await stopping
            return done, late

    done, late = asyncio.run(go())
    assert done.status_code == 200 and len(done.json()["translatedText"]) == 3
    assert late.status_code == 503 and "shutting down" in late.json()["error"]
