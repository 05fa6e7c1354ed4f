"""The document formats, by name and by file extension.

Each module here turns one kind of file into a ``ParsedDocument`` (``polyseq.documents.protect``):
translatable segments and the protected text between them, and back. A user picks a format by
name (``--format markdown``) or lets the file extension choose; an unknown name gets a
"did you mean" error listing the formats.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from polyseq.documents.protect import DocumentError, Format


def _formats() -> dict[str, Format]:
    # Imported here, not at module top, so that polyseq imports without the parsers, which come
    # with the "documents" extra.
    try:
        from polyseq.documents.formats import html, jsonfmt, markdown, plain, po
    except ImportError as err:
        raise ImportError(
            f"document translation needs {err.name}: pip install 'polyseq[documents]'"
        ) from err

    found = [markdown.FORMAT, jsonfmt.FORMAT, html.FORMAT, po.FORMAT, plain.FORMAT]
    return {f.name: f for f in found}


# Other names people type for the same format.
ALIASES = {"md": "markdown", "htm": "html", "gettext": "po", "pot": "po", "text": "plain",
           "txt": "plain"}


def format_names() -> list[str]:
    return sorted(_formats())


def get_format(name: str) -> Format:
    """The format called ``name`` (or an alias); a DocumentError suggests the closest names."""
    formats = _formats()
    key = ALIASES.get(name.lower(), name.lower())
    if key in formats:
        return formats[key]
    choices = sorted(formats) + sorted(ALIASES)
    close = difflib.get_close_matches(name.lower(), choices, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise DocumentError(
        f"unknown document format {name!r}.{hint} Known formats: {', '.join(sorted(formats))}."
    )


def format_for_path(path: str | Path) -> Format:
    """The format that claims ``path``'s extension; a DocumentError says to pass one by name."""
    suffix = Path(path).suffix.lower()
    for fmt in _formats().values():
        if suffix in fmt.extensions:
            return fmt
    known = ", ".join(f"{f.name} ({' '.join(f.extensions)})" for f in _formats().values())
    raise DocumentError(
        f"{path}: cannot tell the document format from the extension {suffix or '(none)'!r}. "
        f"Pass a format by name (--format / format=...): {known}."
    )


__all__ = ["Format", "format_for_path", "format_names", "get_format"]
