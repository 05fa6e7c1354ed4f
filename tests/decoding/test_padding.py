"""No strategy generates padding (fairseq's rule): it is never a target, yet a model gives it
probability (label smoothing spreads mass onto it). Here a model prefers it to every other token,
and each strategy takes the best of the rest, the lossless ones still greedy's tokens."""

from __future__ import annotations

import pytest
import torch
from test_beam_greedy import PAD, ProtocolOnly, random_model_input

from polyseq.config import OutputBias
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput
from polyseq.model.native import native_passes
from polyseq.model.transformer import Seq2Seq

EVERY_STRATEGY = [
    ("greedy", {}), ("greedy", {"min_length": 1}), ("beam", {"beam_size": 4, "n_best": 4}),
    ("beam", {"beam_size": 3, "no_repeat_ngram": 3}), ("diverse-beam", {}),
    ("sampling", {"num_samples": 3, "temperature": 2.0}), ("aggressive", {}),
    ("speculative", {"draft": "ngram"}),
]


def padding_lover() -> tuple[Seq2Seq, DecodeInput]:
    """A random model whose output bias makes padding the most likely token at every step."""
    model, inputs = random_model_input()
    loving = Seq2Seq(model.config.__class__(**{**vars(model.config), "output_bias": OutputBias.BIAS})).eval()
    loving.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        loving.output_bias[PAD] = 30.0
    return loving, inputs


@pytest.mark.parametrize(("strategy", "settings"), EVERY_STRATEGY)
def test_no_strategy_generates_padding(strategy: str, settings: dict) -> None:
    model, inputs = padding_lover()
    assert native_passes(model) is not None  # the fused choice, and the module path below
    for runner in (model, ProtocolOnly(model)):
        result = generate(runner, inputs, strategy, **settings)
        outputs = [h.tokens for candidates in result.hypotheses for h in candidates]
        assert all(PAD not in tokens for tokens in outputs), (strategy, outputs)
        assert sum(map(len, outputs)) > len(outputs)


def test_without_padding_lossless_strategies_and_beam_one_are_still_greedy() -> None:
    model, inputs = padding_lover()
    greedy = generate(model, inputs, "greedy").best()
    assert all(len(h.tokens) > 1 for h in greedy)
    draft = {"draft": "model", "draft_model": model}
    for strategy, settings in [("aggressive", {}), ("speculative", {}), ("speculative", draft),
                               ("beam", {"beam_size": 1})]:
        result = generate(model, inputs, strategy, **settings).best()
        assert [h.tokens for h in result] == [h.tokens for h in greedy], strategy
        for ours, theirs in zip(result, greedy, strict=True):
            # log-probabilities stay under the model's whole distribution (padding's mass included)
            assert ours.log_prob == pytest.approx(theirs.log_prob, rel=1e-4)
    assert greedy[0].log_prob < -20 * len(greedy[0].tokens)


def test_padding_that_is_end_of_sentence_too_still_ends_outputs() -> None:
    model, inputs = padding_lover()
    same = DecodeInput(inputs.src, inputs.prefix, eos_id=PAD, pad_id=PAD)
    assert same.banned_id is None
    for strategy in ("greedy", "beam"):  # EOS (= padding) at once, as before
        assert [h.tokens for h in generate(model, same, strategy).best()] == [()] * same.batch_size
