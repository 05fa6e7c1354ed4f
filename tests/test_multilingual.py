"""Many-to-many translation with the tiny test model (num, en, de): pivoting equals two explicit
translations, the vocabulary restriction never emits a banned token, and sentence embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from polyseq.files import InputError
from polyseq.text.tokenizer import UnknownLanguageError
from polyseq.text.vocabularies import LanguageVocabularies
from polyseq.translator import Translator

NUMBERS = ["7", "12", "45", "300", "1999", "", "86"]


@pytest.fixture(scope="module")
def translator(tiny_model_dir: Path) -> Translator:
    return Translator.load(tiny_model_dir)


@pytest.mark.parametrize(("strategy", "settings"), [("greedy", {}), ("beam", {"beam_size": 3})])
def test_pivoting_equals_two_explicit_translations(translator: Translator, strategy: str,
                                                   settings: dict) -> None:
    english = translator.translate(NUMBERS, "num", "en", strategy, **settings)
    explicit = translator.translate(english, "en", "de", strategy, **settings)
    output = translator.translate_detailed(NUMBERS, "num", "de", strategy, pivot="en", **settings)
    assert output.texts == explicit and output.texts[5] == ""
    direct = translator.translate_detailed(NUMBERS, "num", "de", strategy, **settings)
    first = translator.translate_detailed(NUMBERS, "num", "en", strategy, **settings)
    second = translator.translate_detailed(english, "en", "de", strategy, **settings)
    assert output.stats.forward_passes == first.stats.forward_passes + second.stats.forward_passes
    assert output.stats.forward_passes != direct.stats.forward_passes


def test_a_pivot_the_model_lacks_or_at_an_end_of_the_direction_is_refused(translator: Translator) -> None:
    with pytest.raises(InputError, match=r"pivot language 'fr'.*known languages: num, en, de"):
        translator.translate(["1"], "num", "de", pivot="fr")
    with pytest.raises(InputError, match="the pivot 'de' is the target language"):
        translator.translate(["1"], "num", "de", pivot="de")


def tokens_of(output) -> set[int]:
    return {token for group in output.hypotheses for h in group for token in h.tokens}


@pytest.mark.parametrize(("strategy", "settings"), [
    ("greedy", {}), ("beam", {"beam_size": 4, "n_best": 4}), ("sampling", {"seed": 3, "num_samples": 3}),
])
def test_a_restricted_vocabulary_never_emits_a_banned_token(translator: Translator, strategy: str,
                                                            settings: dict) -> None:
    free = translator.translate_detailed(NUMBERS, "num", "de", strategy, **settings)
    used = sorted(tokens_of(free))
    banned = set(used[::2])  # half of what the model says when free
    allowed = tuple(i for i in range(translator.tokenizer.vocab_size) if i not in banned)
    restricted = translator.translate_detailed(NUMBERS, "num", "de", strategy, allowed_tokens=allowed,
                                               **settings)
    assert banned and not tokens_of(restricted) & banned
    assert restricted.texts != free.texts


def test_restrict_vocabulary_keeps_to_the_target_languages_training_tokens(translator: Translator) -> None:
    german = set(translator.target_vocabulary("de"))
    english = set(translator.target_vocabulary("en"))
    assert translator.tokenizer.eos_id in german and english - german  # English-only pieces exist
    output = translator.translate_detailed(NUMBERS, "num", "de", "beam", beam_size=4, n_best=4,
                                           restrict_vocabulary=True)
    assert tokens_of(output) <= german
    pivoted = translator.translate_detailed(NUMBERS, "num", "de", "greedy", pivot="en",
                                            restrict_vocabulary=True, vocabulary_min_share=0.01)
    assert tokens_of(pivoted) <= set(translator.target_vocabulary("de", min_share=0.01))
    with pytest.raises(InputError, match="processes logits.*not 'aggressive'"):
        translator.translate(["1"], "num", "de", "aggressive", restrict_vocabulary=True)
    with pytest.raises(InputError, match="no target language 'num'"):
        translator.translate(["1"], "de", "num", restrict_vocabulary=True)


def test_a_token_must_make_up_a_share_of_its_languages_targets() -> None:
    vocabularies = LanguageVocabularies.count([("fr", [5] * 1000 + [6]), ("fr", [7] * 20), ("en", [6, 8])],
                                              vocab_size=10)
    assert vocabularies.languages == ("en", "fr")
    assert vocabularies.allowed("fr", 0.0) == (5, 6, 7)
    assert vocabularies.allowed("fr", 0.01, always=[3]) == (3, 5, 7)  # 6: once in 1,021 tokens
    assert vocabularies.allowed("en", 0.01) == (6, 8)
    with pytest.raises(InputError, match="min_share must be in"):
        vocabularies.allowed("fr", 1.5)


def test_vocabularies_are_needed_and_checked(tiny_model_dir: Path, tmp_path: Path) -> None:
    loaded = Translator.load(tiny_model_dir)
    bare = Translator(loaded.model, loaded.tokenizer)
    with pytest.raises(InputError, match="needs the target vocabularies"):
        bare.translate(["1"], "num", "de", restrict_vocabulary=True)
    (tmp_path / "vocabularies.json").write_text('{"format": 1, "counts": {}}', encoding="utf-8")
    with pytest.raises(InputError, match="vocabularies.json is malformed"):
        LanguageVocabularies.load(tmp_path)


def test_embeddings_pool_each_texts_own_tokens_whatever_the_batch(translator: Translator) -> None:
    texts = ["12", "one thousand nine hundred and ninety-nine", "300"]
    together = translator.embed(texts, "en")
    alone = torch.cat([translator.embed([text], "en") for text in texts])
    assert together.shape == (3, translator.model.config.d_model)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    layers = translator.embed_layers(texts, "en")
    assert len(layers) == translator.model.config.encoder_layers
    torch.testing.assert_close(layers[-1], together)
    other_tag = translator.embed(texts, "en", tgt_lang="de")
    assert not torch.allclose(other_tag, together)
    with pytest.raises(InputError, match="text 1 is empty"):
        translator.embed(["1", ""], "num")
    with pytest.raises(UnknownLanguageError, match="no language .xx."):
        translator.embed(["1"], "xx")


def test_allow_only_keeps_the_allowed_ids_and_eos() -> None:
    from polyseq.config import ConfigError
    from polyseq.decoding.processors import Processing, allow_only

    logits = torch.arange(12.0).view(2, 6)
    kept = allow_only(logits, (1, 4), eos_id=3)
    assert torch.isinf(kept).tolist() == [[True, False, True, False, False, True]] * 2
    assert torch.equal(allow_only(logits, (), eos_id=3), logits)
    processed = Processing(allowed_tokens=[2])(logits, [[], []], eos_id=5)
    assert (processed.argmax(dim=1) == 5).all() and processed[0, 2] == 2.0
    with pytest.raises(ConfigError, match="allowed token id 9 is outside"):
        allow_only(logits, (9,), eos_id=3)
