"""Translator: a loaded model that turns texts into texts.

The one object that the CLI, the server, documents and evaluation use. Texts go through one path:
split into pieces that fit the model (`polyseq.data.pieces`), framed for the direction by the
tokenizer (`polyseq.text.framing`), grouped into token-budget batches by length
(`polyseq.data.batching.length_batches`), decoded by a strategy chosen by name, and joined back:
an empty line stays empty, a line too long for the model is split and joined, never cut.

Many-to-many models add three options to every translation: `pivot` (two passes through another
language), `restrict_vocabulary` (only the target language's tokens, as learned in training), and
`embed` (mean-pooled encoder states, for cross-lingual alignment; docs/multilingual.md).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from polyseq.config import Actions
from polyseq.data.batching import length_batches, pad_rows
from polyseq.data.pieces import Pieces, split_into_pieces
from polyseq.decoding import generate, get_strategy, make_config
from polyseq.decoding.core import DecodeInput, DecodeStats, Hypothesis, max_positions
from polyseq.decoding.rerank import Candidate, Scorer
from polyseq.decoding.rerank import rerank as rerank_candidates
from polyseq.decoding.speculative import load_draft_model
from polyseq.devices import usable_device
from polyseq.files import InputError, atomic_file, read_text_lines
from polyseq.model.actions import action_target
from polyseq.model.checkpoint import load_metadata, load_model
from polyseq.model.ensemble import Ensemble
from polyseq.model.pooling import pooled_states
from polyseq.model.transformer import Seq2Seq, sequence_log_probs
from polyseq.text.framing import Framing, TextTokenizer
from polyseq.text.tokenizer import Tokenizer, TokenizerError, UnknownLanguageError
from polyseq.text.vocabularies import DEFAULT_MIN_SHARE, LanguageVocabularies

if TYPE_CHECKING:
    from polyseq.documents import DocumentResult
    from polyseq.text.langid import Detection, LanguageDetector

AUTO = "auto"  # as src_lang: identify each text's language (polyseq.text.langid)
# translate_detailed's own options, which pass through **settings like the strategy's
_TRANSLATION_OPTIONS = frozenset({"pivot", "restrict_vocabulary", "vocabulary_min_share"})

__all__ = ["CorpusReport", "InputError", "TranslationCandidate", "TranslationOutput", "Translator"]


@dataclass(frozen=True)
class TranslationCandidate:
    text: str  # with the target prefix, when one was given
    hypothesis: Hypothesis


@dataclass
class TranslationOutput:
    texts: list[str]
    # per input text, best first; for a text too long for the model (see split_texts), candidate k
    # joins its pieces' k-th candidates, as its translation joins their best
    candidates: list[list[TranslationCandidate]]
    stats: DecodeStats = field(default_factory=DecodeStats)
    split_texts: int = 0  # inputs too long for the model, translated in pieces
    detected: list[Detection] | None = None  # with src_lang="auto": each input's language

    @property
    def hypotheses(self) -> list[list[Hypothesis]]:
        return [[candidate.hypothesis for candidate in group] for group in self.candidates]


@dataclass(frozen=True)
class CorpusReport:
    lines: int
    empty_lines: int
    split_lines: int  # lines too long for the model, translated in pieces
    stats: DecodeStats


class Translator:
    """A model and its tokenizer. It decodes with its own copy of `model` in evaluation mode: the
    caller's model is left as it is, and what is done to it later (more training) does not reach
    the Translator. With `own`, it keeps `model` itself (one nobody else holds, just loaded)."""

    def __init__(self, model: Seq2Seq | Ensemble, tokenizer: TextTokenizer,
                 metadata: dict[str, Any] | None = None, *, max_batch_tokens: int = 6000,
                 max_batch_sentences: int = 64, own: bool = False):
        self.model = (model if own else copy.deepcopy(model)).eval()
        self.tokenizer = tokenizer
        self.metadata = metadata or {}
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_sentences = max_batch_sentences
        self.device = next(model.parameters()).device
        # the source carries the target tag and EOS; the rest is the room for text
        self.max_source_tokens = model.config.max_positions - 2
        self._draft_models: dict[str, Any] = {}  # a draft model's directory -> the model, loaded once
        self._detector: LanguageDetector | None = None  # made at the first src_lang="auto"
        self.directory: Path | None = None  # the model directory, when loaded from one
        # target tokens per language (restrict_vocabulary); read from `directory` at first use
        self.vocabularies: LanguageVocabularies | None = None
        self._allowed: dict[tuple[str, float], tuple[int, ...]] = {}

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", **options: Any) -> Translator:
        """The model directory at `path` (one that training, `polyseq average` or `polyseq convert`
        wrote; nothing is downloaded) on `device` ("cpu", "cuda", "cuda:1"). `options` are
        `max_batch_tokens` (6000) and `max_batch_sentences` (64), a decoding batch's size at most."""
        path = Path(path)
        model = load_model(path, device=usable_device(device))
        tokenizer = load_text_tokenizer(path)
        # polyseq's own tokenizer has exactly the model's vocabulary; an imported one may have
        # fewer pieces (checkpoints pad their embeddings), never more
        own = isinstance(tokenizer, Tokenizer)
        size = model.config.vocab_size
        if tokenizer.vocab_size > size or (own and tokenizer.vocab_size != size):
            raise InputError(f"{path}: the tokenizer has {tokenizer.vocab_size} pieces but config.json "
                             f"says vocab_size={model.config.vocab_size}")
        translator = cls(model, tokenizer, load_metadata(path), own=True, **options)
        translator.directory = path
        return translator

    @classmethod
    def load_ensemble(cls, paths: Sequence[str | Path], weights: Sequence[float] | None = None,
                      device: str | torch.device = "cpu", **options: Any) -> Translator:
        """The model directories `paths` decoding as one (`polyseq.model.ensemble`): each step's
        distribution is the (weighted) mean of theirs. They must share the tokenizer, file for
        file; their sizes may differ. The first one's metadata (vocabularies) serves them all."""
        translators = [cls.load(path, device=device) for path in paths]
        if not translators:
            raise InputError("an ensemble needs at least one model directory")
        first = Path(paths[0])
        for path in paths[1:]:
            changed = _tokenizer_difference(first, Path(path))
            if changed:
                raise InputError(f"{first} and {path} have different tokenizers ({changed}): an ensemble's "
                                 "models must read and write the same token ids")
        ensemble = Ensemble([cast(Seq2Seq, t.model) for t in translators], weights)
        translator = cls(ensemble, translators[0].tokenizer, translators[0].metadata, own=True, **options)
        translator.directory = first
        return translator

    @property
    def languages(self) -> tuple[str, ...]:
        return self.tokenizer.languages

    def translate(self, texts: Sequence[str], src_lang: str | None = None, tgt_lang: str = "",
                  strategy: str = "beam", prefix: str | Sequence[str] | None = None,
                  **settings: Any) -> list[str]:
        """Translate each text; the output list has one string per input, in order: an empty text
        stays empty, and one longer than the model reads is translated in pieces and joined.
        `strategy` is a decoding strategy by name (`polyseq.strategy_names()`; beam search, beam 5,
        by default) and `settings` are its settings (`beam_size=4`, `max_len_b=50`; a misspelt one
        is a ConfigError naming the one it probably meant). Texts that are not strings and unknown
        languages raise an InputError or UnknownLanguageError (all ValueErrors). `src_lang="auto"`
        identifies each text's language. A `prefix` (one for all texts, or one per text) is the
        forced start of each output, which keeps it. `pivot="en"` translates through English in
        two passes; `restrict_vocabulary=True` lets each pass produce only tokens that its target
        language's training targets use (at least `vocabulary_min_share` of their tokens)."""
        return self.translate_detailed(texts, src_lang, tgt_lang, strategy, prefix=prefix, **settings).texts

    def translate_detailed(self, texts: Sequence[str], src_lang: str | None = None,
                           tgt_lang: str = "", strategy: str = "beam", rerank: Scorer | None = None,
                           prefix: str | Sequence[str] | None = None, *, pivot: str | None = None,
                           restrict_vocabulary: bool = False,
                           vocabulary_min_share: float = DEFAULT_MIN_SHARE,
                           **settings: Any) -> TranslationOutput:
        """Like translate, with the n-best candidates and decoding statistics. With `rerank`,
        each input's n-best list is reordered by that scorer (see decoding/rerank.py) and the
        best candidate after reranking is the translation."""
        texts = _text_list(texts, "translate", "texts")
        prefix = _prefix_list(prefix, len(texts))
        if pivot is not None:
            options = dict(restrict_vocabulary=restrict_vocabulary, vocabulary_min_share=vocabulary_min_share)
            return self._translate_pivot(texts, src_lang, pivot, tgt_lang, strategy, rerank, prefix,
                                         {**options, **settings})
        if restrict_vocabulary:
            settings = {**settings, "allowed_tokens": self.target_vocabulary(tgt_lang, strategy,
                                                                             vocabulary_min_share)}
        if src_lang == AUTO:
            return self._translate_detected(texts, tgt_lang, strategy, rerank, prefix, settings)
        framing = self._framing(src_lang, tgt_lang)
        config = make_config(strategy, self._resolve_models(settings))
        pieces = split_into_pieces(texts, self.tokenizer.encode, self.max_source_tokens)
        prefixes = self._prefixes(prefix, pieces, framing)
        output = TranslationOutput([], [[] for _ in texts], split_texts=pieces.split_inputs)
        piece_candidates: list[list[TranslationCandidate]] = [[] for _ in pieces.ids]
        for batch in self._batches(pieces, prefixes, framing):
            sources = [pieces.ids[i] for i in batch]
            forced = [[*framing.decoder_prefix, *prefixes[i]] for i in batch]
            inputs = self._inputs(sources, forced, framing, user_prefix_length=len(prefixes[batch[0]]))
            result = generate(self.model, inputs, strategy, config)
            output.stats.add(result.stats)
            hypotheses = result.hypotheses
            if rerank is not None:
                hypotheses = self._rerank(sources, [prefixes[i] for i in batch], hypotheses, rerank)
            for index, group in zip(batch, hypotheses, strict=True):
                piece_candidates[index] = [TranslationCandidate(
                    self.tokenizer.decode([*prefixes[index], *h.tokens]), h) for h in group]
        output.candidates = [_joined(groups) for groups in pieces.by_input(piece_candidates)]
        output.texts = [candidates[0].text if candidates else "" for candidates in output.candidates]
        return output

    def _translate_detected(self, texts: Sequence[str], tgt_lang: str, strategy: str,
                            rerank: Scorer | None, prefix: str | Sequence[str] | None,
                            settings: dict[str, Any]) -> TranslationOutput:
        """Each text from the language identified for it (among this model's), in one call per
        language."""
        from polyseq.text.langid import LanguageDetector

        # an unknown target or a bad setting fails before identification (and for no texts at all)
        if tgt_lang not in self.languages:
            raise InputError(f"unknown target language {tgt_lang!r}; this model knows "
                             f"{', '.join(self.languages)}")
        make_config(strategy, self._resolve_models(settings))
        if self._detector is None:
            self._detector = LanguageDetector(self.languages)
        detected = self._detector.detect_each(texts)
        output = TranslationOutput([""] * len(texts), [[] for _ in texts], detected=detected)
        prefixes = [prefix] * len(texts) if prefix is None or isinstance(prefix, str) else list(prefix)
        for language in sorted({d.language for d in detected}):
            chosen = [i for i, d in enumerate(detected) if d.language == language]
            part = self.translate_detailed([texts[i] for i in chosen], language, tgt_lang, strategy,
                                           rerank, [prefixes[i] or "" for i in chosen] if prefix else None,
                                           **settings)
            output.stats.add(part.stats)
            output.split_texts += part.split_texts
            for index, text, candidates in zip(chosen, part.texts, part.candidates, strict=True):
                output.texts[index], output.candidates[index] = text, candidates
        return output

    def _translate_pivot(self, texts: Sequence[str], src_lang: str | None, pivot: str, tgt_lang: str,
                         strategy: str, rerank: Scorer | None, prefix: str | Sequence[str] | None,
                         settings: dict[str, Any]) -> TranslationOutput:
        """src -> pivot, then pivot -> tgt (with the reranker and prefix): two plain translations."""
        try:
            self.tokenizer.framing(None, pivot)
        except TokenizerError as error:
            raise InputError(f"pivot language {pivot!r}: {error}") from None
        for name, lang in (("source", src_lang), ("target", tgt_lang)):
            if lang == pivot:
                raise InputError(f"the pivot {pivot!r} is the {name} language: translate without a pivot")
        first = self.translate_detailed(texts, src_lang, pivot, strategy, **settings)
        output = self.translate_detailed(first.texts, pivot, tgt_lang, strategy, rerank, prefix, **settings)
        output.stats.add(first.stats)
        output.split_texts = max(output.split_texts, first.split_texts)
        output.detected = first.detected
        return output

    def target_vocabulary(self, tgt_lang: str, strategy: str = "greedy",
                          min_share: float = DEFAULT_MIN_SHARE) -> tuple[int, ...]:
        """The token ids that make up at least `min_share` of `tgt_lang`'s training targets (and
        EOS), from the model directory's vocabularies.json: what `restrict_vocabulary` allows."""
        fields = {item.name for item in dataclasses.fields(get_strategy(strategy).config_type)}
        if "processing" not in fields:
            raise InputError(f"restrict_vocabulary needs a strategy that processes logits (greedy, beam, "
                             f"diverse-beam, sampling), not {strategy!r}")
        self._framing(None, tgt_lang)  # an unknown language is named as such
        if self.vocabularies is None:
            if self.directory is None:
                raise InputError("restrict_vocabulary needs the target vocabularies: load the model with "
                                 "Translator.load(DIR) or set Translator.vocabularies")
            self.vocabularies = LanguageVocabularies.load(self.directory)
        key = (tgt_lang, min_share)
        if key not in self._allowed:
            config = self.model.config
            # an S2A model deletes a source token by emitting <skip>, which no plain target holds
            skip = [config.skip_id] if config.actions is not Actions.NONE else []
            always = [self.tokenizer.eos_id, *skip]
            self._allowed[key] = self.vocabularies.allowed(tgt_lang, min_share, always)
        return self._allowed[key]

    def embed(self, texts: Sequence[str], lang: str, tgt_lang: str | None = None) -> torch.Tensor:
        """Sentence embeddings (N, D): the encoder's output states averaged over each text's own
        tokens (not the language tag, EOS or padding). The encoder reads every text as if to
        translate it into `tgt_lang` (default: the model's first language it may), so that texts of all
        languages are embedded under the same tag and compare."""
        return self.embed_layers(texts, lang, tgt_lang)[-1]

    def embed_layers(self, texts: Sequence[str], lang: str,
                     tgt_lang: str | None = None) -> list[torch.Tensor]:
        """`embed` at every encoder layer: one (N, D) per layer, the last being `embed`'s (the
        encoder's output, after its final norm)."""
        texts = _text_list(texts, "embed", "texts")
        framing = self._framing(lang, tgt_lang or self._embedding_target(lang))
        rows, spans = [], []
        for index, text in enumerate(texts):
            ids = self.tokenizer.encode(text)
            if not ids:
                raise InputError(f"text {index} is empty: an empty text has no embedding")
            if len(framing.source(ids)) > self.model.config.max_positions:
                raise InputError(f"text {index} has {len(ids)} tokens, more than the model reads at "
                                 f"once ({self.max_source_tokens}); split it into sentences")
            head = len(framing.source_head)
            rows.append(framing.source(ids))
            spans.append((head, head + len(ids)))
        batches = length_batches([len(row) for row in rows], self.max_batch_tokens, self.max_batch_sentences)
        if not isinstance(self.model, Seq2Seq):
            raise InputError("an ensemble has no one encoder to embed with: load one of its models")
        return pooled_states(self.model, rows, spans, batches, self.tokenizer.pad_id)

    def correct(self, texts: Sequence[str], lang: str | None = None, strategy: str = "aggressive",
                **settings: Any) -> list[str]:
        """Correct each text with this same-language model (a corrector); `lang` may be left out
        when the model knows one language. Aggressive decoding by default: greedy's output."""
        lang = self.correction_language(lang)
        return self.translate(texts, lang, lang, strategy, **settings)

    def correction_language(self, lang: str | None) -> str:
        """`lang`, or the model's language when it knows only one."""
        if lang is not None:
            return lang
        if len(self.languages) != 1:
            raise InputError(f"this model knows {', '.join(self.languages)}: say which language to "
                             "correct (--lang)")
        return self.languages[0]

    def for_segments(self, src_lang: str | None, tgt_lang: str, strategy: str = "beam",
                     **settings: Any) -> Callable[[list[str]], list[str]]:
        """This Translator as a `list[str] -> list[str]` function, for documents and batchers."""
        return lambda texts: self.translate(texts, src_lang, tgt_lang, strategy, **settings)

    def _embedding_target(self, lang: str) -> str:
        """The first of the model's languages that `lang` may be read into: every language for
        polyseq's models, the one target for an imported bilingual model."""
        for tgt in self.languages:
            try:
                self.tokenizer.framing(lang, tgt)
            except UnknownLanguageError:
                continue
            return tgt
        return self.languages[0]  # framing then says what is wrong with `lang`

    def _framing(self, src_lang: str | None, tgt_lang: str) -> Framing:
        if not tgt_lang:
            raise InputError(f"tgt_lang is required (this model knows {', '.join(self.languages)})")
        return self.tokenizer.framing(src_lang, tgt_lang)  # checks both languages

    def _prefixes(self, prefix: str | Sequence[str] | None, pieces: Pieces,
                  framing: Framing) -> list[list[int]]:
        """Each piece's target prefix ids: its input's prefix on the first piece, none after."""
        if prefix is None:
            return [[] for _ in pieces.ids]
        if isinstance(prefix, str):  # checked even with no texts (the CLI's check before shards)
            ids = [self._prefix_ids("prefix", prefix, framing)] * pieces.inputs
        elif len(prefix) != pieces.inputs:
            raise InputError(f"{len(prefix)} prefixes for {pieces.inputs} texts: give one, or one per text")
        else:
            ids = [self._prefix_ids(f"prefix[{i}]", text, framing) for i, text in enumerate(prefix)]
        firsts = pieces.firsts()
        return [ids[owner] if first else [] for owner, first in zip(pieces.owners, firsts, strict=True)]

    def _prefix_ids(self, name: str, text: str, framing: Framing) -> list[int]:
        """A prefix's ids; an InputError naming it where it leaves the decoder no position (the
        model would refuse the whole sequence without saying that the prefix made it long)."""
        ids = self.tokenizer.encode_target(text) if text else []
        positions, start = max_positions(self.model), len(framing.decoder_prefix)
        if len(ids) > positions - start:
            shown = text if len(text) <= 30 else f"{text[:27]}..."
            raise InputError(f"{name} {shown!r} is {len(ids)} tokens, longer than the model takes: its "
                             f"max_positions={positions} less the {start} decoder start "
                             f"token{'' if start == 1 else 's'} leave {positions - start}; shorten it")
        return ids

    def _batches(self, pieces: Pieces, prefixes: list[list[int]], framing: Framing) -> Iterator[list[int]]:
        """Indices of pieces in token-budget batches of similar length; pieces whose prefixes
        differ in length go to different batches (a batch forces one prefix length)."""
        groups: dict[int, list[int]] = {}
        for index, ids in enumerate(prefixes):
            groups.setdefault(len(ids), []).append(index)
        for members in groups.values():
            lengths = [len(framing.source(pieces.ids[i])) for i in members]
            for batch in length_batches(lengths, self.max_batch_tokens, self.max_batch_sentences):
                yield [members[i] for i in batch]

    def _inputs(self, sources: list[list[int]], forced: list[list[int]], framing: Framing,
                user_prefix_length: int = 0) -> DecodeInput:
        """`forced`: each row's decoder prefix, ending with its user prefix of `user_prefix_length`
        tokens (a batch's user prefixes are of one length, see _batches)."""
        eos, pad = self.tokenizer.eos_id, self.tokenizer.pad_id
        src = pad_rows([framing.source(ids) for ids in sources], pad)
        prefix = torch.tensor(forced, dtype=torch.long)
        return DecodeInput(src.to(self.device), prefix.to(self.device), eos_id=eos, pad_id=pad,
                           user_prefix_length=user_prefix_length)

    def _resolve_models(self, settings: dict[str, Any]) -> dict[str, Any]:
        """A draft model given as a directory is loaded once and kept."""
        draft = settings.get("draft_model")
        if isinstance(draft, (str, Path)):
            key = str(Path(draft).resolve())
            if key not in self._draft_models:
                self._draft_models[key] = load_draft_model(draft, device=self.device)
            settings = {**settings, "draft_model": self._draft_models[key]}
        return settings

    def _rerank(self, pieces: list[list[int]], prefixes: list[list[int]], hypotheses: list[list[Hypothesis]],
                scorer: Scorer) -> list[list[Hypothesis]]:
        """Each group reordered by `scorer`, which reads the whole translation, its prefix too."""
        sources = [self.tokenizer.decode(piece) for piece in pieces]
        candidates = [[Candidate(self.tokenizer.decode([*prefix, *h.tokens]), h.tokens, h.log_prob)
                       for h in group] for prefix, group in zip(prefixes, hypotheses, strict=True)]
        by_tokens = [{h.tokens: h for h in group} for group in hypotheses]
        ordered = rerank_candidates(sources, candidates, scorer)
        return [[lookup[c.tokens] for c in group] for lookup, group in zip(by_tokens, ordered, strict=True)]

    def translate_document(self, text: str, format: str, src_lang: str | None = None,
                           tgt_lang: str = "", strategy: str = "beam", **options: Any) -> DocumentResult:
        """Translate a document's prose (see polyseq.documents); code, placeholders and markup
        come back byte for byte."""
        from polyseq.documents import translate_document

        return translate_document(text, format, self.for_segments(src_lang, tgt_lang, strategy),
                                  src_lang=src_lang, tgt_lang=tgt_lang, **options)

    def log_probs(self, sources: Sequence[str], targets: Sequence[str], tgt_lang: str,
                  src_lang: str | None = None) -> list[float]:
        """Log-probability of each target given its source (sum over tokens, EOS included).
        `src_lang` is needed by models whose source names its language (M2M-100, NLLB, mBART).
        A pair longer than the model reads is an error (a score of a piece would mislead)."""
        sources = _text_list(sources, "log_probs", "sources")
        targets = _text_list(targets, "log_probs", "targets")
        if len(sources) != len(targets):
            raise InputError(f"{len(sources)} sources but {len(targets)} targets")
        framing = self._framing(src_lang, tgt_lang)
        src_rows = [framing.source(self.tokenizer.encode(text)) for text in sources]
        tgt_rows = [framing.target(self.tokenizer.encode_target(text)) for text in targets]
        most = self.model.config.max_positions
        for index, (src_row, tgt_row) in enumerate(zip(src_rows, tgt_rows, strict=True)):
            # the decoder reads the target without its last token
            for side, length in (("source", len(src_row)), ("target", len(tgt_row) - 1)):
                if length > most:
                    raise InputError(f"pair {index}: the {side} takes {length} positions, more than the "
                                     f"model reads ({most}); score shorter texts")
        if self.model.config.actions is not Actions.NONE:  # an S2A model scores action sequences
            skip = self.model.config.skip_id
            tgt_rows = [action_target(s, t, skip) for s, t in zip(src_rows, tgt_rows, strict=True)]
        scores = [0.0] * len(sources)
        lengths = [max(len(s), len(t)) for s, t in zip(src_rows, tgt_rows, strict=True)]
        pad = self.tokenizer.pad_id
        for batch in length_batches(lengths, self.max_batch_tokens, self.max_batch_sentences):
            src = pad_rows([src_rows[i] for i in batch], pad)
            tgt = pad_rows([tgt_rows[i] for i in batch], pad)
            with torch.inference_mode():
                logits = self.model(src.to(self.device), tgt[:, :-1].to(self.device))
            for index, value in zip(batch, sequence_log_probs(logits, tgt[:, 1:], pad_id=pad).tolist(),
                                    strict=True):
                scores[index] = value
        return scores

    def score(self, *args: Any, **kwargs: Any) -> list[float]:
        """Deprecated: `log_probs` (the old name was also polyseq.score's, which is BLEU)."""
        warnings.warn("Translator.score is deprecated; use Translator.log_probs", DeprecationWarning,
                      stacklevel=2)
        return self.log_probs(*args, **kwargs)

    def translate_chunks(self, lines: Iterable[str], src_lang: str | None, tgt_lang: str,
                         strategy: str = "beam", chunk_lines: int = 512, rerank: Scorer | None = None,
                         prefix: str | None = None, **settings: Any) -> Iterator[TranslationOutput]:
        """`lines` (without newlines) translated `chunk_lines` at a time, one TranslationOutput per
        chunk, with one text per line (newlines in a translation become spaces)."""
        chunk: list[str] = []
        for line in itertools.chain(lines, [None]):
            if line is not None:
                chunk.append(line)
            if chunk and (line is None or len(chunk) == chunk_lines):
                output = self.translate_detailed(chunk, src_lang, tgt_lang, strategy, rerank, prefix,
                                                 **settings)
                output.texts = [text.replace("\n", " ") for text in output.texts]
                yield output
                chunk = []

    def translate_lines(self, lines: Iterable[str], src_lang: str | None, tgt_lang: str,
                        strategy: str = "beam", chunk_lines: int = 512, rerank: Scorer | None = None,
                        stats: DecodeStats | None = None, **settings: Any) -> Iterator[str]:
        """Stream translations of `lines` (without newlines); decoding statistics are added to
        `stats` when given."""
        for output in self.translate_chunks(lines, src_lang, tgt_lang, strategy, chunk_lines, rerank,
                                            **settings):
            if stats is not None:
                stats.add(output.stats)
            yield from output.texts

    def translate_corpus(self, input_path: str | Path, output_path: str | Path, src_lang: str | None,
                         tgt_lang: str, strategy: str = "beam", chunk_lines: int = 512,
                         rerank: Scorer | None = None, **settings: Any) -> CorpusReport:
        """Translate a text file line by line into `output_path`, written atomically; the output
        has exactly as many lines as the input."""
        input_path, output_path = Path(input_path), Path(output_path)
        if output_path.resolve() == input_path.resolve():
            raise InputError(f"output {output_path} would overwrite the input; choose another path")
        lines = read_text_lines(input_path)
        strategy_only = {k: v for k, v in settings.items() if k not in _TRANSLATION_OPTIONS}
        make_config(strategy, self._resolve_models(strategy_only))  # bad settings fail before any work
        stats, split = DecodeStats(), 0
        with atomic_file(output_path) as handle:
            for output in self.translate_chunks(lines, src_lang, tgt_lang, strategy, chunk_lines, rerank,
                                                **settings):
                stats.add(output.stats)
                split += output.split_texts
                handle.writelines(text + "\n" for text in output.texts)
        return CorpusReport(len(lines), sum(not t.strip() for t in lines), split, stats)

    def translate_file(self, *args: Any, **kwargs: Any) -> CorpusReport:
        """Deprecated: `translate_corpus` (the old name was also polyseq.translate_file's, which
        translates a document)."""
        warnings.warn("Translator.translate_file is deprecated; use Translator.translate_corpus",
                      DeprecationWarning, stacklevel=2)
        return self.translate_corpus(*args, **kwargs)


def _text_list(texts: Iterable[str], method: str, name: str) -> list[str]:
    """`texts` as a list of strings (any iterable of them), or an InputError that names the item."""
    if isinstance(texts, (str, bytes)):
        raise InputError(f"{method} takes a list of texts as {name}, not a single {type(texts).__name__}")
    try:
        items = list(texts)
    except TypeError:
        raise InputError(f"{method} takes a list of texts as {name}, not {type(texts).__name__}") from None
    for index, text in enumerate(items):
        if not isinstance(text, str):
            hint = ": decode it first (UTF-8)" if isinstance(text, (bytes, bytearray)) else ""
            raise InputError(f"{name}[{index}] is {type(text).__name__}, not a string{hint}")
    return items


def _prefix_list(prefix: str | Sequence[str] | None, count: int) -> str | list[str] | None:
    """`prefix` as one string for every text or one per text (None or "" for none), checked."""
    if prefix is None or isinstance(prefix, str):
        return prefix
    if isinstance(prefix, (bytes, bytearray)) or not isinstance(prefix, Iterable):
        raise InputError(f"prefix must be a string, or one string per text, not {type(prefix).__name__}")
    items = list(prefix)
    for index, item in enumerate(items):
        if item is not None and not isinstance(item, str):
            raise InputError(f"prefix[{index}] is {type(item).__name__}, not a string")
    if len(items) != count:
        raise InputError(f"{len(items)} prefixes for {count} texts: give one, or one per text")
    return [item or "" for item in items]


def load_text_tokenizer(directory: str | Path) -> TextTokenizer:
    """A model directory's tokenizer: polyseq's own, or an imported family's (only then is the
    interop package loaded)."""
    directory = Path(directory)
    info = load_metadata(directory).get("tokenizer") or {}
    if info.get("kind", "polyseq") == "polyseq":
        return Tokenizer.load(directory)
    from polyseq.interop.tokenizers import load_tokenizer as load_imported

    return load_imported(directory)


def _joined(pieces: list[list[TranslationCandidate]]) -> list[TranslationCandidate]:
    """A text's candidates from its pieces' (each best first): one piece's as they are; for several,
    candidate k joins the pieces' k-th texts and tokens and sums their log-probabilities and scores."""
    if len(pieces) <= 1:
        return pieces[0] if pieces else []
    return [TranslationCandidate(" ".join(c.text for c in kth),
                                 Hypothesis.joined([c.hypothesis for c in kth]))
            for kth in zip(*pieces, strict=False)]  # as many as its shortest list (diverse beam dedupes)


def _tokenizer_difference(first: Path, other: Path) -> str:
    """The tokenizer files that differ between two model directories ("" when none does)."""
    from polyseq.model.average import tokenizer_files  # the files besides the weights and settings

    names, theirs = tokenizer_files(first), tokenizer_files(other)
    changed = sorted(set(names) ^ set(theirs)) or [
        name for name in names if (first / name).read_bytes() != (other / name).read_bytes()]
    return ", ".join(changed)

