"""Several models behind one server: each direction goes to the model that serves it, and
`source=auto` detects among the languages every model translates into the target."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

from conftest import running
from polyseq.config import ServeConfig
from polyseq.model.checkpoint import load_metadata, load_model, save_model_files
from polyseq.serve.app import create_app
from polyseq.text.tokenizer import Tokenizer
from polyseq.translator import Translator

FRENCH = "Bonjour tout le monde, comment allez-vous aujourd'hui ? Il fait très beau ce matin."
GERMAN = "Guten Morgen, wie geht es Ihnen heute? Das Wetter ist sehr schön."


def french_model(tiny_model_dir: Path, target: Path) -> Path:
    """A second model, of fr and en: the tiny model's weights under a tokenizer of those languages
    (what it answers does not matter, only that it is this model answering)."""
    shutil.copytree(tiny_model_dir, target)
    texts = [f"{word} {n}" for n in range(300) for word in ("bonjour", "monde", "hello", "world")]
    vocab_size = Tokenizer.load(tiny_model_dir).vocab_size
    Tokenizer.train(texts, target, vocab_size=vocab_size, languages=("fr", "en"))
    save_model_files(target, load_model(tiny_model_dir), load_metadata(tiny_model_dir))
    return target


def test_auto_routes_each_text_to_the_model_of_its_detected_language(tiny_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    french = french_model(tiny_model_dir, tmp_path / "fr-en")
    app = create_app(ServeConfig(strategy="greedy"), [tiny_model_dir, french])

    async def requests() -> dict[str, Any]:
        async with running(app) as client:
            return {
                "languages": (await client.get("/languages")).json(),
                "one": (await client.post("/translate", json={"q": FRENCH, "source": "auto",
                                                              "target": "en"})).json(),
                "list": (await client.post("/translate", json={"q": [GERMAN, FRENCH], "source": "auto",
                                                               "target": "en"})).json(),
                "fr-de": await client.post("/translate", json={"q": FRENCH, "source": "fr", "target": "de"}),
            }

    got = asyncio.run(requests())
    targets = {entry["code"]: sorted(entry["targets"]) for entry in got["languages"]}
    assert targets["fr"] == ["en", "fr"] and targets["de"] == ["de", "en", "num"]
    assert targets["en"] == ["de", "en", "fr", "num"]  # both models translate from English
    from_french = Translator.load(french).translate([FRENCH], "fr", "en", "greedy")[0]
    from_german = Translator.load(tiny_model_dir).translate([GERMAN], "de", "en", "greedy")[0]
    assert from_french != from_german
    assert got["one"] == {"translatedText": from_french,
                          "detectedLanguage": {"language": "fr",
                                               "confidence": got["one"]["detectedLanguage"]["confidence"]}}
    assert got["list"]["translatedText"] == [from_german, from_french]
    assert [d["language"] for d in got["list"]["detectedLanguage"]] == ["de", "fr"]
    refused = got["fr-de"]
    assert refused.status_code == 400
    assert "German (de) is not available as a target language from French (fr)" in refused.json()["error"]


def test_a_direction_goes_to_the_model_trained_on_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Two models that know the same languages (an en-de and a de-en model both know en and de):
    each direction goes to the model whose training held it, whatever their order; one that
    neither trained goes to the first (zero-shot)."""
    other = tmp_path / "en-num"  # the tiny model's weights, as if trained on en -> num alone
    shutil.copytree(tiny_model_dir, other)
    metadata = json.loads((other / "metadata.json").read_text(encoding="utf-8"))
    assert "en-num" not in metadata["directions"] and "num-en" in metadata["directions"]
    (other / "metadata.json").write_text(json.dumps({**metadata, "directions": ["en-num"]}), encoding="utf-8")

    def generated(text: str) -> dict[str, float]:
        found = re.findall(r'polyseq_generated_tokens_total\{model="([^"]+)"\} (\S+)', text)
        return {model: float(count) for model, count in found}

    async def go() -> list[dict[str, float]]:
        app = create_app(ServeConfig(strategy="greedy"), [tiny_model_dir, other])
        seen = []
        async with running(app) as client:
            for source, target in (("en", "num"), ("num", "en"), ("de", "num")):
                response = await client.post("/translate", json={"q": "twelve", "source": source,
                                                                 "target": target})
                assert response.status_code == 200, response.text
                seen.append(generated((await client.get("/metrics")).text))
        return seen

    after_en_num, after_num_en, after_de_num = asyncio.run(go())
    assert after_en_num.get("en-num", 0) > 0 and after_en_num.get("best", 0) == 0
    assert after_num_en["best"] > 0 and after_num_en["en-num"] == after_en_num["en-num"]
    assert after_de_num["best"] > after_num_en["best"] and after_de_num["en-num"] == after_en_num["en-num"]
