"""Before/after behaviour check: the sentences ``engine.retrieve`` returns, recorded and compared.

Record the retrieved sentences of a fixed set of cases with one version of the code, record them
again with another, and compare the two files::

    python -m bench.behaviour_check record --output bench/results/behaviour_before.json
    python -m bench.behaviour_check record --output /tmp/after.json
    python -m bench.behaviour_check compare bench/results/behaviour_before.json /tmp/after.json \\
        --out bench/results/behaviour_check.json

Cases (59): the NIAH needle and question of ``bench/niah.py`` in haystacks of 4k, 8k and 16k
tokens at depths 10, 50 and 90%; and the first 50 items of the HotpotQA report split (the
seeded split of ``bench/hotpotqa.py``, documents built by ``hotpot_data.build_doc``). The
engine is the embedded SmolLM2-135M on the CPU with its default settings, through the public
API only. A case passes when both files hold the same inputs, the same sentences (text,
``doc_index``, ``char_start``, ``char_end``, in order) and every score differs by at most
``--tolerance`` (1e-5). ``compare`` exits with status 1 when any case fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from .common import RESULTS_DIR, load_essays, load_hotpotqa, write_json
from .haystack import QUESTION, HaystackBuilder
from .hotpot_data import build_doc, splits

NIAH_LENGTHS = (4_000, 8_000, 16_000)
NIAH_DEPTHS = (10, 50, 90)
HOTPOT_ITEMS = 50
HOTPOT_SPLIT = "report"
TOLERANCE = 1e-5
THREADS = 2
STATS_FIELDS = ("tokens_read", "forward_passes", "tokens_processed", "cache_tokens", "documents")
"""Scan counters recorded beside the sentences (``seconds`` is left out: it always varies)."""


# --------------------------------------------------------------------------- cases
def niah_cases(tokenizer: Any) -> list[dict[str, str]]:
    """The 9 NIAH cases: ``{"id", "text", "question"}``, built by ``bench.haystack``."""
    builder = HaystackBuilder(load_essays(), tokenizer)
    cases = []
    for length in NIAH_LENGTHS:
        for depth in NIAH_DEPTHS:
            hay = builder.build(length, depth)
            cases.append({"id": f"niah/{length}/{depth}", "text": hay.text, "question": QUESTION})
    return cases


def hotpot_cases(limit: int = HOTPOT_ITEMS) -> list[dict[str, str]]:
    """The first ``limit`` items of the HotpotQA report split, as ``{"id", "text", "question"}``."""
    items = load_hotpotqa()
    cases = []
    for index in splits(items)[HOTPOT_SPLIT][:limit]:
        doc = build_doc(items[index])
        cases.append({"id": f"hotpotqa/{doc.qid}", "text": doc.text, "question": doc.question})
    return cases


def _digest(text: str, question: str) -> str:
    """SHA-256 of a case's input (so that compare notices changed inputs)."""
    return hashlib.sha256(f"{question}\0{text}".encode()).hexdigest()


# --------------------------------------------------------------------------- record
def record(output: Path, hotpot_items: int = HOTPOT_ITEMS) -> Path:
    """Run every case through ``engine.retrieve`` and write the sentences to ``output``."""
    import torch

    torch.set_num_threads(THREADS)
    import infiniretri
    from infiniretri import InfiniRetri

    started = time.perf_counter()
    engine = InfiniRetri.from_pretrained(device="cpu")
    load_seconds = time.perf_counter() - started
    cases = niah_cases(engine.tokenizer) + hotpot_cases(hotpot_items)
    records = []
    for n, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        retrieval = engine.retrieve(case["text"], case["question"])
        seconds = time.perf_counter() - t0
        records.append(
            {
                "id": case["id"],
                "input_sha256": _digest(case["text"], case["question"]),
                "chars": len(case["text"]),
                "sentences": [
                    {
                        "text_sha256": hashlib.sha256(s.text.encode()).hexdigest(),
                        "doc_index": s.doc_index,
                        "char_start": s.char_start,
                        "char_end": s.char_end,
                        "score": float(s.score),
                    }
                    for s in retrieval.sentences
                ],
                "stats": {k: getattr(retrieval.stats, k) for k in STATS_FIELDS},
                "seconds": round(seconds, 3),
            }
        )
        print(
            f"[{n}/{len(cases)}] {case['id']}: {len(retrieval.sentences)} sentences, "
            f"{seconds:.1f} s",
            flush=True,
        )
    total = time.perf_counter() - started
    payload = {
        "infiniretri_file": infiniretri.__file__,
        "engine": {
            "chunk_tokens": engine.chunk_tokens,
            "phrase_tokens": engine.phrase_tokens,
            "top_k_tokens": engine.top_k_tokens,
            "retrieval_layer": engine.retrieval_layer_index,
            "dtype": str(next(engine.model.parameters()).dtype).removeprefix("torch."),
        },
        "cases_spec": {
            "niah_lengths": list(NIAH_LENGTHS),
            "niah_depths": list(NIAH_DEPTHS),
            "hotpotqa": f"first {hotpot_items} items of the '{HOTPOT_SPLIT}' split (seed 0)",
        },
        "seconds": {"load": round(load_seconds, 1), "total": round(total, 1)},
        "cases": records,
    }
    path = write_json(output, payload)
    print(f"wrote {path} ({len(records)} cases, {total:.0f} s)")
    return path


# --------------------------------------------------------------------------- compare
def compare_case(
    before: dict[str, Any] | None, after: dict[str, Any] | None, tolerance: float
) -> dict[str, Any]:
    """Pass/fail of one case, with its largest score difference and the first difference."""
    if before is None or after is None:
        return {"pass": False, "reason": "missing in " + ("before" if before is None else "after")}
    out: dict[str, Any] = {"pass": True, "max_score_diff": None, "reason": None}
    if before["input_sha256"] != after["input_sha256"]:
        out.update({"pass": False, "reason": "the inputs differ"})
        return out
    key = ("text_sha256", "doc_index", "char_start", "char_end")
    sb, sa = before["sentences"], after["sentences"]
    out["sentences"] = [len(sb), len(sa)]
    for i, (x, y) in enumerate(zip(sb, sa)):
        if tuple(x[k] for k in key) != tuple(y[k] for k in key):
            out.update({"pass": False, "reason": f"sentence {i} differs", "first_diff": [x, y]})
            break
    if out["pass"] and len(sb) != len(sa):
        out.update({"pass": False, "reason": f"{len(sb)} sentences before, {len(sa)} after"})
    diffs = [abs(x["score"] - y["score"]) for x, y in zip(sb, sa)]
    out["max_score_diff"] = max(diffs, default=0.0)
    if out["pass"] and out["max_score_diff"] > tolerance:
        out.update({"pass": False, "reason": f"score differs by {out['max_score_diff']:.3g}"})
    out["stats_same"] = before.get("stats") == after.get("stats")
    if not out["stats_same"]:
        out["stats"] = [before.get("stats"), after.get("stats")]
    return out


def _commit(recorded: dict[str, Any]) -> str | None:
    """The git commit a record file was written at."""
    return recorded.get("meta", {}).get("git_commit")


def compare(before_path: Path, after_path: Path, out_path: Path, tolerance: float) -> bool:
    """Compare two ``record`` files case by case; write ``out_path``; True when all pass."""
    before = json.loads(Path(before_path).read_text(encoding="utf-8"))
    after = json.loads(Path(after_path).read_text(encoding="utf-8"))
    by_b = {c["id"]: c for c in before["cases"]}
    by_a = {c["id"]: c for c in after["cases"]}
    ids = list(by_b) + [i for i in by_a if i not in by_b]
    cases = {i: compare_case(by_b.get(i), by_a.get(i), tolerance) for i in ids}
    failed = [i for i, c in cases.items() if not c["pass"]]
    diffs = [c["max_score_diff"] for c in cases.values() if c.get("max_score_diff") is not None]
    same = not failed
    summary = {
        "same": same,
        "cases": len(cases),
        "passed": len(cases) - len(failed),
        "failed": failed,
        "max_score_diff": max(diffs, default=0.0),
        "tolerance": tolerance,
        "stats_differ": [i for i, c in cases.items() if c.get("stats_same") is False],
    }
    payload = {
        **summary,
        "before": {"file": str(before_path), "git_commit": _commit(before)},
        "after": {"file": str(after_path), "git_commit": _commit(after)},
        "per_case": cases,
    }
    write_json(out_path, payload)
    for i in failed:
        print(f"FAIL {i}: {cases[i]['reason']} (max score diff {cases[i].get('max_score_diff')})")
    print(
        f"{summary['passed']}/{summary['cases']} cases identical; max |score diff| "
        f"{summary['max_score_diff']:.3g} (tolerance {tolerance:g}); "
        f"scan counters differ in {len(summary['stats_differ'])} case(s); same: {same}"
    )
    print(f"wrote {out_path}")
    return same


# --------------------------------------------------------------------------- cli
def main(argv: list[str] | None = None) -> int:
    """Command line: ``record`` or ``compare``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.behaviour_check", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="run the cases and write the retrieved sentences")
    rec.add_argument("--output", type=Path, required=True)
    rec.add_argument("--hotpot-items", type=int, default=HOTPOT_ITEMS)
    cmp_ = sub.add_parser("compare", help="compare two record files (exit 1 when they differ)")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    cmp_.add_argument("--out", type=Path, default=RESULTS_DIR / "behaviour_check.json")
    cmp_.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.output, args.hotpot_items)
        return 0
    return 0 if compare(args.before, args.after, args.out, args.tolerance) else 1


if __name__ == "__main__":
    sys.exit(main())
