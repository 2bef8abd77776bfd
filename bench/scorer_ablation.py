"""Every scorer of the seam on the same captured attention: HotpotQA, one window per question.

    python -m bench.hotpotqa prepare                       # once (CPU): splits and baselines
    python -m bench.scorer_ablation --split dev            # choose on dev
    python -m bench.scorer_ablation --split report         # report

Each question's document (about 1,460 tokens) is read in **one** capture forward, not the
sliding scan, so every scorer ranks the same sentences from the same attention; then each
method fills the token budget best-first with the same rule and the same sentence units as the
baselines (``bench.baselines.fill_budget``). Four forwards per question: the retrieval heads
with the question rows (and the content-free question beside them, for ``score_baseline``),
every head of layer 18 summed (the paper's reading), and the two other query-row choices.

The variants are those of ``bench.hotpotqa.ABLATION``, built through the engine's own
``ranking_scorer`` from its settings, so what is measured is what the settings ship.
Output: ``bench/results/scorer_ablation_<split>.json`` (ids, hits and scores, no data text).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .baselines import fill_budget
from .common import RESULTS_DIR, Deadline, write_json
from .engine_setup import engine_settings, load_engine
from .hotpot_data import HotpotDoc, found, recall_stats
from .hotpotqa import ABLATION, BUDGETS, add_dense_rankings, load_prepared, mean

BASELINES = ("bm25", "dense_minilm", "random")
DEFAULTS = "defaults"


def capture_key(settings) -> tuple[str, str]:
    """The capture a variant's scorer reads: (which heads, which query rows)."""
    heads = "all" if settings.retrieval_heads == "all" else "auto"
    return heads, settings.question_rows


def build_variants(engine) -> tuple[dict[str, tuple[tuple[str, str], Any]], dict]:
    """``{name: (capture key, scorer)}`` for the defaults and every ablation variant, and
    ``{capture key: engine}``: one engine per capture, with the content-free baseline on where
    a variant of that capture reads it."""
    from infiniretri.ranking import ranking_scorer

    variants, baseline = {}, {}
    for name, options in {DEFAULTS: {}, **ABLATION}.items():
        settings = engine.settings.replace(**options)
        key = capture_key(settings)
        variants[name] = (key, ranking_scorer(settings, engine.attention_scorer))
        baseline[key] = baseline.get(key, False) or settings.score_baseline
    engines = {
        key: engine.with_options(retrieval_heads=key[0], question_rows=key[1], score_baseline=on)
        for key, on in sorted(baseline.items())
    }
    return variants, engines


def score_item(engines, variants, record: dict[str, Any]) -> dict[str, Any]:
    """Hits of every variant and baseline at every budget for one question."""
    doc = HotpotDoc.from_dict(record)
    texts = [doc.unit_text(i) for i in range(len(doc.units))]
    lengths = record["unit_tokens"]
    scores: dict[str, list[float]] = {}
    for key, engine in engines.items():
        units = engine.units(texts)
        with engine.unit_scores(units, doc.question) as captured:
            for name, (want, scorer) in variants.items():
                if want == key:
                    scores[name] = scorer.select(captured)[0].unit_scores
    scores.update({name: record["rankings"][name] for name in BASELINES})
    runs = []
    for name, unit_scores in scores.items():
        for budget in BUDGETS:
            keep = fill_budget(unit_scores, lengths, budget)
            runs.append(
                {
                    "method": name,
                    "budget": budget,
                    "hits": found(doc.gold, [doc.units[i] for i in keep]),
                }
            )
    return {"qid": doc.qid, "kind": doc.kind, "gold": len(doc.gold), "runs": runs}


def summarize(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recall per (method, budget), and its paired difference to BM25 and to MiniLM."""
    from .tables import paired_differences

    methods = sorted({r["method"] for r in items[0]["runs"]}) if items else []
    rows = []
    for method in methods:
        for budget in BUDGETS:
            hits = [
                r["hits"]
                for item in items
                for r in item["runs"]
                if r["method"] == method and r["budget"] == budget
            ]
            row: dict[str, Any] = {
                "method": method,
                "budget": budget,
                "n": len(hits),
                "recall": mean(recall_stats(h)[0] for h in hits),
            }
            for other in ("bm25", "dense_minilm"):
                if method != other:
                    d = paired_differences(items, method, other, budget, "recall")
                    row[f"vs_{other}"] = None if d is None else [round(x, 4) for x in d]
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scorer_ablation", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--split", choices=("dev", "report"), default="dev")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="model dtype (default: the engine's)")
    parser.add_argument("--limit", type=int, default=None, help="first N items of the split")
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    deadline = Deadline(args.deadline)
    records = load_prepared(args.split, args.limit)
    add_dense_rankings(records, args.device)
    base = load_engine(args.device, args.dtype)
    variants, engines = build_variants(base)
    items, started = [], time.perf_counter()
    for n, record in enumerate(records):
        if deadline.expired(10):
            print("deadline reached: remaining items dropped", file=sys.stderr)
            break
        items.append(score_item(engines, variants, record))
        if n % 25 == 0:
            print(f"scorer_ablation {args.split}: {n}/{len(records)}", file=sys.stderr)
    payload = {
        "split": args.split,
        "items_total": len(records),
        "items_done": len(items),
        "budgets": list(BUDGETS),
        "reading": "one capture forward over the whole document per question (no scan)",
        "variants": {DEFAULTS: {}, **ABLATION},
        "engine": engine_settings(base),
        "seconds": round(time.perf_counter() - started, 1),
        "summary": summarize(items),
        "items": items,
    }
    path = Path(args.out or RESULTS_DIR / f"scorer_ablation_{args.split}.json")
    write_json(path, payload)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
