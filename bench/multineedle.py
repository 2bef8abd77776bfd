"""Multi-needle retrieval (RULER-style): six needle tasks x two haystacks x lengths, via the API.

    python -m bench.multineedle run                          # 8k..128k, 2 samples: multineedle.json
    python -m bench.multineedle run --lengths 8000 16000 --samples 1 --out multineedle_cpu.json
    python -m bench.multineedle run --device cuda --lengths 8000 1000000 \\
        --options '{"chunk_tokens": 4096}' --out multineedle_gpu.json
    python -m bench.multineedle plot --input bench/results/multineedle_cpu.json
    python -m bench.multineedle table --input bench/results/multineedle_cpu.json

Tasks and documents: ``bench/multineedle_data.py`` (generated in code, seeded). Each case goes
through the product's public API only: ``engine.answer(document, question)``, the engine built
by ``bench.engine_setup.load_engine`` with ``--options`` (a JSON file, ``{"chosen": {...}}`` or
plain, or inline JSON) as its settings. Two scores per case: *kept* (every needle the question
needs is inside one sentence of the final cache: its key and its value) and *correct* (the answer
by the task's rule: ``multivalue`` needs every value, ``confusable`` the asked value and no other
needle's, the others the asked value). Finished cases go to a checkpoint (``bench/data/<out
name>.jsonl``, git-ignored) so a killed run resumes; cases of other settings are not reused.
The result file keeps the needles, questions and answers, never the haystack text.
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
    BENCH_DIR,
    RESULTS_DIR,
    Deadline,
    append_jsonl,
    measure,
    read_jsonl,
    write_json,
)
from .engine_setup import engine_settings, load_engine, parse_options
from .multineedle_data import HAYSTACKS, LENGTHS, TASKS, TEMPLATES, load_source, make_case

DATA_DIR = BENCH_DIR / "data"
MAX_NEW_TOKENS = 64
ANSWER_CHARS = 400
"""Stored characters of each answer."""


# =========================================================================== options
# =========================================================================== one case
def run_case(engine, case, max_new_tokens: int) -> dict[str, Any]:
    """Answer one case through ``engine.answer`` and score it."""
    record = case.describe()
    try:
        with measure() as m:
            answer = engine.answer(case.text, case.question, max_new_tokens=max_new_tokens)
    except Exception as err:  # recorded, the grid goes on
        record["error"] = f"{type(err).__name__}: {err}"[:500]
        record["traceback"] = traceback.format_exc()[-1500:]
        return record
    retrieval = answer.retrieval
    sentences = [s.text for s in retrieval.sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: -retrieval.sentences[i].score)
    rank_of = {i: r for r, i in enumerate(ranked, 1)}
    for needle, info in zip(case.needles, record["needles"]):
        where = [i for i, s in enumerate(sentences) if needle.kept_in([s])]
        info["kept"] = bool(where)
        info["cache_rank"] = rank_of[where[0]] if where else None
    stats = retrieval.stats
    named = case.named(answer.text)
    record.update(
        {
            "kept": case.kept(sentences),
            "correct": case.is_correct(answer.text),
            "targets_kept": sum(n["kept"] for n in record["needles"] if n["target"]),
            "others_kept": sum(n["kept"] for n in record["needles"] if not n["target"]),
            "targets_named": sum(v in named for v in (n.value for n in case.targets)),
            "others_named": sum(v in named for v in (n.value for n in case.others)),
            "answer": answer.text[:ANSWER_CHARS],
            "doc_tokens": stats.tokens_read,
            "cache_sentences": len(sentences),
            "cache_tokens": stats.cache_tokens,
            "forward_passes": stats.forward_passes,
            "usage": answer.usage.as_dict(),
            "scan_seconds": round(stats.seconds, 3),
            **m.as_dict(),
        }
    )
    return record


# =========================================================================== the grid
def plan(tasks, haystacks, lengths, samples: int) -> list[tuple[str, str, int, int]]:
    """Cases in run order: shortest length first, so a cut-off run still covers every task."""
    return [
        (task, hay, length, sample)
        for length in sorted(lengths)
        for sample in range(samples)
        for hay in haystacks
        for task in tasks
    ]


def case_id(task: str, hay: str, length: int, sample: int) -> str:
    return f"{task}/{hay}/{length}/{sample}"


def run(args: argparse.Namespace) -> Path:
    deadline = Deadline(args.deadline)
    options = parse_options(args.options)
    out = Path(args.out) if args.out else RESULTS_DIR / "multineedle.json"
    if not out.is_absolute() and out.parent == Path("."):
        out = RESULTS_DIR / out
    checkpoint = Path(args.checkpoint or DATA_DIR / f"{out.stem}.jsonl")
    setup = {
        "options": options,
        "device": args.device,
        "dtype": args.dtype,
        "seed": args.seed,
        "max_new_tokens": args.max_new_tokens,
    }
    cases = plan(args.tasks, args.haystacks, args.lengths, args.samples)
    done = {
        r["id"]: r for r in read_jsonl(checkpoint) if r.get("setup") == setup and "error" not in r
    }
    todo = [c for c in cases if case_id(*c) not in done]
    print(f"multineedle: {len(cases) - len(todo)} cases done, {len(todo)} to run", file=sys.stderr)

    from transformers import AutoTokenizer

    from infiniretri.loading import embedded_model_dir

    engine = load_engine(args.device, args.dtype, **options)
    settings = engine_settings(engine)
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())  # lengths are counted in it
    sources: dict[str, Any] = {}
    rate = 0.0  # seconds per requested token, the slowest case so far
    skipped: list[str] = []
    errors: list[dict[str, str]] = []
    started = time.perf_counter()
    try:
        for task, hay, length, sample in todo:
            if rate * length > deadline.left() or deadline.expired(5):
                skipped.append(case_id(task, hay, length, sample))
                continue
            if hay not in sources:
                sources[hay] = load_source(hay, tokenizer)
            case = make_case(task, sources[hay], length, sample, args.seed)
            record = run_case(engine, case, args.max_new_tokens)
            record["setup"] = setup
            append_jsonl(checkpoint, record)
            if "error" not in record:
                done[record["id"]] = record
                rate = max(rate, record["seconds"] / length)
            else:
                errors.append({"id": record["id"], "error": record["error"]})
            print(
                f"[{time.perf_counter() - started:6.0f}s] {record['id']:<28} "
                f"kept={record.get('kept')} correct={record.get('correct')} "
                f"t={record.get('seconds')} {record.get('error', '')} "
                f"{record.get('answer', '')[:80]!r}",
                file=sys.stderr,
            )
    finally:
        records = [done[case_id(*c)] for c in cases if case_id(*c) in done]
        for r in records:
            r.pop("setup", None)
        payload = {
            "description": "RULER-style multi-needle retrieval through engine.answer; kept: every "
            "needle the question needs is in the final cache (key and value in one sentence); "
            "correct: the answer by the task's rule",
            "tasks": list(args.tasks),
            "haystacks": list(args.haystacks),
            "lengths": sorted(args.lengths),
            "samples": args.samples,
            "seed": args.seed,
            "max_new_tokens": args.max_new_tokens,
            "templates": [t.name for t in TEMPLATES],
            "options": options,
            "engine": settings,
            "cases_total": len(cases),
            "cases_done": len(records),
            "skipped_for_time": skipped,
            "errors": errors,
            "summary": summarize(records, args.tasks, args.haystacks, sorted(args.lengths)),
            "cases": records,
        }
        write_json(out, payload)
        print(f"wrote {out} ({len(records)}/{len(cases)} cases)", file=sys.stderr)
    return out


def summarize(records, tasks, haystacks, lengths) -> list[dict[str, Any]]:
    """Per (task, haystack, length): cases, kept and correct counts and rates, and costs."""
    rows = []
    for task in tasks:
        for hay in haystacks:
            for length in lengths:
                cell = [
                    r
                    for r in records
                    if r["task"] == task and r["haystack"] == hay and r["length"] == length
                ]
                if not cell:
                    continue
                n = len(cell)
                kept = sum(bool(r["kept"]) for r in cell)
                correct = sum(bool(r["correct"]) for r in cell)
                both = sum(bool(r["kept"] and r["correct"]) for r in cell)

                def avg(name, pool=cell):
                    values = [r[name] for r in pool if r.get(name) is not None]
                    return round(sum(values) / len(values), 3) if values else None

                rows.append(
                    {
                        "task": task,
                        "haystack": hay,
                        "length": length,
                        "n": n,
                        "kept": kept,
                        "correct": correct,
                        "correct_and_kept": both,
                        "kept_rate": round(kept / n, 3),
                        "correct_rate": round(correct / n, 3),
                        "correct_given_kept": round(both / kept, 3) if kept else None,
                        "doc_tokens": avg("doc_tokens"),
                        "cache_tokens": avg("cache_tokens"),
                        "scan_seconds": avg("scan_seconds"),
                        "seconds": avg("seconds"),
                        "prompt_tokens": round(
                            sum(r["usage"]["prompt_tokens"] for r in cell) / n, 1
                        ),
                    }
                )
    return rows


# =========================================================================== table and plot
def table(args: argparse.Namespace) -> str:
    """A Markdown table of the summary: kept and correct per task, haystack and length."""
    data = json.loads(Path(args.input).read_text(encoding="utf-8"))
    lines = [
        "| task | haystack | length | n | kept | correct | correct given kept | cache tokens "
        "| scan s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["summary"]:
        given = "-" if r["correct_given_kept"] is None else f"{r['correct_given_kept']:.0%}"
        lines.append(
            f"| {r['task']} | {r['haystack']} | {r['length']:,} | {r['n']} | "
            f"{r['kept']}/{r['n']} | {r['correct']}/{r['n']} | {given} | "
            f"{r['cache_tokens']:,.0f} | {r['scan_seconds']:.1f} |"
        )
    text = "\n".join(lines)
    print(text)
    return text


def plot(args: argparse.Namespace) -> Path:
    """Heatmap per haystack: tasks x lengths, colour = correct rate, text = correct and kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    source = Path(args.input)
    data = json.loads(source.read_text(encoding="utf-8"))
    tasks, haystacks, lengths = data["tasks"], data["haystacks"], data["lengths"]
    cells = {(r["task"], r["haystack"], r["length"]): r for r in data["summary"]}
    cmap = LinearSegmentedColormap.from_list(
        "paper", ["#F0496E", "#EBB839", "#0CD79F"]
    ).with_extremes(bad="#d9d9d9")
    width = 1.6 + 1.25 * len(lengths)
    fig, axes = plt.subplots(
        1,
        len(haystacks),
        figsize=(max(9.0, width * len(haystacks)), 1.6 + 0.75 * len(tasks)),
        constrained_layout=True,
        squeeze=False,
    )
    for ax, hay in zip(axes[0], haystacks):
        values = np.full((len(tasks), len(lengths)), np.nan)
        for i, task in enumerate(tasks):
            for j, length in enumerate(lengths):
                r = cells.get((task, hay, length))
                if r is None:
                    ax.text(j, i, "not run", ha="center", va="center", fontsize=8)
                    continue
                values[i, j] = r["correct_rate"]
                ax.text(
                    j,
                    i,
                    f"correct {r['correct']}/{r['n']}\nkept {r['kept']}/{r['n']}",
                    ha="center",
                    va="center",
                    fontsize=8,
                )
        ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(lengths)), [_short(n) for n in lengths])
        ax.set_yticks(range(len(tasks)), tasks)
        ax.set_xticks(np.arange(-0.5, len(lengths)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(tasks)), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("document length (tokens)")
        rows = [r for r in data["summary"] if r["haystack"] == hay]
        n = sum(r["n"] for r in rows)
        correct = sum(r["correct"] for r in rows)
        kept = sum(r["kept"] for r in rows)
        ax.set_title(f"{hay}: correct {correct}/{n}, kept {kept}/{n}", fontsize=10)
    machine = data["meta"]["machine"]
    where = machine.get("gpu") or machine.get("cpu")
    model = (data.get("engine") or {}).get("model", "")
    fig.suptitle(
        f"Multi-needle (RULER-style) - {model} - {where}\ncolour: correct rate (green 1, red 0,"
        " grey: not run)\ntext: cases answered correctly, cases whose needles were all kept",
        fontsize=10,
    )
    path = Path(args.png) if args.png else source.with_suffix(".png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)
    return path


def _short(n: int) -> str:
    return f"{n / 1_000_000:g}M" if n >= 1_000_000 else f"{n / 1000:g}k"


# =========================================================================== cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.multineedle", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the grid")
    r.add_argument("--device", default="cpu")
    r.add_argument("--dtype", default=None, help="model dtype (default: the engine's)")
    r.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    r.add_argument("--haystacks", nargs="+", choices=HAYSTACKS, default=list(HAYSTACKS))
    r.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    r.add_argument("--samples", type=int, default=2, help="documents per (task, haystack, length)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    r.add_argument(
        "--options",
        default=None,
        help="engine settings: a JSON file ({'chosen': {...}} or plain) or inline JSON",
    )
    r.add_argument("--deadline", type=float, default=None, help="seconds for the whole grid")
    r.add_argument("--checkpoint", default=None, help="default: bench/data/<out name>.jsonl")
    r.add_argument("--out", default=None, help="result file (a bare name goes to bench/results/)")
    p = sub.add_parser("plot", help="draw the heatmap")
    p.add_argument("--input", default=str(RESULTS_DIR / "multineedle.json"))
    p.add_argument("--png", default=None, help="default: the input with .png")
    t = sub.add_parser("table", help="print the summary as Markdown")
    t.add_argument("--input", default=str(RESULTS_DIR / "multineedle.json"))
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.samples < 1:
            parser.error("--samples must be at least 1")
        run(args)
    elif args.command == "plot":
        plot(args)
    else:
        table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
