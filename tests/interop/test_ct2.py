"""polyseq models in CTranslate2: greedy and beam outputs identical to polyseq's, token for token,
and imported Hugging Face models convert back out as they came in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed: pip install it")

from polyseq.decoding import generate  # noqa: E402
from polyseq.decoding.core import DecodeInput, LengthLimit  # noqa: E402
from polyseq.interop.ct2 import Quantization, export_ct2, vocabulary  # noqa: E402
from polyseq.interop.families import InteropError  # noqa: E402
from polyseq.model.checkpoint import load_model  # noqa: E402
from polyseq.text.framing import Framing  # noqa: E402
from polyseq.text.tokenizer import Tokenizer  # noqa: E402

SOURCES = ["one hundred and twelve", "seven", "four thousand three hundred and one", "ninety-nine"]


def _polyseq(model_dir: Path, strategy: str, **settings: object) -> list[list[int]]:
    tokenizer, model = Tokenizer.load(model_dir), load_model(model_dir)
    rows = [tokenizer.source_ids(text, "de") for text in SOURCES]
    src = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    prefix = torch.full((len(rows), 1), tokenizer.lang_id("de"))
    inputs = DecodeInput(src, prefix, tokenizer.eos_id, tokenizer.pad_id)
    result = generate(model, inputs, strategy, max_length=LengthLimit(0.0, 30), **settings)
    return [list(h.tokens) for h in result.best()]


def _ct2(ct2_dir: Path, model_dir: Path, beam: int, compute_type: str = "float32",
         **options: object) -> list[list[int]]:
    tokenizer = Tokenizer.load(model_dir)
    tokens = vocabulary(ct2_dir)
    index = {token: i for i, token in enumerate(tokens)}
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type=compute_type,
                                        intra_threads=1)
    batch = [[tokens[i] for i in tokenizer.source_ids(text, "de")] for text in SOURCES]
    results = translator.translate_batch(batch, target_prefix=[["<2de>"]] * len(SOURCES), beam_size=beam,
                                         max_decoding_length=30, length_penalty=1.0, **options)
    # the prefix's first token is the decoder start, which CTranslate2 does not return
    return [[index[t] for t in result.hypotheses[0]] for result in results]


def test_ct2_greedy_and_beam_equal_polyseq(tiny_model_dir: Path, tmp_path: Path) -> None:
    ct2_dir = export_ct2(tiny_model_dir, tmp_path / "ct2")
    assert vocabulary(ct2_dir)[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert _ct2(ct2_dir, tiny_model_dir, beam=1) == _polyseq(tiny_model_dir, "greedy")
    assert _ct2(ct2_dir, tiny_model_dir, beam=4) == _polyseq(tiny_model_dir, "beam", beam_size=4,
                                                             length_penalty=1.0)


def test_int8_ct2_model_converts_and_translates(tiny_model_dir: Path, tmp_path: Path) -> None:
    ct2_dir = export_ct2(tiny_model_dir, tmp_path / "ct2", Quantization.INT8)
    outputs = _ct2(ct2_dir, tiny_model_dir, beam=1, compute_type="int8")
    assert len(outputs) == len(SOURCES) and all(outputs)


def test_an_imported_marian_model_goes_out_to_ct2_unchanged(tmp_path: Path) -> None:
    """HF Marian -> polyseq -> CTranslate2 (through its own Marian converter): same greedy tokens."""
    from hf_models import transformers
    from tokenizer_files import TEXTS, marian_model

    from polyseq.interop.hf import import_hf
    from polyseq.interop.tokenizers import load_tokenizer

    hf_dir = tmp_path / "hf"
    torch.manual_seed(0)
    marian_model(hf_dir, init_std=0.1)
    hf_tokenizer = transformers.MarianTokenizer.from_pretrained(hf_dir)
    model_dir = import_hf(hf_dir, tmp_path / "polyseq")
    ct2_dir = export_ct2(model_dir, tmp_path / "ct2")
    rows, ours = _imported_greedy(model_dir, load_tokenizer(model_dir).framing("en", "de"), TEXTS)
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1)
    batch = [hf_tokenizer.convert_ids_to_tokens(row) for row in rows]
    results = translator.translate_batch(batch, beam_size=1, max_decoding_length=20)
    theirs = [hf_tokenizer.convert_tokens_to_ids(result.hypotheses[0]) for result in results]
    assert ours == theirs


def _imported_greedy(model_dir: Path, framing: Framing, texts: list[str]) -> tuple[list[list[int]],
                                                                                  list[list[int]]]:
    """The framed source rows of an imported model's `texts`, and polyseq's greedy output (20 tokens
    at most after the decoder prefix)."""
    from polyseq.interop.tokenizers import load_tokenizer

    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    rows = [framing.source(tokenizer.encode(text)) for text in texts]
    src = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_id)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    prefix = torch.tensor([framing.decoder_prefix] * len(rows))
    result = generate(model, DecodeInput(src, prefix, tokenizer.eos_id, tokenizer.pad_id), "greedy",
                      max_length=LengthLimit(0.0, 20))
    return rows, [list(h.tokens) for h in result.best()]


def _ct2_log_probs(ct2_dir: Path, model_dir: Path, targets: list[list[int]]) -> list[list[float]]:
    """CTranslate2's log-probability of each target token and EOS (after the <2de> start)."""
    tokenizer, tokens = Tokenizer.load(model_dir), vocabulary(ct2_dir)
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1)
    tag = tokenizer.lang_id("de")
    batch = [[tokens[i] for i in tokenizer.source_ids(text, "de")] for text in SOURCES]
    results = translator.score_batch(batch, [[tokens[i] for i in [tag, *row]] for row in targets])
    return [list(result.log_probs) for result in results]


def _polyseq_log_probs(model_dir: Path, targets: list[list[int]]) -> list[list[float]]:
    tokenizer, model = Tokenizer.load(model_dir), load_model(model_dir)
    rows = []
    for text, target in zip(SOURCES, targets, strict=True):
        src = torch.tensor([tokenizer.source_ids(text, "de")])
        tgt = [tokenizer.lang_id("de"), *target]
        with torch.no_grad():
            log_probs = model(src, torch.tensor([tgt])).log_softmax(-1)[0]  # (T, V)
        rows.append([float(log_probs[t, token]) for t, token in enumerate([*target, tokenizer.eos_id])])
    return rows


@pytest.mark.parametrize("variant", ["post_learned", "pre_learned_untied", "fairseq_sinusoidal",
                                     "fairseq_untied"])
def test_bart_mbart_and_fairseq_variants_go_to_ct2_unchanged(variant: str, tiny_model_dir: Path,
                                                              tmp_path: Path) -> None:
    """BART and mBART models convert (CTranslate2 reads their normalize_before/normalize_embedding),
    and CTranslate2 numbers fairseq positions from polyseq's <pad> + 1 as polyseq and transformers
    do: the same greedy and beam tokens, and the same log-probabilities."""
    from hf_models import VARIANTS, random_native

    config = replace(load_model(tiny_model_dir).config, **VARIANTS[variant][0])
    model_dir = random_native(config, tiny_model_dir, tmp_path / "native")
    ct2_dir = export_ct2(model_dir, tmp_path / "ct2")
    greedy = _polyseq(model_dir, "greedy")
    assert _ct2(ct2_dir, model_dir, beam=1) == greedy
    assert _ct2(ct2_dir, model_dir, beam=4) == _polyseq(model_dir, "beam", beam_size=4, length_penalty=1.0)
    theirs, ours = _ct2_log_probs(ct2_dir, model_dir, greedy), _polyseq_log_probs(model_dir, greedy)
    for mine, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(torch.tensor(mine), torch.tensor(expected), atol=1e-4, rtol=0)


def test_an_imported_mbart50_model_goes_out_to_ct2_unchanged(tmp_path: Path) -> None:
    """mBART-50's config.json keeps its tokenizer_class through polyseq, so CTranslate2 starts the
    decoder with </s> before the language code, as transformers and polyseq do (mBART-25 starts
    with the code): the same greedy tokens."""
    pytest.importorskip("google.protobuf", reason="transformers needs protobuf to convert SentencePiece")
    from hf_models import LAYERS, transformers
    from tokenizer_files import DE_WORDS, EN_WORDS, TEXTS, train_spm

    from polyseq.interop.hf import import_hf
    from polyseq.interop.tokenizers import load_tokenizer

    (tmp_path / "raw").mkdir()
    train_spm(tmp_path / "raw" / "sentencepiece.bpe.model", EN_WORDS + DE_WORDS, 4)
    # with the bos token of the hub's special_tokens_map.json (CTranslate2 needs one)
    hf_tokenizer = transformers.MBart50Tokenizer.from_pretrained(tmp_path / "raw", bos_token="<s>")
    hf_tokenizer.save_pretrained(tmp_path / "hf")
    torch.manual_seed(0)
    settings = transformers.MBartConfig(vocab_size=len(hf_tokenizer), tokenizer_class="MBart50Tokenizer",
                                        **{**LAYERS, "init_std": 0.1, "pad_token_id": 1, "eos_token_id": 2,
                                           "decoder_start_token_id": 2})
    transformers.MBartForConditionalGeneration(settings).eval().save_pretrained(tmp_path / "hf")
    model_dir = import_hf(tmp_path / "hf", tmp_path / "polyseq")
    ct2_dir = export_ct2(model_dir, tmp_path / "ct2")
    tokenizer = load_tokenizer(model_dir)
    rows, ours = _imported_greedy(model_dir, tokenizer.framing("en_XX", "de_DE"), TEXTS)
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1)
    results = translator.translate_batch([hf_tokenizer.convert_ids_to_tokens(row) for row in rows],
                                         target_prefix=[["de_DE"]] * len(rows), beam_size=1,
                                         max_decoding_length=21)
    # the hypotheses start with the prefix's language code (the decoder start </s> is not returned)
    assert ours == [hf_tokenizer.convert_tokens_to_ids(result.hypotheses[0])[1:] for result in results]


def test_a_model_imported_without_its_tokenizer_is_refused(tmp_path: Path) -> None:
    from hf_models import make_hf_model

    from polyseq.interop.hf import import_hf

    make_hf_model("marian", tmp_path / "hf")
    model_dir = import_hf(tmp_path / "hf", tmp_path / "polyseq", with_tokenizer=False)
    with pytest.raises(InteropError, match="imported without its tokenizer"):
        export_ct2(model_dir, tmp_path / "ct2")
    assert not (tmp_path / "ct2").exists()


def test_loading_another_toolkits_model_says_what_to_do(tiny_model_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """What users of transformers and CTranslate2 try first: their own directories, a Hub id."""
    from polyseq import Translator
    from polyseq.interop import export_hf
    from polyseq.model.checkpoint import CheckpointError

    export_hf(tiny_model_dir, tmp_path / "hf")
    export_ct2(tiny_model_dir, tmp_path / "ct2")
    with pytest.raises(CheckpointError, match=r"Hugging Face checkpoint \(model_type 'pegasus'\): import it "
                                              r"with `polyseq convert --from hf DIR OUT`"):
        Translator.load(tmp_path / "hf")
    with pytest.raises(CheckpointError, match="a CTranslate2 model, which polyseq cannot load"):
        Translator.load(tmp_path / "ct2")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="import it first: `polyseq convert Helsinki-NLP/opus-mt-en-de"):
        Translator.load("Helsinki-NLP/opus-mt-en-de")


def test_ct2_decodes_as_polyseq_where_the_model_favours_padding(tiny_model_dir: Path, tmp_path: Path) -> None:
    """CTranslate2's translator has no setting in the model that bans a token (`suppress_ids` is
    Whisper's only): the caller passes suppress_sequences=[["<pad>"]], as docs/interop.md says.
    Greedy then chooses polyseq's tokens; beam search may not, as CTranslate2 renormalises the
    probabilities over the tokens left where polyseq keeps them under the whole distribution."""
    from hf_models import Spec, favouring_padding

    tokenizer = Tokenizer.load(tiny_model_dir)
    spec = Spec("", "", {"pad_token_id": tokenizer.pad_id, "eos_token_id": tokenizer.eos_id},
                (tokenizer.lang_id("de"),))
    rows = [tokenizer.source_ids(text, "de") for text in SOURCES]
    src = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_id)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    native = favouring_padding(tiny_model_dir, tmp_path / "native", spec, src)
    ct2_dir = export_ct2(native, tmp_path / "ct2")
    assert _ct2(ct2_dir, native, 1, suppress_sequences=[["<pad>"]]) == _polyseq(native, "greedy")
    assert any(tokenizer.pad_id in row for row in _ct2(ct2_dir, native, 1))  # without it: <pad>
