"""BLEU and chrF++ as sacrebleu's own command line computes them, the tokenizer chosen by the
target language, and `polyseq eval` on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import sacrebleu
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.evaluate import bleu_metric, score_translations

runner = CliRunner()
CHINESE_HYP = ["我喜欢吃苹果。", "今天天气很好。"]
CHINESE_REF = ["我喜欢吃香蕉。", "今天天气很好。"]


def test_chinese_bleu_is_tokenized_as_sacrebleu_tokenizes_chinese() -> None:
    expected = sacrebleu.corpus_bleu(CHINESE_HYP, [CHINESE_REF], tokenize="zh").score
    assert expected > 50  # one word differs in two sentences
    for code in ("zh", "zh_Hant", "zho_Hans"):
        scores = score_translations(CHINESE_HYP, [CHINESE_REF], tgt_lang=code)
        assert scores.bleu == round(expected, 2) and "tok:zh" in scores.bleu_signature
    assert "tok:13a" in score_translations(CHINESE_HYP, [CHINESE_REF]).bleu_signature


def test_other_languages_keep_13a() -> None:
    for code in (None, "de", "en_US", "zulu"):
        bleu = bleu_metric(code)
        bleu.corpus_score(["a b"], [["a b"]])
        assert bleu.get_signature().format().count("tok:13a") == 1


def test_japanese_without_its_extra_falls_back_to_characters_and_says_so() -> None:
    try:
        sacrebleu.metrics.BLEU(trg_lang="ja")
    except RuntimeError:
        pass
    else:
        pytest.skip("sacrebleu[ja] is installed: Japanese gets ja-mecab")
    with pytest.warns(UserWarning, match="sacrebleu\\[ja\\]"):
        scores = score_translations(["今日は晴れです。"], [["今日は晴れです。"]], tgt_lang="ja")
    assert scores.bleu == 100.0 and "tok:char" in scores.bleu_signature


def test_eval_with_a_target_language_scores_chinese_and_prints_both_signatures(tmp_path: Path) -> None:
    hyp, ref = tmp_path / "hyp.zh", tmp_path / "ref.zh"
    hyp.write_text("\n".join(CHINESE_HYP) + "\n", encoding="utf-8")
    ref.write_text("\n".join(CHINESE_REF) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", "zh",
                                 "--langid-among", "zh,en"])
    assert result.exit_code == 0, result.output
    expected = sacrebleu.corpus_bleu(CHINESE_HYP, [CHINESE_REF], tokenize="zh").score
    assert f"BLEU {expected:.2f}" in result.stdout
    assert "BLEU nrefs:1|case:mixed|eff:no|tok:zh|" in result.stdout
    assert "chrF++ nrefs:1|case:mixed|eff:yes|nc:6|nw:2|" in result.stdout


@pytest.mark.parametrize(("options", "message"), [
    (["--ref", "REF", "--langid-among", "en,de"], "--langid-among chooses the languages"),
    (["--ref", "REF", "--m2", "GOLD"], "--m2 is for --metric m2, not --metric bleu"),
    (["--metric", "gleu", "--src", "REF", "--ref", "REF", "--m2", "GOLD"], "--m2 is for --metric m2"),
    (["--ref", "REF", "--src", "REF"], "--src is for --metric gleu and m2"),
    (["--metric", "m2", "--m2", "GOLD", "--ref", "REF"], "not from both"),
    (["--metric", "m2", "--m2", "GOLD", "--src", "REF"], "not from both"),
], ids=["langid-among", "m2-with-bleu", "m2-with-gleu", "src-with-bleu", "m2-and-ref", "m2-and-src"])
def test_eval_refuses_options_its_metric_would_not_read(tmp_path: Path, options: list[str],
                                                        message: str) -> None:
    hyp, ref, gold = tmp_path / "hyp", tmp_path / "ref", tmp_path / "gold.m2"
    hyp.write_text("He go .\n", encoding="utf-8")
    ref.write_text("He goes .\n", encoding="utf-8")
    gold.write_text("S He go .\nA 1 2|||R:VERB|||goes|||REQUIRED|||-NONE-|||0\n\n", encoding="utf-8")
    paths = {"REF": str(ref), "GOLD": str(gold)}
    result = runner.invoke(app, ["eval", "--hyp", str(hyp), *(paths.get(o, o) for o in options)])
    assert result.exit_code == 2 and message in result.stderr, result.output
