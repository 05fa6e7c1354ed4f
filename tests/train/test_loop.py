"""Training: a tiny model overfits, checkpoints resume exactly, runs leave the promised files."""

from __future__ import annotations

import json
import resource
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import overfit_losses, tiny_experiment
from polyseq.data.batching import collate
from polyseq.devices import DeviceError
from polyseq.model.transformer import Seq2Seq
from polyseq.train.loop import TrainingError, train
from polyseq.train.objectives import label_smoothed_nll
from polyseq.train.schedule import inverse_sqrt
from spawn import finish, polyseq, write_toml


def test_a_tiny_model_overfits_one_batch(tmp_path: Path) -> None:
    from polyseq.train.data import prepare_data

    config = tiny_experiment(tmp_path / "data", tmp_path / "run")
    data = prepare_data(config.data, tmp_path / "tok", seed=1, log=lambda m: None)
    batch = collate(data.train[:8], data.tokenizer.pad_id)
    torch.manual_seed(0)
    model = Seq2Seq(replace(config.model, vocab_size=data.tokenizer.vocab_size))
    losses = overfit_losses(model, batch)
    assert losses[-1] < 0.05 < losses[0]


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    quiet = {"log": lambda message: None}
    straight = tiny_experiment(tmp_path / "data", tmp_path / "straight", steps=12, eval_every=6,
                               dropout=0.2)
    train(straight, **quiet)
    stopped = replace(straight, train=replace(straight.train, output_dir=str(tmp_path / "resumed"),
                                              steps=6))
    train(stopped, **quiet)
    resumed = replace(stopped, train=replace(stopped.train, steps=12))
    result = train(resumed, resume=True, **quiet)
    assert result.steps == 12
    expected = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    actual = load_file(str(tmp_path / "resumed" / "last" / "model.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").open()]
    assert steps == sorted(steps) and steps[-1] == 12


def test_a_run_leaves_best_last_metrics_and_plot(tiny_run: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.model", "metadata.json"):
        assert (tiny_run / "best" / name).is_file()
    assert (tiny_run / "last" / "trainer.pt").is_file()
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").open()]
    valid = [r for r in records if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [60, 120]
    assert valid[-1]["valid_loss"] < valid[0]["valid_loss"]
    assert (tiny_run / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metadata = json.loads((tiny_run / "best" / "metadata.json").read_text())
    assert set(metadata["languages"]) == {"num", "en", "de"}
    assert metadata["directions"] == ["num-en", "num-de", "en-de", "de-en"]


def test_refuses_to_overwrite_a_run_and_to_resume_a_missing_one(tmp_path: Path,
                                                                 tiny_run: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tiny_run)
    with pytest.raises(TrainingError, match="--resume"):
        train(config, log=lambda m: None)
    fresh = tiny_experiment(tmp_path / "data", tmp_path / "nothing")
    with pytest.raises(TrainingError, match="cannot resume"):
        train(fresh, resume=True, log=lambda m: None)


@pytest.mark.parametrize("device", ["cuda:64", "gpu"])  # no machine has 65 GPUs; no such type
def test_a_device_this_machine_lacks_is_refused_before_any_work(tmp_path: Path, device: str) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "run")
    config = replace(config, train=replace(config.train, device=device))
    with pytest.raises(DeviceError, match=f"device '{device}' cannot be used here"):
        train(config, log=lambda m: None)
    assert not (tmp_path / "run").exists()


def test_resume_with_other_model_settings_is_refused(tmp_path: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=2, eval_every=2)
    train(config, log=lambda m: None)
    changed = replace(config, model=replace(config.model, ffn_dim=128),
                      train=replace(config.train, steps=4))
    with pytest.raises(TrainingError, match=r"\[model\] settings ffn_dim differ"):
        train(changed, resume=True, log=lambda m: None)


def test_inverse_sqrt_schedule() -> None:
    assert inverse_sqrt(50, peak_lr=1.0, warmup_steps=100) == pytest.approx(0.5)
    assert inverse_sqrt(100, peak_lr=1.0, warmup_steps=100) == pytest.approx(1.0)
    assert inverse_sqrt(400, peak_lr=1.0, warmup_steps=100) == pytest.approx(0.5)


def test_label_smoothing_spreads_mass_uniformly() -> None:
    logits = torch.log(torch.tensor([[[0.7, 0.1, 0.1, 0.1]]]))
    targets = torch.tensor([[0]])
    plain, nll, count = label_smoothed_nll(logits, targets, smoothing=0.0, pad_id=3)
    smooth, _, _ = label_smoothed_nll(logits, targets, smoothing=0.1, pad_id=3)
    assert count == 1 and plain.item() == pytest.approx(-torch.log(torch.tensor(0.7)).item())
    uniform = -torch.log(torch.tensor([0.7, 0.1, 0.1, 0.1])).mean().item()
    assert smooth.item() == pytest.approx(0.9 * nll.item() + 0.1 * uniform)


def test_label_smoothing_leaves_out_a_token_the_model_never_produces() -> None:
    """An imported OPUS-MT model's <pad> has a logit of -inf: smoothing spreads over the others
    (over all, the loss would be infinite), and the gradient stays finite."""
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1, 0.0], [0.5, 0.25, 0.25, 0.0]]])).requires_grad_()
    targets = torch.tensor([[0, 1]])
    smooth, nll, count = label_smoothed_nll(logits, targets, smoothing=0.1, pad_id=3)
    possible = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25]]))
    uniform = -possible.mean(dim=-1).sum().item()
    assert count == 2 and smooth.item() == pytest.approx(0.9 * nll.item() + 0.1 * uniform)
    smooth.backward()
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())


def test_average_last_writes_the_mean_of_the_last_snapshots(tmp_path: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=6, eval_every=2)
    config = replace(config, train=replace(config.train, average_last=2))
    train(config, log=lambda message: None)
    snapshots = sorted((tmp_path / "run" / "snapshots").glob("*.safetensors"))
    assert [p.name for p in snapshots] == ["step-00000004.safetensors", "step-00000006.safetensors"]
    first, second = (load_file(str(p)) for p in snapshots)
    averaged = load_file(str(tmp_path / "run" / "averaged" / "model.safetensors"))
    for name, tensor in averaged.items():
        torch.testing.assert_close(tensor, (first[name] + second[name]) / 2)
    assert not torch.equal(first["embed.weight"], second["embed.weight"])


def test_a_run_from_before_a_new_setting_resumes(tmp_path: Path) -> None:
    from polyseq.train.loop import TRAINER_STATE

    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=2, eval_every=2)
    train(config, log=lambda m: None)
    state_file = tmp_path / "run" / "last" / TRAINER_STATE
    state = torch.load(state_file, weights_only=True)
    del state["experiment"]["data"]["sentinel_rate"]  # saved by a polyseq without this setting
    torch.save(state, state_file)
    result = train(replace(config, train=replace(config.train, steps=4)), resume=True,
                   log=lambda m: None)
    assert result.steps == 4
    with pytest.raises(TrainingError, match=r"\[data\] settings sentinel_rate differ"):
        train(replace(config, data=replace(config.data, sentinel_rate=0.5)), resume=True,
              log=lambda m: None)


def test_clip_norm_zero_turns_clipping_off(tmp_path: Path) -> None:
    """As in fairseq and Marian: train.clip_norm = 0 trains as an unreachable limit does (a limit
    of 0 would zero every gradient, and the model would never change)."""
    from polyseq.config import ConfigError, TrainConfig

    weights = {}
    for clip in (0.0, 1e9):
        config = tiny_experiment(tmp_path / "data", tmp_path / f"clip-{clip:g}", steps=2, eval_every=2)
        train(replace(config, train=replace(config.train, clip_norm=clip)), log=lambda m: None)
        weights[clip] = load_file(str(tmp_path / f"clip-{clip:g}" / "last" / "model.safetensors"))
    assert all(torch.equal(weights[0.0][name], weights[1e9][name]) for name in weights[1e9])
    with pytest.raises(ConfigError, match="train.clip_norm must be >= 0"):
        TrainConfig(clip_norm=-1.0)


def test_a_resume_that_cannot_rewrite_the_log_leaves_it_whole(tmp_path: Path) -> None:
    """A resume rewrites metrics.jsonl without the records written after last/; a resume stopped
    in that rewrite (here by a file-size limit, as a full disk or a kill would) keeps the log whole."""
    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=4, eval_every=4)
    config = replace(config, train=replace(config.train, log_every=1))
    train(config, log=lambda m: None)
    metrics = tmp_path / "run" / "metrics.jsonl"
    before = metrics.read_bytes()
    limit = len(before) // 2

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    longer = write_toml(replace(config, train=replace(config.train, steps=8)), tmp_path / "run.toml")
    code, _, err = finish(polyseq("train", str(longer), "--resume", preexec_fn=limited))
    assert code == 2 and "File too large" in err, err[-2000:]
    assert metrics.read_bytes() == before


def test_no_bleu_sentences_is_refused_before_training() -> None:
    """Not after training up to the first evaluation, which has nothing to score and fails."""
    from polyseq.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="train.eval_bleu_sentences must be >= 1"):
        TrainConfig(eval_bleu_sentences=0)


def test_patience_stops_a_run_that_no_longer_improves_and_a_resume_keeps_it_so(tmp_path: Path) -> None:
    """At a learning rate too small to move the model, every evaluation after the first scores
    the same BLEU, which is no better: with patience 2 the run stops after its third evaluation."""
    from polyseq.config import ConfigError, TrainConfig

    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=20, eval_every=2)
    config = replace(config, train=replace(config.train, lr=1e-12, patience=2, log_every=1))
    assert train(config, log=lambda m: None).steps == 6
    valid = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in valid if r["kind"] == "valid"] == [2, 4, 6]
    assert all(r["grad_norm"] > 0 for r in valid if r["kind"] == "train")
    assert train(config, resume=True, log=lambda m: None).steps == 6  # still out of patience
    more = replace(config, train=replace(config.train, patience=4))
    assert train(more, resume=True, log=lambda m: None).steps == 10
    with pytest.raises(ConfigError, match="train.patience must be >= 0"):
        TrainConfig(patience=-1)


@pytest.mark.parametrize("metric", ["bleu", "chrf", "valid_loss"])
def test_best_metric_chooses_the_checkpoint_in_best(tmp_path: Path, metric: str) -> None:
    from polyseq.config import ConfigError, TrainConfig

    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=10, eval_every=2)
    train(replace(config, train=replace(config.train, best_metric=metric)), log=lambda m: None)
    valid = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    valid = [r for r in valid if r["kind"] == "valid"]
    sign = 1 if metric == "valid_loss" else -1  # the first of the best, as ties do not replace it
    best = min(valid, key=lambda r: (sign * r[metric], r["step"]))
    metadata = json.loads((tmp_path / "run" / "best" / "metadata.json").read_text())
    assert (metadata["steps"], metadata["best_metric"], metadata["best_value"]) == (best["step"], metric,
                                                                                     best[metric])
    assert metadata["best_valid_bleu"] == best["bleu"]
    with pytest.raises(ConfigError, match="train.best_metric must be one of bleu, chrf, valid_loss"):
        TrainConfig(best_metric="loss")


def test_a_run_saved_before_best_metric_keeps_choosing_by_bleu(tmp_path: Path) -> None:
    from polyseq.train.loop import TRAINER_STATE

    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=4, eval_every=2)
    train(config, log=lambda m: None)  # BLEU stays 0 here: the first evaluation is the best
    state_file = tmp_path / "run" / "last" / TRAINER_STATE
    state = torch.load(state_file, weights_only=True)
    for name in ("best_metric", "best_value"):  # counters of a polyseq without train.best_metric
        del state["counters"][name]
    torch.save(state, state_file)
    train(replace(config, train=replace(config.train, steps=6)), resume=True, log=lambda m: None)
    assert json.loads((tmp_path / "run" / "best" / "metadata.json").read_text())["steps"] == 2


def test_each_schedule_warms_up_then_decays_as_named() -> None:
    from polyseq.config import ConfigError, TrainConfig
    from polyseq.train.schedule import learning_rate

    def lr(schedule: str, step: int) -> float:
        return learning_rate(schedule, step, peak_lr=1.0, warmup_steps=10, total_steps=110)

    for schedule in ("inverse_sqrt", "linear", "cosine", "constant"):
        assert lr(schedule, 5) == pytest.approx(0.5) and lr(schedule, 10) == pytest.approx(1.0)
    assert lr("inverse_sqrt", 40) == pytest.approx(0.5)
    assert [lr("linear", step) for step in (60, 110, 200)] == pytest.approx([0.5, 0.0, 0.0])
    assert [lr("cosine", step) for step in (60, 110)] == pytest.approx([0.5, 0.0], abs=1e-12)
    assert lr("cosine", 35) == pytest.approx(0.5 * (1 + 2 ** -0.5))  # a quarter of the way
    assert lr("constant", 10_000) == 1.0
    with pytest.raises(ConfigError, match="train.schedule must be one of inverse_sqrt, linear, cosine"):
        TrainConfig(schedule="step")


def test_a_run_trains_with_the_schedule_it_names(tmp_path: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=20, eval_every=20)
    config = replace(config, train=replace(config.train, schedule="linear", log_every=5, warmup_steps=5))
    train(config, log=lambda m: None)
    rates = [json.loads(line)["lr"] for line in (tmp_path / "run" / "metrics.jsonl").open()
             if json.loads(line)["kind"] == "train"]
    assert rates == pytest.approx([5e-3 * (20 - step) / 15 for step in (5, 10, 15, 20)])


def test_frozen_parts_keep_their_weights_and_a_resume_keeps_them_frozen(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from polyseq.config import ConfigError

    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=4, eval_every=4)
    config = replace(config, train=replace(config.train, freeze=("embeddings", "encoder")))
    first = replace(config, train=replace(config.train, steps=1, eval_every=1))
    train(first, log=lambda message: None)
    before = load_file(str(tmp_path / "run" / "last" / "model.safetensors"))
    train(config, resume=True, log=lambda message: None)
    after = load_file(str(tmp_path / "run" / "last" / "model.safetensors"))
    frozen = [name for name in after if name.split(".")[0] in ("embed", "encoder_layers", "encoder_norm")]
    trained = [name for name in after if name.startswith("decoder_layers")]
    assert frozen and trained
    assert all(torch.equal(before[name], after[name]) for name in frozen)
    assert not all(torch.equal(before[name], after[name]) for name in trained)
    thawed = replace(config, train=replace(config.train, steps=6, freeze=("encoder",)))
    with pytest.raises(TrainingError, match="freeze differs from the run's.*embeddings, encoder frozen"):
        train(thawed, resume=True, log=lambda message: None)
    with pytest.raises(ConfigError, match="unknown part 'encoders' in train.freeze"):
        replace(config.train, freeze=("encoders",))
    with pytest.raises(ConfigError, match="names every part"):
        replace(config.train, freeze=("embeddings", "encoder", "decoder", "output"))
