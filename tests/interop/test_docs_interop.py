"""Every Python example in docs/interop.md runs, against models and tokenizers made by the tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from tokenizer_files import marian_model

PAGE = Path(__file__).resolve().parents[2] / "docs" / "interop.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_interop_example_runs(index: int, tiny_model_dir: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    marian_model(tmp_path / "opus-mt-en-de")  # a tiny OPUS-MT look-alike, made here
    code = BLOCKS[index].replace('"quickstart/run/best"', repr(str(tiny_model_dir)))
    exec(compile(code, f"docs/interop.md:block{index}", "exec"), {"__name__": "interop_doc"})


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 2
