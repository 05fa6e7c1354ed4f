"""Commands that train, translate, serve and convert models."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from polyseq.cli.common import (
    BeamSizeOption,
    DeviceOption,
    OverwriteOption,
    SettingOption,
    StrategyOption,
    app,
    check_outputs,
    input_lines,
    sink,
    strategy_settings,
    user_errors,
)
from polyseq.cli.processes import run_and_report, translate_sharded
from polyseq.text.vocabularies import DEFAULT_MIN_SHARE

if TYPE_CHECKING:
    from polyseq.documents.glossary import Glossary
    from polyseq.translator import TranslationOutput, Translator


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="TOML file with [model], [data], [train]")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value overrides")] = None,
    resume: Annotated[bool, typer.Option(help="continue the run in train.output_dir")] = False,
) -> None:
    """Train a model as configured; `--resume` continues a stopped run exactly."""
    from polyseq.config import load_config
    from polyseq.train.loop import train as run_training

    with user_errors():
        experiment = load_config(config, overrides or [])
        run_and_report(lambda log: run_training(experiment, resume=resume, log=log), "trained")


class OutputFormat(str, Enum):
    TEXT = "text"  # one line per input (with --n-best N: N lines per input)
    JSONL = "jsonl"  # one JSON object per input: the translation, the candidates and their scores


@app.command()
def translate(
    model: Annotated[Path, typer.Option("--model", "-m", help="model directory")],
    tgt: Annotated[str, typer.Option("--tgt", help="target language")],
    src: Annotated[str | None, typer.Option("--src", help="source language, or auto")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="input file (default stdin)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output file (stdout)")] = None,
    strategy: StrategyOption = "beam",
    beam_size: BeamSizeOption = None,
    n_best: Annotated[int | None, typer.Option(help="candidates printed per input")] = None,
    option: SettingOption = None,
    prefix: Annotated[str | None, typer.Option(help="forced start of every output")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="text or jsonl")] = (
        OutputFormat.TEXT),
    rerank: Annotated[str | None, typer.Option(help="rerank the n-best: normalised | reverse")] = None,
    reverse_model: Annotated[Path | None, typer.Option(help="model for --rerank reverse")] = None,
    stats: Annotated[bool, typer.Option("--stats", help="print decoding statistics to stderr")] = False,
    pivot: Annotated[str | None, typer.Option(help="translate through this language (two passes)")] = None,
    restrict_vocab: Annotated[bool, typer.Option(
        "--restrict-vocab", help="only tokens of the target language's training data")] = False,
    vocab_min_share: Annotated[float, typer.Option(
        help="--restrict-vocab: a token's least share of the target language's tokens")] = DEFAULT_MIN_SHARE,
    ensemble: Annotated[list[Path] | None, typer.Option(
        help="another model to decode with --model as one, their mean distribution (repeatable; "
             "the same tokenizer)")] = None,
    shards: Annotated[int, typer.Option(help="translate -i into -o in about N shards, kept until "
                                             "done so that a stopped job resumes (torchrun: always)")] = 0,
    glossary: Annotated[Path | None, typer.Option(
        help="terms and their fixed translations, a two-column .tsv or .csv: each line is then "
             "translated as a document's paragraph (placeholders and URLs kept too)")] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Translate text line by line: one output line for every input line (with --n-best N, N lines
    per input; with --format jsonl, one JSON object per input). Many-to-many models: --pivot en
    translates through English, --restrict-vocab keeps outputs to the target language's tokens.

    Strategies: greedy, beam, diverse-beam, sampling, aggressive, speculative; their settings go
    in -O key=value (e.g. -O groups=3 -O diversity=0.5, -O top_p=0.9 -O seed=1,
    -O draft=model -O draft_model=DIR, -O min_length=2, -O max_len_a=1.2).

    Under torchrun (`torchrun --nproc-per-node N -m polyseq translate -i IN -o OUT ...`) the
    processes share the input in shards; the output is the same as one process's.

    --glossary terms.tsv fixes the translation of its terms, as for translate-file: each line is
    translated by the documents' machinery, still one output line per input line."""
    from polyseq.cluster import cluster_from_environment, process_device
    from polyseq.decoding.core import DecodeStats
    from polyseq.files import check_output
    from polyseq.translator import Translator

    with user_errors():
        if shards < 0:
            raise ValueError(f"--shards must be >= 0 (0: translate in one piece), got {shards}")
        sharded = shards > 0 or cluster_from_environment().distributed
        terms = _line_glossary(glossary, n_best, output_format, rerank, prefix, shards, sharded)
        check_outputs({"-o": output}, [input, model, *(ensemble or []), glossary])
        if output is not None:
            check_output(output)  # before the model loads and a shard folder is made beside it
        settings = strategy_settings(strategy, beam_size, n_best, option)
        if pivot is not None:
            settings["pivot"] = pivot
        if restrict_vocab:
            settings |= {"restrict_vocabulary": True, "vocabulary_min_share": vocab_min_share}
        device = process_device(device, cluster_from_environment())
        translator = (Translator.load_ensemble([model, *ensemble], device=device) if ensemble
                      else Translator.load(model, device=device))
        scorer = _reranker(rerank, reverse_model, src, device)
        if sharded:
            render = lambda result: "".join(_render(result, output_format, n_best or 1))  # noqa: E731
            translate_sharded(translator, model, input, output, src, tgt, strategy, settings, render,
                              shards=shards, scorer=scorer, prefix=prefix, stats=stats,
                              job={"format": output_format.value, "n_best": n_best, "rerank": rerank,
                                   "reverse_model": str(reverse_model),
                                   "ensemble": [str(path.resolve()) for path in ensemble or []]})
            return
        if terms is not None:
            _translate_with_glossary(translator, input, output, src, tgt, strategy, settings, terms, stats)
            return
        totals, lines, split = DecodeStats(), 0, 0
        with sink(output) as out:
            for result in translator.translate_chunks(input_lines(input), src, tgt, strategy,
                                                      rerank=scorer, prefix=prefix, **settings):
                totals.add(result.stats)
                lines, split = lines + len(result.texts), split + result.split_texts
                out.writelines(_render(result, output_format, n_best or 1))
                out.flush()
    if output is not None:
        typer.echo(f"translated {lines} lines ({split} split to fit the model) into {output}", err=True)
    if stats:
        typer.echo(json.dumps(vars(totals)), err=True)


def _render(result: TranslationOutput, output_format: OutputFormat, n_best: int) -> Iterator[str]:
    """Output lines for one chunk: text (n candidates per input, newlines as spaces) or jsonl."""
    for text, candidates in zip(result.texts, result.candidates, strict=True):
        if output_format is OutputFormat.TEXT:
            texts = [c.text for c in candidates[:n_best]] if n_best > 1 else [text]
            yield from (t.replace("\n", " ") + "\n" for t in texts + [""] * (n_best - len(texts)))
            continue
        record = {"translation": text, "candidates": [
            {"text": c.text, "score": c.hypothesis.score, "log_prob": c.hypothesis.log_prob,
             "tokens": len(c.hypothesis.tokens)} for c in candidates[:n_best]]}
        yield json.dumps(record, ensure_ascii=False) + "\n"


def _line_glossary(path: Path | None, n_best: int | None, output_format: OutputFormat,
                   rerank: str | None, prefix: str | None, shards: int, sharded: bool) -> Glossary | None:
    """The glossary of `translate --glossary`, read before the model loads; a ValueError names an
    option that cannot go with it. With a glossary, a line is translated as a document's paragraph:
    cut into sentences with its terms as sentinels, a sentence the model broke repaired in pieces.
    What works on a line's own candidates (their list, scores and reranking, a forced start) has
    nothing to work on there."""
    from polyseq.documents.glossary import Glossary

    if path is None:
        return None
    whole_line = "a line with a glossary is translated in sentences and repaired pieces, so"
    refused = [
        ((n_best or 1) > 1, f"--n-best {n_best}", f"{whole_line} it has one translation, no candidates"),
        (output_format is OutputFormat.JSONL, "--format jsonl",
         f"{whole_line} it has no candidates and scores of its own to write"),
        (rerank is not None, "--rerank", f"{whole_line} it has no candidates of its own to rerank"),
        (prefix is not None, "--prefix", f"{whole_line} a forced start would begin each of them"),
        (sharded, f"--shards {shards}" if shards else "torchrun",
         "shards translate their lines without a glossary; translate in one process"),
    ]
    for given, option, why in refused:
        if given:
            raise ValueError(f"--glossary cannot be combined with {option}: {why}")
    return Glossary.load(path)


def _translate_with_glossary(translator: Translator, input: Path | None, output: Path | None,
                             src: str | None, tgt: str, strategy: str, settings: dict[str, Any],
                             glossary: Glossary, stats: bool) -> None:
    """`translate --glossary`: the lines through `polyseq.documents.translate_texts`, 512 at a time
    so that the output flows and memory stays bounded, one output line per input line."""
    from polyseq.decoding.core import DecodeStats
    from polyseq.documents import translate_texts

    totals, lines, found, repairs = DecodeStats(), 0, 0, 0

    def sentences(texts: list[str]) -> list[str]:  # the model's calls, their statistics kept
        result = translator.translate_detailed(texts, src, tgt, strategy, **settings)
        totals.add(result.stats)
        return result.texts

    source = input_lines(input)
    with sink(output) as out:
        while chunk := list(itertools.islice(source, 512)):
            result = translate_texts(chunk, sentences, src_lang=src, glossary=glossary)
            out.writelines(text.replace("\n", " ") + "\n" for text in result.texts)
            out.flush()
            lines += len(chunk)
            found += result.summary.protected_by_kind.get("glossary", 0)
            repairs += result.summary.repairs
    if output is not None:
        typer.echo(f"translated {lines} lines ({found} glossary terms, {repairs} sentences repaired) "
                   f"into {output}", err=True)
    if stats:
        typer.echo(json.dumps(vars(totals)), err=True)


def _reranker(name: str | None, reverse_model: Path | None, src: str | None, device: str) -> Any:
    from polyseq.decoding.rerank import make_scorer
    from polyseq.translator import Translator

    if name is None:
        return None
    if name != "reverse":
        return make_scorer(name)
    if reverse_model is None or src is None:
        raise ValueError("--rerank reverse needs --reverse-model DIR and --src")
    return make_scorer(name, translator=Translator.load(reverse_model, device=device), src_lang=src)


@app.command("translate-file")
def translate_file_command(
    input: Annotated[Path, typer.Argument(help="Markdown, JSON, HTML, .po or text file")],
    tgt: Annotated[str | None, typer.Option("--tgt", help="target language")] = None,
    src: Annotated[str | None, typer.Option("--src", help="source language")] = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="model directory")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output (NAME.<tgt>.EXT)")] = None,
    format: Annotated[str | None, typer.Option("--format", help="markdown, json, html, po, plain")] = None,
    check: Annotated[bool, typer.Option("--check", help="verify an existing translation")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=".po: redo translated entries")] = False,
    no_fuzzy: Annotated[bool, typer.Option("--no-fuzzy", help=".po: do not flag fuzzy")] = False,
    glossary: Annotated[Path | None, typer.Option(
        help="terms and their fixed translations: a two-column .tsv or .csv")] = None,
    strategy: StrategyOption = "beam",
    beam_size: BeamSizeOption = None,
    option: SettingOption = None,
    device: DeviceOption = "cpu",
) -> None:
    """Translate a document's prose; code, placeholders and markup come back byte for byte.
    Strategies and their settings as for translate."""
    from polyseq.documents import check_file, default_output, translate_document_file
    from polyseq.documents.formats import format_for_path, get_format
    from polyseq.documents.glossary import Glossary
    from polyseq.translator import Translator

    with user_errors():
        chosen = get_format(format) if format else format_for_path(input)  # before the model
        if check:
            report = check_file(input, output or default_output(input, tgt), chosen.name)
            typer.echo(str(report))
            if not report.ok:
                raise typer.Exit(1)
            return
        if model is None or tgt is None:
            raise ValueError("translate-file needs --model and --tgt (or --check to verify)")
        settings = strategy_settings(strategy, beam_size, None, option)
        terms = Glossary.load(glossary) if glossary else None  # before the model
        translator = Translator.load(model, device=device)
        result = translate_document_file(
            input, output, translator=translator.for_segments(src, tgt, strategy, **settings),
            format=chosen.name, src_lang=src, tgt_lang=tgt, overwrite=overwrite, fuzzy=not no_fuzzy,
            glossary=terms)
    typer.echo(str(result.summary), err=True)


@app.command()
def quickstart(
    output: Annotated[Path, typer.Option(help="where data, model and report go")] = Path("quickstart"),
    minutes: Annotated[float, typer.Option(help="training time budget in minutes")] = 4.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
) -> None:
    """Make a multilingual number corpus, train on it, and test on unseen numbers and zero-shot."""
    from polyseq.quickstart import format_report, run_quickstart

    echo: Callable[[str], None] = lambda message: typer.echo(message, err=True)  # noqa: E731
    with user_errors():
        if output.exists() and not output.is_dir():
            raise ValueError(f"--output {output} is a file: give a folder for the data, model and report")
        report = run_quickstart(output, minutes=minutes, seed=seed, log=echo)
    typer.echo(format_report(report))
    typer.echo(f"\nmodel: {report['model']}   plot: {report['plot']}   report: {output / 'report.json'}")
    typer.echo(f"try:  echo 4711 | polyseq translate --model {report['model']} --src num --tgt de")


@app.command()
def serve(
    models: Annotated[list[Path], typer.Argument(help="model directories to serve")],
    config: Annotated[Path | None, typer.Option(help="TOML file with a [serve] section")] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 5000)")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="serve.key=value, repeatable")] = None,
) -> None:
    """Serve models over HTTP: LibreTranslate's API, /v1/translate, /metrics and a web page at /."""
    from polyseq.config import load_serve_config

    with user_errors():
        extra = [f"serve.host={host}"] * (host is not None) + [f"serve.port={port}"] * (port is not None)
        settings = load_serve_config(config, [*(overrides or []), *extra])
        for model in models:
            if not (model / "config.json").is_file():
                raise ValueError(f"{model} is not a model directory (it has no config.json)")
        import uvicorn

        from polyseq.serve.app import create_app

        application = create_app(settings, models)
    typer.echo(f"serving {len(models)} model(s) on http://{settings.host}:{settings.port}", err=True)
    # keep-alive past uvicorn's 5 s: a client that reuses a connection the server has just closed
    # sees a request fail without an answer
    uvicorn.run(application, host=settings.host, port=settings.port, workers=1, log_level="warning",
                timeout_graceful_shutdown=int(settings.request_timeout_s), timeout_keep_alive=75,
                proxy_headers=False)  # an X-Forwarded-For from a client must not choose its limit


class ImportFormat(str, Enum):
    HF = "hf"  # a local Hugging Face checkpoint directory


class ExportFormat(str, Enum):
    HF = "hf"  # a directory transformers loads with from_pretrained
    CT2 = "ct2"  # a CTranslate2 model directory


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="Hugging Face model directory, or Hub repository id "
                                                "(org/name[@revision]), fetched into the Hub's cache")],
    output: Annotated[Path, typer.Argument(help="polyseq model directory to write")],
    from_format: Annotated[ImportFormat, typer.Option("--from", help="format of SOURCE")] = ImportFormat.HF,
    tokenizer: Annotated[bool, typer.Option(help="import the tokenizer too (--no-tokenizer: weights "
                                                 "only, for use with token ids)")] = True,
    overwrite: OverwriteOption = False,
) -> None:
    """Import a Marian, M2M-100/NLLB, BART/mBART or Pegasus checkpoint, from a local directory or
    the Hugging Face Hub (HF_HUB_OFFLINE=1: from the Hub's cache alone)."""
    from polyseq.interop.hf import import_hf

    with user_errors():
        written = import_hf(source, output, with_tokenizer=tokenizer, overwrite=overwrite)
    typer.echo(f"converted {source} ({from_format.value}) into {written}")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="polyseq model directory")],
    output: Annotated[Path, typer.Argument(help="directory to write")],
    to_format: Annotated[ExportFormat, typer.Option("--to", help="target format")] = ExportFormat.HF,
    quantization: Annotated[str, typer.Option(help="ct2 weight type: float32, int8, ...")] = "float32",
    overwrite: OverwriteOption = False,
) -> None:
    """Hand a polyseq model to transformers (--to hf) or CTranslate2 (--to ct2)."""
    from polyseq.interop.ct2 import Quantization, export_ct2
    from polyseq.interop.hf import export_hf

    with user_errors():
        if to_format is ExportFormat.HF:
            written = export_hf(model, output, overwrite=overwrite)
        else:
            written = export_ct2(model, output, Quantization(quantization), overwrite=overwrite)
    typer.echo(f"exported {model} to {to_format.value}: {written}")
