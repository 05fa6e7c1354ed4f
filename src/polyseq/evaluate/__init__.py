"""Evaluation: sacrebleu BLEU and chrF++ against one or more references, exact match, JSON reports,
and the training plot (loss and BLEU over steps).

BLEU tokenizes as sacrebleu's own command line does for a target language (`sacrebleu -l en-zh`):
`zh` for Chinese, `ja-mecab` and `ko-mecab` for Japanese and Korean, `13a` otherwise. 13a splits
at spaces and punctuation, so on unspaced Chinese or Japanese it finds whole sentences as words and
scores good translations near 0.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sacrebleu

from polyseq.files import write_json_atomic


@dataclass(frozen=True)
class Scores:
    bleu: float
    chrf: float  # chrF++ (character n-grams plus word bigrams)
    exact_match: float  # percentage of hypotheses identical to one of their references
    sentences: int
    bleu_signature: str
    chrf_signature: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_references(references: Sequence[Sequence[str]], count: int, unit: str, of: str) -> None:
    """ValueError unless there is at least one reference stream and each has `count` items."""
    if not references:
        raise ValueError("at least one reference stream is needed")
    for index, stream in enumerate(references):
        if len(stream) != count:
            raise ValueError(f"reference {index} has {len(stream)} {unit} but there are {count} {of}")


# sacrebleu's per-language tokenizers, by the language part of a code (zh_Hant, zho_Hans, ja_XX)
_BLEU_LANGUAGES = {"zh": "zh", "zho": "zh", "ja": "ja", "jpn": "ja", "ko": "ko", "kor": "ko"}


def bleu_metric(tgt_lang: str | None = None) -> sacrebleu.metrics.BLEU:
    """sacrebleu's BLEU with the tokenizer its command line picks for `tgt_lang`. Without the
    extras that Japanese and Korean tokenization need (sacrebleu[ja], sacrebleu[ko]), characters
    are the tokens, with a warning; the signature says which tokenizer scored (tok:char)."""
    lang = _BLEU_LANGUAGES.get(re.split(r"[_-]", tgt_lang or "")[0].lower(), "")
    try:
        return sacrebleu.metrics.BLEU(trg_lang=lang)
    except RuntimeError as error:  # sacrebleu's message names the extra to install
        warnings.warn(f"BLEU for {tgt_lang!r} tokenizes characters: {' '.join(str(error).split())}",
                      stacklevel=2)
        return sacrebleu.metrics.BLEU(tokenize="char")


def score_translations(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
                       tgt_lang: str | None = None) -> Scores:
    """Corpus BLEU (detokenized, cased; tokenized for `tgt_lang`, see `bleu_metric`) and chrF++;
    `references` is a list of reference streams, each as long as `hypotheses`."""
    if not hypotheses:  # sacrebleu fails with an IndexError
        raise ValueError("there are no hypotheses to score")
    check_references(references, len(hypotheses), "lines", "hypotheses")
    bleu = bleu_metric(tgt_lang)
    chrf = sacrebleu.metrics.CHRF(word_order=2)
    refs = [list(stream) for stream in references]
    bleu_score = bleu.corpus_score(list(hypotheses), refs)
    chrf_score = chrf.corpus_score(list(hypotheses), refs)
    matches = sum(
        any(hypothesis == stream[i] for stream in references) for i, hypothesis in enumerate(hypotheses)
    )
    return Scores(
        bleu=round(bleu_score.score, 2), chrf=round(chrf_score.score, 2),
        exact_match=round(100.0 * matches / max(len(hypotheses), 1), 2), sentences=len(hypotheses),
        bleu_signature=str(bleu.get_signature()), chrf_signature=str(chrf.get_signature()),
    )


def write_report(path: str | Path, report: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def plot_training(metrics_path: str | Path, output_path: str | Path) -> Path | None:
    """Plot training loss, validation loss and BLEU over steps to a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train"]
    valid = [r for r in records if r.get("kind") == "valid"]
    figure, (loss_axis, bleu_axis) = plt.subplots(1, 2, figsize=(11, 4))
    loss_axis.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    loss_axis.plot([r["step"] for r in valid], [r["valid_loss"] for r in valid], "o-", label="valid")
    loss_axis.set(xlabel="step", ylabel="loss (nats/token)", title="loss")
    loss_axis.legend()
    bleu_axis.plot([r["step"] for r in valid], [r["bleu"] for r in valid], "o-", color="tab:green")
    bleu_axis.set(xlabel="step", ylabel="BLEU", title="validation BLEU (greedy)")
    return save_figure(figure, output_path)


def save_figure(figure: Any, output_path: str | Path) -> Path:
    """Lay out `figure`, write it as a PNG at `output_path`, and free it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    output_path = Path(output_path)
    figure.savefig(output_path, dpi=100)
    plt.close(figure)
    return output_path


def score(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
    """Deprecated: `score_translations` (the old name was also the Translator's for log-probabilities)."""
    warnings.warn("polyseq.score is deprecated; use polyseq.score_translations", DeprecationWarning,
                  stacklevel=2)
    return score_translations(hypotheses, references)
