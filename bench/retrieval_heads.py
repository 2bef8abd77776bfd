"""Pick the embedded model's retrieval heads on the HotpotQA dev split (never the report split).

    python -m bench.hotpotqa prepare                      # CPU: the splits and documents
    python -m bench.retrieval_heads --device cuda         # writes results/retrieval_heads.json

Each dev document is read in one forward with every head of every layer captured on its own
(``engine.unit_scores`` with a readout of all ``(layer, head)`` pairs). Each head alone ranks the
sentences with the paper's window scorer; its supporting-sentence recall at the token budgets of
the HotpotQA benchmark (best-first, ``fill_budget``) is its score. The shipped head set is the
``HEAD_COUNT`` best heads from a third of the depth up to the model's retrieval layer: the scan
stops where it stopped before, and the lowest layers, whose attention is mostly local and
positional, are left out (``infiniretri.calibration.SHIPPED_HEADS``).
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--out", default=str(RESULTS_DIR / "retrieval_heads.json"))
    args = parser.parse_args(argv)
    engine = load_engine(args.device, args.dtype, retrieval_heads="all")
    docs = [HotpotDoc.from_dict(r) for r in load_prepared("dev", args.limit)]
    recalls = head_recalls(engine, docs)
    stop, lowest = engine.retrieval_layer_index, engine.num_layers // 3
    ranked = sorted(recalls, key=lambda p: (-sum(recalls[p]), p))
    chosen = choose(recalls, lowest, stop, HEAD_COUNT)
    payload = {
        "split": "dev",
        "items": len(docs),
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
    path = Path(args.out)
    write_json(path, payload)
    print(f"wrote {path}: {chosen}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
