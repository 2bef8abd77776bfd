"""Sweep the fusion's lexical weight at two chunk sizes, on the dev splits only.

    python -m bench.hotpotqa prepare && python -m bench.doc2dial prepare     # CPU, once
    python -m bench.fusion_sweep --device cuda                # writes results/fusion_sweep_dev.json

Each (``lexical_weight``, ``chunk_tokens``, budget) runs the product's scan with
``max_cache_tokens`` set to the budget over the 100 dev items of HotpotQA (score:
supporting-sentence recall) and of doc2dial (score: gold hit, a selected sentence of the gold
passage). The report splits are never read: a weight chosen here is then checked by the two
reports. Per-item scores are kept, so that two settings can be compared question by question.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import RESULTS_DIR, read_json_gz, write_json
from .doc2dial import PREPARED as DOC2DIAL_PREPARED
from .doc2dial_data import gold_hit
from .engine_setup import engine_settings, load_engine
from .hotpot_data import found
from .hotpotqa import BUDGETS, load_prepared, mean

WEIGHTS = (1.5, 2.5, 3.5)
CHUNKS = (1024, 6144)

Spans = list[tuple[int, int]]


def hotpot_recall(record: dict[str, Any], spans: Spans) -> float:
    """Share of the record's supporting sentences inside ``spans``."""
    hits = found([tuple(g) for g in record["gold"]], spans)
    return sum(hits) / len(hits)


def doc2dial_hit(record: dict[str, Any], spans: Spans) -> float:
    """1.0 when a span holds a sentence of the record's gold passage."""
    return float(gold_hit(record["gold"], spans))


SCORES: dict[str, Callable[[dict[str, Any], Spans], float]] = {
    "hotpotqa": hotpot_recall,
    "doc2dial": doc2dial_hit,
}


def dev_sets(limit: int | None) -> dict[str, list[dict[str, Any]]]:
    """The dev items of both benchmarks (prepared by their ``prepare`` stages)."""
    data = read_json_gz(DOC2DIAL_PREPARED)
    doc2dial = [data["items"][q] for q in data["splits"]["dev"]]
    return {"hotpotqa": load_prepared("dev", limit), "doc2dial": doc2dial[:limit]}


def sweep(
    base,
    sets: dict[str, list[dict[str, Any]]],
    weights: Sequence[float] = WEIGHTS,
    chunks: Sequence[int] = CHUNKS,
    budgets: Sequence[int] = BUDGETS,
) -> list[dict[str, Any]]:
    """One row per (data set, weight, chunk, budget): mean score and per-item scores."""
    rows = []
    for weight in weights:
        for chunk in chunks:
            for budget in budgets:
                engine = base.with_options(
                    lexical_weight=weight, chunk_tokens=chunk, max_cache_tokens=budget
                )
                for name, records in sets.items():
                    pairs = [(r["text"], r["question"]) for r in records]
                    score = SCORES[name]
                    items = [
                        score(r, [(s.char_start, s.char_end) for s in ret.sentences])
                        for r, ret in zip(records, engine.retrieve_batch(pairs))
                    ]
                    rows.append(
                        {
                            "data": name,
                            "lexical_weight": weight,
                            "chunk_tokens": chunk,
                            "budget": budget,
                            "score": mean(items),
                            "items": items,
                        }
                    )
            print(f"fusion sweep: weight {weight}, chunk {chunk} done", file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per (data set, weight, chunk), the budgets side by side (%)."""
    lines: dict[tuple, list[str]] = {}
    for r in rows:
        key = (r["data"], r["lexical_weight"], r["chunk_tokens"])
        lines.setdefault(key, []).append(f"{100 * r['score']:.1f}")
    out = ["| data | lexical_weight | chunk | " + " / ".join(f"@{b}" for b in BUDGETS) + " |"]
    out.append("|---|---|---|---|")
    out += [f"| {d} | {w} | {c} | {' / '.join(v)} |" for (d, w, c), v in sorted(lines.items())]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fusion_sweep")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    parser.add_argument("--chunks", type=int, nargs="+", default=list(CHUNKS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    base = load_engine(args.device, args.dtype)
    rows = sweep(base, dev_sets(args.limit), args.weights, args.chunks)
    payload = {"split": "dev", "budgets": list(BUDGETS), "engine": engine_settings(base)}
    payload["rows"] = rows
    path = Path(args.out) if args.out else RESULTS_DIR / "fusion_sweep_dev.json"
    write_json(path, payload)
    print(table(rows))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
