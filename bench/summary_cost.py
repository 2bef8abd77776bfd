"""What the summary track costs on one long document (issue 17), side by side with retrieval.

    python -m bench.summary_cost --device cuda --length 1000000

Per mode (``answer_mode`` "retrieval", then "summary"): one cold call, then the median of
``--runs`` warm ``retrieve`` calls on the essays haystack with the San Francisco needle at 50%
depth: scan seconds, note-writing seconds, tokens, notes written, and whether the needle was kept.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import RESULTS_DIR, load_essays, write_json
from bench.engine_setup import load_engine
from bench.haystack import QUESTION, HaystackBuilder, retrieval_hit


def measure(engine, text: str, runs: int) -> dict:
    """One cold and ``runs`` warm retrievals; medians of the warm ones."""
    records = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        r = engine.retrieve(text, QUESTION)
        records.append(
            {
                "seconds": time.perf_counter() - started,
                "scan_seconds": r.stats.seconds,
                "summary_seconds": r.stats.summary_seconds,
                "scan_tokens": r.stats.tokens_processed,
                "summary_tokens": r.stats.summary_tokens,
                "notes": len(r.notes),
                "mode": r.mode,
                "needle_kept": retrieval_hit(r.context),
            }
        )
    warm = records[1:]
    median = {
        k: statistics.median(x[k] for x in warm)
        for k in ("seconds", "scan_seconds", "summary_seconds")
    }
    return {"cold": records[0], "warm": warm, "warm_median": median}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.summary_cost")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--length", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS_DIR / "summary_cost.json"))
    args = parser.parse_args(argv)
    engine = load_engine(args.device, None, prep_workers=0)
    text = HaystackBuilder(load_essays(), engine.tokenizer).build(args.length, 50).text
    result = {"length": args.length, "settings": {}, "modes": {}}
    for mode in ("retrieval", "summary"):
        run = engine.with_options(answer_mode=mode)
        result["modes"][mode] = measure(run, text, args.runs)
        result["settings"][mode] = run.settings.changed()
    base = result["modes"]["retrieval"]["warm_median"]["seconds"]
    with_notes = result["modes"]["summary"]["warm_median"]["seconds"]
    result["summary_over_retrieval"] = round(with_notes / base, 3)
    write_json(args.out, result)
    print(f"retrieval {base:.2f} s, summary {with_notes:.2f} s: x{with_notes / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
