"""The server in-process: httpx against the ASGI app, its lifespan included (models load, batchers
start, and on the way out finish their work)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from polyseq.config import ServeConfig
from polyseq.serve.app import create_app


def make_app(model_dir: Path, **settings: Any) -> FastAPI:
    return create_app(ServeConfig(**settings), [model_dir])


def client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of a started app, calling from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://polyseq.test")


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), client(app) as started:
        yield started
