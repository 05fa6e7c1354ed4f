"""Translator end to end on a model trained inside the test session, and the rules that keep a
file's lines: empty lines stay, long lines are split (never cut), bad input is a clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from num2words import num2words

from polyseq.data.pieces import split_into_pieces
from polyseq.text.tokenizer import UnknownLanguageError
from polyseq.translator import InputError, Translator


@pytest.fixture(scope="module")
def translator(tiny_model_dir: Path) -> Translator:
    return Translator.load(tiny_model_dir)


def test_translate_returns_one_text_per_input_in_order(translator: Translator) -> None:
    sources = ["12", "", "307", "   "]
    outputs = translator.translate(sources, "num", "en", strategy="beam", beam_size=3)
    assert len(outputs) == 4
    assert outputs[1] == "" and outputs[3] == ""
    assert all(outputs[i] for i in (0, 2))
    greedy = translator.translate(["12", "307"], "num", "en", strategy="greedy")
    assert greedy == translator.translate(["307", "12"], "num", "en", strategy="greedy")[::-1]


def test_the_trained_model_has_learned_something(translator: Translator) -> None:
    # 120 steps on a tiny model: not perfect, but English words come out for digits
    outputs = translator.translate([str(n) for n in (5, 40, 300)], "num", "en", strategy="greedy")
    vocabulary = {word for n in range(400) for word in num2words(n).replace("-", " ").split()}
    words = [w for text in outputs for w in text.replace("-", " ").replace(",", " ").split()]
    assert words and sum(w in vocabulary for w in words) / len(words) > 0.5


def test_detailed_output_and_statistics(translator: Translator) -> None:
    output = translator.translate_detailed(["12", "13"], "num", "de", strategy="beam", beam_size=4,
                                           n_best=3)
    assert [len(h) for h in output.hypotheses] == [3, 3]
    assert output.stats.forward_passes > 0 and output.stats.generated_tokens > 0


def test_unknown_language_names_the_known_ones(translator: Translator) -> None:
    with pytest.raises(UnknownLanguageError, match="de"):
        translator.translate(["12"], "num", "xx")
    with pytest.raises(InputError, match="list of texts"):
        translator.translate("12", "num", "en")  # type: ignore[arg-type]


def test_a_line_too_long_for_the_model_is_split_never_cut(translator: Translator) -> None:
    limit = translator.max_source_tokens
    long_line = ". ".join(["12"] * (limit // 2 + 5)) + "."
    pieces = split_into_pieces([long_line], translator.tokenizer.encode, limit).ids
    assert len(pieces) > 1 and all(len(p) <= limit for p in pieces)
    rebuilt = " ".join(translator.tokenizer.decode(p) for p in pieces)
    assert rebuilt == long_line
    (output,) = translator.translate([long_line], "num", "en", strategy="greedy")
    assert output


def test_translate_file_keeps_the_line_count(translator: Translator, tmp_path: Path) -> None:
    source = tmp_path / "in.num"
    long_line = " ".join(["7"] * 80)
    source.write_text("1\n\n2\n" + long_line + "\n\n", encoding="utf-8")
    output = tmp_path / "out.en"
    report = translator.translate_corpus(source, output, "num", "en", strategy="greedy")
    lines = output.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 5 == report.lines
    assert lines[1] == "" and lines[4] == ""
    assert report.empty_lines == 2 and report.split_lines == 1


def test_bad_files_are_clear_errors_and_nothing_is_overwritten(translator: Translator,
                                                               tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"12\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"bad\.txt, line 2, column 1: not valid UTF-8"):
        translator.translate_corpus(bad, tmp_path / "out.txt", "num", "en")
    assert not (tmp_path / "out.txt").exists()
    same = tmp_path / "same.txt"
    same.write_text("12\n", encoding="utf-8")
    with pytest.raises(InputError, match="overwrite the input"):
        translator.translate_corpus(same, same, "num", "en")
    assert same.read_text(encoding="utf-8") == "12\n"
    with pytest.raises(InputError, match="does not exist"):
        translator.translate_corpus(tmp_path / "missing.txt", tmp_path / "o.txt", "num", "en")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    report = translator.translate_corpus(empty, tmp_path / "empty.out", "num", "en")
    assert report.lines == 0 and (tmp_path / "empty.out").read_text() == ""


def test_score_prefers_the_models_own_translation(translator: Translator) -> None:
    (own,) = translator.translate(["21"], "num", "en", strategy="greedy")
    own_score, other = translator.log_probs(["21", "21"], [own, "zzz qqq"], "en")
    assert own_score > other


def test_a_target_prefix_starts_the_output_and_the_rest_is_decoded_after_it(translator: Translator) -> None:
    sources = ["12", "307", "", "45"]
    plain = translator.translate_detailed(sources, "num", "en", strategy="greedy")
    # the prefix greedy itself produces changes nothing (the length limit counts the tokens
    # after the prefix: two fewer here)
    best = [c[0].hypothesis if c else None for c in plain.candidates]
    own = [translator.tokenizer.decode(list(h.tokens[:2])) if h else "" for h in best]
    encode = translator.tokenizer.encode
    assert all(encode(text) == list(h.tokens[:2]) for text, h in zip(own, best, strict=True) if h)
    again = translator.translate(sources, "num", "en", strategy="greedy", prefix=own, max_len_b=8)
    assert again == plain.texts
    forced = translator.translate_detailed(sources, "num", "en", strategy="beam", prefix="nine")
    assert [t.startswith("nine") for t in forced.texts] == [True, True, False, True]
    for candidates in forced.candidates:
        assert all(c.text.startswith("nine") for c in candidates)
    with pytest.raises(InputError, match="2 prefixes for 4 texts"):
        translator.translate(sources, "num", "en", prefix=["a", "b"])


def test_a_prefix_too_long_for_the_model_is_named_with_its_length(translator: Translator) -> None:
    positions = translator.model.config.max_positions  # the tag, then the prefix: one "-" a token
    fits, too_long = "-" * (positions - 1), "-" * positions
    assert len(translator.tokenizer.encode_target(too_long)) == positions
    assert translator.translate(["12"], "num", "en", strategy="greedy", prefix=fits)[0].startswith(fits)
    message = (f"'{'-' * 27}...' is {positions} tokens, longer than the model takes: its "
               f"max_positions={positions} less the 1 decoder start token leave {positions - 1}")
    # refused before anything is decoded, and with no text at all
    for texts, prefix, name in [(["12", "7"], too_long, "prefix"), ([], too_long, "prefix"),
                                (["12", "7"], ["nine", too_long], "prefix[1]")]:
        with pytest.raises(InputError, match=re.escape(f"{name} {message}")):
            translator.translate(texts, "num", "en", strategy="greedy", prefix=prefix)


def test_the_translator_leaves_the_callers_model_as_it_was(tiny_model_dir: Path) -> None:
    from polyseq.model.checkpoint import load_model

    model = load_model(tiny_model_dir).train()
    layout = [(p.data_ptr(), p.stride()) for p in model.parameters()]
    translator = Translator(model, Translator.load(tiny_model_dir).tokenizer)
    assert translator.translate(["12"], "num", "en", strategy="greedy")
    assert model.training and translator.model is not model and not translator.model.training
    assert [(p.data_ptr(), p.stride()) for p in model.parameters()] == layout


def test_old_names_warn_and_still_work(translator: Translator, tmp_path: Path) -> None:
    import polyseq

    with pytest.warns(DeprecationWarning, match="use Translator.log_probs"):
        assert translator.score(["12"], ["twelve"], "en") == translator.log_probs(["12"], ["twelve"], "en")
    source = tmp_path / "in.txt"
    source.write_text("12\n", encoding="utf-8")
    with pytest.warns(DeprecationWarning, match="use Translator.translate_corpus"):
        assert translator.translate_file(source, tmp_path / "out.txt", "num", "en").lines == 1
    for old, new in (("decode", "generate"), ("score", "score_translations"),
                     ("translate_file", "translate_document_file")):
        with pytest.warns(DeprecationWarning, match=f"use polyseq.{new}"):
            assert getattr(polyseq, old) is getattr(polyseq, new)
    with pytest.warns(DeprecationWarning, match="use polyseq.score_translations"):
        assert polyseq.evaluate.score(["a b"], [["a b"]]).exact_match == 100.0


def test_an_input_split_into_pieces_has_candidates_of_the_whole_text(translator: Translator) -> None:
    long_line = ". ".join(["12"] * (translator.max_source_tokens // 2 + 5)) + "."
    pieces = split_into_pieces([long_line], translator.tokenizer.encode, translator.max_source_tokens).ids
    output = translator.translate_detailed(["7", long_line], "num", "en", strategy="beam", beam_size=3,
                                           n_best=2)
    alone = translator.translate_detailed([translator.tokenizer.decode(ids) for ids in pieces], "num", "en",
                                          strategy="beam", beam_size=3, n_best=2)
    assert output.split_texts == 1 and len(pieces) > 1
    joined = [" ".join(c.text for c in kth) for kth in zip(*alone.candidates, strict=True)]
    assert [c.text for c in output.candidates[1]] == joined
    assert output.candidates[1][0].text == output.texts[1] and output.candidates[0][0].text == output.texts[0]
    best = output.candidates[1][0].hypothesis
    bests = [group[0].hypothesis for group in alone.candidates]
    assert best.tokens == tuple(t for h in bests for t in h.tokens)
    assert best.log_prob == pytest.approx(sum(h.log_prob for h in bests))
    assert translator.log_probs([], [], "en") == []


def test_auto_identifies_each_texts_language(translator: Translator) -> None:
    texts = ["two hundred and five", "dreihundertzwölf", "", "one thousand and one"]
    output = translator.translate_detailed(texts, "auto", "num", strategy="greedy")
    assert output.detected is not None
    assert [d.language for d in output.detected] == ["en", "de", "en", "en"]
    for language in ("en", "de"):
        chosen = [i for i, d in enumerate(output.detected) if d.language == language and texts[i]]
        alone = translator.translate([texts[i] for i in chosen], language, "num", strategy="greedy")
        assert [output.texts[i] for i in chosen] == alone
    assert output.texts[2] == ""


def test_texts_that_are_not_strings_are_named(translator: Translator) -> None:
    with pytest.raises(InputError, match=r"texts\[1\] is NoneType, not a string"):
        translator.translate(["12", None], "num", "en")  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"texts\[0\] is bytes, not a string: decode it first"):
        translator.translate([b"12"], "num", "en")  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"texts\[0\] is int"):
        translator.embed([12], "num")  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"targets\[0\] is int"):
        translator.log_probs(["12"], [12], "en")  # type: ignore[list-item]
    with pytest.raises(InputError, match="list of texts as sources, not a single str"):
        translator.log_probs("12", "twelve", "en")  # type: ignore[arg-type]
    # any iterable of strings is a list of texts
    generated = translator.translate((text for text in ["12", "13"]), "num", "en", strategy="greedy")
    assert generated == translator.translate(["12", "13"], "num", "en", strategy="greedy")


def test_a_pair_too_long_to_score_is_named(translator: Translator) -> None:
    most = translator.model.config.max_positions
    message = rf"pair 1: the target takes \d+ positions, more than the model reads \({most}\)"
    with pytest.raises(InputError, match=message):
        translator.log_probs(["12", "12"], ["twelve", "twelve " * most], "en")
    with pytest.raises(InputError, match="pair 0: the source takes"):
        translator.log_probs(["12 " * most], ["twelve"], "en")


def test_prefixes_are_one_string_or_one_per_text(translator: Translator) -> None:
    for auto in (False, True):  # src_lang="auto" translates language by language: it checks first
        source = "auto" if auto else "num"
        with pytest.raises(InputError, match="1 prefixes for 2 texts"):
            translator.translate(["12", "13"], source, "en", strategy="greedy", prefix=["a"])
        with pytest.raises(InputError, match="prefix must be a string, or one string per text, not int"):
            translator.translate(["12"], source, "en", strategy="greedy", prefix=5)  # type: ignore[arg-type]
        with pytest.raises(InputError, match=r"prefix\[1\] is int"):
            translator.translate(["12", "13"], source, "en", strategy="greedy", prefix=["a", 5])  # type: ignore[list-item]
