"""The multi-needle benchmark's generator, scoring rules and runner (no model is loaded)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import multineedle as mn  # noqa: E402
from bench.haystack import _SENTENCE_END  # noqa: E402
from bench.multineedle_data import (  # noqa: E402
    TASKS,
    Case,
    HaystackSource,
    Needle,
    edit_distance,
    insert,
    make_case,
    value_in,
    wiki_text,
)
from infiniretri.results import Answer, Retrieval, Sentence, Stats  # noqa: E402
from infiniretri.sentences import SentenceSplitter  # noqa: E402

LENGTHS = (4_000, 12_000)


def _ends_sentence(before: str) -> bool:
    before = before.rstrip()
    return not before or any(m.end() == len(before) for m in _SENTENCE_END.finditer(before))


@pytest.mark.parametrize("task", TASKS)
def test_needles_once_each_at_sentence_boundaries(task, source, tokenizer):
    splitter = SentenceSplitter()
    for length in LENGTHS:
        case = make_case(task, source, length, sample=0)
        text = case.text
        sentences = {text[a:b] for a, b in splitter.split(text)}
        tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert abs(tokens - length) <= 0.05 * length, (case.id, tokens)
        starts = [n.char_start for n in case.needles]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        for needle in case.needles:
            assert text.count(needle.text) == 1, needle.text
            assert text[needle.char_start : needle.char_end] == needle.text
            assert _ends_sentence(text[: needle.char_start]), text[needle.char_start - 40 :][:80]
            after = text[needle.char_end :]
            assert not after or after[0].isspace(), after[:40]
            assert needle.text in sentences, needle.text  # one sentence for the engine, too
            assert needle.key in needle.text and needle.value in needle.text
            assert text.lower().count(needle.value.lower()) == 1
        assert case.question.endswith(("?", "."))
        assert all(t.key in case.question for t in case.targets)
        expected = {"multikey": 4, "multivalue": 4}.get(task, 1)
        if task == "confusable":
            assert 4 <= len(case.needles) <= 8
            assert len(case.targets) == 1
        else:
            assert len(case.needles) == expected
            assert len(case.targets) == (4 if task == "multivalue" else 1)
        assert len({n.value for n in case.needles}) == len(case.needles)


def test_depths_spread_through_the_document(wiki):
    for sample in range(6):
        case = make_case("multivalue", wiki, 16_000, sample)
        depths = case.depths()
        for slot, depth in enumerate(depths):  # one needle per quarter
            assert 25 * slot - 1 <= depth <= 25 * (slot + 1) + 1, depths
    singles = [make_case("number", wiki, 8_000, s).depths()[0] for s in range(12)]
    assert min(singles) < 35 and max(singles) > 65  # not always the same depth


def test_confusable_keys_distinct_and_near_identical(wiki):
    styles = set()
    for sample in range(30):
        case = make_case("confusable", wiki, 4_000, sample)
        keys = [n.key for n in case.needles]
        styles.add(case.key_style)
        assert len(set(keys)) == len(keys)
        for a in keys:
            for b in keys:
                if a != b:
                    assert 1 <= edit_distance(a, b) <= 2, (a, b)
                    assert a.lower() not in b.lower()  # the kept check tells them apart
        target = case.targets[0]
        assert target.key in case.question
        assert not any(o.key in case.question for o in case.others)
    assert styles == {"name", "code", "serial"}


def test_multikey_keys_are_not_confusable(wiki):
    for sample in range(10):
        keys = [n.key for n in make_case("multikey", wiki, 4_000, sample).needles]
        assert len(set(keys)) == 4
        assert min(edit_distance(a, b) for a in keys for b in keys if a != b) >= 3


def test_determinism_by_seed(wiki, tokenizer):
    for task in TASKS:
        a = make_case(task, wiki, 6_000, 1, seed=3)
        b = make_case(task, HaystackSource("wiki", wiki_text(), tokenizer), 6_000, 1, seed=3)
        assert a == b
        c = make_case(task, wiki, 6_000, 1, seed=4)
        assert (c.question, c.needles) != (a.question, a.needles)
        assert make_case(task, wiki, 6_000, 2, seed=3).text != a.text


def test_same_question_at_every_length(wiki):
    for task in TASKS:
        short, long = (make_case(task, wiki, n, 0) for n in (4_000, 40_000))
        assert short.question == long.question
        assert [n.key for n in short.needles] == [n.key for n in long.needles] or (
            task in ("multikey", "confusable")  # document order may differ
            and sorted(n.key for n in short.needles) == sorted(n.key for n in long.needles)
        )


def test_variety_of_templates_and_kinds(wiki):
    cases = [make_case(task, wiki, 4_000, s) for task in TASKS for s in range(8)]
    assert len({c.template for c in cases}) >= 5
    assert {c.value_type for c in cases} == {"word", "number", "uuid"}
    uuid = next(c for c in cases if c.task == "uuid").needles[0].value
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid
    )
    numbers = [c.needles[0].value for c in cases if c.task == "number"]
    assert all(re.fullmatch(r"[1-9]\d{6}", v) for v in numbers)


def test_long_wiki_haystack_repeats(wiki, tokenizer):
    case = make_case("single", wiki, 40_000, 0)  # the text is about 17k tokens
    tokens = len(tokenizer(case.text, add_special_tokens=False)["input_ids"])
    assert abs(tokens - 40_000) <= 2_000
    assert case.text.count("Steam engines are external combustion engines") >= 2


def test_insert_at_sentence_ends():
    hay = "One two. Three four.Five six! Seven."
    text, starts = insert(hay, ["N1.", "N2.", "N3."], [0.99, 0.0, 0.6])
    assert text == "N2. One two. Three four. N3. Five six! N1. Seven."
    assert [text[s : s + 3] for s in starts] == ["N1.", "N2.", "N3."]
    text, _ = insert(hay, ["N1.", "N2."], [0.0, 0.01])  # same sentence end: the next one
    assert text == "N1. One two. N2. Three four.Five six! Seven."
    with pytest.raises(ValueError, match="too few sentences"):
        insert("No end here", ["a.", "b.", "c."], [0.1, 0.5, 0.9])


# --------------------------------------------------------------------------- scoring rules
def _case(task: str, value_type: str, needles: list[tuple[str, str, bool]]) -> Case:
    made = tuple(Needle(k, v, f"The code for {k} is {v}.", t) for k, v, t in needles)
    return Case(task, "wiki", 1000, 0, 0, "magic", value_type, "q?", made, "")


def test_multivalue_needs_every_value():
    case = _case("multivalue", "number", [("X", v, True) for v in ("1111111", "2222222")])
    assert case.is_correct("They are 1111111 and 2222222.")
    assert case.is_correct("1,111,111; 2 222 222".replace(" ", ",")) is True
    assert not case.is_correct("Only 1111111.")


def test_confusable_naming_two_values_is_wrong():
    case = _case(
        "confusable",
        "number",
        [("Bronton", "1234567", True), ("Brenton", "7654321", False)],
    )
    assert case.is_correct("The number for Bronton is 1234567.")
    assert not case.is_correct("Bronton: 1234567, Brenton: 7654321")
    assert not case.is_correct("7654321")
    assert case.named("Bronton: 1234567, Brenton: 7654321") == ["1234567", "7654321"]


def test_multikey_allows_other_values_like_ruler():
    case = _case("multikey", "number", [("A", "1234567", True), ("B", "7654321", False)])
    assert case.is_correct("1234567 (and B has 7654321)")
    assert not case.is_correct("7654321")


def test_uuid_exact_characters():
    value = "4146a91a-1c30-4313-84d2-92d374240bb0"
    case = _case("uuid", "uuid", [("K", value, True)])
    assert case.is_correct(f"It is {value}.")
    assert case.is_correct(f"It is {value.upper()}.")
    assert not case.is_correct("It is " + value[:-1] + "1.")
    assert not case.is_correct("It is " + value.replace("-", ""))


def test_number_and_word_matching():
    assert value_in("It is 1234567.", "1234567", "number")
    assert value_in("It is 1,234,567.", "1234567", "number")
    assert not value_in("It is 12345678.", "1234567", "number")
    assert not value_in("It is 123456.", "1234567", "number")
    assert value_in("The word is Lantern.", "lantern", "word")
    assert not value_in("lanterns", "lantern", "word")


def test_kept_needs_key_and_value_in_one_sentence():
    case = _case("confusable", "number", [("Bronton", "1", True), ("Brenton", "2", False)])
    needle = case.targets[0]
    assert needle.kept_in(["x", "The code  for\nbronton is 1."])
    assert not needle.kept_in(["The code for Brenton is 1."])  # the other key
    assert not needle.kept_in(["Bronton is here.", "The code is 1."])  # not one sentence
    assert case.kept([needle.text]) and not case.kept([case.others[0].text])


# --------------------------------------------------------------------------- runner
class _FakeEngine:
    """Stands in for the engine: the cache is every sentence with the asked key."""

    def answer(self, document, question, max_new_tokens=64):
        sentences = [
            Sentence(s, 1.0, 0, document.index(s), document.index(s) + len(s))
            for s in re.findall(r"[^.!?]*[.!?]", document)
            if "project" in s or "account" in s or "agent" in s or "unit" in s
        ]
        stats = Stats(tokens_read=len(document) // 4, cache_tokens=50, seconds=0.01)
        text = " ".join(s.text for s in sentences)[-200:]
        return Answer(text, Retrieval(question, sentences, stats), prompt_tokens=60)


def test_run_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(mn, "load_engine", lambda *a, **k: _FakeEngine())
    monkeypatch.setattr(mn, "engine_settings", lambda engine: {"model": "fake"})
    out = tmp_path / "mn.json"
    argv = ["run", "--lengths", "1000", "--samples", "1", "--haystacks", "wiki"]
    argv += ["--tasks", "number", "confusable", "--out", str(out)]
    argv += ["--options", '{"top_k_tokens": 200}', "--checkpoint", str(tmp_path / "c.jsonl")]
    assert mn.main(argv) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["cases_done"] == 2 and data["options"] == {"top_k_tokens": 200}
    assert {r["task"] for r in data["summary"]} == {"number", "confusable"}
    for r in data["cases"]:
        assert set(r) >= {"kept", "correct", "answer", "usage", "scan_seconds", "needles"}
        assert "setup" not in r
    # Resume: nothing left to run, the same cases come back.
    monkeypatch.setattr(mn, "run_case", lambda *a: pytest.fail("re-ran a finished case"))
    assert mn.main(argv) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["cases_done"] == 2
    assert "| number | wiki | 1,000 |" in mn.table(SimpleNamespace(input=str(out)))
    pytest.importorskip("matplotlib")  # a bench requirement, not a test one
    png = tmp_path / "mn.png"
    mn.plot(SimpleNamespace(input=str(out), png=str(png)))
    assert png.stat().st_size > 1000


def test_options_inline_and_file(tmp_path):
    assert mn.parse_options('{"chunk_tokens": 512}') == {"chunk_tokens": 512}
    assert mn.parse_options('{"chosen": {"top_k_tokens": 100}}') == {"top_k_tokens": 100}
    path = tmp_path / "o.json"
    path.write_text('{"chosen": {"top_k_tokens": 100, "note": 1}}', encoding="utf-8")
    assert mn.parse_options(str(path)) == {"top_k_tokens": 100}
    with pytest.raises(SystemExit, match="unknown"):
        mn.parse_options('{"chunk": 1}')
