"""input_major changes only where a model's weights lie in memory: the same parameters, the same
values, the same translations, and checkpoints that load as before. Weights that narrow (more
inputs than outputs) keep PyTorch's order."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from polyseq.model.checkpoint import load_model, save_model_files, write_directory_atomic
from polyseq.model.layout import input_major
from polyseq.translator import Translator

SOURCES = ["12", "399", "7", "1000", "58"]


def weights(model: nn.Module) -> list[nn.Parameter]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Embedding))]


def test_input_major_keeps_parameters_and_values(tiny_model_dir: Path) -> None:
    model, before = load_model(tiny_model_dir), load_model(tiny_model_dir)
    identities = [id(w) for w in weights(model)]
    assert all(w.is_contiguous() for w in weights(model))
    assert input_major(model) is model
    assert [id(w) for w in weights(model)] == identities
    for weight, original in zip(weights(model), weights(before), strict=True):
        narrows = weight.shape[0] < weight.shape[1]
        assert weight.is_contiguous() == narrows and weight.t().is_contiguous() != narrows
        assert torch.equal(weight, original)
    kept = {name for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and m.weight.is_contiguous()}
    assert kept and kept == {name for name, _ in model.named_modules() if name.endswith("ffn.outer")}
    pointers = [w.data_ptr() for w in weights(model)]
    input_major(model)  # already input-major: nothing is copied again
    assert [w.data_ptr() for w in weights(model)] == pointers
    src = torch.tensor([[5, 6, 7, 8, 2]])
    tgt = torch.tensor([[3, 9, 10, 11]])
    with torch.inference_mode():
        torch.testing.assert_close(model(src, tgt), before(src, tgt), rtol=0, atol=1e-5)


def test_a_translator_decodes_input_major_with_the_same_output(tiny_model_dir: Path, tmp_path: Path) -> None:
    translator = Translator.load(tiny_model_dir)
    assert all(w.t().is_contiguous() or w.shape[0] < w.shape[1] for w in weights(translator.model))
    plain = Translator.load(tiny_model_dir)
    plain.model = load_model(tiny_model_dir)  # the weights as loaded, output-major
    for strategy in ("greedy", "aggressive", "beam"):
        assert (translator.translate(SOURCES, "num", "en", strategy=strategy)
                == plain.translate(SOURCES, "num", "en", strategy=strategy)), strategy
    saved = write_directory_atomic(tmp_path / "again",
                                   lambda d: save_model_files(d, translator.model, {}))
    for (name, a), (_, b) in zip(load_model(saved).state_dict().items(),
                                 plain.model.state_dict().items(), strict=True):
        assert a.is_contiguous() and torch.equal(a, b), name
