"""The oracle of bench/decoding.py: greedy's own output, recorded beforehand and drafted back.

Every draft token is accepted and each input takes one verifying pass: no drafter can do better,
so the oracle's time is the ceiling of every lossless strategy on this model and machine. It plugs
into polyseq from outside, through the public `Drafter` protocol and `draft_and_verify`; nothing
is registered in the library. Texts are cut into pieces (`split_into_pieces`), framed, batched
(`length_batches`, under the Translator's token and sentence budgets) and detokenized as the
Translator does, so the oracle's time compares with the named strategies' times through
`Translator.translate_detailed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from polyseq.data.batching import length_batches, pad_rows
from polyseq.data.pieces import Pieces, split_into_pieces
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput, DecodeStats, Hypothesis, LengthLimit
from polyseq.decoding.drafting import Drafter, Row, draft_and_verify
from polyseq.translator import Translator

SourceKey = tuple[int, ...]  # a source's token ids as the model reads them (framed, unpadded)


class ReplayDrafter:
    """A `Drafter` (polyseq.decoding.drafting's protocol) that proposes, for each row, the rest of
    a recorded output."""

    confident = True

    def __init__(self, outputs: list[list[int]]):
        self.outputs = outputs  # per input row: greedy's tokens, with its EOS when it ended with one

    def propose(self, rows: Sequence[Row]) -> list[list[int]]:
        return [self.outputs[row.index][len(row.tokens) :] for row in rows]

    def accepted(self, rows: Sequence[Row], counts: Sequence[int], drafts: Sequence[list[int]]) -> None:
        pass

    def keep(self, positions: Sequence[int]) -> None:
        pass


def replaying(outputs: list[list[int]]) -> Callable[..., Drafter]:
    """`draft_and_verify`'s `make_drafter` (model, memory, rows, inputs) -> a ReplayDrafter."""
    return lambda model, memory, rows, inputs: ReplayDrafter(outputs)


@dataclass
class Decoded:
    """What `Translator.translate_detailed` returns that the race reads."""

    texts: list[str]
    hypotheses: list[list[Hypothesis]]  # per text, [greedy's output], its pieces' joined; [] if empty
    stats: DecodeStats = field(default_factory=DecodeStats)


def joined(pieces: Pieces, best: Sequence[Hypothesis]) -> list[list[Hypothesis]]:
    """Per text, [its pieces' best hypotheses joined], as Translator.translate_detailed joins
    them (tokens in order, scores summed); [] for an empty text."""
    return [[Hypothesis.joined(group)] if group else [] for group in pieces.by_input(best)]


class Oracle:
    """Greedy's outputs for the texts given to `record`, replayed by `translate` on the
    translator's model, at its batch sizes."""

    def __init__(self, translator: Translator, tgt_lang: str, src_lang: str | None = None,
                 max_length: LengthLimit | None = None):
        self.translator = translator
        self.framing = translator.tokenizer.framing(src_lang, tgt_lang)
        self.max_length = max_length or LengthLimit()  # the Translator's default, as greedy's
        self.outputs: dict[SourceKey, list[int]] = {}

    def record(self, texts: Sequence[str]) -> None:
        """Decode `texts` greedily and keep each output (with its EOS) for `translate`."""
        for _, keys, inputs in self._batches(self._pieces(texts)):
            result = generate(self.translator.model, inputs, "greedy", max_length=self.max_length)
            for key, best in zip(keys, result.best(), strict=True):
                self.outputs[key] = [*best.tokens, *([inputs.eos_id] if best.finished else [])]

    def translate(self, texts: Sequence[str]) -> Decoded:
        """Translate `texts` (recorded before) by verifying greedy's outputs as drafts."""
        pieces = self._pieces(texts)
        decoded = Decoded([], [])
        piece_texts = [""] * len(pieces.ids)
        piece_best: list[Hypothesis] = [Hypothesis((), 0.0, 0.0)] * len(pieces.ids)
        for batch, keys, inputs in self._batches(pieces):
            outputs = [self.outputs[key] for key in keys]
            no_sources: list[list[int]] = [[] for _ in outputs]  # the replayed drafts need none
            with torch.inference_mode():
                result = draft_and_verify(self.translator.model, inputs, self.max_length, no_sources,
                                          replaying(outputs))
            decoded.stats.add(result.stats)
            for index, candidates in zip(batch, result.hypotheses, strict=True):
                piece_texts[index] = self.translator.tokenizer.decode(list(candidates[0].tokens))
                piece_best[index] = candidates[0]
        decoded.texts = pieces.join(piece_texts)
        decoded.hypotheses = joined(pieces, piece_best)
        return decoded

    def _pieces(self, texts: Sequence[str]) -> Pieces:
        """The texts as the Translator cuts them: too long ones in pieces, empty ones in none."""
        translator = self.translator
        return split_into_pieces(texts, translator.tokenizer.encode, translator.max_source_tokens)

    def _batches(self, pieces: Pieces) -> Iterator[tuple[list[int], list[SourceKey], DecodeInput]]:
        """As the Translator batches: per batch, its pieces, their sources' keys, the model's inputs."""
        translator, tokenizer = self.translator, self.translator.tokenizer
        sources = [self.framing.source(ids) for ids in pieces.ids]
        for batch in length_batches([len(source) for source in sources], translator.max_batch_tokens,
                                    translator.max_batch_sentences):
            prefix = torch.tensor([self.framing.decoder_prefix] * len(batch), dtype=torch.long)
            src = pad_rows([sources[i] for i in batch], tokenizer.pad_id)
            inputs = DecodeInput(src.to(translator.device), prefix.to(translator.device),
                                 eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
            yield batch, [tuple(sources[i]) for i in batch], inputs
