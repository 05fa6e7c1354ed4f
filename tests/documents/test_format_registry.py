"""Formats by name and by extension, with a "did you mean" error for unknown names."""

from __future__ import annotations

import pytest

from polyseq.documents.formats import format_for_path, format_names, get_format
from polyseq.documents.protect import DocumentError


def test_every_format_is_registered() -> None:
    assert format_names() == ["html", "json", "markdown", "plain", "po"]


@pytest.mark.parametrize(("path", "name"), [("README.md", "markdown"), ("a/b.MARKDOWN", "markdown"),
                                            ("x.json", "json"), ("page.htm", "html"),
                                            ("django.po", "po"), ("messages.pot", "po"),
                                            ("notes.txt", "plain")])
def test_extension_chooses_the_format(path: str, name: str) -> None:
    assert format_for_path(path).name == name


@pytest.mark.parametrize(("alias", "name"), [("md", "markdown"), ("MD", "markdown"),
                                             ("gettext", "po"), ("txt", "plain")])
def test_aliases(alias: str, name: str) -> None:
    assert get_format(alias).name == name


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(DocumentError, match=r"'markdwn'.*Did you mean 'markdown'.*Known formats"):
        get_format("markdwn")


def test_unknown_extension_names_the_file_and_the_way_out() -> None:
    with pytest.raises(DocumentError, match=r"notes\.rst.*'\.rst'.*--format"):
        format_for_path("notes.rst")
