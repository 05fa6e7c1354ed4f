"""Every Python example in docs/multilingual.md runs, against the small num / en / de model and
the run made by the tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "multilingual.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_multilingual_example_runs(index: int, tiny_run: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = (BLOCKS[index].replace('"quickstart/run/best"', repr(str(tiny_run / "best")))
            .replace('"quickstart/run/metrics.jsonl"', repr(str(tiny_run / "metrics.jsonl"))))
    exec(compile(code, f"docs/multilingual.md:block{index}", "exec"), {"__name__": "multilingual_doc"})


def test_the_page_has_examples_and_the_readme_links_it() -> None:
    assert len(BLOCKS) >= 5
    readme = (PAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/multilingual.md" in readme or "`multilingual.md`" in readme
