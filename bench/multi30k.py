"""Benchmark: train en->de on multi30k within a wall-clock budget; test2016 BLEU and chrF.

Reports detokenized, cased sacrebleu BLEU and chrF on test_2016_flickr: the checkpoint (best or
averaged) and decoding (greedy, beam 5 with length penalty 0.6 / 1.0 / 1.4) are chosen on the
validation set, never on test. Also the budget, the model size, training tokens/s and peak memory,
and the training tokens/s of a plain `torch.nn.Transformer` of the same size on the same batches,
measured in the same run.

    python bench/multi30k.py --minutes 60            # the full benchmark
    python bench/multi30k.py --minutes 2 --quick     # a smoke run
    python bench/multi30k.py --evaluate-only         # score the finished run again
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from race import Racer, race
from torch import nn

from polyseq.config import DataConfig, ExperimentConfig, TrainConfig, model_preset
from polyseq.data.batching import BatchStream
from polyseq.evaluate import score_translations, write_report
from polyseq.files import read_text_lines
from polyseq.model.transformer import Seq2Seq
from polyseq.train.loop import train
from polyseq.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "multi30k"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="multi30k folder")
    parser.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--directions", default="en-de",
                        help="training directions (en-de is the one scored)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "work" / "multi30k")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "multi30k.json")
    parser.add_argument("--reference-seconds", type=float, default=45.0,
                        help="time for each throughput measurement (polyseq and nn.Transformer)")
    parser.add_argument("--d-model", type=int, default=192, help="model width")
    parser.add_argument("--layers", type=int, default=3, help="encoder and decoder layers (each)")
    parser.add_argument("--ffn", type=int, default=0, help="feed-forward size (default 4 x d-model)")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--vocab", type=int, default=8000, help="SentencePiece vocabulary size")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--warmup", type=int, default=600, help="warm-up steps")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between validations")
    parser.add_argument("--average-last", type=int, default=5, help="checkpoints averaged at the end")
    parser.add_argument("--quick", action="store_true", help="tiny model and vocabulary (smoke run)")
    parser.add_argument("--resume", action="store_true", help="continue a stopped run in --output")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="score the finished run in --output again, without training")
    return parser.parse_args()


def experiment(args: argparse.Namespace) -> ExperimentConfig:
    directions = tuple(d for d in args.directions.split(",") if d)
    languages = tuple(dict.fromkeys(lang for d in directions for lang in d.split("-")))
    size = {} if args.quick else dict(d_model=args.d_model, encoder_layers=args.layers,
                                      decoder_layers=args.layers, ffn_dim=args.ffn or 4 * args.d_model)
    model = model_preset("tiny" if args.quick else "small", dropout=args.dropout, max_positions=128,
                         **size)
    return ExperimentConfig(
        model=model,
        data=DataConfig(train=str(args.data / "train"), valid=str(args.data / "val"),
                        languages=languages, directions=directions, valid_directions=("en-de",),
                        vocab_size=2000 if args.quick else args.vocab, max_tokens=4096, max_length=100,
                        max_ratio=3.0),
        train=TrainConfig(output_dir=str(args.output), steps=1_000_000,
                          time_budget_minutes=args.minutes, lr=args.lr, warmup_steps=args.warmup,
                          label_smoothing=0.1, clip_norm=1.0,
                          eval_every=100 if args.quick else args.eval_every, eval_bleu_sentences=300,
                          log_every=100, seed=1, average_last=args.average_last),
        preset="tiny" if args.quick else f"d{args.d_model}-{args.layers}x{args.layers}",
    )


class PlainTransformer(nn.Module):
    """The reference: torch.nn.Transformer with the same sizes, embeddings, dropouts and output
    layer, so that the race times the same computation."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        config = model.config
        self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=0)
        self.transformer = nn.Transformer(
            d_model=config.d_model, nhead=config.heads, num_encoder_layers=config.encoder_layers,
            num_decoder_layers=config.decoder_layers, dim_feedforward=config.ffn_dim,
            dropout=config.dropout, batch_first=True, norm_first=True,
        )
        # nn.Transformer drops attention weights at `dropout` too; polyseq at attention_dropout
        for module in self.transformer.modules():
            if isinstance(module, nn.MultiheadAttention):
                module.dropout = config.attention_dropout
        self.embedding_dropout = nn.Dropout(config.dropout)  # as polyseq drops its embeddings
        self.register_buffer("positions", model.positions.clone(), persistent=False)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        scale = self.embed.embedding_dim**0.5
        source = self.embedding_dropout(self.embed(src) * scale + self.positions[: src.shape[1]])
        target = self.embedding_dropout(self.embed(tgt_in) * scale + self.positions[: tgt_in.shape[1]])
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1])
        hidden = self.transformer(source, target, tgt_mask=causal, tgt_is_causal=True,
                                  src_key_padding_mask=src == 0, memory_key_padding_mask=src == 0)
        return hidden @ self.embed.weight.T


def compare_throughput(run_dir: Path, config: ExperimentConfig, seconds: float,
                       rounds: int = 6) -> dict[str, Any]:
    """polyseq and nn.Transformer of the same size on the same batches, about `seconds` each,
    taking turns: each round trains both for the same steps, so that a slow spell of the shared
    machine slows both rather than one whole measurement."""
    from polyseq.train.data import prepare_data

    data = prepare_data(config.data, run_dir / "tokenizer", seed=1, log=lambda m: None)
    sized = replace(config.model, vocab_size=data.tokenizer.vocab_size)
    torch.manual_seed(0)
    ours = Seq2Seq(sized)
    racers = {name: Racer(model, BatchStream(data.train, config.data.max_tokens, 0, seed=7), lr=1e-4)
              for name, model in (("polyseq", ours), ("torch_nn_transformer", PlainTransformer(ours)))}
    results = race(racers, seconds, rounds, warmup=3)
    return results | {"ratio_polyseq_over_plain": round(
        results["polyseq_tgt_tokens_per_s"] / results["torch_nn_transformer_tgt_tokens_per_s"], 3)}


DECODING = {  # name -> (strategy, settings); chosen on the validation set
    "greedy": ("greedy", {}),
    **{f"beam5-lp{lp}": ("beam", {"beam_size": 5, "length_penalty": lp}) for lp in (0.6, 1.0, 1.4)},
}


def evaluate_models(run_dir: Path, data: Path) -> tuple[str, dict[str, dict[str, float]]]:
    """BLEU/chrF on val for each checkpoint (best, averaged) and decoding; the choice made on
    val is then scored on test2016, with every checkpoint's greedy output for reference."""
    splits = ("val", "test_2016_flickr")
    sources = {split: read_text_lines(data / f"{split}.en") for split in splits}
    references = {split: read_text_lines(data / f"{split}.de") for split in splits}
    translators = {name: Translator.load(run_dir / name) for name in ("best", "averaged")
                   if (run_dir / name).is_dir()}
    scores: dict[str, dict[str, float]] = {}

    def run(name: str, decoding: str, split: str) -> None:
        strategy, settings = DECODING[decoding]
        started = time.perf_counter()
        hypotheses = translators[name].translate(sources[split], "en", "de", strategy, **settings)
        result = score_translations(hypotheses, [references[split]])
        scores[f"{name}/{decoding}/{split}"] = {
            "bleu": result.bleu, "chrf": result.chrf, "seconds": round(time.perf_counter() - started, 1)}

    for name in translators:
        for decoding in DECODING:
            run(name, decoding, "val")
    chosen = max((k for k in scores if k.endswith("/val")), key=lambda k: scores[k]["bleu"])
    chosen = chosen.removesuffix("/val")
    for name in translators:
        run(name, "greedy", "test_2016_flickr")
    if not chosen.endswith("/greedy"):
        run(*chosen.split("/"), "test_2016_flickr")
    return chosen, scores


def main() -> None:
    args = parse_arguments()
    if not (args.data / "train.en").is_file():
        sys.exit(f"multi30k not found in {args.data}: pass --data DIR (see ../shared/data/README.md)")
    torch.set_num_threads(2)
    config = experiment(args)
    if args.evaluate_only and not (args.output / "best").is_dir():
        sys.exit(f"--evaluate-only needs a finished run in {args.output}")
    previous = json.loads(args.result.read_text()) if args.evaluate_only and args.result.is_file() \
        else {}
    started = time.perf_counter()
    if not args.evaluate_only:
        train(config, resume=args.resume)
    training_wall = previous.get("training_wall_seconds") or round(time.perf_counter() - started, 1)
    metrics = [json.loads(line) for line in (args.output / "metrics.jsonl").open()]
    speeds = [m["tokens_per_s"] for m in metrics if m["kind"] == "train"]
    chosen, scores = evaluate_models(args.output, args.data)
    headline = scores[f"{chosen}/test_2016_flickr"]
    throughput = previous.get("throughput_same_batches") or compare_throughput(
        args.output, config, args.reference_seconds)
    commands = [*previous.get("commands", [previous["command"]] if previous else []),
                "python " + shlex.join(sys.argv)]
    report = {
        "command": commands[0], "commands": commands,
        "budget_minutes": args.minutes,
        # time in training steps (the budget's clock, which validation does not use), over resumes
        "training_seconds": max(m.get("elapsed_s", 0.0) for m in metrics),
        "training_wall_seconds": training_wall,
        "steps": max(m["step"] for m in metrics), "model": config.to_dict()["model"],
        "parameters": Seq2Seq(replace(config.model, vocab_size=Translator.load(
            args.output / "best").tokenizer.vocab_size)).parameter_count(),
        "directions": list(config.data.directions),
        "test2016_en_de": {"chosen_on_val": chosen, **headline},
        "scores": scores,
        "training_tgt_tokens_per_s_median": statistics.median(speeds) if speeds else None,
        "throughput_same_batches": throughput,
        "peak_memory_mb": max(previous.get("peak_memory_mb", 0.0),
                              round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }
    write_report(args.result, report)
    print(json.dumps({k: report[k] for k in ("test2016_en_de", "throughput_same_batches",
                                             "peak_memory_mb", "steps")}, indent=2))


if __name__ == "__main__":
    main()
