"""`polyseq codeswitch`: code-switched text from a lexicon given or induced from a parallel corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from polyseq.cli.common import app, check_outputs, input_lines, sink, user_errors

if TYPE_CHECKING:
    from polyseq.data.codeswitch import Lexicon


@app.command()
def codeswitch(
    input: Annotated[Path | None, typer.Option("--input", "-i", help="input file (default stdin)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output file (stdout)")] = None,
    lexicon_file: Annotated[Path | None, typer.Option("--lexicon", help="lexicon TSV file")] = None,
    corpus: Annotated[str | None, typer.Option(help="induce the lexicon from this corpus spec")] = None,
    src: Annotated[str | None, typer.Option("--src", help="language of the input text")] = None,
    tgt: Annotated[str | None, typer.Option("--tgt", help="language switched into")] = None,
    langs: Annotated[str | None, typer.Option(help="--corpus: all its languages, when a TSV or JSONL "
                                                   "corpus holds more than --src and --tgt")] = None,
    save_lexicon: Annotated[Path | None, typer.Option(help="write the induced lexicon here (TSV)")] = None,
    min_count: Annotated[int | None, typer.Option(help="--corpus: least sentence pairs a word pair is "
                                                       "in  [default: 3]")] = None,
    min_score: Annotated[float | None, typer.Option(help="--corpus: least Dice coefficient  "
                                                         "[default: 0.3]")] = None,
    rate: Annotated[float, typer.Option(help="share of the covered words switched")] = 0.3,
    span: Annotated[float, typer.Option(help="probability that a span goes on to the next word")] = 0.5,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="write {src: switched, tgt: original, "
                                                        "src_lang, tgt_lang} records")] = False,
) -> None:
    """Switch spans of words into their translations, line by line (blank lines stay blank). The
    lexicon is a TSV file (--lexicon), or induced from a parallel corpus (--corpus SPEC --src en
    --tgt de). With --jsonl, each non-blank line becomes a restore pair, switched text -> original,
    in the input's language: a polyseq corpus for the code-switching restore objective."""
    from random import Random

    from polyseq.data.codeswitch import switch_text

    with user_errors():
        given = [name for name, value in (("--min-count", min_count), ("--min-score", min_score),
                                          ("--langs", langs), ("--save-lexicon", save_lexicon))
                 if value is not None]
        if lexicon_file is not None and given:
            raise ValueError(f"{', '.join(given)}: only for a lexicon induced with --corpus, not one read "
                             f"with --lexicon")
        for name, value in (("--rate", rate), ("--span", span), ("--min-score", min_score)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if min_count is not None and min_count < 1:
            raise ValueError(f"--min-count must be at least 1, got {min_count}")
        # induce_lexicon's own defaults where the options are not given
        induction = {k: v for k, v in (("min_count", min_count), ("min_score", min_score)) if v is not None}
        read = [input, lexicon_file, *_corpus_files(corpus, [src, tgt, *(langs or "").split(",")])]
        check_outputs({"-o": output, "--save-lexicon": save_lexicon}, read)
        lines = input_lines(input)
        lexicon = _lexicon(lexicon_file, corpus, src, tgt, langs, save_lexicon, induction)
        rng = Random(seed)
        words = switched = covered = blank = 0
        with sink(output) as out:
            for line in lines:
                result = switch_text(line, lexicon, rng, rate, span)
                words, switched, covered = (words + result.words, switched + result.switched,
                                            covered + result.covered)
                if not jsonl:
                    out.write(result.text + "\n")
                elif not line.strip():
                    blank += 1  # a record needs text on both sides
                else:
                    out.write(json.dumps({"src": result.text, "tgt": line, "src_lang": lexicon.src_lang,
                                          "tgt_lang": lexicon.src_lang}, ensure_ascii=False) + "\n")
    share = f" ({100 * switched / covered:.1f}% of the {covered:,} the lexicon covers)" if covered else ""
    left_out = f"; blank lines left out: {blank:,}" if blank else ""
    typer.echo(f"switched {switched:,} of {words:,} words into {lexicon.tgt_lang}{share}{left_out}",
               err=True)


def _corpus_files(spec: str | None, languages: list[str | None]) -> list[Path]:
    """The files a corpus spec may name: itself (TSV, JSONL), or PREFIX.LANG for each language."""
    if spec is None:
        return []
    return [Path(spec), *(Path(f"{spec}.{lang}") for lang in languages if lang)]


def _lexicon(path: Path | None, corpus: str | None, src: str | None, tgt: str | None,
             langs: str | None, save: Path | None, induction: dict[str, Any]) -> Lexicon:
    """The lexicon the options name: read from `path`, or induced from `corpus` (and saved)."""
    from polyseq.data.codeswitch import Lexicon, induce_from_corpus

    if (path is None) == (corpus is None):
        raise ValueError("give either --lexicon FILE.tsv or --corpus SPEC --src LANG --tgt LANG")
    if path is not None:
        lexicon = Lexicon.load(path)
        for option, given, known in (("--src", src, lexicon.src_lang), ("--tgt", tgt, lexicon.tgt_lang)):
            if given is not None and given != known:
                raise ValueError(f"{option} {given} does not match {path}, whose languages are "
                                 f"{lexicon.src_lang} -> {lexicon.tgt_lang}")
        return lexicon
    if src is None or tgt is None:
        raise ValueError("--corpus needs --src and --tgt, the languages of the lexicon: e.g. --src en "
                         "--tgt de")
    languages = [lang for lang in (langs or "").split(",") if lang]
    lexicon = induce_from_corpus(corpus or "", src, tgt, languages, **induction)
    typer.echo(f"induced {len(lexicon):,} word pairs {src} -> {tgt} from {corpus}", err=True)
    if save is not None:
        lexicon.save(save)
    return lexicon
