"""Calibrate the retrieval layer of the embedded model on synthetic needles; write the result.

    python bench/calibrate_layer.py [--trials 24] [--out bench/results/layer_calibration.json]

The chosen layer is what ``retrieval_layer="auto"`` ships for the embedded model
(``infiniretri.calibration.SHIPPED_LAYERS``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from infiniretri import InfiniRetri
from infiniretri.calibration import best_layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/layer_calibration.json")
    args = parser.parse_args()
    engine = InfiniRetri.from_pretrained(retrieval_layer=0)
    started = time.perf_counter()
    mrr = engine.calibrate_layers(trials=args.trials, seed=args.seed)
    seconds = time.perf_counter() - started
    chosen = best_layer(mrr)
    result = {
        "model": engine.model_name,
        "trials": args.trials,
        "seed": args.seed,
        "method": "synthetic needle among filler and 2 same-kind distractors; mean reciprocal "
        "rank of the needle sentence per layer; chosen = best 3-layer neighbourhood mean",
        "mrr_by_layer": {str(k): round(v, 4) for k, v in mrr.items()},
        "chosen_layer": chosen,
        "last_layer_mrr": round(mrr[max(mrr)], 4),
        "seconds": round(seconds, 1),
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
