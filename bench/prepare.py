"""What the benchmarks race, made before any race: corpora, trained and distilled models, exported
copies, and the sentences they are timed on. Nothing here times anything.

Each function reuses what an earlier run left in its output folder (a trained model's `best`, a
distilled corpus, an export), so a race can be run again without training again. The races
(`bench/decoding.py`, `bench/peers.py`, ...) call these; so can a shell, to train ahead of a race:

    cd bench && python -c "import prepare as p; p.prepare_corrector(p.DATA / 'ua-gec', p.WORK / 'decoding')"
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from engines import Task

from polyseq.config import Actions, DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.files import read_text_lines, write_atomic
from polyseq.train.loop import train
from polyseq.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"


def _shape(width: int, encoder_layers: int, decoder_layers: int) -> ModelConfig:
    return ModelConfig(d_model=width, encoder_layers=encoder_layers, decoder_layers=decoder_layers, heads=4,
                       ffn_dim=4 * width, dropout=0.1)


# d128-3x3 learns its task within minutes on two cores; d128-3x1 is the draft models' shape. On a
# model that small, fixed costs (the encoder, the per-call overhead) weigh on every strategy alike,
# so the bench can also train larger models (--corrector-preset, --translator-preset) to show how
# the speed-ups grow with the cost of a forward pass.
PRESETS = {"d128-3x3": _shape(128, 3, 3), "d128-3x1": _shape(128, 3, 1), "d256-6x6": _shape(256, 6, 6),
           "d384-6x6": _shape(384, 6, 6)}
DEFAULT_PRESET = "d128-3x3"
DRAFT_PRESET = "d128-3x1"
MAIN_PRESETS = sorted(set(PRESETS) - {DRAFT_PRESET})


@dataclass(frozen=True)
class Prepared:
    """A trained model, its draft model (same tokenizer), and the texts a race times them on."""

    model: Path
    draft: Path
    texts: list[str]
    references: list[str]
    description: str  # what the texts are, for the report


def run_name(name: str, preset: str) -> str:
    """Runs of the default shape keep their plain names, so earlier runs are reused."""
    return name if preset == DEFAULT_PRESET else f"{name}-{preset}"


def train_model(name: str, output: Path, data: DataConfig, minutes: float, max_positions: int, device: str,
                preset: str = DEFAULT_PRESET, tokenizer_of: Path | None = None,
                actions: str = "none") -> Path:
    """Train (or reuse) a model; with `tokenizer_of`, on that model's tokenizer (a draft model
    shares its main model's); `actions` is its model.actions ("s2a": Sequence-to-Action)."""
    run = output / name
    if (run / "best" / "model.safetensors").is_file():
        return run / "best"
    shape = replace(PRESETS[preset], max_positions=max_positions, actions=Actions(actions))
    if tokenizer_of is not None:
        (run / "tokenizer").mkdir(parents=True, exist_ok=True)
        shutil.copy(tokenizer_of / "tokenizer.model", run / "tokenizer" / "tokenizer.model")
    config = ExperimentConfig(
        model=shape, data=data,
        # the rate falls with the width, as usual for Transformers (the d128 models train at 3e-3)
        train=TrainConfig(output_dir=str(run), steps=1_000_000, time_budget_minutes=minutes,
                          lr=3e-3 * 128 / shape.d_model, warmup_steps=300, eval_every=500,
                          eval_bleu_sentences=100, log_every=100, average_last=0, device=device),
        preset=preset,
    )
    return train(config, resume=(run / "last").is_dir()).best_dir


# ------------------------------------------------------------------------------ the corrector


def corrector_corpus(ua_gec: Path, output: Path,
                     held_out_docs: int = 40) -> tuple[Path, list[str], list[str]]:
    """ua-gec pairs as JSONL for training; the last `held_out_docs` documents are the dev slice,
    returned as sources and references (the sources also written to corrector-dev.uk for other
    benchmarks)."""
    sources = read_text_lines(ua_gec / "gec-only.train.src.txt")
    targets = read_text_lines(ua_gec / "gec-only.train.ref0.txt")
    documents = read_text_lines(ua_gec / "gec-only.train.docids.txt")
    held = set(sorted(set(documents))[-held_out_docs:])
    output.mkdir(parents=True, exist_ok=True)
    train_path = output / "ua-gec.train.jsonl"
    with train_path.open("w", encoding="utf-8") as handle:
        for source, target, document in zip(sources, targets, documents, strict=True):
            if document not in held and source.strip() and target.strip():
                handle.write(json.dumps({"src": source, "tgt": target}, ensure_ascii=False) + "\n")
    dev = [(s, t) for s, t, d in zip(sources, targets, documents, strict=True) if d in held and s.strip()]
    write_atomic(output / "corrector-dev.uk", "".join(source + "\n" for source, _ in dev))
    return train_path, [source for source, _ in dev], [target for _, target in dev]


def prepare_corrector(ua_gec: Path, output: Path, preset: str = DEFAULT_PRESET, minutes: float = 10.0,
                      draft_minutes: float = 5.0, sentences: int = 200, device: str = "cpu") -> Prepared:
    """The ua-gec corrector (uk -> uk) and its draft, trained or reused in `output`, with the
    first `sentences` of the held-out dev slice and their references."""
    train_jsonl, dev, dev_references = corrector_corpus(ua_gec, output)
    gec = DataConfig(train=str(train_jsonl), languages=("uk",), directions=("uk-uk",),
                     vocab_size=4000, max_tokens=4096, max_length=120, max_ratio=2.0, valid_size=300)
    corrector = train_model(run_name("corrector", preset), output, gec, minutes, 256, device, preset)
    draft = train_model(run_name("corrector-draft", preset), output, gec, draft_minutes, 256, device,
                        DRAFT_PRESET, corrector)
    dev, dev_references = dev[:sentences], dev_references[:sentences]
    return Prepared(corrector, draft, dev, dev_references,
                    f"{len(dev)} ua-gec sentences from held-out documents")


ENGLISH_PROSE = re.compile(r"^[A-Z][^`|<>{}]*[.!?]$")
MARKDOWN_MARKUP = [(re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"), (re.compile(r"`([^`]*)`"), r"\1"),
                   (re.compile(r"\*\*|__|(?<!\w)\*|\*(?!\w)"), "")]


def markdown_sentences(pages: Sequence[Path]) -> list[str]:
    """The prose sentences of Markdown pages: lines outside code fences, with links, inline code
    and emphasis reduced to their text, split by pysbd, kept when they look like a sentence."""
    from polyseq.documents.segment import split_sentences

    sentences = []
    for page in pages:
        fenced = False
        for line in read_text_lines(page):
            stripped = line.strip()
            if stripped.startswith(("```", "~~~")):
                fenced = not fenced
            if fenced or not stripped or stripped[0] in "#|<{!/>*-+0123456789":
                continue
            for pattern, replacement in MARKDOWN_MARKUP:
                stripped = pattern.sub(replacement, stripped)
            sentences += [stripped[a:b] for a, b in split_sentences(stripped, "en")]
    return [s for s in sentences if ENGLISH_PROSE.match(s) and 4 <= len(s.split()) <= 40]


def english_corrector_corpus(data: Path, output: Path, valid_lines: int = 500,
                             seed: int = 1) -> tuple[Path, Path]:
    """Clean English for synthetic errors: multi30k's English training captions and the prose of
    the English FastAPI docs (no learner text: JFLEG and CWEB stay unseen), shuffled; the last
    `valid_lines` corrupted into a validation set. Returns (clean text, validation JSONL)."""
    from polyseq.data.noise import frequent_words, synthetic_pairs
    from polyseq.train.data import noise_rates

    clean_path, valid_path = output / "english.clean.en", output / "english.valid.jsonl"
    if clean_path.is_file() and valid_path.is_file():
        return clean_path, valid_path
    captions = read_text_lines(data / "multi30k" / "train.en")
    prose = markdown_sentences(sorted((data / "fastapi_docs_i18n" / "docs" / "en").rglob("*.md")))
    lines = sorted(set(captions) | set(prose))
    random.Random(seed).shuffle(lines)
    train_lines, held = lines[:-valid_lines], lines[-valid_lines:]
    pairs = synthetic_pairs(held, random.Random(seed), noise_rates(DataConfig()), count=len(held), keep=0.2,
                            fillers=frequent_words(train_lines, 100))
    output.mkdir(parents=True, exist_ok=True)
    write_atomic(clean_path, "".join(line + "\n" for line in train_lines))
    write_atomic(valid_path, "".join(json.dumps({"src": s, "tgt": t}) + "\n" for s, t in pairs))
    return clean_path, valid_path


# ----------------------------------------------------------------------------- the translator


def distill(translator_dir: Path, corpus: Path, splits: Sequence[str], src_lang: str, tgt_lang: str,
            output: Path, device: str) -> Path:
    """The translator's greedy translations of each split's sources (`corpus`/SPLIT.SRC_LANG),
    beside a copy of them, as parallel corpora `output`/SPLIT for training its draft (reused when
    present). A draft trained on them, and validated on them, learns and is chosen for how well
    it predicts what the translator says rather than what the references say."""
    translator = None
    for split in splits:
        sources, prefix = corpus / f"{split}.{src_lang}", output / split
        target = prefix.with_suffix(f".{tgt_lang}")
        if not target.is_file():
            prefix.parent.mkdir(parents=True, exist_ok=True)
            if translator is None:
                translator = Translator.load(translator_dir, device=device)
            translator.translate_corpus(sources, target, src_lang, tgt_lang, strategy="greedy",
                                        chunk_lines=2048)
        shutil.copyfile(sources, prefix.with_suffix(f".{src_lang}"))
    return output


def translator_test(multi30k: Path, sentences: int) -> tuple[list[str], list[str]]:
    """The first `sentences` lines of multi30k's test_2016_flickr, English and German."""
    return (read_text_lines(multi30k / "test_2016_flickr.en")[:sentences],
            read_text_lines(multi30k / "test_2016_flickr.de")[:sentences])


def prepare_translator(multi30k: Path, output: Path, preset: str = DEFAULT_PRESET, minutes: float = 10.0,
                       draft_minutes: float = 5.0, sentences: int = 200, device: str = "cpu",
                       translator: Path | None = None) -> Prepared:
    """The multi30k en->de translator (`translator`, or one trained or reused in `output`) and a
    draft trained on its own greedy output (sequence-level distillation), with the first
    `sentences` test sentences and their references."""
    mt = DataConfig(train=str(multi30k / "train"), valid=str(multi30k / "val"),
                    languages=("en", "de"), directions=("en-de",), vocab_size=4000, max_tokens=4096,
                    max_length=128)
    translator = translator or train_model(run_name("translator", preset), output, mt, minutes, 128, device,
                                           preset)
    distilled = distill(translator, multi30k, ("train", "val"), "en", "de",
                        output / run_name("distilled", preset), device)
    draft_data = replace(mt, train=str(distilled / "train"), valid=str(distilled / "val"))
    draft = train_model(run_name("translator-draft-distilled", preset), output, draft_data, draft_minutes,
                        128, device, DRAFT_PRESET, translator)
    sources, references = translator_test(multi30k, sentences)
    return Prepared(translator, draft, sources, references,
                    f"first {len(sources)} lines of multi30k test_2016_flickr.en")


# ------------------------------------------------------------------ exports (bench/peers.py)


def export_for_peers(model_dir: str, output: Path, assistant: str = "") -> tuple[str, str, str]:
    """`model_dir` as transformers and CTranslate2 models under `output` (float32 weights; int8 is
    CTranslate2's load-time quantization), and `assistant` (a smaller polyseq model with the same
    tokenizer, for transformers' assisted generation) as a transformers model: their folders."""
    from polyseq.interop.ct2 import export_ct2
    from polyseq.interop.hf import export_hf

    hf_dir, ct2_dir = output / "hf", output / "ct2"
    export_hf(model_dir, hf_dir, overwrite=True)  # the benchmark's own folders, redone each run
    export_ct2(model_dir, ct2_dir, overwrite=True)
    assistant_dir = str(export_hf(assistant, output / "assistant", overwrite=True)) if assistant else ""
    return str(hf_dir), str(ct2_dir), assistant_dir


def peer_task(spec: str, work: Path, sentences: int, export: bool = True) -> Task:
    """`name=MODEL_DIR:SRC_LANG:TGT_LANG:SOURCE_FILE[:ASSISTANT_DIR]` -> a Task: the model's
    exports under `work`/name and the first `sentences` non-empty lines of SOURCE_FILE as the
    source ids the model reads (its tokenizer's framing applied); `export=False` leaves the peers
    out (a model they cannot load)."""
    from polyseq.interop.tokenizers import load_tokenizer
    from polyseq.model.checkpoint import load_model_config

    name, _, rest = spec.partition("=")
    model_dir, src_lang, tgt_lang, source_file, *extra = rest.split(":")
    tokenizer = load_tokenizer(model_dir)
    framing = tokenizer.framing(src_lang or None, tgt_lang)
    lines = [line for line in read_text_lines(Path(source_file)) if line.strip()][:sentences]
    sources = [framing.source(tokenizer.encode(line)) for line in lines]
    hf_dir, ct2_dir, assistant_dir = (export_for_peers(model_dir, work / name, extra[0] if extra else "")
                                      if export else ("", "", ""))
    limit = load_model_config(Path(model_dir)).max_positions - len(framing.decoder_prefix) - 1
    return Task(name, model_dir, hf_dir, ct2_dir, sources, list(framing.decoder_prefix),
                tokenizer.eos_id, tokenizer.pad_id, min(limit, 200), assistant_dir, extra[0] if extra else "")
