"""The public API: translate_document with callables and a real Translator, translate_document_file
(atomic, never over its input), clear errors for bad input, and preservation checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polyseq.documents import (
    DocumentError,
    TranslatorError,
    check_file,
    check_preservation,
    default_output,
    read_document,
    translate_document,
    translate_document_file,
)

MARKDOWN = "# Title { #title }\n\nRun `make test` and see https://example.com.\n"


def test_summary_counts_segments_spans_and_repairs(rewrite) -> None:
    result = translate_document(MARKDOWN, "markdown", rewrite)
    summary = result.summary
    assert (summary.format, summary.segments, summary.sentences) == ("markdown", 2, 2)
    assert summary.protected_by_kind == {"anchor": 1, "inline_code": 1, "url": 1}
    assert summary.spans_protected == 3 and summary.repairs == 0
    assert "2 segments" in str(summary) and "3 spans protected" in str(summary)


def test_identical_sentences_are_translated_once(rewrite) -> None:
    calls: list[list[str]] = []
    text = "Hello there.\n\nHello there.\n\nBye.\n"
    translate_document(text, "plain", lambda t: calls.append(t) or rewrite(t))
    assert calls == [["Hello there.", "Bye."]]


def test_batches_respect_batch_size(rewrite) -> None:
    sizes: list[int] = []
    text = "\n\n".join(f"Sentence number {'x' * i}." for i in range(10))
    translate_document(text, "plain", lambda t: sizes.append(len(t)) or rewrite(t), batch_size=4)
    assert sizes == [4, 4, 2]


def test_translator_breaking_its_contract_is_reported(rewrite) -> None:
    with pytest.raises(TranslatorError, match="returned 1 results for 2 segments"):
        translate_document("One.\n\nTwo.\n", "plain", lambda t: t[:1])


def test_a_translator_object_needs_a_target_language(tiny_model_dir: Path) -> None:
    from polyseq.translator import Translator

    translator = Translator.load(tiny_model_dir)
    with pytest.raises(DocumentError, match="target language"):
        translate_document("Hello.", "plain", translator)


def test_real_translator_keeps_every_protected_span(tiny_model_dir: Path) -> None:
    from polyseq.translator import Translator

    translator = Translator.load(tiny_model_dir)
    text = ("# Numbers { #numbers }\n\nWrite `42` as %(n)s, see https://example.com.\n\n"
            "```python\nprint(42)\n```\n\n| one | two |\n|---|---|\n| three `x` | four |\n")
    result = translate_document(text, "markdown", translator, src_lang="en", tgt_lang="de")
    assert check_preservation(text, result.text, "markdown").ok
    assert result.summary.sentences > 0


def test_translate_file_writes_next_to_the_input_and_keeps_it(tmp_path: Path, rewrite) -> None:
    source = tmp_path / "README.md"
    source.write_text(MARKDOWN, encoding="utf-8")
    result = translate_document_file(source, translator=rewrite, tgt_lang="de")
    target = tmp_path / "README.de.md"
    assert target.read_text(encoding="utf-8") == result.text != MARKDOWN
    assert source.read_text(encoding="utf-8") == MARKDOWN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.de.md", "README.md"]
    assert default_output("a/b.po", "fr") == Path("a/b.fr.po")


def test_translate_file_never_writes_over_its_input(tmp_path: Path, rewrite) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("Keep me.\n")
    for output in (source, tmp_path / "." / "notes.txt"):
        with pytest.raises(DocumentError, match="never writes over its input"):
            translate_document_file(source, output, translator=rewrite)
    assert source.read_text() == "Keep me.\n"


def test_a_failed_translation_writes_nothing(tmp_path: Path) -> None:
    source, target = tmp_path / "a.txt", tmp_path / "a.de.txt"
    source.write_text("Some text.\n")
    target.write_text("previous translation\n")

    def broken(texts: list[str]) -> list[str]:
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        translate_document_file(source, target, translator=broken)
    assert target.read_text() == "previous translation\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.de.txt", "a.txt"]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("logo.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
     r"logo\.md, line 3, column 1: a NUL byte; this is a binary file"),
    ("latin.txt", b"Caf\xe9\nna\xefve\n", r"latin\.txt, line 1, column 4: not valid UTF-8"),
    ("bad.json", b'{"a": [1, 2}', r"bad\.json, line 1, column 12: not valid JSON"),
    ("bad.po", b'msgid "a"\nmsgstr "b\n', r"bad\.po, line 2: not a valid \.po catalog"),
    ("open.md", b"Text\n\n```\ncode\n", r"open\.md, line 3: the code fence ``` opened here"),
    ("notes.rst", b"Title\n=====\n", r"notes\.rst: cannot tell the document format"),
])
def test_bad_input_is_named_and_nothing_is_written(tmp_path: Path, rewrite, name: str,
                                                    data: bytes, message: str) -> None:
    source = tmp_path / name
    source.write_bytes(data)
    with pytest.raises(DocumentError, match=message):
        translate_document_file(source, tmp_path / f"out-{name}", translator=rewrite, tgt_lang="de")
    assert source.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_byte_order_mark_and_crlf_survive(tmp_path: Path, rewrite) -> None:
    source = tmp_path / "bom.md"
    source.write_bytes("\ufeff# Title\r\n\r\nSome *text*.\r\n".encode())
    target = tmp_path / "bom.de.md"
    translate_document_file(source, target, translator=rewrite)
    data = target.read_bytes()
    assert data.startswith("\ufeff# ".encode()) and data.count(b"\r\n") == 3
    assert read_document(target).endswith(f"{rewrite(['Some'])[0]} *{rewrite(['text'])[0]}*.\r\n")


def test_check_reports_lost_and_changed_spans(tmp_path: Path, rewrite) -> None:
    source, target = tmp_path / "a.md", tmp_path / "a.de.md"
    source.write_text(MARKDOWN)
    translate_document_file(source, target, translator=rewrite)
    assert check_file(source, target).ok
    target.write_text(re.sub("`make test`", "`make tests`", target.read_text()))
    report = check_file(source, target)
    assert not report.ok
    assert report.rate("inline_code") == 0.0 and report.rate("url") == 1.0
    assert "inline_code '`make test`': 1 in source, 0 in translation" in report.problems
    assert "NOT preserved" in str(report)


def test_binary_text_given_as_a_string_is_refused(identity) -> None:
    with pytest.raises(DocumentError, match=r"^blob\.txt, character 3: this looks like binary"):
        translate_document("abc\x00def", "plain", identity, source="blob.txt")


STRUCTURED = ("Use **bold** and _this_ word, see [the guide](https://example.com/guide) "
              "or <b>tags</b> too, **even <dfn>nested</dfn>** ones.\n")


def test_spacing_inside_emphasis_and_links_is_made_as_in_the_source(make_faulty, rewrite) -> None:
    result = translate_document(STRUCTURED, "markdown", make_faulty("pad"))
    assert result.summary.repairs == 0
    words = rewrite(["bold", "this", "the", "guide", "tags"])
    assert (f"**{words[0]}**" in result.text and f"_{words[1]}_" in result.text
            and f"[{words[2]} {words[3]}](https://example.com/guide)" in result.text
            and f"<b>{words[4]}</b>" in result.text and "</dfn>** " in result.text), result.text
    assert check_preservation(STRUCTURED, result.text, "markdown").ok


@pytest.mark.parametrize("fault", ["reverse", "bunch"])
def test_reordered_or_emptied_structure_is_repaired(make_faulty, fault: str) -> None:
    result = translate_document(STRUCTURED, "markdown", make_faulty(fault))
    assert result.summary.repairs == 1
    report = check_preservation(STRUCTURED, result.text, "markdown")
    assert report.ok, f"{report}\n{result.text}"


def test_placeholders_may_move_without_a_repair() -> None:
    moved = translate_document("Send %(count)s files to {user}.", "plain",
                               lambda texts: [t.replace("⟦1⟧", "X").replace("⟦2⟧", "⟦1⟧")
                                              .replace("X", "⟦2⟧") for t in texts])
    assert moved.summary.repairs == 0
    assert moved.text == "Send {user} files to %(count)s."


def test_repaired_pieces_keep_their_own_edges_so_markup_survives() -> None:
    def sentences_only(texts: list[str]) -> list[str]:
        """Like a real model on fragments: drops sentinels and brackets, adds quotes and a stop."""
        return ["„" + re.sub(r"⟦\d+⟧|[()]", "", t).strip().upper() + ".“" for t in texts]

    text = "The **server** program (for example **Uvicorn** via **FastAPI CLI**) is fast.\n"
    result = translate_document(text, "markdown", sentences_only)
    assert result.summary.repairs == 1
    assert result.text == ("THE **SERVER** PROGRAM FOR EXAMPLE **UVICORN** VIA **FASTAPI CLI**) "
                           "IS FAST.\n")
    assert check_preservation(text, result.text, "markdown").ok
