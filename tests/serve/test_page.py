"""The web page against a real `polyseq serve` of two models with different languages, API keys
required and one alternative at most, in a real headless Chromium: it offers only the targets
the chosen source has, asks for the key and sends it, offers the alternatives the server allows,
and shows what comes back as text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_process import fetch, headless_chromium, page_upload, start_serve

from helpers import TINY_MODEL, write_copy_corpus
from polyseq.config import DataConfig, ExperimentConfig, TrainConfig

KEY = "page-test-key-1"


@pytest.fixture(scope="module")
def base(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from polyseq.train.loop import train

    root = tmp_path_factory.mktemp("page")
    spec = write_copy_corpus(root / "data", range(100, 400, 3))
    copier = ExperimentConfig(  # a second model, of two other languages: xx and yy
        model=replace(TINY_MODEL, max_positions=64),
        data=DataConfig(train=spec, languages=("xx", "yy"), directions=("xx-yy",), vocab_size=300,
                        max_tokens=1500, max_length=60, valid_size=10),
        train=TrainConfig(output_dir=str(root / "run"), steps=2, eval_every=2, eval_bleu_sentences=2,
                          progress=False),
    )
    second = train(copier, log=lambda message: None).best_dir
    (root / "keys.toml").write_text(f'[keys.{KEY}]\nrequests_per_minute = 600\n', encoding="utf-8")
    address, process = start_serve(
        str(tiny_model_dir), str(second), "--set", "serve.strategy=greedy",
        "--set", f"serve.api_keys_file={root / 'keys.toml'}", "--set", "serve.require_api_key=true",
        "--set", "serve.alternatives_limit=1")
    yield address
    process.kill()
    process.wait(timeout=30)


def test_the_page_follows_the_servers_languages_keys_and_limits(base: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    browser = headless_chromium()

    def values(element_id: str) -> list[str]:
        return [o.get_attribute("value") for o in Select(browser.find_element(By.ID, element_id)).options]

    def translate() -> None:
        browser.find_element(By.ID, "translate").click()
        wait.until(lambda b: b.find_element(By.ID, "output").text != "…"
                   and b.find_element(By.ID, "translate").is_enabled())

    try:
        browser.get(base + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: len(values("target")) == 5)  # Auto Detect: every target
        assert values("count") == ["0", "1"]
        assert Select(browser.find_element(By.ID, "count")).first_selected_option.text == "1"
        Select(browser.find_element(By.ID, "source")).select_by_value("xx")
        assert values("target") == ["xx", "yy"]  # nothing the server would refuse for xx
        Select(browser.find_element(By.ID, "source")).select_by_value("num")
        assert values("target") == ["de", "en", "num"]
        Select(browser.find_element(By.ID, "target")).select_by_value("en")

        text = browser.find_element(By.ID, "text")
        text.send_keys("12")
        translate()  # no key yet: the server's own message
        assert "needs an API key" in browser.find_element(By.ID, "error").text
        key = browser.find_element(By.ID, "key")
        assert key.is_displayed()
        key.send_keys(KEY)
        translate()
        expected = fetch(f"{base}/translate", {"q": "12", "source": "num", "target": "en",
                                               "alternatives": 1, "api_key": KEY})[1]
        assert browser.find_element(By.ID, "error").text == ""
        assert browser.find_element(By.ID, "output").text == expected["translatedText"]

        # the glossary box: its terms go with the text, and with an uploaded file
        browser.find_element(By.CSS_SELECTOR, "details summary").click()
        terms = browser.find_element(By.ID, "glossary")
        terms.send_keys("12 = a dozen\n\n7")
        translate()
        with_terms = fetch(f"{base}/translate", {"q": "12", "source": "num", "target": "en",
                                                 "alternatives": 1,
                                                 "glossary": {"12": "a dozen", "7": "7"},
                                                 "api_key": KEY})[1]
        assert browser.find_element(By.ID, "error").text == ""
        assert "a dozen" in with_terms["translatedText"]
        assert browser.find_element(By.ID, "output").text == with_terms["translatedText"]
        upload = tmp_path / "numbers.txt"
        upload.write_text("12\n", encoding="utf-8")
        assert "a dozen" in page_upload(browser, wait, upload)
        terms.send_keys("\na = b = c")
        translate()
        assert "Glossary line 4" in browser.find_element(By.ID, "error").text
        terms.clear()

        # text already in its target language comes back as it is, shown as text, not markup
        markup = '<img src="x" onerror="document.title=\'hacked\'"><b>12</b>'
        Select(browser.find_element(By.ID, "target")).select_by_value("num")
        text.clear()
        text.send_keys(markup)
        translate()
        assert browser.find_element(By.ID, "output").text == markup
        assert browser.find_elements(By.CSS_SELECTOR, "#output *") == [] and browser.title == "polyseq"
    finally:
        browser.quit()
