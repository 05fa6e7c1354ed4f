"""e2s2: E2S2's encoder-side objectives (Zhong et al. 2022), on the translation batches.

Each source is corrupted in place (`corrupt_tokens`: masks, random tokens and local swaps, the
length kept so that position i stays position i), anew each step. From the corrupted source's
encoder states the model restores every original token through the shared embedding matrix (no
head of its own: the probability of the token it sees is its detection of a corruption, the
argmax its restoration), averaged over each sentence's positions; and a contrastive loss pulls
the mean-pooled states of a sentence and its corrupted view together, the batch's other
sentences apart. Per sentence: restoration + objectives.e2s2_contrastive x contrastive.

Logged besides: `restored` (corrupted tokens whose original is the argmax), `detected` (random
and swapped tokens, the corruptions a mask does not give away, that the encoder gives a
probability under 0.5) and `false_alarms` (unchanged tokens it doubts so), each a share of the
batch's tokens of its kind, averaged over the batch's sentences.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from polyseq.config import ObjectivesConfig
from polyseq.data.batching import Batch
from polyseq.data.corruption import corrupt_tokens
from polyseq.model.transformer import Seq2Seq
from polyseq.text.tokenizer import Tokenizer
from polyseq.train.objectives.base import (
    Forward,
    OnTranslationBatches,
    StepContext,
    Take,
    Term,
    body_rows,
    repad,
)
from polyseq.train.objectives.losses import info_nce, mean_pool, same_sentence


def _share(hits: Tensor, of: Tensor) -> float:
    return float(hits.sum()) / max(int(of.sum()), 1)


class CorruptedBatch:
    def __init__(self, clean: Tensor, noisy: Tensor, changed: Tensor):
        self.clean, self.noisy, self.changed = clean, noisy, changed  # (B, S) each


class E2S2(OnTranslationBatches):
    name, unit = "e2s2", "sentences"

    def __init__(self, tokenizer: Tokenizer, settings: ObjectivesConfig):
        self.pad_id, self.mask_id = tokenizer.pad_id, tokenizer.unk_id
        self.vocabulary = [i for i in range(tokenizer.vocab_size) if not tokenizer.is_special(i)]
        self.rate, self.weight, self.temperature = (settings.e2s2_rate, settings.e2s2_contrastive,
                                                    settings.temperature)

    def batches(self, translation: list[Batch], take: Take, context: StepContext,
                device: torch.device) -> list[CorruptedBatch]:
        out = []
        for index, batch in enumerate(translation):
            rng = context.rng(self.name, index)
            noisy, changed = [], []
            for row in body_rows(batch.src, self.pad_id):
                ids, flags = corrupt_tokens(row[1:-1], rng, rate=self.rate, mask_id=self.mask_id,
                                            vocabulary=self.vocabulary)
                noisy.append([row[0], *ids, row[-1]])  # the tag and eos stay
                changed.append([0, *map(int, flags), 0])
            out.append(CorruptedBatch(batch.src, repad(noisy, self.pad_id, device),
                                      repad(changed, 0, device).bool()))
        return out

    def count(self, batch: CorruptedBatch) -> int:
        return batch.clean.shape[0]

    def loss(self, forward: Forward, model: Seq2Seq, batch: CorruptedBatch) -> Term:
        clean, noisy = forward(batch.clean), forward(batch.noisy)
        mask = noisy.mask  # (B, S)
        logits = F.linear(noisy.states, model.embed.weight).float()  # (B, S, V)
        token_loss = F.cross_entropy(logits.transpose(1, 2), batch.clean, reduction="none")  # (B, S)
        restore = ((token_loss * mask).sum(1) / mask.sum(1)).sum()
        contrastive, top = info_nce(mean_pool(noisy.states, mask), mean_pool(clean.states, mask),
                                    self.temperature, same=same_sentence(batch.clean, self.pad_id))
        with torch.no_grad():
            restored = (logits.argmax(-1) == batch.clean) & batch.changed
            # a mask is detected by being one; a random or swapped token, by being unlikely
            doubted = logits.log_softmax(-1).gather(-1, batch.noisy[..., None]).squeeze(-1) < math.log(0.5)
            hidden = batch.changed & (batch.noisy != self.mask_id)
            unchanged = mask & ~batch.changed
        rows = batch.clean.shape[0]  # each metric is a share of the batch's tokens, weighted by its rows
        return Term(restore + self.weight * contrastive,
                    {"restore": restore.item(), "contrastive": contrastive.item(), "retrieval": top.item(),
                     "restored": rows * _share(restored, batch.changed),
                     "detected": rows * _share(doubted & hidden, hidden),
                     "false_alarms": rows * _share(doubted & unchanged, unchanged)})
