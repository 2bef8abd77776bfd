"""Needle in a haystack from 4k to 1M tokens: InfiniRetri, full context, and the reference package.

    python -m bench.niah run --device cuda --workers 8   # the grid: bench/results/niah.json
    python -m bench.niah run --lengths 4000 8000 --depths 0 50 100   # a small grid (CPU works)
    python -m bench.niah plot                            # heatmaps: bench/results/niah_*.png

Each cell is scored two ways: the needle sentence is in what the answer step reads (for
InfiniRetri the final cache, for full context the truncated window, for the reference package
its final retrieved text), and the answer names both "Dolores Park" and "sandwich".

With several workers, the cells of one depth (``--timing-depth``) run first, one at a time, on
an otherwise idle machine: their time and peak memory are the ones reported. The other cells
run in parallel worker processes (each with its own copy of the model) and are scored only.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .common import (
    CACHE_DIR,
    RESULTS_DIR,
    Deadline,
    append_jsonl,
    load_essays,
    measure,
    read_jsonl,
    write_json,
)
from .engine_setup import engine_settings, load_engine, read_options
from .haystack import (
    DEPTHS,
    LENGTHS,
    NEEDLE,
    QUESTION,
    HaystackBuilder,
    answer_hit,
    retrieval_hit,
)

METHODS = ("infiniretri", "full_context", "reference")
MAX_NEW_TOKENS = 32


# =========================================================================== one worker
class CellRunner:
    """Everything one process needs to run cells: engine, haystack builder, reference."""

    def __init__(
        self, device: str, dtype: str | None, options: dict[str, Any], methods, workers: int = 1
    ) -> None:
        import torch

        if workers > 1:  # share the cores between the worker processes
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
        self.engine = load_engine(device, dtype, **options)
        self.builder = HaystackBuilder(load_essays(), self.engine.tokenizer)
        self.reference = None
        if "reference" in methods:
            from infiniretri.loading import embedded_model_dir

            from .reference import ReferenceRunner, load_eager_model

            model_dtype = next(self.engine.model.parameters()).dtype
            model, tokenizer = load_eager_model(embedded_model_dir(), device, model_dtype)
            self.reference = ReferenceRunner(
                model,
                tokenizer,
                chunk_tokens=self.engine.chunk_tokens,
                phrase_tokens=self.engine.phrase_tokens,
                top_k_tokens=self.engine.top_k_tokens,
            )

    def run(self, cell: dict[str, Any]) -> dict[str, Any]:
        record = dict(cell)
        hay = self.builder.build(cell["length"], cell["depth"])
        record["needle_depth_actual"] = round(hay.actual_depth, 2)
        try:
            with measure() as m:
                record.update(getattr(self, "_" + cell["method"])(hay.text))
            record.update(m.as_dict())
        except Exception as err:  # recorded, the grid goes on
            record["error"] = f"{type(err).__name__}: {err}"[:500]
            record["traceback"] = traceback.format_exc()[-1500:]
        return record

    def _infiniretri(self, text: str) -> dict[str, Any]:
        r = self.engine.retrieve(text, QUESTION)
        a = self.engine.answer_from(r, max_new_tokens=MAX_NEW_TOKENS)
        return {
            "retrieval": retrieval_hit(r.context),
            "answer_ok": answer_hit(a.text),
            "answer": a.text[:200],
            "doc_tokens": r.stats.tokens_read,
            "read_tokens": r.stats.cache_tokens,
            "answer_prompt_tokens": a.prompt_tokens,
            "tokens_processed": r.stats.tokens_processed,
            "forward_passes": r.stats.forward_passes,
            "scan_seconds": round(r.stats.seconds, 3),
        }

    def _full_context(self, text: str) -> dict[str, Any]:
        from .reader import full_context_prompt, read_batch

        prompt, kept, truncated = full_context_prompt(self.engine, text, QUESTION, MAX_NEW_TOKENS)
        answer = read_batch(self.engine, [prompt], MAX_NEW_TOKENS, 1)[0]
        seen = self.engine.tokenizer.decode(prompt, skip_special_tokens=True)
        return {
            "retrieval": retrieval_hit(seen),
            "answer_ok": answer_hit(answer),
            "answer": answer[:200],
            "doc_tokens": self.engine.count_tokens(text),
            "read_tokens": kept,
            "answer_prompt_tokens": len(prompt),
            "tokens_processed": len(prompt),
            "forward_passes": 1,
            "truncated": truncated,
        }

    def _reference(self, text: str) -> dict[str, Any]:
        res = self.reference.run(text, QUESTION, MAX_NEW_TOKENS)
        retrieved = res.final_prompt
        return {
            "retrieval": retrieval_hit(retrieved),
            "answer_ok": answer_hit(res.answer),
            "answer": res.answer[:200],
            "doc_tokens": res.document_tokens,
            "read_tokens": res.prompt_tokens,
            "answer_prompt_tokens": res.prompt_tokens,
            "tokens_processed": res.tokens_processed,
            "forward_passes": res.forward_passes,
        }


def _worker(index, config, timing_q, tasks, results, go, deadline_end) -> None:
    try:
        runner = CellRunner(
            config["device"],
            config["dtype"],
            config["options"],
            config["methods"],
            config["workers"],
        )
        results.put(("ready", index, engine_settings(runner.engine)))
    except Exception:
        results.put(("failed", index, traceback.format_exc()[-2000:]))
        return
    rate: dict[str, float] = {}  # seconds per token, per method, measured here
    if timing_q is not None:
        while (cell := timing_q.get()) is not None:
            record = runner.run(cell)
            record["timed_alone"] = True
            _learn(rate, record)
            results.put(("cell", index, record))
    go.wait()
    while (cell := tasks.get()) is not None:
        left = deadline_end - time.time()
        # Scan cost grows with the length; full context reads one window whatever the length.
        scale = cell["length"] if cell["method"] != "full_context" else 1
        guess = rate.get(cell["method"], 0.0) * scale
        if left < 5 or guess > left:
            results.put(("skip", index, cell))
            continue
        record = runner.run(cell)
        record["timed_alone"] = config["workers"] == 1
        _learn(rate, record)
        results.put(("cell", index, record))
    results.put(("exit", index, None))


def _learn(rate: dict[str, float], record: dict[str, Any]) -> None:
    if "seconds" in record:
        scale = record["length"] if record["method"] != "full_context" else 1
        rate[record["method"]] = max(rate.get(record["method"], 0.0), record["seconds"] / scale)


# =========================================================================== the grid
def grid(lengths, depths, methods, reference_max_length: int) -> list[dict[str, Any]]:
    """Cells in run order: InfiniRetri longest first, then full context, then the reference."""
    cells = []
    for method in methods:
        ls = sorted(lengths, reverse=(method == "infiniretri"))
        if method == "reference":
            ls = [n for n in ls if n <= reference_max_length]
        for length in ls:
            for depth in depths:
                cells.append({"method": method, "length": length, "depth": depth})
    return cells


def key(cell: dict[str, Any]) -> tuple:
    return (cell["method"], cell["length"], cell["depth"])


def run(args: argparse.Namespace) -> Path:
    import multiprocessing as mp

    deadline = Deadline(args.deadline)
    deadline_end = time.time() + deadline.left() if args.deadline else float("inf")
    options = read_options(args.options)
    cells = grid(args.lengths, args.depths, args.methods, args.reference_max_length)
    checkpoint = Path(args.checkpoint or CACHE_DIR / f"niah_{args.device}.jsonl")
    done = {key(r): r for r in read_jsonl(checkpoint) if "error" not in r}
    todo = [c for c in cells if key(c) not in done]
    timing = [
        c
        for c in todo
        if args.workers > 1
        and c["depth"] == args.timing_depth
        and c["length"] <= args.timing_max_length
        and (c["method"] != "reference" or c["length"] <= args.timing_reference_max_length)
    ]
    rest = [c for c in todo if c not in timing]
    print(
        f"niah: {len(done)} cells done, {len(todo)} to run on {args.workers} worker(s)",
        file=sys.stderr,
    )

    # Make sure the embedded model is converted once before workers start.
    from infiniretri.loading import embedded_model_dir

    embedded_model_dir()
    config = {
        "device": args.device,
        "dtype": args.dtype,
        "options": options,
        "methods": args.methods,
        "workers": args.workers,
    }
    ctx = mp.get_context("spawn")
    timing_q, tasks, results, go = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=_worker,
            args=(i, config, timing_q if i == 0 else None, tasks, results, go, deadline_end),
            daemon=True,
        )
        for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    for c in rest:
        tasks.put(c)
    for _ in procs:
        tasks.put(None)
    settings = None
    ready = exited = 0
    pending_timing = len(timing)
    skipped = []
    alive = args.workers
    started = time.perf_counter()
    while exited < alive:
        try:
            kind, index, payload = results.get(timeout=5)
        except Exception:
            if deadline.expired(-15):
                print("niah: deadline passed; stopping workers", file=sys.stderr)
                break
            if not any(p.is_alive() for p in procs):
                break
            continue
        if kind == "failed":
            print(f"niah: worker {index} failed to start:\n{payload}", file=sys.stderr)
            alive -= 1
            if alive == 0 or index == 0:
                break
            continue
        if kind == "ready":
            settings = settings or payload
            ready += 1
            if ready == alive:
                for c in timing:
                    timing_q.put(c)
                timing_q.put(None)
                if pending_timing == 0:
                    go.set()
            continue
        if kind == "cell":
            append_jsonl(checkpoint, payload)
            if "error" not in payload:
                done[key(payload)] = payload
            flag = "T" if payload.get("timed_alone") else " "
            print(
                f"[{time.perf_counter() - started:6.0f}s] {flag} {payload['method']:<12} "
                f"{payload['length']:>8} {payload['depth']:>3}% "
                f"ret={payload.get('retrieval')} ans={payload.get('answer_ok')} "
                f"t={payload.get('seconds')} {payload.get('error', '')}",
                file=sys.stderr,
            )
            if payload.get("timed_alone") and args.workers > 1:
                pending_timing -= 1
                if pending_timing == 0:
                    go.set()
            continue
        if kind == "skip":
            skipped.append(payload)
            continue
        if kind == "exit":
            exited += 1
    for p in procs:
        if p.is_alive():
            p.terminate()
    records = [done[key(c)] for c in cells if key(c) in done]
    payload = {
        "needle": NEEDLE,
        "question": QUESTION,
        "lengths": list(args.lengths),
        "depths": list(args.depths),
        "methods": list(args.methods),
        "engine": settings,
        "reference_package": "infini-retri==0.0.3 (same model, eager attention, same chunk, "
        "phrase and top-K settings)"
        if "reference" in args.methods
        else None,
        "full_context": "the document's middle is cut so that it fits the model's window "
        "(LongBench's truncation)",
        "workers": args.workers,
        "timing_depth": args.timing_depth if args.workers > 1 else "all",
        "cells_total": len(cells),
        "cells_done": len(records),
        "skipped_for_time": [key(c) for c in skipped],
        "summary": summarize(records, args.methods, args.lengths),
        "cells": records,
    }
    out = Path(args.out or RESULTS_DIR / "niah.json")
    write_json(out, payload)
    print(f"wrote {out} ({len(records)}/{len(cells)} cells)", file=sys.stderr)
    return out


def summarize(records, methods, lengths) -> list[dict[str, Any]]:
    """Per method and length: retrieval and answer accuracy, tokens, time and memory."""
    rows = []
    for method in methods:
        for length in lengths:
            cells = [r for r in records if r["method"] == method and r["length"] == length]
            if not cells:
                continue
            timed = [r for r in cells if r.get("timed_alone")]
            timing = "alone" if timed else "sharing the machine with the other workers"
            timed = timed or [r for r in cells if "seconds" in r]

            def avg(name, pool=cells):
                values = [r[name] for r in pool if r.get(name) is not None]
                return round(sum(values) / len(values), 3) if values else None

            rows.append(
                {
                    "method": method,
                    "length": length,
                    "cells": len(cells),
                    "retrieval": avg("retrieval"),
                    "answer": avg("answer_ok"),
                    "doc_tokens": avg("doc_tokens"),
                    "read_tokens": avg("read_tokens"),
                    "tokens_processed": avg("tokens_processed"),
                    "seconds": avg("seconds", timed),
                    "peak_rss_mib": avg("peak_rss_mib", timed),
                    "peak_gpu_mib": avg("peak_gpu_mib", timed),
                    "timing": timing,
                }
            )
    return rows


# =========================================================================== heatmaps
def plot(args: argparse.Namespace) -> list[Path]:
    """One PNG per method: retrieval and answer heatmaps, length on x, depth on y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    data = json.loads(Path(args.input).read_text(encoding="utf-8"))
    lengths, depths = data["lengths"], data["depths"]
    cmap = LinearSegmentedColormap.from_list("paper", ["#F0496E", "#EBB839", "#0CD79F"])
    cmap.set_bad("#d9d9d9")
    where = data["meta"]["machine"].get("gpu") or data["meta"]["machine"].get("cpu")
    out = []
    for method in data["methods"]:
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
        for ax, field, title in zip(axes, ("retrieval", "answer_ok"), ("retrieval", "answer")):
            grid_values = np.full((len(depths), len(lengths)), np.nan)
            for r in data["cells"]:
                if r["method"] == method and r.get(field) is not None:
                    grid_values[depths.index(r["depth"]), lengths.index(r["length"])] = float(
                        r[field]
                    )
            masked = np.ma.masked_invalid(grid_values)
            ax.imshow(masked, cmap=cmap, vmin=0, vmax=1, aspect="auto", origin="upper")
            ax.set_xticks(range(len(lengths)), [_short(n) for n in lengths])
            ax.set_yticks(range(len(depths)), [f"{d}%" for d in depths])
            ax.set_xticks(np.arange(-0.5, len(lengths)), minor=True)
            ax.set_yticks(np.arange(-0.5, len(depths)), minor=True)
            ax.grid(which="minor", color="white", linewidth=1.5)
            ax.tick_params(which="minor", length=0)
            ax.set_xlabel("document length (tokens)")
            ax.set_ylabel("needle depth")
            score = np.nanmean(grid_values) if np.isfinite(grid_values).any() else float("nan")
            ax.set_title(f"{title}: {score:.1%} of {int(np.isfinite(grid_values).sum())} cells")
        model = (data.get("engine") or {}).get("model", "")
        fig.suptitle(
            f"Needle in a haystack - {method} - {model} - {where} (green: hit, red: miss, "
            "grey: not run)",
            fontsize=11,
        )
        path = Path(args.outdir) / f"niah_{method}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
        print(f"wrote {path}", file=sys.stderr)
    return out


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


# =========================================================================== cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.niah", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the grid")
    r.add_argument("--device", default="cpu")
    r.add_argument("--dtype", default=None, help="model dtype (default: the engine's)")
    r.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    r.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    r.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    r.add_argument("--reference-max-length", type=int, default=1_000_000)
    r.add_argument("--workers", type=int, default=1)
    r.add_argument("--timing-depth", type=int, default=50)
    r.add_argument(
        "--timing-max-length",
        type=int,
        default=1_000_000,
        help="longest cell of the timing pass (longer ones are timed while sharing the machine)",
    )
    r.add_argument(
        "--timing-reference-max-length",
        type=int,
        default=128_000,
        help="longest reference-package cell of the timing pass (longer ones run in parallel)",
    )
    r.add_argument("--options", default=None, help="tuning JSON whose 'chosen' settings to use")
    r.add_argument("--deadline", type=float, default=None, help="seconds for the whole grid")
    r.add_argument("--checkpoint", default=None)
    r.add_argument("--out", default=None)
    p = sub.add_parser("plot", help="draw the heatmaps")
    p.add_argument("--input", default=str(RESULTS_DIR / "niah.json"))
    p.add_argument("--outdir", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args)
    else:
        plot(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
