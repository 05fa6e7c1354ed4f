"""The architecture variants in ModelConfig: directories written before they existed load as before,
and a bad variant is a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polyseq.config import ConfigError, EmbeddingScale, ModelConfig, Positions, load_config
from polyseq.model.checkpoint import CheckpointError, load_model

NEW_FIELDS = ("positions", "position_offset", "embedding_scale", "embedding_norm", "output_bias")


def test_a_directory_without_the_new_fields_loads_unchanged(tiny_model_dir: Path, tmp_path: Path) -> None:
    old = Path(shutil.copytree(tiny_model_dir, tmp_path / "old"))
    config = json.loads((old / "config.json").read_text())
    for name in NEW_FIELDS:
        config["model"].pop(name)
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    model = load_model(old)
    assert model.config == load_model(tiny_model_dir).config
    assert model.config.positions is Positions.SINUSOIDAL
    assert model.config.embedding_scale is EmbeddingScale.SQRT_D_MODEL
    assert sorted(model.state_dict()) == sorted(load_model(tiny_model_dir).state_dict())


def test_variants_are_enums_from_toml_overrides() -> None:
    config = load_config(None, ["model.positions=learned", "model.position_offset=2",
                                "model.embedding_norm=layer_norm", "model.activation=swish"]).model
    assert config.positions is Positions.LEARNED and config.position_offset == 2
    with pytest.raises(ConfigError, match="not one of"):
        load_config(None, ["model.positions=rotary"])
    with pytest.raises(ConfigError, match="position_offset"):
        ModelConfig(position_offset=-1)


def test_a_bad_variant_in_a_directory_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(tiny_model_dir, tmp_path / "broken"))
    config = json.loads((broken / "config.json").read_text())
    config["model"]["positions"] = "rotary"
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_model(broken)
