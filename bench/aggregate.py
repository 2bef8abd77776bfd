"""Questions that need the whole document (issue 17): "list every X that Y" over long haystacks.

    python -m bench.aggregate run --lengths 8000 --samples 1 --out aggregate_cpu.json
    python -m bench.aggregate run --device cuda --lengths 32000 128000 --samples 4 \\
        --out aggregate_gpu.json --deadline 3000
    python -m bench.aggregate table --input bench/results/aggregate_cpu.json

Documents and scores: ``bench/aggregate_data.py`` (generated in code, seeded; N gold items and N/2
distractors, one sentence each, spread through the document). Four methods answer each
document, all through the public API and the same chat template:

- ``retrieval``: ``answer_mode="retrieval"`` (the engine's defaults);
- ``summary``: ``answer_mode="summary"`` (notes on what the sentence cache left out);
- ``auto``: ``answer_mode="auto"`` and ``top_k_tokens="auto"`` (the engine decides);
- ``full_context``: the document cut to the model's window next to the question and answer
  (its middle dropped, as LongBench does: ``bench.reader.full_context_prompt``), answered
  greedily by the model with the engine's prompt layout.

``--options`` (JSON file or inline JSON) sets the base engine every method starts from.
Per answer: item recall, precision and F1; per gold item whether its sentence was in the final
sentence cache (for ``full_context``: in the window), among the cached sentences the answer
prompt showed (``Answer.shown``), in a note's source range (the notes'
stretches tile the document read, so this bounds what the notes drew on from above), or named
by a note, so *kept* and *answered* can be told apart; cost in tokens (``Usage``) and seconds; for
``auto``, the mode it chose. A *needle control* (``bench.haystack``'s San Francisco needle in the
same haystacks, methods ``--control-methods``, default ``retrieval auto``) shows what auto costs
on a question one sentence answers. Finished answers go to a checkpoint (``bench/data/<out
name>.jsonl``, git-ignored) so a killed run resumes. The result file keeps the items, questions,
answers and notes, never the haystack text.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import random
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .aggregate_data import (
    HAYSTACKS,
    SCENARIO_NAMES,
    AggregateCase,
    NeedleCase,
    load_source,
    make_case,
    make_needle_case,
    name_in,
)
from .common import BENCH_DIR, RESULTS_DIR, Deadline, append_jsonl, read_jsonl, write_json
from .engine_setup import engine_settings, load_engine, parse_options

DATA_DIR = BENCH_DIR / "data"
LENGTHS = (32_000, 128_000)
METHODS = ("retrieval", "summary", "auto", "full_context")
CONTROL_METHODS = ("retrieval", "auto")
MODE_OPTIONS: dict[str, dict[str, Any]] = {
    "retrieval": {"answer_mode": "retrieval"},
    "summary": {"answer_mode": "summary"},
    "auto": {"answer_mode": "auto", "top_k_tokens": "auto"},
}
"""Engine settings of each engine method, over the base settings of ``--options``."""
NEEDLE_NEW_TOKENS = 32
ANSWER_CHARS = 800
NOTE_CHARS = 300
RESAMPLES = 2000


def list_tokens(n_gold: int) -> int:
    """Answer tokens allowed for a list of ``n_gold`` names (about six a name, and room)."""
    return 6 * n_gold + 32


# =========================================================================== methods
@dataclass
class Outcome:
    """One method's answer to one question, and what it read."""

    answer: str
    seconds: float
    usage: dict[str, int]
    retrieval: Any = None
    """The engine's ``Retrieval`` (``None`` for ``full_context``)."""
    window: str = ""
    """``full_context``: the text of the window the model read."""
    shown: list[Any] = field(default_factory=list)
    """The cached sentences the answer prompt held (``Answer.shown``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def notes(self) -> list[Any]:
        return list(getattr(self.retrieval, "notes", None) or [])

    def costs(self) -> dict[str, Any]:
        """The cost fields of a result record."""
        out: dict[str, Any] = {"usage": self.usage, "seconds": round(self.seconds, 3)}
        r = self.retrieval
        if r is not None:
            stats = r.stats
            out.update(
                mode=getattr(r, "mode", "retrieval"),
                notes=len(self.notes),
                doc_tokens=stats.tokens_read,
                cache_sentences=len(r.sentences),
                cache_tokens=stats.cache_tokens,
                scan_seconds=round(stats.seconds, 3),
                summary_seconds=round(getattr(stats, "summary_seconds", 0.0) or 0.0, 3),
                summary_tokens=int(getattr(stats, "summary_tokens", 0) or 0),
            )
        out.update(self.extra)
        return out


def full_context_answer(engine, text: str, question: str, max_new_tokens: int) -> Outcome:
    """The window-truncated full context answered greedily by ``engine``'s model, in the
    engine's prompt layout (``bench.reader``, the NIAH bench's ``full_context``)."""
    from .reader import full_context_prompt, read_batch

    started = time.perf_counter()
    prompt, kept, truncated = full_context_prompt(engine, text, question, max_new_tokens)
    answer = read_batch(engine, [prompt], max_new_tokens, 1)[0]
    seconds = time.perf_counter() - started
    written = len(engine.tokenizer(answer, add_special_tokens=False)["input_ids"])
    usage = {
        "prompt_tokens": len(prompt),
        "completion_tokens": written,
        "total_tokens": len(prompt) + written,
        "scan_tokens": 0,
        "summary_tokens": 0,
        "answer_prompt_tokens": len(prompt),
    }
    extra = {
        "mode": "full_context",
        "doc_tokens": engine.count_tokens(text),
        "window_tokens": kept,
        "truncated": truncated,
    }
    window = engine.tokenizer.decode(prompt, skip_special_tokens=True)
    return Outcome(answer, seconds, usage, window=window, extra=extra)


class MethodRunner:
    """The engines of the methods, sharing one model: ``run(method, text, question, n)``."""

    def __init__(self, base, methods: Sequence[str]) -> None:
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; methods are {METHODS}")
        self.base = base
        self.engines = {
            m: base.with_options(**MODE_OPTIONS[m]) for m in methods if m != "full_context"
        }

    def run(self, method: str, text: str, question: str, max_new_tokens: int) -> Outcome:
        if method == "full_context":
            return full_context_answer(self.base, text, question, max_new_tokens)
        engine = self.engines[method]
        started = time.perf_counter()
        retrieval = engine.retrieve(text, question)
        answer = engine.answer_from(retrieval, max_new_tokens=max_new_tokens)
        seconds = time.perf_counter() - started
        # Which cached sentences the reader saw (the itemised answer: those it read one by one).
        return Outcome(answer.text, seconds, answer.usage.as_dict(), retrieval, shown=answer.shown)


def error_record(record: dict[str, Any], err: Exception) -> dict[str, Any]:
    record["error"] = f"{type(err).__name__}: {err}"[:500]
    record["traceback"] = traceback.format_exc()[-1500:]
    return record


# =========================================================================== one case
def run_aggregate(runner: MethodRunner, case: AggregateCase, method: str) -> dict[str, Any]:
    """One method on one aggregate document: scores, what was kept, costs."""
    record = {"kind": "aggregate", "method": method, **case.describe()}
    n_tokens = list_tokens(len(case.gold))
    record["max_new_tokens"] = n_tokens
    try:
        out = runner.run(method, case.text, case.question, n_tokens)
    except Exception as err:  # recorded, the grid goes on
        return error_record(record, err)
    sentences = list(out.retrieval.sentences) if out.retrieval is not None else []
    notes = out.notes
    note_text = " ".join(n.text for n in notes)
    for item, info in zip(case.items, record["items"]):
        if out.retrieval is None:
            info["in_cache"] = info["shown"] = name_in(out.window, item.name)
        else:
            info["in_cache"] = item.in_sentences(sentences)
            info["shown"] = item.in_sentences(out.shown)
        info["in_note_range"] = item.in_note_range(notes)
        info["in_note_text"] = name_in(note_text, item.name)
        info["named"] = name_in(out.answer, item.name)
    gold = [i for i in record["items"] if i["gold"]]
    score = case.score(out.answer)
    record.update(
        recall=score["recall"],
        precision=score["precision"],
        f1=score["f1"],
        gold_named=len(score["gold_named"]),
        distractors_named=len(score["distractors_named"]),
        kept_cache=_share(gold, lambda i: i["in_cache"]),
        shown=_share(gold, lambda i: i["shown"]),
        kept_notes=_share(gold, lambda i: i["in_note_range"] and not i["in_cache"]),
        kept_any=_share(gold, lambda i: i["in_cache"] or i["in_note_range"]),
        noted=_share(gold, lambda i: i["in_note_text"]),
        answer=out.answer[:ANSWER_CHARS],
        note_texts=[n.text[:NOTE_CHARS] for n in notes],
        **out.costs(),
    )
    return record


def run_needle(runner: MethodRunner, case: NeedleCase, method: str) -> dict[str, Any]:
    """One method on the needle control: correct, kept, the mode chosen, costs."""
    from .haystack import answer_hit, retrieval_hit

    record = {"kind": "needle", "method": method, **case.describe()}
    try:
        out = runner.run(method, case.text, case.question, NEEDLE_NEW_TOKENS)
    except Exception as err:
        return error_record(record, err)
    seen = out.window if out.retrieval is None else out.retrieval.context
    record.update(
        correct=answer_hit(out.answer),
        kept=retrieval_hit(seen),
        answer=out.answer[:ANSWER_CHARS],
        **out.costs(),
    )
    return record


def _share(items: list[dict[str, Any]], test) -> float:
    return round(sum(bool(test(i)) for i in items) / len(items), 4) if items else 0.0


# =========================================================================== statistics
def bootstrap_ci(
    values: Sequence[float], seed: int = 0, resamples: int = RESAMPLES
) -> tuple[float, float, float] | None:
    """Mean of ``values`` and its 95% percentile bootstrap interval (``None`` when empty)."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(values) for _ in range(n)) / n for _ in range(resamples))
    lo, hi = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    return mean, lo, hi


def mean_ci(values) -> list[float] | None:
    d = bootstrap_ci(list(values))
    return None if d is None else [round(x, 4) for x in d]


def _avg(records: list[dict[str, Any]], get) -> float | None:
    values = [get(r) for r in records]
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 3) if values else None


def cost_fields(cell: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "prompt_tokens": _avg(cell, lambda r: r["usage"].get("prompt_tokens")),
        "completion_tokens": _avg(cell, lambda r: r["usage"].get("completion_tokens")),
        "total_tokens": _avg(cell, lambda r: r["usage"].get("total_tokens")),
        "summary_tokens": _avg(
            cell, lambda r: r["usage"].get("summary_tokens", r.get("summary_tokens"))
        ),
        "seconds": _avg(cell, lambda r: r.get("seconds")),
        "scan_seconds": _avg(cell, lambda r: r.get("scan_seconds")),
        "summary_seconds": _avg(cell, lambda r: r.get("summary_seconds")),
        "summary_rate": _avg(cell, lambda r: float(r.get("mode") == "summary")),
    }


def _groups(records, methods, haystacks, lengths):
    """(method, haystack or 'all', length, records) for every cell with records."""
    for length in lengths:
        for method in methods:
            for hay in [*haystacks, "all"] if len(haystacks) > 1 else haystacks:
                cell = [
                    r
                    for r in records
                    if r["method"] == method
                    and r["length"] == length
                    and (hay == "all" or r["haystack"] == hay)
                ]
                if cell:
                    yield method, hay, length, cell


def summarize(records, methods, haystacks, lengths) -> list[dict[str, Any]]:
    """Aggregate rows per (method, haystack, length), and both haystacks pooled ('all')."""
    rows = []
    for method, hay, length, cell in _groups(records, methods, haystacks, lengths):
        precision = [r["precision"] for r in cell if r["precision"] is not None]
        rows.append(
            {
                "method": method,
                "haystack": hay,
                "length": length,
                "n": len(cell),
                "n_gold": _avg(cell, lambda r: r["n_gold"]),
                "recall": mean_ci(r["recall"] for r in cell),
                "precision": mean_ci(precision),
                "precision_n": len(precision),
                "f1": mean_ci(r["f1"] for r in cell),
                "kept_cache": _avg(cell, lambda r: r["kept_cache"]),
                "shown": _avg(cell, lambda r: r.get("shown")),
                "kept_any": _avg(cell, lambda r: r["kept_any"]),
                "noted": _avg(cell, lambda r: r["noted"]),
                "distractors_named": _avg(cell, lambda r: r["distractors_named"]),
                **cost_fields(cell),
            }
        )
    return rows


def summarize_control(records, methods, haystacks, lengths) -> list[dict[str, Any]]:
    """Needle-control rows per (method, haystack, length) and pooled."""
    rows = []
    for method, hay, length, cell in _groups(records, methods, haystacks, lengths):
        rows.append(
            {
                "method": method,
                "haystack": hay,
                "length": length,
                "n": len(cell),
                "correct": sum(bool(r["correct"]) for r in cell),
                "kept": sum(bool(r["kept"]) for r in cell),
                **cost_fields(cell),
            }
        )
    return rows


# =========================================================================== the grid
def plan(haystacks, lengths, samples: int, methods, control_methods) -> list[tuple]:
    """``(kind, haystack, length, sample, method)`` in run order: shortest length first, each
    document through every method before the next."""
    out = []
    for length in sorted(lengths):
        for sample in range(samples):
            for hay in haystacks:
                out += [("aggregate", hay, length, sample, m) for m in methods]
                out += [("needle", hay, length, sample, m) for m in control_methods]
    return out


def parse_shard(value: str | None) -> tuple[int, int]:
    """``"K/N"`` (0 <= K < N) as ``(K, N)``; ``None`` is ``(0, 1)``, everything."""
    if not value:
        return 0, 1
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise SystemExit(f"--shard must be K/N, got {value!r}") from None
    if not 0 <= k < n:
        raise SystemExit(f"--shard must be K/N with 0 <= K < N, got {value!r}")
    return k, n


def in_shard(index: int, shard: tuple[int, int]) -> bool:
    return index % shard[1] == shard[0]


def record_key(kind: str, hay: str, length: int, sample: int, method: str) -> str:
    return f"{kind}/{hay}/{length}/{sample}/{method}"


def _key_of(record: dict[str, Any]) -> str:
    return record_key(
        record["kind"], record["haystack"], record["length"], record["sample"], record["method"]
    )


def result_path(value: str | None, default: str) -> Path:
    out = Path(value) if value else RESULTS_DIR / default
    if not out.is_absolute() and out.parent == Path("."):
        out = RESULTS_DIR / out
    return out


def run(args: argparse.Namespace) -> Path:
    """Run the grid, resuming from the checkpoint; write the result file."""
    deadline = Deadline(args.deadline)
    options = parse_options(args.options)
    out = result_path(args.out, "aggregate.json")
    checkpoint = Path(args.checkpoint or DATA_DIR / f"{out.stem}.jsonl")
    setup = {
        "options": options,
        "device": args.device,
        "dtype": args.dtype,
        "seed": args.seed,
        "scenario": args.scenario,
    }
    todo_all = plan(args.haystacks, args.lengths, args.samples, args.methods, args.control_methods)
    shard = parse_shard(args.shard)
    documents = list(dict.fromkeys((t[1], t[2], t[3]) for t in todo_all))
    mine = {d for i, d in enumerate(documents) if in_shard(i, shard)}
    todo_all = [t for t in todo_all if (t[1], t[2], t[3]) in mine]
    done = {
        _key_of(r): r
        for r in read_jsonl(checkpoint)
        if r.get("setup") == setup and "error" not in r
    }
    todo = [t for t in todo_all if record_key(*t) not in done]
    print(f"aggregate: {len(todo_all) - len(todo)} done, {len(todo)} to run", file=sys.stderr)

    from transformers import AutoTokenizer

    from infiniretri.loading import embedded_model_dir

    base = load_engine(args.device, args.dtype, **options)
    settings = engine_settings(base)
    runner = MethodRunner(base, sorted({*args.methods, *args.control_methods}, key=METHODS.index))
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())  # lengths are counted in it
    sources: dict[str, Any] = {}
    cases: dict[tuple, Any] = {}
    rate: dict[str, float] = {}  # seconds per requested token, per method: the slowest so far
    skipped: list[str] = []
    errors: list[dict[str, str]] = []
    started = time.perf_counter()
    try:
        for kind, hay, length, sample, method in todo:
            key = record_key(kind, hay, length, sample, method)
            if rate.get(method, 0.0) * length > deadline.left() or deadline.expired(5):
                skipped.append(key)
                continue
            if hay not in sources:
                sources[hay] = load_source(hay, tokenizer)
            ck = (kind, hay, length, sample)
            if ck not in cases:
                cases.clear()  # one document at a time
                if kind == "aggregate":
                    cases[ck] = make_case(sources[hay], length, sample, args.seed, args.scenario)
                else:
                    cases[ck] = make_needle_case(sources[hay], length, sample, args.seed)
            case = cases[ck]
            if kind == "aggregate":
                record = run_aggregate(runner, case, method)
            else:
                record = run_needle(runner, case, method)
            record["setup"] = setup
            append_jsonl(checkpoint, record)
            if "error" in record:
                errors.append({"key": key, "error": record["error"]})
            else:
                done[key] = record
                rate[method] = max(rate.get(method, 0.0), record["seconds"] / length)
            _progress(started, key, record)
    finally:
        records = [done[record_key(*t)] for t in todo_all if record_key(*t) in done]
        for r in records:
            r.pop("setup", None)
        payload = build_payload(
            records,
            methods=args.methods,
            control_methods=args.control_methods,
            haystacks=args.haystacks,
            lengths=args.lengths,
            samples=args.samples,
            seed=args.seed,
            scenario=args.scenario,
            options=options,
            engine=settings,
            records_total=len(todo_all),
            skipped=skipped,
            errors=errors,
            shard=args.shard,
        )
        write_json(out, payload)
        print(f"wrote {out} ({len(records)}/{len(todo_all)} answers)", file=sys.stderr)
    return out


def build_payload(
    records: list[dict[str, Any]],
    *,
    methods: Sequence[str],
    control_methods: Sequence[str],
    haystacks: Sequence[str],
    lengths: Sequence[int],
    records_total: int,
    skipped: list[str],
    errors: list[dict[str, str]],
    **fields: Any,
) -> dict[str, Any]:
    """The result file's body: the settings, summaries and records (``fields``: samples, seed,
    scenario, options, engine, shard ...)."""
    lengths = sorted(lengths)
    aggregate = [r for r in records if r["kind"] == "aggregate"]
    control = [r for r in records if r["kind"] == "needle"]
    return {
        "bench": "aggregate",
        "description": "aggregate questions ('list every X that Y', N gold items and N/2 "
        "distractors, one sentence each) through four methods; recall: share of gold names "
        "the answer names; precision: gold named over gold and distractors named; kept: the "
        "item's sentence in the final cache (full_context: in the window) or in a note's "
        "source range. Needle control: the San Francisco needle in the same haystacks.",
        "methods": list(methods),
        "control_methods": list(control_methods),
        "mode_options": {m: MODE_OPTIONS[m] for m in methods if m in MODE_OPTIONS},
        "haystacks": list(haystacks),
        "lengths": lengths,
        **fields,
        "records_total": records_total,
        "records_done": len(records),
        "skipped_for_time": skipped,
        "errors": errors,
        "summary": summarize(aggregate, methods, haystacks, lengths),
        "control": summarize_control(control, control_methods, haystacks, lengths),
        "cases": aggregate,
        "control_cases": control,
    }


def _union(parts: list[dict[str, Any]], name: str) -> list[Any]:
    return list(dict.fromkeys(x for p in parts for x in p[name]))


def merge(args: argparse.Namespace) -> Path:
    """One result file from the result files of several shards (or runs) of one grid."""
    parts = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.input]
    if any(p.get("bench") != "aggregate" for p in parts):
        raise SystemExit("merge: every input must be a bench.aggregate result file")
    records: dict[str, dict[str, Any]] = {}
    for p in parts:
        for r in p["cases"] + p["control_cases"]:
            records.setdefault(_key_of(r), r)
    first = parts[0]
    lengths = sorted({n for p in parts for n in p["lengths"]})
    payload = build_payload(
        list(records.values()),
        methods=_union(parts, "methods"),
        control_methods=_union(parts, "control_methods"),
        haystacks=_union(parts, "haystacks"),
        lengths=lengths,
        records_total=sum(p["records_total"] for p in parts),
        skipped=[k for p in parts for k in p["skipped_for_time"]],
        errors=[e for p in parts for e in p["errors"]],
        samples=max(p["samples"] for p in parts),
        seed=first["seed"],
        scenario=first["scenario"],
        options=first["options"],
        engine=first["engine"],
        merged_from=[{"file": str(f), "meta": p["meta"]} for f, p in zip(args.input, parts)],
    )
    out = result_path(args.out, "aggregate.json")
    write_json(out, payload)
    print(f"wrote {out} ({payload['records_done']} answers)", file=sys.stderr)
    return out


def _progress(started: float, key: str, record: dict[str, Any]) -> None:
    if "error" in record:
        detail = record["error"]
    elif record["kind"] == "aggregate":
        detail = f"recall={record['recall']} f1={record['f1']} kept={record['kept_any']}"
    else:
        detail = f"correct={record['correct']} kept={record['kept']}"
    print(
        f"[{time.perf_counter() - started:6.0f}s] {key:<36} mode={record.get('mode')} {detail} "
        f"t={record.get('seconds')} {record.get('answer', '')[:70]!r}",
        file=sys.stderr,
    )


# =========================================================================== tables
def fmt_pct_ci(ci: list[float] | None) -> str:
    if ci is None:
        return "–"
    mean, lo, hi = ci
    if lo == hi:
        return f"{100 * mean:.0f}"
    return f"{100 * mean:.0f} [{100 * lo:.0f}, {100 * hi:.0f}]"


def fmt_num(value, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def fmt_rate(value) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _short(n: int) -> str:
    return f"{n / 1_000_000:g}M" if n >= 1_000_000 else f"{n / 1000:g}k"


def aggregate_table(data: dict[str, Any]) -> str:
    """Markdown: the aggregate rows, then the needle control."""
    m = data["meta"]["machine"]
    where = m.get("gpu") or f"{m.get('cpu')} ({m.get('cpu_count')} cores)"
    out = [
        f"Aggregate questions ({where}, commit {data['meta'].get('git_commit')}): item recall, "
        "precision and F1 in % (mean and 95% bootstrap interval over documents). Gold items "
        "whose sentence was in the final cache (full context: in the window), among the cached "
        "sentences the answer prompt showed (the best 8 by default; summary: all), inside a note's "
        "source range (the notes' stretches tile the document, so an upper bound on what the "
        "notes drew on), and named by a note. Tokens: every token the model read (scan, notes, "
        "answer prompt).",
        "",
        "| method | length | haystack | docs | gold | recall | precision | F1 | in cache | "
        "shown to the reader | in cache or a note's range | named by a note | distractors named "
        "| tokens read | summary tokens | seconds | chose summary |",
        "|---|---:|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["summary"]:
        out.append(
            f"| {r['method']} | {_short(r['length'])} | {r['haystack']} | {r['n']} | "
            f"{fmt_num(r['n_gold'])} | {fmt_pct_ci(r['recall'])} | {fmt_pct_ci(r['precision'])} | "
            f"{fmt_pct_ci(r['f1'])} | {fmt_rate(r['kept_cache'])} | {fmt_rate(r.get('shown'))} | "
            f"{fmt_rate(r['kept_any'])} | "
            f"{fmt_rate(r['noted'])} | {fmt_num(r['distractors_named'], 1)} | "
            f"{fmt_num(r['prompt_tokens'])} | {fmt_num(r['summary_tokens'])} | "
            f"{fmt_num(r['seconds'], 1)} | {fmt_rate(r['summary_rate'])} |"
        )
    if data.get("control"):
        out += [
            "",
            "Needle control (one sentence answers the question; the same haystacks):",
            "",
            "| method | length | haystack | docs | correct | needle kept | chose summary | "
            "tokens read | summary tokens | seconds |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in data["control"]:
            out.append(
                f"| {r['method']} | {_short(r['length'])} | {r['haystack']} | {r['n']} | "
                f"{r['correct']}/{r['n']} | {r['kept']}/{r['n']} | {fmt_rate(r['summary_rate'])} | "
                f"{fmt_num(r['prompt_tokens'])} | {fmt_num(r['summary_tokens'])} | "
                f"{fmt_num(r['seconds'], 1)} |"
            )
    if data.get("errors"):
        out += ["", f"{len(data['errors'])} answers failed (see `errors`)."]
    return "\n".join(out)


def table(args: argparse.Namespace) -> str:
    """Print the Markdown tables of every ``--input`` (aggregate or AA-LCR global results)."""
    texts = []
    for path in args.input:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("bench") == "aalcr_global":
            from .aalcr_global import render_table

            texts.append(render_table(data))
        else:
            texts.append(aggregate_table(data))
    text = "\n\n".join(texts)
    print(text)
    return text


# =========================================================================== cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.aggregate", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the grid")
    r.add_argument("--device", default="cpu")
    r.add_argument("--dtype", default=None, help="model dtype (default: the engine's)")
    r.add_argument("--haystacks", nargs="+", choices=HAYSTACKS, default=list(HAYSTACKS))
    r.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    r.add_argument("--samples", type=int, default=2, help="documents per (haystack, length)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--scenario", choices=SCENARIO_NAMES, default=None, help="default: by sample")
    r.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    r.add_argument(
        "--control-methods",
        nargs="*",
        choices=METHODS,
        default=list(CONTROL_METHODS),
        help="methods of the needle control (none: no control)",
    )
    r.add_argument(
        "--options",
        default=None,
        help="base engine settings: a JSON file ({'chosen': {...}} or plain) or inline JSON",
    )
    r.add_argument("--deadline", type=float, default=None, help="seconds for the whole grid")
    r.add_argument("--checkpoint", default=None, help="default: bench/data/<out name>.jsonl")
    r.add_argument("--out", default=None, help="result file (a bare name goes to bench/results/)")
    r.add_argument(
        "--shard",
        default=None,
        help="K/N: only every N-th document from the K-th (0-based), for N processes side by side "
        "(then `merge` their result files)",
    )
    g = sub.add_parser("merge", help="merge the result files of several shards into one")
    g.add_argument("--input", nargs="+", required=True)
    g.add_argument("--out", required=True, help="result file (a bare name goes to bench/results/)")
    t = sub.add_parser("table", help="print the results as Markdown")
    t.add_argument("--input", nargs="+", default=[str(RESULTS_DIR / "aggregate_cpu.json")])
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.samples < 1:
            parser.error("--samples must be at least 1")
        run(args)
    elif args.command == "merge":
        merge(args)
    else:
        table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
