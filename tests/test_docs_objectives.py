"""docs/objectives.md's configuration examples are valid polyseq configuration, and the README
links the page."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from polyseq.config import load_config

PAGE = Path(__file__).resolve().parents[1] / "docs" / "objectives.md"
TOML = re.findall(r"```toml\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(TOML)))
def test_objectives_toml_example_loads(index: int, tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(TOML[index], encoding="utf-8")
    config = load_config(path)  # raises on an unknown key or objective
    written = tomllib.loads(TOML[index])
    assert config.train.objectives == written["train"]["objectives"]
    for key, value in written.get("objectives", {}).items():
        assert getattr(config.objectives, key) == value


def test_the_page_has_examples_and_the_readme_links_it() -> None:
    assert len(TOML) >= 2
    readme = (PAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/objectives.md" in readme
