"""Fine-tuning an imported model: polyseq's training step against transformers' on the same weights.

A Marian (OPUS-MT) look-alike is made from multi30k: SentencePiece models for English and German
(`--vocab` pieces each), a shared vocab.json, and a random MarianMTModel of `--d-model` width and
`--layers` layers, saved as Hugging Face saves it. `polyseq convert`'s import makes the polyseq
copy, and polyseq's data pipeline for a run from `train.init_from` makes the batches (token
budget `--max-tokens`). Then both models train, taking turns round by round on the same batches
(forward, label-smoothed cross-entropy, backward, AdamW): polyseq's Seq2Seq, and transformers'
MarianMTModel with its own attention masks. Target tokens per second are compared in the same run.

    python bench/finetune.py --result bench/results/finetune.json
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
from pathlib import Path

import sentencepiece as spm
import torch
from race import Logits, Racer, model_logits, race
from torch import nn

from polyseq.config import DataConfig, ExperimentConfig, TrainConfig
from polyseq.data.batching import Batch, BatchStream
from polyseq.interop.hf import import_hf
from polyseq.model.checkpoint import load_model
from polyseq.train.data import prepare_data
from polyseq.train.initial import share_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "multi30k"
WORK = ROOT / "bench" / "work" / "finetune"


def make_marian(folder: Path, vocab: int, width: int, layers: int) -> Path:
    """An OPUS-MT-shaped checkpoint with multi30k tokenizers and random weights (made once)."""
    import transformers

    hf_dir = folder / f"marian-d{width}-l{layers}-v{vocab}"
    if (hf_dir / "config.json").is_file():
        return hf_dir
    hf_dir.mkdir(parents=True, exist_ok=True)
    pieces: list[str] = []
    for lang, name in (("en", "source.spm"), ("de", "target.spm")):
        lines = (DATA / f"train.{lang}").read_text(encoding="utf-8").splitlines()
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab,
                                       minloglevel=2)
        (hf_dir / name).write_bytes(model.getvalue())
        processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
        pieces += [processor.id_to_piece(i) for i in range(3, processor.get_piece_size())]
    table = {"</s>": 0, "<unk>": 1}
    for piece in pieces:
        table.setdefault(piece, len(table))
    table["<pad>"] = len(table)
    (hf_dir / "vocab.json").write_text(json.dumps(table), encoding="utf-8")
    files = [str(hf_dir / name) for name in ("source.spm", "target.spm", "vocab.json")]
    transformers.MarianTokenizer(*files, source_lang="en", target_lang="de").save_pretrained(hf_dir)
    size = len(table)
    config = transformers.MarianConfig(
        vocab_size=size, pad_token_id=size - 1, eos_token_id=0, decoder_start_token_id=size - 1,
        d_model=width, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=8,
        decoder_attention_heads=8, encoder_ffn_dim=4 * width, decoder_ffn_dim=4 * width,
        max_position_embeddings=512, dropout=0.1, attention_dropout=0.0, activation_dropout=0.0,
        bad_words_ids=[[size - 1]])
    torch.manual_seed(0)
    transformers.MarianMTModel(config).save_pretrained(hf_dir)
    return hf_dir


def transformers_logits(model: nn.Module, batch: Batch) -> torch.Tensor:
    return model(input_ids=batch.src, attention_mask=(batch.src != batch.pad_id).long(),
                 decoder_input_ids=batch.tgt_in).logits


def without_banned(logits: Logits) -> Logits:
    """The forward pass with the banned <pad>'s -inf logit at 0, so that it takes no mass from
    label smoothing (as polyseq's own loss leaves it out)."""
    def forward(model: nn.Module, batch: Batch) -> torch.Tensor:
        scores = logits(model, batch)
        return scores.masked_fill(torch.isinf(scores), 0.0)
    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=6000, help="SentencePiece pieces per language")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3, help="encoder and decoder layers (each)")
    parser.add_argument("--max-tokens", type=int, default=2500, help="a batch's token budget")
    parser.add_argument("--seconds", type=float, default=120.0, help="time for each model, in rounds")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--result", type=Path, default=None, help="write the figures here (JSON)")
    args = parser.parse_args()
    if min(args.vocab, args.d_model, args.layers, args.max_tokens, args.rounds, args.threads) < 1 \
            or args.seconds <= 0:
        parser.error("every size, count and time must be positive")
    import transformers

    torch.set_num_threads(args.threads)
    hf_dir = make_marian(WORK, args.vocab, args.d_model, args.layers)
    imported = import_hf(hf_dir, WORK / f"{hf_dir.name}-polyseq", overwrite=True)
    run = WORK / "run"
    config = ExperimentConfig(
        data=DataConfig(train=str(DATA / "train"), valid=str(DATA / "val"), languages=("en", "de"),
                        directions=("en-de",), max_tokens=args.max_tokens, max_length=128),
        train=TrainConfig(output_dir=str(run), init_from=str(imported), progress=False))
    if not (run / "tokenizer" / "metadata.json").is_file():
        share_tokenizer(imported, run / "tokenizer", config, log=lambda message: None)
    data = prepare_data(config.data, run / "tokenizer", seed=1, log=lambda message: None)
    ours = load_model(imported)
    theirs = transformers.MarianMTModel.from_pretrained(hf_dir)
    assert ours.config.dropout == theirs.config.dropout  # the import keeps the checkpoint's
    racers = {name: Racer(model, BatchStream(data.train, args.max_tokens, data.tokenizer.pad_id, seed=7),
                          lr=5e-5, logits=without_banned(logits), smoothing=0.1)
              for name, model, logits in (("polyseq", ours, model_logits),
                                          ("transformers", theirs, transformers_logits))}
    raced = race(racers, args.seconds, args.rounds, warmup=2)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    result = {"command": "python bench/finetune.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "result"),
              "commit": commit, "transformers": transformers.__version__, "torch": torch.__version__,
              "model": f"Marian d{args.d_model} {args.layers}+{args.layers} layers, "
                       f"{sum(p.numel() for p in ours.parameters()):,} parameters",
              **raced, "ratio_polyseq_over_transformers": round(
                  raced["polyseq_tgt_tokens_per_s"] / raced["transformers_tgt_tokens_per_s"], 3)}
    print(json.dumps(result, indent=2))
    if args.result:
        from polyseq.files import write_json_atomic

        write_json_atomic(args.result, result)


if __name__ == "__main__":
    main()
