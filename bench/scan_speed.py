"""CPU speed of the scan against plain forwards over the same windows.

    python bench/scan_speed.py [--tokens 8000] [--repeats 3] [--out bench/results/scan_speed.json]

Reports, with the embedded model on this machine's CPU:

1. the scan (``engine.retrieve``): document tokens and processed tokens per second;
2. a plain full-model SDPA forward (all layers, logits of the last position, no capture) over
   windows of the same number and lengths as the scan's: processed tokens per second, and the
   scan's speed-up over it (early exit at the retrieval layer is where the scan gains);
3. the capture overhead: the scan's forward (stopped at the retrieval layer, question attention
   computed) against the same forward stopped at the same layer with the capture replaced by a
   no-op. Goal: under 5%.

Timings are medians over ``--repeats`` runs; the JSON records the machine and torch threads.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from infiniretri import InfiniRetri, attention
from infiniretri.sentences import SentenceSplitter

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
QUESTION = "Which NASA satellite measured the dust blown from the Sahara to the Amazon?"


def prose_prefix(engine: InfiniRetri, n_tokens: int) -> str:
    text = DOCUMENT.read_text(encoding="utf-8")
    spans = SentenceSplitter().split(text)
    sentences = [text[a:b] for a, b in spans]
    chosen, total = [], 0
    for sentence, ids in zip(sentences, engine.segmenter.encode(sentences)):
        if total + len(ids) > n_tokens:
            break
        chosen.append(sentence)
        total += len(ids)
    return " ".join(chosen)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def windows_of(engine: InfiniRetri, doc: str) -> list[int]:
    """Lengths of the windows the scan feeds the model (recorded from a real scan)."""
    lengths: list[int] = []

    def record(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        lengths.extend([int(ids.shape[1])] * int(ids.shape[0]))

    hook = engine.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        engine.retrieve(doc, QUESTION)
    finally:
        hook.remove()
    return lengths


@torch.inference_mode()
def plain_forward(model, lengths: list[int], vocab: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for n in lengths:
        ids = torch.randint(100, vocab, (1, n), generator=generator)
        model(input_ids=ids, use_cache=False, logits_to_keep=1)


def capture_windows(model, lengths: list[int], layer: int, vocab: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for n in lengths:
        ids = torch.randint(100, vocab, (1, n), generator=generator)
        rows = torch.arange(n - 24, n - 4)[None]
        attention.capture(model, ids, rows, torch.ones(1, 20), (layer,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scan_speed.json"))
    args = parser.parse_args()

    engine = InfiniRetri.from_pretrained()
    model, layer = engine.model, engine.retrieval_layer_index
    vocab = int(model.config.vocab_size)
    doc = prose_prefix(engine, args.tokens)
    lengths = windows_of(engine, doc)

    scan_stats = engine.retrieve(doc, QUESTION).stats
    scan_s = timed(lambda: engine.retrieve(doc, QUESTION), args.repeats)
    forward_s = timed(lambda: plain_forward(model, lengths, vocab), args.repeats)
    capture_s = timed(lambda: capture_windows(model, lengths, layer, vocab), args.repeats)

    real = attention.question_attention

    def no_capture(query, key, rows, row_valid, *a, **k):
        return torch.zeros(query.shape[0], query.shape[2], device=query.device)

    attention.question_attention = no_capture
    try:
        stopped_s = timed(lambda: capture_windows(model, lengths, layer, vocab), args.repeats)
    finally:
        attention.question_attention = real

    processed = sum(lengths)
    result = {
        "model": engine.model_name,
        "dtype": str(model.dtype),
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "retrieval_layer": layer,
        "num_layers": engine.num_layers,
        "settings": {
            "chunk_tokens": engine.chunk_tokens,
            "phrase_tokens": engine.phrase_tokens,
            "top_k_tokens": engine.top_k_tokens,
        },
        "document_tokens": scan_stats.tokens_read,
        "windows": len(lengths),
        "tokens_processed": processed,
        "scan": {
            "seconds": round(scan_s, 3),
            "document_tokens_per_s": round(scan_stats.tokens_read / scan_s, 1),
            "processed_tokens_per_s": round(processed / scan_s, 1),
        },
        "plain_full_forward_same_windows": {
            "seconds": round(forward_s, 3),
            "processed_tokens_per_s": round(processed / forward_s, 1),
        },
        "scan_speedup_over_full_forward": round(forward_s / scan_s, 3),
        "capture": {
            "forward_to_layer_with_capture_s": round(capture_s, 3),
            "forward_to_layer_without_capture_s": round(stopped_s, 3),
            "overhead_percent": round(100 * (capture_s - stopped_s) / stopped_s, 2),
        },
        "repeats": args.repeats,
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
