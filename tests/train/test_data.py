"""Synthetic correction pairs in prepare_data: [data] noise settings, how many pairs, the share
left unchanged, confusions learned from the real training pairs, and determinism for a seed."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from polyseq.config import ConfigError, DataConfig, load_config
from polyseq.data.corpus import CorpusError, Pair, load_corpus
from polyseq.train.data import prepare_data, synthetic_correction_pairs

PLACES = ["Києві", "Львові", "Одесі", "Харкові", "Полтаві"]
PEOPLE = ["Марія", "Олег", "Ірина", "Тарас", "Оксана", "Богдан"]


def write_correction_data(directory: Path) -> tuple[Path, Path]:
    """Real uk-uk pairs where writers put `в` for `у` (and once `с` for `з`), and clean text."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, person in enumerate(PEOPLE):
        for place in PLACES:
            right = f"{person} живе у {place} вже {i + 2} роки, і їй там добре."
            wrong = right.replace(" у ", " в ") if i % 2 else right
            rows.append(f"{wrong}\t{right}")
    rows.append("Я прийшов с друзями.\tЯ прийшов з друзями.")
    train = directory / "train.tsv"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    clean = directory / "clean.uk"
    lines = [f"{person} працює у {place}, але мешкає за містом." for person in PEOPLE for place in PLACES]
    clean.write_text("\n".join(["", *lines, "  "]) + "\n", encoding="utf-8")  # blank lines are skipped
    return train, clean


def correction_config(tmp_path: Path, **noise: object) -> DataConfig:
    train, clean = write_correction_data(tmp_path / "data")
    settings: dict[str, object] = dict(noise_source=str(clean), noise_lang="uk", noise_pairs=40,
                                       noise_keep=0.25, noise_typo_rate=0.2)
    return DataConfig(train=str(train), languages=("uk",), directions=("uk-uk",), vocab_size=400,
                      max_length=200, valid_size=10, **{**settings, **noise})  # type: ignore[arg-type]


def test_synthetic_pairs_have_the_asked_number_and_keep_share_and_follow_the_seed(tmp_path: Path) -> None:
    config = correction_config(tmp_path)
    real = load_corpus(config.train, config.languages, config.all_directions())
    pairs = synthetic_correction_pairs(config, real, seed=1, log=lambda m: None)
    assert len(pairs) == 40
    assert sum(p.src == p.tgt for p in pairs) == 10
    assert {(p.src_lang, p.tgt_lang) for p in pairs} == {("uk", "uk")}
    clean = Path(config.noise_source).read_text(encoding="utf-8").split("\n")
    assert {p.tgt for p in pairs} == {line for line in clean if line.strip()}
    assert synthetic_correction_pairs(config, real, seed=1, log=lambda m: None) == pairs
    assert synthetic_correction_pairs(config, real, seed=2, log=lambda m: None) != pairs


def test_confusions_come_from_the_real_training_pairs(tmp_path: Path) -> None:
    others = {f"noise_{kind}_rate": 0.0 for kind in ("typo", "delete", "insert", "swap", "repeat",
                                                     "punctuation", "casing")}
    config = correction_config(tmp_path, **others, noise_confusion_rate=1.0, noise_keep=0.0)
    real = load_corpus(config.train, config.languages, config.all_directions())
    pairs = synthetic_correction_pairs(config, real, seed=1, log=lambda m: None)
    assert all(p.src == p.tgt.replace(" у ", " в ") for p in pairs)  # 15 times seen, learned
    none = replace(config, noise_confusions_from="", noise_casing_rate=1.0)
    unconfused = synthetic_correction_pairs(none, real, seed=1, log=lambda m: None)
    assert all(p.src != p.tgt and " в " not in p.src.lower() for p in unconfused)
    elsewhere = replace(config, noise_confusions_from=config.train)
    assert synthetic_correction_pairs(elsewhere, [], seed=1, log=lambda m: None) == pairs


def test_prepare_data_trains_on_real_and_synthetic_pairs(tmp_path: Path) -> None:
    config = correction_config(tmp_path)
    messages: list[str] = []
    prepared = prepare_data(config, tmp_path / "tok", seed=1, log=messages.append)
    held_out = len(prepared.valid[0].pairs)
    assert prepared.summary["synthetic_pairs"] == 40
    assert prepared.summary["train_pairs"] == 31 - held_out + 40
    assert len(prepared.train) == 31 - held_out + 40  # nothing filtered
    assert any("synthetic correction pairs: 40 from 30 lines" in m for m in messages)
    real = {(p.src, p.tgt) for p in load_corpus(config.train, config.languages, [("uk", "uk")])}
    assert {(p.src, p.tgt) for p in prepared.valid[0].pairs} <= real  # validation: real pairs only
    plain = prepare_data(replace(config, noise_source=""), tmp_path / "tok2", seed=1, log=lambda m: None)
    assert "synthetic_pairs" not in plain.summary and len(plain.train) == 31 - held_out


def test_synthetic_pairs_alone_need_a_validation_corpus(tmp_path: Path) -> None:
    config = correction_config(tmp_path)
    with pytest.raises(ConfigError, match="data.valid"):
        replace(config, train="")
    alone = replace(config, train="", valid=config.train)
    prepared = prepare_data(alone, tmp_path / "tok", seed=1, log=lambda m: None)
    assert len(prepared.train) == 40 and prepared.summary["synthetic_pairs"] == 40


@pytest.mark.parametrize(("change", "message"), [
    (dict(noise_lang=""), "needs data.noise_lang"),
    (dict(noise_lang="en"), "must be one of data.languages"),
    (dict(directions=("uk-en",), languages=("uk", "en")), "add 'uk-uk' to data.directions"),
    (dict(noise_keep=1.5, noise_swap_rate=-0.1), r"noise_keep, data.noise_swap_rate must be in \[0, 1\]"),
    (dict(noise_pairs=-1), "noise_pairs"),
    (dict(noise_confusion_min_count=0), "noise_confusion_min_count"),
])
def test_noise_settings_are_checked(tmp_path: Path, change: dict[str, object], message: str) -> None:
    config = correction_config(tmp_path)
    with pytest.raises(ConfigError, match=message):
        replace(config, **change)  # type: ignore[arg-type]


def test_noise_settings_load_from_toml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "correct.toml"
    path.write_text('[data]\nlanguages = ["uk"]\ndirections = ["uk-uk"]\ntrain = "gec.tsv"\n'
                    'noise_source = "clean.uk"\nnoise_lang = "uk"\nnoise_pairs = 1000\n', encoding="utf-8")
    data = load_config(path, ["data.noise_keep=0.3", "data.noise_confusions_from="]).data
    assert (data.noise_pairs, data.noise_keep, data.noise_confusions_from) == (1000, 0.3, "")
    assert data.noise_typo_rate == DataConfig().noise_typo_rate


def test_a_blank_noise_source_is_an_error_naming_it(tmp_path: Path) -> None:
    config = correction_config(tmp_path)
    Path(config.noise_source).write_text("\n  \n", encoding="utf-8")
    with pytest.raises(CorpusError, match="clean.uk has only blank lines"):
        synthetic_correction_pairs(config, [Pair("a", "a", "uk", "uk")], seed=1, log=lambda m: None)


def test_the_held_out_sentences_are_in_no_training_pair_of_any_direction(tmp_path: Path) -> None:
    english = [f"the {n} dogs run" for n in range(200)]
    (tmp_path / "c.en").write_text("".join(f"{t}\n" for t in english), encoding="utf-8")
    (tmp_path / "c.de").write_text("".join(f"die {n} Hunde rennen\n" for n in range(200)), encoding="utf-8")
    config = DataConfig(train=str(tmp_path / "c"), languages=("en", "de"), directions=("en-de", "de-en"),
                        valid_size=50, vocab_size=300)
    messages: list[str] = []
    prepared = prepare_data(config, tmp_path / "tok", seed=3, log=messages.append)
    held = {text for v in prepared.valid for p in v.pairs for text in (p.src, p.tgt)}
    trained = {text for p in prepared.pairs for text in (p.src, p.tgt)}
    # a tenth of the 400 source sentences: 20 English ones and their translations, both ways
    assert len(held) == 40 and sum(len(v.pairs) for v in prepared.valid) == 40 and not held & trained
    assert [v.direction for v in prepared.valid] == [("de", "en"), ("en", "de")]
    assert any("40 of the 50 sentences" in m for m in messages)


def test_validation_pairs_longer_than_max_length_are_left_out(tmp_path: Path) -> None:
    lines = [f"word {n} here" for n in range(30)]
    for name, extra in (("t", []), ("v", ["long " * 60])):
        for lang in ("en", "de"):
            (tmp_path / f"{name}.{lang}").write_text("".join(f"{t}\n" for t in [*lines, *extra]),
                                                     encoding="utf-8")
    config = DataConfig(train=str(tmp_path / "t"), valid=str(tmp_path / "v"), languages=("en", "de"),
                        directions=("en-de",), vocab_size=300, max_length=40)
    messages: list[str] = []
    prepared = prepare_data(config, tmp_path / "tok", seed=1, log=messages.append)
    assert len(prepared.valid[0].pairs) == len(prepared.valid[0].examples) == 30
    assert any("1 pairs longer than data.max_length (40) left out" in m for m in messages)
    with pytest.raises(ConfigError, match="data.max_length 300 is more than model.max_positions 256"):
        load_config(None, ["data.max_length=300"])


def test_a_sentence_shared_by_every_pair_keeps_its_group_in_training_and_says_so() -> None:
    from polyseq.train.data import _split_valid

    pairs = [Pair(f"source {n}", "Yes.", "en", "de") for n in range(100)]
    messages: list[str] = []
    train, valid = _split_valid(pairs, 5, seed=1, log=messages.append)
    assert (len(train), len(valid)) == (100, 0)
    assert any("0 sentences held out, not 5" in m and "data.valid" in m for m in messages)



def test_a_script_with_more_characters_than_pieces_trains_with_a_lower_character_coverage(
        tmp_path: Path) -> None:
    """600 distinct Han characters, the 256 byte pieces and the special ones do not fit 600
    pieces: at full coverage the error names the setting; at 0.99 the 400 rare characters (0.3%
    of the text) are written as bytes."""
    from polyseq.text.tokenizer import TokenizerError

    common, rare = [chr(0x4E00 + i) for i in range(200)], [chr(0x6000 + i) for i in range(400)]
    pick = random.Random(1).choice
    lines = ["".join(pick(common) for _ in range(20)) for _ in range(6000)]
    lines[:400] = [line + char for line, char in zip(lines, rare, strict=False)]
    data = tmp_path / "train.tsv"
    data.write_text("".join(f"{line}\t{line}\n" for line in lines), encoding="utf-8")
    config = DataConfig(train=str(data), languages=("zh",), directions=("zh-zh",), vocab_size=600,
                        valid_size=10)
    with pytest.raises(TokenizerError, match=r"data\.character_coverage"):
        prepare_data(config, tmp_path / "full", seed=1, log=lambda m: None)
    prepared = prepare_data(replace(config, character_coverage=0.99), tmp_path / "tok", seed=1,
                            log=lambda m: None)
    assert prepared.tokenizer.decode(prepared.tokenizer.encode(lines[0])) == lines[0]  # bytes come back
    with pytest.raises(ConfigError, match=r"data\.character_coverage must be in \(0, 1\]"):
        replace(config, character_coverage=0.0)
