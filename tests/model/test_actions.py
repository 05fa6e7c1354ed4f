"""Sequence-to-Action (polyseq.model.actions): action sequences and the pointer on hand-made ids, the
mixture as a distribution, the cache against uncached decoding, and lossless decoding on an
untrained S2A model (a trained one is in tests/train/test_actions_training.py)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from helpers import TINY_MODEL
from polyseq.config import Actions, ConfigError, ModelConfig, load_config
from polyseq.decoding import generate
from polyseq.decoding.aggressive import AggressiveConfig, InputDrafter
from polyseq.decoding.core import DecodeInput
from polyseq.decoding.drafting import Row
from polyseq.interop.families import InteropError, family_of
from polyseq.model.actions import (
    COPY,
    GEN,
    SKIP,
    ActionSeq2Seq,
    action_target,
    actions,
    build_model,
    follow,
    mixture,
)
from polyseq.model.native import native_passes, uncovered
from polyseq.model.transformer import Memory, Seq2Seq

S = 2  # the skip id
TAG, EOS, PAD = 5, 3, 0
SOURCE = [TAG, 10, 11, 12, EOS]
CONFIG = replace(TINY_MODEL, vocab_size=40, actions=Actions.S2A)


@pytest.mark.parametrize(("target", "sequence", "expected_actions", "pointers"), [
    ([TAG, 10, 11, 12, EOS], [TAG, 10, 11, 12, EOS], [COPY] * 5, [1, 2, 3, 4, 5]),
    ([TAG, 10, 12, EOS], [TAG, 10, S, 12, EOS], [COPY, COPY, SKIP, COPY, COPY], [1, 2, 3, 4, 5]),
    ([TAG, 10, 20, 11, 12, EOS], [TAG, 10, 20, 11, 12, EOS], [COPY, COPY, GEN, COPY, COPY, COPY],
     [1, 2, 2, 3, 4, 5]),
    ([TAG, 10, 20, 21, 12, EOS], [TAG, 10, S, 20, 21, 12, EOS],
     [COPY, COPY, SKIP, GEN, GEN, COPY, COPY], [1, 2, 3, 3, 3, 4, 5]),
], ids=["copy", "delete", "insert", "replace"])
def test_action_sequences_of_hand_made_pairs(target: list[int], sequence: list[int],
                                              expected_actions: list[int], pointers: list[int]) -> None:
    assert action_target(SOURCE, target, S) == sequence
    assert actions(SOURCE, sequence, S) == expected_actions
    assert follow(SOURCE, sequence, S) == pointers
    assert [token for token in sequence if token != S] == target


def test_random_pairs_read_back_to_their_target_and_consume_the_source() -> None:
    rng = random.Random(7)
    for _ in range(500):
        source = [TAG, *[rng.randint(10, 13) for _ in range(rng.randint(0, 8))], EOS]
        target = [TAG, *[rng.randint(10, 13) for _ in range(rng.randint(0, 8))], EOS]
        sequence = action_target(source, target, S)
        assert [token for token in sequence if token != S] == target
        assert follow(source, sequence, S)[-1] == len(source)  # the final EOS copies the source's


def test_nothing_is_skipped_or_copied_past_the_source() -> None:
    assert actions([TAG, EOS], [TAG, EOS, S, EOS], S) == [COPY, COPY, GEN, GEN]
    assert follow([TAG, EOS], [TAG, EOS, S, EOS], S) == [1, 2, 2, 2]
    with pytest.raises(ValueError, match="skip id 2"):
        action_target([TAG, S, EOS], [TAG, EOS], S)


def test_the_mixture_is_a_distribution_with_the_actions_mass_where_it_belongs() -> None:
    vocab = 8
    gen = torch.zeros(2, vocab)  # a uniform p_gen
    action = torch.tensor([0.5, 0.3, 0.2]).log().expand(2, 3)  # SKIP, COPY, GEN
    copy_ids = torch.tensor([6, PAD])  # the second position is past the source
    probs = mixture(gen, action, copy_ids, skip_id=S, pad_id=PAD).exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    assert probs[0, 6].item() == pytest.approx(0.3 + 0.2 / vocab)
    assert probs[0, S].item() == pytest.approx(0.5 + 0.2 / vocab)
    assert probs[0, 4].item() == pytest.approx(0.2 / vocab)
    torch.testing.assert_close(probs[1], torch.full((vocab,), 1 / vocab))  # GEN alone


def model(seed: int = 0, config: ModelConfig = CONFIG) -> ActionSeq2Seq:
    torch.manual_seed(seed)
    built = build_model(config)
    assert isinstance(built, ActionSeq2Seq)
    for parameter in built.parameters():  # weights large enough that all three actions happen
        torch.nn.init.normal_(parameter, std=0.3)
    return built.eval()


SRC = torch.tensor([[TAG, 10, 11, 12, 13, EOS], [TAG, 14, 15, EOS, PAD, PAD]])
TGT = torch.tensor([[TAG, 10, S, 20, 12, 13, EOS], [TAG, 14, 21, 15, EOS, PAD, PAD]])


def test_log_probabilities_are_normalised_and_gradients_finite() -> None:
    s2a = model().train()
    log_probs = s2a(SRC, TGT[:, :-1])  # (B, T, V)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))
    torch.testing.assert_close(log_probs.log_softmax(-1), log_probs, atol=1e-5, rtol=0)
    loss = -log_probs.gather(-1, TGT[:, 1:, None]).sum()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in s2a.parameters() if p.grad is not None)


def test_cached_decoding_equals_uncached_after_truncate_and_reorder() -> None:
    s2a = model()
    with torch.no_grad():
        memory = s2a.encode(SRC)
        expected = s2a.decode_step(TGT, memory)  # (B, T, V) from position 0
        cache = s2a.init_cache(memory, capacity=2)  # grows as tokens arrive
        first = s2a.decode_step(TGT[:, :3], memory, cache)
        s2a.decode_step(torch.tensor([[30, 31], [32, 33]]), memory, cache)  # a rejected draft
        cache.truncate(torch.tensor([3, 3]))
        rest = s2a.decode_step(TGT[:, 3:], memory, cache)
        torch.testing.assert_close(torch.cat([first, rest], 1), expected, atol=1e-5, rtol=0)
        cache.truncate(torch.tensor([5, 4]))  # rows at different lengths, then swapped
        cache.reorder(torch.tensor([1, 0]))
        ragged = s2a.decode_step(torch.stack([TGT[1, 4:6], TGT[0, 5:7]]), memory.select(torch.tensor([1, 0])),
                                 cache)
    torch.testing.assert_close(ragged[0], expected[1, 4:6], atol=1e-5, rtol=0)
    torch.testing.assert_close(ragged[1], expected[0, 5:7], atol=1e-5, rtol=0)


def inputs(rows: list[list[int]]) -> DecodeInput:
    width = max(map(len, rows))
    src = torch.tensor([row + [PAD] * (width - len(row)) for row in rows])
    return DecodeInput(src, torch.full((len(rows), 1), TAG), eos_id=EOS, pad_id=PAD)


def test_aggressive_and_speculative_equal_greedy_on_an_untrained_model() -> None:
    s2a = model(seed=3)
    rows = [[TAG, 10, 11, 12, 13, 14, EOS], [TAG, 15, EOS], [TAG, 16, 17, 18, EOS]]
    for batch in (rows[:1], rows):
        expected = generate(s2a, inputs(batch), "greedy")
        assert any(S in h.tokens for h in expected.best())  # the untrained model skips too
        for strategy, settings in [("aggressive", {}), ("aggressive", {"max_draft": 2}),
                                   ("speculative", {"draft": "ngram"})]:
            result = generate(s2a, inputs(batch), strategy, **settings)
            assert [h.tokens for h in result.best()] == [h.tokens for h in expected.best()]
        beam = generate(s2a, inputs(batch), "beam", beam_size=1)
        assert [h.tokens for h in beam.best()] == [h.tokens for h in expected.best()]


def test_the_drafter_follows_the_pointer_of_an_s2a_model() -> None:
    source = [10, 11, 12, EOS]  # as aggressive drafts it: without the decoder prefix
    s2a = model()
    proposals = []
    for cursor_of in (s2a.source_cursor, None):
        row = Row(0, 20, source)
        drafter = InputDrafter([row], AggressiveConfig(), cursor_of)
        # 11 is replaced by 20: the model keeps 10 and skips, then generates 20 instead of 12
        for own_tokens, accepted in (([10, S], 1), ([20], 0)):
            draft = drafter.propose([row])[0]
            row.tokens += own_tokens
            drafter.accepted([row], [accepted], [draft])
        proposals.append(drafter.propose([row])[0])
    assert proposals[0] == [12, EOS]  # where the output goes on
    assert proposals[1] == [EOS]  # n-gram re-alignment guesses that 20 replaced 12


def test_bad_inputs_and_plain_models() -> None:
    s2a = model()
    with pytest.raises(ValueError, match="skip id"):
        s2a.encode(torch.tensor([[TAG, S, EOS]]))
    plain_memory = Seq2Seq.encode(s2a, SRC)
    with pytest.raises(TypeError, match="its own encode"):
        s2a.init_cache(Memory(plain_memory.states, plain_memory.mask))
    with pytest.raises(ConfigError, match="s2a"):
        ActionSeq2Seq(TINY_MODEL)
    with pytest.raises(ConfigError, match="skip_id"):
        replace(CONFIG, skip_id=PAD)
    assert load_config(None, ["model.actions=s2a"]).model.actions is Actions.S2A
    with pytest.raises(ConfigError, match=r"model.actions: 's2x' is not one of \['none', 's2a'\]"):
        load_config(None, ["model.actions=s2x"])
    with pytest.raises(InteropError, match="s2a output layer"):
        family_of(CONFIG)
    assert native_passes(s2a) is None and "Sequence-to-Action" in uncovered(s2a)  # no native pointer
    plain = build_model(TINY_MODEL)
    assert type(plain) is Seq2Seq and TINY_MODEL.actions is Actions.NONE
