"""HotpotQA answer F1 of the product's answer step alone (``engine.answer_from``), per item.

    python -m bench.hotpotqa_answer --limit 60 --out bench/results/hotpotqa_answer_cpu.json

A fast check of an answer-step change: the first ``--limit`` report items (prepared by
``python -m bench.hotpotqa prepare``), each retrieved and answered at the engine's defaults
(32 new tokens, as ``bench/hotpotqa.py``). Run it at two commits (``PYTHONPATH`` pointing at
each checkout) and compare the files with ``--compare``: the same items, paired.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.common import RESULTS_DIR, qa_f1_score, write_json
from bench.engine_setup import load_engine, parse_options
from bench.hotpotqa import MAX_NEW_TOKENS, load_prepared


def run(args: argparse.Namespace) -> None:
    engine = load_engine(args.device, None, **{"prep_workers": 0, **parse_options(args.options)})
    items = []
    started = time.perf_counter()
    for record in load_prepared("report", args.limit):
        retrieval = engine.retrieve(record["text"], record["question"])
        answer = engine.answer_from(retrieval, max_new_tokens=MAX_NEW_TOKENS)
        items.append(
            {
                "qid": record["qid"],
                "gold": record["answer"],
                "answer": answer.text,
                "f1": qa_f1_score(answer.text, record["answer"]),
                "mode": retrieval.mode,
                "prompt_tokens": answer.usage.prompt_tokens,
            }
        )
    result = {
        "split": "report",
        "items_done": len(items),
        "options": parse_options(args.options),
        "f1": statistics.fmean(i["f1"] for i in items),
        "seconds": time.perf_counter() - started,
        "items": items,
    }
    write_json(args.out, result)
    print(f"answer F1 {100 * result['f1']:.1f} over {len(items)} items")


def compare(paths: list[str]) -> None:
    before, after = (json.loads(Path(p).read_text(encoding="utf-8")) for p in paths)
    a = {i["qid"]: i for i in before["items"]}
    pairs = [(a[i["qid"]], i) for i in after["items"] if i["qid"] in a]
    changed = [(x, y) for x, y in pairs if x["answer"] != y["answer"]]
    mean = statistics.fmean
    print(
        f"{len(pairs)} paired items: F1 {100 * mean(x['f1'] for x, _ in pairs):.1f} -> "
        f"{100 * mean(y['f1'] for _, y in pairs):.1f}; {len(changed)} answers differ"
    )
    for x, y in changed:
        print(f"  {x['qid']}: {x['answer']!r} ({x['f1']:.2f}) -> {y['answer']!r} ({y['f1']:.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpotqa_answer")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--out", default=str(RESULTS_DIR / "hotpotqa_answer_cpu.json"))
    parser.add_argument("--options", default=None, help="engine settings (inline JSON or a file)")
    parser.add_argument("--compare", nargs=2, default=None, help="two result files: before, after")
    args = parser.parse_args(argv)
    if args.compare:
        compare(args.compare)
    else:
        run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
