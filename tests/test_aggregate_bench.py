"""The aggregate benchmark (issue 17): its generator, its scores, and tiny end-to-end runs."""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import aalcr_global as ag  # noqa: E402
from bench import aggregate as agg  # noqa: E402
from bench.aggregate_data import (  # noqa: E402
    SCENARIO_NAMES,
    SCENARIOS,
    Item,
    count_name,
    gold_count,
    make_case,
    make_needle_case,
    name_in,
    scenario_for,
    score_answer,
)
from bench.haystack import NEEDLE  # noqa: E402
from bench.multineedle_data import HaystackSource, wiki_text  # noqa: E402
from infiniretri import InfiniRetri  # noqa: E402
from infiniretri.sentences import SentenceSplitter  # noqa: E402
from infiniretri.testing import tiny_model  # noqa: E402

LENGTHS = (4_000, 12_000)


# --------------------------------------------------------------------------- the generator
@pytest.mark.parametrize("sample", range(4))
def test_items_once_each_in_sentences_of_their_own(source, tokenizer, sample):
    splitter = SentenceSplitter()
    for length in LENGTHS:
        case = make_case(source, length, sample)
        text = case.text
        tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert abs(tokens - length) <= 0.05 * length, (case.id, tokens)
        sentences = {text[a:b] for a, b in splitter.split(text)}
        scenario = next(s for s in SCENARIOS if s.name == case.scenario)
        assert len(case.gold) == gold_count(length)
        assert len(case.distractors) == round(len(case.gold) / 2)
        assert not set(case.gold) & set(case.distractors)
        starts = [i.char_start for i in case.items]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        for item in case.items:
            assert count_name(text, item.name) == 1, item.name  # once, as a whole name
            assert text.lower().count(item.name.lower()) == 1
            assert text[item.char_start : item.char_end] == item.text
            assert item.text in sentences, item.text  # one sentence for the engine, too
            place = scenario.place if item.gold else scenario.other_place
            other = scenario.other_place if item.gold else scenario.place
            assert place in item.text and other not in item.text
        assert scenario.place in case.question and scenario.other_place not in case.question
        assert not any(name_in(case.question, n) for n in case.gold + case.distractors)


def test_depths_spread_through_the_document(wiki):
    case = make_case(wiki, 12_000, 0)
    depths = [100 * i.char_start / len(case.text) for i in case.items]
    n = len(depths)
    for k, depth in enumerate(sorted(depths)):  # one item per slice
        assert 100 * k / n - 1 <= depth <= 100 * (k + 1) / n + 1, depths
    assert any(not i.gold for i in case.items[: n // 2])  # distractors are mixed in
    assert any(not i.gold for i in case.items[n // 2 :])


def test_wordings_vary_in_structure(wiki):
    for sample in range(4):
        case = make_case(wiki, 12_000, sample)
        scenario = next(s for s in SCENARIOS if s.name == case.scenario)
        gold = [i for i in case.items if i.gold]
        assert len({i.template for i in gold}) == len(scenario.templates)  # all six used
        # Not only the values differ: the sentences open differently and put the name at
        # different places.
        openings = {i.text.replace(i.name, "NAME").split()[0] for i in gold}
        assert len(openings) >= 5, openings
        where = {round(4 * i.text.index(i.name) / len(i.text)) for i in gold}
        assert len(where) >= 3
        # Distractors are written with the same templates.
        assert {i.template for i in case.items if not i.gold} <= {i.template for i in gold}


def test_scenarios_and_names(wiki):
    assert {scenario_for(s).name for s in range(4)} == set(SCENARIO_NAMES)
    codes = make_case(wiki, 4_000, scenario="lab").gold
    assert all(re.fullmatch(r"[A-Z]{2}-\d{4}", c) for c in codes)
    minerals = make_case(wiki, 4_000, scenario="survey").gold
    assert all(m.endswith("ite") and m[0].isupper() for m in minerals)
    for name in SCENARIO_NAMES:
        case = make_case(wiki, 4_000, scenario=name)
        names = case.gold + case.distractors
        assert len(set(names)) == len(names)
        assert all(a.lower() not in b.lower() for a in names for b in names if a != b)
    with pytest.raises(ValueError, match="scenario"):
        make_case(wiki, 4_000, scenario="nope")
    assert (gold_count(8_000), gold_count(32_000), gold_count(128_000)) == (10, 20, 40)


def test_determinism_by_seed(wiki, tokenizer):
    a = make_case(wiki, 6_000, 1, seed=3)
    b = make_case(HaystackSource("wiki", wiki_text(), tokenizer), 6_000, 1, seed=3)
    assert a == b and a.text == b.text
    c = make_case(wiki, 6_000, 1, seed=4)
    assert set(c.gold) != set(a.gold)
    assert make_case(wiki, 6_000, 2, seed=3).text != a.text
    assert make_needle_case(wiki, 6_000, 0) == make_needle_case(wiki, 6_000, 0)


def test_needle_control_document(wiki, tokenizer):
    case = make_needle_case(wiki, 8_000, 0)
    assert case.text.count(NEEDLE) == 1
    assert case.text[case.char_start :].startswith(NEEDLE)
    tokens = len(tokenizer(case.text, add_special_tokens=False)["input_ids"])
    assert abs(tokens - 8_000) <= 400


# --------------------------------------------------------------------------- the scores
def test_score_answer_by_hand():
    gold, others = ["Koramite", "Velorite", "Tarvonite"], ["Zidamite"]
    s = score_answer("Koramite, velorite", gold, others)
    assert s["recall"] == pytest.approx(2 / 3, abs=1e-4) and s["precision"] == 1.0
    assert s["f1"] == pytest.approx(0.8, abs=1e-4)
    s = score_answer("Koramite, Velorite, Tarvonite and Zidamite.", gold, others)
    assert s["recall"] == 1.0 and s["precision"] == 0.75
    assert s["distractors_named"] == ["Zidamite"]
    s = score_answer("I do not know.", gold, others)
    assert s["recall"] == 0.0 and s["precision"] is None and s["f1"] == 0.0
    s = score_answer("Zidamite", gold, others)
    assert s["precision"] == 0.0 and s["f1"] == 0.0
    # Whole names only: a plural, a longer code or a part of a word is not the name.
    assert score_answer("Koramites; Velorite-like", gold, others)["recall"] == 0.0
    assert not name_in("RK-22910", "RK-2291") and name_in("(rk-2291).", "RK-2291")
    assert name_in("Ines Broxley", "Broxley") and not name_in("Broxleyan", "Broxley")


def test_kept_in_cache_and_note_ranges():
    item = Item("Koramite", True, "A vein of Koramite.", 0, char_start=100)
    sentence = SimpleNamespace(doc_index=0, char_start=100, char_end=119, text=item.text)
    elsewhere = SimpleNamespace(doc_index=0, char_start=300, char_end=319, text="Koramite.")
    assert item.in_sentences([sentence]) and not item.in_sentences([elsewhere])
    other_doc = SimpleNamespace(doc_index=1, char_start=100, char_end=119, text=item.text)
    assert not item.in_sentences([other_doc])

    def note(a, b, doc=0, end_doc=0):
        return SimpleNamespace(doc_index=doc, char_start=a, end_doc_index=end_doc, char_end=b)

    assert item.in_note_range([note(50, 400)])
    assert not item.in_note_range([note(101, 400)]) and not item.in_note_range([note(0, 100)])
    assert item.in_note_range([note(500, 20, doc=0, end_doc=1)], doc_index=1) is False
    assert item.in_note_range([note(500, 200, doc=0, end_doc=1)], doc_index=1)
    assert Item("X", True, "X.", 0, char_start=10).in_note_range([note(500, 20, 0, 1)], 1)


def test_bootstrap_interval():
    assert agg.bootstrap_ci([]) is None
    assert agg.bootstrap_ci([0.5]) == (0.5, 0.5, 0.5)
    assert agg.bootstrap_ci([1.0] * 5) == (1.0, 1.0, 1.0)
    mean, lo, hi = agg.bootstrap_ci([0.0, 0.0, 1.0, 1.0, 0.5, 0.25, 0.75, 1.0])
    assert mean == pytest.approx(0.5625) and lo < mean < hi and lo >= 0.0 and hi <= 1.0
    assert agg.bootstrap_ci([0.0, 1.0] * 4, seed=1) == agg.bootstrap_ci([0.0, 1.0] * 4, seed=1)


def test_aalcr_scores_by_hand():
    s = ag.score("It is a medium-sized business.", "Medium-sized business")
    assert s["contains"] is True and 0.0 < s["f1"] < 1.0
    s = ag.score("Medium sized business", "Medium-sized business")
    assert s["contains"] is False  # punctuation goes, the words do not split
    assert ag.score("Prompt Hacking", "Prompt Hacking") == {"contains": True, "f1": 1.0}
    assert ag.score("Nothing", "Prompt Hacking") == {"contains": False, "f1": 0.0}


def test_insert_moves_to_the_next_paragraph():
    from bench.aggregate_data import insert

    hay = "Breathing it at only 6 m.\n\nThe next paragraph starts. It ends here."
    text, (start,) = insert(hay, ["A new one."], [0.5])
    assert (
        text == "Breathing it at only 6 m.\n\nA new one. The next paragraph starts. It ends here."
    )
    assert text[start:].startswith("A new one.")
    splitter = SentenceSplitter()
    assert "A new one." in {text[a:b] for a, b in splitter.split(text)}


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_engine():
    """A tiny random-weight Llama engine (fast; its answers are noise, its bookkeeping real)."""
    model, tokenizer = tiny_model("llama", seed=3)
    return InfiniRetri(model, tokenizer, chunk_tokens=512, retrieval_layer=1, prep_workers=0)


def test_aggregate_run_resume_and_table(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(agg, "load_engine", lambda *a, **k: tiny_engine)
    out = tmp_path / "agg.json"
    argv = ["run", "--lengths", "2000", "--samples", "1", "--haystacks", "wiki", "--out", str(out)]
    argv += ["--checkpoint", str(tmp_path / "c.jsonl"), "--options", '{"top_k_tokens": 100}']
    assert agg.main(argv) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["errors"] == [] and data["records_done"] == 4 + 2
    assert data["options"] == {"top_k_tokens": 100}
    cases = {r["method"]: r for r in data["cases"]}
    assert set(cases) == set(agg.METHODS)
    for r in cases.values():
        assert 0.0 <= r["recall"] <= 1.0 and 0.0 <= r["f1"] <= 1.0
        assert r["n_gold"] == gold_count(2000) and len(r["items"]) == r["n_gold"] + 3
        assert set(r["items"][0]) >= {"in_cache", "shown", "in_note_range", "in_note_text"}
        assert all(i["in_cache"] for i in r["items"] if i["shown"])  # shown from the cache
        assert r["usage"]["prompt_tokens"] > 0 and r["seconds"] > 0
        # The record's scores follow from its own per-item flags.
        named = [i for i in r["items"] if i["gold"] and i["named"]]
        assert r["gold_named"] == len(named)
        assert r["recall"] == pytest.approx(len(named) / r["n_gold"], abs=1e-4)
        assert "setup" not in r
    # The whole 2k document fits the window: full context sees every item.
    assert cases["full_context"]["kept_cache"] == 1.0 and not cases["full_context"]["truncated"]
    assert cases["full_context"]["usage"]["scan_tokens"] == 0
    assert cases["retrieval"]["mode"] == "retrieval" and cases["retrieval"]["notes"] == 0
    # The answer prompt shows at most answer_sentences (8) cached sentences.
    assert sum(i["shown"] for i in cases["retrieval"]["items"]) <= 8
    assert cases["summary"]["mode"] == "summary"
    assert cases["auto"]["mode"] in ("retrieval", "summary")
    for method in ("retrieval", "summary", "auto"):  # notes only where the summary track ran
        if cases[method]["mode"] == "retrieval":
            assert cases[method]["notes"] == 0 and cases[method]["note_texts"] == []
    # The summary track ran (its note prompts were read) and its cost is counted once.
    summary = cases["summary"]
    assert summary["notes"] == len(summary["note_texts"])
    assert summary["summary_tokens"] > 0 and summary["usage"]["summary_tokens"] > 0
    assert summary["usage"]["summary_tokens"] == summary["summary_tokens"]
    assert cases["retrieval"]["summary_tokens"] == 0
    control = {r["method"]: r for r in data["control_cases"]}
    assert set(control) == {"retrieval", "auto"}
    assert all(isinstance(r["correct"], bool) and r["mode"] for r in control.values())
    rows = {(r["method"], r["haystack"]) for r in data["summary"]}
    assert rows == {(m, "wiki") for m in agg.METHODS}
    row = next(r for r in data["summary"] if r["method"] == "summary")
    assert row["summary_rate"] == 1.0 and len(row["recall"]) == 3
    # Resume: nothing is run again, the same records come back.
    monkeypatch.setattr(agg, "run_aggregate", lambda *a: pytest.fail("re-ran an answer"))
    monkeypatch.setattr(agg, "run_needle", lambda *a: pytest.fail("re-ran an answer"))
    assert agg.main(argv) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["records_done"] == 6
    text = agg.table(SimpleNamespace(input=[str(out)]))
    assert "| summary | 2k | wiki | 1 |" in text and "Needle control" in text
    # Two halves merge back into the same summaries.
    halves = []
    for k in range(2):
        part = dict(data, cases=data["cases"][k::2], control_cases=data["control_cases"][k::2])
        part["records_total"] = len(part["cases"]) + len(part["control_cases"])
        halves.append(tmp_path / f"part{k}.json")
        halves[-1].write_text(json.dumps(part), encoding="utf-8")
    merged = tmp_path / "merged.json"
    assert agg.main(["merge", "--input", *map(str, halves), "--out", str(merged)]) == 0
    both = json.loads(merged.read_text(encoding="utf-8"))
    assert both["summary"] == data["summary"] and both["control"] == data["control"]
    assert both["records_done"] == both["records_total"] == 6
    assert len(both["merged_from"]) == 2


def test_shards_split_the_documents():
    assert agg.parse_shard(None) == (0, 1) and agg.parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(SystemExit):
            agg.parse_shard(bad)
    picked = [[i for i in range(10) if agg.in_shard(i, (k, 3))] for k in range(3)]
    assert sorted(i for p in picked for i in p) == list(range(10)) and picked[0] == [0, 3, 6, 9]


def test_aalcr_global_run_and_table(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(ag, "load_engine", lambda *a, **k: tiny_engine)
    prose = wiki_text()[:6_000]
    prepared = tmp_path / "p.json.gz"
    items = [
        {
            "qid": "q0",
            "doc_id": "d0",
            "question": "What is steam?",
            "answer": "water vapour",
            "row": 0,
            "verbatim": False,
        },
        {
            "qid": "q1",
            "doc_id": "d0",
            "question": "Who built engines?",
            "answer": "Watt",
            "row": 1,
            "verbatim": True,
        },
    ]
    with gzip.open(prepared, "wt", encoding="utf-8") as handle:
        json.dump({"data": "test", "items": items, "documents": {"d0": prose}}, handle)
    out = tmp_path / "a.json"
    argv = ["run", "--prepared", str(prepared), "--out", str(out), "--max-new-tokens", "8"]
    argv += ["--checkpoint", str(tmp_path / "c.jsonl"), "--methods", "retrieval", "full_context"]
    argv += ["--options", '{"prep_workers": 0}']
    assert ag.main(argv) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["errors"] == [] and data["records_done"] == 4 and data["items_verbatim"] == 1
    for r in data["records"]:
        assert isinstance(r["contains"], bool) and 0.0 <= r["f1"] <= 1.0
        assert r["contains"] == ag.score(r["answer"], r["gold"])["contains"]
    subsets = {(r["subset"], r["method"]): r["n"] for r in data["summary"]}
    assert subsets[("all", "retrieval")] == 2 and subsets[("verbatim", "full_context")] == 1
    text = agg.table(SimpleNamespace(input=[str(out)]))
    assert "| reasoned | retrieval | 1 |" in text
    # Shards: each runs its share of the questions; merged, they are the whole run.
    parts = []
    for k in range(2):
        parts.append(tmp_path / f"s{k}.json")
        shard = [*argv, "--shard", f"{k}/2", "--out", str(parts[-1])]
        assert ag.main(shard) == 0  # from the checkpoint: nothing new runs
    assert [json.loads(p.read_text())["items_total"] for p in parts] == [1, 1]
    merged = tmp_path / "m.json"
    assert ag.main(["merge", "--input", *map(str, parts), "--out", str(merged)]) == 0
    both = json.loads(merged.read_text(encoding="utf-8"))
    assert both["summary"] == data["summary"] and both["items_verbatim"] == 1
