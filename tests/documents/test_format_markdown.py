"""Markdown: generated documents round-trip byte for byte with the identity translator and keep
every protected span (and their layout) when every word is rewritten; known constructs are
checked one by one."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyseq.documents import check_preservation, protected_spans, translate_document
from polyseq.documents.protect import DocumentError

WORDS = st.sampled_from(["alpha", "Beta", "gamma", "déjà", "vu", "naïve", "the", "and", "über",
                         "Straße", "x", "to", "Ünïcode", "日本語"])
SENTINEL_LIKE = ["%(name)s", "%s", "%d", "{0}", "{name}", "{{ var }}", "${var}", "&amp;", "<br>",
                 "https://example.org/path?q=1", "user@example.com", "$x^2$", "[^1]"]
INLINE = st.one_of(
    WORDS, WORDS, WORDS,
    WORDS.map(lambda w: f"`{w}()`"),
    WORDS.map(lambda w: f"``a ` {w}``"),
    st.sampled_from(SENTINEL_LIKE),
    WORDS.map(lambda w: f"[{w} link](https://example.com/{w} \"Title\")"),
    WORDS.map(lambda w: f"![{w} image](img/{w}.png)"),
    WORDS.map(lambda w: f"**{w}**"),
    WORDS.map(lambda w: f"_{w} {w}_"),
    WORDS.map(lambda w: f"~~{w}~~"),
    WORDS.map(lambda w: f'<abbr title="{w} words">{w}</abbr>'),
    WORDS.map(lambda w: f"<code>{w} code</code>"),
)
SENTENCE = st.tuples(st.lists(INLINE, min_size=1, max_size=10).map(" ".join),
                     st.sampled_from([".", "!", "?", ":", ""])).map("".join)
LINE = st.lists(SENTENCE, min_size=1, max_size=3).map(" ".join)
ANCHOR = WORDS.map(lambda w: f" {{ #{w.lower()}-id }}")
CODE_LINE = st.one_of(WORDS, st.sampled_from(["x = {'a': 1}  # comment", "$ pip install x",
                                              "<b>not html</b>", "`tick`", "%(name)s"]))


@st.composite
def blocks(draw: st.DrawFn, wrapped: bool) -> str:
    kind = draw(st.sampled_from(["para", "para", "heading", "list", "fence", "indented",
                                 "include", "table", "quote", "admonition", "html", "math",
                                 "ordered", "setext", "hardbreak", "reference"]))
    line = draw(LINE)
    if kind == "para":
        lines = draw(st.lists(LINE, min_size=1, max_size=3)) if wrapped else [line]
        return "\n".join(lines)
    if kind == "heading":
        return "#" * draw(st.integers(1, 4)) + " " + line + draw(st.one_of(st.just(""), ANCHOR))
    if kind == "setext":
        return line + "\n" + draw(st.sampled_from(["===", "---"]))
    if kind in ("list", "ordered"):
        items = draw(st.lists(LINE, min_size=1, max_size=4))
        marker = draw(st.sampled_from(["*", "-", "+"])) if kind == "list" else None
        nested = draw(st.booleans())
        out = [f"{marker or f'{i + 1}.'} {item}" for i, item in enumerate(items)]
        if nested:
            out.append(("    " if marker is None else "  ") + f"- {line}")
        # a comment ends the list, so that an indented block after it is code, not a
        # continuation of the last item
        return "\n".join(out) + "\n\n<!-- end of list -->"
    if kind == "fence":
        code = "\n".join(draw(st.lists(CODE_LINE, max_size=4)))
        fence = draw(st.sampled_from(["```", "~~~", "````"]))
        return f"{fence}{draw(st.sampled_from(['', 'python', 'console']))}\n{code}\n{fence}"
    if kind == "indented":
        return "\n".join("    " + c for c in draw(st.lists(CODE_LINE, min_size=1, max_size=3)))
    if kind == "include":
        return "{* ../../docs_src/app/" + draw(WORDS) + ".py hl[3:4] *}"
    if kind == "table":
        cells = draw(st.lists(st.lists(LINE.map(lambda s: s.replace("|", "/")), min_size=2,
                                       max_size=2), min_size=1, max_size=3))
        rows = ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join([rows[0], "|---|---|", *rows[1:]])
    if kind == "quote":
        return "> " + line
    if kind == "admonition":
        return f"/// tip | {draw(WORDS)} title\n\n{line}\n\n///"
    if kind == "html":
        return f'<div class="note">\n<p>{draw(WORDS)} <b>{draw(WORDS)}</b> text</p>\n</div>'
    if kind == "math":
        return "$$\nx^2 + " + draw(WORDS) + "\n$$"
    if kind == "hardbreak":  # soft-wrapped lines after the break, when wrapped
        return line + "  \n" + "\n".join(draw(st.lists(LINE, min_size=1, max_size=3 if wrapped else 1)))
    return f"[{draw(WORDS)} ref][site]\n\n[site]: https://example.com/ref"


@st.composite
def documents(draw: st.DrawFn, wrapped: bool = True) -> str:
    parts = draw(st.lists(blocks(wrapped), min_size=1, max_size=8))
    text = draw(st.sampled_from(["\n\n", "\n\n\n"])).join(parts)
    if draw(st.booleans()):
        text = f"---\ntitle: {draw(WORDS)} page\nslug: x-y\n---\n\n" + text
    text += draw(st.sampled_from(["", "\n", "\n\n"]))
    return text.replace("\n", "\r\n") if draw(st.booleans()) else text


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(documents())
def test_identity_gives_the_document_back_byte_for_byte(identity, text: str) -> None:
    assert translate_document(text, "markdown", identity).text == text


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"],
                                     exclude_characters="\x00"), max_size=300))
def test_identity_on_arbitrary_text(identity, text: str) -> None:
    try:
        out = translate_document(text, "markdown", identity).text
    except DocumentError as error:  # an unclosed fence: said, not silently mangled
        assert "never closed" in str(error)
        return
    assert out == text


@SETTINGS
@given(documents())
def test_rewriting_keeps_every_protected_span(rewrite, text: str) -> None:
    result = translate_document(text, "markdown", rewrite)
    report = check_preservation(text, result.text, "markdown")
    assert report.ok, str(report)
    if result.summary.sentences:
        assert result.text != text


def _layout(line: str) -> str:
    """Indentation and block markers at the start of a line (a list or heading marker is one
    only when a space or the line's end follows: "**bold**" is none)."""
    match = re.match(r"\s*(?:(?:[-*+]|\d+\.|#+)(?:[ \t]+|$)|(?:>|\||/{3,})\s*)*", line)
    return match.group(0) if match else ""


@SETTINGS
@given(st.booleans().flatmap(documents))  # soft-wrapped paragraphs are re-flowed line for line
def test_rewriting_keeps_the_layout(rewrite, text: str) -> None:
    out = translate_document(text, "markdown", rewrite).text
    source_lines, out_lines = text.splitlines(keepends=True), out.splitlines(keepends=True)
    assert len(out_lines) == len(source_lines)
    for before, after in zip(source_lines, out_lines, strict=True):
        assert _layout(after) == _layout(before)
        assert after[len(after.rstrip("\r\n")):] == before[len(before.rstrip("\r\n")):]
        assert (before.strip() == "") == (after.strip() == "")


@pytest.mark.parametrize("fault", ["drop", "double", "garble"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents())
def test_faulty_translators_are_repaired(make_faulty, fault: str, text: str) -> None:
    result = translate_document(text, "markdown", make_faulty(fault))
    assert check_preservation(text, result.text, "markdown").ok


SAMPLE = """---
title: Getting started
tags: [a, b]
---

# First steps { #first-steps }

Install with `pip install "fastapi[standard]"` and read [the guide](https://example.com/guide).

{* ../../docs_src/first_steps/tutorial001.py hl[3] *}

/// tip | Good to know

Use <abbr title="Application Programming Interface">API</abbr> docs at http://127.0.0.1:8000/docs.

///

| Name | Meaning |
|------|---------|
| `id` | The identifier \\| key |

Math $e^{i\\pi} + 1 = 0$ and

$$
\\int_0^1 x\\,dx
$$

```python
print("Hello world")  # stays English
```

    indented code stays too

![A small logo](img/logo.png "Logo title")
"""


def test_known_constructs(rewrite) -> None:
    out = translate_document(SAMPLE, "markdown", rewrite).text
    kept = ['pip install "fastapi[standard]"', "](https://example.com/guide)",
            "{* ../../docs_src/first_steps/tutorial001.py hl[3] *}", "{ #first-steps }",
            "http://127.0.0.1:8000/docs", "`id`", "\\|", "$e^{i\\pi} + 1 = 0$",
            "\\int_0^1 x\\,dx", 'print("Hello world")  # stays English',
            "    indented code stays too", "](img/logo.png \"Logo title\")", "tags: [a, b]",
            "/// tip | ", '<abbr title="', '">', "</abbr>", "| Name | Meaning |"[:2]]
    for piece in kept:
        assert piece in out, piece
    translated = ["Getting started", "First steps", "Good to know", "Application Programming",
                  "A small logo", "The identifier", "Meaning", "Install with", "| key"]
    for phrase in translated:
        assert phrase not in out, phrase
        first = rewrite([phrase.split()[0]])[0]
        assert first in out, first
    assert out.count("\n") == SAMPLE.count("\n")


def test_multi_line_paragraph_is_translated_whole_and_rewrapped(rewrite, recording) -> None:
    text = "> The first line of a quote that\n> goes on here with `code` and\n> ends here.\n"
    spy, calls = recording(rewrite)
    out = translate_document(text, "markdown", spy).text
    assert calls == ["The first line of a quote that goes on here with ⟦1⟧ and ends here."]
    assert all(line.startswith("> ") for line in out.splitlines())
    assert "`code`" in out


def test_shortcut_reference_links_keep_their_label(rewrite) -> None:
    text = "See [Django] and [the docs][ref].\n\n[Django]: https://djangoproject.com\n" \
           "[ref]: https://docs.example.com\n"
    out = translate_document(text, "markdown", rewrite).text
    assert "[Django]" in out and "][ref]" in out
    assert out.endswith("[Django]: https://djangoproject.com\n[ref]: https://docs.example.com\n")


def test_unclosed_fence_is_an_error_naming_file_and_line(identity) -> None:
    text = "# Title\n\nSome text.\n\n```python\nprint(1)\n"
    with pytest.raises(DocumentError, match=r"^notes\.md, line 5: the code fence ``` .*Close"):
        translate_document(text, "markdown", identity, source="notes.md")


def test_protected_spans_counts_by_kind() -> None:
    spans = protected_spans(SAMPLE, "markdown")
    kinds = {kind for kind, _ in spans}
    assert {"code_block", "inline_code", "url", "include", "anchor", "math", "html_tag",
            "front_matter", "directive"} <= kinds
    assert sum(n for (kind, _), n in spans.items() if kind == "code_block") == 2


def test_mkdocs_admonition_title_and_body_are_translated(rewrite) -> None:
    text = '!!! warning "Mind the gap"\n    Keep `x` here.\n'
    out = translate_document(text, "markdown", rewrite).text
    mind, the, gap, keep, here = rewrite(["Mind", "the", "gap", "Keep", "here"])
    assert out == f'!!! warning "{mind} {the} {gap}"\n    {keep} `x` {here}.\n'


def mapping(table: dict[str, str]) -> Callable[[list[str]], list[str]]:
    """A translator with fixed outputs (what a model might write); other texts come back as they are."""
    return lambda texts: [table.get(t, t) for t in texts]


@pytest.mark.parametrize(("text", "table", "expected"), [
    ("Intro.\n\nFirst place goes to Bob.\n", {"First place goes to Bob.": "1. Platz geht an Bob."},
     "Intro.\n\n1\\. Platz geht an Bob.\n"),
    ("- Plus sign\n", {"Plus sign": "+ Zeichen"}, "- \\+ Zeichen\n"),
    ("> Quoted text\n", {"Quoted text": "> Zitat"}, "> \\> Zitat\n"),
    ("Line one here  \nSecond line.\n", {"Line one here⟦1⟧Second line.": "Zeile eins⟦1⟧# zwei"},
     "Zeile eins  \n\\# zwei\n"),
    ("| Input or output | b |\n|---|---|\n| c | d |\n", {"Input or output": "Eingabe | Ausgabe"},
     "| Eingabe \\| Ausgabe | b |\n|---|---|\n| c | d |\n"),
])
def test_translated_prose_cannot_change_the_blocks(text: str, table: dict[str, str],
                                                   expected: str) -> None:
    out = translate_document(text, "markdown", mapping(table)).text
    assert out == expected
    assert check_preservation(text, out, "markdown").ok


@pytest.mark.parametrize(("text", "broken"), [
    ("Intro.\n\nFirst place goes to Bob.\n", "Intro.\n\n1. Platz geht an Bob.\n"),
    ("| a | b |\n|---|---|\n| Input or output | d |\n",
     "| a | b |\n|---|---|\n| Eingabe | Ausgabe | d |\n"),
])
def test_check_preservation_sees_changed_blocks(text: str, broken: str) -> None:
    report = check_preservation(text, broken, "markdown")
    assert not report.ok
    assert any(problem.startswith("block ") for problem in report.problems), str(report)


def test_toml_front_matter_is_kept_and_its_title_translated(rewrite) -> None:
    text = ('+++\ntitle = "Hello world" # shown on the page\ndescription = \'A short page\'\n'
            'draft = true\ntags = ["a", "b"]\n+++\n\nBody text.\n')
    out = translate_document(text, "markdown", rewrite).text
    hello, world, a, short, page, body, text_ = rewrite(["Hello", "world", "A", "short", "page",
                                                         "Body", "text"])
    assert out == (f'+++\ntitle = "{hello} {world}" # shown on the page\n'
                   f"description = '{a} {short} {page}'\ndraft = true\ntags = [\"a\", \"b\"]\n"
                   f"+++\n\n{body} {text_}.\n")
    tomllib = pytest.importorskip("tomllib")
    front = out.split("+++")[1]
    assert tomllib.loads(front)["title"] == f"{hello} {world}"
    quoted = translate_document("+++\ntitle = 'Hello world'\n+++\n", "markdown",
                                mapping({"Hello world": "L'été"})).text
    assert quoted == '+++\ntitle = "L\'été"\n+++\n'


@pytest.mark.parametrize(("line", "table", "expected"), [
    ("title: Hello world # a comment", {"Hello world": "Hallo Welt"},
     "title: Hallo Welt # a comment"),
    ("title: Note", {"Note": "Hinweis:"}, 'title: "Hinweis:"'),
    ("title: Note", {"Note": "Yes"}, 'title: "Yes"'),
    ("title: Note", {"Note": "10 Tipps"}, 'title: "10 Tipps"'),
    ("title: Learn C# fast", {"Learn C# fast": "C# schnell lernen"}, "title: C# schnell lernen"),
])
def test_yaml_front_matter_keeps_comments_and_quotes_what_yaml_would_misread(
    line: str, table: dict[str, str], expected: str
) -> None:
    out = translate_document(f"---\n{line}\n---\n", "markdown", mapping(table)).text
    assert out == f"---\n{expected}\n---\n"
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(out.split("---")[1])["title"] == next(iter(table.values()))


def test_check_preservation_sees_a_translated_front_matter_comment() -> None:
    text = "---\ntitle: Hello world # a comment\n---\n"
    assert not check_preservation(text, '---\ntitle: "HALLO WELT # EIN KOMMENTAR"\n---\n',
                                  "markdown").ok


def test_tables_in_blockquotes_are_translated(rewrite) -> None:
    text = "> | Name | Value |\n> |---|---|\n> | one thing | two |\n"
    out = translate_document(text, "markdown", rewrite).text
    name, value, one, thing, two = rewrite(["Name", "Value", "one", "thing", "two"])
    assert out == f"> | {name} | {value} |\n> |---|---|\n> | {one} {thing} | {two} |\n"


def test_github_alerts_and_task_boxes_are_not_prose(recording) -> None:
    text = "> [!NOTE]\n> Be careful here.\n\n- [x] done item\n- [ ] open item\n"
    spy, calls = recording(mapping({"Be careful here.": "Vorsicht hier.", "done item": "erledigt",
                                    "open item": "offen"}))
    out = translate_document(text, "markdown", spy).text
    assert calls == ["Be careful here.", "done item", "open item"]
    assert out == "> [!NOTE]\n> Vorsicht hier.\n\n- [x] erledigt\n- [ ] offen\n"
    assert not check_preservation(text, out.replace("[!NOTE]", "[!HINWEIS]"), "markdown").ok


@pytest.mark.parametrize(("text", "table", "expected"), [
    ("Line one here  \nline two is here\nline three is here\n",
     {"Line one here⟦1⟧line two is here line three is here":
      "Zeile eins hier⟦1⟧Zeile zwei ist hier, Zeile drei ist hier"},
     "Zeile eins hier  \nZeile zwei ist hier,\nZeile drei ist hier\n"),
    ("> Line one here\\\n> line two is here\n> line three is here\n",
     {"Line one here⟦1⟧line two is here line three is here":
      "Zeile eins hier⟦1⟧Zeile zwei ist hier, Zeile drei ist hier"},
     "> Zeile eins hier\\\n> Zeile zwei ist hier,\n> Zeile drei ist hier\n"),
    ("Use `some\ncode` here and\nmore text\n", {"Use ⟦1⟧ here and more text": "Nimm ⟦1⟧ hier und mehr"},
     "Nimm `some\ncode` hier und\nmehr\n"),
])
def test_line_breaks_inside_a_paragraph_keep_its_line_count(
    text: str, table: dict[str, str], expected: str
) -> None:
    assert translate_document(text, "markdown", mapping(table)).text == expected
