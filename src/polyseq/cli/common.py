"""What every command shares: the Typer app, one way to report a user's errors, strategy settings
from the command line, and input and output streams."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO, cast

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
    """Turn the library's input errors, and the system's refusals (a folder where a file goes, a
    missing path, no permission), into a one-line message and exit status 2."""
    from polyseq.config import ConfigError
    from polyseq.data.corpus import CorpusError
    from polyseq.files import InputError
    from polyseq.model.checkpoint import CheckpointError
    from polyseq.text.tokenizer import TokenizerError
    from polyseq.train.loop import TrainingError

    try:
        yield
    except (ConfigError, CorpusError, CheckpointError, TokenizerError, TrainingError, InputError,
            ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except OSError as error:
        where = f"{error.filename}: " if error.filename is not None else ""
        typer.echo(f"error: {where}{error.strerror or error}", err=True)
        raise typer.Exit(2) from None


def check_outputs(outputs: dict[str, Path | None], inputs: Iterable[Path | None]) -> None:
    """Before any work: a ValueError when an output is a folder, would write over an input (or a
    file in an input folder, such as the model's), or is another output's file."""
    given = {option: path for option, path in outputs.items() if path is not None}
    sources = [path.resolve() for path in inputs if path is not None]
    for number, (option, path) in enumerate(given.items()):
        if path.is_dir():
            raise ValueError(f"{option} {path} is a folder: give the name of a file to write")
        target = path.resolve()
        for source in sources:
            if target == source or (target.is_relative_to(source) and target.exists()):
                what = "the input" if target == source else "a file of the input"
                raise ValueError(f"{option} {path} would overwrite {what} {source}; choose another path")
        for other, second in list(given.items())[number + 1:]:
            if second.resolve() == target:
                raise ValueError(f"{option} and {other} are the same file {path}; choose two paths")


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
OverwriteOption = Annotated[bool, typer.Option(
    "--overwrite", help="replace a model directory of the same kind at OUTPUT (never other files)")]


def strategy_settings(strategy: str, beam_size: int | None, n_best: int | None,
                      options: list[str] | None) -> dict[str, Any]:
    settings = parse_settings(options or [])
    flags: list[tuple[str, str | None, int | None]] = [("--beam-size", "beam_size", beam_size)]
    if n_best is not None:
        flags.append(("--n-best", candidates_setting(strategy, n_best), n_best))
    for flag, name, value in flags:
        if value is None or name is None:
            continue
        if settings.get(name, value) != value:  # which one was meant cannot be told
            raise ValueError(f"{flag} {value} and -O {name}={settings[name]} disagree: give one of them")
        settings[name] = value
    return settings


def candidates_setting(strategy: str, n_best: int) -> str | None:
    """The setting that `--n-best` sets: `n_best` (beam searches) or `num_samples` (sampling's
    candidates are its samples); None for a strategy of one candidate, where only 1 is asked."""
    from polyseq.decoding import STRATEGIES, get_strategy

    def setting(name: str) -> str | None:
        fields = {item.name for item in dataclasses.fields(get_strategy(name).config_type)}
        return next((field for field in ("n_best", "num_samples") if field in fields), None)

    found = setting(strategy)
    if found is None and n_best != 1:
        several = ", ".join(name for name in sorted(STRATEGIES) if setting(name))
        raise ValueError(f"strategy {strategy!r} gives one candidate per input: --n-best {n_best} "
                         f"needs {several}")
    return found


@contextmanager
def sink(output: Path | None) -> Iterator[TextIO]:
    """stdout, or `output` written atomically once everything is written (see files.atomic_file:
    a link is written through, a device such as /dev/stdout directly)."""
    from polyseq.files import atomic_file

    if output is None:
        yield sys.stdout
        return
    with atomic_file(output) as handle:
        yield cast(TextIO, handle)


def input_lines(path: Path | None) -> Iterator[str]:
    from polyseq.files import decode_lines, read_text_lines

    if path is None:
        return decode_lines(sys.stdin.buffer, "stdin")
    return iter(read_text_lines(path))
