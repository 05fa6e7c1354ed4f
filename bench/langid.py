"""Language identifiers on short real sentences: accuracy, time per sentence and peak memory.

    python bench/langid.py --result bench/results/langid.json

300 sentences each of en, de, fr, cs (multi30k test2016) and uk (ua-gec), each identifier in a
fresh process (its memory is its own): py3langid (polyseq's choice, polyseq.text.langid) and
lingua-language-detector with all languages, in high and in low accuracy mode.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"en": "multi30k/test_2016_flickr.en", "de": "multi30k/test_2016_flickr.de",
        "fr": "multi30k/test_2016_flickr.fr", "cs": "multi30k/test_2016_flickr.cs",
        "uk": "ua-gec/gec-only.train.ref0.txt"}
IDENTIFIERS = ("py3langid", "lingua-high", "lingua-low")


def measure(name: str, data: Path, sentences: int) -> dict[str, object]:
    texts = {lang: [line.strip() for line in (data / path).read_text(encoding="utf-8").splitlines()
                    if line.strip()][:sentences] for lang, path in SETS.items()}
    if name == "py3langid":
        from polyseq.text.langid import LanguageDetector  # imports polyseq, and torch with it
    else:
        from lingua import LanguageDetectorBuilder
    before = rss_mb()
    start = time.perf_counter()
    if name == "py3langid":
        detector = LanguageDetector()
        detect = lambda text: detector.detect(text, 1)[0].language  # noqa: E731
    else:
        # lingua loads a language's models at its first use, inside the timed detections, unless
        # told to load them all here, where the loading is timed as such
        builder = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models()
        lingua = (builder.with_low_accuracy_mode() if name == "lingua-low" else builder).build()

        def detect(text: str) -> str:
            found = lingua.detect_language_of(text)
            return found.iso_code_639_1.name.lower() if found else "?"
    load = time.perf_counter() - start
    start = time.perf_counter()
    right = {lang: sum(detect(text) == lang for text in lines) / len(lines) for lang, lines in texts.items()}
    seconds = time.perf_counter() - start
    total = sum(len(lines) for lines in texts.values())
    accuracy = sum(right[lang] * len(texts[lang]) for lang in texts) / total
    return {"identifier": name, "accuracy": round(accuracy, 4),
            "by_language": {lang: round(value, 3) for lang, value in right.items()},
            "ms_per_sentence": round(1000 * seconds / total, 3), "load_s": round(load, 2),
            "memory_mb": rss_mb() - before}  # peak memory the identifier added


def rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--result", type=Path)
    parser.add_argument("--one", choices=IDENTIFIERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.data, args.sentences)))
        return
    rows = []
    for name in IDENTIFIERS:
        command = [sys.executable, __file__, "--one", name, "--data", str(args.data),
                   "--sentences", str(args.sentences)]
        rows.append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
        print(json.dumps(rows[-1]))
    if args.result:
        from polyseq.files import write_json_atomic

        write_json_atomic(args.result, {"command": "python bench/langid.py " + " ".join(sys.argv[1:]),
                                        "setup": "2-core shared CPU, one process per identifier",
                                        "rows": rows})


if __name__ == "__main__":
    main()
