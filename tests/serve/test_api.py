"""Every endpoint, LibreTranslate's exact request bodies and response shapes, and clear 400s."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from conftest import make_app, running
from polyseq.translator import Translator


def serve(model_dir: Path, requests: Any, **settings: Any) -> Any:
    """Run `requests(client)` against a started app; returns what it returns."""

    async def go() -> Any:
        async with running(make_app(model_dir, **settings)) as client:
            return await requests(client)

    return asyncio.run(go())


def test_libretranslate_clients_get_libretranslate_shapes(tiny_model_dir: Path) -> None:
    async def requests(client: Any) -> dict[str, Any]:
        # the bodies of LibreTranslate's documentation, with this model's languages
        return {
            "one": await client.post("/translate", json={"q": "Hello!", "source": "en", "target": "de"}),
            "auto": await client.post("/translate", json={"q": "Ciao!", "source": "auto", "target": "num"}),
            "list": await client.post("/translate", json={"q": ["Hello", "world"], "source": "en",
                                                          "target": "de"}),
            "alternatives": await client.post("/translate", json={
                "q": "Hello", "source": "en", "target": "de", "format": "text", "alternatives": 3}),
            "form": await client.post("/translate", data={"q": "twelve", "source": "en", "target": "num"}),
            "detect": await client.post("/detect", json={"q": "Hello world!"}),
            "languages": await client.get("/languages"),
            "settings": await client.get("/frontend/settings"),
        }

    got = serve(tiny_model_dir, requests)
    assert all(response.status_code == 200 for response in got.values()), {k: r.text for k, r in got.items()}
    one = got["one"].json()
    assert set(one) == {"translatedText"} and isinstance(one["translatedText"], str) and one["translatedText"]
    auto = got["auto"].json()
    assert set(auto) == {"translatedText", "detectedLanguage"}
    assert set(auto["detectedLanguage"]) == {"confidence", "language"}
    detected = auto["detectedLanguage"]
    assert detected["language"] in ("en", "de") and 0 <= detected["confidence"] <= 100
    listed = got["list"].json()["translatedText"]
    assert isinstance(listed, list) and len(listed) == 2 and all(listed)
    alternatives = got["alternatives"].json()
    assert isinstance(alternatives["translatedText"], str) and len(alternatives["alternatives"]) == 3
    assert alternatives["translatedText"] not in alternatives["alternatives"]
    assert got["form"].json()["translatedText"]
    detect = got["detect"].json()
    assert detect[0]["language"] == "en" and detect[0]["confidence"] > 50
    languages = {entry["code"]: entry for entry in got["languages"].json()}
    assert set(languages) == {"num", "en", "de"} and languages["en"]["name"] == "English"
    assert sorted(languages["en"]["targets"]) == ["de", "en", "num"]  # and itself, as LibreTranslate lists it
    settings = got["settings"].json()
    assert settings["charLimit"] == 5000 and settings["keyRequired"] is False and ".po" in settings[
        "supportedFilesFormat"]


def test_a_mixed_language_list_gets_one_detection_per_item(tiny_model_dir: Path) -> None:
    texts = ["two hundred and five", "dreihundertzwölf", "one thousand and one", "siebenundzwanzig"]

    async def requests(client: Any) -> Any:
        return await client.post("/translate", json={"q": texts, "source": "auto", "target": "num"})

    body = serve(tiny_model_dir, requests).json()
    assert [d["language"] for d in body["detectedLanguage"]] == ["en", "de", "en", "de"]
    assert len(body["translatedText"]) == 4


def test_what_libretranslate_clients_send_beyond_its_documentation(tiny_model_dir: Path) -> None:
    """deep-translator's query-string fields, codes as clients spell them, text already in the
    target language, lists within the per-text limit, browsers' CORS, /detect over a list."""
    english = "two hundred and five"

    async def requests(client: Any) -> dict[str, Any]:
        post, en_en = client.post, {"source": "en", "target": "en"}
        return {
            "query": await post("/translate", params={"q": "twelve", "source": "en", "target": "num"}),
            "spelled": await post("/translate", json={"q": "12", "source": "NUM", "target": "en-US"}),
            "auto_same": await post("/translate", json={"q": english, "source": "auto", "target": "en"}),
            "same": await post("/translate", json={"q": [english, "x"], **en_en}),
            "native_same": await post("/v1/translate", json={"q": english, **en_en}),
            "within": await post("/translate", json={"q": ["twelve thousand"] * 2, "source": "en",
                                                     "target": "num"}),
            "negative": await post("/translate", json={"q": "12", "source": "num", "target": "en",
                                                       "alternatives": -1}),
            "preflight": await client.options("/translate", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type"}),
            "cross": await post("/translate", json={"q": "12", "source": "num", "target": "en"},
                                headers={"Origin": "https://app.example"}),
            "detect": await post("/detect", json={"q": [english, "one thousand and one", "zwölf"]}),
            "suggest": await post("/suggest", json={"q": "a", "s": "b", "source": "en", "target": "de"}),
        }

    got = serve(tiny_model_dir, requests, char_limit=25)
    assert got["query"].status_code == 200 and got["query"].json()["translatedText"]
    assert got["spelled"].status_code == 200
    auto_same = got["auto_same"].json()
    assert auto_same == {"translatedText": english, "detectedLanguage": auto_same["detectedLanguage"]}
    assert auto_same["detectedLanguage"]["language"] == "en"
    assert got["same"].json() == {"translatedText": [english, "x"]}
    assert got["native_same"].json()["translations"] == [{"text": english, "source": "en", "candidates": []}]
    assert got["within"].status_code == 200  # 30 characters in all, each text within the 25
    assert got["negative"].status_code == 200 and "alternatives" not in got["negative"].json()
    preflight = got["preflight"]
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    assert got["cross"].headers["access-control-allow-origin"] == "*"
    detect = got["detect"].json()  # one ranking for the whole list
    assert isinstance(detect, list) and detect[0]["language"] == "en"
    assert all(set(entry) == {"confidence", "language"} for entry in detect)
    assert got["suggest"].status_code == 403 and "disabled" in got["suggest"].json()["error"]


def test_html_goes_through_the_html_format(tiny_model_dir: Path) -> None:
    html = '<p>twelve <a href="https://example.com/a?b=1">five</a> <code>x = 1</code></p>'

    async def requests(client: Any) -> Any:
        return await client.post("/translate", json={"q": html, "source": "en", "target": "num",
                                                     "format": "html"})

    text = serve(tiny_model_dir, requests).json()["translatedText"]
    assert text.startswith("<p>") and text.endswith("</p>")
    assert '<a href="https://example.com/a?b=1">' in text and "<code>x = 1</code>" in text


def test_files_are_translated_through_the_documents_api_and_expire(tiny_model_dir: Path) -> None:
    markdown = b"# twelve\n\nRun `make test` and see https://example.com.\n\n```bash\nls -la\n```\n"

    async def requests(client: Any) -> Any:
        upload = await client.post("/translate_file", files={"file": ("notes.md", io.BytesIO(markdown))},
                                   data={"source": "en", "target": "de"})
        url = upload.json()["translatedFileUrl"]
        download = await client.get(url.removeprefix("http://polyseq.test"))
        po = await client.post("/translate_file", files={"file": ("bad.po", b'msgid "a"\nmsgstr "b\n')},
                               data={"source": "en", "target": "de"})
        binary = await client.post("/translate_file", files={"file": ("x.txt", b"\xff\xfe\x00")},
                                   data={"source": "en", "target": "de"})
        kind = await client.post("/translate_file", files={"file": ("x.exe", b"MZ")},
                                 data={"source": "en", "target": "de"})
        same = await client.post("/translate_file", files={"file": ("same.md", io.BytesIO(markdown))},
                                 data={"source": "auto", "target": "en"})
        unchanged = await client.get(same.json()["translatedFileUrl"].removeprefix("http://polyseq.test"))
        await asyncio.sleep(1.1)
        expired = await client.get(url.removeprefix("http://polyseq.test"))
        escape = await client.get("/download_file/..%2F..%2Fetc%2Fpasswd")
        return upload, download, po, binary, kind, unchanged, expired, escape

    upload, download, po, binary, kind, unchanged, expired, escape = serve(tiny_model_dir, requests,
                                                                           file_ttl_s=1.0)
    assert upload.status_code == 200 and upload.json()["translatedFileUrl"].startswith(
        "http://polyseq.test/download_file/")
    text = download.text
    assert download.status_code == 200 and "`make test`" in text and "https://example.com" in text
    assert "```bash\nls -la\n```" in text and text.startswith("# ")
    assert 'filename="notes.md"' in download.headers["content-disposition"]  # the name it came with
    assert unchanged.content == markdown  # detected as English, the target: returned as it is
    assert po.status_code == 400 and "not a valid .po catalog" in po.json()["error"]
    assert binary.status_code == 400 and "not UTF-8" in binary.json()["error"]
    assert kind.status_code == 400 and "file format not supported" in kind.json()["error"]
    assert expired.status_code == 404 and escape.status_code in (404, 400)


def test_the_native_api_takes_strategies_n_best_and_a_prefix(tiny_model_dir: Path) -> None:
    async def requests(client: Any) -> Any:
        beam = await client.post("/v1/translate", json={"q": ["12", "300"], "source": "num", "target": "en",
                                                        "strategy": "beam", "n_best": 3,
                                                        "settings": {"beam_size": 4}})
        greedy = await client.post("/v1/translate", json={"q": "12", "source": "num", "target": "en",
                                                          "strategy": "greedy"})
        lossless = await client.post("/v1/translate", json={"q": "12", "source": "num", "target": "en",
                                                            "strategy": "aggressive"})
        prefixed = await client.post("/v1/translate", json={"q": "12", "source": "num", "target": "en",
                                                            "strategy": "greedy", "prefix": "nine"})
        bad = await client.post("/v1/translate", json={"q": "12", "source": "num", "target": "en",
                                                       "strategy": "beam", "settings": {"beam_sise": 2}})
        return beam, greedy, lossless, prefixed, bad

    beam, greedy, lossless, prefixed, bad = serve(tiny_model_dir, requests)
    translations = beam.json()["translations"]
    assert len(translations) == 2 and all(len(t["candidates"]) == 3 for t in translations)
    scores = [c["score"] for c in translations[0]["candidates"]]
    assert scores == sorted(scores, reverse=True) and beam.json()["stats"]["output_tokens"] > 0
    assert lossless.json()["translations"][0]["text"] == greedy.json()["translations"][0]["text"]
    assert prefixed.json()["translations"][0]["text"].startswith("nine")
    assert bad.status_code == 400 and "did you mean 'beam_size'" in bad.json()["error"]


@pytest.mark.parametrize(("body", "message"), [
    ({"source": "en", "target": "de"}, "missing q parameter"),
    ({"q": "", "source": "en", "target": "de"}, "missing q parameter"),
    ({"q": "x", "target": "de"}, "missing source parameter"),
    ({"q": "x", "source": "xx", "target": "de"}, "xx is not supported"),
    ({"q": "x", "source": "en", "target": "de", "format": "pdf"}, "pdf format is not supported"),
    ({"q": "x", "source": "en", "target": "de", "alternatives": 9}, "alternatives must be from 0 to 5"),
    ({"q": ["x"] * 129, "source": "en", "target": "de"}, "request (129) exceeds text limit (128)"),
    ({"q": "x" * 5001, "source": "en", "target": "de"}, "q (5001 characters) exceeds the character limit"),
    ({"q": ["x", "x" * 5001], "source": "en", "target": "de"}, "q[1] (5001 characters) exceeds the"),
    ({"q": "x", "source": "en", "target": "zz-ZZ"}, "zz-ZZ is not supported"),
    ({"q": [1, 2], "source": "en", "target": "de"}, "q must be a string or a list of strings"),
])
def test_bad_requests_get_a_clear_400(tiny_model_dir: Path, body: dict[str, Any], message: str) -> None:
    async def requests(client: Any) -> Any:
        bad = await client.post("/translate", json=body)
        good = await client.post("/translate", json={"q": "12", "source": "num", "target": "en"})
        return bad, good

    bad, good = serve(tiny_model_dir, requests)
    assert bad.status_code == 400 and message in bad.json()["error"], bad.text
    assert good.status_code == 200  # nothing else broke


def test_invalid_json_and_oversized_bodies(tiny_model_dir: Path) -> None:
    async def requests(client: Any) -> Any:
        broken = await client.post("/translate", content=b'{"q": ',
                                   headers={"content-type": "application/json"})
        array = await client.post("/translate", json=["q"])
        big = await client.post("/translate", json={"q": "x" * 3000, "source": "en", "target": "de"})
        return broken, array, big

    broken, array, big = serve(tiny_model_dir, requests, max_request_bytes=2000)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    assert array.status_code == 400 and "must be a JSON object" in array.json()["error"]
    assert big.status_code == 400 and "at most 2000 are taken" in big.json()["error"]


def test_health_readiness_metrics_and_the_page(tiny_model_dir: Path) -> None:
    async def requests(client: Any) -> Any:
        await client.post("/translate", json={"q": ["12", "13"], "source": "num", "target": "en"})
        return [await client.get(path) for path in ("/health", "/ready", "/metrics", "/")]

    health, ready, metrics, page = serve(tiny_model_dir, requests)
    assert health.json() == {"status": "ok"} and ready.json()["status"] == "ready"
    text = metrics.text
    for name in ("polyseq_queue_items", "polyseq_batch_items_count", "polyseq_request_seconds_bucket",
                 "polyseq_generated_tokens_total", "polyseq_tokens_per_second"):
        assert name in text, name
    assert 'polyseq_requests_total{endpoint="/translate",status="200"} 1.0' in text
    assert page.status_code == 200 and 'id="translate"' in page.text


def test_requests_cannot_reach_the_servers_files_or_its_memory(tiny_model_dir: Path) -> None:
    async def chunks(size: int):  # a body without Content-Length
        yield b'{"q": "' + b"x" * size + b'", "source": "en", "target": "de"}'

    async def requests(client: Any) -> Any:
        native = {"q": "12", "source": "num", "target": "en"}
        return [
            await client.post("/v1/translate", json={**native, "strategy": "speculative",
                                                     "settings": {"draft": "model", "draft_model": "/etc"}}),
            await client.post("/v1/translate", json={**native, "strategy": "beam",
                                                     "settings": {"beam_size": 100000}}),
            await client.post("/v1/translate", json={**native, "settings": {"prefix": "x"}}),
            await client.post("/translate", content=b'{"q": "\\ud800", "source": "en", "target": "de"}',
                              headers={"content-type": "application/json"}),
            await client.post("/translate", content=chunks(5000),
                              headers={"content-type": "application/json"}),
            await client.post("/translate", json={"q": "<p>a\x00b</p>", "source": "en", "target": "de",
                                                  "format": "html"}),
            await client.get("/no/such/page"),
            await client.post("/translate", json={"q": "12", "source": "num", "target": "en"}),
        ]

    draft, beam, setting, surrogate, chunked, nul, missing, fine = serve(tiny_model_dir, requests,
                                                                          max_request_bytes=2000)
    assert draft.status_code == 400 and "draft_model cannot come from a request" in draft.json()["error"]
    assert beam.status_code == 400 and "beam_size must be from 1 to 16" in beam.json()["error"]
    assert setting.status_code == 400 and "has no setting 'prefix'" in setting.json()["error"]
    assert surrogate.status_code == 400 and "q is not valid Unicode" in surrogate.json()["error"]
    assert chunked.status_code == 400 and "more than 2000 bytes" in chunked.json()["error"]
    assert nul.status_code == 400 and "NUL" in nul.json()["error"]
    assert missing.status_code == 404 and "error" in missing.json()
    assert fine.status_code == 200


def test_an_item_that_fails_fails_alone_and_the_worker_lives_on(tiny_model_dir: Path) -> None:
    from polyseq.serve.batcher import Batcher, Job
    from polyseq.translator import Translator

    batcher = Batcher("tiny", Translator.load(tiny_model_dir), max_wait_ms=200)
    batcher.start()

    async def go() -> list[Any]:
        job = Job.of("num", "en", "greedy", {})
        return list(await asyncio.gather(batcher.submit(["12"], job), batcher.submit(["\ud800"], job),
                                         batcher.submit(["13"], job), return_exceptions=True))

    good, bad, other = asyncio.run(go())
    assert good[0][0].text and other[0][0].text and isinstance(bad, Exception)
    assert asyncio.run(go())[0][0][0].text == good[0][0].text and batcher.depth == 0
    batcher.close()
    batcher.join(10)


def test_ill_typed_settings_are_a_400_that_names_the_setting(tiny_model_dir: Path) -> None:
    cases = [({"max_len_b": "x"}, "setting max_len_b"), ({"processing": "x"}, "setting processing"),
             ({"max_length": 5}, "setting max_length"), ({"min_length": "x"}, "setting min_length"),
             ({"max_len_b": -3}, "max_len_b an integer >= 1")]

    async def requests(client: Any) -> Any:
        native = {"q": "12", "source": "num", "target": "en", "strategy": "greedy"}
        answers = [await client.post("/v1/translate", json={**native, "settings": settings})
                   for settings, _ in cases]
        seed = await client.post("/v1/translate", json={**native, "strategy": "sampling",
                                                        "settings": {"seed": "x"}})
        return [*answers, seed]

    answers = serve(tiny_model_dir, requests)
    for answer, message in zip(answers, [m for _, m in cases] + ["setting seed"], strict=True):
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_a_text_too_long_for_the_model_comes_back_whole(tiny_model_dir: Path) -> None:
    text = ". ".join(["two hundred and five", "one thousand and one", "twelve", "seventy seven"] * 4) + "."

    async def requests(client: Any) -> Any:
        return [(await client.post(path, json={"q": text, "source": "en", "target": "num"})).json()
                for path in ("/translate", "/v1/translate")]

    libre, native = serve(tiny_model_dir, requests, strategy="greedy")
    translator = Translator.load(tiny_model_dir)
    whole = translator.translate_detailed([text], "en", "num", "greedy")
    assert whole.split_texts == 1
    assert libre["translatedText"] == whole.texts[0]
    assert native["translations"][0]["text"] == whole.texts[0]
    tokens = len(whole.candidates[0][0].hypothesis.tokens)
    assert native["translations"][0]["candidates"][0]["tokens"] == tokens


def test_a_direction_with_a_glossary_gets_its_terms_in_text_and_html(tiny_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    terms = tmp_path / "en-de.tsv"
    terms.write_text("pull request\tPull-Request\nGitHub\n", encoding="utf-8")

    async def requests(client: Any) -> list[Any]:
        return [await client.post("/translate", json={"q": ["Open a pull request on GitHub.", "twelve"],
                                                      "source": "en", "target": "de"}),
                await client.post("/translate", json={"q": "<p>A <b>pull request</b> on GitHub</p>",
                                                      "source": "en", "target": "de", "format": "html"}),
                await client.post("/translate", json={"q": "a pull request", "source": "en",
                                                      "target": "num"})]

    text, html, other = serve(tiny_model_dir, requests, glossaries={"en-de": str(terms)})
    assert text.status_code == html.status_code == other.status_code == 200
    first, second = text.json()["translatedText"]
    assert "Pull-Request" in first and "GitHub" in first and "Pull-Request" not in second
    page = html.json()["translatedText"]
    assert "<b>Pull-Request</b>" in page and "GitHub" in page
    assert "Pull-Request" not in other.json()["translatedText"]  # en-num has no glossary


def test_a_glossary_for_a_direction_no_model_serves_stops_the_start(tiny_model_dir: Path,
                                                                    tmp_path: Path) -> None:
    from polyseq.config import ConfigError

    terms = tmp_path / "terms.tsv"
    terms.write_text("pull request\tPull-Request\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="serve.glossaries: no model serves en-fr"):
        serve(tiny_model_dir, lambda client: client.get("/languages"), glossaries={"en-fr": str(terms)})
    with pytest.raises(ConfigError, match="must be a direction"):
        serve(tiny_model_dir, lambda client: client.get("/languages"), glossaries={"ende": str(terms)})


def test_a_request_brings_its_own_glossary_over_the_servers(tiny_model_dir: Path, tmp_path: Path) -> None:
    terms = tmp_path / "en-de.tsv"
    terms.write_text("pull request\tPull-Request\nGitHub\n", encoding="utf-8")

    async def requests(client: Any) -> list[Any]:
        own = {"pull request": "Zusammenführungsanfrage", "issue": "Ticket"}
        return [await client.post("/translate", json={"q": "Open a pull request and an issue on GitHub.",
                                                      "source": "en", "target": "de", "glossary": own}),
                await client.post("/translate", data={"q": "an issue", "source": "en", "target": "num",
                                                      "glossary": '{"issue": "Ticket"}'}),
                await client.post("/translate_file", files={"file": ("a.md", b"# An issue\n")},
                                  data={"source": "en", "target": "de", "glossary": '{"issue": "Ticket"}'}),
                await client.post("/translate", json={"q": "x", "source": "en", "target": "de",
                                                      "glossary": {"a": ""}}),
                await client.post("/translate", json={"q": "x", "source": "en", "target": "de",
                                                      "glossary": ["a"]}),
                await client.post("/translate", json={"q": "x", "source": "en", "target": "de",
                                                      "glossary": {str(n): "y" for n in range(3)}})]

    own, form, file, empty, listed, many = serve(tiny_model_dir, requests, glossaries={"en-de": str(terms)},
                                                 max_glossary_terms=2)
    assert own.status_code == form.status_code == file.status_code == 200, own.text
    text = own.json()["translatedText"]
    assert "Zusammenführungsanfrage" in text and "Ticket" in text and "GitHub" in text  # both glossaries
    assert "Pull-Request" not in text and "Ticket" in form.json()["translatedText"]
    assert "an empty term" in empty.json()["error"] and "must be a JSON object" in listed.json()["error"]
    assert "more than serve.max_glossary_terms (2)" in many.json()["error"]
    assert empty.status_code == listed.status_code == many.status_code == 400
