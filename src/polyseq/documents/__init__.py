"""Selective translation of documents: Markdown, JSON, HTML, gettext .po and plain text, translated
or corrected while code, placeholders, URLs and markup come back untouched.

`translate` holds the API (`translate_document`, `translate_document_file`, and `translate_texts`
for a list of lines), `check` compares a translation's protected spans with its source's, `protect`
masks what must not be translated, `segment` cuts prose into sentences, `plurals` gives plural
messages and entries the target language's forms, and `formats/` has one module per format.
"""

import warnings
from typing import Any

from polyseq.documents.check import PreservationReport, check_file, check_preservation, protected_spans
from polyseq.documents.protect import DocumentError
from polyseq.documents.translate import (
    DocumentResult,
    DocumentSummary,
    TextsResult,
    TranslatorError,
    all_segments,
    as_translate,
    default_output,
    read_document,
    translate_document,
    translate_document_file,
    translate_texts,
)


def translate_file(*args: Any, **kwargs: Any) -> DocumentResult:
    """Deprecated: `translate_document_file` (the old name was also the Translator's for lines)."""
    warnings.warn("polyseq.translate_file is deprecated; use polyseq.translate_document_file",
                  DeprecationWarning, stacklevel=2)
    return translate_document_file(*args, **kwargs)


__all__ = [
    "DocumentError",
    "DocumentResult",
    "DocumentSummary",
    "PreservationReport",
    "TextsResult",
    "TranslatorError",
    "all_segments",
    "as_translate",
    "check_file",
    "check_preservation",
    "default_output",
    "protected_spans",
    "read_document",
    "translate_document",
    "translate_document_file",
    "translate_texts",
]
