"""ICU MessageFormat plural and select messages, as syntax and the prose of their branches.

``{count, plural, =0 {no files} one {# file} other {# files}}`` is syntax (the argument, the
type, the selectors, the braces) around branch texts, which are prose: each branch is translated
on its own, as translation tools present them to translators, while the syntax and the ``#``
(the number, in plural branches) come back unchanged. A plural's category branches may be
replaced by the target language's (``with_categories``, see ``polyseq.documents.plurals``).
``choice`` messages (``0#none|1#one``) are not split: they stay whole.

Braces are matched as ICU reads them (its default ``ApostropheMode.DOUBLE_OPTIONAL``, as
intl-messageformat does): an apostrophe before ``{`` or ``}`` (or ``#`` in a plural's branch,
``|`` in a choice's) starts literal text up to the next single apostrophe, so ``'{'`` is a brace
and no syntax, ``''`` is an apostrophe, and any other apostrophe ("don't") is itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# the opening "{arg, type," (and a plural's "offset:n"), then "selector {" before each branch
_HEAD = re.compile(r"\{\s*\w+\s*,\s*(plural|selectordinal|select)\s*,\s*(?:offset\s*:\s*\d+\s*)?")
_SELECTOR = re.compile(r"\s*(=\d+|[\w-]+)\s*\{")
# the opening of any argument whose braces hold messages: the head the pattern finds, whose end
# ``argument_end`` then scans for (a regex cannot match braces that apostrophes quote)
ARGUMENT_HEAD = r"\{\s*\w+\s*,\s*(plural|selectordinal|select|choice)\s*,"
_ARGUMENT_HEAD = re.compile(ARGUMENT_HEAD)
_STYLED = re.compile(r"\{\s*\w+\s*,\s*\w+\s*,")  # {n, number, style}: its style quotes
_PLURAL_KINDS = ("plural", "selectordinal")
# a plural branch's "#" stands for the number (in branches nested in it too)
HASH_KIND = "icu_hash"
HASH_PATTERN = r"#"
# Text a branch quotes ('{', '{name}', '#'): a span, so that a model cannot break its apostrophes
# or braces. The pattern finds the apostrophes before a syntax character; ``quoted_text`` tells
# the quote from the pairs ('') before it, and where it ends.
QUOTED_KIND = "icu_quoted"
QUOTED_PATTERN = r"'+[{}#]"


@dataclass(frozen=True)
class Branch:
    selector: str  # "one", "=0", "female"
    lead: str  # the syntax from the previous branch's "}" (or the head) to its own "{": " other {"
    text: str

    @property
    def explicit(self) -> bool:
        """An ``=N`` branch, for that number alone (not a category)."""
        return self.selector.startswith("=")


@dataclass(frozen=True)
class Message:
    kind: str  # plural, selectordinal or select
    head: str  # "{count, plural, " (and a plural's "offset:1 ")
    branches: tuple[Branch, ...]
    tail: str  # after the last branch's closing brace: "}"

    def syntax(self) -> list[str]:
        """The syntax around the branch texts: a piece before each, and one after the last."""
        leads = [b.lead for b in self.branches]
        return [self.head + leads[0], *("}" + lead for lead in leads[1:]), "}" + self.tail]

    @property
    def parts(self) -> tuple[tuple[str, bool], ...]:
        """(text, is a branch): syntax and branch texts in order."""
        syntax = self.syntax()
        pairs = [((s, False), (b.text, True)) for s, b in zip(syntax, self.branches, strict=False)]
        return (*(p for pair in pairs for p in pair), (syntax[-1], False))

    def with_categories(self, chosen: Sequence[tuple[str, str]]) -> Message:
        """The message with its category branches replaced by ``chosen``: (category, selector of
        the branch whose text it takes), in order, each laid out as the source's branches are.
        The explicit ``=N`` branches stay where they are; the new ones go where the first
        category branch was."""
        texts = {b.selector: b.text for b in self.branches}
        leads = [b.lead for b in self.branches if not b.explicit]
        if len(leads) == 1 and not self.branches[0].explicit:
            # the one category branch comes first, its spacing in the head ("{n, plural, "):
            # the branches after it get that spacing, not "}few {"
            leads.append(self.head[len(self.head.rstrip()):] + leads[0])
        new = [Branch(category, _with_selector(leads[min(i, len(leads) - 1)], category), texts[source])
               for i, (category, source) in enumerate(chosen)]
        branches: list[Branch] = []
        for branch in self.branches:
            if branch.explicit:
                branches.append(branch)
            else:
                branches += new
                new = []
        return Message(self.kind, self.head, tuple(branches), self.tail)

    def key(self) -> str:
        """What a translation must keep: the syntax with the branch texts left out; of a plural
        or selectordinal, only the ``=N`` selectors (its categories are the target language's)."""
        if self.kind == "select":
            return "".join("…" if is_branch else text for text, is_branch in self.parts)
        explicit = "".join(f"{b.selector} {{…}} " for b in self.branches if b.explicit)
        return f"{self.head.rstrip()} {explicit}…}}"


def _with_selector(lead: str, selector: str) -> str:
    """A branch's lead (" other {") with another selector (" few {")."""
    found = _SELECTOR.fullmatch(lead)
    assert found is not None  # a lead is a selector and its brace
    return lead[:found.start(1)] + selector + lead[found.end(1):]


def split_message(text: str) -> Message | None:
    """``text`` (a whole message, brace to brace) as syntax and branches; None when it is not a
    well-formed plural or select message."""
    head = _HEAD.match(text)
    if head is None:
        return None
    branches: list[Branch] = []
    cursor = head.end()
    while selector := _SELECTOR.match(text, cursor):
        end = _branch_end(text, selector.end(), head.group(1))
        if end is None:
            return None
        branches.append(Branch(selector.group(1), text[cursor:selector.end()],
                               text[selector.end():end]))
        cursor = end + 1
    if not branches or text[cursor:].strip() != "}":
        return None
    return Message(head.group(1), head.group(0), tuple(branches), text[cursor:])


def argument_end(text: str, start: int) -> int | None:
    """The index after the brace that closes the argument opened at ``start``: a plural, select,
    selectordinal or choice message and the branches in it, or a simple one (``{name}``,
    ``{n, number, style}``); None when it does not close (a quote that runs to the end)."""
    head = _ARGUMENT_HEAD.match(text, start)
    if head is None:
        return _simple_end(text, start)
    kind = head.group(1)
    if kind == "choice":  # "0#none|1#one": its branches are not braced
        end = _branch_end(text, head.end(), kind)
        return None if end is None else end + 1
    index: int | None = head.end()
    while index is not None and index < len(text):  # selectors, and a braced branch after each
        if text[index] == "}":
            return index + 1
        if text[index] == "{":
            end = _branch_end(text, index + 1, kind)
            index = None if end is None else end + 1
        else:
            index += 1
    return None


def _branch_end(text: str, start: int, kind: str) -> int | None:
    """The index of the ``}`` that ends the branch text starting at ``start`` in a ``kind``
    message: braces outside apostrophe quoting, arguments in it by their own rules."""
    index: int | None = start
    while index is not None and index < len(text):
        char = text[index]
        if char == "'":
            index = _after_apostrophe(text, index, kind)
        elif char == "{":
            index = argument_end(text, index)
        elif char == "}":
            return index
        else:
            index += 1
    return None


def _after_apostrophe(text: str, index: int, kind: str) -> int | None:
    """Where the text after the apostrophe at ``index`` goes on: after ``''`` (an apostrophe),
    after the quoted text it starts before a syntax character (None when no single apostrophe
    closes it: ICU quotes to the message's end), else after the apostrophe itself."""
    after = text[index + 1:index + 2]
    if after == "'":
        return index + 2
    if not (after in ("{", "}") or (after == "#" and kind in _PLURAL_KINDS)
            or (after == "|" and kind == "choice")):
        return index + 1
    index += 2
    while (index := text.find("'", index)) != -1:
        if text[index + 1:index + 2] != "'":
            return index + 1
        index += 2  # an apostrophe in the quoted text
    return None


def quoted_text(text: str, start: int, end: int) -> tuple[int, int]:
    """The quoted text that the apostrophes in ``text[start:end - 1]`` start before the syntax
    character at ``end - 1``: from the one after their pairs to the one that closes it; an empty
    range where they are all pairs (``''{name}`` is an apostrophe and an argument) or none closes
    it. ``#`` counts as in a plural's branch: in a select's, the quote is text all the same."""
    quote = start + (end - 1 - start) // 2 * 2
    if quote == end - 1:
        return end - 1, end - 1
    close = _after_apostrophe(text, quote, "plural")
    return (quote, close) if close is not None else (quote, quote)


def _simple_end(text: str, start: int) -> int | None:
    """The index after the brace that closes the simple argument (or other braces: ``{0}``,
    ``{{ var }}``) opened at ``start``. A style (``{d, date, h 'o''clock'}``) quotes from any
    apostrophe to the next, as ICU and intl-messageformat read it."""
    styled = _STYLED.match(text, start)
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char == "'" and styled is not None and index >= styled.end():
            close = text.find("'", index + 1)
            if close == -1:
                return None
            index = close
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


def join_branch(parts: Sequence[tuple[str, bool]]) -> str:
    """A translated branch's parts (prose, or a span's output) joined, with an apostrophe that
    the prose ends in before a brace, a ``#``, quoted text or the branch's end doubled, where
    ICU would take it for the start of quoted text: French "d'{name}" is written "d''{name}",
    which reads "d'" and the argument."""
    out: list[str] = []
    after = "}"  # what follows the branch text: its closing brace
    for text, span in reversed(parts):
        apostrophes = len(text) - len(text.rstrip("'"))
        if not span and apostrophes % 2 and after in ("{", "}", "#", "'"):
            text += "'"
        out.append(text)
        after = text[:1] or after
    return "".join(reversed(out))


def unquoted_hashes(text: str) -> list[int]:
    """Where a ``#`` of a plural branch stands for the number: outside ICU's apostrophe quoting,
    in which an apostrophe before ``{``, ``}``, ``#`` or ``|`` starts literal text up to the next
    single apostrophe (``'#'1`` is the text "#1"), and ``''`` is an apostrophe."""
    found: list[int] = []
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "'" and text[index + 1:index + 2] == "'":
            index += 2  # an apostrophe, in quoted text or not
            continue
        if char == "'" and (quoted or text[index + 1:index + 2] in ("{", "}", "#", "|")):
            quoted = not quoted
        elif char == "#" and not quoted:
            found.append(index)
        index += 1
    return found
