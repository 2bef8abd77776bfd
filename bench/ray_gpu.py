"""Doc tokens/s of ``infiniretri batch`` on GPUs: one Ray actor per GPU against several actors
sharing each GPU (fractional ``--gpus-per-worker``), and the in-process path for reference.

    python -m bench.ray_gpu make-model DIR [--tokenizer TOKENIZER_DIR]   # random weights
    python -m bench.ray_gpu corpus ROWS.jsonl --docs 64 --doc-tokens 128000 --tokenizer DIR
    python -m bench.ray_gpu measure ROWS.jsonl --model DIR --gpus 1 --actors-per-gpu 0,1,2,4 \\
        [--answer] --out bench/results/ray_gpu.json
    python -m bench.ray_gpu plot bench/results/ray_gpu.json --out bench/results/ray_gpu.png

``bench/ray_multi_gpu.sh --gpus N --actors-per-gpu K`` runs the three steps on a host of N GPUs
(or more; the first N are used).

``make-model`` saves a SmolLM2-135M-shaped Llama with random weights (the shape of
``bench/gpu_speed.py``, seed 0, bf16 safetensors) and the tokenizer in DIR: honest timings
without the real weights (their values do not change the work done). ``corpus`` writes rows of
about ``--doc-tokens`` tokens each (the Wikipedia prose of ``examples/data`` repeated, a needle
sentence planted at a different depth in each), one question each.

``measure`` runs the real command line, ``python -m infiniretri batch ROWS --workers N*K
--gpus-per-worker 1/K`` (K=0: ``--workers 0``, in this process, no Ray) in a subprocess, once per
K, while ``nvidia-smi`` is sampled every 0.2 s. Per run it reports:

* ``job_doc_tokens_per_s``: document tokens / the job's own seconds (the CLI's summary line:
  from the first row to the last part written; Ray start, actor start-up, model load, CUDA
  graph recording included); ``wall_seconds`` adds the CLI's Python start-up and imports;
* ``busy_doc_tokens_per_s``: document tokens / the GPU-busy window (first to last sample with
  utilisation >= 10%): the aggregate rate once the actors are up (the first calls' CUDA graph
  recording is inside the window);
* ``per_actor_doc_tokens_per_s``: document tokens / the sum of the calls' scan seconds. A call is
  one ``retrieve_batch`` of the rows that ``run_dataset`` puts in one block (contiguous rows,
  ``min(batch_size, ceil(rows / actors))`` of them); its scan seconds are the largest
  ``stats.seconds`` of its rows (every row's clock starts with its call's scan);
* ids: every input id came back exactly once (``ids_exactly_once``), error rows, answers;
* GPU utilisation (mean over the job and over the busy window) and peak GPU memory used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file (bench/ray_multi_gpu.sh) as well as a module
    sys.path.append(str(ROOT))

RETRIEVAL_LAYER = 18  # the embedded model's shipped retrieval layer (bench/gpu_speed.py)
BUSY_UTIL = 10  # % utilisation from which a sample counts as GPU-busy
SAMPLE_MS = 200


# --------------------------------------------------------------------------- model and corpus
def make_model(folder: Path, tokenizer: Path | None, layers: int | None) -> None:
    """A random-weight SmolLM2-135M-shaped model (bf16 safetensors) and its tokenizer (the files
    of ``tokenizer``; default: those of the embedded model)."""
    import torch

    from bench.gpu_speed import SMOL, random_model

    if tokenizer is None:
        from infiniretri.loading import embedded_model_dir

        tokenizer = embedded_model_dir()

    model = random_model(SMOL, "cpu", layers).to(torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    for item in Path(tokenizer).iterdir():
        if item.is_file() and (item.name.startswith("tokenizer") or item.suffix == ".jinja"):
            shutil.copy2(item, folder / item.name)
    print(f"wrote {folder} ({sum(p.numel() for p in model.parameters()):,} parameters)")


def write_corpus(path: Path, docs: int, doc_tokens: int, tokenizer: Path | None) -> None:
    from transformers import AutoTokenizer

    from bench.gpu_speed import QUESTION, Haystacks

    if tokenizer is None:
        from infiniretri.loading import embedded_model_dir

        tokenizer = embedded_model_dir()
    hay = Haystacks(AutoTokenizer.from_pretrained(str(tokenizer)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(docs):
            text = hay.build(doc_tokens, (i + 0.5) / docs, rotate=7 * i)
            row = {"id": f"doc{i:05d}", "question": QUESTION, "document": text}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {path}: {docs} rows of about {doc_tokens} tokens")


# --------------------------------------------------------------------------- GPU sampling
class GpuSampler:
    """``nvidia-smi`` every ``SAMPLE_MS`` ms in the background: (seconds, gpu, util %, MiB)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, float, float]] = []
        self.start = time.perf_counter()
        self.proc = None
        if shutil.which("nvidia-smi") is None:
            return
        self.proc = subprocess.Popen(
            [
                "nvidia-smi",
                "--query-gpu=index,utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
                f"-lms={SAMPLE_MS}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                index, util, mem = (float(x) for x in line.split(","))
            except ValueError:
                continue
            self.samples.append((time.perf_counter() - self.start, int(index), util, mem))

    def stop(self) -> dict[str, Any]:
        if self.proc is None:
            return {"sampled": False}
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        samples = self.samples
        if not samples:
            return {"sampled": False}
        busy = [s for s in samples if s[2] >= BUSY_UTIL]
        out: dict[str, Any] = {
            "sampled": True,
            "interval_ms": SAMPLE_MS,
            "samples": len(samples),
            "gpus_seen": sorted({s[1] for s in samples}),
            "mean_util_pct_job": round(sum(s[2] for s in samples) / len(samples), 1),
            "peak_memory_used_mib": max(s[3] for s in samples),
        }
        if busy:
            first, last = busy[0][0], busy[-1][0]
            window = [s for s in samples if first <= s[0] <= last]
            out.update(
                first_busy_s=round(first, 2),
                last_busy_s=round(last, 2),
                busy_window_s=round(last - first + SAMPLE_MS / 1000, 2),
                mean_util_pct_busy_window=round(sum(s[2] for s in window) / len(window), 1),
            )
        return out


# --------------------------------------------------------------------------- one run
def _rows_per_call(rows: int, workers: int, batch_size: int) -> int:
    """What ``infiniretri.ray.run_dataset`` puts in one block (= one call); in-process: batch."""
    if workers == 0:
        return batch_size
    return max(1, min(batch_size, -(-rows // workers)))


def _actors(rows: int, workers: int, size: int) -> int:
    return max(1, min(workers, -(-rows // size))) if workers else 0


def check_output(rows_in: list[dict], out: list[dict], answer: bool) -> dict[str, Any]:
    ids_in = [str(r["id"]) for r in rows_in]
    ids_out = [str(r["id"]) for r in out]
    counts: dict[str, int] = {}
    for key in ids_out:
        counts[key] = counts.get(key, 0) + 1
    result = {
        "rows_in": len(ids_in),
        "rows_out": len(ids_out),
        "missing_ids": len(set(ids_in) - set(ids_out)),
        "duplicate_ids": sum(1 for c in counts.values() if c > 1),
        "unknown_ids": len(set(ids_out) - set(ids_in)),
        "error_rows": sum(1 for r in out if r.get("error")),
    }
    result["ids_exactly_once"] = result["missing_ids"] == result["duplicate_ids"] == result[
        "unknown_ids"
    ] == 0 and len(ids_out) == len(ids_in)
    if answer:
        result["rows_with_answer"] = sum(1 for r in out if r.get("answer") is not None)
    errors = sorted({r["error"] for r in out if r.get("error")})
    if errors:
        result["errors_seen"] = errors[:5]
    return result


def call_rates(rows_in: list[dict], out: list[dict], size: int) -> dict[str, Any]:
    """Per-call scan seconds (contiguous blocks of ``size`` input rows) and the per-actor rate."""
    stats = {str(r["id"]): json.loads(r["stats"]) for r in out if r.get("stats")}
    calls = []
    for start in range(0, len(rows_in), size):
        ids = [str(r["id"]) for r in rows_in[start : start + size]]
        group = [stats[key] for key in ids if key in stats]
        if not group:
            continue
        seconds = max(s["seconds"] for s in group)
        tokens = sum(s["tokens_read"] for s in group)
        calls.append({"rows": len(group), "doc_tokens": tokens, "scan_seconds": round(seconds, 3)})
    busy = sum(c["scan_seconds"] for c in calls)
    tokens = sum(c["doc_tokens"] for c in calls)
    for c in calls:
        c["doc_tokens_per_s"] = round(c["doc_tokens"] / max(c["scan_seconds"], 1e-9))
    return {
        "calls": len(calls),
        "rows_per_call": size,
        "call_scan_seconds": [c["scan_seconds"] for c in calls],
        "call_doc_tokens_per_s": [c["doc_tokens_per_s"] for c in calls],
        "scan_seconds_sum": round(busy, 2),
        "per_actor_doc_tokens_per_s": round(tokens / busy) if busy else 0,
    }


def run_once(
    rows_file: Path,
    rows_in: list[dict],
    *,
    gpus: int,
    actors_per_gpu: int,
    model: str | None,
    answer: bool,
    settings: dict[str, Any],
    prep_workers: int | None,
    cpus_per_worker: float,
    max_new_tokens: int,
    address: str | None,
    device: str,
    timeout: float,
    work: Path,
) -> dict[str, Any]:
    workers = gpus * actors_per_gpu
    output = work / f"out-{actors_per_gpu}-{'answer' if answer else 'retrieve'}"
    shutil.rmtree(output, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "infiniretri",
        "batch",
        str(rows_file),
        "--output",
        str(output),
        "--format",
        "jsonl",
        "--workers",
        str(workers),
        "--device",
        device,
        "--no-progress",
        "--max-new-tokens",
        str(max_new_tokens),
    ]
    if workers:
        command += [
            "--gpus-per-worker",
            f"{1 / actors_per_gpu:.6g}",
            "--cpus-per-worker",
            f"{cpus_per_worker:g}",
        ]
    if address:
        command += ["--address", address]
    if model:
        command += ["--model", model]
    if answer:
        command.append("--answer")
    for name, value in settings.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    if prep_workers is not None:
        command += ["--prep-workers", str(prep_workers)]
    size = _rows_per_call(len(rows_in), workers, settings["batch_size"])
    record: dict[str, Any] = {
        "actors_per_gpu": actors_per_gpu,
        "workers": workers,
        "actors_started": _actors(len(rows_in), workers, size),
        "gpus_per_worker": round(1 / actors_per_gpu, 4) if workers else None,
        "cpus_per_worker": cpus_per_worker if workers else None,
        "prep_workers_per_engine": prep_workers,
        "answer": answer,
        "path": "in-process (--workers 0)" if workers == 0 else "Ray actors",
        "command": " ".join(command[1:]),
    }
    print(f"== {record['path']}: workers={workers} actors/GPU={actors_per_gpu}", flush=True)
    sampler = GpuSampler()
    start = time.perf_counter()
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    # Its own process group: on a timeout the CLI and the local Ray it started go together.
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=work,
        env=env,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
        record["returncode"] = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        record["returncode"] = None
        record["timed_out_after_s"] = timeout
    record["wall_seconds"] = round(time.perf_counter() - start, 2)
    record["gpu"] = sampler.stop()
    summary = [line for line in stderr.splitlines() if "rows written" in line]
    if summary:
        record["cli_summary"] = summary[-1].strip()
        found = re.search(r"in ([\d.]+) s \(", summary[-1])
        if found:
            record["job_seconds"] = float(found.group(1))
    if record["returncode"] != 0:
        record["stderr_tail"] = stderr[-3000:]
        print(record["stderr_tail"], file=sys.stderr, flush=True)
    from infiniretri.batch import read_output

    out = read_output(output) if output.is_dir() else []
    record.update(check_output(rows_in, out, answer))
    tokens = sum(json.loads(r["stats"])["tokens_read"] for r in out if r.get("stats"))
    record["doc_tokens"] = tokens
    if record.get("job_seconds"):
        record["job_doc_tokens_per_s"] = round(tokens / record["job_seconds"])
    record["wall_doc_tokens_per_s"] = round(tokens / record["wall_seconds"])
    if record["gpu"].get("busy_window_s"):
        record["busy_doc_tokens_per_s"] = round(tokens / record["gpu"]["busy_window_s"])
    record.update(call_rates(rows_in, out, size))
    actors = max(1, record["actors_started"])
    record["per_actor_x_actors_doc_tokens_per_s"] = record["per_actor_doc_tokens_per_s"] * actors
    answers = [r["answer"] for r in out if r.get("answer")]
    if answers:
        record["answer_example"] = answers[0][:200]
    shutil.rmtree(output, ignore_errors=True)
    keys = ("job_seconds", "job_doc_tokens_per_s", "busy_doc_tokens_per_s")
    shown = {k: record.get(k) for k in (*keys, "per_actor_doc_tokens_per_s", "ids_exactly_once")}
    print(json.dumps(shown), flush=True)
    return record


def host_gpus() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def auto_prep_workers(gpus: int, actors_per_gpu: int) -> int:
    """Tokenizing processes per engine: the host's cores shared by the engines on each GPU."""
    per_gpu = max(1, (os.cpu_count() or 1) // max(1, gpus) - 2)
    return max(1, min(8, per_gpu // max(1, actors_per_gpu)))


def measure(args) -> int:
    from bench.common import write_json

    rows_file = Path(args.rows).resolve()
    rows_in = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    settings = {
        "chunk_tokens": args.chunk_tokens,
        "batch_size": args.batch_size,
        "retrieval_layer": args.retrieval_layer,
    }
    found = host_gpus()
    if not args.address and args.device == "cuda" and found < args.gpus:
        print(f"--gpus {args.gpus}: this host has {found} GPU(s)", file=sys.stderr)
        return 2
    if not args.address and found > args.gpus:
        # Ray sees only the GPUs it is given: the first --gpus of this host.
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(args.gpus))
    ks = [int(k) for k in str(args.actors_per_gpu).split(",")]
    work = Path(tempfile.mkdtemp(prefix="ray-gpu-"))
    report: dict[str, Any] = {
        "benchmark": "ray_gpu",
        "library_commit": os.environ.get("BENCH_GIT_COMMIT"),
        "model": args.model_label or (args.model or "embedded SmolLM2-135M-Instruct"),
        "gpus": args.gpus,
        "host_gpus": found,
        "address": args.address,
        "corpus": {
            "rows": len(rows_in),
            "document_chars_mean": round(sum(len(r["document"]) for r in rows_in) / len(rows_in)),
            "file": rows_file.name,
        },
        "settings": settings,
        "device": args.device,
        "dtype": "bfloat16 (the default on CUDA)" if args.device == "cuda" else "default",
        "answer": args.answer,
        "max_new_tokens": args.max_new_tokens,
        "busy_util_threshold_pct": BUSY_UTIL,
        "note": args.note,
        "runs": [],
    }
    try:
        import ray

        report["ray"] = ray.__version__
    except ImportError:
        report["ray"] = None
    out = Path(args.out)
    status, timed_out = 0, False
    try:
        for k in ks:
            if k and timed_out:
                print(f"skipping {k} actors/GPU: an earlier Ray run timed out", flush=True)
                report["runs"].append({"actors_per_gpu": k, "skipped": "an earlier run timed out"})
                continue
            prep = args.prep_workers
            if prep == "auto":
                prep = auto_prep_workers(args.gpus, max(1, k))
            record = run_once(
                rows_file,
                rows_in,
                gpus=args.gpus,
                actors_per_gpu=k,
                model=args.model,
                answer=args.answer,
                settings=settings,
                prep_workers=None if prep in (None, "default") else int(prep),
                cpus_per_worker=args.cpus_per_worker,
                max_new_tokens=args.max_new_tokens,
                address=args.address,
                device=args.device,
                timeout=args.timeout,
                work=work,
            )
            report["runs"].append(record)
            timed_out = timed_out or (k > 0 and record["returncode"] is None)
            if record["returncode"] != 0 or not record["ids_exactly_once"]:
                status = 1
            report["corpus"]["doc_tokens"] = record["doc_tokens"] or report["corpus"].get(
                "doc_tokens"
            )
            write_json(out, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(out, report)
    print(f"wrote {out}")
    return status


# --------------------------------------------------------------------------- plot
def plot(results: Path, out: Path) -> None:
    """Bars per run: the busy-window (steady) rate, the job rate and the per-actor rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(results.read_text(encoding="utf-8"))
    runs = sorted(
        (r for r in data["runs"] if "doc_tokens" in r),
        key=lambda r: (r["workers"] > 0, r["actors_per_gpu"]),
    )
    labels = [
        "in-process\n(--workers 0)"
        if r["workers"] == 0
        else f"{r['actors_per_gpu']} actor{'s' if r['actors_per_gpu'] > 1 else ''}"
        f"\n× {r['gpus_per_worker']:g} GPU"
        for r in runs
    ]
    series = [
        ("GPU-busy window (steady, all actors)", "busy_doc_tokens_per_s", "tab:blue"),
        ("whole job (start-up included)", "job_doc_tokens_per_s", "tab:gray"),
        ("per actor (its calls' scan seconds)", "per_actor_doc_tokens_per_s", "tab:orange"),
    ]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.26
    for i, (name, key, color) in enumerate(series):
        xs = [j + (i - 1) * width for j in range(len(runs))]
        values = [r.get(key, 0) / 1000 for r in runs]
        bars = ax.bar(xs, values, width, label=name, color=color)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(range(len(runs)), labels)
    ax.set_ylabel("doc tokens/s (thousands)")
    corpus = data["corpus"]
    ax.set_title(
        f"infiniretri batch on one {data['meta']['machine'].get('gpu') or 'GPU'}: "
        f"{corpus['rows']} docs, {corpus['doc_tokens'] / 1e6:.1f}M tokens "
        f"(batch {data['settings']['batch_size']}, chunk {data['settings']['chunk_tokens']})",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.2), ncol=3, frameon=False)
    ax.margins(y=0.12)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    mk = commands.add_parser("make-model", help="save a random-weight SmolLM2-135M-shaped model")
    mk.add_argument("folder")
    mk.add_argument("--tokenizer", default=None, help="tokenizer folder (default: embedded)")
    mk.add_argument("--layers", type=int, default=None, help="fewer layers (smoke tests)")
    co = commands.add_parser("corpus", help="write synthetic rows (JSONL)")
    co.add_argument("rows")
    co.add_argument("--docs", type=int, default=64)
    co.add_argument("--doc-tokens", type=int, default=128_000)
    co.add_argument("--tokenizer", default=None, help="tokenizer folder (default: embedded)")
    me = commands.add_parser("measure", help="run infiniretri batch per actors-per-GPU value")
    me.add_argument("rows")
    me.add_argument("--gpus", type=int, default=1, help="GPUs to use (the first N of the host)")
    me.add_argument(
        "--actors-per-gpu", default="1", help="comma-separated; 0 is the in-process path"
    )
    me.add_argument("--model", default=None, help="local model folder (default: embedded)")
    me.add_argument("--model-label", default=None, help="what the model is, for the JSON")
    me.add_argument("--answer", action="store_true")
    me.add_argument("--max-new-tokens", type=int, default=32)
    me.add_argument("--chunk-tokens", type=int, default=4096)
    me.add_argument("--batch-size", type=int, default=16)
    me.add_argument("--retrieval-layer", type=int, default=RETRIEVAL_LAYER)
    me.add_argument(
        "--prep-workers",
        default="auto",
        help="per engine: a number, 'default' (the engine's: up to 8), or 'auto' (cores per "
        "GPU - 2, shared by the actors on it, 1..8)",
    )
    me.add_argument("--cpus-per-worker", type=float, default=1.0)
    me.add_argument("--address", default=None, help="a Ray cluster (default: a local Ray)")
    me.add_argument("--device", default="cuda", help="cuda (cpu: smoke tests of this script)")
    me.add_argument("--timeout", type=float, default=300, help="seconds per run")
    me.add_argument("--note", default=None)
    me.add_argument("--out", default=str(ROOT / "bench" / "results" / "ray_gpu.json"))
    pl = commands.add_parser("plot", help="a PNG of a measure JSON")
    pl.add_argument("results", nargs="?", default=str(ROOT / "bench" / "results" / "ray_gpu.json"))
    pl.add_argument("--out", default=str(ROOT / "bench" / "results" / "ray_gpu.png"))
    args = parser.parse_args(argv)
    if args.command == "plot":
        plot(Path(args.results), Path(args.out))
        return 0
    if args.command == "make-model":
        make_model(Path(args.folder), args.tokenizer and Path(args.tokenizer), args.layers)
        return 0
    if args.command == "corpus":
        write_corpus(
            Path(args.rows), args.docs, args.doc_tokens, args.tokenizer and Path(args.tokenizer)
        )
        return 0
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        parser.error("--timeout must be positive")
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
