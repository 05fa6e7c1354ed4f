"""How well a model's encoder aligns languages: bitext retrieval and a MEXA-style score per layer.

On sentences aligned across languages, each sentence is embedded (`Translator.embed_layers`: the
encoder's states averaged over the sentence's tokens) and compared by cosine similarity with every
sentence of the other language. P@1 a→b is the share of a's sentences whose nearest neighbour in b
is their translation; the MEXA-style score (Kargaran et al. 2024) is the share whose translation is
the nearest neighbour both ways, per encoder layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from polyseq.evaluate import save_figure
from polyseq.files import InputError

if TYPE_CHECKING:
    from polyseq.translator import Translator


@dataclass(frozen=True)
class Retrieval:
    forward: float  # P@1 a -> b
    backward: float  # P@1 b -> a
    mutual: float  # nearest neighbour both ways (MEXA)


@dataclass(frozen=True)
class PairAlignment:
    source: str
    target: str
    layers: tuple[Retrieval, ...]  # encoder layer 1 .. L (L: the encoder's output)

    @property
    def last(self) -> Retrieval:
        return self.layers[-1]


@dataclass(frozen=True)
class AlignmentReport:
    languages: tuple[str, ...]
    sentences: int
    pairs: tuple[PairAlignment, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def pair(self, a: str, b: str) -> Retrieval:
        """The last layer's scores with `a` as the query side."""
        for pair in self.pairs:
            if (pair.source, pair.target) == (a, b):
                return pair.last
            if (pair.source, pair.target) == (b, a):
                return Retrieval(pair.last.backward, pair.last.forward, pair.last.mutual)
        raise KeyError(f"no pair {a}-{b} in this report ({', '.join(self.languages)})")


def retrieval(a: Tensor, b: Tensor) -> Retrieval:
    """Scores for aligned embeddings a (N, D) and b (N, D): row i of each is one sentence pair."""
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"need two (N, D) embeddings of the same shape with N >= 2, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    similarity = F.normalize(a.double(), dim=1) @ F.normalize(b.double(), dim=1).T  # (N, N)
    index = torch.arange(a.shape[0])
    diagonal = similarity.diagonal()
    others = similarity.masked_fill(torch.eye(a.shape[0], dtype=torch.bool), -torch.inf)
    mutual = (diagonal > others.max(dim=1).values) & (diagonal > others.max(dim=0).values)
    return Retrieval(forward=_share(similarity.argmax(dim=1) == index),
                     backward=_share(similarity.argmax(dim=0) == index), mutual=_share(mutual))


def _share(hits: Tensor) -> float:
    return round(float(hits.double().mean()), 4)


def align_scores(translator: Translator, texts: Mapping[str, Sequence[str]],
                 tgt_lang: str | None = None) -> AlignmentReport:
    """Retrieval and MEXA per layer for every pair of languages in `texts` (language -> aligned
    sentences, the same number in each)."""
    languages = tuple(texts)
    counts = {lang: len(lines) for lang, lines in texts.items()}
    if len(languages) < 2:
        raise InputError(f"alignment needs at least two languages, got {', '.join(languages) or 'none'}")
    if len(set(counts.values())) != 1 or min(counts.values()) < 2:
        raise InputError(f"alignment needs the same number (>= 2) of aligned sentences per language, "
                         f"got {counts}")
    embedded = {lang: translator.embed_layers(list(lines), lang, tgt_lang) for lang, lines in texts.items()}
    pairs = []
    for i, a in enumerate(languages):
        for b in languages[i + 1 :]:
            layers = tuple(retrieval(x, y) for x, y in zip(embedded[a], embedded[b], strict=True))
            pairs.append(PairAlignment(a, b, layers))
    return AlignmentReport(languages, counts[languages[0]], tuple(pairs))


def format_alignment(report: AlignmentReport) -> list[str]:
    """One line per pair: P@1 both ways at the last layer and MEXA per layer."""
    lines = [f"{report.sentences} sentences; P@1 at the encoder's output, MEXA per layer 1..L"]
    for pair in report.pairs:
        mexa = " ".join(f"{layer.mutual:.3f}" for layer in pair.layers)
        lines.append(f"{pair.source}-{pair.target}  P@1 {pair.last.forward:.3f} -> "
                     f"{pair.last.backward:.3f} <-  MEXA {mexa}")
    return lines


def plot_alignment(report: AlignmentReport, output_path: str | Path) -> Path | None:
    """A heat-map of P@1 over language pairs (row: the query's language) and MEXA per layer, to a
    PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    langs = report.languages
    matrix = [[1.0 if a == b else report.pair(a, b).forward for b in langs] for a in langs]
    figure, (heat, lines) = plt.subplots(1, 2, figsize=(11, 4.5))
    image = heat.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis")
    heat.set(xticks=range(len(langs)), xticklabels=langs, yticks=range(len(langs)), yticklabels=langs,
             xlabel="retrieved from", ylabel="query", title="bitext retrieval P@1 (encoder output)")
    for row, values in enumerate(matrix):
        for column, value in enumerate(values):
            colour = "w" if value < 0.6 else "k"
            heat.text(column, row, f"{value:.2f}", ha="center", va="center", color=colour)
    figure.colorbar(image, ax=heat)
    for pair in report.pairs:
        lines.plot(range(1, len(pair.layers) + 1), [layer.mutual for layer in pair.layers], "o-",
                   label=f"{pair.source}-{pair.target}")
    layers = len(report.pairs[0].layers)
    lines.set(xlabel="encoder layer", ylabel="MEXA", ylim=(0, 1), xticks=range(1, layers + 1),
              title="alignment per layer (MEXA)")
    lines.legend(fontsize="small")
    return save_figure(figure, output_path)
