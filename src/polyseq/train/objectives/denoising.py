"""denoising: BART's (Lewis et al. 2020) text infilling and sentence permutation. A monolingual
example is `objectives.denoise_group` consecutive lines of one language with their sentences
permuted (once, when the data is prepared) and spans of its tokens masked, with Poisson lengths
(anew each time it is drawn); the decoder restores the original text in the same language. The
loss is label-smoothed cross-entropy per target token, as translation's.

The mask is `<unk>`: with byte fallback no text ever encodes to it, so the vocabulary and a
translation-only run's token ids stay what they are.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import torch

from polyseq.config import ObjectivesConfig
from polyseq.data.batching import Batch
from polyseq.data.corpus import Example, filter_indices
from polyseq.data.corruption import permute_sentences, span_infill
from polyseq.text.tokenizer import Tokenizer
from polyseq.train.objectives.base import StepContext, Take, body_rows, repad
from polyseq.train.objectives.translation import OwnExamples


def denoising_examples(texts: Mapping[str, Sequence[str]], tokenizer: Tokenizer, settings: ObjectivesConfig,
                       max_length: int, seed: int) -> list[Example]:
    """(permuted text -> text) examples of every language, longer ones than max_length left out."""
    rng = random.Random(f"polyseq.objectives:denoising:{seed}")
    examples: list[Example] = []
    for lang in sorted(texts):
        lines = [line for line in texts[lang] if line.strip()]
        group = settings.denoise_group
        originals = [" ".join(lines[i : i + group]) for i in range(0, len(lines), group)]
        permuted = [permute_sentences(text, rng) for text in originals]
        encoded = [Example(src, tgt) for src, tgt in zip(tokenizer.source_ids_batch(permuted, lang),
                                                         tokenizer.target_ids_batch(originals, lang),
                                                         strict=True)]
        kept, _ = filter_indices(encoded, max_length=max_length, max_ratio=1e9)
        examples += [encoded[i] for i in kept]
    return examples


class Denoising(OwnExamples):
    def __init__(self, examples: Sequence[Example], tokenizer: Tokenizer, settings: ObjectivesConfig, *,
                 max_tokens: int, smoothing: float, seed: int):
        super().__init__("denoising", examples, tokenizer.pad_id, max_tokens=max_tokens,
                         smoothing=smoothing, seed=seed)
        self.mask_id, self.ratio, self.poisson_lambda = (tokenizer.unk_id, settings.denoise_ratio,
                                                         settings.denoise_lambda)

    def batches(self, translation: list[Batch], take: Take, context: StepContext,
                device: torch.device) -> list[Batch]:
        out = []
        for index, batch in enumerate(take(self.stream)):
            rng = context.rng(self.name, index)
            rows = []
            for row in body_rows(batch.src, self.pad_id):
                # no longer than the source the data filter kept (within data.max_length)
                body = span_infill(row[1:-1], rng, mask_id=self.mask_id, ratio=self.ratio,
                                   poisson_lambda=self.poisson_lambda, max_length=len(row) - 2)
                rows.append([row[0], *body, row[-1]])  # the tag and eos stay
            out.append(Batch(repad(rows, self.pad_id, device), batch.tgt_in.to(device),
                             batch.tgt_out.to(device), self.pad_id))
        return out
