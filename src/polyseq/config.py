"""Typed, frozen configuration: ModelConfig, DataConfig, TrainConfig; TOML files and dotted overrides.

One way to configure: a TOML file with sections [model], [data], [train], overridden on the command
line by `section.key=value`. Every dataclass validates itself in __post_init__.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


class NormPlacement(str, enum.Enum):
    PRE = "pre"  # x + f(norm(x)): stable without warm-up tricks
    POST = "post"  # norm(x + f(x)): the original Transformer


class Activation(str, enum.Enum):
    RELU = "relu"
    GELU = "gelu"  # the exact (erf) GELU
    SWISH = "swish"  # x * sigmoid(x), a.k.a. SiLU: OPUS-MT Marian models


class Positions(str, enum.Enum):
    """How a token's position enters its embedding."""

    SINUSOIDAL = "sinusoidal"  # Vaswani et al., sin/cos interleaved (polyseq; Marian after a permutation)
    SINUSOIDAL_FAIRSEQ = "sinusoidal_fairseq"  # sin half then cos half, log(1e4)/(D/2 - 1): M2M-100, NLLB
    LEARNED = "learned"  # a trained table per side (encoder, decoder): BART, mBART


class EmbeddingScale(str, enum.Enum):
    """What token embeddings are multiplied by before the positions are added."""

    SQRT_D_MODEL = "sqrt_d_model"
    NONE = "none"  # BART and mBART checkpoints without scale_embedding


class EmbeddingNorm(str, enum.Enum):
    """Whether a LayerNorm follows embeddings + positions (BART, mBART)."""

    NONE = "none"
    LAYER_NORM = "layer_norm"


class OutputBias(str, enum.Enum):
    """Whether the output projection adds a per-token bias (HF's final_logits_bias)."""

    NONE = "none"
    BIAS = "bias"


class LanguageEmbedding(str, enum.Enum):
    """Where a learned target-language vector (made from the `<2xx>` tag that starts the source)
    is added, to keep outputs in the target language (see docs/multilingual.md)."""

    NONE = "none"
    DECODER = "decoder"  # to every decoder input position: the tag is never far away
    OUTPUT = "output"  # to the decoder's final states, before the output layer (as LangSAMP does)


class Actions(str, enum.Enum):
    """What the decoder predicts besides the next token."""

    NONE = "none"
    # SKIP / COPY / GEN over the source (Li et al. 2022), for correction: see polyseq.model.actions
    S2A = "s2a"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 8000
    d_model: int = 256
    encoder_layers: int = 3
    decoder_layers: int = 3
    heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.0
    max_positions: int = 256
    tie_embeddings: bool = True
    norm: NormPlacement = NormPlacement.PRE
    activation: Activation = Activation.RELU
    pad_id: int = 0
    # Variants for imported checkpoints; the defaults are polyseq's own architecture, so model
    # directories written before these fields existed load unchanged.
    positions: Positions = Positions.SINUSOIDAL
    position_offset: int = 0  # table row of position 0 (2 in BART, mBART and M2M-100)
    embedding_scale: EmbeddingScale = EmbeddingScale.SQRT_D_MODEL
    embedding_norm: EmbeddingNorm = EmbeddingNorm.NONE
    output_bias: OutputBias = OutputBias.NONE
    language_embedding: LanguageEmbedding = LanguageEmbedding.NONE  # a remedy for off-target output
    actions: Actions = Actions.NONE
    skip_id: int = 2  # the S2A `<skip>` token: polyseq's `<s>`, which no text encodes to

    def __post_init__(self) -> None:
        for name, kind in (("norm", NormPlacement), ("activation", Activation), ("positions", Positions),
                           ("embedding_scale", EmbeddingScale), ("embedding_norm", EmbeddingNorm),
                           ("output_bias", OutputBias), ("language_embedding", LanguageEmbedding),
                           ("actions", Actions)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        for name in ("vocab_size", "d_model", "heads", "ffn_dim", "max_positions"):
            _check(getattr(self, name) > 0, f"model.{name} must be positive")
        _check(self.encoder_layers >= 1 and self.decoder_layers >= 1, "model needs >= 1 layer each")
        _check(self.d_model % self.heads == 0, "model.d_model must be divisible by model.heads")
        _check(0.0 <= self.dropout < 1.0, "model.dropout must be in [0, 1)")
        _check(0.0 <= self.attention_dropout < 1.0, "model.attention_dropout must be in [0, 1)")
        _check(0 <= self.pad_id < self.vocab_size, "model.pad_id must be a vocabulary id")
        _check(self.position_offset >= 0, "model.position_offset must be >= 0")
        _check(self.d_model % 2 == 0 or self.positions is Positions.LEARNED,
               "sinusoidal positions need an even model.d_model")
        _check(self.actions is Actions.NONE or (0 <= self.skip_id < self.vocab_size
                                                 and self.skip_id != self.pad_id),
               "model.skip_id must be a vocabulary id other than model.pad_id")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d_model=64, encoder_layers=2, decoder_layers=2, heads=4, ffn_dim=256),
    "small": dict(d_model=256, encoder_layers=3, decoder_layers=3, heads=4, ffn_dim=1024),
    "base": dict(d_model=512, encoder_layers=6, decoder_layers=6, heads=8, ffn_dim=2048),
}


def model_preset(name: str, **overrides: Any) -> ModelConfig:
    """A named model size (`tiny`, `small`, `base`) with optional field overrides."""
    if name not in MODEL_PRESETS:
        raise ConfigError(f"unknown model preset {name!r}{did_you_mean(name, MODEL_PRESETS)}")
    return ModelConfig(**{**MODEL_PRESETS[name], **overrides})


@dataclass(frozen=True)
class DataConfig:
    """Where the parallel text comes from and how it is filtered and tokenized.

    `train` and `valid` are corpus specs (see polyseq.data.corpus.load_corpus): a path prefix of
    aligned files (`data/train` with `train.en`, `train.de`), a `.tsv` or a `.jsonl` file.
    `languages` lists the languages of the corpus; `directions` the pairs to train ("en-de"), or
    empty for every pair among `languages`. `sentinel_rate` is the share of training pairs given
    ⟦n⟧ sentinels on both sides, so that the model learns to copy the protected spans of
    document translation (see polyseq.data.sentinels).

    `temperature` balances directions of unequal size (Arivazhagan et al. 2019): each epoch draws
    direction d's examples in proportion to n_d^(1/T): 1 keeps the data's proportions (every
    example once per epoch, as without sampling), 5 raises small directions, inf draws every
    direction equally (see polyseq.data.sampling).

    Synthetic correction pairs (see polyseq.data.noise): `noise_source` is a file of clean text,
    one sentence per line, in `noise_lang`; each line becomes a `noise_lang`-`noise_lang` pair of
    (corrupted line, line) added to the training pairs (never to validation), `noise_keep` of
    them left unchanged. The `noise_*_rate` settings are probabilities per word (per token that
    has a confusion set for `noise_confusion_rate`). Confusion sets are learned from
    `noise_confusions_from`: "train" (the real `noise_lang`-`noise_lang` training pairs), a
    corpus spec of correction pairs, or "" for none.
    """

    train: str = ""
    valid: str = ""
    languages: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    valid_directions: tuple[str, ...] = ()
    vocab_size: int = 8000
    # SentencePiece's share of the characters that get pieces of their own; the rarest rest are
    # written as bytes. 0.9995 suits Chinese or Japanese, whose characters outnumber the pieces
    character_coverage: float = 1.0
    max_tokens: int = 4096
    max_length: int = 200
    max_ratio: float = 3.0
    valid_size: int = 500
    sentinel_rate: float = 0.0
    temperature: float = 1.0  # direction sampling: 1 = as in the data, inf = uniform
    noise_source: str = ""  # clean text for synthetic correction pairs; "" = none
    noise_lang: str = ""  # its language: the pairs are noise_lang-noise_lang
    noise_pairs: int = 0  # how many synthetic pairs; 0 = one per line of noise_source
    noise_keep: float = 0.2  # share of synthetic pairs left unchanged: learn to keep correct text
    noise_typo_rate: float = 0.03  # a keyboard neighbour, doubled, dropped or swapped letter
    noise_delete_rate: float = 0.01
    noise_insert_rate: float = 0.01  # one of the noise source's 100 most frequent words
    noise_swap_rate: float = 0.01  # two neighbouring words exchanged
    noise_repeat_rate: float = 0.005  # a word written twice
    noise_punctuation_rate: float = 0.04  # a comma or dash dropped, added or changed
    noise_casing_rate: float = 0.01  # a first letter in the other case
    noise_confusion_rate: float = 0.1  # a word replaced by one its writers confuse with it
    noise_confusions_from: str = "train"  # "train", a corpus spec of correction pairs, or ""
    noise_confusion_min_count: int = 2  # substitutions seen fewer times are not learned

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))
        object.__setattr__(self, "directions", tuple(self.directions))
        object.__setattr__(self, "valid_directions", tuple(self.valid_directions))
        _check(self.vocab_size >= 64, "data.vocab_size must be >= 64")
        _check(0.0 < self.character_coverage <= 1.0, "data.character_coverage must be in (0, 1]")
        _check(self.max_tokens > 0, "data.max_tokens must be positive")
        _check(self.max_length > 0, "data.max_length must be positive")
        _check(self.max_ratio >= 1.0, "data.max_ratio must be >= 1")
        _check(0.0 <= self.sentinel_rate <= 1.0, "data.sentinel_rate must be in [0, 1]")
        _check(self.temperature > 0, "data.temperature must be > 0 (1 = in proportion to the data, "
               "inf = every direction equally)")  # also False for NaN
        self._check_noise()
        for direction in self.directions + self.valid_directions:
            parts = direction.split("-")
            _check(len(parts) == 2 and all(parts), f"direction {direction!r} must look like 'en-de'")
            for lang in parts:
                _check(
                    not self.languages or lang in self.languages,
                    f"direction {direction!r} uses {lang!r}, not in data.languages",
                )

    def _check_noise(self) -> None:
        rates = [name for name in ("keep", "typo_rate", "delete_rate", "insert_rate", "swap_rate",
                                   "repeat_rate", "punctuation_rate", "casing_rate", "confusion_rate")
                 if not 0.0 <= getattr(self, f"noise_{name}") <= 1.0]
        _check(not rates, f"data.noise_{', data.noise_'.join(rates)} must be in [0, 1]")
        _check(self.noise_pairs >= 0, "data.noise_pairs must be >= 0")
        _check(self.noise_confusion_min_count >= 1, "data.noise_confusion_min_count must be >= 1")
        if not self.noise_source:
            return
        lang = self.noise_lang
        _check(bool(lang), "data.noise_source needs data.noise_lang, the language of its text")
        _check(lang in self.languages, f"data.noise_lang {lang!r} must be one of data.languages")
        _check(f"{lang}-{lang}" in self.directions, f"data.noise_source makes {lang}-{lang} "
               f"correction pairs: add '{lang}-{lang}' to data.directions")
        _check(bool(self.train or self.valid), "data.noise_source without data.train needs "
               "data.valid: a validation corpus of real correction pairs")

    def all_directions(self) -> tuple[tuple[str, str], ...]:
        if self.directions:
            return tuple(tuple(d.split("-")) for d in self.directions)  # type: ignore[misc]
        return tuple((a, b) for a in self.languages for b in self.languages if a != b)


BEST_METRICS = ("bleu", "chrf", "valid_loss")  # TrainConfig.best_metric
SCHEDULES = ("inverse_sqrt", "linear", "cosine", "constant")  # TrainConfig.schedule (train/schedule.py)
# train.freeze's parts, by the Seq2Seq attributes they hold (tied embeddings are the output layer too)
FREEZABLE = {
    "embeddings": ("embed", "encoder_positions", "decoder_positions", "encoder_embedding_norm",
                   "decoder_embedding_norm"),
    "encoder": ("encoder_layers", "encoder_norm"),
    "decoder": ("decoder_layers", "decoder_norm"),
    "output": ("output", "output_bias", "target_language"),
}
OBJECTIVES = ("translation", "denoising", "e2s2", "csr", "claps", "translico")  # polyseq.train.objectives


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str = "runs/model"
    steps: int = 10000
    time_budget_minutes: float = 0.0  # stop after this much training time; 0 = no limit
    lr: float = 1e-3
    warmup_steps: int = 1000
    schedule: str = "inverse_sqrt"  # after warm-up: inverse_sqrt, linear or cosine (to 0 at steps), constant
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # the gradient's largest L2 norm; 0 = no clipping (as in fairseq and Marian)
    accumulate: int = 1
    eval_every: int = 500
    eval_bleu_sentences: int = 200
    log_every: int = 50
    average_last: int = 0  # average the weights of the last N evaluations into `averaged/`
    # what chooses best/ (and what train.patience waits for): "bleu" or "chrf" (the mean over the
    # validated directions, higher is better) or "valid_loss" (lower is better, fairseq's default)
    best_metric: str = "bleu"
    patience: int = 0  # stop when N evaluations in a row have not bettered the best; 0 = never
    save_every: int = 0  # also write last/ every N steps (0: only at evaluations)
    save_every_minutes: float = 0.0  # and every N minutes of the run (0: no timer)
    fsdp: bool = False  # with torchrun: shard the model over the processes (FSDP2), not replicate it
    seed: int = 1
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    amp: bool = False  # bf16 autocast; slower on CPUs without bf16 support
    device: str = "cpu"  # where the model trains: cpu, cuda, cuda:1, ...
    progress: bool = True
    # the losses trained on and their weights (polyseq.train.objectives lists them)
    objectives: dict[str, float] = field(default_factory=lambda: {"translation": 1.0})
    init_from: str = ""  # a model directory whose weights (and tokenizer) the run starts from
    # parts of the model that keep their weights: embeddings, encoder, decoder, output (FREEZABLE)
    freeze: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "objectives", dict(self.objectives))
        _check(bool(self.objectives), "train.objectives names no objective: give one, such as "
               "{translation = 1.0}")
        for name, weight in self.objectives.items():
            _check(name in OBJECTIVES, f"unknown objective {name!r} in train.objectives"
                   f"{did_you_mean(name, OBJECTIVES)}")
            _check(0 <= weight < math.inf, f"train.objectives: {name}'s weight must be a finite number >= 0 "
                   f"(0 leaves it out), got {weight}")
        _check(any(w > 0 for w in self.objectives.values()),
               "train.objectives gives every objective weight 0: at least one needs a weight > 0")
        _check(len(self.betas) == 2 and all(0.0 <= beta < 1.0 for beta in self.betas),
               f"train.betas must be two numbers in [0, 1) (Adam's beta1, beta2), got {list(self.betas)}")
        _check(self.steps > 0, "train.steps must be positive")
        _check(self.lr > 0, "train.lr must be positive")
        _check(self.warmup_steps >= 0, "train.warmup_steps must be >= 0")
        _check(self.schedule in SCHEDULES, f"train.schedule must be one of {', '.join(SCHEDULES)}, "
               f"not {self.schedule!r}")
        _check(0.0 <= self.label_smoothing < 1.0, "train.label_smoothing must be in [0, 1)")
        _check(self.clip_norm >= 0, "train.clip_norm must be >= 0 (0: no clipping)")
        _check(self.accumulate >= 1, "train.accumulate must be >= 1")
        _check(self.eval_every > 0 and self.log_every > 0, "train.eval_every/log_every > 0")
        # refused here, not after training up to the first evaluation, which would fail on it
        _check(self.eval_bleu_sentences >= 1, "train.eval_bleu_sentences must be >= 1 (the validation "
               "sentences translated for BLEU at each evaluation)")
        _check(self.time_budget_minutes >= 0, "train.time_budget_minutes must be >= 0")
        _check(self.average_last >= 0, "train.average_last must be >= 0")
        _check(self.patience >= 0, "train.patience must be >= 0 (0: train all the steps)")
        _check(self.best_metric in BEST_METRICS, f"train.best_metric must be one of "
               f"{', '.join(BEST_METRICS)}, not {self.best_metric!r}")
        _check(self.save_every >= 0 and self.save_every_minutes >= 0,
               "train.save_every and train.save_every_minutes must be >= 0")
        object.__setattr__(self, "freeze", tuple(self.freeze))
        for part in self.freeze:
            _check(part in FREEZABLE, f"unknown part {part!r} in train.freeze{did_you_mean(part, FREEZABLE)}")
        _check(len(set(self.freeze)) < len(FREEZABLE), "train.freeze names every part: nothing would train")
        _check(not (self.freeze and self.fsdp), "train.freeze trains part of the model in one process "
               "or with DDP: leave train.fsdp off")


@dataclass(frozen=True)
class ObjectivesConfig:
    """[objectives]: the settings of the training objectives other than translation (each is
    trained only when train.objectives names it; polyseq.train.objectives documents them)."""

    monolingual: str = ""  # PREFIX: PREFIX.<lang> text files; "" = the training corpus's sentences
    denoise_ratio: float = 0.3  # share of tokens masked in spans (BART text infilling)
    denoise_lambda: float = 3.0  # mean span length (Poisson)
    denoise_group: int = 2  # consecutive lines per example, whose sentences are permuted
    e2s2_rate: float = 0.15  # share of source tokens corrupted for the encoder to restore
    e2s2_contrastive: float = 1.0  # weight of E2S2's contrastive part beside its restoration
    csr_rate: float = 0.3  # share of lexicon-covered words switched (code-switching restore)
    csr_min_count: int = 3  # sentence pairs a word pair needs to enter the induced lexicon
    claps_imposter: float = 0.1  # CLAPS's small perturbation (a share of each state's norm)
    claps_distant: float = 0.2  # CLAPS's large perturbation (likewise)
    claps_back: float = 0.1  # and its step back towards the target's distribution (likewise)
    translit_source: str = ""  # text in another script for TransliCo, one sentence per line
    translit_lang: str = ""  # its language (one of data.languages)
    temperature: float = 0.1  # of the contrastive losses (E2S2, CLAPS, TransliCo)

    def __post_init__(self) -> None:
        for name in ("denoise_ratio", "e2s2_rate", "csr_rate"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"objectives.{name} must be in [0, 1], got {value}")
        for name in ("denoise_group", "csr_min_count"):
            value = getattr(self, name)
            _check(value >= 1, f"objectives.{name} must be >= 1, got {value}")
        for name in ("e2s2_contrastive", "claps_imposter", "claps_distant", "claps_back"):
            value = getattr(self, name)  # NaN and inf too: the loss would be NaN
            _check(0 <= value < math.inf, f"objectives.{name} must be a finite number >= 0, got {value}")
        for name in ("denoise_lambda", "temperature"):
            value = getattr(self, name)
            _check(0 < value < math.inf, f"objectives.{name} must be a finite number > 0, got {value}")
        _check(bool(self.translit_source) == bool(self.translit_lang),
               "objectives.translit_source and objectives.translit_lang go together")


@dataclass(frozen=True)
class ServeConfig:
    """`polyseq serve`: where it listens, how requests are batched on each model, and the limits
    that keep one client from starving the others."""

    host: str = "127.0.0.1"  # loopback: nothing outside this machine reaches it unless asked
    port: int = 5000
    threads: int = 0  # the model worker's torch threads; 0 = torch's default
    strategy: str = "beam"  # the decoding strategy of LibreTranslate requests
    max_batch_tokens: int = 6000  # a decoding batch's source tokens at most
    max_wait_ms: float = 10.0  # how long a batch waits for more items once it has one
    batching: bool = True  # False: one item per decoding call (for comparison)
    queue_items: int = 2048  # items waiting per model at most; more get 429 and Retry-After
    request_timeout_s: float = 60.0  # a request not answered by then gets 503
    char_limit: int = 5000  # characters per text (each item of a list), as LibreTranslate counts
    batch_limit: int = 128  # items in one list `q`
    alternatives_limit: int = 5
    max_beam_size: int = 16  # beam_size, n_best, groups and num_samples a request may ask for
    max_request_bytes: int = 1 << 20  # a JSON or form body
    max_upload_bytes: int = 1 << 20  # an uploaded file
    file_ttl_s: float = 600.0  # translated files are kept this long for download
    api_keys_file: str = ""  # TOML of keys and their limits (see docs/serve.md); "" = no keys
    require_api_key: bool = False
    requests_per_minute: int = 120  # per client without a key (by address), and keys' default
    chars_per_minute: int = 100_000
    # "src-tgt" -> a glossary file (polyseq.documents.glossary) applied to every request of that direction
    glossaries: dict[str, str] = field(default_factory=dict)
    max_glossary_terms: int = 1000  # terms a request's own `glossary` may carry

    def __post_init__(self) -> None:
        _check(0 < self.port < 65536, "serve.port must be in 1..65535")
        _check(self.threads >= 0, "serve.threads must be >= 0")
        _check(self.max_batch_tokens > 0 and self.queue_items > 0, "serve.max_batch_tokens and "
               "serve.queue_items must be positive")
        _check(self.max_wait_ms >= 0 and self.request_timeout_s > 0, "serve.max_wait_ms must be >= 0 "
               "and serve.request_timeout_s positive")
        _check(min(self.char_limit, self.batch_limit, self.max_request_bytes, self.max_upload_bytes) > 0,
               "serve limits must be positive")
        _check(self.alternatives_limit >= 0 and self.max_glossary_terms >= 0,
               "serve.alternatives_limit and serve.max_glossary_terms must be >= 0")
        _check(self.requests_per_minute > 0 and self.chars_per_minute > 0,
               "serve.requests_per_minute and serve.chars_per_minute must be positive")
        _check(not self.require_api_key or bool(self.api_keys_file),
               "serve.require_api_key needs serve.api_keys_file")
        for direction in self.glossaries:
            _check(re.fullmatch(r"[^-\s]+-[^-\s]+", direction) is not None,
                   f"serve.glossaries: {direction!r} must be a direction such as \"en-de\"")
        _check(self.queue_items >= self.batch_limit, "serve.queue_items must hold a whole list: at least "
               "serve.batch_limit")


def load_serve_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> ServeConfig:
    """The [serve] section of a TOML file (or the defaults), with `serve.key=value` overrides."""
    values: dict[str, Any] = _table(_read_toml(path), "serve", path) if path is not None else {}
    for override in overrides:
        name, eq, value = override.partition("=")
        section, _, key = name.partition(".")
        if not eq or section != "serve" or not key:
            raise ConfigError(f"override {override!r} must look like serve.key=value")
        values[key] = value
    return _build(ServeConfig, values, "serve")


def _read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config {path} is a folder: give the TOML file (for example {path}/config.toml)")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything `polyseq train` needs: one TOML file with [model], [data], [train] and, for
    objectives beside translation, [objectives]."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = ""
    objectives: ObjectivesConfig = field(default_factory=ObjectivesConfig)

    def __post_init__(self) -> None:
        # a run from train.init_from checks the positions of the model it starts from (an imported
        # one brings its own [model]): polyseq.train.initial
        _check(bool(self.train.init_from) or self.data.max_length <= self.model.max_positions,
               f"data.max_length {self.data.max_length} is more than model.max_positions "
               f"{self.model.max_positions}: a training sentence would not fit the model")
        chosen = {name for name, weight in self.train.objectives.items() if weight > 0}
        others = sorted(chosen - {"translation"})
        _check(not others or self.model.actions is Actions.NONE, f"train.objectives {', '.join(others)} "
               "train plain models: an S2A model (model.actions) trains on translation alone")
        _check(not others or not self.train.fsdp, f"train.objectives {', '.join(others)} train with one "
               "process or torchrun's DDP; train.fsdp trains translation alone")
        # DDP needs a gradient for every weight: these leave the decoder's output layer without one
        partial = sorted(chosen & {"e2s2", "claps", "translico"})
        _check(not partial or bool(chosen & {"translation", "denoising", "csr"}),
               f"train.objectives {', '.join(partial)} train part of the model: give translation, "
               "denoising or csr a weight beside them")
        if "translico" in self.train.objectives:
            lang = self.objectives.translit_lang
            _check(bool(lang), "the translico objective needs objectives.translit_source and "
                   "objectives.translit_lang: text in another script and its language")
            _check(lang in self.data.languages, f"objectives.translit_lang {lang!r} must be one of "
                   f"data.languages {list(self.data.languages)}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=_enum_value))

    def to_toml(self) -> str:
        """This config as TOML that `load_config` reads back to an equal config."""
        lines = [f"preset = {json.dumps(self.preset)}"]
        for section, values in self.to_dict().items():
            if isinstance(values, dict):
                lines.append(f"[{section}]")
                lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return json.dumps(value)  # strings, numbers and booleans read the same in TOML


def _enum_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot serialise {value!r}")


def did_you_mean(name: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (choose from {', '.join(choices)})"


def coerce_value(value: Any, annotation: Any, where: str) -> Any:
    """Turn a TOML value, a command-line string or a JSON value into the field's declared type; a
    ConfigError names `where` when it cannot be."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            options = [m.value for m in annotation]
            raise ConfigError(f"{where}: {value!r} is not one of {options}") from None
    if origin is dict:  # a TOML table, or "name:value,name:value" on the command line
        if isinstance(value, str):
            items = [item.partition(":") for item in value.split(",") if item]
            if any(not sep for _, sep, _ in items):
                raise ConfigError(f"{where}: {value!r} must look like name:value,name:value")
            names = [key.strip() for key, _, _ in items]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:  # else the last would silently win
                raise ConfigError(f"{where}: {', '.join(repeated)} given more than once in {value!r}")
            value = {key.strip(): number for key, _, number in items}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {value!r} is not a table")
        inner = typing.get_args(annotation)[1]
        return {str(k): coerce_value(v, inner, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {value!r} is not a list")
        inner = typing.get_args(annotation)[0]
        return tuple(coerce_value(v, inner, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    try:
        if annotation is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if annotation in (int, float, str, bool):
            # int(True), bool(1.5), str([1]) and float(None) would pass, or fail without naming the field
            if not isinstance(value, (str, int, float)) or (annotation is bool and value not in (0, 1)):
                raise ValueError(value)
            if isinstance(value, bool) and annotation in (int, float):
                raise ValueError(value)
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return annotation(value)
    except (ValueError, OverflowError):
        raise ConfigError(f"{where}: {value!r} is not a valid {annotation.__name__}") from None
    return value


def _table(raw: dict[str, Any], section: str, path: str | Path | None) -> dict[str, Any]:
    """A section of a TOML file as a dict: `model = 3` is not the [model] table."""
    value = raw.get(section, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {section} must be a [{section}] table of settings, not {value!r}")
    return dict(value)


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key}{did_you_mean(key, sorted(known))}")
    coerced = {k: coerce_value(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    return cls(**coerced)


SECTIONS = ("model", "data", "train", "objectives")


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> ExperimentConfig:
    """Read a TOML experiment file (or start from defaults) and apply `section.key=value` overrides.

    A top-level `preset = "small"` fills [model] from a named preset before its own keys apply.
    """
    raw: dict[str, Any] = _read_toml(path) if path is not None else {}
    sections: dict[str, dict[str, Any]] = {name: _table(raw, name, path) for name in SECTIONS}
    preset = raw.get("preset", "")
    if not isinstance(preset, str):
        raise ConfigError(f"{path}: preset must be a name such as \"small\", not {preset!r}")
    for key in raw:
        if key not in (*SECTIONS, "preset", "serve"):  # [serve] is polyseq serve's
            raise ConfigError(f"unknown section {key!r}{did_you_mean(key, SECTIONS)}")
    for override in overrides:
        name, eq, value = override.partition("=")
        if not eq or "." not in name:
            if name == "preset" and eq:
                preset = value
                continue
            raise ConfigError(f"override {override!r} must look like section.key=value")
        section, _, key = name.partition(".")
        if section not in sections:
            raise ConfigError(f"override {override!r}: unknown section {section!r}")
        sections[section][key] = value
    model_values = sections["model"]
    if preset:
        if preset not in MODEL_PRESETS:
            raise ConfigError(f"unknown model preset {preset!r}{did_you_mean(preset, MODEL_PRESETS)}")
        model_values = {**MODEL_PRESETS[preset], **model_values}
    return ExperimentConfig(
        model=_build(ModelConfig, model_values, "model"),
        data=_build(DataConfig, sections["data"], "data"),
        train=_build(TrainConfig, sections["train"], "train"),
        preset=preset,
        objectives=_build(ObjectivesConfig, sections["objectives"], "objectives"),
    )


def model_config_from_dict(values: dict[str, Any]) -> ModelConfig:
    return _build(ModelConfig, values, "model")


__all__ = [
    "Actions",
    "Activation",
    "ConfigError",
    "DataConfig",
    "EmbeddingNorm",
    "EmbeddingScale",
    "ExperimentConfig",
    "LanguageEmbedding",
    "ModelConfig",
    "NormPlacement",
    "ObjectivesConfig",
    "OutputBias",
    "Positions",
    "ServeConfig",
    "TrainConfig",
    "load_config",
    "load_serve_config",
    "model_preset",
    "replace",
]
