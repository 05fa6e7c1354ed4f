"""Glossaries: files read as DeepL writes them, terms found whole and longest first, and written
back as their translations in every format and in lines (`translate --glossary`), whatever the
model does to their sentinels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.documents import translate_document, translate_texts
from polyseq.documents.glossary import Glossary, GlossaryError
from polyseq.documents.protect import Segment, mask

Translate = Callable[[list[str]], list[str]]
TERMS = {"pull request": "Pull-Request", "polyseq": "polyseq", "GitHub Actions": "GitHub Actions",
         "GitHub": "GitHub", "branch": "Zweig"}


def test_files_are_read_as_deepl_writes_them_and_bad_lines_are_named(tmp_path: Path) -> None:
    tsv = tmp_path / "terms.tsv"
    tsv.write_text("# product names first\npolyseq\n\npull request\tPull-Request\nbranch \t Zweig\n",
                   encoding="utf-8")
    expected = {"polyseq": "polyseq", "pull request": "Pull-Request", "branch": "Zweig"}
    assert Glossary.load(tsv).terms == expected
    csv = tmp_path / "terms.csv"
    csv.write_text('"merge, squash",Squash-Merge\nGitHub\n', encoding="utf-8")
    assert Glossary.load(csv).terms == {"merge, squash": "Squash-Merge", "GitHub": "GitHub"}
    wrong = "line 1: 'a\\tb\\tc' is not a term and its translation separated by a tab"
    for body, fault in [("a\tb\tc\n", wrong),
                        ("ok\tgut\n\tgut\n", "line 2"),
                        ("x\ty\nx\tz\n", "line 2: 'x' is listed twice, as 'y' and 'z'")]:
        tsv.write_text(body, encoding="utf-8")
        with pytest.raises(GlossaryError, match=fault.replace("\\", "\\\\")):
            Glossary.load(tsv)
    with pytest.raises(GlossaryError, match="does not exist|No such file"):
        Glossary.load(tmp_path / "missing.tsv")
    with pytest.raises(GlossaryError, match="an empty term"):
        Glossary({"": "x"})


def test_terms_match_whole_longest_first_and_at_a_sentence_start() -> None:
    glossary = Glossary(TERMS)
    text = "Pull request checks run in GitHub Actions; GitHubber and branches are words of their own."
    assert [(text[s:e], out) for s, e, out in glossary.matches(text)] == [
        ("Pull request", "Pull-Request"), ("GitHub Actions", "GitHub Actions")]
    assert Glossary({"GPU": "GPU"}).matches("a gpu") == []  # case-sensitive but for a first letter


def test_terms_in_scripts_without_spaces_match_inside_running_text() -> None:
    glossary = Glossary({"東京": "Tokyo", "ファイル": "file", "กรุงเทพ": "Bangkok", "cat": "Katze"})
    text = "東京に行く。ファイルを開く。ไปกรุงเทพฯ cat category Tokyoに"
    assert [(text[s:e], out) for s, e, out in glossary.matches(text)] == [
        ("東京", "Tokyo"), ("ファイル", "file"), ("กรุงเทพ", "Bangkok"), ("cat", "Katze")]
    assert Glossary({"Tokyo": "Tōkyō"}).matches("Tokyoに") == [(0, 5, "Tōkyō")]  # no space after a name
    lines = translate_texts(["東京に行く"], lambda texts: texts, glossary={"東京": "Tokyo"})
    assert lines.texts == ["Tokyoに行く"]


def test_a_term_inside_a_protected_span_is_left_to_the_span() -> None:
    segment = Segment("See `git branch` at https://example.com/branch and the branch list.",
                      raw="")
    masked = mask(segment, Glossary(TERMS))
    assert [(span.kind, span.text, span.output) for span in masked.spans] == [
        ("inline_code", "`git branch`", None), ("url", "https://example.com/branch", None),
        ("glossary", "branch", "Zweig")]
    assert masked.text == "See ⟦1⟧ at ⟦2⟧ and the ⟦3⟧ list."


@pytest.mark.parametrize(("name", "document", "expected"), [
    ("markdown", "# Open a pull request\n\nPush the branch, then open a pull request on GitHub.\n",
     ["# qNEPo q Pull-Request\n",
      "qHSUp qEHT Zweig, qNEHT qNEPO q Pull-Request qNO GitHub."]),
    ("po", 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
           'msgid "Delete branch %(name)s"\nmsgstr ""\n\nmsgid "polyseq"\nmsgstr ""\n',
     ['msgstr "qETELEd Zweig %(name)s"', 'msgid "polyseq"\nmsgstr "polyseq"']),
    ("json", '{"title": "{count, plural, one {# branch} other {# branches}}", "name": "GitHub"}',
     ['"{count, plural, one {# Zweig} other {# qSEHCNARB}}"', '"name": "GitHub"']),
])
def test_every_format_writes_the_terms_translations(name: str, document: str, expected: list[str],
                                                    rewrite: Translate) -> None:
    """A term alone in a segment (a .po msgid, a JSON value) is written too, though nothing is
    left for the model; in an ICU message, in each branch."""
    result = translate_document(document, name, rewrite, glossary=TERMS, src_lang="en", tgt_lang="de")
    for part in expected:
        assert part in result.text, result.text
    assert result.summary.protected_by_kind["glossary"] >= 2


@pytest.mark.parametrize("fault", ["drop", "double", "garble", "pad", "reverse", "bunch"])
def test_a_model_that_breaks_the_sentinels_still_gets_the_terms(
        fault: str, make_faulty: Callable[[str], Translate]) -> None:
    result = translate_document("Merge the pull request into the branch.\n", "plain", make_faulty(fault),
                                glossary=TERMS)
    # each exactly once (a model may move a term: word order differs between languages)
    assert result.text.count("Pull-Request") == result.text.count("Zweig") == 1, result.text


def test_translate_file_takes_a_glossary_with_a_real_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Twelve\n\nOpen a pull request on GitHub with twenty one files.\n", encoding="utf-8")
    terms = tmp_path / "terms.tsv"
    terms.write_text("pull request\tPull-Request\nGitHub\n", encoding="utf-8")
    args = ["translate-file", str(page), "--model", str(tiny_model_dir), "--src", "en", "--tgt", "de",
            "--glossary", str(terms), "--strategy", "greedy"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    translated = (tmp_path / "page.de.md").read_text(encoding="utf-8")
    assert "Pull-Request" in translated and "GitHub" in translated, translated
    terms.write_text("a\tb\tc\n", encoding="utf-8")
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "again.md")])
    assert result.exit_code == 2 and "terms.tsv, line 1" in result.output
    assert not (tmp_path / "again.md").exists()


LINES = ["Merge the pull request.", "", "  Open a branch at https://example.com/branch  ",
         "Push the branch that", "continues with {name}.", "Pull request one. Pull request two."]


def test_lines_are_translated_one_by_one_with_the_terms(
        recording: Callable[[Translate], tuple[Translate, list[str]]], rewrite: Translate) -> None:
    """Each line its own unit: a hard-wrapped sentence is not joined with the next line (as the
    plain format would), blank lines stay blank, edge spaces and URLs stay, long lines are cut
    into sentences, and a line that is only a term needs no call to the model."""
    translate, calls = recording(rewrite)
    result = translate_texts([*LINES, "GitHub"], translate, glossary=TERMS)
    assert result.texts == [
        "qEGREm qEHT Pull-Request.", "", "  qNEPo q Zweig qTA https://example.com/branch  ",
        "qHSUp qEHT Zweig qTAHT", "qSEUNITNOC qHTIW {name}.", "Pull-Request qENO. Pull-Request qOWT.",
        "GitHub"]
    assert calls == ["Merge the ⟦1⟧.", "Open a ⟦1⟧ at ⟦2⟧", "Push the ⟦1⟧ that",
                     "continues with ⟦1⟧.", "⟦1⟧ one.", "⟦2⟧ two."]
    summary = result.summary
    assert (summary.format, summary.segments, summary.repairs) == ("texts", 6, 0)
    assert summary.protected_by_kind == {"glossary": 6, "placeholder": 1, "url": 1}


@pytest.mark.parametrize("fault", ["drop", "double", "garble", "pad", "reverse", "bunch"])
def test_lines_keep_their_terms_when_the_model_breaks_sentinels(
        fault: str, make_faulty: Callable[[str], Translate]) -> None:
    result = translate_texts(LINES, make_faulty(fault), glossary=TERMS)
    assert len(result.texts) == len(LINES) and result.texts[1] == ""
    for source, line in zip(LINES, result.texts, strict=True):
        # a term once for each time the line has it, wherever the model moved it
        assert line.count("Pull-Request") == source.lower().count("pull request"), line
        assert line.count("Zweig") == source.count("branch") - source.count("/branch"), line
    assert "https://example.com/branch" in result.texts[2] and "{name}" in result.texts[4]


def _translate_lines(model: Path, args: list[str], text: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["translate", "--model", str(model), "--src", "en", "--tgt", "de",
                                      "--strategy", "greedy", *args], input=text)
    return result.exit_code, result.stdout if result.exit_code == 0 else result.stderr


def test_translate_takes_a_glossary_with_a_real_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    terms = tmp_path / "terms.tsv"
    terms.write_text("pull request\tPull-Request\nGitHub\n", encoding="utf-8")
    text = "twenty one pull request\n\nGitHub twelve\nthree hundred\n"
    code, output = _translate_lines(tiny_model_dir, ["--glossary", str(terms)], text)
    assert code == 0, output
    lines = output.split("\n")
    assert len(lines) == 5 and lines[1] == "" and lines[4] == "", lines  # 4 lines, each ended
    assert "Pull-Request" in lines[0] and "GitHub" in lines[2] and lines[3], lines
    assert "Pull-Request" not in lines[3] and "GitHub" not in lines[3]
    target = tmp_path / "out.de"
    result = CliRunner().invoke(app, ["translate", "-m", str(tiny_model_dir), "--src", "en", "--tgt",
                                      "de", "-s", "greedy", "--glossary", str(terms), "-o", str(target),
                                      "--stats"], input=text)
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == output  # the same lines into a file
    assert "translated 4 lines (2 glossary terms" in result.stderr and '"forward_passes"' in result.stderr


@pytest.mark.parametrize(("args", "refused"), [
    (["--n-best", "2", "-s", "beam"], "--n-best 2"),
    (["--format", "jsonl"], "--format jsonl"),
    (["--rerank", "normalised"], "--rerank"),
    (["--prefix", "Ein"], "--prefix"),
    (["--shards", "2", "-i", "in.txt", "-o", "out.txt"], "--shards 2"),
])
def test_translate_refuses_what_cannot_go_with_a_glossary(args: list[str], refused: str,
                                                          tmp_path: Path) -> None:
    """Refused before the model loads: the model folder here is not even a model."""
    terms = tmp_path / "terms.tsv"
    terms.write_text("GitHub\n", encoding="utf-8")
    code, error = _translate_lines(tmp_path / "no-model", ["--glossary", str(terms), *args], "one\n")
    assert code == 2 and f"--glossary cannot be combined with {refused}:" in error, error
    assert len(error.strip().splitlines()) == 1


def test_translate_refuses_a_bad_glossary_before_the_model_loads(tmp_path: Path) -> None:
    terms = tmp_path / "terms.tsv"
    terms.write_text("GitHub\na\tb\tc\n", encoding="utf-8")
    code, error = _translate_lines(tmp_path / "no-model", ["--glossary", str(terms)], "one\n")
    assert code == 2 and "terms.tsv, line 2" in error and "config.json" not in error, error
