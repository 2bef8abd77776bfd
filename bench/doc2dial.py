"""doc2dial (ChatRAG-Bench): the model's attention against BM25, dense embeddings and a random
floor, on real web passages with one labelled gold passage per question (``bench.doc2dial_data``).

    python -m bench.doc2dial prepare                  # CPU: splits, units, BM25, MiniLM, random
    python -m bench.doc2dial report --device cuda     # InfiniRetri scans, every method scored
    python -m bench.doc2dial report --split dev       # the tuning split

``prepare`` writes ``bench/data/doc2dial_prepared.json.gz`` (git-ignored: it holds the text),
so the report runs from that file and the repository alone. ``report`` writes
``bench/results/doc2dial.json`` (ids, counts and hits; no data text).

Every method selects whole units (the engine's own sentences, made in ``prepare``) best-first
until the token budget is full (``bench.baselines.fill_budget``). InfiniRetri gets each budget
as ``max_cache_tokens`` of its scan (``infiniretri_c<chunk>``, as ``bench.hotpotqa`` does) and,
with ``--ir-mode cut`` or ``both``, as its natural cache cut by score (``..._cut``). The score
is the gold hit: a selected sentence of the gold passage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .baselines import BM25Ranker, DenseRanker, RandomRanker, fill_budget
from .common import (
    BENCH_DIR,
    Deadline,
    read_json_gz,
    run_meta,
    write_json_gz,
)
from .doc2dial_data import (
    DISTRACTORS,
    DOC2DIAL_WHEEL,
    QUESTION_TURNS,
    build_document,
    gold_hit,
    load,
    splits,
)
from .engine_setup import parse_options
from .hotpotqa import _engine, mean
from .retrieval_report import (
    add_report_arguments,
    checkpoint_path,
    infiniretri_runs,
    paired_lines,
    paired_rows,
    report_payload,
    run_checkpointed,
    run_stages,
    selection_run,
    write_report,
)

PREPARED = BENCH_DIR / "data" / "doc2dial_prepared.json.gz"
BUDGETS = (64, 128, 256)
BASELINES = ("bm25", "dense_minilm", "random")
SCORE_DIGITS = 6
LICENCE = (
    "doc2dial (IBM, CC BY 3.0 US) as vendored by ChatRAG-Bench in the nvidia-lm-eval wheel "
    "(MIT); the text is read from the wheel, never copied into the repository"
)


# =========================================================================== prepare
def _dense_scores(dense: DenseRanker, vectors: dict, texts: list[str], question: str):
    """MiniLM cosine scores of ``texts``, each distinct text embedded once per run."""
    import torch

    new = list(dict.fromkeys(t for t in texts if t not in vectors))
    if new:
        vectors.update(zip(new, dense.embed(new)))
    q = dense.embed([question])[0]
    scores = torch.stack([vectors[t] for t in texts]) @ q
    return [round(s, SCORE_DIGITS) for s in scores.tolist()]


def prepare(args: argparse.Namespace) -> Path:
    """Splits, documents, the engine's units and the baselines' rankings (CPU)."""
    from transformers import AutoTokenizer

    from infiniretri.engine import DEFAULT_MAX_SENTENCE_TOKENS
    from infiniretri.loading import embedded_model_dir
    from infiniretri.segments import Segmenter
    from infiniretri.sources import open_documents

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    segmenter = Segmenter(tokenizer, DEFAULT_MAX_SENTENCE_TOKENS)
    turns, passages = load()
    chosen = splits(turns, args.seed)
    bm25, dense, rand = BM25Ranker(), DenseRanker(device=args.dense_device), RandomRanker(args.seed)
    vectors: dict[str, Any] = {}  # unit text -> MiniLM embedding (passages recur across items)
    items = {}
    for split, members in chosen.items():
        for n, turn in enumerate(members):
            text, gold = build_document(turn, passages, args.seed)
            units = list(segmenter.units(open_documents(text)))
            spans = [[u.char_start, u.char_end] for u in units]
            texts = [u.text for u in units]
            question = turn.question
            items[turn.qid] = {
                "qid": turn.qid,
                "split": split,
                "site": turn.site,
                "question": question,
                "answer": turn.answer,
                "text": text,
                "gold": list(gold),
                "units": spans,
                "unit_tokens": [len(u.ids) for u in units],
                "doc_tokens": len(segmenter.encode_text(text)),
                "gold_units": sum(gold_hit(gold, [s]) for s in spans),
                "rankings": {
                    "bm25": [round(s, SCORE_DIGITS) for s in bm25.scores(texts, question)],
                    "dense_minilm": _dense_scores(dense, vectors, texts, question),
                    "random": rand.scores(texts, question, key=turn.qid),
                },
            }
            if n % 50 == 0:
                print(
                    f"prepare {split}: {n}/{len(members)} ({time.perf_counter() - started:.0f}s)",
                    file=sys.stderr,
                )
    payload = {
        "meta": run_meta(),
        "seed": args.seed,
        "data": f"ChatRAG-Bench doc2dial from {DOC2DIAL_WHEEL}",
        "licence": LICENCE,
        "construction": (
            f"one turn per dialogue; question: the last {QUESTION_TURNS} turns; document: the "
            f"gold passage and {DISTRACTORS} passages of the same site (no shared title, no "
            "overlap), shuffled"
        ),
        "max_sentence_tokens": DEFAULT_MAX_SENTENCE_TOKENS,
        "splits": {k: [t.qid for t in v] for k, v in chosen.items()},
        "items": items,
    }
    path = write_json_gz(Path(args.prepared or PREPARED), payload)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return path


# =========================================================================== scoring
def _run(method, budget, record, spans, tokens, retrieval=None) -> dict[str, Any]:
    hit = gold_hit(record["gold"], spans)
    return selection_run(method, budget, len(spans), tokens, hit, retrieval)


def baseline_runs(record: dict[str, Any], budgets) -> list[dict]:
    """Every baseline at every budget for one item (no model needed)."""
    units, lengths = record["units"], record["unit_tokens"]
    runs = []
    for name in BASELINES:
        for budget in budgets:
            keep = fill_budget(record["rankings"][name], lengths, budget)
            spans = [units[i] for i in keep]
            runs.append(_run(name, budget, record, spans, sum(lengths[i] for i in keep)))
    return runs


def _report_block(base, records, chunk_sizes, budgets, ir_mode) -> list[dict]:
    """All methods on a block of items; InfiniRetri scans the block's items as one batch."""
    pairs = [(r["text"], r["question"]) for r in records]

    def make_run(method, budget, i, spans, tokens, ret):
        return _run(method, budget, records[i], spans, tokens, ret)

    scans = infiniretri_runs(base, pairs, chunk_sizes, budgets, ir_mode, make_run)
    runs = [[*baseline_runs(r, budgets), *scan] for r, scan in zip(records, scans)]
    return [
        {
            "qid": r["qid"],
            "site": r["site"],
            "doc_tokens": r["doc_tokens"],
            "gold_units": r["gold_units"],
            "runs": out,
        }
        for r, out in zip(records, runs)
    ]


def summarize(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, budget): gold-hit rate and tokens."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for item in items:
        for run in item["runs"]:
            groups.setdefault((run["method"], str(run["budget"])), []).append(run)

    def order(key):
        method, budget = key
        return (int(budget) if budget.isdigit() else 10**9, method)

    rows = []
    for (method, budget), runs in sorted(groups.items(), key=lambda kv: order(kv[0])):
        row = {
            "method": method,
            "budget": budget,
            "n": len(runs),
            "gold_hit": mean(float(r["hits"][0]) for r in runs),
            "selected_tokens": mean(r["selected_tokens"] for r in runs),
        }
        if method.startswith("infiniretri"):
            row["scan_tokens_processed"] = mean(r.get("scan_tokens_processed") for r in runs)
            row["scan_seconds"] = mean(r.get("scan_seconds") for r in runs)
        rows.append(row)
    return rows


def paired(items: list[dict[str, Any]], budgets) -> list[dict[str, Any]]:
    """Each InfiniRetri method minus each baseline, per question: mean and 95% interval."""
    return paired_rows(items, budgets, "recall", BASELINES)


# =========================================================================== report
def report(args: argparse.Namespace) -> Path:
    """Every method on the chosen split; InfiniRetri scans on ``--device``."""
    deadline = Deadline(args.deadline)
    data = read_json_gz(Path(args.prepared or PREPARED))
    records = [data["items"][q] for q in data["splits"][args.split]][: args.limit]
    options = parse_options(args.options)
    base = _engine(args.device, args.dtype, json.dumps(options, sort_keys=True))
    chunk_sizes, budgets = tuple(args.chunk_sizes), tuple(args.budgets)
    checkpoint = checkpoint_path("doc2dial", args, options)
    items = run_checkpointed(
        _report_block,
        records,
        lambda block: (block, chunk_sizes, budgets, args.ir_mode),
        checkpoint,
        args,
        options,
        deadline,
    )
    payload = report_payload(
        args,
        records,
        items,
        data,
        base,
        options,
        summarize(items),
        paired(items, budgets),
        construction=data["construction"],
        metric="gold hit: the selection holds a sentence of the labelled gold passage",
    )
    return write_report("doc2dial", args, payload, render)


def render(payload: dict[str, Any]) -> str:
    """A plain-text table of the summary and the paired differences."""
    out = [
        f"{payload['items_done']} items, documents of {payload['doc_tokens_mean'] or 0:,.0f} "
        "tokens",
        "method                       budget   n  gold hit  tokens",
    ]
    for r in payload["summary"]:
        out.append(
            f"{r['method']:28} {r['budget']:>7} {r['n']:3}  {100 * r['gold_hit']:8.1f}  "
            f"{r['selected_tokens']:6.0f}"
        )
    out.extend(paired_lines(payload["paired"]))
    return "\n".join(out)


# =========================================================================== cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.doc2dial", description=__doc__.split("\n")[0]
    )
    parser.add_argument("stage", choices=("prepare", "report", "all"))
    add_report_arguments(parser, PREPARED, (1024,), BUDGETS, ir_mode="scan")
    parser.add_argument("--dense-device", default="cpu", help="MiniLM device (prepare)")
    parser.add_argument("--seed", type=int, default=0, help="split and distractor seed")
    return run_stages(parser.parse_args(argv), prepare, report)


if __name__ == "__main__":
    sys.exit(main())
