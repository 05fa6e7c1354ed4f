"""Benchmark: selective translation of real documents, code and placeholders kept.

Over every English page of fastapi_docs_i18n (translated to de, fr, es, pt) and every catalog of
django_po (translated to its own locale, every entry): the preservation rate of each kind of
protected span (code blocks, inline code, includes, URLs, anchors, placeholders, tags ...;
target 100%), repairs per 1,000 sentences, and documents per second. Without a model the
translator rewrites every word (so every sentinel must travel through it); a second pass uses a
faulty translator that drops, doubles, garbles, reverses or space-pads the sentinels of 30% of
the sentences, to measure the repair step. With ``--model DIR`` a polyseq model translates,
and chrF (sacrebleu) against the human translations is reported for the languages it knows.

    python bench/selective.py                      # rewriting and faulty translators
    python bench/selective.py --model runs/multi30k/best
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from polyseq.documents import check_preservation, protected_spans, translate_document
from polyseq.documents.protect import SENTINEL_RE
from polyseq.evaluate import write_report

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LANGS = ("de", "fr", "es", "pt")
WORD = re.compile(r"[^\W\d_]+")
Translate = Callable[[list[str]], list[str]]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fastapi", type=Path, default=DATA / "fastapi_docs_i18n" / "docs")
    parser.add_argument("--django", type=Path, default=DATA / "django_po")
    parser.add_argument("--model", type=Path, default=None, help="polyseq model directory")
    parser.add_argument("--strategy", default="greedy", help="decoding strategy with --model")
    parser.add_argument("--max-pages", type=int, default=0, help="with --model: first N pages (0: all)")
    parser.add_argument("--langs", default=",".join(LANGS), help="FastAPI target languages")
    parser.add_argument("--fault-rate", type=float, default=0.3,
                        help="share of sentences whose sentinels the faulty translator breaks")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" /
                        "selective.json")
    args = parser.parse_args()
    problem = argument_problem(args)
    if problem:
        parser.error(problem)
    return args


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, found before the passes over every document (minutes)
    rather than after them; None when nothing is."""
    from polyseq.config import ConfigError
    from polyseq.decoding import get_strategy

    for path in (args.fastapi, args.django):
        if not path.is_dir():
            return f"{path} not found: the benchmark reads ../shared/data (see its README.md)"
    missing = [lang for lang in args.langs.split(",") if lang and not (args.fastapi / lang / "docs").is_dir()]
    if missing:
        return f"--langs: no FastAPI pages for {', '.join(missing)} under {args.fastapi}"
    if not 0.0 <= args.fault_rate <= 1.0:
        return f"--fault-rate {args.fault_rate} is not a share between 0 and 1"
    if args.model is not None and not (args.model / "config.json").is_file():
        return f"--model {args.model} is not a polyseq model directory (it has no config.json)"
    try:
        get_strategy(args.strategy)
    except ConfigError as error:
        return f"--strategy: {error}"
    return None


def rewrite_words(texts: list[str]) -> list[str]:
    """Every word becomes another one; sentinels and everything else pass through."""
    return [WORD.sub(lambda m: m.group(0)[::-1].swapcase(), t) for t in texts]


def _reverse_sentinels(text: str) -> str:
    ids = [m.group(1) for m in SENTINEL_RE.finditer(text)][::-1]
    return SENTINEL_RE.sub(lambda m: f"⟦{ids.pop(0)}⟧", text)


def faulty_translator(rate: float, seed: int = 0) -> Translate:
    """Rewrites words, and for a share of the sentences drops, doubles, garbles, reverses or
    pads sentinels with spaces (``** bold **``)."""
    rng = random.Random(seed)
    faults = [lambda t: SENTINEL_RE.sub("", t, count=1),
              lambda t: SENTINEL_RE.sub(lambda m: m.group(0) * 2, t),
              lambda t: SENTINEL_RE.sub(lambda m: f"[[{m.group(1)}]]", t),
              _reverse_sentinels,
              lambda t: SENTINEL_RE.sub(lambda m: f" {m.group(0)} ", t)]

    def translate(texts: list[str]) -> list[str]:
        out = rewrite_words(texts)
        return [rng.choice(faults)(t) if SENTINEL_RE.search(t) and rng.random() < rate else t
                for t in out]

    return translate


@dataclass
class Tally:
    """Totals over one set of documents."""

    documents: int = 0
    seconds: float = 0.0
    sentences: int = 0
    repairs: int = 0
    source: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    failed_documents: list[str] = field(default_factory=list)

    def add(self, name: str, seconds: float, summary: object, report: object) -> None:
        self.documents += 1
        self.seconds += seconds
        self.sentences += summary.sentences  # type: ignore[attr-defined]
        self.repairs += summary.repairs  # type: ignore[attr-defined]
        for kind, (have, _, kept) in report.counts.items():  # type: ignore[attr-defined]
            self.source[kind] += have
            self.kept[kind] += kept
        if not report.ok:  # type: ignore[attr-defined]
            self.failed_documents.append(name)

    def result(self) -> dict[str, object]:
        rates = {k: round(self.kept[k] / self.source[k], 6) for k in sorted(self.source)}
        total = sum(self.source.values())
        return {
            "documents": self.documents,
            "documents_per_second": round(self.documents / max(self.seconds, 1e-9), 2),
            "sentences": self.sentences,
            "repairs": self.repairs,
            "repairs_per_1000_sentences": round(1000 * self.repairs / max(self.sentences, 1), 2),
            "spans": total,
            "preservation_rate": round(sum(self.kept.values()) / total, 6) if total else 1.0,
            "preservation_rate_by_kind": rates,
            "spans_by_kind": dict(sorted(self.source.items())),
            "documents_not_preserved": self.failed_documents,
        }


def fastapi_pages(root: Path) -> list[Path]:
    pages = sorted((root / "en" / "docs").rglob("*.md"))
    if not pages:
        sys.exit(f"no FastAPI pages under {root} (see ../shared/data/README.md)")
    return pages


def run_fastapi(root: Path, langs: list[str], translators: dict[str, Translate]) -> dict:
    """Translate every English page into each language (the faulty pass: into the first one);
    check it against its source, and compare its span counts per kind with the human page's."""
    english = root / "en" / "docs"
    pages = fastapi_pages(root)
    out: dict[str, object] = {}
    for name, translate in translators.items():
        tally = Tally()
        agree: dict[str, Counter[str]] = {lang: Counter() for lang in langs}
        present: dict[str, Counter[str]] = {lang: Counter() for lang in langs}
        for page in pages:
            text = page.read_text(encoding="utf-8")
            for lang in langs if name == "rewrite" else langs[:1]:
                start = time.perf_counter()
                result = translate_document(text, "markdown", translate, src_lang="en",
                                            tgt_lang=lang, source=str(page))
                seconds = time.perf_counter() - start
                report = check_preservation(text, result.text, "markdown")
                tally.add(f"{page.relative_to(english)} ({lang})", seconds, result.summary, report)
                if name == "rewrite":
                    ours = _by_kind(protected_spans(result.text, "markdown"))
                    human = (root / lang / "docs" / page.relative_to(english)).read_text("utf-8")
                    theirs = _by_kind(protected_spans(human, "markdown"))
                    for kind in set(ours) | set(theirs):
                        present[lang][kind] += 1
                        agree[lang][kind] += ours[kind] == theirs[kind]
        out[name] = tally.result()
        if name == "rewrite":
            # share of the pages holding a kind where the human page has as many as ours
            out["human_count_agreement"] = {
                lang: {k: round(agree[lang][k] / n, 4) for k, n in sorted(present[lang].items())}
                for lang in langs
            }
    return out


def _by_kind(spans: Counter[tuple[str, str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (kind, _), n in spans.items():
        counts[kind] += n
    return counts


def run_django(root: Path, translators: dict[str, Translate]) -> dict:
    """Translate every entry of every catalog into the catalog's language; check every entry's
    placeholders and tags against its msgid, and the result with msgfmt --check."""
    catalogs = sorted(root.rglob("*.po"))
    msgfmt = shutil.which("msgfmt")
    out: dict[str, object] = {}
    for name, translate in translators.items():
        tally, msgfmt_ok = Tally(), 0
        with tempfile.TemporaryDirectory() as scratch:
            for catalog in catalogs:
                text = catalog.read_text(encoding="utf-8")
                start = time.perf_counter()
                result = translate_document(text, "po", translate, tgt_lang=catalog.parts[-3],
                                            overwrite=True, fuzzy=False, source=str(catalog))
                seconds = time.perf_counter() - start
                report = check_preservation(text, result.text, "po")
                tally.add(str(catalog.relative_to(root)), seconds, result.summary, report)
                if msgfmt:
                    msgfmt_ok += _msgfmt_passes(msgfmt, result.text, Path(scratch))
        out[name] = tally.result()
        out[name]["msgfmt_check_passed"] = f"{msgfmt_ok}/{len(catalogs)}" if msgfmt else "n/a"
    return out


def _msgfmt_passes(msgfmt: str, text: str, scratch: Path) -> bool:
    path = scratch / "catalog.po"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([msgfmt, "--check", "-o", "/dev/null", str(path)], capture_output=True)
    return done.returncode == 0


def run_model(model_dir: Path, fastapi: Path, langs: list[str], strategy: str, max_pages: int) -> dict:
    """chrF of the model's Markdown translations against the human pages, for the languages
    the model knows: prose segment against prose segment (inline code and URLs included) where
    the two pages have as many segments, all the prose of a page as one piece where not."""
    import sacrebleu

    from polyseq.documents import all_segments
    from polyseq.documents.formats import get_format
    from polyseq.documents.protect import FormatOptions
    from polyseq.translator import Translator

    translator = Translator.load(model_dir)
    english = fastapi / "en" / "docs"
    out: dict[str, object] = {"model": str(model_dir), "languages": list(translator.languages),
                              "strategy": strategy, "pages": max_pages or "all"}

    def engine(lang: str) -> Translate:
        return lambda texts: translator.translate(texts, "en", lang, strategy=strategy)

    for lang in [lang for lang in langs if lang in translator.languages]:
        hypotheses, references, tally = [], [], Tally()
        for page in fastapi_pages(fastapi)[: max_pages or None]:
            text = page.read_text(encoding="utf-8")
            start = time.perf_counter()
            result = translate_document(text, "markdown", engine(lang), src_lang="en",
                                        tgt_lang=lang, source=str(page))
            tally.add(page.name, time.perf_counter() - start, result.summary,
                      check_preservation(text, result.text, "markdown"))
            human = (fastapi / lang / "docs" / page.relative_to(english)).read_text("utf-8")
            parse = get_format("markdown").parse
            ours = [s.raw for s in all_segments(parse(result.text, FormatOptions()).segments)]
            theirs = [s.raw for s in all_segments(parse(human, FormatOptions()).segments)]
            if len(ours) == len(theirs):
                hypotheses += ours
                references += theirs
            else:  # the page's prose as one piece
                hypotheses.append("\n".join(ours))
                references.append("\n".join(theirs))
        metric = sacrebleu.metrics.CHRF()
        chrf = metric.corpus_score(hypotheses, [references])
        out[lang] = {"chrf": round(chrf.score, 2), "chrf_signature": str(metric.get_signature()),
                     "chrf_pairs": len(hypotheses), **tally.result()}
    skipped = [lang for lang in langs if lang not in translator.languages]
    if skipped:
        out["skipped_languages"] = skipped
    return out


def print_table(result: dict) -> None:
    for corpus in ("fastapi", "django"):
        for name in ("rewrite", "faulty"):
            row = result[corpus][name]
            print(f"{corpus:8} {name:8} docs {row['documents']:5}  "
                  f"{row['documents_per_second']:8.1f} docs/s  "
                  f"preserved {100 * row['preservation_rate']:.3f}%  "
                  f"repairs/1000 {row['repairs_per_1000_sentences']:7.2f}  "
                  f"not preserved: {len(row['documents_not_preserved'])}")
        kinds = result[corpus]["rewrite"]["preservation_rate_by_kind"]
        print("    by kind: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in kinds.items()))
    for lang, row in result["fastapi"]["human_count_agreement"].items():
        print(f"    human {lang} pages with the same count: "
              + ", ".join(f"{k} {100 * v:.0f}%" for k, v in row.items()))
    for lang, row in result.get("model", {}).items():
        if isinstance(row, dict):
            print(f"model en->{lang}: chrF {row['chrf']:.2f}  preserved "
                  f"{100 * row['preservation_rate']:.3f}%  repairs/1000 "
                  f"{row['repairs_per_1000_sentences']:.2f}  "
                  f"{row['documents_per_second']:.2f} docs/s")


def main() -> None:
    args = parse_arguments()
    langs = [lang for lang in args.langs.split(",") if lang]
    # a faulty translator of its own (seeded alike) for each corpus: Django's faults then do not
    # depend on how many FastAPI pages and languages ran before
    translators = lambda: {"rewrite": rewrite_words, "faulty": faulty_translator(args.fault_rate)}  # noqa: E731
    started = time.time()
    result: dict[str, object] = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "fastapi": run_fastapi(args.fastapi, langs, translators()),
        "django": run_django(args.django, translators()),
    }
    if args.model is not None:
        result["model"] = run_model(args.model, args.fastapi, langs, args.strategy, args.max_pages)
    result["wall_seconds"] = round(time.time() - started, 1)
    write_report(args.result, result)  # atomic: a stopped write leaves the previous results
    print_table(result)  # type: ignore[arg-type]
    print(f"wrote {args.result}")


if __name__ == "__main__":
    main()
