"""docs/serve.md's examples run: its curl requests against the app, its TOML through the loaders."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import Path

from conftest import make_app, running
from polyseq.config import load_serve_config
from polyseq.serve.limits import KeyLimits, load_keys

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "serve.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)


def curl_requests() -> list[tuple[str, dict[str, object] | None, dict[str, str] | None]]:
    """(path, JSON body, form fields) of each curl command in the guide."""
    found = []
    for block in blocks("bash"):
        for command in re.split(r"\n(?=curl )", block.replace("\\\n", " ")):
            if not command.startswith("curl "):
                continue
            words = shlex.split(command.split("\n#")[0], comments=True)
            path = "/" + words[2].split("/", 1)[1]
            data = [words[i + 1] for i, word in enumerate(words) if word == "-d"]
            if data and data[0].startswith("{"):
                found.append((path, json.loads(data[0]), None))
            else:
                found.append((path, None, dict(item.split("=", 1) for item in data)))
    return found


def test_the_guides_requests_are_answered(tiny_model_dir: Path) -> None:
    requests = curl_requests()
    assert len(requests) == 3

    async def go() -> list[dict[str, object]]:
        async with running(make_app(tiny_model_dir)) as client:
            answers = []
            for path, body, form in requests:
                sent = client.post(path, json=body) if body is not None else client.post(path, data=form)
                response = await sent
                assert response.status_code == 200, response.text
                answers.append(response.json())
            return answers

    plain, form, native = asyncio.run(go())
    assert set(plain) == {"translatedText"}
    assert set(form) == {"translatedText", "detectedLanguage", "alternatives"}
    assert len(form["alternatives"]) == 2
    assert [len(t["candidates"]) for t in native["translations"]] == [3, 3]
    assert all(t["text"].startswith("Ein") for t in native["translations"])


def test_the_guides_settings_and_keys_load(tmp_path: Path) -> None:
    settings, keys = blocks("toml")
    (tmp_path / "serve.toml").write_text(settings, encoding="utf-8")
    config = load_serve_config(tmp_path / "serve.toml")
    assert config.require_api_key and config.threads == 2 and config.file_ttl_s == 600
    (tmp_path / "keys.toml").write_text(keys, encoding="utf-8")
    assert load_keys(tmp_path / "keys.toml", KeyLimits(1, 1)) == {"3f9c2a61e4b7": KeyLimits(600, 1_000_000)}
