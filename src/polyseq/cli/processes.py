"""Commands for long jobs and more than one process: translating a corpus in shards (the part of
`translate` that runs under torchrun or with --shards), distilling a teacher into a student, and
averaging checkpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from polyseq.cli.common import (
    BeamSizeOption,
    OverwriteOption,
    SettingOption,
    StrategyOption,
    app,
    strategy_settings,
    user_errors,
)

if TYPE_CHECKING:
    from polyseq.decoding.rerank import Scorer
    from polyseq.translator import TranslationOutput, Translator


def main_process() -> bool:
    """False in the processes other than the main one that torchrun started: they stay quiet."""
    from polyseq.cluster import cluster_from_environment

    return cluster_from_environment().is_main


def translate_sharded(translator: Translator, model: Path, input: Path | None, output: Path | None,
                      src: str | None, tgt: str, strategy: str, settings: dict[str, Any],
                      render: Callable[[TranslationOutput], str], *, shards: int, scorer: Scorer | None,
                      prefix: str | None, stats: bool, job: dict[str, Any]) -> None:
    """`translate -i IN -o OUT` in shards: across torchrun's processes, or in this one."""
    from polyseq.cluster import cluster_from_environment, connected
    from polyseq.files import read_text_lines
    from polyseq.model.checkpoint import WEIGHTS_FILE
    from polyseq.shards import translate_in_shards

    if input is None or output is None:
        raise ValueError("translating in shards (--shards, or under torchrun) needs --input and "
                         "--output files")
    # a bad setting or language fails here, before the shard folder exists: a folder left by a job
    # that never started would refuse the corrected command as another job
    translator.translate_detailed([], src, tgt, strategy, scorer, prefix, **settings)
    lines = read_text_lines(input)
    weights = (model / WEIGHTS_FILE).stat()  # a model rewritten since is another job
    job = {**job, "model": str(model.resolve()), "weights": [weights.st_size, weights.st_mtime_ns],
           "src": src, "tgt": tgt, "strategy": strategy, "settings": settings, "prefix": prefix}

    def translate(chunk: list[str]) -> tuple[str, Any, int]:
        result = next(translator.translate_chunks(chunk, src, tgt, strategy, chunk_lines=len(chunk),
                                                  rerank=scorer, prefix=prefix, **settings))
        return render(result), result.stats, result.split_texts

    with connected(cluster_from_environment()) as cluster:
        report = translate_in_shards(lines, output, translate, job=job, cluster=cluster, shards=shards,
                                     progress=True)
    if main_process():
        typer.echo(f"translated {report.lines} lines in {report.shards} shards ({report.reused} done "
                   f"by an earlier run) into {output}", err=True)
        if stats:
            typer.echo(json.dumps(vars(report.stats)), err=True)


@app.command()
def distill(
    teacher: Annotated[Path, typer.Option("--teacher", "-t", help="the teacher's model directory")],
    config: Annotated[Path | None, typer.Argument(help="the student's TOML: [model], [data], [train]")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value overrides")] = None,
    resume: Annotated[bool, typer.Option(help="continue the job in train.output_dir")] = False,
    strategy: StrategyOption = "beam",
    beam_size: BeamSizeOption = None,
    option: SettingOption = None,
) -> None:
    """Sequence-level knowledge distillation: the teacher translates data.train's sources (beam 5
    by default), and the student the config describes trains on its translations; validated on
    data.valid's references. Under torchrun the processes share both steps."""
    from polyseq.config import load_config
    from polyseq.train.distill import distill as run_distillation

    with user_errors():
        experiment = load_config(config, overrides or [])
        settings = strategy_settings(strategy, beam_size, None, option)
        if strategy == "beam":  # distillation's own default; --beam-size or -O beam_size=N chooses another
            settings.setdefault("beam_size", 5)
        run_and_report(lambda log: run_distillation(teacher, experiment, strategy=strategy,
                                                    settings=settings, resume=resume, log=log),
                       "student trained")


@app.command()
def average(
    checkpoints: Annotated[list[Path], typer.Argument(help="model directories of one architecture")],
    output: Annotated[Path, typer.Option("--output", "-o", help="model directory to write")],
    overwrite: OverwriteOption = False,
) -> None:
    """Average the weights of model directories with the same architecture and tokenizer (for
    example the last checkpoints of a run) into a new model directory."""
    from polyseq.model.average import average_models

    with user_errors():
        written = average_models(checkpoints, output, overwrite=overwrite)
    typer.echo(f"averaged {len(checkpoints)} checkpoints into {written}")


def run_and_report(run: Callable[[Callable[[str], None]], Any], done: str) -> None:
    """Run a training job (`run(log)` returns a TrainResult); a stop by signal exits 130 with its
    message, and the main process reports the result."""
    from polyseq.train.signals import TrainingStopped

    try:
        result = run(lambda message: typer.echo(message, err=True))
    except TrainingStopped as stopped:
        if main_process():
            typer.echo(str(stopped), err=True)
        raise typer.Exit(130) from None
    if main_process():
        typer.echo(f"{done} {result.steps} steps; best valid BLEU {result.best_bleu:.2f}; "
                   f"model: {result.best_dir}")
