"""Markdown tables of the committed results (every number in the README comes from here).

python -m bench.tables            # prints the tables for bench/results/*.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infiniretri import EngineSettings

from .common import RESULTS_DIR


def _load(name: str, folder: Path) -> dict[str, Any] | None:
    path = folder / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _num(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def machine_line(data: dict[str, Any]) -> str:
    m = data["meta"]["machine"]
    where = m.get("gpu") or f"{m.get('cpu')} ({m.get('cpu_count')} cores)"
    return (
        f"{where}; torch {m['torch']}, transformers {m['transformers']}; "
        f"commit {data['meta'].get('git_commit')}; written {data['meta']['written']}"
    )


def engine_line(engine: dict[str, Any] | None) -> str:
    if not engine:
        return ""
    return (
        f"{engine['model']} ({engine['dtype']}, {engine['device']}), chunk_tokens="
        f"{engine['chunk_tokens']}, phrase_tokens={engine['phrase_tokens']}, top_k_tokens="
        f"{engine['top_k_tokens']}, retrieval_layer={engine['retrieval_layer']}"
    )


NAMES = {
    "infiniretri": "InfiniRetri",
    "full_context": "Full context (window-truncated)",
    "reference": "Reference package infini-retri 0.0.3",
    "bm25": "BM25 (sentences)",
    "dense_minilm": "Dense MiniLM-L6 (sentences)",
    "random": "Random sentences",
}


def _method_name(method: str) -> str:
    if method.startswith("infiniretri_c"):
        return f"InfiniRetri, chunk {method.removeprefix('infiniretri_c')}"
    return NAMES.get(method, method)


def niah_tables(data: dict[str, Any]) -> str:
    lengths = data["lengths"]
    rows = data["summary"]
    out = [f"Machine: {machine_line(data)}  ", f"Engine: {engine_line(data.get('engine'))}", ""]
    header = "| method | score | " + " | ".join(_short(n) for n in lengths) + " |"
    out += [header, "|---|---|" + "---|" * len(lengths)]
    for method in data["methods"]:
        for field, label in (("retrieval", "needle kept (%)"), ("answer", "answer correct (%)")):
            cells = []
            for n in lengths:
                row = next((r for r in rows if r["method"] == method and r["length"] == n), None)
                if row is None:
                    cells.append("not run")
                elif row["cells"] < len(data["depths"]):
                    cells.append(f"{_pct(row[field])} ({row['cells']} depths)")
                else:
                    cells.append(_pct(row[field]))
            out.append(f"| {NAMES.get(method, method)} | {label} | " + " | ".join(cells) + " |")
    workers = data.get("workers", 1)
    out += [
        "",
        "Cost per document, mean over the depths run (time and memory: the 50% depth cell run "
        f"alone on the machine where `timed` says alone, else all cells, run beside "
        f"{workers - 1} other worker processes sharing the GPU):",
        "",
    ]
    out += [
        "| method | length | doc tokens | tokens the answer reads | tokens through the model "
        "| seconds | timed | peak GPU MiB | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {NAMES.get(r['method'], r['method'])} | {_short(r['length'])} | "
            f"{_num(r['doc_tokens'])} | {_num(r['read_tokens'])} | {_num(r['tokens_processed'])} | "
            f"{_num(r['seconds'], 1)} | {'alone' if r.get('timing') == 'alone' else 'shared'} | "
            f"{_num(r['peak_gpu_mib'])} | {_num(r['peak_rss_mib'])} |"
        )
    return "\n".join(out)


def hotpot_table(data: dict[str, Any]) -> str:
    out = [
        f"Machine: {machine_line(data)}  ",
        f"Engine: {engine_line(data.get('engine'))}  ",
        f"{data['items_done']} questions (report split), documents of "
        f"{_num(data['doc_tokens_mean'])} tokens on average.",
        "",
        "| method | budget (tokens) | supporting-sentence recall (%) | all supporting found (%) "
        "| answer F1 (%) | tokens the reader reads | tokens through the model (scan) |",
        "|---|---|---|---|---|---|---|",
    ]
    order = {"infiniretri": 0, "bm25": 1, "dense_minilm": 2, "random": 3, "full_context": 4}

    def sort_key(r):
        base = next((v for k, v in order.items() if r["method"].startswith(k)), 9)
        budget = r["budget"]
        b = int(budget) if budget.isdigit() else 10**6
        return (b, base, r["method"])

    for r in sorted(data["summary"], key=sort_key):
        out.append(
            f"| {_method_name(r['method'])} | {r['budget']} | {_pct(r['recall'])} | "
            f"{_pct(r['all_found'])} | {_pct(r['f1'])} | {_num(r['reader_prompt_tokens'])} | "
            f"{_num(r.get('scan_tokens_processed'))} |"
        )
    return "\n".join(out)


def paired_differences(
    items: list[dict[str, Any]], method: str, other: str, budget, metric: str, seed: int = 0
) -> tuple[float, float, float] | None:
    """Mean per-question difference ``method - other`` and its 95% bootstrap interval."""
    import random

    diffs = []
    for item in items:
        runs = {(r["method"], str(r["budget"])): r for r in item["runs"]}
        a, b = runs.get((method, str(budget))), runs.get((other, str(budget)))
        if a is None or b is None:
            continue
        if metric == "recall":
            if a["hits"] is None or b["hits"] is None:
                continue
            diffs.append(sum(a["hits"]) / len(a["hits"]) - sum(b["hits"]) / len(b["hits"]))
        else:
            diffs.append(a[metric] - b[metric])
    if not diffs:
        return None
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(rng.choice(diffs) for _ in range(n)) / n for _ in range(2000))
    return sum(diffs) / n, means[49], means[1949]


def _interval(d: tuple[float, float, float] | None) -> str:
    """A paired difference and its interval, in points (``–`` where there is none)."""
    return "–" if d is None else f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"


def hotpot_paired_table(data: dict[str, Any]) -> str:
    method = f"infiniretri_c{data['engine']['chunk_tokens']}"
    out = [
        f"Per-question differences, {_method_name(method)} minus each baseline (mean and 95% "
        "bootstrap interval, 2,000 resamples), in points:",
        "",
        "| budget | baseline | recall difference | answer F1 difference |",
        "|---|---|---|---|",
    ]
    for budget in data["budgets"]:
        for other in ("bm25", "dense_minilm", "random"):
            cells = []
            for metric in ("recall", "f1"):
                d = paired_differences(data["items"], method, other, budget, metric)
                cells.append(_interval(d))
            out.append(f"| {budget} | {NAMES[other]} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


_W = EngineSettings().lexical_weight
_F = EngineSettings().lexical_feedback
ABLATION_ROWS = (
    ("paper", "layer sum, attention only (the paper)"),
    ("heads", "retrieval heads, attention only"),
    ("heads_baseline", "retrieval heads + content-free baseline (ICR)"),
    ("heads_position", "retrieval heads + position and sink correction"),
    ("w1", "retrieval heads + fusion at weight 1.0, no feedback (defaults before 1.5)"),
    ("w1_5", f"retrieval heads + fusion at 1.5 + feedback {_F:g} (previous defaults)"),
    ("no_feedback", f"retrieval heads + fusion at {_W:g}, no feedback"),
    ("fusion", f"layer sum + fusion at {_W:g} + feedback"),
    ("", f"retrieval heads + fusion at {_W:g} + feedback {_F:g} (defaults)"),
    ("baseline", "defaults + content-free baseline (ICR)"),
    ("position", "defaults + position and sink correction"),
    ("baseline_position", "defaults + baseline + position"),
    ("rows_end", "defaults, query rows: the template end"),
    ("rows_all", "defaults, query rows: question + template end"),
)
"""Rows of the ablation tables: (variant of ``bench.hotpotqa.ABLATION``, label); the labels'
numbers are the shipped settings'."""


def hotpot_ablation_table(data: dict[str, Any]) -> str:
    """Each scoring component of the defaults on and off: recall, and the paired difference
    against BM25, at every budget."""
    chunk = data["chunk_sizes"][0]
    budgets = [b for b in data["budgets"]]
    head = " | ".join(f"recall @{b} | vs BM25 @{b}" for b in budgets)
    out = [
        f"Ablation on the {data.get('split', 'report')} split ({data['items_done']} questions, "
        f"chunk {chunk}): "
        "supporting-sentence recall (%) and the per-question difference to BM25 (points, 95% "
        "bootstrap interval).",
        "",
        f"| scorer | {head} |",
        "|---|" + "---|---|" * len(budgets),
    ]
    rows = {(r["method"], r["budget"]): r for r in data["summary"]}
    for variant, label in ABLATION_ROWS:
        method = f"infiniretri_c{chunk}" + (f"_{variant}" if variant else "")
        cells = []
        for budget in budgets:
            row = rows.get((method, str(budget)))
            d = paired_differences(data["items"], method, "bm25", budget, "recall")
            cells.append(_pct(row["recall"]) if row else "–")
            cells.append(_interval(d))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    for other in ("bm25", "dense_minilm"):
        cells = []
        for budget in budgets:
            row = rows.get((other, str(budget)))
            cells += [_pct(row["recall"]) if row else "–", ""]
        out.append(f"| {NAMES[other]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


ANSWER_LABELS = {
    "plain": "whole cache, free decoding (the paper)",
    "q1": "quote the best sentence",
    "q1c3": "quote the best sentence, copy bonus 3",
    "q4m1c3": "quote up to 4 (margin 1.0), copy 3",
    "r_q4m1c3": "re-score, quote up to 4 (margin 1.0), copy 3",
    "r_s8_q4m05c3": (
        "re-score, best 8 shown, quote up to 4 (margin 0.5), copy 3 (the defaults, before "
        "value gathering and the one-sentence stop)"
    ),
}


def multineedle_answer_table(data: dict[str, Any]) -> str:
    """Answer correct among the cases whose needles were kept, per task, for each answer-step
    configuration, and what each configuration costs."""
    from bench.multineedle_data import TASKS

    out = [
        "Answer correct / needle kept, per task (8k, 32k and 128k tokens, essays and Wikipedia "
        "haystacks), and the answer step's cost per question (means; seconds include six runs "
        "sharing the GPU).",
        "",
        "| answer step | " + " | ".join(TASKS) + " | all | answer prompt tokens | re-read "
        "tokens | answer seconds |",
        "|---|" + "---|" * (len(TASKS) + 4),
    ]
    for name, config in data["configs"].items():
        cases = config["cases"]
        cells, total = [], [0, 0]
        for task in TASKS:
            kept = [c for c in cases if c["task"] == task and c["kept"]]
            ok = sum(c["correct"] for c in kept)
            total[0] += ok
            total[1] += len(kept)
            cells.append(f"{ok}/{len(kept)}")
        rescore = bool(config["options"].get("answer_rescore"))
        prompt = sum(c["usage"]["answer_prompt_tokens"] for c in cases) / len(cases)
        reread = sum(c["cache_tokens"] for c in cases) / len(cases) if rescore else 0
        seconds = sum(c["seconds"] - c["scan_seconds"] for c in cases) / len(cases)
        out.append(
            f"| {ANSWER_LABELS.get(name, name)} | " + " | ".join(cells) + f" | "
            f"{100 * total[0] / max(1, total[1]):.0f}% of {total[1]} | {prompt:,.0f} | "
            f"{reread:,.0f} | {seconds:.2f} |"
        )
    return "\n".join(out)


def tuning_table(data: dict[str, Any]) -> str:
    out = [f"Machine: {machine_line(data)}  ", f"Dev split: {data['items']} questions.", ""]
    single = data["single_pass"]
    best = {}
    for r in single:
        layer = r["retrieval_layer"]
        if layer not in best or r["score"] > best[layer]["score"]:
            best[layer] = r
    mrr = data.get("synthetic_layer_mrr", {})
    out += [
        "| layer | best phrase_tokens | recall@128 (%) | recall@256 (%) | synthetic needle MRR |",
        "|---|---|---|---|---|",
    ]
    for layer in sorted(best):
        r = best[layer]
        out.append(
            f"| {layer} | {r['phrase_tokens']} | {_pct(r['recall@128'])} | "
            f"{_pct(r['recall@256'])} | {mrr.get(str(layer), '–')} |"
        )
    layer = data["chosen"]["retrieval_layer"]
    out += ["", f"phrase_tokens at layer {layer}:", ""]
    out += ["| phrase_tokens | recall@128 (%) | recall@256 (%) |", "|---|---|---|"]
    for r in single:
        if r["retrieval_layer"] == layer:
            out.append(
                f"| {r['phrase_tokens']} | {_pct(r['recall@128'])} | {_pct(r['recall@256'])} |"
            )
    out += [
        "",
        "| chunk_tokens | top_k_tokens | cache recall (%) | all found (%) | cache tokens | "
        "answer F1 (%) | recall@128 (%) | recall@256 (%) | seconds / question |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["sliding"]:
        out.append(
            f"| {r['chunk_tokens']} | {r['top_k_tokens']} | {_pct(r['recall'])} | "
            f"{_pct(r['all_found'])} | {_num(r['cache_tokens'])} | {_pct(r['f1'])} | "
            f"{_pct(r['recall@128'])} | {_pct(r['recall@256'])} | {r['seconds_per_item']:.3f} |"
        )
    out += ["", f"Chosen: `{json.dumps(data['chosen'])}`"]
    return "\n".join(out)


def scorer_ablation_table(data: dict[str, Any]) -> str:
    """``bench.scorer_ablation``: every scorer on one capture per question; recall and the
    paired differences to BM25 and MiniLM at every budget."""
    budgets = data["budgets"]
    out = [
        f"Scorers on one capture per question, {data['split']} split ({data['items_done']} "
        "questions): supporting-sentence recall (%) and the per-question difference to BM25 "
        "and to MiniLM (points, 95% bootstrap interval).",
        "",
        "| scorer | " + " | ".join(f"@{b} | vs BM25 | vs MiniLM" for b in budgets) + " |",
        "|---|" + "---|---|---|" * len(budgets),
    ]
    rows = {(r["method"], r["budget"]): r for r in data["summary"]}
    labels = [(v or "defaults", label) for v, label in ABLATION_ROWS]
    labels += [(b, NAMES[b]) for b in ("bm25", "dense_minilm")]
    for method, label in labels:
        cells = []
        for budget in budgets:
            row = rows.get((method, budget))
            if row is None:
                cells += ["–", "", ""]
                continue
            cells += [
                _pct(row["recall"]),
                _interval(row.get("vs_bm25")) if method != "bm25" else "",
                _interval(row.get("vs_dense_minilm")) if method != "dense_minilm" else "",
            ]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tables")
    parser.add_argument("--results", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    folder = Path(args.results)
    for name, render in (
        ("niah.json", niah_tables),
        ("hotpotqa.json", hotpot_table),
        ("hotpotqa.json", hotpot_paired_table),
        ("hotpotqa.json", hotpot_ablation_table),
        ("scorer_ablation_dev.json", scorer_ablation_table),
        ("scorer_ablation_report.json", scorer_ablation_table),
        ("multineedle_answer_configs.json", multineedle_answer_table),
        ("hotpotqa_tuning.json", tuning_table),
    ):
        data = _load(name, folder)
        if data is None:
            print(f"<!-- {name}: not found -->\n")
            continue
        print(f"<!-- from bench/results/{name} -->")
        print(render(data))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
