"""Doc tokens/s of a corpus job on a local Ray, with 1 and 2 CPU workers (and in-process).

    python bench/ray_throughput.py [--docs 8] [--doc-tokens 600] [--workers 0,1,2]
        [--model DIR] [--out bench/results/ray_throughput.json]

Each configuration runs the same job (``infiniretri.batch.run_job``: ``--workers 0`` in this
process, else a local Ray started with ``num_cpus`` = this machine's cores) over ``--docs``
documents of about ``--doc-tokens`` tokens cut from the example Wikipedia text, with one question
each. Reported per configuration:

* ``job_doc_tokens_per_s``: document tokens / wall-clock seconds of the whole job, actor start-up
  (process start, imports, model load) included: what a user sees on a job this small;
* ``scan_doc_tokens_per_s_per_actor``: document tokens / the sum of the scans' own seconds
  (``stats.seconds`` of each row; with the default ``--batch-size 1`` each call is one row, so
  the sum is the actors' busy time): the steady per-actor rate, start-up excluded;
* ``steady_doc_tokens_per_s``: per-actor rate x actors (``workers=0``: the in-process rate);
  an estimate of the job rate once actors are up, assuming the actors do not slow each other.

Default model: the embedded SmolLM2-135M (``--model`` takes a local model directory). Ray actors
get one CPU each, so torch runs one thread per actor (Ray sets ``OMP_NUM_THREADS``); in-process
torch uses every core. GPU runs (one actor against several actors sharing a GPU with fractional
``num_gpus``, and the multi-GPU runner) are ``bench/ray_gpu.py`` and ``bench/ray_multi_gpu.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
QUESTIONS = [
    "Which NASA satellite measured the dust blown from the Sahara to the Amazon?",
    "Who first isolated oxygen?",
    "What did James Watt improve?",
    "How much dust crosses the Atlantic each year?",
]


def corpus(docs: int, doc_tokens: int) -> list[dict]:
    text = DOCUMENT.read_text(encoding="utf-8")
    size = doc_tokens * 4  # about 4 characters per token of English prose
    rows = []
    for i in range(docs):
        start = (i * size) % max(1, len(text) - size)
        rows.append(
            {
                "id": f"doc{i}",
                "question": QUESTIONS[i % len(QUESTIONS)],
                "document": text[start : start + size],
            }
        )
    return rows


def measure(rows, workers: int, model: str | None, settings: dict) -> dict:
    from infiniretri.batch import read_output, run_job

    folder = Path(tempfile.mkdtemp(prefix="ray-throughput-"))
    try:
        start = time.perf_counter()
        summary = run_job(
            rows, folder / "out", workers=workers, model=model, settings=settings, fmt="jsonl"
        )
        wall = time.perf_counter() - start
        out = read_output(folder / "out")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    stats = [json.loads(r["stats"]) for r in out if r["stats"]]
    tokens = sum(s["tokens_read"] for s in stats)
    scan_seconds = sum(s["seconds"] for s in stats)
    per_actor = tokens / scan_seconds if scan_seconds else 0.0
    return {
        "workers": workers,
        "rows": summary.rows,
        "errors": summary.errors,
        "doc_tokens": tokens,
        "job_seconds": round(wall, 2),
        "job_doc_tokens_per_s": round(tokens / wall, 1),
        "scan_seconds_sum": round(scan_seconds, 2),
        "scan_doc_tokens_per_s_per_actor": round(per_actor, 1),
        "steady_doc_tokens_per_s": round(per_actor * max(1, workers), 1),
        "start_up_seconds_estimate": round(wall - scan_seconds / max(1, workers), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--doc-tokens", type=int, default=600)
    parser.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
    parser.add_argument("--model", default=None, help="local model dir (default: embedded)")
    parser.add_argument(
        "--batch-size", type=int, default=1, help="rows per call (1: stats.seconds is per row)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ray_throughput.json"))
    args = parser.parse_args()

    import ray
    import torch
    import transformers

    import infiniretri
    from infiniretri.ray import ensure_ray

    rows = corpus(args.docs, args.doc_tokens)
    settings = {"batch_size": args.batch_size}
    counts = [int(w) for w in args.workers.split(",")]
    results = []
    for workers in counts:
        if workers:
            ensure_ray(workers=workers)
        results.append(measure(rows, workers, args.model, settings))
        print(json.dumps(results[-1]), flush=True)
    if ray.is_initialized():
        resources = ray.cluster_resources()
        ray.shutdown()
    else:
        resources = {}
    report = {
        "benchmark": "ray_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": args.model or infiniretri.EMBEDDED_MODEL_ID,
        "device": "cpu",
        "docs": args.docs,
        "doc_tokens_target": args.doc_tokens,
        "batch_size": args.batch_size,
        "ray": ray.__version__,
        "ray_num_cpus": resources.get("CPU"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "note": (
            "Shared 2-core CPU machine: other jobs ran at the same time, so rates are noisy. "
            "Ray actors get 1 CPU each (torch: 1 thread per actor); workers=0 is the "
            "in-process path with torch on every core. job_* includes actor start-up."
        ),
        "runs": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
