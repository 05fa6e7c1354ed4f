"""Language identification, text by text, with py3langid (langid.py's model, its weights inside
the package: 97 languages in py3langid 0.3, 140 codes in 0.4, "zxx" among them for text without
language; the `langid` extra).

Chosen by measurement (`bench/langid.py`, bench/results/langid.json): on 300 short sentences each
of en, de, fr, cs (multi30k) and uk (ua-gec) it was right on 98.7% at 0.09 ms a sentence, adding
114 MB, where lingua-language-detector was right on 98.4% at 1.5 ms adding 1.3 GB and 10 s of
loading (all languages, high accuracy) or on 94.9% at 0.3 ms (low-accuracy mode).

The identifier speaks ISO 639-1; models name languages their own way (mBART's de_DE, NLLB's
deu_Latn and zho_Hans, zh_Hant, EN). A detector takes the model's codes and answers in them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any


class LanguageIdError(ValueError):
    """Language identification cannot run as asked (no known language, or the package missing)."""


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float  # the identifier's probability, 0..1


def identifier_code(code: str, known: Collection[str]) -> str | None:
    """The identifier's code (among `known`) for a model's language code: the code itself, its
    language part ("de_DE", "zh_Hant", "en-US", "EN" -> de, zh, en), or that part's ISO 639-1 form
    ("deu_Latn", "zho_Hans", "arb_Arab" -> de, zh, ar; with langcodes); None when it has none."""
    if code in known:
        return code
    part = re.split(r"[-_@.]", code)[0].lower()
    if part in known:
        return part
    try:
        import langcodes

        short = str(langcodes.Language.get(part).prefer_macrolanguage().language)
    except (ImportError, ValueError):  # no langcodes, or no language code at all
        return None
    return short if short in known else None


class LanguageDetector:
    """Identifies each text's language among `languages` (those the identifier knows, in the codes
    given, see identifier_code; None: all of them). Two codes for one identifier language (zh_Hans,
    zh_Hant) cannot be told apart: the first in sorted order answers. Holds its own model, so
    detectors with different language sets do not disturb each other."""

    def __init__(self, languages: Sequence[str] | None = None):
        try:
            from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
        except ImportError:
            raise LanguageIdError("language identification needs py3langid: pip install "
                                  "'polyseq[langid]'") from None
        self._identifier: Any = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
        known = set(self._identifier.nb_classes)
        self._codes: dict[str, str] = {}  # the identifier's code -> the caller's
        for code in sorted(known if languages is None else set(languages)):
            found = identifier_code(code, known)
            if found is not None:
                self._codes.setdefault(found, code)
        self.languages = tuple(sorted(self._codes.values()))
        if not self.languages:
            raise LanguageIdError(f"none of the languages {', '.join(languages or [])} is known to "
                                  "the language identifier (ISO 639-1 codes such as en, de, uk)")
        if languages is not None:
            self._identifier.set_languages(sorted(self._codes))

    def detect(self, text: str, candidates: int = 3) -> list[Detection]:
        """The most likely languages of `text`, best first (at most `candidates`)."""
        ranked = self._identifier.rank(text)[:candidates]
        return [Detection(self._codes[str(language)], round(float(probability), 4))
                for language, probability in ranked]

    def detect_each(self, texts: Sequence[str]) -> list[Detection]:
        """The most likely language of each text, one detection per text. A blank text has no
        language: it gets the first other text's (or the first known one) with confidence 0."""
        found = [self.detect(text, 1)[0] if text.strip() else None for text in texts]
        fallback = next((d.language for d in found if d is not None), self.languages[0])
        return [d if d is not None else Detection(fallback, 0.0) for d in found]
