"""Diverse beam, sampling and reranking on real (tiny) models, and every strategy by name from
the Translator and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from test_beam_greedy import random_model_input
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.config import ConfigError
from polyseq.decoding import generate, make_config, strategy_names
from polyseq.decoding.core import LengthLimit
from polyseq.decoding.rerank import Candidate, LengthNormalised, ReverseModel, rerank
from polyseq.translator import Translator


def test_every_strategy_is_registered() -> None:
    assert strategy_names() == ["aggressive", "beam", "diverse-beam", "greedy", "sampling",
                                "speculative"]


def test_diverse_beam_with_one_group_is_beam() -> None:
    model, inputs = random_model_input()
    beam = generate(model, inputs, "beam", beam_size=4, n_best=4)
    diverse = generate(model, inputs, "diverse-beam", beam_size=4, groups=1, diversity=2.0, n_best=4)
    assert [[h.tokens for h in c] for c in diverse.hypotheses] == \
        [[h.tokens for h in c] for c in beam.hypotheses]


@pytest.mark.parametrize("diversity", [0.0, 0.5])
def test_diverse_beam_lists_each_output_once(diversity: float) -> None:
    model, inputs = random_model_input(6)
    result = generate(model, inputs, "diverse-beam", beam_size=6, groups=3, diversity=diversity, n_best=6)
    for group in result.hypotheses:
        assert len({h.tokens for h in group}) == len(group) >= 1
        assert [h.score for h in group] == sorted((h.score for h in group), reverse=True)
    if not diversity:  # three identical searches of width 2: one search's best two, once each
        beam = generate(model, inputs, "beam", beam_size=2, n_best=2)
        tokens = [[h.tokens for h in group[:2]] for group in result.hypotheses]
        assert tokens == [[h.tokens for h in group] for group in beam.hypotheses]


def distinct_bigrams(candidates: list[tuple[int, ...]]) -> int:
    return len({tuple(c[i : i + 2]) for c in candidates for i in range(len(c) - 1)})


def test_diversity_penalty_gives_more_distinct_outputs() -> None:
    model, inputs = random_model_input(6)
    plain = generate(model, inputs, "diverse-beam", beam_size=6, groups=3, diversity=0.0, n_best=6)
    diverse = generate(model, inputs, "diverse-beam", beam_size=6, groups=3, diversity=3.0, n_best=6)
    plain_count = sum(distinct_bigrams([h.tokens for h in c]) for c in plain.hypotheses)
    diverse_count = sum(distinct_bigrams([h.tokens for h in c]) for c in diverse.hypotheses)
    assert diverse_count > plain_count
    for candidates in diverse.hypotheses:  # n-best across groups, best first
        assert [h.score for h in candidates] == sorted((h.score for h in candidates), reverse=True)


def test_sampling_is_reproducible_with_a_seed_and_varies_without() -> None:
    model, inputs = random_model_input(3)
    first = generate(model, inputs, "sampling", num_samples=4, seed=5, top_k=10, temperature=1.5)
    torch.manual_seed(123)  # global RNG state must not matter
    second = generate(model, inputs, "sampling", num_samples=4, seed=5, top_k=10, temperature=1.5)
    other = generate(model, inputs, "sampling", num_samples=4, seed=6, top_k=10, temperature=1.5)
    as_tokens = [[h.tokens for h in c] for c in first.hypotheses]
    assert as_tokens == [[h.tokens for h in c] for c in second.hypotheses]
    assert as_tokens != [[h.tokens for h in c] for c in other.hypotheses]
    assert all(len(c) == 4 for c in first.hypotheses)


def test_greedy_sampling_limit_equals_greedy() -> None:
    model, inputs = random_model_input(4)
    greedy = generate(model, inputs, "greedy")
    sharp = generate(model, inputs, "sampling", top_k=1, seed=3)
    assert [h.tokens for h in sharp.best()] == [h.tokens for h in greedy.best()]


def test_rerank_with_length_normalisation_and_a_callable() -> None:
    candidates = [[Candidate("a", (5,), -1.0), Candidate("a b c", (5, 6, 7), -1.2)]]
    assert rerank(["x"], candidates, LengthNormalised(1.0))[0][0].text == "a b c"
    assert rerank(["x"], candidates, LengthNormalised(0.0))[0][0].text == "a"
    by_length = rerank(["x"], candidates, lambda s, c: [[-len(x.text) for x in g] for g in c])
    assert by_length[0][0].text == "a"
    with pytest.raises(ValueError, match="one score per candidate"):
        rerank(["x"], candidates, lambda s, c: [[1.0]])


def test_reverse_model_reranking_through_the_translator(tiny_model_dir: Path) -> None:
    translator = Translator.load(tiny_model_dir)
    # the tiny model has no en->num direction, but scoring the digits with it still runs the
    # whole reverse path: every candidate is scored and the list reordered, nothing lost
    reverse = ReverseModel(translator, src_lang="num")
    output = translator.translate_detailed(["21", "300"], "num", "en", strategy="beam",
                                           beam_size=4, n_best=4, rerank=reverse)
    assert all(len(h) == 4 for h in output.hypotheses)
    plain = translator.translate_detailed(["21", "300"], "num", "en", strategy="beam", beam_size=4,
                                          n_best=4)
    assert sorted(h.tokens for h in output.hypotheses[0]) == sorted(h.tokens for h in plain.hypotheses[0])
    assert output.texts[0] == translator.tokenizer.decode(list(output.hypotheses[0][0].tokens))


def test_a_reranker_reads_the_whole_translation_its_prefix_too(tiny_model_dir: Path) -> None:
    translator = Translator.load(tiny_model_dir)
    seen: list[str] = []

    def spy(sources: list[str], candidates: list[list[Candidate]]) -> list[list[float]]:
        seen.extend(c.text for group in candidates for c in group)
        return [[0.0] * len(group) for group in candidates]

    output = translator.translate_detailed(["21"], "num", "en", strategy="beam", beam_size=3, n_best=3,
                                           rerank=spy, prefix="twenty")
    assert len(seen) == 3 and all(text.startswith("twenty") for text in seen)
    assert seen == [c.text for c in output.candidates[0]]


@pytest.mark.parametrize(("strategy", "options"), [
    ("greedy", ["-O", "min_length=2"]),
    ("beam", ["--beam-size", "3", "-O", "no_repeat_ngram=2"]),
    ("diverse-beam", ["-O", "groups=2", "--beam-size", "4", "-O", "diversity=0.7"]),
    ("sampling", ["-O", "top_p=0.9", "-O", "seed=1"]),
    ("aggressive", []),
    ("speculative", ["-O", "draft=ngram"]),
])
def test_every_strategy_from_the_cli(tiny_model_dir: Path, strategy: str, options: list[str]) -> None:
    result = CliRunner().invoke(app, ["translate", "-m", str(tiny_model_dir), "--src", "num",
                                      "--tgt", "en", "-s", strategy, "--stats", *options],
                                input="12\n\n7\n")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split("\n")) == 4
    assert '"forward_passes"' in result.stderr


def test_lossless_strategies_match_greedy_through_the_translator(tiny_model_dir: Path) -> None:
    translator = Translator.load(tiny_model_dir)
    texts = ["12", "399", "", "7", "250"]
    greedy = translator.translate(texts, "num", "en", strategy="greedy")
    assert translator.translate(texts, "num", "en", strategy="aggressive") == greedy
    assert translator.translate(texts, "num", "en", strategy="speculative",
                                draft="model", draft_model=str(tiny_model_dir)) == greedy
    output = translator.translate_detailed(texts, "num", "en", strategy="speculative")
    assert output.stats.draft_tokens >= output.stats.accepted_draft_tokens >= 0
    with pytest.raises(ConfigError, match="draft_model must be a polyseq model"):
        translator.translate(texts, "num", "en", strategy="speculative", draft="model", draft_model=object())


PREFIX_TEXTS = ["12", "399", "7", "250", "81", "100", "333", "4321"]


@pytest.mark.parametrize(("strategy", "settings"), [
    ("greedy", {}), ("beam", {"beam_size": 3, "n_best": 3}), ("diverse-beam", {"beam_size": 4, "groups": 2}),
    ("sampling", {"num_samples": 3, "seed": 3}),
])
def test_no_repeat_ngram_sees_the_users_prefix_through_the_translator(tiny_model_dir: Path, strategy: str,
                                                                       settings: dict) -> None:
    translator = Translator.load(tiny_model_dir)
    prefix = translator.tokenizer.encode_target("and")  # the tiny model goes on with "and" again
    output = translator.translate_detailed(PREFIX_TEXTS, "num", "en", strategy, prefix="and",
                                           no_repeat_ngram=2, **settings)
    for candidates in output.candidates:
        for candidate in candidates:
            ids = [*prefix, *candidate.hypothesis.tokens]
            bigrams = list(zip(ids, ids[1:], strict=False))
            assert len(set(bigrams)) == len(bigrams), candidate.text


@pytest.mark.parametrize("prefix", ["three hundred", ["and", "nine", "", "one hundred and", "two", "and", "",
                                                      "four"]])
def test_lossless_strategies_match_greedy_with_a_prefix(tiny_model_dir: Path, prefix: object) -> None:
    """A user's prefix changes what the processors see, never the lossless strategies' tokens;
    beam 1 with the processors still chooses greedy's tokens."""
    translator = Translator.load(tiny_model_dir)

    def translate(strategy: str, **settings: object) -> list[str]:
        return translator.translate(PREFIX_TEXTS, "num", "en", strategy, prefix=prefix, **settings)

    greedy = translate("greedy")
    assert translate("aggressive") == translate("speculative") == greedy
    assert translate("speculative", draft="model", draft_model=str(tiny_model_dir)) == greedy
    processors = {"no_repeat_ngram": 2, "repetition_penalty": 1.3, "min_length": 4}
    assert translate("beam", beam_size=1, **processors) == translate("greedy", **processors)


def test_decoding_pauses_the_garbage_collector_and_then_restores_it(monkeypatch) -> None:
    import gc

    from polyseq.decoding import STRATEGIES, greedy
    from polyseq.decoding.core import DecodeResult, StrategySpec

    seen: list[bool] = []

    def spy(model, inputs, config) -> DecodeResult:
        seen.append(gc.isenabled())
        return DecodeResult([])

    monkeypatch.setitem(STRATEGIES, "greedy", StrategySpec("greedy", spy, greedy.GreedyConfig))
    was = gc.isenabled()
    try:
        gc.enable()
        generate(None, None, "greedy")
        assert seen == [False] and gc.isenabled()
        gc.disable()  # a caller that turned it off keeps it off
        generate(None, None, "greedy")
        assert seen == [False, False] and not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_settings_take_their_fields_types_or_name_the_setting() -> None:
    config = make_config("beam", {"beam_size": "3", "length_penalty": 1, "max_len_b": "20",
                                  "min_length": 2.0, "banned_tokens": "4,5"})
    assert config.beam_size == 3 and config.length_penalty == 1.0 and config.max_length.b == 20
    assert config.processing.min_length == 2 and config.processing.banned_tokens == (4, 5)
    assert make_config("greedy", {"max_length": LengthLimit(0.0, 7)}).max_length == LengthLimit(0.0, 7)
    for strategy, settings, message in [
        ("beam", {"beam_size": "abc"}, "setting beam_size: 'abc' is not a valid int"),
        ("beam", {"beam_size": None}, "setting beam_size"),
        ("beam", {"beam_size": True}, "setting beam_size"),
        ("diverse-beam", {"beam_size": 2.5}, "setting beam_size: 2.5 is not a valid int"),
        ("beam", {"banned_tokens": 5}, "setting banned_tokens: 5 is not a list"),
        ("beam", {"processing": "x"}, "setting processing is given by its parts: min_length"),
        ("sampling", {"seed": "x"}, "setting seed"),
        ("greedy", {"max_length": 5}, "setting max_length is given by its parts: max_len_a, max_len_b"),
        ("greedy", {"max_len_b": -100}, "max_len_b an integer >= 1"),
        ("greedy", {"max_len_a": float("nan")}, "max_len_a must be a number >= 0"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            make_config(strategy, settings)
    with pytest.raises(ConfigError, match="max_len_b"):
        LengthLimit(1.0, 0)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("strategy", "setting"), [
    ("sampling", "temperature"), ("beam", "length_penalty"), ("diverse-beam", "length_penalty"),
    ("diverse-beam", "diversity"), ("greedy", "repetition_penalty"), ("sampling", "top_p"),
])
def test_settings_that_are_not_finite_numbers_are_refused_by_name(strategy: str, setting: str,
                                                                   value: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        make_config(strategy, {setting: value})


@pytest.mark.parametrize(("strategy", "settings", "message"), [
    ("greedy", {"banned_tokens": [999]}, "banned_tokens: token id 999 is outside the vocabulary (0..29)"),
    ("beam", {"force_first_token": 30}, "force_first_token: token id 30 is outside the vocabulary (0..29)"),
    ("sampling", {"allowed_tokens": [5, 30]}, "allowed_tokens: token id 30 is outside the vocabulary"),
])
def test_token_ids_outside_the_vocabulary_are_refused_by_name(strategy: str, settings: dict,
                                                              message: str) -> None:
    model, inputs = random_model_input(2)
    with pytest.raises(ConfigError, match=re.escape(message)):
        generate(model, inputs, strategy, **settings)


def test_negative_token_ids_are_refused_by_name() -> None:
    for settings, name in [({"banned_tokens": "-1"}, "banned_tokens"),
                           ({"allowed_tokens": "4,-2"}, "allowed_tokens"),
                           ({"force_first_token": -3}, "force_first_token")]:
        with pytest.raises(ConfigError, match=name):
            make_config("greedy", settings)
