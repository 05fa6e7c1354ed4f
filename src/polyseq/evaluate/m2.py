"""MaxMatch (M2) scoring of grammatical error correction (Dahlmeier and Ng, 2012): precision,
recall and F0.5 of a system's edits against the gold edits of an M2 file.

A system's edits are not given; they are found. Every optimal word alignment of the source to the
system's sentence (Levenshtein, with a substitution costing 1 and with it costing 2) makes a
lattice of edits; neighbouring edits are merged into larger ones across at most
`max_unchanged_words` unchanged words; edits that match a gold edit get a large negative weight,
the others a small extra cost; the shortest path through the lattice is the system's edit
sequence that agrees with the annotator most. With several annotators, each sentence is scored
against the one that gives the best F of the counts so far (ties: more correct edits, then fewer
proposed and gold edits), as the NUS M2 scorer does; its figures are reproduced on the shared CWEB
and JFLEG M2 files (tests/evaluate/test_m2.py). One difference: a system edit matches one gold edit
at most, where the reference counts it once for each identical gold edit of the annotator (an M2
file that lists an edit twice then gives it a precision above 1).

The reference scorer can run for hours on degenerate outputs (a word repeated many times gives a
lattice with a vertex for nearly every pair of positions). Here a sentence whose lattice has more
than `max_vertices` vertices is aligned along one optimal path only, which bounds its time; the
score counts such sentences (`bounded`), whose edits may then differ from the reference's.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from polyseq.files import InputError, read_text

EPSILON = 0.001  # the extra cost of an edit no annotator made


@dataclass(frozen=True)
class GoldEdit:
    start: int  # token offsets in the source
    end: int
    original: str
    corrections: tuple[str, ...]  # any of them is right
    kind: str = ""  # the M2 file's error type


@dataclass(frozen=True)
class M2Sentence:
    source: str  # tokens joined by spaces
    annotators: dict[int, list[GoldEdit]]  # an annotator who changed nothing has []

    @property
    def unchanged_by_all(self) -> bool:
        return all(not edits for edits in self.annotators.values())


@dataclass(frozen=True)
class Edit:
    kind: str  # noop, sub, del or ins
    start: int
    end: int
    original: str
    correction: str
    unchanged: int  # unchanged words inside the edit


@dataclass
class M2Score:
    precision: float
    recall: float
    f: float
    beta: float
    correct: int
    proposed: int
    gold: int
    sentences: int
    overcorrected: int  # sentences no annotator changed that the system changed
    unchanged_by_all: int
    bounded: int  # sentences aligned along one path only (see the module's docstring)
    gold_by_kind: dict[str, int] = field(default_factory=dict)
    correct_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def overcorrection_rate(self) -> float:
        return self.overcorrected / self.unchanged_by_all if self.unchanged_by_all else 0.0


def read_m2(path: str | Path) -> list[M2Sentence]:
    """The sentences of an M2 file; InputError names the line of a malformed one."""
    sentences: list[M2Sentence] = []
    source: list[str] | None = None
    annotators: dict[int, list[GoldEdit]] = {}
    for number, line in enumerate([*read_text(path).splitlines(), ""], start=1):
        if line.startswith("S "):
            if source is not None:  # a sentence without its blank line after it, as the reference reads it
                sentences.append(M2Sentence(" ".join(source), annotators or {0: []}))
            source, annotators = line[2:].split(), {}
        elif line.startswith("A ") and source is not None:
            annotator, edit = _gold_edit(line[2:], source, f"{path}, line {number}")
            annotators.setdefault(annotator, [])
            if edit is not None:
                annotators[annotator].append(edit)
        elif not line.strip() and source is not None:
            sentences.append(M2Sentence(" ".join(source), annotators or {0: []}))
            source = None
        elif line.strip():
            raise InputError(f"{path}, line {number}: expected an 'S ' or 'A ' line, got {line[:40]!r}")
    return sentences


def m2_from_pairs(sources: Sequence[str], references: Sequence[Sequence[str]]) -> list[M2Sentence]:
    """Gold edits from corrected text, for data without an M2 file: each reference stream is an
    annotator, and its edits are the word-level differences (difflib) between the tokenized source
    and that reference, each run of changed words one edit, untyped."""
    if not references or any(len(stream) != len(sources) for stream in references):
        raise InputError(f"every reference stream needs one line per source ({len(sources)})")
    sentences = []
    for index, source in enumerate(sources):
        tokens = source.split()
        annotators = {}
        for annotator, stream in enumerate(references):
            matcher = difflib.SequenceMatcher(a=tokens, b=stream[index].split(), autojunk=False)
            annotators[annotator] = [
                GoldEdit(a_start, a_end, " ".join(tokens[a_start:a_end]),
                         (" ".join(stream[index].split()[b_start:b_end]),))
                for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes() if tag != "equal"]
        sentences.append(M2Sentence(" ".join(tokens), annotators))
    return sentences


def _gold_edit(text: str, source: list[str], where: str) -> tuple[int, GoldEdit | None]:
    fields = text.split("|||")
    try:
        start, end = (int(value) for value in fields[0].split())
        annotator = int(fields[5])
    except (ValueError, IndexError):
        raise InputError(f"{where}: not an M2 edit ('start end|||type|||correction|||...|||annotator')"
                         ) from None
    # a noop says the annotator changed nothing; an edit past the sentence's end (JFLEG's M2 has
    # some) is left out, as the reference does; one that ends before it starts stays, as there,
    # a gold edit no system edit matches
    if fields[1] == "noop" or start < 0 or end > len(source):
        return annotator, None
    corrections = tuple("" if c == "-NONE-" else c.strip() for c in fields[2].split("||"))
    return annotator, GoldEdit(start, end, " ".join(source[start:end]), corrections, fields[1])


def score_m2(hypotheses: Sequence[str], sentences: Sequence[M2Sentence], beta: float = 0.5,
             max_unchanged_words: int = 2, max_vertices: int = 1000) -> M2Score:
    """Score tokenized system sentences (one per M2 sentence) as the NUS M2 scorer does."""
    if len(hypotheses) != len(sentences):
        raise InputError(f"{len(hypotheses)} system sentences for {len(sentences)} M2 sentences")
    correct = proposed = gold = overcorrected = bounded = 0
    gold_by_kind: Counter[str] = Counter()
    correct_by_kind: Counter[str] = Counter()
    for hypothesis, sentence in zip(hypotheses, sentences, strict=True):
        lattice = Lattice(sentence.source.split(), hypothesis.split(), max_vertices)
        lattice.add_merged_edits(max_unchanged_words, 100 * max_vertices)
        bounded += lattice.bounded
        best: tuple[float, int, float] | None = None
        chosen: tuple[list[Edit], list[GoldEdit], list[GoldEdit]] = ([], [], [])
        for _, edits in sorted(sentence.annotators.items()):  # by annotator, as the reference
            system = lattice.best_sequence(edits)
            matched = _matches(system, edits)
            c, p, g = correct + len(matched), proposed + len(system), gold + len(edits)
            rank = (f_score(c, p, g, beta), c, -(p + beta * beta * g))
            if best is None or rank > best:
                best, chosen = rank, (system, edits, matched)
        system, edits, matched = chosen
        correct, proposed, gold = correct + len(matched), proposed + len(system), gold + len(edits)
        gold_by_kind.update(edit.kind for edit in edits)
        correct_by_kind.update(edit.kind for edit in matched)
        if sentence.unchanged_by_all and hypothesis.split() != sentence.source.split():
            overcorrected += 1
    precision = correct / proposed if proposed else 1.0
    recall = correct / gold if gold else 1.0
    f = ((1 + beta * beta) * precision * recall / (beta * beta * precision + recall)
         if precision + recall else 0.0)
    return M2Score(precision, recall, f, beta, correct, proposed, gold, len(sentences), overcorrected,
                   sum(s.unchanged_by_all for s in sentences), bounded, dict(gold_by_kind),
                   dict(correct_by_kind))


def f_score(correct: int, proposed: int, gold: int, beta: float) -> float:
    """F-beta of counts, as the reference computes it while choosing an annotator."""
    denominator = beta * beta * gold + proposed
    if denominator == 0:
        return 1.0 if correct == 0 else 0.0
    return (1 + beta * beta) * correct / denominator


def _agrees(edit: Edit, gold: GoldEdit) -> bool:
    return (edit.start, edit.end, edit.original) == (gold.start, gold.end, gold.original) and (
        edit.correction in gold.corrections)


def _matches(system: list[Edit], golds: list[GoldEdit]) -> list[GoldEdit]:
    """Gold edits matched by the system's edits, each at most once, in order."""
    matched: list[GoldEdit] = []
    next_gold = 0
    for edit in system:
        for index in range(next_gold, len(golds)):
            if _agrees(edit, golds[index]):
                matched.append(golds[index])
                next_gold = index + 1
                break
    return matched


Vertex = tuple[int, int]  # (source position, hypothesis position)
Arc = tuple[Vertex, Vertex]


class Lattice:
    """The edit lattice of a source and a system sentence (see the module's docstring).

    `arcs` lists the arcs as the reference scorer holds them: the arcs of both alignments sorted,
    an arc they share twice, then the merged arcs in the order they were made. The duplicates
    count where the reference counts them (the reward's size, an extra cost per occurrence)."""

    def __init__(self, source: list[str], hypothesis: list[str], max_vertices: int):
        self.edits: dict[Arc, Edit] = {}
        self.length: dict[Arc, int] = {}  # how many one-word edits an arc spans
        self.bounded = 0
        arcs: list[Arc] = []
        for substitution in (1, 2):
            alignments = _Alignments(source, hypothesis, substitution)
            arcs += self._optimal_paths(alignments, (len(source), len(hypothesis)), max_vertices)
        self.arcs = sorted(arcs)
        self.vertices = sorted({v for arc in self.arcs for v in arc} | {(0, 0)})

    def _optimal_paths(self, alignments: _Alignments, end: Vertex, max_vertices: int) -> list[Arc]:
        """The arcs of every optimal alignment, walked back from the end; of one, past the bound."""
        seen, queue, arcs = {end}, [end], []
        while queue:
            vertex = queue.pop(0)
            choices = alignments.steps(vertex)
            if len(seen) > max_vertices:
                choices, self.bounded = choices[:1], 1
            for previous, edit in choices:
                arcs.append((previous, vertex))
                self.edits.setdefault((previous, vertex), edit)
                self.length[(previous, vertex)] = 1
                if previous not in seen:
                    seen.add(previous)
                    queue.append(previous)
        return arcs

    def add_merged_edits(self, max_unchanged_words: int, max_arcs: int) -> None:
        """Arcs for runs of neighbouring edits, across at most `max_unchanged_words` unchanged
        words, vertex by vertex as the reference adds them (later arcs extend earlier ones; a
        shorter run replaces a longer one between the same vertices); past `max_arcs` arcs, no
        more (the reference's time grows with the cube of a degenerate output's length)."""
        outgoing: dict[Vertex, list[Vertex]] = {}
        incoming: dict[Vertex, list[Vertex]] = {}
        for start, end in dict.fromkeys(self.arcs):
            outgoing.setdefault(start, []).append(end)
            incoming.setdefault(end, []).append(start)
        for middle in self.vertices:
            if len(self.arcs) > max_arcs:  # a degenerate output: runs of edits merge without end
                self.bounded = 1
                break
            for first in sorted(incoming.get(middle, [])):
                for last in sorted(outgoing.get(middle, [])):
                    length = self.length[(first, middle)] + self.length[(middle, last)]
                    if length >= self.length.get((first, last), length + 1):
                        continue
                    merged = _merge(self.edits[(first, middle)], self.edits[(middle, last)])
                    if merged.unchanged > max_unchanged_words:
                        continue
                    if (first, last) not in self.edits:
                        outgoing[first].append(last)
                        incoming.setdefault(last, []).append(first)
                    self.edits[(first, last)] = merged
                    self.length[(first, last)] = length
                    self.arcs.append((first, last))
        # a run of unchanged words is no edit; the reference drops these arcs from its list while
        # walking it, which steps over the arc after each one it drops
        index = 0
        while index < len(self.arcs):
            arc = self.arcs[index]
            if arc in self.edits and self.edits[arc].kind == "noop" and self.length[arc] > 1:
                del self.edits[arc], self.length[arc]
                index += 1
            index += 1
        self.arcs = [arc for arc in self.arcs if arc in self.edits]  # every copy of a dropped arc

    def best_sequence(self, golds: list[GoldEdit]) -> list[Edit]:
        """The system's edits along the path that agrees with `golds` most, left to right."""
        weights = self._weights(golds)
        distance: dict[Vertex, float] = dict.fromkeys(self.vertices, float("inf"))
        distance[(0, 0)] = 0.0
        back: dict[Vertex, Vertex] = {}
        changed = True
        while changed:  # Bellman-Ford over the arcs in the reference's order, strict improvements
            changed = False
            for arc in self.arcs:
                start, end = arc
                if distance[start] + weights[arc] < distance[end]:
                    distance[end] = distance[start] + weights[arc]
                    back[end] = start
                    changed = True
        sequence: list[Edit] = []
        vertex = self.vertices[-1]
        while vertex in back:
            edit = self.edits[(back[vertex], vertex)]
            if edit.kind != "noop":
                sequence.append(edit)
            vertex = back[vertex]
        return sequence[::-1]

    def _weights(self, golds: list[GoldEdit]) -> dict[Arc, float]:
        """Arcs that match a gold edit weigh -(number of arcs); other edits get EPSILON more than
        their length. At one insertion point, each gold insertion is matched once, working in from
        both ends of the arcs there as the reference does."""
        weights = {arc: float(self.length[arc]) for arc in self.arcs}
        reward = -float(len(self.arcs))
        spans: dict[tuple[int, int], list[Arc]] = {}
        for arc in self.arcs:
            edit = self.edits[arc]
            spans.setdefault((edit.start, edit.end), []).append(arc)
        for (start, end), arcs in sorted(spans.items()):
            candidates = [g for g in golds if (g.start, g.end) == (start, end)]
            if start == end:
                self._weigh_insertions(sorted(arcs), candidates, weights, reward)
                continue
            for arc in arcs:
                edit = self.edits[arc]
                if any(_agrees(edit, gold) for gold in candidates):
                    weights[arc] = reward
                elif edit.kind != "noop":
                    weights[arc] += EPSILON
        return weights

    def _weigh_insertions(self, arcs: list[Arc], golds: list[GoldEdit], weights: dict[Arc, float],
                          reward: float) -> None:
        left, right, current = 0, len(arcs) - 1, 0
        gold_left, gold_right = 0, len(golds) - 1
        while left <= right:
            arc = arcs[current]
            edit = self.edits[arc]
            order = range(gold_left, gold_right + 1)
            found = next((i for i in (order if current == left else reversed(order))
                          if _agrees(edit, golds[i])), None)
            if found is None:
                if edit.kind != "noop":
                    weights[arc] += EPSILON
                if current == left:
                    left, current = left + 1, right
                else:
                    right, current = right - 1, left
                continue
            weights[arc] = reward
            if current == left:
                gold_left, left = found + 1, left + 1
                while left < len(arcs) and arcs[left][0] != arcs[current][1]:
                    weights[arcs[left]] += EPSILON  # arcs that skip past the matched one
                    left += 1
                current = left
            else:
                gold_right, right = found - 1, right - 1
                while right >= 0 and arcs[right][1] != arcs[current][0]:
                    weights[arcs[right]] += EPSILON
                    right -= 1
                current = right


class _Alignments:
    """The Levenshtein matrix of a source and a system sentence; `steps(cell)` gives the cells an
    optimal alignment reaches `cell` from, with the one-word edit of that step (insertions at the
    start go before word 0). Steps are worked out only for the cells a walk back visits."""

    def __init__(self, source: list[str], hypothesis: list[str], substitution: int):
        self.source, self.hypothesis, self.substitution = source, hypothesis, substitution
        rows, columns = len(source) + 1, len(hypothesis) + 1
        cost = [list(range(columns))] + [[i] + [0] * (columns - 1) for i in range(1, rows)]
        for i in range(1, rows):
            above, row, word = cost[i - 1], cost[i], source[i - 1]
            for j in range(1, columns):
                diagonal = above[j - 1] + (0 if word == hypothesis[j - 1] else substitution)
                row[j] = min(diagonal, above[j] + 1, row[j - 1] + 1)
        self.cost = cost

    def steps(self, cell: Vertex) -> list[tuple[Vertex, Edit]]:
        i, j = cell
        source, hypothesis, cost = self.source, self.hypothesis, self.cost
        if i == 0:
            return [((0, j - 1), Edit("ins", 0, 0, "", hypothesis[j - 1], 0))] if j else []
        if j == 0:
            return [((i - 1, 0), Edit("del", i - 1, i, source[i - 1], "", 0))]
        same = source[i - 1] == hypothesis[j - 1]
        best, found = cost[i][j], []
        if cost[i - 1][j - 1] + (0 if same else self.substitution) == best:
            found.append(((i - 1, j - 1), Edit("noop" if same else "sub", i - 1, i, source[i - 1],
                                               hypothesis[j - 1], int(same))))
        if cost[i - 1][j] + 1 == best:
            found.append(((i - 1, j), Edit("del", i - 1, i, source[i - 1], "", 0)))
        if cost[i][j - 1] + 1 == best:
            found.append(((i, j - 1), Edit("ins", i, i, "", hypothesis[j - 1], 0)))
        return found


def _merge(first: Edit, second: Edit) -> Edit:
    """Two neighbouring edits as one: an insertion plus anything is a substitution, and so on."""
    original = " ".join(part for part in (first.original, second.original) if part)
    correction = " ".join(part for part in (first.correction, second.correction) if part)
    kinds = {first.kind, second.kind}
    if kinds == {"noop"}:
        kind = "noop"
    elif kinds <= {"ins"} or kinds <= {"del"}:
        kind = first.kind
    else:
        kind = "sub"
    return Edit(kind, first.start, second.end, original, correction, first.unchanged + second.unchanged)
