"""Commands for text correction: correct text and documents, and score outputs (BLEU, M2, GLEU)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from polyseq.evaluate.m2 import M2Sentence

from polyseq.cli.common import (
    BeamSizeOption,
    DeviceOption,
    SettingOption,
    StrategyOption,
    app,
    check_outputs,
    input_lines,
    sink,
    strategy_settings,
    user_errors,
)


class Metric(str, Enum):
    BLEU = "bleu"  # sacrebleu BLEU and chrF++ against --ref files
    M2 = "m2"  # MaxMatch precision, recall, F0.5 against an --m2 file
    GLEU = "gleu"  # JFLEG's GLEU against --src and --ref files


@app.command("eval")
def evaluate(
    hypotheses: Annotated[Path, typer.Option("--hyp", help="file of system outputs, one per line")],
    references: Annotated[list[Path] | None, typer.Option("--ref", help="reference file, repeatable")] = None,
    metric: Annotated[Metric, typer.Option(help="bleu, m2 or gleu")] = Metric.BLEU,
    m2: Annotated[Path | None, typer.Option("--m2", help="gold edits (M2 file) for --metric m2")] = None,
    sources: Annotated[Path | None, typer.Option("--src", help="sources (gleu; m2 without --m2)")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write a JSON report here")] = None,
    tgt_lang: Annotated[str | None, typer.Option(
        help="the outputs' language: BLEU tokenized for it (zh, ja, ko) and the share of outputs "
             "not in it")] = None,
    langid_among: Annotated[str | None, typer.Option(
        help="--tgt-lang: identify among these languages (e.g. en,de,fr,cs; default all it knows)")] = None,
) -> None:
    """Score system outputs: BLEU and chrF++ (translation), or M2 and GLEU (correction; tokenized
    text, as the M2 and JFLEG files are). --tgt-lang de adds the off-target rate: the share of
    outputs whose identified language is not German (and with it, --ref may be left out); for
    zh, ja and ko it also tokenizes BLEU as sacrebleu -l xx-zh does."""
    from polyseq.evaluate import write_report
    from polyseq.evaluate.m2 import m2_from_pairs, read_m2
    from polyseq.files import InputError, read_text_lines

    with user_errors():
        _check_unused(metric, m2=m2, sources=sources, references=references or [],
                      tgt_lang=tgt_lang, langid_among=langid_among)
        check_outputs({"--report": report}, [hypotheses, *(references or []), m2, sources])
        hyps = read_text_lines(hypotheses)
        if not hyps:  # no metric has a value for no sentences
            raise InputError(f"{hypotheses} is empty: there is nothing to score")
        if metric is Metric.M2 and m2 is not None:
            gold = read_m2(m2)
            if len(gold) != len(hyps):
                raise InputError(f"{m2} has {len(gold)} sentences but {hypotheses} has {len(hyps)} lines")
            result, lines = _score_m2(hyps, gold)
            inputs: dict[str, Any] = {"m2": str(m2)}
        elif metric is Metric.M2:  # gold edits from corrected references
            if sources is None or not references:
                raise ValueError("--metric m2 needs --m2 GOLD.m2, or --src SOURCE and --ref CORRECTED")
            corrected = [_same_length(path, hypotheses, len(hyps)) for path in references]
            gold = m2_from_pairs(_same_length(sources, hypotheses, len(hyps)), corrected)
            result, lines = _score_m2(hyps, gold)
            inputs = {"sources": str(sources), "references": [str(r) for r in references]}
        elif metric is Metric.BLEU and tgt_lang is not None and not references:  # off-target alone
            result, lines, inputs = {}, [], {}
        else:
            refs = [_same_length(path, hypotheses, len(hyps)) for path in references or []]
            if not refs:
                raise ValueError(f"--metric {metric.value} needs at least one --ref file")
            if metric is Metric.BLEU:
                result, lines = _score_bleu(hyps, refs, tgt_lang)
            else:
                if sources is None:
                    raise ValueError("--metric gleu needs --src SOURCE")
                result, lines = _score_gleu(_same_length(sources, hypotheses, len(hyps)), hyps, refs)
            inputs = {"references": [str(r) for r in references or []]}
        if tgt_lang is not None:
            result["off_target"], line = _off_target(hyps, tgt_lang, langid_among)
            lines.append(line)
        for line in lines:
            typer.echo(line)
        if report is not None:
            write_report(report, {"hypotheses": str(hypotheses), "metric": metric.value, **inputs, **result})


def _check_unused(metric: Metric, *, m2: Path | None, sources: Path | None, references: list[Path],
                  tgt_lang: str | None, langid_among: str | None) -> None:
    """A ValueError for an option that the chosen metric would not read: a user who gives --m2
    without --metric m2, say, would otherwise get BLEU and think it the M2 score."""
    if langid_among is not None and tgt_lang is None:
        raise ValueError("--langid-among chooses the languages of the off-target rate: give --tgt-lang too")
    if m2 is not None and metric is not Metric.M2:
        raise ValueError(f"--m2 is for --metric m2, not --metric {metric.value}")
    if sources is not None and metric is Metric.BLEU:
        raise ValueError("--src is for --metric gleu and m2; BLEU reads --hyp and --ref only")
    if metric is Metric.M2 and m2 is not None and (sources is not None or references):
        raise ValueError("--metric m2 takes its gold edits from --m2 GOLD.m2 or from --src and --ref, "
                         "not from both")


def _same_length(path: Path, hypotheses: Path, count: int) -> list[str]:
    """The lines of `path`, which must be as many as the hypotheses' (the error names both files)."""
    from polyseq.files import InputError, read_text_lines

    lines = read_text_lines(path)
    if len(lines) != count:
        raise InputError(f"{path} has {len(lines)} lines but {hypotheses} has {count}")
    return lines


def _score_bleu(hyps: list[str], refs: list[list[str]], tgt_lang: str | None
                ) -> tuple[dict[str, Any], list[str]]:
    from polyseq.evaluate import score_translations

    scores = score_translations(hyps, refs, tgt_lang)
    return scores.to_dict(), [f"BLEU {scores.bleu:.2f}  chrF++ {scores.chrf:.2f}  exact "
                              f"{scores.exact_match:.1f}%  ({scores.sentences} sentences)",
                              f"BLEU {scores.bleu_signature}", f"chrF++ {scores.chrf_signature}"]


def _off_target(hyps: list[str], tgt_lang: str, among: str | None) -> tuple[dict[str, Any], str]:
    from polyseq.evaluate.offtarget import off_target

    languages = [lang for lang in among.split(",") if lang] if among else None
    found = off_target(hyps, tgt_lang, languages=languages)
    return found.to_dict(), found.summary()


def _score_m2(hyps: list[str], gold: list[M2Sentence]) -> tuple[dict[str, Any], list[str]]:
    from dataclasses import asdict

    from polyseq.evaluate.m2 import score_m2

    score = score_m2(hyps, gold)
    lines = [f"P {score.precision:.4f}  R {score.recall:.4f}  F{score.beta:g} {score.f:.4f}  "
             f"({score.correct} correct of {score.proposed} proposed, {score.gold} gold edits)",
             f"over-correction {100 * score.overcorrection_rate:.1f}% ({score.overcorrected} of "
             f"{score.unchanged_by_all} sentences no annotator changed)"]
    typed = {kind: count for kind, count in score.gold_by_kind.items() if kind}  # untyped: no rows
    for kind, count in sorted(typed.items(), key=lambda item: -item[1])[:10]:
        lines.append(f"  {kind:16s} {score.correct_by_kind.get(kind, 0):5d} of {count:5d} gold edits found")
    if score.bounded:
        lines.append(f"{score.bounded} degenerate sentences aligned along one path (time bound)")
    return {**asdict(score), "overcorrection_rate": score.overcorrection_rate}, lines


def _score_gleu(sources: list[str], hyps: list[str], refs: list[list[str]]
                ) -> tuple[dict[str, Any], list[str]]:
    from dataclasses import asdict

    from polyseq.evaluate.gleu import gleu

    score = gleu(sources, hyps, refs)
    return asdict(score), [f"GLEU {score.score:.4f}  (std {score.std:.4f}, 95% {score.ci_low:.3f}-"
                           f"{score.ci_high:.3f}, {score.sentences} sentences)"]


@app.command()
def correct(
    model: Annotated[Path, typer.Option("--model", "-m", help="corrector model directory")],
    document: Annotated[Path | None, typer.Argument(help="a Markdown, JSON, HTML, .po or text file")] = None,
    lang: Annotated[str | None, typer.Option(help="the text's language (default: the model's)")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="input file (default stdin)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output file (stdout)")] = None,
    paragraphs: Annotated[bool, typer.Option(help="each line is a paragraph: split into sentences")] = False,
    diff: Annotated[bool, typer.Option(help="print edits: line, start, end, original, correction")] = False,
    format: Annotated[str | None, typer.Option(
        "--format", help="document format: markdown, json, html, po, plain (default: by its name)")] = None,
    strategy: StrategyOption = "aggressive",
    beam_size: BeamSizeOption = None,
    option: SettingOption = None,
    device: DeviceOption = "cpu",
) -> None:
    """Correct text line by line (or paragraph by paragraph), or a document with its code and markup
    kept. Aggressive decoding by default: exactly greedy's output, faster."""
    from polyseq.documents.formats import format_for_path, get_format
    from polyseq.files import check_output
    from polyseq.translator import Translator

    with user_errors():
        if document is not None:
            if diff or paragraphs or input is not None:
                raise ValueError("a document is corrected whole: --diff, --paragraphs and -i are for text")
            chosen = get_format(format) if format else format_for_path(document)  # before the model
        elif format is not None:
            raise ValueError("--format is for a document: correct DOCUMENT --format NAME")
        check_outputs({"-o": output}, [input, document, model])
        if output is not None:
            check_output(output)
        settings = strategy_settings(strategy, beam_size, None, option)
        translator = Translator.load(model, device=device)
        language = translator.correction_language(lang)
        fix = translator.for_segments(language, language, strategy, **settings)
        if document is not None:
            _correct_document(document, output, fix, language, chosen.name)
            return
        lines = list(input_lines(input))
        with sink(output) as out:
            for start in range(0, len(lines), 512):
                chunk = lines[start : start + 512]
                fixed = _correct_lines(fix, chunk, language, paragraphs)
                out.writelines(_corrections(chunk, fixed, start, diff))
    if output is not None:  # as translate -o says what it wrote
        typer.echo(f"corrected {len(lines)} lines into {output}", err=True)


def _correct_lines(fix: Callable[[list[str]], list[str]], lines: list[str], lang: str,
                   paragraphs: bool) -> list[str]:
    from polyseq.correction import correct_paragraphs

    fixed = correct_paragraphs(fix, lines, lang) if paragraphs else fix(lines)
    return [text.replace("\n", " ") for text in fixed]  # one output line per input line


def _corrections(lines: list[str], fixed: list[str], first: int, diff: bool) -> Iterator[str]:
    from polyseq.correction import text_edits

    for number, (line, corrected) in enumerate(zip(lines, fixed, strict=True), start=first + 1):
        if not diff:
            yield corrected + "\n"
            continue
        for edit in text_edits(line, corrected):
            original, correction = (text.replace("\t", "\\t") for text in (edit.original, edit.correction))
            yield f"{number}\t{edit.start}\t{edit.end}\t{original}\t{correction}\n"


def _correct_document(path: Path, output: Path | None, fix: Callable[[list[str]], list[str]],
                      lang: str, format: str) -> None:
    from polyseq.documents import translate_document_file

    target = output or path.with_name(f"{path.stem}.corrected{path.suffix}")
    result = translate_document_file(path, target, translator=fix, format=format, src_lang=lang,
                                     tgt_lang=lang)
    typer.echo(f"{result.summary}\ncorrected {path} into {target}", err=True)
