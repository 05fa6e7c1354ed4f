"""Fine-tuning a model imported from Hugging Face (`train.init_from`): the run keeps the model's
tokenizer and architecture, reads its data as transformers frames it, and what it writes exports
back to transformers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hf_models import LAYERS, transformers
from tokenizer_files import DE_WORDS, EN_WORDS, TEXTS, m2m_model, marian_model, sentences

from helpers import TINY_MODEL
from polyseq.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.interop.hf import export_hf, import_hf
from polyseq.model.checkpoint import load_metadata
from polyseq.train.data import prepare_data
from polyseq.train.distill import distill
from polyseq.train.initial import InitError, share_tokenizer, with_imported_architecture
from polyseq.train.loop import Trainer, train
from polyseq.translator import Translator

LEXICON = dict(zip(EN_WORDS, DE_WORDS, strict=False))  # a word-for-word "translation"


def corpus(directory: Path, name: str, seed: int, count: int) -> tuple[str, list[str], list[str]]:
    english = sentences(list(LEXICON), seed)[:count]
    german = [" ".join(LEXICON[word] for word in line.split()) for line in english]
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.en").write_text("\n".join(english) + "\n", encoding="utf-8")
    (directory / f"{name}.de").write_text("\n".join(german) + "\n", encoding="utf-8")
    return str(directory / name), english, german


def experiment(tmp_path: Path, init_from: Path, steps: int = 100, **train: object) -> ExperimentConfig:
    train_spec, _, _ = corpus(tmp_path / "data", "train", 1, 300)
    valid_spec, _, _ = corpus(tmp_path / "data", "valid", 2, 16)
    return ExperimentConfig(
        model=ModelConfig(dropout=0.0),  # of [model], a fine-tuning run sets the dropout alone
        data=DataConfig(train=train_spec, valid=valid_spec, languages=("en", "de"),
                        directions=("en-de",), max_tokens=400, max_length=60),
        train=TrainConfig(output_dir=str(tmp_path / "run"), steps=steps, lr=3e-3, warmup_steps=5,
                          schedule="constant", eval_every=steps // 2, eval_bleu_sentences=16,
                          log_every=10, seed=1, progress=False, init_from=str(init_from),
                          **train),  # type: ignore[arg-type]
    )


def opus_mt_like(tmp_path: Path) -> Path:
    """A tiny Marian checkpoint whose config bans <pad> as OPUS-MT's do (bad_words_ids)."""
    hf_dir = tmp_path / "hf"
    marian_model(hf_dir)
    settings = json.loads((hf_dir / "config.json").read_text())
    settings["bad_words_ids"] = [[settings["pad_token_id"]]]
    (hf_dir / "config.json").write_text(json.dumps(settings))
    return hf_dir


def transformers_loss(hf_dir: Path, english: list[str], german: list[str]) -> float:
    """transformers' mean cross-entropy of the German given the English (its tokenizer frames
    both sides and its model shifts the labels), with the tokens its config bans left out."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir, src_lang="en", tgt_lang="de")
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(hf_dir).eval()
    batch = tokenizer(english, text_target=german, padding=True, return_tensors="pt")
    labels = batch["labels"].masked_fill(batch["labels"] == tokenizer.pad_token_id, -100)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       labels=labels).logits
    for (banned,) in json.loads((hf_dir / "config.json").read_text()).get("bad_words_ids", []):
        logits[..., banned] = float("-inf")
    return float(torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100))


@pytest.mark.parametrize("family", ["marian", "m2m_100"])
def test_the_run_reads_its_data_as_transformers_frames_it(family: str, tmp_path: Path) -> None:
    """Before any step, the run's validation loss is transformers' loss on the same pairs: the
    tokenizer, the framing (Marian's <pad> start; M2M-100's language codes on both sides, two forced
    decoder tokens) and the weights are the imported model's."""
    hf_dir = tmp_path / "hf"
    if family == "marian":
        opus_mt_like(tmp_path)
    else:
        m2m_model(hf_dir)
    imported = import_hf(hf_dir, tmp_path / "imported")
    config = experiment(tmp_path, imported)
    tokenizer_dir = tmp_path / "run" / "tokenizer"
    share_tokenizer(imported, tokenizer_dir, config, log=lambda m: None)
    data = prepare_data(config.data, tokenizer_dir, seed=1, log=lambda m: None)
    config = with_imported_architecture(config, data.architecture)
    trainer = Trainer(config, data, tmp_path / "run", torch.device("cpu"))
    _, english, german = corpus(tmp_path / "data", "valid", 2, 16)
    expected = transformers_loss(hf_dir, english, german)
    assert trainer.validate()["valid_loss"] == pytest.approx(expected, rel=1e-5)
    assert data.valid[0].prefix_length == (1 if family == "marian" else 2)


def test_a_fine_tuned_opus_mt_model_learns_resumes_and_exports_back(tmp_path: Path) -> None:
    hf_dir = opus_mt_like(tmp_path)
    imported = import_hf(hf_dir, tmp_path / "imported")
    _, english, german = corpus(tmp_path / "data", "valid", 2, 16)
    before = transformers_loss(hf_dir, english, german)
    config = experiment(tmp_path, imported, label_smoothing=0.1)  # smoothing beside the banned <pad>
    result = train(config, log=lambda m: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["valid_loss"] for r in records if "valid_loss" in r]
    # 3.0 is a guess among the 20 German words: below it, the model reads its source
    assert len(losses) == 2 and losses[-1] < min(losses[0], 2.7) and before > 5, (before, losses)
    metadata = load_metadata(result.best_dir)
    assert metadata["tokenizer"]["kind"] == "marian"
    assert metadata["fine_tuned_from"] == str(imported.resolve())
    assert json.loads((result.best_dir / "config.json").read_text())["model"]["d_model"] == LAYERS["d_model"]

    resumed = train(replace(config, train=replace(config.train, steps=104, init_from="")), resume=True,
                    log=lambda m: None)
    assert resumed.steps == 104

    exported = export_hf(result.best_dir, tmp_path / "exported")
    theirs = transformers.MarianMTModel.from_pretrained(exported).eval()
    tokenizer = transformers.MarianTokenizer.from_pretrained(exported)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    out = theirs.generate(**batch, do_sample=False, num_beams=1, max_new_tokens=30)
    ours = Translator.load(result.best_dir).translate(TEXTS, "en", "de", "greedy")
    assert tokenizer.batch_decode(out, skip_special_tokens=True) == ours


def test_what_an_imported_model_cannot_be_fine_tuned_for_is_refused_with_the_reason(tmp_path: Path) -> None:
    hf_dir = opus_mt_like(tmp_path)
    imported = import_hf(hf_dir, tmp_path / "imported")
    config = experiment(tmp_path, imported, steps=2)
    backwards = replace(config, data=replace(config.data, directions=("de-en",)))
    with pytest.raises(InitError, match="translates en -> de only"):
        train(backwards, log=lambda m: None)
    objectives = {"translation": 1.0, "denoising": 0.5}
    denoising = replace(config, train=replace(config.train, objectives=objectives))
    with pytest.raises(InitError, match="translation alone, not with train.objectives denoising"):
        train(denoising, log=lambda m: None)
    bare = import_hf(hf_dir, tmp_path / "bare", with_tokenizer=False)
    with pytest.raises(InitError, match="imported without its tokenizer"):
        train(replace(config, train=replace(config.train, init_from=str(bare))), log=lambda m: None)



def test_a_distilled_student_fine_tunes_an_imported_model_taught_by_a_polyseq_one(tmp_path: Path) -> None:
    marian_model(tmp_path / "hf")
    config = experiment(tmp_path, import_hf(tmp_path / "hf", tmp_path / "imported"), steps=4)
    teacher = train(replace(config, model=replace(TINY_MODEL, max_positions=64),
                            data=replace(config.data, vocab_size=300),
                            train=replace(config.train, output_dir=str(tmp_path / "teacher"), steps=60,
                                          eval_every=60, init_from="")), log=lambda m: None).best_dir
    # the student takes the imported model's tokenizer, which its weights need, not the teacher's
    result = distill(teacher, config, strategy="greedy", settings={"max_len_a": 0.0, "max_len_b": 8},
                     log=lambda m: None)
    assert load_metadata(result.best_dir)["tokenizer"]["kind"] == "marian"


def test_an_imported_models_positions_bound_the_run_not_the_default_model_settings(tmp_path: Path) -> None:
    """[model] is the imported model's: data.max_length may go past polyseq's default 256 positions
    up to the model's own 512, fresh and on resume (the CLI gives init_from again)."""
    hf_dir = tmp_path / "hf"
    marian_model(hf_dir, max_position_embeddings=512)
    imported = import_hf(hf_dir, tmp_path / "imported")
    base = experiment(tmp_path, imported, steps=2)
    config = replace(base, data=replace(base.data, max_length=300))
    assert train(config, log=lambda m: None).steps == 2
    longer = replace(config, train=replace(config.train, steps=3))
    assert train(longer, resume=True, log=lambda m: None).steps == 3
    beyond = replace(base, data=replace(base.data, max_length=600),
                     train=replace(base.train, output_dir=str(tmp_path / "beyond")))
    with pytest.raises(InitError, match="data.max_length 600 is more than the model's max_positions 512"):
        train(beyond, log=lambda m: None)
