"""Translator: a loaded model directory that translates text, files and scores pairs.

The one object that the CLI, the server and evaluation use. It owns tokenization, batching by
token budget, the choice of strategy by name, and the rules that keep a file's lines intact: an
empty line stays empty, a line too long for the model is split into pieces and joined, never cut.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polyseq.decoding.core import DecodeInput, DecodeStats, Hypothesis, decode, make_config, pad_rows
from polyseq.decoding.rerank import Candidate, Scorer
from polyseq.decoding.rerank import rerank as rerank_candidates
from polyseq.decoding.speculative import load_draft_model
from polyseq.devices import usable_device
from polyseq.interop.tokenizers import Framing, ImportedTokenizer, framing_for, load_tokenizer, target_ids
from polyseq.model.checkpoint import load_metadata, load_model
from polyseq.model.layout import for_decoding
from polyseq.model.transformer import Seq2Seq
from polyseq.text.tokenizer import Tokenizer

if TYPE_CHECKING:
    from polyseq.documents import DocumentResult

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


class InputError(ValueError):
    """User input that cannot be translated as given (the message says where and why)."""


@dataclass
class TranslationOutput:
    texts: list[str]
    hypotheses: list[list[Hypothesis]]  # per input text: n-best of its first piece
    stats: DecodeStats = field(default_factory=DecodeStats)
    split_texts: int = 0  # inputs too long for the model, translated in pieces


@dataclass(frozen=True)
class FileReport:
    lines: int
    empty_lines: int
    split_lines: int  # lines too long for the model, translated in pieces
    stats: DecodeStats


class Translator:
    def __init__(self, model: Seq2Seq, tokenizer: Tokenizer | ImportedTokenizer,
                 metadata: dict[str, Any] | None = None, *, max_batch_tokens: int = 6000,
                 max_batch_sentences: int = 64):
        self.model = for_decoding(model.eval())
        self.tokenizer = tokenizer
        self.metadata = metadata or {}
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_sentences = max_batch_sentences
        self.device = next(model.parameters()).device
        # the source carries the target tag and EOS; the rest is the room for text
        self.max_source_tokens = model.config.max_positions - 2
        self._draft_models: dict[str, Seq2Seq] = {}

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", **options: Any) -> Translator:
        path = Path(path)
        model = load_model(path, device=usable_device(device))
        tokenizer = load_tokenizer(path)  # polyseq's own, or an imported family's (interop)
        if isinstance(tokenizer, Tokenizer) and tokenizer.vocab_size != model.config.vocab_size:
            raise InputError(
                f"{path}: tokenizer.model has {tokenizer.vocab_size} pieces but config.json says "
                f"vocab_size={model.config.vocab_size}"
            )
        return cls(model, tokenizer, load_metadata(path), **options)

    @property
    def languages(self) -> tuple[str, ...]:
        return self.tokenizer.languages

    def translate(self, texts: Sequence[str], src_lang: str | None = None, tgt_lang: str = "",
                  strategy: str = "beam", **settings: Any) -> list[str]:
        """Translate each text; the output list has one string per input, in order."""
        return self.translate_detailed(texts, src_lang, tgt_lang, strategy, **settings).texts

    def translate_detailed(self, texts: Sequence[str], src_lang: str | None = None,
                           tgt_lang: str = "", strategy: str = "beam", rerank: Scorer | None = None,
                           **settings: Any) -> TranslationOutput:
        """Like translate, with the n-best hypotheses and decoding statistics. With `rerank`,
        each input's n-best list is reordered by that scorer (see decoding/rerank.py) and the
        best candidate after reranking is the translation."""
        if isinstance(texts, str):
            raise InputError("translate takes a list of texts, not a single string")
        if not tgt_lang:
            raise InputError(f"tgt_lang is required (this model knows {', '.join(self.languages)})")
        framing = framing_for(self.tokenizer, src_lang, tgt_lang)  # checks both languages
        config = make_config(strategy, self._resolve_models(settings))
        pieces, owners = self._pieces(texts)
        output = TranslationOutput(texts=[""] * len(texts), hypotheses=[[] for _ in texts],
                                   split_texts=sum(n > 1 for n in Counter(owners).values()))
        piece_texts: list[str] = [""] * len(pieces)
        for batch in self._batches(pieces):
            result = self._decode([pieces[i] for i in batch], framing, strategy, config)
            output.stats.add(result.stats)
            hypotheses = result.hypotheses
            if rerank is not None:
                hypotheses = self._rerank([pieces[i] for i in batch], hypotheses, rerank)
            for index, candidates in zip(batch, hypotheses, strict=True):
                piece_texts[index] = self.tokenizer.decode(list(candidates[0].tokens))
                owner = owners[index]
                if not output.hypotheses[owner]:
                    output.hypotheses[owner] = candidates
        joined: list[list[str]] = [[] for _ in texts]
        for index, text in enumerate(piece_texts):
            joined[owners[index]].append(text)
        output.texts = [" ".join(parts) for parts in joined]
        return output

    def _resolve_models(self, settings: dict[str, Any]) -> dict[str, Any]:
        """A draft model given as a directory is loaded once and kept."""
        draft = settings.get("draft_model")
        if isinstance(draft, (str, Path)):
            key = str(Path(draft).resolve())
            if key not in self._draft_models:
                self._draft_models[key] = load_draft_model(draft, device=self.device)
            settings = {**settings, "draft_model": self._draft_models[key]}
        return settings

    def _rerank(self, pieces: list[list[int]], hypotheses: list[list[Hypothesis]],
                scorer: Scorer) -> list[list[Hypothesis]]:
        sources = [self.tokenizer.decode(piece) for piece in pieces]
        candidates = [[Candidate(self.tokenizer.decode(list(h.tokens)), h.tokens, h.log_prob)
                       for h in group] for group in hypotheses]
        by_tokens = [{h.tokens: h for h in group} for group in hypotheses]
        ordered = rerank_candidates(sources, candidates, scorer)
        return [[lookup[c.tokens] for c in group] for lookup, group in zip(by_tokens, ordered, strict=True)]

    def _pieces(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids of every piece to decode, and the input each piece belongs to.
        Empty (or whitespace-only) texts have no piece and translate to ""."""
        pieces: list[list[int]] = []
        owners: list[int] = []
        for owner, text in enumerate(texts):
            if not text.strip():
                continue
            for piece in self._split_to_fit(text.strip()):
                pieces.append(piece)
                owners.append(owner)
        return pieces, owners

    def _split_to_fit(self, text: str) -> list[list[int]]:
        """Split at sentence ends, then between words, until every piece fits the model."""
        ids = self.tokenizer.encode(text)
        if len(ids) <= self.max_source_tokens:
            return [ids]
        sentences = _SENTENCE_END.split(text)
        if len(sentences) == 1:
            words = text.split()
            if len(words) == 1:  # one enormous word: cut its token ids, which keeps every token
                size = self.max_source_tokens
                return [ids[i : i + size] for i in range(0, len(ids), size)]
            half = len(words) // 2
            sentences = [" ".join(words[:half]), " ".join(words[half:])]
        pieces: list[list[int]] = []
        current = ""
        for sentence in sentences:  # greedily pack sentences into pieces that still fit
            candidate = f"{current} {sentence}" if current else sentence
            if current and len(self.tokenizer.encode(candidate)) > self.max_source_tokens:
                pieces.extend(self._split_to_fit(current))
                current = sentence
            else:
                current = candidate
        pieces.extend(self._split_to_fit(current))
        return pieces

    def _batches(self, pieces: list[list[int]]) -> Iterator[list[int]]:
        """Indices of pieces grouped by similar length under the token budget."""
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        batch: list[int] = []
        for index in order:
            width = len(pieces[index]) + 2
            if batch and ((len(batch) + 1) * width > self.max_batch_tokens
                          or len(batch) == self.max_batch_sentences):
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def _decode(self, pieces: list[list[int]], framing: Framing, strategy: str, config: Any) -> Any:
        eos, pad = self.tokenizer.eos_id, self.tokenizer.pad_id
        src = pad_rows([framing.source(piece) for piece in pieces], pad)
        prefix = torch.tensor([framing.decoder_prefix] * len(pieces), dtype=torch.long)
        inputs = DecodeInput(src.to(self.device), prefix.to(self.device), eos_id=eos, pad_id=pad)
        return decode(self.model, inputs, strategy, config)

    def translate_document(self, text: str, format: str, src_lang: str | None = None,
                           tgt_lang: str = "", strategy: str = "beam", **options: Any) -> DocumentResult:
        """Translate a document's prose (see polyseq.documents); code, placeholders and markup
        come back byte for byte."""
        from polyseq.documents import translate_document

        def engine(texts: list[str]) -> list[str]:
            return self.translate(texts, src_lang, tgt_lang, strategy)

        return translate_document(text, format, engine, src_lang=src_lang, tgt_lang=tgt_lang,
                                  **options)

    def score(self, sources: Sequence[str], targets: Sequence[str], tgt_lang: str,
              src_lang: str | None = None) -> list[float]:
        """Log-probability of each target given its source (sum over tokens, EOS included).
        `src_lang` is needed by models whose source names its language (M2M-100, NLLB, mBART)."""
        from polyseq.train.objectives import sequence_log_probs

        if len(sources) != len(targets):
            raise InputError(f"{len(sources)} sources but {len(targets)} targets")
        framing = framing_for(self.tokenizer, src_lang, tgt_lang)
        scores: list[float] = []
        size = self.max_batch_sentences
        for start in range(0, len(sources), size):
            src_ids = [framing.source(self.tokenizer.encode(s)) for s in sources[start : start + size]]
            tgt_ids = [target_ids(self.tokenizer, framing, t) for t in targets[start : start + size]]
            src, tgt = pad_rows(src_ids, self.tokenizer.pad_id), pad_rows(tgt_ids, self.tokenizer.pad_id)
            with torch.inference_mode():
                logits = self.model(src.to(self.device), tgt[:, :-1].to(self.device))
            scores.extend(sequence_log_probs(logits, tgt[:, 1:], pad_id=self.tokenizer.pad_id).tolist())
        return scores

    def translate_lines(self, lines: Iterable[str], src_lang: str | None, tgt_lang: str,
                        strategy: str = "beam", chunk_lines: int = 512, rerank: Scorer | None = None,
                        stats: DecodeStats | None = None, **settings: Any) -> Iterator[str]:
        """Stream translations of `lines` (without newlines), `chunk_lines` at a time; decoding
        statistics are added to `stats` when given."""
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == chunk_lines:
                yield from self._translate_chunk(chunk, src_lang, tgt_lang, strategy, rerank, stats,
                                                 settings)
                chunk = []
        if chunk:
            yield from self._translate_chunk(chunk, src_lang, tgt_lang, strategy, rerank, stats,
                                             settings)

    def _translate_chunk(self, chunk: list[str], src_lang: str | None, tgt_lang: str, strategy: str,
                         rerank: Scorer | None, stats: DecodeStats | None,
                         settings: dict[str, Any]) -> list[str]:
        result = self.translate_detailed(chunk, src_lang, tgt_lang, strategy, rerank, **settings)
        if stats is not None:
            stats.add(result.stats)
        return [text.replace("\n", " ") for text in result.texts]

    def translate_file(self, input_path: str | Path, output_path: str | Path, src_lang: str | None,
                       tgt_lang: str, strategy: str = "beam", chunk_lines: int = 512,
                       rerank: Scorer | None = None, **settings: Any) -> FileReport:
        """Translate a text file line by line into `output_path`, written atomically; the output
        has exactly as many lines as the input."""
        input_path, output_path = Path(input_path), Path(output_path)
        if output_path.resolve() == input_path.resolve():
            raise InputError(f"output {output_path} would overwrite the input; choose another path")
        lines = read_text_lines(input_path)
        make_config(strategy, self._resolve_models(settings))  # bad settings fail before any work
        stats, split = DecodeStats(), 0
        temporary = output_path.with_name(f".{output_path.name}.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            for start in range(0, len(lines), chunk_lines):
                result = self.translate_detailed(lines[start : start + chunk_lines], src_lang,
                                                 tgt_lang, strategy, rerank, **settings)
                stats.add(result.stats)
                split += result.split_texts
                handle.writelines(text.replace("\n", " ") + "\n" for text in result.texts)
        os.replace(temporary, output_path)
        return FileReport(len(lines), sum(not t.strip() for t in lines), split, stats)


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file without their newlines; errors name the file and line."""
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(
            f"{path}: line {line} is not valid UTF-8 (byte {error.start}); convert the file to UTF-8"
        ) from None
    if not text:
        return []
    return text.removesuffix("\n").split("\n") if "\r\n" not in text else text.splitlines()
