"""Lossless means identical: aggressive and speculative decoding return greedy's tokens, token for
token, at batch 1 and 8, on a copy-like model, a translator whose drafts fail often, and an
untrained model, with drafts that are always wrong included."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
from num2words import num2words

from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput, DecodeResult
from polyseq.model.transformer import Seq2Seq
from polyseq.translator import Translator

LOSSLESS = [
    ("aggressive", {}),
    ("aggressive", {"max_draft": 3}),
    ("aggressive", {"adaptive": True}),
    ("speculative", {"draft": "ngram"}),
    ("speculative", {"draft": "ngram", "k": 2, "max_k": 2, "ngram": 1}),
]


def inputs_for(translator: Translator, texts: list[str], tgt_lang: str) -> DecodeInput:
    tokenizer = translator.tokenizer
    rows = [tokenizer.source_ids(text, tgt_lang) for text in texts]
    src = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_id, dtype=torch.long)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    prefix = torch.full((len(rows), 1), tokenizer.lang_id(tgt_lang), dtype=torch.long)
    return DecodeInput(src, prefix, tokenizer.eos_id, tokenizer.pad_id)


def tokens(result: DecodeResult) -> list[tuple[int, ...]]:
    return [h.tokens for h in result.best()]


def assert_lossless(model: object, inputs: DecodeInput, draft_model: object) -> DecodeResult:
    expected = generate(model, inputs, "greedy")
    strategies = [*LOSSLESS, ("speculative", {"draft": "model", "draft_model": draft_model}),
                  ("speculative", {"draft": "model", "draft_model": draft_model, "k": 1,
                                   "adaptive": False}),
                  ("speculative", {"draft": "model", "draft_model": draft_model, "k": 8,
                                   "confidence": 0.6})]
    for strategy, settings in strategies:
        result = generate(model, inputs, strategy, **settings)
        assert tokens(result) == tokens(expected), (strategy, settings)
        for ours, theirs in zip(result.best(), expected.best(), strict=True):
            assert ours.finished == theirs.finished
            assert ours.log_prob == pytest.approx(theirs.log_prob, abs=1e-3)
    return expected


@pytest.mark.parametrize("batch", [1, 8])
def test_lossless_on_the_copy_like_corrector(copy_translator: Translator, batch: int) -> None:
    texts = [num2words(n) for n in (2467, 3001, 128, 1999, 45, 7070, 12345, 606)][:batch]
    inputs = inputs_for(copy_translator, texts, "yy")
    untrained = Seq2Seq(copy_translator.model.config).eval()
    expected = assert_lossless(copy_translator.model, inputs, untrained)
    # the corrector copies most of its input: aggressive needs far fewer passes than greedy
    aggressive = generate(copy_translator.model, inputs, "aggressive")
    greedy_passes = generate(copy_translator.model, inputs, "greedy").stats.forward_passes
    assert aggressive.stats.forward_passes < greedy_passes
    assert aggressive.stats.accepted_draft_tokens > 0
    assert all(len(t) > 2 for t in tokens(expected))


@pytest.mark.parametrize("batch", [1, 8])
def test_lossless_on_a_translator_whose_drafts_fail(tiny_model_dir, batch: int) -> None:
    translator = Translator.load(tiny_model_dir)
    texts = ["12", "399", "7", "250", "81", "100", "333", "64"][:batch]
    inputs = inputs_for(translator, texts, "en")  # digits -> words: the copied draft is useless
    assert_lossless(translator.model, inputs, translator.model)


@pytest.mark.parametrize("batch", [1, 8])
def test_lossless_on_an_untrained_model(batch: int) -> None:
    torch.manual_seed(11)
    model = Seq2Seq(replace_config()).eval()
    generator = torch.Generator().manual_seed(2)
    src = torch.randint(5, 50, (batch, 12), generator=generator)
    for row in range(batch):
        src[row, 4 + row :] = 0
    inputs = DecodeInput(src, torch.full((batch, 1), 4), eos_id=3, pad_id=0)
    draft = Seq2Seq(replace(replace_config(), decoder_layers=1)).eval()
    result = assert_lossless(model, inputs, draft)
    assert any(not h.finished for h in result.best())  # runs into the length limit too


def test_a_draft_model_with_fewer_positions_drafts_until_they_are_full() -> None:
    torch.manual_seed(11)
    model = Seq2Seq(replace_config()).eval()
    src = torch.randint(5, 50, (3, 20), generator=torch.Generator().manual_seed(4))
    src[1, 9:] = 0
    inputs = DecodeInput(src, torch.full((3, 1), 4), eos_id=3, pad_id=0)
    expected = tokens(generate(model, inputs, "greedy"))
    assert max(map(len, expected)) > 16
    for positions in (24, 16):  # room for the source and part of the output; not for the source
        draft = Seq2Seq(replace(replace_config(), decoder_layers=1, max_positions=positions)).eval()
        result = generate(model, inputs, "speculative", draft="model", draft_model=draft)
        assert tokens(result) == expected, positions


def test_beam_search_on_the_native_path_finds_the_module_paths_beams(copy_translator: Translator) -> None:
    """Beam search reads each beam's best tokens from the native output layer, the module path
    ranks whole distributions: the same hypotheses, scores within rounding."""
    model = copy.deepcopy(copy_translator.model)
    inputs = inputs_for(copy_translator, [num2words(n) for n in (2467, 3001, 128, 45)], "yy")
    native = generate(model, inputs, "beam", beam_size=4, n_best=4)
    model.decoder_layers[0].register_forward_hook(lambda module, args, output: None)  # the module path
    reference = generate(model, inputs, "beam", beam_size=4, n_best=4)
    for ours, theirs in zip(native.hypotheses, reference.hypotheses, strict=True):
        assert [h.tokens for h in ours] == [h.tokens for h in theirs]
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-4)


def test_lossless_on_the_native_and_the_module_path(copy_translator: Translator) -> None:
    """The tests above run on the native passes (the models are covered); lossless holds on the
    modules' reference path too (a forward hook keeps a model there)."""
    from polyseq.model.native import native_passes

    model = copy.deepcopy(copy_translator.model)
    assert native_passes(model) is not None
    model.decoder_layers[0].register_forward_hook(lambda module, args, output: None)
    assert native_passes(model) is None
    texts = [num2words(n) for n in (2467, 3001, 128, 1999, 45, 7070, 12345, 606)]
    assert_lossless(model, inputs_for(copy_translator, texts, "yy"), Seq2Seq(model.config).eval())


def replace_config():
    from polyseq.config import ModelConfig

    return ModelConfig(vocab_size=50, d_model=32, encoder_layers=1, decoder_layers=2, heads=2,
                       ffn_dim=64, dropout=0.0, max_positions=64)


def test_always_wrong_drafts_still_give_greedy(copy_translator: Translator) -> None:
    from polyseq.decoding.core import LengthLimit
    from polyseq.decoding.drafting import draft_and_verify

    class WrongDrafter:
        confident = False

        def propose(self, rows):
            return [[7] * 5 for _ in rows]  # a token the corrector never produces here

        def accepted(self, rows, counts, drafts):
            assert all(count == 0 for count in counts)

        def keep(self, positions):
            pass

    texts = [num2words(n) for n in (215, 999, 1500)]
    inputs = inputs_for(copy_translator, texts, "yy")
    sources = [[7] * 5 for _ in texts]
    result = draft_and_verify(copy_translator.model, inputs, LengthLimit(), sources,
                              lambda *_: WrongDrafter())
    assert tokens(result) == tokens(generate(copy_translator.model, inputs, "greedy"))


def test_greedy_output_as_draft_takes_one_pass_for_the_whole_batch(copy_translator: Translator) -> None:
    """What bench/decoding.py's oracle row relies on: a draft that is greedy's own output (with
    its EOS) is accepted whole, so each input takes a single verifying pass."""
    from polyseq.decoding.core import LengthLimit
    from polyseq.decoding.drafting import draft_and_verify

    texts = [num2words(n) for n in (215, 4711, 30, 1500)]
    inputs = inputs_for(copy_translator, texts, "yy")
    expected = generate(copy_translator.model, inputs, "greedy")
    outputs = [[*tokens, inputs.eos_id] for tokens in tokens(expected)]

    class ReplayDrafter:
        confident = True

        def propose(self, rows):
            return [outputs[row.index][len(row.tokens):] for row in rows]

        def accepted(self, rows, counts, drafts):
            pass

        def keep(self, positions):
            pass

    result = draft_and_verify(copy_translator.model, inputs, LengthLimit(), [[] for _ in texts],
                              lambda *_: ReplayDrafter())
    assert tokens(result) == tokens(expected)
    assert all(h.finished for h in result.best())
    assert result.stats.forward_passes == 1
    assert result.stats.accepted_draft_tokens == sum(map(len, outputs))


def test_verification_projects_only_positions_up_to_each_first_mismatch() -> None:
    from polyseq.decoding.core import greedy_choice
    from polyseq.decoding.drafting import _check_drafts

    vocabulary, width = 10, 12
    # row 0 agrees with its whole draft, row 1 leaves it at its third token, row 2 has no draft
    drafts = [[3, 4, 5, 6, 7, 8, 9, 1, 2], [3, 4, 5, 6], []]
    greedy = [[3, 4, 5, 6, 7, 8, 9, 1, 2, 0], [3, 4, 9, 9, 9], [7]]
    states = torch.full((3, width, vocabulary), -5.0)
    for row, choices in enumerate(greedy):
        for position, token in enumerate(choices):
            states[row, 1 + position, token] = 5.0  # pending token at 0, so predictions start at 1
    projected: list[int] = []

    def choose(rows: torch.Tensor) -> tuple[list[int], list[float]]:
        projected.append(rows.shape[0])
        return greedy_choice(rows)  # the states are the logits here

    checked = _check_drafts(states, choose, [1, 1, 1], drafts, confident=False)
    assert [tokens for tokens, _ in checked] == [greedy[0], [3, 4, 9], [7]]
    expected_score = 5.0 - torch.tensor([5.0] + [-5.0] * 9).logsumexp(0).item()
    assert all(score == pytest.approx(expected_score, abs=1e-6) for _, scores in checked for score in scores)
    # rounds of 8, 16 positions: row 0 needs 10 predictions, row 1 stops in the first round
    assert projected == [8 + 5 + 1, 2]
    # a confident drafter's first round has at least ROUND_POSITIONS positions: here all of them
    projected.clear()
    assert _check_drafts(states, choose, [1, 1, 1], drafts, confident=True) == checked
    assert projected == [10 + 5 + 1]


def test_ngram_drafts_shrink_after_a_miss_and_grow_while_accepted() -> None:
    from polyseq.decoding.drafting import Row
    from polyseq.decoding.speculative import NgramDrafter, SpeculativeConfig

    row = Row(0, 100, source=list(range(10, 60)), tokens=[10, 11])
    drafter = NgramDrafter([row], SpeculativeConfig(max_k=8))
    assert drafter.propose([row]) == [list(range(12, 20))]  # what follows "10 11", up to max_k
    row.tokens += [12, 13, 30]  # two accepted, then the model left the draft for 30
    drafter.accepted([row], [2], [list(range(12, 20))])
    assert drafter.propose([row]) == [[31, 32, 33, 34]]  # half the budget
    row.tokens += [31, 40]
    drafter.accepted([row], [1], [[31, 32, 33, 34]])
    assert drafter.propose([row]) == [[41, 42]]  # half again, and one more than it accepted
    row.tokens += [41, 42, 43]
    drafter.accepted([row], [2], [[41, 42]])
    assert drafter.propose([row]) == [[44, 45, 46, 47]]  # the whole draft passed: twice as many
    fixed = NgramDrafter([row], SpeculativeConfig(k=3, max_k=3, adaptive=False))
    fixed.accepted([row], [0], [[44, 45, 46]])
    assert fixed.propose([row]) == [[44, 45, 46]]


def test_model_drafts_end_after_the_first_token_the_draft_model_is_unsure_of(
        copy_translator: Translator) -> None:
    """A row's draft runs to the first token to which the draft model gives less than the
    `confidence` probability, that token included; an untrained draft model is sure of nothing,
    so its drafts end after one token, where without the floor they run to k."""
    from polyseq.decoding.drafting import Row
    from polyseq.decoding.speculative import ModelDrafter, SpeculativeConfig

    texts = [num2words(n) for n in (2467, 3001, 128, 1999)]
    inputs = inputs_for(copy_translator, texts, "yy")
    model = copy_translator.model

    def proposals(draft_model: Seq2Seq, confidence: float) -> list[list[int]]:
        rows = [Row(i, 40, [], pending=inputs.prefix[i].tolist()) for i in range(len(texts))]
        config = SpeculativeConfig(draft="model", draft_model=draft_model, k=6, adaptive=False,
                                   confidence=confidence)
        return ModelDrafter(draft_model, inputs, rows, config).propose(rows)

    untrained = Seq2Seq(model.config).eval()
    assert [len(d) for d in proposals(untrained, 0.6)] == [1] * len(texts)
    assert [len(d) for d in proposals(untrained, 0.0)] == [6] * len(texts)
    whole, cut = proposals(model, 0.0), proposals(model, 0.6)
    with torch.inference_mode():  # the corrector's own probability for each of its draft tokens
        prefixes = torch.cat([inputs.prefix, torch.tensor(whole)], dim=1)
        logits = model.decode_step(prefixes[:, :-1], model.encode(inputs.src))
        sure = (logits.softmax(dim=-1).max(dim=-1).values[:, inputs.prefix.shape[1] - 1 :] >= 0.6).tolist()
    expected = [row.index(False) + 1 if False in row else 6 for row in sure]
    assert cut == [draft[:end] for draft, end in zip(whole, expected, strict=True)]
    assert len(set(map(len, cut))) > 1  # some drafts were cut, others ran on


def test_a_draft_model_stops_drafting_at_the_models_last_position() -> None:
    """Outputs that run to the model's last position: the draft model proposes no token past it."""
    from polyseq.config import ModelConfig
    from polyseq.decoding.core import LengthLimit

    torch.manual_seed(5)
    config = ModelConfig(vocab_size=50, d_model=32, encoder_layers=1, decoder_layers=1, heads=2, ffn_dim=64,
                         dropout=0.0, max_positions=16)
    model = Seq2Seq(config).eval()
    src = torch.randint(5, 50, (3, 6), generator=torch.Generator().manual_seed(6))
    inputs = DecodeInput(src, torch.full((3, 1), 4), eos_id=3, pad_id=0)
    limit = LengthLimit(0.0, 100)  # only the model's positions end these outputs
    expected = generate(model, inputs, "greedy", max_length=limit)
    assert any(len(h.tokens) == 15 for h in expected.best())  # one prefix token + 15: all 16 positions
    for k in (4, 8):
        result = generate(model, inputs, "speculative", draft="model", draft_model=model, k=k,
                          max_length=limit)
        assert tokens(result) == tokens(expected)


def test_the_native_path_stays_lossless_where_two_tokens_tie_within_rounding() -> None:
    """A verifying pass and greedy's one-token passes differ in shape; on the module path their
    rounding differs too (by about 1e-6 here), so near a tie they may choose differently (see
    docs/decoding.md). The native passes give every token the same bits in any pass: with one
    output bias swept through the tie between greedy's choice and the runner-up, speculative
    (the model drafting for itself: every step verified in one pass) and aggressive decoding
    still return greedy's tokens."""
    from polyseq.config import OutputBias
    from polyseq.model.native import native_passes

    torch.manual_seed(0)
    config = replace(replace_config(), d_model=64, heads=4, decoder_layers=1, ffn_dim=128, max_positions=32,
                     tie_embeddings=False, output_bias=OutputBias.BIAS)
    model = Seq2Seq(config).eval()
    native = native_passes(model)
    assert native is not None
    with torch.no_grad():
        model.output.weight.mul_(5)
    inputs = DecodeInput(torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12, 13, 3]]), torch.tensor([[4]]), eos_id=3,
                         pad_id=0)

    def logits_after(output: tuple[int, ...]) -> torch.Tensor:
        passes = native_passes(model)
        assert passes is not None
        cache = passes.init_cache(passes.encode(inputs.src))
        return passes.project(passes.decode(torch.tensor([[4, *output]]), cache))[0]  # (T, V)

    greedy = tokens(generate(model, inputs, "greedy", max_len_b=12))[0]
    logits = logits_after(greedy)
    chosen, runner_up = greedy[1], int(logits[1].topk(2).indices[1])
    gap, base = float(logits[1, chosen] - logits[1, runner_up]), float(model.output_bias.detach()[runner_up])
    closest = math.inf
    for delta in torch.linspace(gap - 4e-6, gap + 4e-6, 33).tolist():
        with torch.no_grad():
            model.output_bias[runner_up] = base + delta
        expected = generate(model, inputs, "greedy", max_len_b=12)
        itself = {"draft": "model", "draft_model": model, "k": 16, "adaptive": False}
        for strategy, settings in (("aggressive", {}), ("speculative", itself)):
            assert tokens(generate(model, inputs, strategy, max_len_b=12, **settings)) == tokens(expected)
        logits = logits_after(expected.best()[0].tokens)[1]
        best = logits.topk(2).values
        closest = min(closest, float(best[0] - best[1]))
    assert closest < 1e-6  # the sweep went through the tie
