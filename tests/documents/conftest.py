"""Shared pieces for the selective-translation tests: translators with known behaviour (the
identity, one that rewrites every word, and faulty ones that drop, double or garble the
sentinels), and the real data sets beside the project, skipped with a message when missing."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from polyseq.documents.protect import SENTINEL_RE

DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
WORD = re.compile(r"[^\W\d_]+")

Translate = Callable[[list[str]], list[str]]


def rewrite_words(texts: list[str]) -> list[str]:
    """Every word becomes another one: "q" and the word reversed with its case swapped, a single
    letter "q" alone. A leading "q" keeps prose from turning into something protected, as the
    "a" of "%A" -> "%aq" would (a printf conversion) or the "cq" of "a@b.c" -> "Aq@Bq.Cq" (a
    domain)."""
    return [WORD.sub(lambda m: "q" + m.group(0)[::-1].swapcase() if len(m.group(0)) > 1 else "q", t)
            for t in texts]


def _drop_first(text: str) -> str:
    return SENTINEL_RE.sub("", text, count=1)


def _double_all(text: str) -> str:
    return SENTINEL_RE.sub(lambda m: m.group(0) * 2, text)


def _garble_all(text: str) -> str:
    return SENTINEL_RE.sub(lambda m: f"[[{m.group(1)}]", text)


def _pad_all(text: str) -> str:
    return SENTINEL_RE.sub(lambda m: f" {m.group(0)} ", text)


def _reverse_order(text: str) -> str:
    ids = [m.group(1) for m in SENTINEL_RE.finditer(text)][::-1]
    return SENTINEL_RE.sub(lambda m: f"⟦{ids.pop(0)}⟧", text)


def _bunch_at_end(text: str) -> str:
    return SENTINEL_RE.sub("", text) + "".join(m.group(0) for m in SENTINEL_RE.finditer(text))


FAULTS: dict[str, Callable[[str], str]] = {
    "drop": _drop_first,
    "double": _double_all,
    "garble": _garble_all,
    "pad": _pad_all,  # spaces around every sentinel: "** bold **"
    "reverse": _reverse_order,  # closing markers before opening ones
    "bunch": _bunch_at_end,  # every span at the end: empty emphasis
}


def faulty(fault: str) -> Translate:
    """Rewrites words like ``rewrite_words`` and breaks the sentinels in one way."""
    spoil = FAULTS[fault]
    return lambda texts: [spoil(t) for t in rewrite_words(texts)]


@pytest.fixture(scope="session")
def rewrite() -> Translate:
    return rewrite_words


@pytest.fixture(scope="session")
def identity() -> Translate:
    return lambda texts: list(texts)


def _data_dir(name: str) -> Path:
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"data set {name} not found at {path.resolve()} (see shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def fastapi_docs() -> Path:
    return _data_dir("fastapi_docs_i18n") / "docs"


@pytest.fixture(scope="session")
def django_po() -> Path:
    return _data_dir("django_po")


@pytest.fixture(scope="session")
def make_faulty() -> Callable[[str], Translate]:
    return faulty


def _recording(translate: Translate) -> tuple[Translate, list[str]]:
    """``translate``, and the list of every text it is given."""
    calls: list[str] = []

    def recorded(texts: list[str]) -> list[str]:
        calls.extend(texts)
        return translate(texts)

    return recorded, calls


@pytest.fixture(scope="session")
def recording() -> Callable[[Translate], tuple[Translate, list[str]]]:
    return _recording
