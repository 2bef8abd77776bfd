"""HotpotQA retrieval: the model's attention against BM25, dense embeddings and a random floor.

Stages (run in this order; ``all`` runs the three)::

    python -m bench.hotpotqa prepare            # CPU: splits, documents, baseline rankings
    python -m bench.hotpotqa tune   --device cuda   # dev split: choose engine settings
    python -m bench.hotpotqa report --device cuda --options bench/results/hotpotqa_tuning.json

``prepare`` writes ``bench/data/hotpotqa_prepared.json`` (git-ignored: it holds data text);
``tune`` writes ``bench/results/hotpotqa_tuning.json``; ``report`` writes
``bench/results/hotpotqa.json``. Every method is given the same token budget of selected
sentences and the same reader (the embedded model through the engine's answer prompt).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .baselines import BM25Ranker, DenseRanker, RandomRanker, fill_budget
from .common import (
    BENCH_DIR,
    CACHE_DIR,
    DATA_WHEEL,
    RESULTS_DIR,
    Deadline,
    append_jsonl,
    first_line,
    load_hotpotqa,
    qa_f1_score,
    read_jsonl,
    write_json,
)
from .engine_setup import engine_settings, load_engine, read_options
from .hotpot_data import HotpotDoc, build_doc, found, recall_stats, splits

PREPARED = BENCH_DIR / "data" / "hotpotqa_prepared.json"
BUDGETS = (64, 128, 256)
CHUNK_SIZES = (512, 1024)
BASELINES = ("bm25", "dense_minilm", "random")
MAX_NEW_TOKENS = 32
TUNE_LAYERS_PHRASES = (1, 2, 4, 8, 16, 32)
TUNE_GRID = ((1024, 150), (1024, 300), (1024, 600), (512, 300), (2048, 300))
"""(chunk_tokens, top_k_tokens) pairs of the sliding sweep: top-K around the default chunk,
then the chunk size around the default top-K."""
ABLATION = {
    "paper": {"retrieval_heads": "all", "lexical_weight": 0.0},
    "heads": {"lexical_weight": 0.0},
    "fusion": {"retrieval_heads": "all"},
    "no_feedback": {"lexical_feedback": 0.0},
    "w1": {"lexical_weight": 1.0, "lexical_feedback": 0.0},
    "w1_5": {"lexical_weight": 1.5},
    "baseline": {"score_baseline": True},
    "position": {"score_position": True},
    "baseline_position": {"score_baseline": True, "score_position": True},
    "heads_baseline": {"lexical_weight": 0.0, "score_baseline": True},
    "heads_position": {"lexical_weight": 0.0, "score_position": True},
    "rows_end": {"question_rows": "end"},
    "rows_all": {"question_rows": "all"},
}
"""Engine variants run beside the defaults (at the first chunk size): each scoring component
of the defaults (retrieval heads, lexical fusion at weight 2.5 with feedback 0.5) off in turn
(``paper`` has all off; ``w1`` and ``w1_5`` are earlier defaults: weight 1.0 without feedback,
and weight 1.5 with it), and each
attention correction (content-free baseline, position and sinks, query rows) on in turn, with
and without fusion."""
ADOPT_RECALL_GAIN = 0.01
ADOPT_F1_GAIN = 0.02
SYNTHETIC_GUARD = 0.9
"""A layer qualifies only with a synthetic-needle MRR of at least this share of the best."""


# =========================================================================== prepare
def prepare(args: argparse.Namespace) -> Path:
    """Sample the splits, build documents, and rank sentences with the baselines (CPU)."""
    from transformers import AutoTokenizer

    from infiniretri.loading import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    items = load_hotpotqa()
    chosen = splits(items, args.seed)
    bm25, rand = BM25Ranker(), RandomRanker(args.seed)
    out: dict[str, Any] = {}
    for split, indices in chosen.items():
        for n, index in enumerate(indices):
            doc = build_doc(items[index])
            texts = [doc.unit_text(i) for i in range(len(doc.units))]
            lengths = [
                len(ids)
                for ids in tokenizer([" " + t for t in texts], add_special_tokens=False)[
                    "input_ids"
                ]
            ]
            record = doc.as_dict()
            record.update(
                split=split,
                source_index=index,
                doc_tokens=len(tokenizer(doc.text, add_special_tokens=False)["input_ids"]),
                unit_tokens=lengths,
                rankings={
                    "bm25": bm25.scores(texts, doc.question),
                    "random": rand.scores(texts, doc.question, key=doc.qid),
                },
            )
            out[doc.qid] = record
            if n % 50 == 0:
                print(f"prepare {split}: {n}/{len(indices)}", file=sys.stderr)
    payload = {
        "seed": args.seed,
        "data": f"hotpotqa.json from {DATA_WHEEL} (HotpotQA dev, distractor setting)",
        "splits": {k: [items[i]["_id"] for i in v] for k, v in chosen.items()},
        "items": out,
    }
    PREPARED.parent.mkdir(parents=True, exist_ok=True)
    write_json(PREPARED, payload)
    print(f"wrote {PREPARED}", file=sys.stderr)
    return PREPARED


def add_dense_rankings(records: list[dict[str, Any]], device: str) -> None:
    """Fill in the dense baseline's rankings where missing (``prepare`` leaves them out: the
    encoder is cheap on a GPU and slow on a busy CPU)."""
    missing = [r for r in records if "dense_minilm" not in r["rankings"]]
    if not missing:
        return
    dense = DenseRanker(device=device)
    for record in missing:
        doc = HotpotDoc.from_dict(record)
        texts = [doc.unit_text(i) for i in range(len(doc.units))]
        record["rankings"]["dense_minilm"] = dense.scores(texts, doc.question)


def load_prepared(split: str, limit: int | None = None) -> list[dict[str, Any]]:
    data = json.loads(PREPARED.read_text(encoding="utf-8"))
    records = [data["items"][qid] for qid in data["splits"][split]]
    return records[:limit] if limit else records


# =========================================================================== shared pieces
def ir_spans(retrieval) -> list[tuple[int, int]]:
    return [(s.char_start, s.char_end) for s in retrieval.sentences]


def truncate_by_score(retrieval, budget: int) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """The retrieval's cache cut to ``budget`` tokens, best-scored sentences first."""
    lengths = [len(ids) for ids in retrieval.token_ids]
    keep = fill_budget([s.score for s in retrieval.sentences], lengths, budget)
    spans = [(retrieval.sentences[i].char_start, retrieval.sentences[i].char_end) for i in keep]
    return spans, [retrieval.token_ids[i] for i in keep]


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 4) if values else None


# =========================================================================== worker pool
@functools.lru_cache(maxsize=1)
def _engine(device: str, dtype: str | None, options_json: str):
    """One engine per process (the pool's workers keep theirs between tasks)."""
    return load_engine(device, dtype, **json.loads(options_json))


def _pool_init(device: str, dtype: str | None, options_json: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _engine(device, dtype, options_json)


def run_tasks(
    fn, tasks: list[tuple], args: argparse.Namespace, options: dict, deadline
) -> Iterator:
    """``fn(engine, *task)`` for every task: inline, or in ``args.workers`` processes.

    Results are yielded as tasks finish (so callers can checkpoint each); at the deadline the
    rest is dropped.
    """
    options_json = json.dumps(options, sort_keys=True)
    if args.workers <= 1:
        for task in tasks:
            if deadline.expired(20):
                print("deadline reached: remaining tasks dropped", file=sys.stderr)
                return
            yield fn(_engine(args.device, args.dtype, options_json), *task)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    jobs = [(fn, args.device, args.dtype, options_json, task) for task in tasks]
    with ctx.Pool(
        args.workers,
        initializer=_pool_init,
        initargs=(args.device, args.dtype, options_json, threads),
    ) as pool:
        results = pool.imap_unordered(_run_job, jobs)
        for _ in jobs:
            try:
                left = deadline.left()
                timeout = None if left == float("inf") else max(1.0, left - 20)
                result = results.next(timeout=timeout)
            except mp.TimeoutError:
                print("deadline reached: remaining tasks dropped", file=sys.stderr)
                pool.terminate()
                return
            yield result


def _run_job(job):
    fn, device, dtype, options_json, task = job
    return fn(_engine(device, dtype, options_json), *task)


# =========================================================================== tune
def tune(args: argparse.Namespace) -> Path:
    """Choose retrieval layer, phrase width, chunk size and top-K on the dev split."""
    from infiniretri import WindowScorer
    from infiniretri.sources import open_documents

    deadline = Deadline(args.deadline)
    records = load_prepared("dev", args.limit)
    docs = [HotpotDoc.from_dict(r) for r in records]
    base = _engine(args.device, args.dtype, "{}")
    default = engine_settings(base)
    layers = tuple(range(base.num_layers))
    scorers = {width: WindowScorer(width, 1) for width in TUNE_LAYERS_PHRASES}

    # A. one pass over the whole document, all layers at once, every phrase width.
    started = time.perf_counter()
    table: dict[tuple[int, int], dict[int, list[float]]] = {}
    for doc in docs:
        units = list(base.segmenter.units(open_documents(doc.text)))
        lengths = [len(u.ids) for u in units]
        with base.unit_attention(units, doc.question, layers) as captured:
            for layer in layers:
                for width, scorer in scorers.items():
                    best = scorer.select(captured[layer])[0].unit_scores
                    row = table.setdefault((layer, width), {b: [] for b in BUDGETS})
                    for budget in BUDGETS:
                        keep = fill_budget(best, lengths, budget)
                        spans = [(units[i].char_start, units[i].char_end) for i in keep]
                        row[budget].append(recall_stats(found(doc.gold, spans))[0])
    single_pass = [
        {
            "retrieval_layer": layer,
            "phrase_tokens": width,
            **{f"recall@{b}": mean(v) for b, v in row.items()},
            "score": mean([mean(v) for v in row.values()]),
        }
        for (layer, width), row in sorted(table.items())
    ]
    print(f"tune A: {time.perf_counter() - started:.1f}s", file=sys.stderr)

    # B. the engine's own synthetic needle calibration: a guard for long-document retrieval.
    mrr = base.calibrate_layers(trials=args.trials)
    synthetic = {str(k): round(v, 4) for k, v in mrr.items()}
    allowed = {k for k, v in mrr.items() if v >= SYNTHETIC_GUARD * max(mrr.values())}

    by_key = {(r["retrieval_layer"], r["phrase_tokens"]): r for r in single_pass}
    default_row = by_key[(default["retrieval_layer"], default["phrase_tokens"])]
    candidates = [r for r in single_pass if r["retrieval_layer"] in allowed] or single_pass
    best_row = max(candidates, key=lambda r: (r["score"], -r["retrieval_layer"]))
    adopt = best_row["score"] - default_row["score"] >= ADOPT_RECALL_GAIN
    layer = best_row["retrieval_layer"] if adopt else default["retrieval_layer"]
    width = best_row["phrase_tokens"] if adopt else default["phrase_tokens"]

    # C. sliding scans: chunk size x top-K at the chosen layer and width (one task each).
    tasks = [
        (layer, width, chunk, top_k, records, args.batch_size) for chunk, top_k in args.tune_grid
    ]
    sliding = list(run_tasks(_sliding_row, tasks, args, {}, deadline))
    sliding.sort(key=lambda r: (r["chunk_tokens"], r["top_k_tokens"]))
    for row in sliding:
        print(f"tune C: {row}", file=sys.stderr)
    chunk, top_k = default["chunk_tokens"], default["top_k_tokens"]
    ref = next(
        (r for r in sliding if (r["chunk_tokens"], r["top_k_tokens"]) == (chunk, top_k)), None
    )
    if ref is not None and sliding:
        best = max(sliding, key=lambda r: (r["f1"], r["chunk_tokens"], -r["top_k_tokens"]))
        if best["f1"] - ref["f1"] >= ADOPT_F1_GAIN:
            chunk, top_k = best["chunk_tokens"], best["top_k_tokens"]
    chosen = {
        "retrieval_layer": layer,
        "phrase_tokens": width,
        "chunk_tokens": chunk,
        "top_k_tokens": top_k,
    }
    payload = {
        "split": "dev",
        "items": len(docs),
        "defaults_before": default,
        "rules": {
            "layer_and_phrase": (
                "one pass over the whole document with all layers captured; among layers whose "
                f"synthetic-needle MRR is at least {SYNTHETIC_GUARD:.0%} of the best, the pair of "
                f"best mean recall@{BUDGETS} replaces the default only when it gains at least "
                f"{ADOPT_RECALL_GAIN:.2f}"
            ),
            "chunk_and_top_k": (
                "sliding scans with the engine's natural cache, answered by the reader; the pair "
                "of best answer F1 replaces the default only when it gains at least "
                f"{ADOPT_F1_GAIN:.2f}"
            ),
        },
        "single_pass": single_pass,
        "synthetic_layer_mrr": synthetic,
        "sliding": sliding,
        "chosen": chosen,
    }
    path = Path(args.out or RESULTS_DIR / "hotpotqa_tuning.json")
    write_json(path, payload)
    print(f"wrote {path}: chosen {chosen}", file=sys.stderr)
    return path


def _sliding_row(base, layer, width, chunk, top_k, records, batch_size) -> dict[str, Any]:
    """Scan every dev document with one (chunk_tokens, top_k_tokens) pair; read the caches."""
    from .reader import read_batch, selection_prompt

    docs = [HotpotDoc.from_dict(r) for r in records]
    engine = base.with_options(
        retrieval_layer=layer, phrase_tokens=width, chunk_tokens=chunk, top_k_tokens=top_k
    )
    t0 = time.perf_counter()
    rets = [engine.retrieve(d.text, d.question) for d in docs]
    seconds = (time.perf_counter() - t0) / len(docs)
    prompts = [selection_prompt(engine, r.token_ids, d.question) for r, d in zip(rets, docs)]
    answers = read_batch(engine, prompts, MAX_NEW_TOKENS, batch_size)
    hits = [recall_stats(found(d.gold, ir_spans(r))) for r, d in zip(rets, docs)]
    row: dict[str, Any] = {
        "chunk_tokens": chunk,
        "top_k_tokens": top_k,
        "recall": mean(h[0] for h in hits),
        "all_found": mean(float(h[1]) for h in hits),
        "cache_tokens": mean(r.stats.cache_tokens for r in rets),
        "f1": mean(qa_f1_score(first_line(a), d.answer) for a, d in zip(answers, docs)),
        "seconds_per_item": round(seconds, 4),
        "forward_passes": mean(r.stats.forward_passes for r in rets),
    }
    for budget in BUDGETS:
        row[f"recall@{budget}"] = mean(
            recall_stats(found(d.gold, truncate_by_score(r, budget)[0]))[0]
            for r, d in zip(rets, docs)
        )
    return row


# =========================================================================== report
def _item_runs(
    engine_for,
    record: dict[str, Any],
    doc: HotpotDoc,
    chunk_sizes,
    budgets,
    full_prompt,
    variants=(),
    variant_answers=True,
):
    """Selections and prompts of every method for one item (answers filled in later)."""
    from .reader import selection_prompt, unit_ids

    runs: list[dict[str, Any]] = []
    lengths = record["unit_tokens"]
    texts = [doc.unit_text(i) for i in range(len(doc.units))]
    for name in BASELINES:
        for budget in budgets:
            keep = fill_budget(record["rankings"][name], lengths, budget)
            ids = unit_ids(engine_for(None, None), [texts[i] for i in keep])
            hits = found(doc.gold, [doc.units[i] for i in keep])
            runs.append(
                {
                    "method": name,
                    "budget": budget,
                    "selected_tokens": sum(lengths[i] for i in keep),
                    "hits": hits,
                    "prompt": selection_prompt(engine_for(None, None), ids, doc.question),
                }
            )
    scans = [(chunk, None) for chunk in chunk_sizes]
    scans += [(chunk_sizes[0], variant) for variant in variants]
    for chunk, variant in scans:
        for budget in [*budgets, None]:
            engine = engine_for(chunk, budget, variant)
            r = engine.retrieve(doc.text, doc.question)
            if chunk == chunk_sizes[0] and variant is None and budget is None:
                # The product's own answer step (engine.answer_from, its answer settings).
                runs.append(
                    {
                        "method": f"infiniretri_c{chunk}_answer",
                        "budget": "natural",
                        "selected_tokens": r.stats.cache_tokens,
                        "hits": found(doc.gold, ir_spans(r)),
                        "retrieval": r,
                        "scan_tokens_processed": r.stats.tokens_processed,
                        "scan_forward_passes": r.stats.forward_passes,
                        "scan_seconds": round(r.stats.seconds, 4),
                    }
                )
            run = {
                "method": f"infiniretri_c{chunk}" + (f"_{variant}" if variant else ""),
                "budget": budget if budget is not None else "natural",
                "selected_tokens": r.stats.cache_tokens,
                "hits": found(doc.gold, ir_spans(r)),
                "scan_tokens_processed": r.stats.tokens_processed,
                "scan_forward_passes": r.stats.forward_passes,
                "scan_seconds": round(r.stats.seconds, 4),
            }
            if variant is None or variant_answers:
                run["prompt"] = selection_prompt(engine, r.token_ids, doc.question)
            runs.append(run)
    prompt, kept, truncated = full_prompt(doc)
    runs.append(
        {
            "method": "full_context",
            "budget": "window",
            "selected_tokens": kept,
            "hits": [True] * len(doc.gold) if not truncated else None,
            "prompt": prompt,
            "truncated": truncated,
        }
    )
    return runs


def _report_block(
    base, records, chunk_sizes, batch_size, variants=(), variant_answers=True
) -> list[dict[str, Any]]:
    """Every method on a block of report items, answers read in batches."""
    from .reader import full_context_prompt, read_batch

    engines: dict[tuple, Any] = {}

    def engine_for(chunk, budget, variant=None):
        key = (chunk, budget, variant)
        if key not in engines:
            extra = dict(ABLATION[variant]) if variant else {}
            if chunk is not None:
                extra["chunk_tokens"] = chunk
            if budget is not None:
                extra["max_cache_tokens"] = budget
            engines[key] = base.with_options(**extra) if extra else base
        return engines[key]

    block_runs = []
    for record in records:
        doc = HotpotDoc.from_dict(record)
        runs = _item_runs(
            engine_for,
            record,
            doc,
            chunk_sizes,
            BUDGETS,
            lambda d: full_context_prompt(base, d.text, d.question, MAX_NEW_TOKENS),
            variants,
            variant_answers,
        )
        block_runs.append((record, doc, runs))
    prompts = [run["prompt"] for _, _, runs in block_runs for run in runs if "prompt" in run]
    answers = iter(read_batch(base, prompts, MAX_NEW_TOKENS, batch_size))
    product = [run for _, _, runs in block_runs for run in runs if "retrieval" in run]
    engine = engine_for(chunk_sizes[0], None)
    answered = engine.answer_from_batch(
        [run.pop("retrieval") for run in product], max_new_tokens=MAX_NEW_TOKENS
    )
    for run, answer in zip(product, answered):
        run["prompt"], run["text"] = answer.usage.answer_prompt_tokens, answer.text.strip()
    items = []
    for record, doc, runs in block_runs:
        for run in runs:
            if "prompt" not in run:  # a variant scored for recall alone
                continue
            text = run.pop("text") if "text" in run else next(answers)
            prompt = run.pop("prompt")
            run["prompt_tokens"] = prompt if isinstance(prompt, int) else len(prompt)
            run["answer"] = text[:300]
            run["f1"] = round(qa_f1_score(first_line(text), doc.answer), 4)
        items.append(
            {
                "qid": doc.qid,
                "answer": doc.answer,
                "kind": doc.kind,
                "doc_tokens": record["doc_tokens"],
                "gold": len(doc.gold),
                "runs": runs,
            }
        )
    return items


def report(args: argparse.Namespace) -> Path:
    """All methods on the report split, at every budget and chunk size."""
    deadline = Deadline(args.deadline)
    records = load_prepared(args.split, args.limit)
    add_dense_rankings(records, args.device)
    options = read_options(args.options)
    settings = engine_settings(
        _engine(args.device, args.dtype, json.dumps(options, sort_keys=True))
    )
    checkpoint = Path(args.checkpoint or CACHE_DIR / f"hotpotqa_{args.split}_{args.device}.jsonl")
    done = {r["qid"]: r for r in read_jsonl(checkpoint)}
    todo = [r for r in records if r["qid"] not in done]
    print(f"report: {len(done)} done, {len(todo)} to go", file=sys.stderr)
    chunk_sizes = tuple(args.chunk_sizes)
    variants = tuple(args.variants)
    tasks = [
        (todo[i : i + args.block], chunk_sizes, args.batch_size, variants, args.variant_answers)
        for i in range(0, len(todo), args.block)
    ]
    for block in run_tasks(_report_block, tasks, args, options, deadline):
        for item in block:
            append_jsonl(checkpoint, item)
            done[item["qid"]] = item
        print(f"report: {len(done)}/{len(records)}", file=sys.stderr)

    items = [done[r["qid"]] for r in records if r["qid"] in done]
    payload = {
        "split": args.split,
        "items_total": len(records),
        "items_done": len(items),
        "budgets": list(BUDGETS),
        "chunk_sizes": list(chunk_sizes),
        "ablation": {v: ABLATION[v] for v in variants},
        "reader": f"{settings['model']} via the engine's answer prompt, greedy, "
        f"max_new_tokens={MAX_NEW_TOKENS}, first line scored with LongBench qa_f1_score",
        "engine": settings,
        "workers": args.workers,
        "doc_tokens_mean": mean(i["doc_tokens"] for i in items),
        "summary": summarize(items),
        "items": items,
    }
    path = Path(args.out or RESULTS_DIR / "hotpotqa.json")
    write_json(path, payload)
    print(f"wrote {path}", file=sys.stderr)
    return path


def summarize(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, budget): recall, all-found rate, F1, tokens."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:
        for run in item["runs"]:
            groups.setdefault((run["method"], str(run["budget"])), []).append((item, run))
    rows = []
    for (method, budget), pairs in sorted(groups.items()):
        stats = [recall_stats(run["hits"]) for _, run in pairs if run["hits"] is not None]
        row = {
            "method": method,
            "budget": budget,
            "n": len(pairs),
            "recall": mean(s[0] for s in stats) if stats else None,
            "all_found": mean(float(s[1]) for s in stats) if stats else None,
            "f1": mean(run["f1"] for _, run in pairs if "f1" in run),
            "selected_tokens": mean(run["selected_tokens"] for _, run in pairs),
            "reader_prompt_tokens": mean(
                run["prompt_tokens"] for _, run in pairs if "prompt_tokens" in run
            ),
            "doc_tokens": mean(item["doc_tokens"] for item, _ in pairs),
        }
        if method.startswith("infiniretri"):
            row["scan_tokens_processed"] = mean(run["scan_tokens_processed"] for _, run in pairs)
            row["scan_forward_passes"] = mean(run["scan_forward_passes"] for _, run in pairs)
            row["scan_seconds"] = mean(run["scan_seconds"] for _, run in pairs)
        rows.append(row)
    return rows


# =========================================================================== cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hotpotqa", description=__doc__.split("\n")[0]
    )
    parser.add_argument("stage", choices=("prepare", "tune", "report", "all"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="model dtype (default: the engine's)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (prepare)")
    parser.add_argument("--limit", type=int, default=None, help="first N items of the split")
    parser.add_argument(
        "--options", default=None, help="tuning JSON whose 'chosen' settings to use"
    )
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=list(CHUNK_SIZES))
    parser.add_argument(
        "--variants",
        nargs="*",
        choices=sorted(ABLATION),
        default=sorted(ABLATION),
        help="ablation variants of the engine run beside its defaults (report)",
    )
    parser.add_argument(
        "--variant-answers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read answers for the ablation variants too (report; off: recall only)",
    )
    parser.add_argument(
        "--split",
        choices=("report", "dev"),
        default="report",
        help="split the report stage reads (dev: choose defaults on it)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="reader batch")
    parser.add_argument("--block", type=int, default=25, help="items per task and checkpoint")
    parser.add_argument("--workers", type=int, default=1, help="engine processes (GPU: several)")
    parser.add_argument("--trials", type=int, default=24, help="synthetic calibration trials")
    parser.add_argument(
        "--tune-grid",
        type=lambda text: tuple(int(x) for x in text.split(":")),
        nargs="+",
        default=list(TUNE_GRID),
        help="chunk_tokens:top_k_tokens pairs of the sliding sweep",
    )
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the stage")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.stage in ("prepare", "all"):
        prepare(args)
    if args.stage in ("tune", "all"):
        path = tune(args)
        args.options = args.options or str(path)
        args.out = None
    if args.stage in ("report", "all"):
        report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
