"""The heads calibration's long views (``bench.retrieval_heads.joined_views``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.retrieval_heads import joined_views  # noqa: E402


def record(n: int) -> dict:
    sentences = [f"Item {n} sentence {k} tells fact {n * 10 + k}." for k in range(4)]
    text = " ".join(sentences)
    spans, at = [], 0
    for s in sentences:
        spans.append([at, at + len(s)])
        at += len(s) + 1
    return {
        "qid": f"q{n}",
        "question": f"What does item {n} tell?",
        "answer": str(n),
        "kind": "bridge",
        "text": text,
        "units": spans,
        "gold": [spans[1], spans[3]],
        "gold_units": [1, 3],
        "doc_tokens": 100,
    }


def test_each_view_holds_its_document_with_its_spans_moved_and_enough_tokens():
    records = [record(n) for n in range(12)]
    views = joined_views(records, view_tokens=450, max_tokens=500, seed=3)
    assert [v.qid for v in views] == [r["qid"] for r in records]
    placed = []
    for view, r in zip(views, records):
        assert view.question == r["question"]
        start = view.text.index(r["text"])
        placed.append(start)
        for (a, b), (x, y) in zip(view.gold, r["gold"]):
            assert view.text[a:b] == r["text"][x:y] and a == start + x
        assert [view.text[a:b] for a, b in view.units] == [r["text"][a:b] for a, b in r["units"]]
        parts = view.text.split("\n\n")
        assert len(parts) == 5  # 450 tokens need five documents of 100
        assert all(p in {x["text"] for x in records} for p in parts)
    assert len(set(placed)) > 1  # the asked document is not always first
    again = joined_views(records, view_tokens=450, max_tokens=500, seed=3)
    assert [v.text for v in again] == [v.text for v in views]
    assert all(v.text == r["text"] for v, r in zip(joined_views(records, 50, 500), records))
    capped = joined_views(records, view_tokens=450, max_tokens=320)
    assert all(len(v.text.split("\n\n")) == 3 for v in capped)  # a fourth would pass 320
