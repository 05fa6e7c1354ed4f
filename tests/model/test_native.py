"""The native passes compute what the model's modules compute, for every model variant they cover:
the encoder with and without padding, the cross-attention cache, the decoder's pass over one token
and several per row, at one length and at different lengths, with padding (widths), after
reorders, and the output layer. And they compute each token's values with the same bits whatever
shares its pass: rows, tokens per row, threads."""

from __future__ import annotations

import logging
import subprocess
import weakref
from pathlib import Path

import pytest
import torch

import polyseq.model.native as native_module
from polyseq.config import (
    Activation,
    EmbeddingNorm,
    EmbeddingScale,
    LanguageEmbedding,
    ModelConfig,
    NormPlacement,
    OutputBias,
    Positions,
)
from polyseq.model.native import NativePasses, native_passes, uncovered
from polyseq.model.native.build import BuildError, build, library_path
from polyseq.model.transformer import Seq2Seq

ATOL = 1e-5
VARIANTS = {
    "default": {},
    "post-norm, untied, bias": {"norm": NormPlacement.POST, "tie_embeddings": False,
                                "output_bias": OutputBias.BIAS},
    "bart-like": {"positions": Positions.LEARNED, "position_offset": 2, "activation": Activation.GELU,
                  "embedding_scale": EmbeddingScale.NONE, "embedding_norm": EmbeddingNorm.LAYER_NORM},
    "m2m-like": {"positions": Positions.SINUSOIDAL_FAIRSEQ, "position_offset": 2,
                 "activation": Activation.SWISH},
    "language at the decoder": {"language_embedding": LanguageEmbedding.DECODER},
    "language at the output": {"language_embedding": LanguageEmbedding.OUTPUT},
}


def make_model(**variant: object) -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=32, encoder_layers=2, decoder_layers=2, heads=4, ffn_dim=64,
                         dropout=0.0, max_positions=16, **variant)  # type: ignore[arg-type]
    model = Seq2Seq(config).eval()
    with torch.no_grad():  # trained models have non-trivial norms, biases and language vectors
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias") or "target_language" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def passes(model: Seq2Seq) -> NativePasses:
    found = native_passes(model)
    assert found is not None, uncovered(model)
    return found


def started_caches(model: Seq2Seq, lengths: list[int]) -> tuple:
    """The module path's and the native passes' memories and caches over one padded source, with
    rows left at `lengths` tokens of one prefix; the native cache starts too small, so it grows."""
    native = passes(model)
    generator = torch.Generator().manual_seed(1)
    src = torch.randint(4, 40, (3, 9), generator=generator)
    src[1, 5:] = 0
    prefix = torch.randint(4, 40, (3, 4), generator=generator)
    memory, mine = model.encode(src), native.encode(src)
    reference, cache = model.init_cache(memory, capacity=2), native.init_cache(mine, capacity=2)
    model.decode_hidden(prefix, memory, reference)
    native.decode(prefix, cache)
    for each in (reference, cache):
        each.truncate(torch.tensor(lengths))
    return memory, reference, cache


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("lengths", [[4, 1, 3], [2, 2, 2]])
def test_passes_equal_decode_hidden(variant: str, k: int, lengths: list[int]) -> None:
    model = make_model(**VARIANTS[variant])
    native = passes(model)
    tokens = torch.tensor([[5, 6, 7], [8, 9, 10], [11, 12, 13]])[:, :k]
    with torch.no_grad():
        memory, reference, cache = started_caches(model, lengths)
        for _ in range(3):
            expected = model.decode_hidden(tokens, memory, reference)
            states = native.decode(tokens, cache)
            torch.testing.assert_close(states, expected, atol=ATOL, rtol=0)
            assert torch.equal(cache.lengths, reference.lengths)
            logits = model.project(expected)
            torch.testing.assert_close(native.project(states), logits, atol=ATOL, rtol=0)
            tokens = logits.argmax(-1)
    for mine, theirs in zip(cache.self_keys + cache.self_values, reference.self_keys + reference.self_values,
                            strict=True):
        for row, length in enumerate(reference.lengths.tolist()):
            torch.testing.assert_close(mine[row, :, :length], theirs[row, :, :length], atol=ATOL, rtol=0)


def test_passes_after_reorders_equal_decode_hidden() -> None:
    """Rows reordered, repeated and dropped between passes (as beam search and finished rows do):
    each row keeps reading its own source and its own prefix."""
    model = make_model()
    native = passes(model)
    with torch.no_grad():
        memory, reference, cache = started_caches(model, [2, 3, 2])
        tokens = torch.tensor([[5], [6], [7]])
        for index in ([1, 0, 2], [0, 0, 2, 1, 1], [4, 2], [1]):  # the padded row (1) moves, then goes
            torch.testing.assert_close(native.decode(tokens, cache),
                                       model.decode_hidden(tokens, memory, reference), atol=ATOL, rtol=0)
            rows = torch.tensor(index)
            for each in (cache, reference):
                each.reorder(rows)
            memory, tokens = memory.select(rows), tokens[rows]
        expected = model.decode_hidden(tokens, memory, reference)
        torch.testing.assert_close(native.decode(tokens, cache), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant", ["default", "post-norm, untied, bias"])
@pytest.mark.parametrize("widths", [[4, 1, 2], [4, 4, 4], [1, 0, 1]])
def test_ragged_rows_equal_the_padded_pass_at_their_real_tokens(variant: str, widths: list[int]) -> None:
    """Rows with `widths` real tokens of 4 (the rest padding): the real tokens' states and cached
    keys and values are the padded pass's, and padding leaves zeros."""
    model = make_model(**VARIANTS[variant])
    native = passes(model)
    tokens = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0], [11, 12, 13, 0]])
    with torch.no_grad():
        _, _, reference = started_caches(model, [4, 1, 3])
        _, _, cache = started_caches(model, [4, 1, 3])
        start = cache.lengths.clone()
        expected = native.decode(tokens, reference)
        states = native.decode(tokens, cache, widths)
    for row, width in enumerate(widths):
        assert torch.equal(states[row, :width], expected[row, :width])
        assert not states[row, width:].any()
        end = int(start[row]) + width
        for mine, theirs in zip(cache.self_keys + cache.self_values,
                                reference.self_keys + reference.self_values, strict=True):
            assert torch.equal(mine[row, :, :end], theirs[row, :, :end])
    assert torch.equal(cache.lengths, reference.lengths)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("padded", [True, False])
def test_encoder_and_cache_equal_the_modules(variant: str, padded: bool) -> None:
    model = make_model(**VARIANTS[variant])
    native = passes(model)
    src = torch.randint(4, 40, (3, 9), generator=torch.Generator().manual_seed(2))
    if padded:
        src[0, 4:] = 0
        src[2, 8:] = 0
    with torch.no_grad():
        expected, memory = model.encode(src), native.encode(src)
        real = expected.mask[..., None]
        torch.testing.assert_close(memory.states * real, expected.states * real, atol=ATOL, rtol=0)
        assert torch.equal(memory.mask, expected.mask)
        if expected.language is not None:
            torch.testing.assert_close(memory.language, expected.language)
        mine, theirs = native.init_cache(memory, capacity=5), model.init_cache(expected, capacity=5)
    for got, want in zip(mine.cross_keys + mine.cross_values, theirs.cross_keys + theirs.cross_values,
                         strict=True):
        torch.testing.assert_close(got * real[:, None], want * real[:, None], atol=ATOL, rtol=0)
    for got, want in zip(mine.self_keys + mine.self_values, theirs.self_keys + theirs.self_values,
                         strict=True):
        assert got.shape == want.shape and not got.any()
    assert torch.equal(mine.source_mask, theirs.source_mask) and torch.equal(mine.lengths, theirs.lengths)


@pytest.mark.parametrize(("variant", "width", "threads"), [
    ("default", 64, 1), ("default", 64, 2), ("post-norm, untied, bias", 64, 2),
    ("language at the decoder", 64, 1), ("language at the output", 64, 2),
    ("default", 96, 2),  # heads 24 wide: the attention's general path
])
def test_a_tokens_values_have_the_same_bits_whatever_shares_its_pass(variant: str, width: int,
                                                                      threads: int) -> None:
    """Each of 64 rows decoded alone, one token per pass, and all together, k tokens per pass
    (1 to 256 tokens in one pass): states and logits equal bit for bit; and greedy's fused choice
    picks the argmax of those logits."""
    torch.manual_seed(3)
    config = ModelConfig(vocab_size=300, d_model=width, encoder_layers=2, decoder_layers=2, heads=4,
                         ffn_dim=4 * width, dropout=0.0, max_positions=32, **VARIANTS[variant])  # type: ignore[arg-type]
    model = Seq2Seq(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "target_language" in name:  # zero at initialisation
                parameter.normal_()
    native = passes(model)
    generator = torch.Generator().manual_seed(4)
    rows = 64
    src = torch.randint(4, 300, (rows, 10), generator=generator)
    for row in range(rows):
        src[row, 3 + row % 7 :] = 0
    target = torch.randint(4, 300, (rows, 8), generator=generator)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        alone = []
        for row in range(rows):
            cache = native.init_cache(native.encode(src[row : row + 1, : 3 + row % 7]))
            steps = [native.decode(target[row : row + 1, i : i + 1], cache) for i in range(8)]
            alone.append(torch.cat(steps, 1))
        for batch in (1, 2, 3, 17, 64):
            for k in (1, 4):
                cache = native.init_cache(native.encode(src[:batch]))
                chunks = [native.decode(target[:batch, i : i + k], cache) for i in range(0, 8, k)]
                states = torch.cat(chunks, 1)
                for row in range(batch):
                    assert torch.equal(states[row], alone[row][0]), (batch, k, row)
        logits = native.project(states)
        assert torch.equal(logits[5], native.project(alone[5][0]))
        ids, best = native.top(states.reshape(-1, width), 7)
        expected, expected_ids = logits.reshape(-1, 300).log_softmax(-1).topk(7)
        assert torch.equal(ids, expected_ids)
        torch.testing.assert_close(best, expected, atol=1e-5, rtol=0)
        chosen, log_probs = native.choose(states.reshape(-1, width))
        assert chosen == logits.reshape(-1, 300).argmax(-1).tolist()
        torch.testing.assert_close(torch.tensor(log_probs),
                                   logits.reshape(-1, 300).log_softmax(-1).max(-1).values, atol=1e-5, rtol=0)
    finally:
        torch.set_num_threads(previous)


def test_positions_past_the_model_and_unknown_ids_are_errors() -> None:
    model = make_model()
    native = passes(model)
    with torch.no_grad():
        _, _, cache = started_caches(model, [4, 1, 3])
        native.decode(torch.full((3, 12), 5), cache)  # row 0 fills positions 4 to 15, the model's last
        with pytest.raises(ValueError, match="max_positions=16"):
            native.decode(torch.full((3, 1), 5), cache)
    with pytest.raises(ValueError, match="max_positions=16"):
        native.encode(torch.full((1, 17), 5))
    with pytest.raises(IndexError, match="vocabulary"):
        native.encode(torch.tensor([[5, 40]]))


def test_native_passes_run_only_where_they_compute_what_the_modules_do(caplog, monkeypatch) -> None:
    class Doubled(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    model = make_model()
    assert native_passes(model) is not None and native_passes(object()) is None
    monkeypatch.setattr(native_module, "_said", set())  # what earlier tests had said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="polyseq.model.native"):
        assert native_passes(model.train()) is None
        assert native_passes(model) is None
    assert [r.getMessage() for r in caplog.records] == [  # said once
        "polyseq decodes on the module path: the model is in training mode"]
    model.eval()
    handle = model.encoder_layers[0].attention.out.register_forward_pre_hook(lambda module, args: None)
    assert uncovered(model) == "it has forward hooks"
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, output: output)
    assert uncovered(model) == "forward hooks are registered for every module (register_module_forward_hook)"
    handle.remove()
    assert uncovered(model) is None
    model.decoder_layers[0].ffn.train()  # its module would drop out
    assert uncovered(model) == "the model is in training mode"
    model.eval()
    model.decoder_layers[1].ffn.outer = Doubled(64, 32)
    assert "Doubled" in uncovered(model)
    assert uncovered(make_model().double()) == "its weights are not float32 on the CPU"


def test_the_passes_follow_the_models_weights() -> None:
    """Weights changed in place (more training, a loaded state) are packed again at the next call."""
    model = make_model()
    first = passes(model)
    assert passes(model) is first
    src = torch.tensor([[5, 6, 7]])
    before = first.encode(src).states
    with torch.no_grad():
        model.encoder_layers[0].ffn.inner.weight.mul_(2)
    second = passes(model)
    assert second is not first
    torch.testing.assert_close(second.encode(src).states, model.encode(src).states, atol=ATOL, rtol=0)
    assert not torch.equal(second.encode(src).states, before)


def test_the_library_builds_once_per_source_and_machine_and_says_why_it_cannot(tmp_path: Path,
                                                                                monkeypatch) -> None:
    monkeypatch.setenv("POLYSEQ_NATIVE_CACHE", str(tmp_path / "cache"))
    compiler = subprocess.run(["sh", "-c", "command -v g++"], capture_output=True, text=True).stdout.strip()
    target = library_path(compiler)
    assert target.parent == tmp_path / "cache" and not target.exists()
    assert build().polyseq_native_new is not None
    built = target.stat().st_mtime_ns
    build()
    assert target.stat().st_mtime_ns == built  # reused, not built again
    assert [p.name for p in target.parent.iterdir() if p.suffix == ".so"] == [target.name]  # no partial file
    monkeypatch.setenv("CXX", "false")  # a compiler that fails
    with pytest.raises(BuildError, match="false failed on kernels.cpp"):
        build()


def test_without_a_compiler_polyseq_says_so_once_and_decodes_on_the_modules(tmp_path: Path, monkeypatch,
                                                                             caplog) -> None:
    from polyseq.decoding import generate
    from polyseq.decoding.core import DecodeInput

    monkeypatch.setenv("POLYSEQ_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "false")
    for name, fresh in (("_library", None), ("_build_error", None), ("_said", set()),
                        ("_passes", weakref.WeakKeyDictionary())):
        monkeypatch.setattr(native_module, name, fresh)
    model = make_model()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="polyseq.model.native"):
        assert native_passes(model) is None and native_passes(model) is None
    [message] = [record.getMessage() for record in caplog.records]
    assert "the native library could not be built: false failed on kernels.cpp" in message
    inputs = DecodeInput(torch.tensor([[5, 6, 7, 3]]), torch.tensor([[4]]), eos_id=3, pad_id=0)
    greedy = generate(model, inputs, "greedy").best()[0]
    assert generate(model, inputs, "aggressive").best()[0].tokens == greedy.tokens
