"""`polyseq detect`: each line's language, identified as `--src auto` and the server's /detect do."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from polyseq.cli.common import app, check_outputs, input_lines, sink, user_errors


class DetectFormat(str, Enum):
    TEXT = "text"  # "LANG<TAB>CONFIDENCE" per line
    JSONL = "jsonl"


@app.command()
def detect(
    input: Annotated[Path | None, typer.Option("--input", "-i", help="input file (default stdin)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output file (stdout)")] = None,
    among: Annotated[str | None, typer.Option(help="identify among these languages (e.g. en,de,fr)")] = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="identify among this model's "
                                                                      "languages, in its codes")] = None,
    candidates: Annotated[int, typer.Option(help="languages listed per line, best first")] = 1,
    output_format: Annotated[DetectFormat, typer.Option("--format", help="text or jsonl")] = (
        DetectFormat.TEXT),
) -> None:
    """Identify the language of each line (py3langid): one output line per input line, the
    language and its probability (0-1) separated by a tab, a blank line for a blank one. --among
    or --model chooses the languages to tell apart (default: every language the identifier knows);
    a model's own codes (deu_Latn, de_DE) are answered in kind."""
    with user_errors():
        if candidates < 1:
            raise ValueError(f"--candidates must be at least 1, got {candidates}")
        if among is not None and model is not None:
            raise ValueError("--among and --model both choose the languages: give one of them")
        check_outputs({"-o": output}, [input])
        detector = _detector(among, model)
        with sink(output) as out:
            for line in input_lines(input):
                out.writelines(_render(detector, line, candidates, output_format))


def _detector(among: str | None, model: Path | None) -> Any:
    from polyseq.text.langid import LanguageDetector, LanguageIdError
    from polyseq.translator import load_text_tokenizer

    languages: Sequence[str] | None = None
    if model is not None:
        languages = load_text_tokenizer(model).languages
    elif among is not None:
        languages = [code.strip() for code in among.split(",") if code.strip()]
    detector = LanguageDetector(languages)
    unknown = [code for code in languages or [] if code not in detector.languages]
    if unknown and among is not None:  # a model's other codes (a "num" tag) are simply not languages
        raise LanguageIdError(f"--among: the language identifier does not know {', '.join(unknown)} "
                              f"(it takes ISO 639-1 codes such as en, de, cs, uk)")
    return detector


def _render(detector: Any, line: str, candidates: int, output_format: DetectFormat) -> Iterator[str]:
    found = detector.detect(line, candidates) if line.strip() else []
    if output_format is DetectFormat.JSONL:
        yield json.dumps([{"language": d.language, "confidence": d.confidence} for d in found]) + "\n"
    else:
        yield "\t".join(f"{d.language}\t{d.confidence:.4f}" for d in found) + "\n"
