"""Differential properties on random tiny models of the configurations ModelConfig allows (norm
placement, tied or untied output, output bias, language vectors, position kinds and offsets,
embedding scale and norm, activations, head widths, odd FFN sizes, small max_positions) and random
inputs (1 to 5 rows, ragged sources with padding, sources at the model's length, prefixes of 1 to
3 tokens, length limits that reach max_positions):

- the native passes' logits equal the modules' over a cache fed ragged chunks, and those equal an
  uncached full forward;
- greedy and beam search (n-best) agree on the native and the module path, and greedy agrees with
  greedy by uncached full forwards;
- aggressive and speculative decoding return greedy's tokens on both paths, batched;
- on the native path a row decodes the same alone as in its batch (greedy, aggressive, beam);
- a Sequence-to-Action model (module path only) decodes cached as uncached, losslessly.

Across paths (and the module path's own passes of different shapes) rounding differs, so token
comparisons there are skipped where greedy's two best logits come within `TIE` of each other; the
native path is exact, so its comparisons never are."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyseq.config import (
    Actions,
    Activation,
    EmbeddingNorm,
    EmbeddingScale,
    LanguageEmbedding,
    ModelConfig,
    NormPlacement,
    OutputBias,
    Positions,
)
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput, DecodeResult
from polyseq.model.actions import build_model
from polyseq.model.native import native_passes, uncovered
from polyseq.model.transformer import Seq2Seq

ATOL = 1e-4
TIE = 1e-3
LOSSLESS: list[tuple[str, dict[str, Any]]] = [
    ("aggressive", {}), ("aggressive", {"max_draft": 2, "adaptive": True, "min_draft": 1}),
    ("speculative", {"draft": "ngram"}), ("speculative", {"draft": "ngram", "k": 1, "max_k": 1, "ngram": 1}),
]
Case = tuple[ModelConfig, int, DecodeInput, dict[str, Any]]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()  # the passes' bits across threads: tests/model/test_native.py
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@st.composite
def cases(draw: Any, actions: Actions = Actions.NONE) -> Case:
    positions = draw(st.sampled_from(list(Positions)))
    heads = draw(st.sampled_from([1, 2, 3, 4]))
    head_dim = draw(st.sampled_from([4, 6, 11, 16, 32] if heads <= 2 else [4, 6, 11, 16]))
    if heads * head_dim % 2 and positions is not Positions.LEARNED:
        head_dim += 1  # sinusoidal tables need an even width
    vocab = draw(st.sampled_from([5, 9, 33, 70]))
    pad = draw(st.sampled_from([0, 1, vocab - 1]))
    real = [t for t in range(vocab) if t != pad]
    eos = draw(st.sampled_from(real))
    skip = next(t for t in real if t != eos)
    if actions is Actions.S2A:
        real = [t for t in real if t != skip]
    max_positions = draw(st.integers(3, 14))
    config = ModelConfig(
        vocab_size=vocab, d_model=heads * head_dim, heads=heads, encoder_layers=draw(st.integers(1, 2)),
        decoder_layers=draw(st.integers(1, 2)), ffn_dim=draw(st.integers(4, 80)), dropout=0.0,
        max_positions=max_positions, tie_embeddings=draw(st.booleans()),
        norm=draw(st.sampled_from(list(NormPlacement))), activation=draw(st.sampled_from(list(Activation))),
        pad_id=pad, positions=positions, position_offset=draw(st.integers(0, 2)),
        embedding_scale=draw(st.sampled_from(list(EmbeddingScale))),
        embedding_norm=draw(st.sampled_from(list(EmbeddingNorm))),
        output_bias=draw(st.sampled_from(list(OutputBias))),
        language_embedding=draw(st.sampled_from(list(LanguageEmbedding))), actions=actions, skip_id=skip)
    batch = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, max_positions), min_size=batch, max_size=batch))
    if draw(st.booleans()):
        lengths[draw(st.integers(0, batch - 1))] = max_positions  # a source as long as the model takes
    src = torch.full((batch, max(lengths)), pad, dtype=torch.long)
    for row, length in enumerate(lengths):
        src[row, :length] = torch.tensor(draw(st.lists(st.sampled_from(real), min_size=length,
                                                       max_size=length)))
    width = draw(st.integers(1, min(3, max_positions)))
    prefix = torch.tensor(draw(st.lists(st.lists(st.sampled_from(real), min_size=width, max_size=width),
                                        min_size=batch, max_size=batch)))
    limit = {"max_len_a": draw(st.sampled_from([0.0, 0.5, 1.5, 3.0])), "max_len_b": draw(st.integers(1, 12))}
    return config, draw(st.integers(0, 2**16)), DecodeInput(src, prefix, eos_id=eos, pad_id=pad), limit


def random_model(config: ModelConfig, seed: int) -> Seq2Seq:
    """Random weights with non-trivial norms, biases, language vectors and S2A heads, and an
    output layer sharp enough that EOS and repeats happen."""
    torch.manual_seed(seed)
    model = build_model(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if any(part in name for part in ("norm", "bias", "target_language", "pointer", "action")):
                parameter.add_(0.3 * torch.randn_like(parameter))
        (model.embed if model.output is None else model.output).weight.mul_(1 + seed % 3 * 4)
    return model


def on_modules(model: Seq2Seq) -> Seq2Seq:
    """A copy that decodes on the module path (a forward hook keeps it there)."""
    twin = copy.deepcopy(model)
    twin.decoder_layers[0].register_forward_hook(lambda module, args, output: None)
    assert native_passes(twin) is None
    return twin


def tokens(result: DecodeResult) -> list[tuple[int, ...]]:
    return [h.tokens for h in result.best()]


def uncached_greedy(model: Seq2Seq, inputs: DecodeInput,
                    limit: dict[str, Any]) -> tuple[list[tuple[int, ...]], float]:
    """Greedy by full forwards without a cache, row by row, never choosing padding, and the
    smallest gap between the two best logits on the way."""
    outputs, smallest = [], math.inf
    for row in range(inputs.batch_size):
        src = inputs.src[row : row + 1]
        ceiling = max(1, model.config.max_positions - inputs.prefix.shape[1])
        budget = math.floor(int((src != inputs.pad_id).sum()) * limit["max_len_a"]) + limit["max_len_b"]
        memory, sequence, generated = model.encode(src), inputs.prefix[row].tolist(), list[int]()
        while len(generated) < min(budget, ceiling):
            logits = model.decode_step(torch.tensor([sequence]), memory)[0, -1]
            if inputs.banned_id is not None:
                logits[inputs.banned_id] = -math.inf
            best = logits.topk(2).values
            smallest = min(smallest, float(best[0] - best[1]))
            token = int(logits.argmax())
            if token == inputs.eos_id:
                break
            generated.append(token)
            sequence.append(token)
        outputs.append(tuple(generated))
    return outputs, smallest


def assert_native_logits_equal_the_modules(model: Seq2Seq, inputs: DecodeInput) -> None:
    """Rows fed 0 to 3 tokens per pass (a padded block, truncated back): native logits == the
    modules' on their cache == an uncached forward over the whole sequence."""
    native = native_passes(model)
    assert native is not None, uncovered(model)
    config, batch = model.config, inputs.batch_size
    generator = torch.Generator().manual_seed(0)
    real = torch.tensor([t for t in range(config.vocab_size) if t != config.pad_id])
    target = real[torch.randint(len(real), (batch, config.max_positions - inputs.prefix.shape[1]),
                                generator=generator)]
    whole = torch.cat([inputs.prefix, target], 1)  # (B, max_positions)
    memory = model.encode(inputs.src)
    uncached = model.decode_step(whole, memory)
    reference, cache = model.init_cache(memory, capacity=1), native.init_cache(native.encode(inputs.src), 1)
    done = [0] * batch
    while max(done) < whole.shape[1]:  # a padded block ends where the furthest row can go no further
        room = config.max_positions - max(done)
        widths = [min(int(torch.randint(0, 4, (1,), generator=generator)), whole.shape[1] - d, room)
                  for d in done]
        if max(widths) == 0:
            continue
        block = torch.full((batch, max(widths)), config.pad_id, dtype=torch.long)
        for row, (d, w) in enumerate(zip(done, widths, strict=True)):
            block[row, :w] = whole[row, d : d + w]
        start = reference.lengths.clone()
        expected = model.decode_step(block, memory, reference)
        logits = native.project(native.decode(block, cache, widths))
        for row, (d, w) in enumerate(zip(done, widths, strict=True)):
            torch.testing.assert_close(logits[row, :w], expected[row, :w], atol=ATOL, rtol=0)
            torch.testing.assert_close(expected[row, :w], uncached[row, d : d + w], atol=ATOL, rtol=0)
        for each in (reference, cache):
            each.truncate(start + torch.tensor(widths))
        done = [d + w for d, w in zip(done, widths, strict=True)]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases())
def test_native_and_module_paths_agree_and_lossless_strategies_return_greedys_tokens(case: Case) -> None:
    config, seed, inputs, limit = case
    model = random_model(config, seed)
    modules = on_modules(model)
    with torch.inference_mode():
        assert_native_logits_equal_the_modules(model, inputs)
        expected, gap = uncached_greedy(model, inputs, limit)
    tied = gap < TIE
    paths = (("native", model), ("modules", modules))
    greedy = {path: generate(m, inputs, "greedy", **limit) for path, m in paths}
    for path, m in paths:
        assert tied or tokens(greedy[path]) == expected, path
        for strategy, settings_ in LOSSLESS:
            result = generate(m, inputs, strategy, **limit, **settings_)
            assert path == "modules" and tied or tokens(result) == tokens(greedy[path]), (path, strategy)
        draft = random_model(replace(config, encoder_layers=1, decoder_layers=1,
                                     max_positions=max(2, config.max_positions - seed % 5)), seed + 1)
        result = generate(m, inputs, "speculative", draft="model", draft_model=draft, k=3, **limit)
        assert path == "modules" and tied or tokens(result) == tokens(greedy[path]), (path, "draft model")
    for beam_size, n_best in ((1, 1), (4, 3)):
        native = generate(model, inputs, "beam", beam_size=beam_size, n_best=n_best, **limit)
        reference = generate(modules, inputs, "beam", beam_size=beam_size, n_best=n_best, **limit)
        for ours, theirs in zip(native.hypotheses, reference.hypotheses, strict=True):
            assert tied or [h.tokens for h in ours] == [h.tokens for h in theirs]
            assert tied or [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-3)
    for row in range(inputs.batch_size):  # the native path: alone as in the batch, bit for bit
        width = int((inputs.src[row] != inputs.pad_id).sum())
        alone = DecodeInput(inputs.src[row : row + 1, :width], inputs.prefix[row : row + 1], inputs.eos_id,
                            inputs.pad_id)
        for strategy in ("greedy", "aggressive"):
            assert tokens(generate(model, alone, strategy, **limit))[0] == tokens(greedy["native"])[row]
        one = generate(model, alone, "beam", beam_size=3, n_best=2, **limit).hypotheses[0]
        assert one == generate(model, inputs, "beam", beam_size=3, n_best=2, **limit).hypotheses[row]


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases(Actions.S2A))
def test_sequence_to_action_models_decode_cached_as_uncached_and_losslessly(case: Case) -> None:
    config, seed, inputs, limit = case
    model = random_model(config, seed)
    greedy = generate(model, inputs, "greedy", **limit)
    with torch.inference_mode():
        expected, gap = uncached_greedy(model, inputs, limit)
    tied = gap < TIE
    assert tied or tokens(greedy) == expected
    for strategy, settings_ in LOSSLESS:
        assert tied or tokens(generate(model, inputs, strategy, **limit, **settings_)) == tokens(greedy)
