"""i18next's plural keys in JSON ("file_one", "file_other"; "place_ordinal_one" ...): the group
gets the target language's categories as keys, each value translated for a sample number of its
category in place of ``{{count}}``, which comes back where the number was."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from babel import Locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from num2words import num2words

from polyseq.documents import check_preservation, translate_document

NUMBER_AND_WORD = re.compile(r"(\d+(?:\.\d+)?)(ST|ND|RD|TH)? (FILE|PLACE)S?")


def inflecting(lang: str):
    """A fake model into ``lang``: upper-cases, and writes the word after a number with the
    number's CLDR category in ``lang`` ("5 FILE-MANY"), as a model that inflects does."""
    locale = Locale.parse(lang)

    def word(match: re.Match[str]) -> str:
        ordinal = match.group(3) == "PLACE"
        rule = locale.ordinal_form if ordinal else locale.plural_form
        category = rule(Decimal(match.group(1))).upper()
        return f"{match.group(1)}{match.group(2) or ''} {match.group(3)}-{category}"

    return lambda texts: [NUMBER_AND_WORD.sub(word, t.upper()) for t in texts]


def spelled(texts: list[str]) -> list[str]:
    """Writes each number as a word (the number does not come back)."""
    return [re.sub(r"\d+(?:\.\d+)?", lambda m: num2words(Decimal(m.group(0))), t).upper()
            for t in texts]


FILES = '{"title": "Files", "file_one": "{{count}} file", "file_other": "{{count}} files"}'


def test_ukrainian_gets_one_few_many_and_other_each_for_its_number(recording) -> None:
    spy, calls = recording(inflecting("uk"))
    result = translate_document(FILES, "json", spy, src_lang="en", tgt_lang="uk")
    out = json.loads(result.text)
    assert list(out) == ["title", "file_one", "file_few", "file_many", "file_other"]
    assert out == {"title": "FILES", "file_one": "{{count}} FILE-ONE", "file_few": "{{count}} FILE-FEW",
                   "file_many": "{{count}} FILE-MANY", "file_other": "{{count}} FILE-OTHER"}
    # each from the English text for the category's sample number: 21, 2 and 5 take "files"
    assert {"21 files", "2 files", "5 files", "1.5 files"} <= set(calls)
    assert result.summary.plural_samples == 4 and result.summary.plural_fallbacks == 0
    assert check_preservation(FILES, result.text, "json").ok


def test_japanese_gets_only_other_and_german_keeps_its_keys(recording) -> None:
    spy, calls = recording(inflecting("ja"))
    result = translate_document(FILES, "json", spy, src_lang="en", tgt_lang="ja")
    assert json.loads(result.text) == {"title": "FILES", "file_other": "{{count}} FILE-OTHER"}
    assert "2 files" in calls and result.summary.plural_samples == 1
    assert check_preservation(FILES, result.text, "json").ok
    # German: one and other for the same numbers, translated as before with {{count}} kept
    spy, calls = recording(inflecting("de"))
    result = translate_document(FILES, "json", spy, src_lang="en", tgt_lang="de")
    assert result.text == translate_document(FILES, "json", inflecting("de")).text
    assert result.text == '{"title": "FILES", "file_one": "{{count}} FILE", "file_other": "{{count}} FILES"}'
    assert calls == ["Files", "⟦1⟧ file", "⟦1⟧ files"] and result.summary.plural_samples == 0
    # ... and a correction (into the source language) keeps its keys too
    out = translate_document(FILES, "json", inflecting("en"), src_lang="en", tgt_lang="en").text
    assert list(json.loads(out)) == ["title", "file_one", "file_other"]


def test_ordinal_groups_get_the_targets_ordinal_categories(recording) -> None:
    source = json.dumps({f"place_ordinal_{c}": f"{{{{count}}}}{s} place" for c, s in
                         [("one", "st"), ("two", "nd"), ("few", "rd"), ("other", "th")]})
    spy, calls = recording(inflecting("uk"))
    result = translate_document(source, "json", spy, src_lang="en", tgt_lang="uk")
    # Ukrainian ordinals: few (3, 23 ...) from the English "rd" for 3, other from "nd" for 2
    assert json.loads(result.text) == {"place_ordinal_few": "{{count}}RD PLACE-FEW",
                                       "place_ordinal_other": "{{count}}ND PLACE-OTHER"}
    assert {"3rd place", "2nd place"} <= set(calls)
    assert check_preservation(source, result.text, "json").ok
    out = translate_document(source, "json", inflecting("de"), src_lang="en", tgt_lang="de").text
    assert json.loads(out) == {"place_ordinal_other": "{{count}}ND PLACE-OTHER"}


def test_a_number_that_does_not_come_back_falls_back_on_todays_value(recording) -> None:
    spy, calls = recording(spelled)
    result = translate_document(FILES, "json", spy, src_lang="en", tgt_lang="uk")
    # still the target's keys, each translated with {{count}} protected: from its own category
    # in the source ("one", for 1 and 21 too), else from "other"
    assert json.loads(result.text) == {"title": "FILES", "file_one": "{{count}} FILE",
                                       "file_few": "{{count}} FILES", "file_many": "{{count}} FILES",
                                       "file_other": "{{count}} FILES"}
    assert {"21 files", "⟦1⟧ file", "⟦1⟧ files"} <= set(calls)
    assert result.summary.plural_samples == 4 and result.summary.plural_fallbacks == 4
    assert check_preservation(FILES, result.text, "json").ok


def test_values_without_a_count_placeholder_are_translated_as_before(recording) -> None:
    source = json.dumps({"item_one": "One item", "item_other": "Some items", "n_one": "%d item",
                         "n_other": "{{ count }} items", "k_one": "{{count, number}} day",
                         "k_other": "{{count, number}} days", "u_other": "{{- count}} days",
                         "u_one": "{{- count}} day"})
    spy, calls = recording(inflecting("uk"))
    out = json.loads(translate_document(source, "json", spy, src_lang="en", tgt_lang="uk").text)
    assert out == {"item_one": "ONE ITEM", "item_few": "SOME ITEMS", "item_many": "SOME ITEMS",
                   "item_other": "SOME ITEMS",
                   # "{{ count }}" is the number too; "one" (1, 21 ...) is from "other", for 21
                   "n_one": "{{ count }} ITEMS", "n_few": "{{ count }} ITEMS",
                   "n_many": "{{ count }} ITEMS", "n_other": "{{ count }} ITEMS",
                   # i18next's formatted and unescaped counts: the number too
                   "k_one": "{{count, number}} DAYS", "k_few": "{{count, number}} DAYS",
                   "k_many": "{{count, number}} DAYS", "k_other": "{{count, number}} DAYS",
                   "u_one": "{{- count}} DAYS", "u_few": "{{- count}} DAYS",
                   "u_many": "{{- count}} DAYS", "u_other": "{{- count}} DAYS"}
    assert {"21 items", "2 items", "5 items", "1.5 items", "21 days", "1.5 days"} <= set(calls)


def test_only_groups_with_other_and_string_values_change(recording) -> None:
    source = json.dumps({"lone_other": "{{count}} files", "num_one": 1, "num_other": "{{count}} x",
                         "no_one": "{{count}} file", "no_few": "{{count}} files",
                         "file_one": "{{count}} file", "file_other": "{{count}} files"})
    spy, calls = recording(inflecting("uk"))
    result = translate_document(source, "json", spy, src_lang="en", tgt_lang="uk")
    out = json.loads(result.text)
    assert list(out) == ["lone_other", "num_one", "num_other", "no_one", "no_few",
                         "file_one", "file_few", "file_many", "file_other"]
    assert out["lone_other"] == "{{count}} FILES" and out["num_one"] == 1
    assert out["no_few"] == "{{count}} FILES" and out["file_few"] == "{{count}} FILE-FEW"
    assert check_preservation(source, result.text, "json").ok


def test_zero_is_kept_for_a_count_of_zero_in_every_language(recording) -> None:
    # i18next takes "_zero" for a count of 0 in any language where the file has it
    source = json.dumps({"file_zero": "No files", "file_one": "{{count}} file",
                         "file_other": "{{count}} files"})
    out = json.loads(translate_document(source, "json", inflecting("uk"), src_lang="en",
                                        tgt_lang="uk").text)
    assert list(out) == ["file_zero", "file_one", "file_few", "file_many", "file_other"]
    assert out["file_zero"] == "NO FILES"
    out = json.loads(translate_document(source, "json", inflecting("ja"), src_lang="en",
                                        tgt_lang="ja").text)
    assert out == {"file_zero": "NO FILES", "file_other": "{{count}} FILE-OTHER"}
    # Arabic's own "zero" is 0 alone: the source's text for 0, "_zero"
    spy, calls = recording(inflecting("ar"))
    result = translate_document(source, "json", spy, src_lang="en", tgt_lang="ar")
    out = json.loads(result.text)
    assert list(out) == [f"file_{c}" for c in ("zero", "one", "two", "few", "many", "other")]
    assert out["file_zero"] == "NO FILES" and out["file_two"] == "{{count}} FILE-TWO"
    assert "0 files" not in calls and "No files" in calls
    assert check_preservation(source, result.text, "json").ok


def test_groups_in_nested_objects_and_arrays(recording) -> None:
    source = json.dumps({"a": {"b": {"file_one": "{{count}} file", "file_other": "{{count}} files"}},
                         "list": [{"x_one": "{{count}} day", "x_other": "{{count}} days"}]}, indent=2)
    result = translate_document(source, "json", inflecting("uk"), src_lang="en", tgt_lang="uk")
    out = json.loads(result.text)
    assert list(out["a"]["b"]) == ["file_one", "file_few", "file_many", "file_other"]
    assert list(out["list"][0]) == ["x_one", "x_few", "x_many", "x_other"]
    assert out["list"][0]["x_many"] == "{{count}} DAYS"
    assert '\n      "file_few": "{{count}} FILE-FEW",\n      "file_many"' in result.text
    assert check_preservation(source, result.text, "json").ok


def test_json_paths_choose_whole_groups(rewrite) -> None:
    source = json.dumps({"file_one": "{{count}} file", "file_other": "{{count}} files",
                         "menu": {"day_one": "{{count}} day", "day_other": "{{count}} days"}})
    out = json.loads(translate_document(source, "json", inflecting("uk"), src_lang="en",
                                        tgt_lang="uk", json_paths=["menu.*"]).text)
    assert out == {"file_one": "{{count}} file", "file_other": "{{count}} files",
                   "menu": {"day_one": "{{count}} DAYS", "day_few": "{{count}} DAYS",
                            "day_many": "{{count}} DAYS", "day_other": "{{count}} DAYS"}}
    # a group with a key not chosen keeps its keys: the chosen values are translated as before
    out = json.loads(translate_document(source, "json", inflecting("uk"), src_lang="en",
                                        tgt_lang="uk", json_paths=["file_one", "menu.*"]).text)
    assert out["file_one"] == "{{count}} FILE" and out["file_other"] == "{{count}} files"
    assert list(out["menu"]) == ["day_one", "day_few", "day_many", "day_other"]


def test_everything_but_the_group_stays_byte_for_byte() -> None:
    source = ('{\n   "caf\\u00e9_one" :  "{{count}} caf\\u00e9",\n   "n":1.50,\n'
              '   "caf\\u00e9_other" :  "{{count}} caf\\u00e9s",\n   "k": "\\u0041",\n'
              '   "m": {"file_one": "{{count}} file", "file_other":"{{count}} files"}\n}\n')
    out = translate_document(source, "json", inflecting("uk"), src_lang="en", tgt_lang="uk").text
    assert out == ('{\n   "caf\\u00e9_one" :  "{{count}} CAFÉS",\n'
                   '   "caf\\u00e9_few" :  "{{count}} CAFÉS",\n'
                   '   "caf\\u00e9_many" :  "{{count}} CAFÉS",\n'
                   '   "caf\\u00e9_other" :  "{{count}} CAFÉS",\n   "n":1.50,\n   "k": "\\u0041",\n'
                   '   "m": {"file_one": "{{count}} FILE-ONE", "file_few": "{{count}} FILE-FEW", '
                   '"file_many": "{{count}} FILE-MANY", "file_other":"{{count}} FILE-OTHER"}\n}\n')
    assert check_preservation(source, out, "json").ok


@pytest.mark.parametrize(("broken", "problem"), [
    ('"file_few": "{{count}} FILE-FEW"', "json_key"),  # the key "_other" lost, so the group
    ('"file_few": "FILE-FEW"', "no branch of the source"),  # a form without the placeholder
])
def test_the_check_accepts_the_targets_keys_but_not_a_broken_form(broken: str, problem: str) -> None:
    out = translate_document(FILES, "json", inflecting("uk"), src_lang="en", tgt_lang="uk").text
    if problem == "json_key":
        out = out.replace(', "file_other": "{{count}} FILE-OTHER"', "")
    else:
        out = out.replace('"file_few": "{{count}} FILE-FEW"', broken)
    report = check_preservation(FILES, out, "json")
    assert not report.ok and problem in str(report)


LEAVES = st.one_of(st.integers(), st.booleans(), st.sampled_from(["Hello world", "Open {0}", "x"]))
FORMS = st.sampled_from(["{{count}} file", "{{ count }} files", "No files", "%d item", "{{count}}"])
UKRAINIAN = ["one", "few", "many", "other"]


@st.composite
def i18next_objects(draw: st.DrawFn, depth: int = 0) -> dict[str, object]:
    """An object with plain keys, maybe a nested object, and groups of plural keys, shuffled."""
    pairs = [(k, draw(LEAVES)) for k in draw(st.lists(st.sampled_from(["title", "id", "n"]),
                                                      max_size=3, unique=True))]
    if depth < 2 and draw(st.booleans()):
        pairs.append(("child", draw(i18next_objects(depth + 1))))
    for base in draw(st.lists(st.sampled_from(["file", "day", "a_b"]), max_size=2, unique=True)):
        others = draw(st.lists(st.sampled_from(["zero", "one", "two", "few", "many"]), min_size=1,
                               max_size=3, unique=True))
        pairs += [(f"{base}_{category}", draw(FORMS)) for category in [*others, "other"]]
    return dict(draw(st.permutations(pairs)))


def _expected_keys(node: object) -> object:
    """The keys a Ukrainian translation has: each group's where its first key was, zero kept."""
    if not isinstance(node, dict):
        return None
    out: list[tuple[str, object]] = []
    for key, value in node.items():
        base, _, category = key.rpartition("_")
        if base and f"{base}_other" in node:  # a group's key ("a_b" is a base of them only)
            if not any(k[0].startswith(f"{base}_") for k in out):
                zero = [f"{base}_zero"] if f"{base}_zero" in node else []
                out += [(k, None) for k in [*zero, *(f"{base}_{c}" for c in UKRAINIAN)]]
        else:
            out.append((key, _expected_keys(value)))
    return out


def _keys(pairs: list[tuple[str, object]]) -> object:
    return [(k, _keys(v) if isinstance(v, list) else None) for k, v in pairs]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(i18next_objects(), st.sampled_from([None, 2, "\t"]))
def test_any_file_keeps_its_other_keys_values_and_layout(rewrite, tree: dict[str, object],
                                                        indent: int | str | None) -> None:
    text = json.dumps(tree, indent=indent)
    out = translate_document(text, "json", rewrite, src_lang="en", tgt_lang="uk").text
    assert _keys(json.loads(out, object_pairs_hook=list)) == _expected_keys(tree)
    assert check_preservation(text, out, "json").ok
    # every value but a group's is as a translation without the target gives it
    before = translate_document(text, "json", rewrite).text
    assert _plain_leaves(json.loads(out, object_pairs_hook=list)) == _plain_leaves(
        json.loads(before, object_pairs_hook=list))


def _plain_leaves(pairs: list[tuple[str, object]], path: str = "$") -> list[tuple[str, object]]:
    keys = {k for k, _ in pairs}
    found: list[tuple[str, object]] = []
    for key, value in pairs:
        if f"{key.rpartition('_')[0]}_other" in keys:
            continue
        found += (_plain_leaves(value, f"{path}.{key}") if isinstance(value, list)
                  else [(f"{path}.{key}", value)])
    return found
