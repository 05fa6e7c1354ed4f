"""Greedy and beam search: exact beams and scores on a model whose step probabilities are written
by hand, beam(1) == greedy on a real model, and batching that changes nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import torch

from polyseq.config import ConfigError, ModelConfig
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput, LengthLimit
from polyseq.model.transformer import Seq2Seq

PAD, EOS, A, B = 0, 1, 2, 3
START = 4  # the prefix token (a language tag)

# P(next | generated so far), over [pad, eos, a, b]; unlisted histories end with EOS
TABLE: dict[tuple[int, ...], list[float]] = {
    (): [0, 0, 0.6, 0.4],
    (A,): [0, 0.5, 0.3, 0.2],
    (B,): [0, 0.1, 0.9, 0],
    (A, A): [0, 1, 0, 0],
    (A, B): [0, 1, 0, 0],
    (B, A): [0, 0.4, 0, 0.6],
    (B, A, B): [0, 1, 0, 0],
}


@dataclass
class TableCache:
    histories: list[tuple[int, ...]] = field(default_factory=list)

    def reorder(self, index: torch.Tensor) -> None:
        self.histories = [self.histories[i] for i in index.tolist()]

    def truncate(self, length: int | torch.Tensor) -> None:
        raise NotImplementedError


class TableModel:
    """Implements the model protocol with the hand-written TABLE (vocabulary of 5)."""

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        return src

    def init_cache(self, memory: torch.Tensor, capacity: int = 0) -> TableCache:
        return TableCache([() for _ in range(memory.shape[0])])

    def decode_step(self, tokens: torch.Tensor, memory: torch.Tensor, cache: TableCache):
        logits = torch.full((tokens.shape[0], tokens.shape[1], 5), -math.inf)
        for row, new in enumerate(tokens.tolist()):
            history = cache.histories[row] + tuple(t for t in new if t != START)
            cache.histories[row] = history
            probabilities = TABLE.get(history, [0, 1, 0, 0])
            logits[row, -1, :4] = torch.tensor(probabilities).log()
        return logits


def table_input(batch: int = 1) -> DecodeInput:
    return DecodeInput(torch.full((batch, 3), 7), torch.full((batch, 1), START), EOS, PAD)


def test_beam_two_finds_the_hand_computed_beams_and_scores() -> None:
    result = generate(TableModel(), table_input(), "beam", beam_size=2, n_best=2, length_penalty=0.0)
    best, second = result.hypotheses[0]
    # step 2 finalizes (a) with p = .6 * .5; step 3 finalizes (a, a) with .6 * .3 * 1, while
    # (b, a, eos) = .144 ranks third and is not final; two final hypotheses stop the search
    assert (best.tokens, second.tokens) == ((A,), (A, A))
    assert best.log_prob == pytest.approx(math.log(0.30))
    assert second.log_prob == pytest.approx(math.log(0.18))
    assert best.score == pytest.approx(math.log(0.30))


def test_length_penalty_reorders_by_normalised_score() -> None:
    result = generate(TableModel(), table_input(), "beam", beam_size=2, n_best=2, length_penalty=1.0)
    first, second = result.hypotheses[0]
    # log(.18) / 3 tokens (eos counted) = -0.572 beats log(.30) / 2 = -0.602
    assert first.tokens == (A, A)
    assert first.score == pytest.approx(math.log(0.18) / 3)
    assert second.score == pytest.approx(math.log(0.30) / 2)


def test_greedy_on_the_table_model() -> None:
    result = generate(TableModel(), table_input(2), "greedy")
    assert [h.tokens for h in result.best()] == [(A,), (A,)]
    assert result.best()[0].log_prob == pytest.approx(math.log(0.30))
    assert result.stats.forward_passes == 2


def test_length_limit_stops_without_eos() -> None:
    limit = LengthLimit(a=0.0, b=1)
    greedy = generate(TableModel(), table_input(), "greedy", max_length=limit).best()[0]
    beam = generate(TableModel(), table_input(), "beam", beam_size=1, max_length=limit).best()[0]
    assert greedy.tokens == beam.tokens == (A,)
    assert not greedy.finished and not beam.finished


def test_bad_beam_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="n_best"):
        generate(TableModel(), table_input(), "beam", beam_size=2, n_best=3)
    with pytest.raises(ConfigError, match="did you mean 'beam_size'"):
        generate(TableModel(), table_input(), "beam", beam_sise=2)
    with pytest.raises(ConfigError, match="unknown decoding strategy 'bean'"):
        generate(TableModel(), table_input(), "bean")


def random_model_input(batch: int = 6) -> tuple[Seq2Seq, DecodeInput]:
    torch.manual_seed(3)
    config = ModelConfig(vocab_size=30, d_model=32, encoder_layers=1, decoder_layers=2, heads=2,
                         ffn_dim=64, dropout=0.0, max_positions=40)
    model = Seq2Seq(config).eval()
    generator = torch.Generator().manual_seed(5)
    src = torch.randint(5, 30, (batch, 8), generator=generator)
    for row in range(batch):
        src[row, 2 + row :] = PAD
    return model, DecodeInput(src, torch.full((batch, 1), START), EOS, PAD)


def test_beam_one_equals_greedy_on_a_real_model() -> None:
    model, inputs = random_model_input()
    greedy = generate(model, inputs, "greedy").best()
    beam = generate(model, inputs, "beam", beam_size=1).best()
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    for b, g in zip(beam, greedy, strict=True):
        assert b.log_prob == pytest.approx(g.log_prob, abs=1e-4)
    assert any(len(h.tokens) > 1 for h in greedy)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_batched_decoding_equals_one_sentence_at_a_time(strategy: str) -> None:
    model, inputs = random_model_input()
    batched = generate(model, inputs, strategy).best()
    for row in range(inputs.batch_size):
        length = int((inputs.src[row] != PAD).sum())
        single = DecodeInput(inputs.src[row : row + 1, :length], inputs.prefix[row : row + 1],
                             EOS, PAD)
        assert generate(model, single, strategy).best()[0].tokens == batched[row].tokens


def test_beam_returns_n_best_sorted_and_distinct() -> None:
    model, inputs = random_model_input(2)
    result = generate(model, inputs, "beam", beam_size=4, n_best=4)
    for candidates in result.hypotheses:
        assert len(candidates) == 4
        scores = [h.score for h in candidates]
        assert scores == sorted(scores, reverse=True)
        assert len({h.tokens for h in candidates}) == 4


class ProtocolOnly:
    """A polyseq model seen only through the protocol, so strategies step through decode_step."""

    def __init__(self, model: Seq2Seq):
        self.model, self.config = model, model.config

    def encode(self, src: torch.Tensor) -> object:
        return self.model.encode(src)

    def init_cache(self, memory: object, capacity: int = 64) -> object:
        return self.model.init_cache(memory, capacity)  # type: ignore[arg-type]

    def decode_step(self, tokens: torch.Tensor, memory: object, cache: object = None) -> torch.Tensor:
        return self.model.decode_step(tokens, memory, cache)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy, settings", [("greedy", {}), ("beam", {"beam_size": 3, "n_best": 3}),
                                                ("aggressive", {}), ("speculative", {"draft": "ngram"})])
def test_the_flat_path_gives_what_decode_step_gives(strategy: str, settings: dict) -> None:
    model, inputs = random_model_input()
    fast = generate(model, inputs, strategy, **settings).hypotheses
    general = generate(ProtocolOnly(model), inputs, strategy, **settings).hypotheses
    assert [[h.tokens for h in row] for row in fast] == [[h.tokens for h in row] for row in general]
    for fast_row, general_row in zip(fast, general, strict=True):
        for a, b in zip(fast_row, general_row, strict=True):
            assert a.log_prob == pytest.approx(b.log_prob, abs=1e-5)
    assert sum(len(h.tokens) for row in fast for h in row) > 2 * len(fast)


def test_a_hooked_model_runs_its_modules_and_a_protocol_model_drafts() -> None:
    model, inputs = random_model_input()
    plain = [h.tokens for h in generate(model, inputs, "greedy").best()]
    assert [h.tokens for h in generate(model, inputs, "speculative", draft="model",
                                     draft_model=ProtocolOnly(model)).best()] == plain
    token = 7  # the hook pulls every decoder state towards this token's (tied) embedding

    def pull(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output + 50 * model.embed.weight[token]

    model.decoder_layers[-1].ffn.register_forward_hook(pull)
    for strategy in ("greedy", "aggressive"):
        hooked = [h.tokens for h in generate(model, inputs, strategy).best()]
        assert hooked == [h.tokens for h in generate(ProtocolOnly(model), inputs, strategy).best()]
        assert hooked != plain and sum(t == token for row in hooked for t in row) > len(hooked)
