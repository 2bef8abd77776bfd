"""The dev-split sweep of the fusion's lexical weight (``bench.fusion_sweep``), on a tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fusion_sweep import SCORES, sweep, table  # noqa: E402
from infiniretri import InfiniRetri  # noqa: E402


def record(n: int) -> dict:
    sentences = [f"Report {n} line {k} says the colour code is {n * 7 + k}." for k in range(30)]
    text = " ".join(sentences)
    at = [0]
    for s in sentences[:-1]:
        at.append(at[-1] + len(s) + 1)
    spans = [[a, a + len(s)] for a, s in zip(at, sentences)]
    return {
        "text": text,
        "question": f"What colour code does line 17 of report {n} give?",
        "gold": spans[17],
        "hotpot_gold": [spans[17], spans[3]],
    }


def test_each_row_is_the_scan_at_its_weight_chunk_and_budget(tiny_llama):
    model, tokenizer = tiny_llama
    base = InfiniRetri(model, tokenizer, chunk_tokens=128, retrieval_layer=2)
    records = [record(n) for n in range(2)]
    hotpot = [{**r, "gold": r["hotpot_gold"]} for r in records]
    sets = {"hotpotqa": hotpot, "doc2dial": records}
    rows = sweep(base, sets, weights=(0.0, 3.0), chunks=(128, 256), budgets=(32, 96))
    assert len(rows) == 2 * 2 * 2 * 2
    assert {(r["lexical_weight"], r["chunk_tokens"], r["budget"]) for r in rows} == {
        (w, c, b) for w in (0.0, 3.0) for c in (128, 256) for b in (32, 96)
    }
    for row in rows:
        engine = base.with_options(
            lexical_weight=row["lexical_weight"],
            chunk_tokens=row["chunk_tokens"],
            max_cache_tokens=row["budget"],
        )
        expected = []
        for r in sets[row["data"]]:
            ret = engine.retrieve(r["text"], r["question"])
            assert sum(len(ids) for ids in ret.token_ids) <= row["budget"]
            spans = [(s.char_start, s.char_end) for s in ret.sentences]
            expected.append(SCORES[row["data"]](r, spans))
        assert row["items"] == expected
        assert abs(row["score"] - sum(expected) / len(expected)) < 1e-4
    # the lexical weight matters here: the question names the line's words
    by = {
        (r["data"], r["lexical_weight"], r["chunk_tokens"], r["budget"]): r["items"] for r in rows
    }
    assert any(by[(d, 0.0, c, b)] != by[(d, 3.0, c, b)] for d, _, c, b in by)
    lines = table(rows).splitlines()
    assert len(lines) == 2 + 2 * 2 * 2 and lines[2].startswith("| doc2dial | 0.0 | 128 |")


def test_the_scores_follow_each_benchmarks_rule():
    r = record(0)
    gold = r["gold"]
    assert SCORES["doc2dial"](r, [(gold[0] + 2, gold[1] - 2)]) == 1.0
    assert SCORES["doc2dial"](r, [(0, 10)]) == 0.0
    hp = {**r, "gold": r["hotpot_gold"]}
    assert SCORES["hotpotqa"](hp, [tuple(r["hotpot_gold"][0])]) == 0.5
