"""Training objectives beside translation: translation alone trains exactly as before, every
objective's loss is finite and falls when a tiny model overfits one batch, composed objectives log
their metrics and resume exactly, and init_from starts a run from another's weights or says why not."""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import TINY_MODEL
from polyseq.cluster import Cluster
from polyseq.config import (
    ConfigError,
    DataConfig,
    ExperimentConfig,
    ObjectivesConfig,
    TrainConfig,
    load_config,
)
from polyseq.data.batching import Batch
from polyseq.data.corpus import CorpusError
from polyseq.text.tokenizer import Tokenizer
from polyseq.train.data import prepare_data
from polyseq.train.distributed import take_share
from polyseq.train.initial import InitError
from polyseq.train.loop import TRAINER_STATE, Trainer, TrainingError, _prepare, train
from polyseq.train.objectives import (
    StepContext,
    label_smoothed_nll,
    monolingual_texts,
    tokenizer_texts,
    unused_settings,
)
from polyseq.train.objectives.base import Forward
from polyseq.train.objectives.losses import info_nce, same_sentence
from polyseq.train.schedule import inverse_sqrt

WORDS = 40  # xx word i translates to yy word i, so a lexicon is there to find
UKRAINIAN = ["Привіт, як справи?", "Київ — столиця України.", "Я люблю читати книжки.",
             "Сьогодні гарна погода.", "Де знаходиться вокзал?", "Мій брат живе у Львові.",
             "Ми йдемо до парку.", "Це дуже цікава історія."]


def letters(number: int) -> str:
    return chr(ord("a") + number // 26) + chr(ord("a") + number % 26)


def word_corpus(directory: Path, pairs: int = 300, seed: int = 0) -> str:
    rng = random.Random(seed)
    sources, targets = [], []
    for _ in range(pairs):
        words = [rng.randrange(WORDS) for _ in range(rng.randint(3, 7))]
        sources.append(" ".join(f"xa{letters(w)}" for w in words).capitalize() + ".")
        targets.append(" ".join(f"yb{letters(w)}z" for w in words).capitalize() + ".")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.xx").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (directory / "train.yy").write_text("\n".join(targets) + "\n", encoding="utf-8")
    (directory / "uk.txt").write_text("\n".join(UKRAINIAN) + "\n", encoding="utf-8")
    return str(directory / "train")


def experiment(tmp_path: Path, objectives: dict[str, float], *, steps: int = 6, name: str = "run",
               **train_settings: object) -> ExperimentConfig:
    spec = word_corpus(tmp_path / "data")
    return ExperimentConfig(
        model=TINY_MODEL,
        data=DataConfig(train=spec, languages=("xx", "yy", "uk"), directions=("xx-yy", "yy-xx"),
                        valid_size=20, vocab_size=400, max_tokens=400, max_length=40, max_ratio=3.0),
        train=TrainConfig(output_dir=str(tmp_path / name), steps=steps, lr=5e-3, warmup_steps=4,
                          eval_every=steps, eval_bleu_sentences=5, log_every=2, progress=False,
                          objectives=objectives, **train_settings),
        objectives=ObjectivesConfig(translit_source=str(tmp_path / "data" / "uk.txt"), translit_lang="uk",
                                    csr_min_count=2),
    )


def trainer(config: ExperimentConfig, tmp_path: Path) -> Trainer:
    data = prepare_data(config.data, tmp_path / "tokenizer", config.train.seed, log=lambda m: None,
                        extra_texts=tokenizer_texts(config))
    return Trainer(config, data, tmp_path / "out", torch.device("cpu"))


@pytest.mark.parametrize(("accumulate", "dropout"), [(1, 0.0), (2, 0.0), (2, 0.3)])
def test_translation_alone_trains_as_polyseq_trained_before_objectives(tmp_path: Path, accumulate: int,
                                                                       dropout: float) -> None:
    config = experiment(tmp_path, {"translation": 1.0}, accumulate=accumulate)
    config = replace(config, model=replace(config.model, dropout=dropout))
    new = trainer(config, tmp_path)
    new_rng = torch.get_rng_state()
    old = trainer(config, tmp_path)  # the same seeded weights; dropout then draws the same masks
    for step in range(3):
        old_rng = torch.get_rng_state()
        torch.set_rng_state(new_rng)
        new.train_step()
        new_rng = torch.get_rng_state()
        torch.set_rng_state(old_rng)
        # the step as the loop computed it before objectives existed
        lr = inverse_sqrt(step + 1, peak_lr=config.train.lr, warmup_steps=config.train.warmup_steps)
        for group in old.optimizer.param_groups:
            group["lr"] = lr
        batches = take_share(old.stream, Cluster(), accumulate)
        total = sum(batch.tgt_tokens for batch in batches)
        for batch in batches:
            loss, _, _ = label_smoothed_nll(old.model(batch.src, batch.tgt_in), batch.tgt_out,
                                            smoothing=config.train.label_smoothing, pad_id=0)
            (loss / total).backward()
        torch.nn.utils.clip_grad_norm_(old.model.parameters(), config.train.clip_norm)
        old.optimizer.step()
        old.optimizer.zero_grad(set_to_none=True)
    for (name, mine), (_, theirs) in zip(new.model.state_dict().items(), old.model.state_dict().items(),
                                         strict=True):
        assert torch.equal(mine, theirs), name


@pytest.mark.parametrize("name", ["translation", "denoising", "e2s2", "csr", "claps", "translico"])
def test_each_objective_loss_is_finite_and_falls_as_a_tiny_model_overfits_one_batch(
        tmp_path: Path, name: str) -> None:
    config = experiment(tmp_path, {"translation": 1.0, name: 1.0})
    run = trainer(config, tmp_path)
    objective = next(objective for objective, _ in run.objectives.chosen if objective.name == name)
    translation = take_share(run.stream, Cluster(), 1)
    batch = objective.batches(translation, lambda s: take_share(s, Cluster(), 1), StepContext(1, 0, 0),
                              torch.device("cpu"))[0]
    count = objective.count(batch)
    model = run.model
    optimizer = torch.optim.Adam([*model.parameters(), *run.heads.parameters()], lr=3e-3)
    losses = []
    for _ in range(60):
        forward = Forward(model, contextlib.nullcontext, share=objective.reads_states)
        term = objective.loss(forward, model, batch)
        (term.loss / count).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(term.loss.item() / count)
        assert all(math.isfinite(value) for value in term.metrics.values())
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.6 * losses[0], (losses[0], losses[-1])


def test_rows_of_the_same_sentence_are_no_negatives_of_each_other() -> None:
    pad = 0
    src = torch.tensor([[7, 5, 6, 2, pad],   # the same sentence on its way to two languages
                        [8, 5, 6, 2, pad],
                        [7, 5, 6, 9, 2],     # longer: another sentence
                        [7, 5, 2, pad, pad]])
    same = same_sentence(src, pad)
    assert same.tolist() == [[False, True, False, False], [True, False, False, False],
                             [False] * 4, [False] * 4]
    anchors, positives = torch.randn(4, 8), torch.randn(4, 8)
    loss, top = info_nce(anchors, positives, 0.5, same=same)
    normalize = torch.nn.functional.normalize
    scores = normalize(anchors, dim=-1) @ normalize(positives, dim=-1).T / 0.5
    negatives = [[2, 3], [2, 3], [0, 1, 3], [0, 1, 2]]
    by_hand = sum(torch.logsumexp(scores[i, [i, *negatives[i]]], 0) - scores[i, i] for i in range(4))
    assert torch.allclose(loss, by_hand)
    assert int(top) == sum(bool(scores[i, i] > scores[i, negatives[i]].max()) for i in range(4))


@pytest.mark.parametrize("name", ["e2s2", "claps", "translico"])
def test_a_sentence_twice_in_a_batch_costs_what_it_costs_alone(tmp_path: Path, name: str) -> None:
    """In-batch contrastive losses: the second copy of a sentence is not the first's negative, so
    a batch holding it twice costs twice what a batch holding it once does."""
    run = trainer(experiment(tmp_path, {"translation": 1.0, name: 1.0}), tmp_path)
    objective = next(objective for objective, _ in run.objectives.chosen if objective.name == name)
    batch = objective.batches(take_share(run.stream, Cluster(), 1), lambda s: take_share(s, Cluster(), 1),
                              StepContext(1, 0, 0), torch.device("cpu"))[0]
    run.model.eval()
    run.heads.eval()

    def loss(rows: list[int]) -> float:
        if isinstance(batch, Batch):
            picked: object = Batch(batch.src[rows], batch.tgt_in[rows], batch.tgt_out[rows], batch.pad_id)
        else:
            picked = type(batch)(batch.clean[rows], batch.noisy[rows], batch.changed[rows])
        forward = Forward(run.model, contextlib.nullcontext, share=objective.reads_states)
        return objective.loss(forward, run.model, picked).loss.item()

    assert loss([0, 0]) == pytest.approx(2 * loss([0]), rel=1e-5)


def test_settings_that_no_objective_of_the_run_reads_are_named() -> None:
    settings = ObjectivesConfig(csr_rate=0.5, temperature=0.2, denoise_lambda=2.0, translit_source="uk.txt",
                                translit_lang="uk")

    def unused(objectives: dict[str, float]) -> list[str]:
        return unused_settings(ExperimentConfig(data=DataConfig(languages=("en", "uk")), objectives=settings,
                                                train=TrainConfig(objectives=objectives)))

    assert unused({"translation": 1.0, "e2s2": 0.3, "translico": 0.0}) == [
        "objectives.denoise_lambda = 2.0 has no effect: train.objectives has no denoising",
        "objectives.csr_rate = 0.5 has no effect: train.objectives has no csr"]
    assert unused({"translation": 1.0, "csr": 0.5, "denoising": 0.3, "claps": 0.1}) == [
        "objectives.translit_source = 'uk.txt' has no effect: train.objectives has no translico",
        "objectives.translit_lang = 'uk' has no effect: train.objectives has no translico"]
    assert unused({"translation": 1.0, "e2s2": 0.0}) == [
        "objectives.denoise_lambda = 2.0 has no effect: train.objectives has no denoising",
        "objectives.csr_rate = 0.5 has no effect: train.objectives has no csr",
        "objectives.translit_source = 'uk.txt' has no effect: train.objectives has no translico",
        "objectives.translit_lang = 'uk' has no effect: train.objectives has no translico",
        "objectives.temperature = 0.2 has no effect: train.objectives has no e2s2 or claps or translico"]
    assert unused_settings(ExperimentConfig()) == []


def test_denoising_reads_its_own_monolingual_stream_when_given_one(tmp_path: Path) -> None:
    mono = tmp_path / "mono"
    Path(f"{mono}.xx").parent.mkdir(parents=True, exist_ok=True)
    Path(f"{mono}.xx").write_text("Xaaa xabb. Xacc xadd!\nXaee xaff.\n\nXagg.\n", encoding="utf-8")
    config = experiment(tmp_path, {"translation": 1.0, "denoising": 0.5})
    config = replace(config, objectives=replace(config.objectives, monolingual=str(mono)))
    assert monolingual_texts(config, []) == {"xx": ["Xaaa xabb. Xacc xadd!", "Xaee xaff.", "Xagg."]}
    assert tokenizer_texts(config) == ["Xaaa xabb. Xacc xadd!", "Xaee xaff.", "Xagg."]
    run = trainer(config, tmp_path)
    denoising = next(objective for objective, _ in run.objectives.chosen if objective.name == "denoising")
    tokenizer = run.data.tokenizer
    # objectives.denoise_group (2) lines an example, the sentences of its source permuted
    examples = [(tokenizer.decode(list(example.src)), tokenizer.decode(list(example.tgt)))
                for example in denoising.stream._examples]
    assert [tgt for _, tgt in examples] == ["Xaaa xabb. Xacc xadd! Xaee xaff.", "Xagg."]
    assert all(sorted(src.split()) == sorted(tgt.split()) for src, tgt in examples)
    missing = replace(config, objectives=replace(config.objectives, monolingual=str(tmp_path / "none")))
    with pytest.raises(CorpusError, match=r"objectives.monolingual = '.*none': no .*none.<lang> file for any "
                                          r"of data.languages \['xx', 'yy', 'uk'\]"):
        monolingual_texts(missing, [])
    # a resume whose monolingual text changed is refused naming the objective whose data it is
    train(replace(config, train=replace(config.train, steps=2)), log=lambda m: None)
    Path(f"{mono}.xx").write_text("Xaaa xabb. Xacc xadd!\nXaee xaff.\n\nXagg xahh.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot resume the denoising objective's data stream: batch state"):
        train(config, resume=True, log=lambda m: None)


def test_translation_and_claps_share_one_forward_per_batch(tmp_path: Path) -> None:
    run = trainer(experiment(tmp_path, {"translation": 1.0, "claps": 0.5}, accumulate=2), tmp_path)
    passes = []
    run.model.register_forward_hook(lambda module, args, output: passes.append(type(output).__name__))
    run.train_step()
    assert passes == ["TeacherForced", "TeacherForced"]  # one per batch of the step, not one per objective


def test_composed_objectives_log_their_metrics_and_resume_exactly(tmp_path: Path) -> None:
    objectives = {"translation": 1.0, "denoising": 0.5, "e2s2": 0.3, "csr": 0.3, "claps": 0.1,
                  "translico": 0.1}
    straight = experiment(tmp_path, objectives, name="straight")
    train(straight, log=lambda m: None)
    halves = experiment(tmp_path, objectives, name="halves")
    train(replace(halves, train=replace(halves.train, steps=3, eval_every=3)), log=lambda m: None)
    train(halves, resume=True, log=lambda m: None)
    first, second = (load_file(str(tmp_path / name / "last" / "model.safetensors"))
                     for name in ("straight", "halves"))
    assert all(torch.equal(first[key], second[key]) for key in first)
    heads = [torch.load(tmp_path / name / "last" / TRAINER_STATE, weights_only=True)["heads"]
             for name in ("straight", "halves")]
    assert heads[0].keys() == {"claps.0.weight", "claps.0.bias"}  # claps's projection, saved and restored
    assert all(torch.equal(heads[0][key], heads[1][key]) for key in heads[0])
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").open()]
    logged = [r["objectives"] for r in records if r["kind"] == "train"]
    assert logged and set(logged[-1]) == set(objectives)
    assert {name: set(metrics) for name, metrics in logged[-1].items()} == {  # as docs/objectives.md lists
        "translation": {"loss", "nll"}, "denoising": {"loss", "nll"}, "csr": {"loss", "nll"},
        "e2s2": {"loss", "restore", "contrastive", "retrieval", "restored", "detected", "false_alarms"},
        "claps": {"loss", "retrieval", "distant_kl"}, "translico": {"loss", "retrieval"}}
    assert all(math.isfinite(v) for entry in logged for metrics in entry.values() for v in metrics.values())


def test_a_resume_with_the_objectives_in_another_order_is_refused_naming_them(tmp_path: Path) -> None:
    # each objective's stream is seeded by its place in the table: reordered, it would not resume
    train(experiment(tmp_path, {"translation": 1.0, "csr": 0.5}, steps=2), log=lambda m: None)
    reordered = experiment(tmp_path, {"csr": 0.5, "translation": 1.0}, steps=4)
    with pytest.raises(TrainingError, match=r"train.objectives differ .*\(\{translation = 1, csr = 0.5\}\); "
                                            "resume with the same objectives, in the same order"):
        train(reordered, resume=True, log=lambda m: None)


def test_objective_settings_are_checked_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown objective 'denoise'.*did you mean 'denoising'"):
        TrainConfig(objectives={"denoise": 1.0})
    with pytest.raises(ConfigError, match="every objective weight 0: at least one needs a weight > 0"):
        TrainConfig(objectives={"translation": 0.0})
    with pytest.raises(ConfigError, match="names no objective"):
        TrainConfig(objectives={})
    for weight in ("-0.3", "nan", "inf"):  # the message names the objective and its weight
        with pytest.raises(ConfigError, match=f"train.objectives: denoising's weight must be a finite number "
                                              f">= 0 \\(0 leaves it out\\), got {weight}"):
            load_config(None, [f"train.objectives=translation:1,denoising:{weight}"])
    with pytest.raises(ConfigError, match="train.objectives: translation given more than once"):
        load_config(None, ["train.objectives=translation:1,denoising:0.3,translation:0.5"])
    for setting, message in (("claps_back=nan", "claps_back must be a finite number >= 0, got nan"),
                             ("e2s2_contrastive=-1", "e2s2_contrastive must be a finite number >= 0, got -1"),
                             ("temperature=inf", "temperature must be a finite number > 0, got inf"),
                             ("denoise_lambda=0", "denoise_lambda must be a finite number > 0, got 0.0"),
                             ("csr_min_count=0", "csr_min_count must be >= 1, got 0"),
                             ("csr_rate=1.5", "csr_rate must be in [0, 1], got 1.5")):
        with pytest.raises(ConfigError, match=re.escape(f"objectives.{message}")):  # the one setting named
            load_config(None, [f"objectives.{setting}"])
    with pytest.raises(ConfigError, match="e2s2 train part of the model: give translation, denoising or csr"):
        experiment(tmp_path, {"e2s2": 1.0, "translation": 0.0})
    with pytest.raises(ConfigError, match="translit_lang 'ru' must be one of data.languages"):
        replace(experiment(tmp_path, {"translation": 1.0, "translico": 1.0}),
                objectives=ObjectivesConfig(translit_source="x.txt", translit_lang="ru"))
    with pytest.raises(ConfigError, match="S2A model"):
        config = experiment(tmp_path, {"translation": 1.0, "e2s2": 0.5})
        replace(config, model=replace(config.model, actions="s2a"))
    config = load_config(None, ["train.objectives=translation:1,denoising:0.3",
                                "objectives.denoise_ratio=0.4"])
    assert config.train.objectives == {"translation": 1.0, "denoising": 0.3}
    assert config.objectives.denoise_ratio == 0.4
    toml = tmp_path / "run.toml"
    config = replace(config, data=replace(config.data, temperature=math.inf))
    toml.write_text(config.to_toml(), encoding="utf-8")
    assert load_config(toml) == config


def test_a_run_starts_from_another_runs_weights_and_tokenizer(tmp_path: Path) -> None:
    # translico's Ukrainian is in the pretrained tokenizer; one trained for the fine-tuning data is not
    pretrained = experiment(tmp_path, {"translation": 1.0, "translico": 0.5}, name="pretrained", steps=2)
    train(pretrained, log=lambda m: None)
    best = tmp_path / "pretrained" / "best"
    finetune = experiment(tmp_path, {"translation": 1.0}, name="finetuned", steps=1, init_from=str(best))
    data = _prepare(finetune, False, Cluster(), lambda m: None)
    assert data.tokenizer.vocab_size == Tokenizer.load(best).vocab_size
    assert ((tmp_path / "finetuned" / "tokenizer" / "tokenizer.model").read_bytes()
            == (best / "tokenizer.model").read_bytes())
    run = Trainer(finetune, data, tmp_path / "finetuned", torch.device("cpu"))
    started = load_file(str(best / "model.safetensors"))
    assert all(torch.equal(started[key], value) for key, value in run.model.state_dict().items())
    assert train(finetune, log=lambda m: None).steps == 1
    (tmp_path / "pretrained").rename(tmp_path / "moved")  # a resumed run does not read init_from
    longer = replace(finetune, train=replace(finetune.train, steps=2, eval_every=2))
    assert train(longer, resume=True, log=lambda m: None).steps == 2


def test_init_from_refuses_a_model_it_cannot_start_from(tmp_path: Path) -> None:
    pretrained = experiment(tmp_path, {"translation": 1.0}, name="pretrained", steps=1)
    train(pretrained, log=lambda m: None)
    best = str(tmp_path / "pretrained" / "best")
    wider = experiment(tmp_path, {"translation": 1.0}, name="wider", steps=1, init_from=best)
    wider = replace(wider, model=replace(wider.model, d_model=48, ffn_dim=96))
    differ = r"model settings differ: d_model 32 there, 48 here; ffn_dim 64 there, 96 here"
    with pytest.raises(InitError, match=differ):
        train(wider, log=lambda m: None)
    long = experiment(tmp_path, {"translation": 1.0}, name="long", steps=1, init_from=best)
    long = replace(long, data=replace(long.data, max_length=100))
    with pytest.raises(InitError, match="data.max_length 100 is more than the model's max_positions 48"):
        train(long, log=lambda m: None)
    other = experiment(tmp_path, {"translation": 1.0}, name="other", steps=1, init_from=best)
    Tokenizer.train(UKRAINIAN * 3, tmp_path / "other" / "tokenizer", vocab_size=320,
                    languages=("xx", "yy", "uk"))
    with pytest.raises(InitError, match="vocabulary differs from this run's tokenizer"):
        train(other, log=lambda m: None)
    more = experiment(tmp_path, {"translation": 1.0}, name="more", steps=1, init_from=best)
    more = replace(more, data=replace(more.data, languages=("xx", "yy", "uk", "zz")))
    with pytest.raises(InitError, match="its tokenizer has no tag for zz \\(data.languages\\); its languages "
                                        "are xx, yy, uk"):
        train(more, log=lambda m: None)
    missing = replace(other, train=replace(other.train, output_dir=str(tmp_path / "missing"),
                                           init_from=str(tmp_path / "nowhere")))
    with pytest.raises(InitError, match="nowhere/tokenizer.model is missing"):
        train(missing, log=lambda m: None)
