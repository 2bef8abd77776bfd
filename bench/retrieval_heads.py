"""Pick the embedded model's retrieval heads on the HotpotQA dev split (never the report split).

    python -m bench.hotpotqa prepare                      # CPU: the splits and documents
    python -m bench.retrieval_heads --device cuda         # writes results/retrieval_heads.json
    python -m bench.retrieval_heads --device cuda --view-tokens 6000   # heads for long views

Each dev document is read in one forward with every head of every layer captured on its own
(``engine.unit_scores`` with a readout of all ``(layer, head)`` pairs). Each head alone ranks the
sentences with the paper's window scorer; its supporting-sentence recall at the token budgets of
the HotpotQA benchmark (best-first, ``fill_budget``) is its score. The shipped head set is the
``HEAD_COUNT`` best heads from a third of the depth up to the model's retrieval layer: the scan
stops where it stopped before, and the lowest layers, whose attention is mostly local and
positional, are left out (``infiniretri.calibration.SHIPPED_HEADS``).

With ``--view-tokens N`` each dev document is joined with other dev documents (a seeded sample,
in a shuffled order) until the view holds at least ``N`` tokens, so that heads are chosen at the
view length of a long chunk (``joined_views``); it writes ``retrieval_heads_view<N>.json``.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from .baselines import fill_budget
from .common import RESULTS_DIR, write_json
from .engine_setup import engine_settings, load_engine
from .hotpot_data import HotpotDoc, found, recall_stats
from .hotpotqa import BUDGETS, load_prepared, mean


def head_recalls(engine, docs: list[HotpotDoc]) -> dict[tuple[int, int], list[float]]:
    """Mean recall at each budget for every head, each head scoring alone."""
    from infiniretri.readout import Readout
    from infiniretri.sources import open_documents

    pairs = [
        (layer, head) for layer in range(engine.num_layers) for head in range(engine.context.heads)
    ]
    readout = Readout.heads(pairs)
    totals = {pair: [[] for _ in BUDGETS] for pair in pairs}
    for n, doc in enumerate(docs):
        units = list(engine.segmenter.units(open_documents(doc.text)))
        lengths = [len(u.ids) for u in units]
        with engine.unit_scores(units, doc.question, readout) as captured:
            for g, pair in enumerate(pairs):
                scores = engine.attention_scorer.select(captured.group(g))[0].unit_scores
                for k, budget in enumerate(BUDGETS):
                    keep = fill_budget(scores, lengths, budget)
                    spans = [(units[i].char_start, units[i].char_end) for i in keep]
                    totals[pair][k].append(recall_stats(found(doc.gold, spans))[0])
        if n % 25 == 0:
            print(f"heads: {n}/{len(docs)}", file=sys.stderr)
    return {pair: [mean(v) for v in lists] for pair, lists in totals.items()}


VIEW_MARGIN = 512
"""Tokens a joined view leaves of the window for the prompt, the question and the separators."""
MOVED_SPANS = ("units", "gold")
"""The character spans of a record that move with its document."""


def joined_views(
    records: list[dict], view_tokens: int, max_tokens: int, seed: int = 0, most: int = 8
) -> list[HotpotDoc]:
    """Each record's document joined (blank lines between) with up to ``most`` other records'
    documents, a seeded sample in a shuffled order, until at least ``view_tokens`` tokens (a
    document that would pass ``max_tokens`` is skipped); its question, its units and its gold
    spans, moved to where its document landed."""
    rng = random.Random(seed)
    views = []
    for i, record in enumerate(records):
        others = rng.sample(
            [r for j, r in enumerate(records) if j != i], min(most, len(records) - 1)
        )
        parts, total = [record], record["doc_tokens"]
        for other in others:
            if total >= view_tokens:
                break
            if total + other["doc_tokens"] > max_tokens:
                continue
            parts.append(other)
            total += other["doc_tokens"]
        rng.shuffle(parts)
        text, moved = "", {}
        for part in parts:
            if text:
                text += "\n\n"
            if part is record:
                at = len(text)
                moved = {k: [[a + at, b + at] for a, b in record[k]] for k in MOVED_SPANS}
            text += part["text"]
        views.append(HotpotDoc.from_dict({**record, "text": text, **moved}))
    return views


def choose(
    recalls: dict[tuple[int, int], list[float]], lowest: int, stop: int, count: int
) -> list[tuple[int, int]]:
    """The ``count`` heads of best summed recall with ``lowest <= layer <= stop``."""
    ranked = sorted(recalls, key=lambda p: (-sum(recalls[p]), p))
    return sorted([p for p in ranked if lowest <= p[0] <= stop][:count])


def main(argv: list[str] | None = None) -> int:
    from infiniretri.calibration import HEAD_COUNT

    parser = argparse.ArgumentParser(prog="python -m bench.retrieval_heads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--view-tokens",
        type=int,
        default=0,
        help="join dev documents into views of at least this many tokens (0: each alone)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    engine = load_engine(args.device, args.dtype, retrieval_heads="all")
    records = load_prepared("dev", args.limit)
    if args.view_tokens > 0:
        room = engine.context_window - VIEW_MARGIN  # the prompt around the document
        docs = joined_views(records, args.view_tokens, room)
        name = f"retrieval_heads_view{args.view_tokens}.json"
    else:
        docs = [HotpotDoc.from_dict(r) for r in records]
        name = "retrieval_heads.json"
    recalls = head_recalls(engine, docs)
    stop, lowest = engine.retrieval_layer_index, engine.num_layers // 3
    ranked = sorted(recalls, key=lambda p: (-sum(recalls[p]), p))
    chosen = choose(recalls, lowest, stop, HEAD_COUNT)
    payload = {
        "split": "dev",
        "items": len(docs),
        "view_tokens": args.view_tokens or None,
        "doc_tokens_mean": mean(len(engine.segmenter.encode_text(d.text)) for d in docs),
        "budgets": list(BUDGETS),
        "engine": engine_settings(engine),
        "rule": (
            f"the {HEAD_COUNT} heads of best summed recall over the budgets, from layer {lowest} "
            f"(a third of the depth) up to the retrieval layer ({stop})"
        ),
        "chosen": [list(p) for p in chosen],
        "heads": [
            {"layer": p[0], "head": p[1], **{f"recall@{b}": r for b, r in zip(BUDGETS, recalls[p])}}
            for p in ranked
        ],
    }
    path = Path(args.out) if args.out else RESULTS_DIR / name
    write_json(path, payload)
    print(f"wrote {path}: {chosen}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
