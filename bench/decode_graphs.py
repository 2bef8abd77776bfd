"""Answer decoding with and without CUDA graphs, side by side (issue 16).

    python -m bench.decode_graphs --device cuda --out bench/results/decode_graphs.json

One engine over the embedded model with ``cuda_graphs`` on (the default) and one without, on the
same retrievals of the essay haystack (needle at 50%): seconds of ``answer_from`` (the answer
step alone: re-scoring, prompt, decoding), and whether the two answers are the same text.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bench.common import RESULTS_DIR, write_json
from bench.engine_setup import load_engine
from bench.haystack import QUESTION, HaystackBuilder, answer_hit, retrieval_hit

LENGTHS = (8000, 128000, 1000000)
RUNS = 3


def timed_answer(engine, retrieval) -> tuple[float, object]:
    torch.cuda.synchronize()
    start = time.perf_counter()
    answer = engine.answer_from(retrieval)
    torch.cuda.synchronize()
    return time.perf_counter() - start, answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_graphs")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--out", default=str(RESULTS_DIR / "decode_graphs.json"))
    args = parser.parse_args(argv)
    if not args.device.startswith("cuda"):
        raise SystemExit("--device must be a CUDA device: the comparison is about CUDA graphs")
    from bench.common import load_essays

    graphs = load_engine(args.device)  # warmed up: its decoding graph is recorded
    eager = graphs.with_options(cuda_graphs=False)
    eager.warmup()
    builder = HaystackBuilder(load_essays(), graphs.tokenizer)
    rows = []
    for length in args.lengths:
        retrieval = graphs.retrieve(builder.build(length, 50).text, QUESTION)
        times = {"graphs": [], "eager": []}
        answers = {}
        for _ in range(RUNS):
            for name, engine in (("graphs", graphs), ("eager", eager)):
                seconds, answers[name] = timed_answer(engine, retrieval)
                times[name].append(seconds)
        row = {
            "length": length,
            "needle_kept": retrieval_hit(retrieval.context),
            "answer_graphs": answers["graphs"].text,
            "answer_eager": answers["eager"].text,
            "same_answer": answers["graphs"].text == answers["eager"].text,
            "answer_names_needle": answer_hit(answers["graphs"].text),
            "generated_tokens": answers["graphs"].generated_tokens,
            "answer_seconds_graphs": round(statistics.median(times["graphs"]), 4),
            "answer_seconds_eager": round(statistics.median(times["eager"]), 4),
        }
        rows.append(row)
        print(row, flush=True)
    decoding = graphs.context.decode_graphs(True)
    payload = {
        "benchmark": "decode_graphs",
        "runs_per_setting": RUNS,
        "graph_error": decoding.error,
        "rows": rows,
    }
    write_json(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
