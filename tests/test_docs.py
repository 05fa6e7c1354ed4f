"""Every Python example in docs/guide.md, docs/decoding.md and docs/training.md runs, against a
model and data made by the tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polyseq.quickstart import write_corpus

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCKS = [
    (page.name, block)
    for page in (DOCS / "guide.md", DOCS / "decoding.md", DOCS / "training.md")
    for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)
]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_guide_example_runs(index: int, tiny_model_dir: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_corpus(tmp_path / "quickstart" / "data", range(300), "train")
    write_corpus(tmp_path / "quickstart" / "data", range(300, 330), "valid")
    monkeypatch.chdir(tmp_path)
    page, block = BLOCKS[index]
    code = block.replace('"quickstart/run/best"', repr(str(tiny_model_dir)))
    exec(compile(code, f"docs/{page}:block{index}", "exec"), {"__name__": "guide"})


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 7
