"""Configuration from TOML and overrides, with errors that say what to fix; the public API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import polyseq
from polyseq.config import ConfigError, NormPlacement, load_config, load_serve_config, model_preset


def test_toml_preset_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'preset = "small"\n[model]\ndropout = 0.3\n[data]\ntrain = "corpus/train"\n'
        'languages = ["en", "de"]\n[train]\nsteps = 10\n', encoding="utf-8")
    config = load_config(path, ["train.lr=0.002", "model.norm=post", "data.directions=en-de,de-en"])
    assert config.model.d_model == 256 and config.model.dropout == 0.3
    assert config.model.norm is NormPlacement.POST
    assert config.train.lr == 0.002 and config.train.steps == 10
    assert config.data.directions == ("en-de", "de-en")
    assert config.data.all_directions() == (("en", "de"), ("de", "en"))


@pytest.mark.parametrize(("override", "message"), [
    ("model.d_modle=3", "did you mean 'd_model'"),
    ("train.steps=ten", "train.steps: 'ten' is not a valid int"),
    ("model.heads=5", "divisible"),
    ("model.norm=middle", "not one of"),
    ("trian.steps=3", "unknown section"),
    ("steps", "section.key=value"),
    ("data.directions=en", "must look like 'en-de'"),
])
def test_bad_overrides_are_clear_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_files_and_presets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="did you mean 'small'"):
        model_preset("smal")
    assert model_preset("base").decoder_layers == 6


@pytest.mark.parametrize(("toml", "message"), [
    ("model = 3\n", "model must be a [model] table of settings, not 3"),
    ("[train]\nlr = [1]\n", "train.lr: [1] is not a valid float"),
    ("[data]\nlanguages = 5\n", "data.languages: 5 is not a list"),
    ("[model]\nd_model = {a=1}\n", "model.d_model: {'a': 1} is not a valid int"),
    ("[model]\ntie_embeddings = 1.5\n", "model.tie_embeddings"),
    ("[train]\nsteps = true\n", "train.steps: True is not a valid int"),
    ("preset = 3\n", "preset must be a name"),
])
def test_values_of_the_wrong_type_name_the_field(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_serve_sections_and_betas_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text("[serve]\nport = [1]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape("serve.port: [1] is not a valid int")):
        load_serve_config(path)
    path.write_text("serve = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="serve must be a"):
        load_serve_config(path)
    for betas in ("0.9", "0.9,0.98,0.5", "0.9,1.5"):
        with pytest.raises(ConfigError, match="train.betas must be two numbers in"):
            load_config(None, [f"train.betas={betas}"])
    assert load_config(None, ["train.betas=0.8,0.99"]).train.betas == (0.8, 0.99)
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_public_api_is_sorted_and_importable() -> None:
    assert polyseq.__all__ == sorted(polyseq.__all__)
    for name in polyseq.__all__:
        assert getattr(polyseq, name) is not None
    assert {"beam", "greedy"} <= set(polyseq.strategy_names())
