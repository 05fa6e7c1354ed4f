"""The models a server serves: each model directory, its Translator and batcher, its directions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyseq.serve.batcher import Batcher
from polyseq.translator import Translator

# Names for the language list (LibreTranslate's /languages); other codes are named by their code.
NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nb": "Norwegian Bokmål",
    "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish", "th": "Thai", "tr": "Turkish",
    "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}


@dataclass
class ServedModel:
    name: str  # the directory's name, unique among the served models
    translator: Translator
    batcher: Batcher

    @property
    def directions(self) -> set[tuple[str, str]]:
        """Every ordered pair of its languages; a model of one language (a corrector) serves it to
        itself."""
        languages = self.translator.languages
        if len(languages) == 1:
            return {(languages[0], languages[0])}
        return {(s, t) for s in languages for t in languages if s != t}

    @property
    def trained(self) -> set[tuple[str, str]]:
        """The directions its training data held (its metadata.json); empty when unknown, as for an
        imported checkpoint."""
        listed = self.translator.metadata.get("directions") or []
        return {(src, tgt) for src, _, tgt in (str(d).partition("-") for d in listed)}


class Models:
    def __init__(self, served: list[ServedModel]):
        self.served = served

    def find(self, src: str, tgt: str) -> ServedModel | None:
        """The first model trained on src -> tgt, else the first that serves it (zero-shot): of an
        en-de and a de-en model, each gets its own direction, though both know both languages."""
        serving = [model for model in self.served if (src, tgt) in model.directions]
        return next((model for model in serving if (src, tgt) in model.trained),
                    serving[0] if serving else None)

    def targets(self) -> dict[str, list[str]]:
        """Each source language -> the languages it can be translated into."""
        found: dict[str, set[str]] = {}
        for model in self.served:
            for src, tgt in model.directions:
                found.setdefault(src, set()).add(tgt)
        return {src: sorted(tgts) for src, tgts in sorted(found.items())}

    def sources_into(self, tgt: str) -> list[str]:
        return sorted(src for src, tgts in self.targets().items() if tgt in tgts)


def unique_names(paths: list[Path]) -> list[str]:
    """Model names for the metrics: the directory's name, made unique with its parent's."""
    names = [path.name for path in paths]
    return [f"{path.parent.name}/{path.name}" if names.count(path.name) > 1 else path.name
            for path in paths]
