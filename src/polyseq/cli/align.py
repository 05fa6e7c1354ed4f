"""`polyseq align-score`: how well a model's encoder aligns languages on aligned sentences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from polyseq.cli.common import DeviceOption, app, check_outputs, user_errors


@app.command("align-score")
def align_score(
    model: Annotated[Path, typer.Argument(help="model directory")],
    data: Annotated[str, typer.Option("--data", help="aligned files PREFIX.LANG, one sentence a line")],
    langs: Annotated[str, typer.Option("--langs", help="languages to compare, e.g. en,de,fr,cs")],
    sentences: Annotated[int, typer.Option(help="the first N aligned sentences (0: all)")] = 1000,
    tgt_lang: Annotated[str | None, typer.Option(help="the tag the encoder reads (default: the model's "
                                                      "first language)")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a heat-map PNG here")] = None,
    report: Annotated[Path | None, typer.Option(help="write a JSON report here")] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Bitext retrieval (P@1 both ways) per language pair and a MEXA-style alignment score per
    encoder layer, from mean-pooled encoder states of aligned sentences."""
    from polyseq.evaluate import write_report
    from polyseq.evaluate.alignment import align_scores, format_alignment, plot_alignment
    from polyseq.translator import Translator

    with user_errors():
        if sentences < 0:
            raise ValueError(f"--sentences must be >= 0 (0: all), got {sentences}")
        languages = [lang for lang in langs.split(",") if lang]
        check_outputs({"--plot": plot, "--report": report},
                      [model, *(Path(f"{data}.{lang}") for lang in languages)])
        texts, skipped = read_aligned(data, languages, sentences)
        translator = Translator.load(model, device=device)
        result = align_scores(translator, texts, tgt_lang)
        if skipped:
            typer.echo(f"left out {skipped} lines empty in some language", err=True)
        for line in format_alignment(result):
            typer.echo(line)
        if plot is not None and plot_alignment(result, plot) is None:
            typer.echo("no plot: matplotlib is not installed (pip install 'polyseq[plot]')", err=True)
        if report is not None:
            write_report(report, {"model": str(model), "data": data, **result.to_dict()})


def read_aligned(prefix: str, languages: list[str], limit: int) -> tuple[dict[str, list[str]], int]:
    """The first `limit` lines (0: all) of PREFIX.LANG per language, without lines that are empty
    in any of them; and how many such lines were left out."""
    from polyseq.files import InputError, read_text_lines

    if len(languages) < 2:
        raise InputError(f"--langs needs at least two languages, got {','.join(languages) or 'none'}")
    repeated = sorted({lang for lang in languages if languages.count(lang) > 1})
    if repeated:  # one file per language: a repeat would shift every later column
        raise InputError(f"--langs names {', '.join(repeated)} more than once: {','.join(languages)}")
    lines = {}
    for lang in languages:
        path = Path(f"{prefix}.{lang}")
        if not path.is_file():
            raise InputError(f"{path} does not exist: --data {prefix} --langs {','.join(languages)} "
                             f"reads one file per language, {Path(prefix).name}.LANG")
        lines[lang] = read_text_lines(path)
    counts = {lang: len(rows) for lang, rows in lines.items()}
    if len(set(counts.values())) != 1:
        raise InputError(f"the files of {prefix} have different numbers of lines: {counts}")
    rows = list(zip(*lines.values(), strict=True))
    full = [row for row in rows if all(text.strip() for text in row)]
    kept = full[: limit or None]
    return {lang: [row[k] for row in kept] for k, lang in enumerate(languages)}, len(rows) - len(full)
