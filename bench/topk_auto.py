"""``top_k_tokens="auto"`` against the fixed default on HotpotQA, paired (issue 17).

    python -m bench.topk_auto --limit 300 --out bench/results/topk_auto_hotpotqa_cpu.json

Each report item (prepared by ``python -m bench.hotpotqa prepare``) is retrieved twice by one
engine at its defaults, once with ``top_k_tokens=300`` and once with ``"auto"``: supporting-sentence
recall of the whole final cache (HotpotQA's gold sentences, the bench's half-inside rule) and the
cache's size in tokens, with the mean per-question difference and its 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.aggregate import bootstrap_ci
from bench.common import RESULTS_DIR, write_json
from bench.engine_setup import load_engine
from bench.hotpot_data import found, recall_stats
from bench.hotpotqa import ir_spans, load_prepared

SETTINGS = {"fixed": 300, "auto": "auto"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.topk_auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default=str(RESULTS_DIR / "topk_auto_hotpotqa_cpu.json"))
    args = parser.parse_args(argv)
    base = load_engine(args.device, None, prep_workers=0)
    engines = {name: base.with_options(top_k_tokens=k) for name, k in SETTINGS.items()}
    items = []
    started = time.perf_counter()
    for record in load_prepared("report", args.limit):
        row = {"qid": record["qid"], "gold": len(record["gold"])}
        for name, engine in engines.items():
            retrieval = engine.retrieve(record["text"], record["question"])
            row[name] = {
                "recall": recall_stats(found(record["gold"], ir_spans(retrieval)))[0],
                "cache_tokens": retrieval.stats.cache_tokens,
                "sentences": len(retrieval.sentences),
            }
        items.append(row)
    summary = {}
    for name in SETTINGS:
        summary[name] = {
            "recall": bootstrap_ci([i[name]["recall"] for i in items]),
            "cache_tokens": bootstrap_ci([i[name]["cache_tokens"] for i in items]),
        }
    summary["auto_minus_fixed"] = {
        key: bootstrap_ci([i["auto"][key] - i["fixed"][key] for i in items])
        for key in ("recall", "cache_tokens")
    }
    payload = {
        "benchmark": "topk_auto_hotpotqa",
        "split": "report",
        "items_done": len(items),
        "settings": SETTINGS,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
        "items": items,
    }
    write_json(args.out, payload)
    print({k: v for k, v in summary.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
