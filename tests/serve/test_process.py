"""The server as users run it: a real uvicorn process started by `polyseq serve`, stopped by
SIGTERM; and its web page in a real headless Chromium (Debian's chromium and chromedriver)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str, body: dict[str, object] | None = None,
          timeout: float = 30) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def metrics(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        return response.read().decode()


def headless_chromium() -> Any:
    """Debian's headless Chromium through its chromedriver (`make browser` installs both)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = shutil.which("chromedriver")
    assert driver, "the web page's test needs Debian's chromium and chromium-driver: `make browser`"
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    return webdriver.Chrome(options=options, service=Service(driver))


def page_upload(browser: Any, wait: Any, path: Path) -> str:
    """`path` translated through the web page's file upload: the downloaded file's text."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "upload").click()
    wait.until(lambda b: b.find_element(By.ID, "download").is_displayed())
    link = browser.find_element(By.ID, "download").get_attribute("href")
    with urllib.request.urlopen(link, timeout=30) as response:
        return response.read().decode()


def start_serve(*args: str) -> tuple[str, subprocess.Popen[str]]:
    """`polyseq serve ARGS` on a free port, once it answers /ready: its address and process."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "polyseq", "serve", *args, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if fetch(f"{base}/ready")[0] == 200:
                return base, process
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the server did not get ready: {process.communicate()[0]}")


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    base, process = start_serve(str(tiny_model_dir), "--set", "serve.strategy=greedy")
    yield base, process
    if process.poll() is None:
        process.kill()


def test_a_real_server_answers(server: tuple[str, subprocess.Popen[str]]) -> None:
    base, process = server
    status, body = fetch(f"{base}/translate", {"q": ["12", "300"], "source": "num", "target": "en"})
    assert status == 200 and len(body["translatedText"]) == 2  # type: ignore[arg-type]
    status, body = fetch(f"{base}/translate", {"q": "12", "source": "num", "target": "xx"})
    assert status == 400 and body == {"error": "xx is not supported"}
    assert fetch(f"{base}/health") == (200, {"status": "ok"})


def test_the_web_page_translates_text_and_files(server: tuple[str, subprocess.Popen[str]],
                                                tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = server
    browser = headless_chromium()
    try:
        browser.get(base + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: len(Select(b.find_element(By.ID, "target")).options) == 3)
        Select(browser.find_element(By.ID, "source")).select_by_value("num")
        Select(browser.find_element(By.ID, "target")).select_by_value("en")
        browser.find_element(By.ID, "text").send_keys("12")
        browser.find_element(By.ID, "translate").click()
        wait.until(lambda b: b.find_element(By.ID, "output").text not in ("", "…"))
        expected = fetch(f"{base}/translate", {"q": "12", "source": "num", "target": "en",
                                               "alternatives": 2})[1]
        assert browser.find_element(By.ID, "output").text == expected["translatedText"]
        shown = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#alternatives li")]
        assert shown == [text.strip() for text in expected["alternatives"]]  # a list item drops end spaces
        document = tmp_path / "notes.md"
        document.write_text("# 12\n\nRun `make` now.\n", encoding="utf-8")
        assert "`make`" in page_upload(browser, wait, document)
        browser.find_element(By.ID, "text").clear()
        browser.find_element(By.ID, "translate").click()
        wait.until(lambda b: b.find_element(By.ID, "error").text)
        assert "missing q parameter" in browser.find_element(By.ID, "error").text
        browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        browser.quit()


def test_sigterm_finishes_the_requests_in_flight(server: tuple[str, subprocess.Popen[str]]) -> None:
    base, process = server
    texts = [" ".join(str(n + k) for k in range(12)) for n in range(128)]
    body = {"q": texts, "source": "num", "target": "en", "strategy": "beam", "settings": {"beam_size": 6}}
    answers: list[tuple[float, int]] = []

    def ask() -> None:
        status, reply = fetch(f"{base}/v1/translate", body, timeout=120)  # the last wait for the rest
        answers.append((time.monotonic(), status if len(reply.get("translations", [])) == 128 else -1))

    clients = [threading.Thread(target=ask) for _ in range(12)]  # seconds of work in the queue
    for client in clients:
        client.start()
    # SIGTERM once the server holds all twelve: one not yet received would rightly be refused
    in_progress = 'polyseq_requests_in_progress{endpoint="/v1/translate"} 12.0'
    deadline = time.monotonic() + 60
    while in_progress not in metrics(base) and time.monotonic() < deadline:
        time.sleep(0.05)
    signalled = time.monotonic()
    os.kill(process.pid, signal.SIGTERM)
    for client in clients:
        client.join(timeout=120)
    assert [status for _, status in answers] == [200] * 12
    assert max(when for when, _ in answers) > signalled  # some were still in flight when it was told to stop
    # uvicorn stops gracefully, then ends with the signal it was sent
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)
