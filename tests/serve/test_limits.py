"""API keys and rate limits: keys required or not, limits per key and per address, and no way
around them by leaving the key out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conftest import client as other_client
from conftest import make_app, running
from polyseq.config import ConfigError
from polyseq.serve.limits import Limiter

BODY = {"q": "12", "source": "num", "target": "en"}


def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text('[keys.generous-key-1]\nrequests_per_minute = 100\n\n'
                    '[keys.stingy-key-22]\nrequests_per_minute = 2\nchars_per_minute = 50\n',
                    encoding="utf-8")
    return path


def test_required_keys(tiny_model_dir: Path, tmp_path: Path) -> None:
    app = make_app(tiny_model_dir, api_keys_file=str(keys_file(tmp_path)), require_api_key=True)

    async def go() -> list[Any]:
        async with running(app) as client:
            return [await client.post("/translate", json=BODY),
                    await client.post("/translate", json={**BODY, "api_key": "guessed-key"}),
                    await client.post("/translate", json={**BODY, "api_key": "generous-key-1"}),
                    await client.post("/translate", data={**BODY, "api_key": "generous-key-1"}),
                    await client.post("/translate", params={**BODY, "api_key": "generous-key-1"}),
                    await client.post("/detect", json={"q": "hello there"}),
                    await client.get("/frontend/settings")]

    none, guessed, good, form, query, detect, settings = asyncio.run(go())
    assert none.status_code == 400 and "needs an API key" in none.json()["error"]
    assert guessed.status_code == 403 and guessed.json()["error"] == "Invalid API key"
    assert good.status_code == 200 and form.status_code == 200 and query.status_code == 200
    assert detect.status_code == 400
    assert settings.json()["apiKeys"] is True and settings.json()["keyRequired"] is True


def test_limits_per_key_and_per_address_cannot_be_bypassed(tiny_model_dir: Path, tmp_path: Path) -> None:
    app = make_app(tiny_model_dir, api_keys_file=str(keys_file(tmp_path)), requests_per_minute=3)

    async def go() -> dict[str, list[Any]]:
        async with running(app) as client:
            stingy = [await client.post("/translate", json={**BODY, "api_key": "stingy-key-22"})
                      for _ in range(3)]
            anonymous = [await client.post("/translate", json=BODY) for _ in range(4)]
            long = [await client.post("/translate", json={**BODY, "q": "1" * 60, "api_key": "stingy-key-22"})]
            async with other_client(app, "10.9.8.7") as other:  # another address: its own bucket
                elsewhere = [await other.post("/translate", json=BODY)]
        return {"stingy": stingy, "anonymous": anonymous, "long": long, "elsewhere": elsewhere}

    got = asyncio.run(go())
    assert [r.status_code for r in got["stingy"]] == [200, 200, 429]
    assert int(got["stingy"][2].headers["Retry-After"]) >= 1
    # leaving the key out gives the address's limit (3 a minute), not more
    assert [r.status_code for r in got["anonymous"]] == [200, 200, 200, 429]
    assert got["long"][0].status_code == 429 and "60 in one request" in got["long"][0].json()["error"]
    assert got["elsewhere"][0].status_code == 200


def test_a_bad_keys_file_is_a_clear_error(tmp_path: Path) -> None:
    from polyseq.config import ServeConfig

    bad = tmp_path / "bad.toml"
    bad.write_text("[keys.short]\nrequests_per_minute = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="at least 8 characters"):
        Limiter(ServeConfig(api_keys_file=str(bad)))
    with pytest.raises(ConfigError, match="does not exist"):
        Limiter(ServeConfig(api_keys_file=str(tmp_path / "missing.toml")))
    with pytest.raises(ConfigError, match="require_api_key needs serve.api_keys_file"):
        ServeConfig(require_api_key=True)
