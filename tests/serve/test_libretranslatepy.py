"""LibreTranslate's Python client (libretranslatepy) against a real `polyseq serve`: it sends form
fields (`q`, `source`, `target`, `api_key`) to /translate and /detect, a GET with a form body to
/languages, and raises urllib's HTTPError, whose body must be the server's {"error": message}."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from libretranslatepy import LibreTranslateAPI
from test_process import fetch, start_serve

KEY, SMALL_KEY = "ltclient-test-key", "ltclient-small-key"


@pytest.fixture(scope="module")
def servers(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two servers of the tiny model: one open with a 40-character limit, one that needs a key."""
    keys = tmp_path_factory.mktemp("ltclient") / "keys.toml"
    keys.write_text(f"[keys.{KEY}]\n[keys.{SMALL_KEY}]\nchars_per_minute = 20\n", encoding="utf-8")
    greedy = (str(tiny_model_dir), "--set", "serve.strategy=greedy")
    started = [start_serve(*greedy, "--set", "serve.char_limit=40"),
               start_serve(*greedy, "--set", f"serve.api_keys_file={keys}",
                           "--set", "serve.require_api_key=true")]
    yield started[0][0], started[1][0]
    for _, process in started:
        assert process.poll() is None, "the server died"
        process.kill()
        process.wait(timeout=30)


def refusal(call: Any, *args: Any) -> tuple[int, str]:
    """The status and the server's message of a call that libretranslatepy raises for."""
    with pytest.raises(urllib.error.HTTPError) as raised:
        call(*args)
    body = json.loads(raised.value.read())
    assert raised.value.headers["Content-Type"] == "application/json" and set(body) == {"error"}
    return raised.value.code, body["error"]


def test_every_call_of_the_client(servers: tuple[str, str]) -> None:
    base, _ = servers
    lt = LibreTranslateAPI(base)  # no trailing slash: the client adds it

    def as_json(q: str, source: str, target: str) -> object:
        return fetch(f"{base}/translate", {"q": q, "source": source, "target": target})[1]["translatedText"]

    translated = lt.translate("two hundred and five", "en", "num")
    assert isinstance(translated, str) and translated
    assert translated == as_json("two hundred and five", "en", "num")  # the form reads as JSON does
    assert lt.translate("dreihundertzwölf", "de", "num") == as_json("dreihundertzwölf", "de", "num")
    assert lt.translate("two hundred and five", "auto", "num") == translated  # detected as English
    # form encoding ("+" for a space, %2B, %26) comes back exactly: text in its target language
    assert lt.translate("a + b & c = 50% ä", "en", "en") == "a + b & c = 50% ä"
    detected = lt.detect("one thousand and one")
    assert isinstance(detected, list) and detected[0]["language"] == "en"
    assert all(set(d) == {"confidence", "language"} and 0 <= d["confidence"] <= 100 for d in detected)
    languages = {entry["code"]: entry for entry in lt.languages()}
    assert set(languages) == {"num", "en", "de"} and languages["de"]["name"] == "German"
    # before 2.1.3 it POSTed to /languages (LibreTranslate answers 405 since 2022): polyseq answers
    with urllib.request.urlopen(urllib.request.Request(f"{base}/languages", data=b""), timeout=30) as old:
        assert json.loads(old.read()) == lt.languages()


def test_refusals_reach_the_client_as_the_servers_message(servers: tuple[str, str]) -> None:
    base, _ = servers
    lt = LibreTranslateAPI(base + "/")
    assert refusal(lt.translate, "12", "num", "xx") == (400, "xx is not supported")
    assert refusal(lt.translate, "12", "xx", "en") == (400, "xx is not supported")
    status, message = refusal(lt.translate, "x" * 41, "en", "num")
    assert status == 400 and "exceeds the character limit (40)" in message
    status, message = refusal(lt.detect, "x" * 41)
    assert status == 400 and "exceeds the character limit (40)" in message
    assert refusal(lt.detect, "") == (400, "Invalid request: missing q parameter")
    assert lt.translate("12", "num", "en")  # and the server still answers


def test_a_server_that_needs_a_key(servers: tuple[str, str]) -> None:
    _, base = servers
    keyed, anonymous = LibreTranslateAPI(base, KEY), LibreTranslateAPI(base)
    for call, args in ((anonymous.translate, ("12", "num", "en")), (anonymous.detect, ("twelve",))):
        status, message = refusal(call, *args)
        assert status == 400 and "needs an API key" in message
    unknown = LibreTranslateAPI(base, "not-a-key-of-this-server")
    assert refusal(unknown.translate, "12", "num", "en") == (403, "Invalid API key")
    assert refusal(unknown.detect, "twelve") == (403, "Invalid API key")
    assert keyed.translate("12", "num", "en")
    assert keyed.translate("zwölf", "auto", "num") == keyed.translate("zwölf", "de", "num")
    assert keyed.detect("siebenundzwanzig")[0]["language"] == "de"
    # /languages needs no key on LibreTranslate either; the client sends its key in a GET's body
    assert keyed.languages() == anonymous.languages() and len(keyed.languages()) == 3
    status, message = refusal(LibreTranslateAPI(base, SMALL_KEY).translate, "x" * 30, "en", "num")
    assert status == 429 and message.startswith("Too many characters: 30 in one request, 20 allowed")
