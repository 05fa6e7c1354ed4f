"""Off-target output: translations in another language than the one asked for.

Each output's language is identified with polyseq's language identification
(`polyseq.text.langid`, py3langid); the off-target rate is the share of outputs with a language
whose identified language is not the target. Empty outputs, and outputs without a letter
("2024", "15:30", "!!!"), have no language and are counted apart: an identifier still names
one for them (py3langid reads "2024" as Serbian), which would count a correct number as off-target.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from polyseq.text.langid import LanguageDetector, LanguageIdError


@dataclass(frozen=True)
class OffTarget:
    target: str
    outputs: int  # outputs with a letter, those identified
    empty: int
    off_target: int
    detected: dict[str, int] = field(default_factory=dict)  # identified language -> outputs
    without_letters: int = 0  # non-empty outputs with no letter, not identified

    @property
    def rate(self) -> float:
        """Off-target outputs as a share of the identified ones (0 when there are none)."""
        return self.off_target / self.outputs if self.outputs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 4)}

    def summary(self) -> str:
        others = ", ".join(f"{lang} {count}" for lang, count in self.detected.items() if lang != self.target)
        text = (f"off-target {100 * self.rate:.1f}% ({self.off_target} of {self.outputs} outputs not "
                f"identified as {self.target}")
        apart = [f"{count} {what}" for count, what in ((self.empty, "empty"),
                                                        (self.without_letters, "without letters")) if count]
        return text + (f": {others})" if others else ")") + (f"; {', '.join(apart)}" if apart else "")


def off_target(texts: Sequence[str], tgt_lang: str, detector: LanguageDetector | None = None,
               languages: Sequence[str] | None = None) -> OffTarget:
    """How many of `texts` are not in `tgt_lang`. The detector chooses among `languages` (None:
    every language it knows); `tgt_lang` and each of `languages` must be known to it."""
    detector = detector or LanguageDetector(languages)
    unknown = [lang for lang in languages or [] if lang not in detector.languages]
    if unknown:  # else left out unsaid, and their outputs read as another language
        raise LanguageIdError(f"the language identifier does not know {', '.join(map(repr, unknown))} "
                              "(it takes ISO 639-1 codes such as en, de, cs, uk)")
    if tgt_lang not in detector.languages:
        among = "the languages it was given" if languages is not None else "its languages"
        raise LanguageIdError(f"the language identifier cannot recognise {tgt_lang!r} ({among}: "
                              f"{', '.join(detector.languages)}); off-target rates need a target it knows")
    written = [text for text in texts if text.strip()]
    kept = [text for text in written if any(char.isalpha() for char in text)]
    detected = Counter(d.language for d in detector.detect_each(kept)) if kept else Counter()
    return OffTarget(target=tgt_lang, outputs=len(kept), empty=len(texts) - len(written),
                     off_target=len(kept) - detected[tgt_lang], detected=dict(detected.most_common()),
                     without_letters=len(written) - len(kept))
