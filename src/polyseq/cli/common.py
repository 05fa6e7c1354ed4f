"""What every command shares: the Typer app, one way to report a user's errors, strategy settings
from the command line, and input and output streams."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

# rich_markup_mode=None: help texts are plain, so "[model]" is printed, not read as markup
app = typer.Typer(help="polyseq: multilingual sequence-to-sequence toolkit.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _print_version(value: bool) -> None:
    if value:
        from polyseq import __version__

        typer.echo(f"polyseq {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """polyseq: multilingual sequence-to-sequence toolkit."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's input errors into a one-line message and exit status 2."""
    from polyseq.config import ConfigError
    from polyseq.data.corpus import CorpusError
    from polyseq.files import InputError
    from polyseq.model.checkpoint import CheckpointError
    from polyseq.text.tokenizer import TokenizerError
    from polyseq.train.loop import TrainingError

    try:
        yield
    except (ConfigError, CorpusError, CheckpointError, TokenizerError, TrainingError, InputError,
            FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def parse_settings(options: list[str]) -> dict[str, Any]:
    """`key=value` strategy settings; values are read as JSON when they parse, else as text."""
    settings: dict[str, Any] = {}
    for option in options:
        key, eq, value = option.partition("=")
        if not eq or not key:
            raise ValueError(f"option {option!r} must look like key=value")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


StrategyOption = Annotated[str, typer.Option("--strategy", "-s", help="decoding strategy by name")]
DeviceOption = Annotated[str, typer.Option(help="where the model runs: cpu, cuda, cuda:1, ...")]
SettingOption = Annotated[
    list[str] | None, typer.Option("--option", "-O", help="strategy setting key=value, repeatable")
]


BeamSizeOption = Annotated[int | None, typer.Option(help="beam size (beam strategies)")]


def strategy_settings(strategy: str, beam_size: int | None, n_best: int | None,
                      options: list[str] | None) -> dict[str, Any]:
    settings = parse_settings(options or [])
    if beam_size is not None:
        settings["beam_size"] = beam_size
    if n_best is not None:
        settings["n_best"] = n_best
    return settings


@contextmanager
def sink(output: Path | None) -> Iterator[TextIO]:
    """stdout, or a temporary file that replaces `output` once everything is written."""
    if output is None:
        yield sys.stdout
        return
    temporary = output.with_name(f".{output.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            yield handle
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)


def input_lines(path: Path | None) -> Iterator[str]:
    from polyseq.files import decode_lines, read_text_lines

    if path is None:
        return decode_lines(sys.stdin.buffer, "stdin")
    return iter(read_text_lines(path))
