"""Cross-lingual alignment scores: retrieval is perfect when both sides are the same sentences and
falls to chance on shuffled pairs; P@1 each way and the mutual (MEXA) score by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from polyseq.evaluate.alignment import align_scores, format_alignment, plot_alignment, retrieval
from polyseq.files import InputError
from polyseq.translator import Translator

TEXTS = [f"{word} {n}" for word in ("one", "two", "seven", "twelve", "forty") for n in range(8)]


def test_retrieval_by_hand() -> None:
    a = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.1], [1.0, 0.0], [0.0, 1.0]])
    # cosines a_i . b_j: a0: .995 1 0; a1: .856 .8 .6; a2: .0995 0 1
    scores = retrieval(a, b)
    assert scores.forward == pytest.approx(1 / 3, abs=1e-4)  # a0 finds b1, a1 finds b0, a2 finds b2
    assert scores.backward == pytest.approx(2 / 3, abs=1e-4)  # b0 -> a0, b1 -> a0, b2 -> a2
    assert scores.mutual == pytest.approx(1 / 3, abs=1e-4)  # only pair 2 is nearest both ways
    assert retrieval(a, a).mutual == 1.0
    with pytest.raises(ValueError, match="same shape"):
        retrieval(a, b[:2])


def test_same_sentences_align_perfectly_and_shuffled_ones_do_not(tiny_model_dir: Path,
                                                                 tmp_path: Path) -> None:
    translator = Translator.load(tiny_model_dir)
    same = align_scores(translator, {"en": TEXTS, "de": TEXTS})
    assert len(same.pairs) == 1 and len(same.pairs[0].layers) == translator.model.config.encoder_layers
    for layer in same.pairs[0].layers:
        assert (layer.forward, layer.backward, layer.mutual) == (1.0, 1.0, 1.0)
    shuffled = TEXTS[1:] + TEXTS[:1]  # every sentence paired with another one
    broken = align_scores(translator, {"en": TEXTS, "de": shuffled, "num": TEXTS})
    assert broken.pair("en", "de").forward == 0.0 and broken.pair("de", "en").backward == 0.0
    assert broken.pair("num", "en").forward == 1.0
    assert len(format_alignment(broken)) == 4
    assert plot_alignment(broken, tmp_path / "align.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputError, match="same number"):
        align_scores(translator, {"en": TEXTS, "de": TEXTS[:-1]})


def test_align_score_names_a_language_given_twice(tiny_model_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from polyseq.cli import app

    (tmp_path / "data.num").write_text("12\n300\n", encoding="utf-8")
    (tmp_path / "data.en").write_text("twelve\nthree hundred\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["align-score", str(tiny_model_dir), "--data", str(tmp_path / "data"),
                                      "--langs", "num,num,en"])
    assert result.exit_code == 2, result.output
    assert "--langs names num more than once: num,num,en" in result.stderr
