"""ICU MessageFormat plural and select messages, as syntax and the prose of their branches.

``{count, plural, =0 {no files} one {# file} other {# files}}`` is syntax (the argument, the
type, the selectors, the braces) around branch texts, which are prose: each branch is translated
on its own, as translation tools present them to translators, while the syntax and the ``#``
(the number, in plural branches) come back unchanged. A plural's category branches may be
replaced by the target language's (``with_categories``, see ``polyseq.documents.plurals``).
``choice`` messages (``0#none|1#one``) are not split: they stay whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# the opening "{arg, type," (and a plural's "offset:n"), then "selector {" before each branch
_HEAD = re.compile(r"\{\s*\w+\s*,\s*(plural|selectordinal|select)\s*,\s*(?:offset\s*:\s*\d+\s*)?")
_SELECTOR = re.compile(r"\s*(=\d+|[\w-]+)\s*\{")
# a plural branch's "#" stands for the number (in branches nested in it too)
HASH_KIND = "icu_hash"
HASH_PATTERN = r"#"


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
        end = _closing_brace(text, selector.end())
        if end is None:
            return None
        branches.append(Branch(selector.group(1), text[cursor:selector.end()],
                               text[selector.end():end]))
        cursor = end + 1
    if not branches or text[cursor:].strip() != "}":
        return None
    return Message(head.group(1), head.group(0), tuple(branches), text[cursor:])


def _closing_brace(text: str, start: int) -> int | None:
    """The index of the brace that closes the one opened just before ``start``."""
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


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
