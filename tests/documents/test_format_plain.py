"""Plain text: paragraphs, blank lines, indentation and line endings kept; hard-wrapped
sentences translated whole and re-wrapped to the original width."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyseq.documents import check_preservation, translate_document

WORDS = st.sampled_from(["the", "Quick", "brown", "fox.", "jumps", "%(n)s", "{0}", "over",
                         "https://example.com/a", "`code`", "a@b.org", "Dog!", "ünïcode"])
LINE = st.tuples(st.sampled_from(["", "  ", "\t"]), st.lists(WORDS, min_size=1, max_size=9),
                 st.sampled_from(["", " "])).map(lambda t: t[0] + " ".join(t[1]) + t[2])
TEXTS = st.tuples(
    st.lists(st.one_of(LINE, st.just(""), st.just("   ")), max_size=12),
    st.sampled_from(["\n", "\r\n"]), st.booleans(),
).map(lambda t: t[1].join(t[0]) + (t[1] if t[2] else ""))
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    database=None)


@SETTINGS
@given(st.one_of(TEXTS, st.text(st.characters(exclude_characters="\x00"), max_size=200)))
def test_identity_gives_the_text_back_byte_for_byte(identity, text: str) -> None:
    assert translate_document(text, "plain", identity).text == text


def _blocks(text: str) -> list[str]:
    """Each paragraph's first-line indentation, in order: the paragraph structure."""
    out, previous_blank = [], True
    for line in text.splitlines():
        if line.strip() and previous_blank:
            out.append(line[: len(line) - len(line.lstrip())])
        previous_blank = not line.strip()
    return out


@SETTINGS
@given(TEXTS)
def test_rewriting_keeps_paragraphs_and_spans(rewrite, text: str) -> None:
    out = translate_document(text, "plain", rewrite).text
    assert _blocks(out) == _blocks(text)
    assert check_preservation(text, out, "plain").ok
    assert out.endswith("\n") == text.endswith("\n")
    assert ("\r\n" in out) == ("\r\n" in text)


def test_one_sentence_per_line_stays_one_per_line(rewrite) -> None:
    text = "First sentence.\nSecond one.\n\n  Third, indented.\n"
    out = translate_document(text, "plain", rewrite).text
    expected = "\n".join(rewrite(["First sentence.", "Second one.", "", "  Third, indented."]))
    assert out == expected + "\n"


def test_hard_wrapped_sentence_is_joined_and_rewrapped(rewrite) -> None:
    text = "    This sentence was wrapped\n    by hand at a narrow\n    width.\n"
    seen: list[str] = []
    out = translate_document(text, "plain", lambda t: seen.extend(t) or rewrite(t)).text
    assert seen == ["This sentence was wrapped by hand at a narrow width."]
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.startswith("    ") for line in lines)
    assert " ".join(line.strip() for line in lines) == rewrite(seen)[0]


def test_line_separators_inside_a_line_are_kept(rewrite) -> None:
    """Only \\n, \\r\\n and \\r end a line; U+2028 or a form feed is a character in it."""
    text = "Hello\u2028world here.\nPage\x0cone.\n"
    out = translate_document(text, "plain", rewrite).text
    assert out == "\n".join(rewrite(["Hello\u2028world here.", "Page\x0cone."])) + "\n"


def test_rewrapped_lines_keep_their_trailing_spaces_endings_and_indents(rewrite) -> None:
    text = "A line that goes  \r\n  on and on\n\tuntil here.\n"
    out = translate_document(text, "plain", rewrite).text
    lines = out.splitlines(keepends=True)
    assert [line[len(line.rstrip(" \r\n")):] for line in lines] == ["  \r\n", "\n", "\n"]
    assert lines[1].startswith("  ") and lines[2].startswith("\t")
    assert " ".join(line.strip() for line in lines) == rewrite(
        ["A line that goes on and on until here."])[0]
