"""What the retrieval benchmarks' ``report`` stages share (``bench.aalcr``, ``bench.doc2dial``):
their command-line options, and a checkpointed run of blocks of items through the worker pool.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, RESULTS_DIR, append_jsonl, read_jsonl, write_json
from .engine_setup import engine_settings
from .hotpotqa import mean, run_tasks, truncate_by_score
from .tables import paired_differences


def add_report_arguments(
    parser: argparse.ArgumentParser,
    prepared: Path,
    chunk_sizes: Sequence[int],
    budgets: Sequence[int],
    ir_mode: str = "both",
) -> None:
    """The options of a ``report`` stage (engine, split, budgets, workers, files)."""
    parser.add_argument("--device", default="cpu", help="engine device (report)")
    parser.add_argument("--dtype", default=None, help="model dtype (default: the engine's)")
    parser.add_argument("--split", choices=("report", "dev"), default="report")
    parser.add_argument("--limit", type=int, default=None, help="first N items of the split")
    parser.add_argument(
        "--options",
        default=None,
        help="engine settings: a JSON file (its 'chosen' block, as bench.engine_setup."
        "read_options reads it) or inline JSON such as '{\"chunk_tokens\": 2048}'",
    )
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=list(chunk_sizes))
    parser.add_argument("--budgets", type=int, nargs="+", default=list(budgets))
    parser.add_argument(
        "--ir-mode",
        choices=("both", "scan", "cut"),
        default=ir_mode,
        help="InfiniRetri budgets: a scan per budget (max_cache_tokens), the natural cache cut "
        "by score, or both (cut needs one scan per item, scan one per budget plus one)",
    )
    parser.add_argument("--block", type=int, default=8, help="items per task and checkpoint")
    parser.add_argument("--workers", type=int, default=1, help="engine processes")
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the stage")
    parser.add_argument("--prepared", default=None, help=f"default {prepared}")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=None)


def checkpoint_path(name: str, args: argparse.Namespace, options: dict) -> Path:
    """``--checkpoint``, else a file per benchmark, split, device and run settings."""
    if args.checkpoint:
        return Path(args.checkpoint)
    key = [options, args.chunk_sizes, args.budgets, args.ir_mode, args.dtype]
    tag = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    device = args.device.split(":")[0]
    return BENCH_DIR / "data" / f"{name}_{args.split}_{device}_{tag}.jsonl"


def run_checkpointed(
    block_fn: Callable[..., list[dict]],
    records: list[dict[str, Any]],
    task_of: Callable[[list[dict]], tuple],
    checkpoint: Path,
    args: argparse.Namespace,
    options: dict,
    deadline,
) -> list[dict[str, Any]]:
    """The items of ``records`` in order: those in ``checkpoint`` as they are, the others by
    ``block_fn(engine, *task_of(block))`` over blocks of ``args.block`` records, each block's
    items appended to the checkpoint as it finishes (a rerun resumes)."""
    done = {r["qid"]: r for r in read_jsonl(checkpoint)}
    todo = [r for r in records if r["qid"] not in done]
    print(f"report: {len(done)} done, {len(todo)} to go ({checkpoint})", file=sys.stderr)
    tasks = [task_of(todo[i : i + args.block]) for i in range(0, len(todo), args.block)]
    started = time.perf_counter()
    for block in run_tasks(block_fn, tasks, args, options, deadline):
        for item in block:
            append_jsonl(checkpoint, item)
            done[item["qid"]] = item
        print(
            f"report: {len(done)}/{len(records)} ({time.perf_counter() - started:.0f}s)",
            file=sys.stderr,
        )
    return [done[r["qid"]] for r in records if r["qid"] in done]


def selection_run(
    method: str, budget, units: int, tokens: int, hit: bool, retrieval=None
) -> dict[str, Any]:
    """One method's selection at one budget: its size, whether it holds the evidence, and for
    an InfiniRetri scan (``retrieval``) what the scan cost."""
    run = {
        "method": method,
        "budget": budget,
        "selected_tokens": tokens,
        "units": units,
        "hits": [hit],
    }
    if retrieval is not None:
        run["scan_tokens_processed"] = retrieval.stats.tokens_processed
        run["scan_forward_passes"] = retrieval.stats.forward_passes
        run["scan_seconds"] = round(retrieval.stats.seconds, 3)
    return run


def infiniretri_runs(
    base,
    pairs: list[tuple[str, str]],
    chunk_sizes: Sequence[int],
    budgets: Sequence[int],
    ir_mode: str,
    make_run: Callable[..., dict],
) -> list[list[dict]]:
    """InfiniRetri's runs per item: ``pairs`` (text, question) scanned as one batch per chunk
    size and budget. ``make_run(method, budget, index, spans, tokens, retrieval)`` scores one
    selection: ``infiniretri_c<chunk>`` a scan with ``max_cache_tokens=budget`` (and the
    natural cache as budget ``"natural"``), ``..._cut`` the natural cache cut by score."""
    runs: list[list[dict]] = [[] for _ in pairs]
    for chunk in chunk_sizes:
        method = f"infiniretri_c{chunk}"
        scan_budgets = [*budgets, None] if ir_mode in ("scan", "both") else [None]
        for budget in scan_budgets:
            engine = base.with_options(chunk_tokens=chunk, max_cache_tokens=budget)
            t0 = time.perf_counter()
            rets = engine.retrieve_batch(pairs)
            print(
                f"  scan chunk={chunk} budget={budget}: {len(pairs)} items, "
                f"{time.perf_counter() - t0:.1f}s",
                file=sys.stderr,
            )
            for i, ret in enumerate(rets):
                spans = [(s.char_start, s.char_end) for s in ret.sentences]
                if ir_mode in ("scan", "both"):
                    label = budget if budget is not None else "natural"
                    runs[i].append(make_run(method, label, i, spans, ret.stats.cache_tokens, ret))
                if budget is None and ir_mode in ("cut", "both"):
                    for b in budgets:
                        cut, ids = truncate_by_score(ret, b)
                        tokens = sum(len(x) for x in ids)
                        runs[i].append(make_run(f"{method}_cut", b, i, cut, tokens, ret))
    return runs


def paired_lines(rows: list[dict[str, Any]], subset: bool = False) -> list[str]:
    """The paired differences of ``rows`` as text lines (points, 95% bootstrap interval)."""
    out = ["paired differences (points, 95% bootstrap interval):"]
    for r in rows:
        lead = f"{r['subset']:9} " if subset else ""
        out.append(
            f"{lead}{r['method']:28} - {r['baseline']:13} @{r['budget']:<4} "
            f"{100 * r['mean']:+6.1f} [{100 * r['ci95'][0]:+6.1f}, {100 * r['ci95'][1]:+6.1f}]"
        )
    return out


def paired_rows(
    items: list[dict[str, Any]],
    budgets: Sequence[int],
    metric: str,
    baselines: Sequence[str] = ("bm25", "dense_minilm", "random"),
    **fields: Any,
) -> list[dict[str, Any]]:
    """Each InfiniRetri method minus each baseline on ``metric``, per question: the mean and
    its 95% bootstrap interval (``bench.tables.paired_differences``); ``fields`` lead each row."""
    methods = sorted(
        {r["method"] for i in items for r in i["runs"] if "infiniretri" in r["method"]}
    )
    rows = []
    for method in methods:
        for budget in budgets:
            for other in baselines:
                d = paired_differences(items, method, other, budget, metric)
                if d is not None:
                    rows.append(
                        {
                            **fields,
                            "method": method,
                            "baseline": other,
                            "budget": budget,
                            "n": len(items),
                            "mean": round(d[0], 4),
                            "ci95": [round(d[1], 4), round(d[2], 4)],
                        }
                    )
    return rows


def report_payload(
    args: argparse.Namespace,
    records: list[dict[str, Any]],
    items: list[dict[str, Any]],
    data: dict[str, Any],
    base,
    options: dict,
    summary: list[dict[str, Any]],
    paired: list[dict[str, Any]],
    **fields: Any,
) -> dict[str, Any]:
    """A report's result file: the run (split, counts, data, settings), the benchmark's own
    ``fields`` (metric, construction), then the summary, paired differences and items."""
    return {
        "split": args.split,
        "items_total": len(records),
        "items_done": len(items),
        "data": data["data"],
        "licence": data["licence"],
        **fields,
        "budgets": list(args.budgets),
        "chunk_sizes": list(args.chunk_sizes),
        "ir_mode": args.ir_mode,
        "engine": engine_settings(base),
        "options": options,
        "workers": args.workers,
        "doc_tokens_mean": mean(i["doc_tokens"] for i in items),
        "summary": summary,
        "paired": paired,
        "items": items,
    }


def run_stages(args: argparse.Namespace, prepare: Callable, report: Callable) -> int:
    """``prepare``, ``report`` or both (``all``), as ``args.stage`` says."""
    if args.stage in ("prepare", "all"):
        prepare(args)
    if args.stage in ("report", "all"):
        report(args)
    return 0


def write_report(
    name: str, args: argparse.Namespace, payload: dict[str, Any], render: Callable
) -> Path:
    """Write ``payload`` to ``--out`` or ``bench/results/<name>[_<split>].json``; print it."""
    default = f"{name}.json" if args.split == "report" else f"{name}_{args.split}.json"
    path = write_json(Path(args.out or RESULTS_DIR / default), payload)
    print(f"wrote {path}", file=sys.stderr)
    print(render(payload))
    return path
