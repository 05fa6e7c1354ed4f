"""csr: code-switching restore (CSR4mBART; Zan et al. 2022). For every training direction x-y, a
lexicon x->y is induced from the direction's own sentence pairs (no external dictionary), the x
sentences get some of their words switched into y (`polyseq.data.codeswitch`, once, when the data
is prepared), and the model restores the original x sentence, tagged <2x>. The loss is
label-smoothed cross-entropy per target token, as translation's."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from polyseq.config import ObjectivesConfig
from polyseq.data.codeswitch import code_switch, induce_lexicon
from polyseq.data.corpus import Example, Pair, filter_indices
from polyseq.text.tokenizer import Tokenizer


def restore_examples(pairs: Sequence[Pair], tokenizer: Tokenizer, settings: ObjectivesConfig, *,
                     max_length: int, seed: int, log: Any = print) -> list[Example]:
    """(switched x sentence -> x sentence) examples of every direction with two languages."""
    by_direction: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for pair in pairs:
        if pair.src_lang != pair.tgt_lang:
            by_direction[(pair.src_lang, pair.tgt_lang)].append(pair)
    rng = random.Random(f"polyseq.objectives:csr:{seed}")
    examples: list[Example] = []
    for (src, tgt), members in sorted(by_direction.items()):
        lexicon = induce_lexicon([(p.src, p.tgt) for p in members], src, tgt,
                                 min_count=settings.csr_min_count)
        originals = list(dict.fromkeys(p.src for p in members))
        switched = [code_switch(text, lexicon, rng, settings.csr_rate) for text in originals]
        chosen = [(a, b) for a, b in zip(switched, originals, strict=True) if a != b]
        log(f"csr {src}-{tgt}: {len(lexicon):,} lexicon entries; {len(chosen):,} of {len(originals):,} "
            f"{src} sentences switched")
        encoded = [Example(a, b) for a, b in zip(tokenizer.source_ids_batch([a for a, _ in chosen], src),
                                                 tokenizer.target_ids_batch([b for _, b in chosen], src),
                                                 strict=True)]
        kept, _ = filter_indices(encoded, max_length=max_length, max_ratio=1e9)
        examples += [encoded[i] for i in kept]
    return examples
