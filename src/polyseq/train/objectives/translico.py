"""translico: transliteration contrastive modelling (TransliCo; Liu et al. 2024). A sentence in its
own script (objectives.translit_source, in objectives.translit_lang) and its Latin
transliteration are two views of one meaning: their mean-pooled encoder states are pulled
together and the batch's other sentences pushed apart, with InfoNCE both ways, per sentence.
Transliteration is anyascii's (`pip install polyseq[translit]`), which covers every script, as
uroman does for the paper; the tokenizer learns both scripts' pieces.
"""

from __future__ import annotations

from collections.abc import Sequence

from polyseq.config import ObjectivesConfig
from polyseq.data.batching import Batch, BatchStream, pad_rows
from polyseq.data.corpus import Example
from polyseq.model.transformer import Seq2Seq
from polyseq.text.tokenizer import Tokenizer
from polyseq.train.objectives.base import Forward, Term
from polyseq.train.objectives.losses import info_nce, mean_pool, same_sentence
from polyseq.train.objectives.translation import OwnExamples


def transliterate(texts: Sequence[str]) -> list[str]:
    """Latin transliterations (anyascii); ImportError naming the extra when it is missing."""
    try:
        from anyascii import anyascii
    except ImportError as error:
        raise ImportError("the translico objective transliterates with anyascii: pip install "
                          "'polyseq[translit]'") from error
    return [anyascii(text) for text in texts]


def view_pairs(texts: Sequence[str]) -> list[tuple[str, str]]:
    """(text, transliteration) for the lines that transliteration changes."""
    lines = [text for text in texts if text.strip()]
    return [(text, latin) for text, latin in zip(lines, transliterate(lines), strict=True) if latin != text]


class ViewStream(BatchStream):
    """A BatchStream of two views per example: its batches are (src views, tgt views), each
    padded as an encoder input."""

    def __next__(self) -> Batch:  # type: ignore[override]
        chosen = [self._examples[i] for i in self._advance()]
        first = pad_rows([example.src for example in chosen], self._pad_id)
        second = pad_rows([example.tgt for example in chosen], self._pad_id)
        return Batch(first, second, second, self._pad_id)


class Translico(OwnExamples):
    name, unit = "translico", "sentences"

    def __init__(self, pairs: Sequence[tuple[str, str]], tokenizer: Tokenizer, settings: ObjectivesConfig, *,
                 max_tokens: int, max_length: int, seed: int):
        lang = settings.translit_lang
        originals = tokenizer.source_ids_batch([a for a, _ in pairs], lang)
        latins = tokenizer.source_ids_batch([b for _, b in pairs], lang)
        examples = [Example(a, b) for a, b in zip(originals, latins, strict=True)
                    if max(len(a), len(b)) <= max_length]
        if not examples:
            raise ValueError(f"the translico objective has no examples: {settings.translit_source} has no "
                             f"line that transliteration changes, within data.max_length")
        self.pad_id, self.temperature = tokenizer.pad_id, settings.temperature
        self.stream = ViewStream(examples, max_tokens, tokenizer.pad_id, seed)

    def count(self, batch: Batch) -> int:
        return batch.size

    def loss(self, forward: Forward, model: Seq2Seq, batch: Batch) -> Term:
        original, latin = forward(batch.src), forward(batch.tgt_in)
        a, b = mean_pool(original.states, original.mask), mean_pool(latin.states, latin.mask)
        same = same_sentence(batch.src, self.pad_id)
        there, top = info_nce(a, b, self.temperature, same=same)
        back, _ = info_nce(b, a, self.temperature, same=same)
        return Term((there + back) / 2, {"retrieval": top.item()})


