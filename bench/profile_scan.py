"""Where one scan spends its time: cProfile of ``engine.retrieve`` on a haystack.

python -m bench.profile_scan --device cuda --length 64000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

from .common import load_essays
from .engine_setup import load_engine
from .haystack import QUESTION, HaystackBuilder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_scan")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--length", type=int, default=16000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    import torch

    engine = load_engine(args.device, args.dtype)
    text = HaystackBuilder(load_essays(), engine.tokenizer).build(args.length, 50).text
    engine.retrieve(text[:20000], QUESTION)  # warm up
    ids = torch.randint(100, 20000, (1, engine.chunk_tokens + 400), device=engine.device)
    with torch.inference_mode():
        for _ in range(3):
            engine.model(input_ids=ids, use_cache=False)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(10):
            engine.model(input_ids=ids, use_cache=False)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
    full = (time.perf_counter() - t0) / 10
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    r = engine.retrieve(text, QUESTION)
    profile.disable()
    total = time.perf_counter() - t0
    print(
        f"scan of {r.stats.tokens_read} tokens: {total:.2f}s, {r.stats.forward_passes} passes, "
        f"{1000 * total / r.stats.forward_passes:.1f} ms per pass; one full forward of "
        f"{ids.shape[1]} tokens: {1000 * full:.1f} ms"
    )
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
