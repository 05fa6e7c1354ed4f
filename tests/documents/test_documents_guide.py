"""Every Python example in docs/documents.md runs, in order, as written (the console examples
run through the CLI when it has the translate-file command)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

GUIDE = Path(__file__).parents[2] / "docs" / "documents.md"


def _examples(info: str) -> list[str]:
    tokens = MarkdownIt("commonmark").parse(GUIDE.read_text(encoding="utf-8"))
    return [t.content for t in tokens if t.type == "fence" and t.info.strip() == info]


def test_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             tiny_model_dir: Path) -> None:
    examples = _examples("python")
    assert len(examples) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"model_dir": tiny_model_dir}
    for number, code in enumerate(examples, start=1):
        exec(compile(code, f"{GUIDE.name} example {number}", "exec"), namespace)


def test_console_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              tiny_model_dir: Path) -> None:
    from typer.testing import CliRunner

    from polyseq.cli import app

    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text("# Hello { #hello }\n\nRun `make` and see https://example.com.\n")
    runner = CliRunner()
    for line in _examples("console")[0].splitlines():
        args = shlex.split(line.removeprefix("$ "))[1:]
        args = [str(tiny_model_dir) if a == "runs/en-de/best" else a for a in args]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert Path("README.de.md").exists()
