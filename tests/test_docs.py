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


@pytest.mark.parametrize("section", ["model", "data", "train", "objectives", "serve"])
def test_every_setting_is_named_in_the_docs(section: str) -> None:
    from dataclasses import fields

    from polyseq.config import DataConfig, ModelConfig, ObjectivesConfig, ServeConfig, TrainConfig

    config = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig,
              "objectives": ObjectivesConfig, "serve": ServeConfig}[section]
    text = "\n".join(page.read_text(encoding="utf-8") for page in [DOCS.parent / "README.md",
                                                                  *sorted(DOCS.glob("*.md"))])
    missing = [f.name for f in fields(config)
               if not re.search(rf"`(?:{section}\.)?{f.name}`|^{f.name} = ", text, flags=re.MULTILINE)]
    assert not missing, f"[{section}] settings that no page names: {missing}"
