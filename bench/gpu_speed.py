"""GPU speed of the scan: one 1M-token document, and many 128k-token documents at once.

    python -m bench.gpu_speed --gguf PATH/SmolLM2-135M-Instruct.Q4_1.gguf --tokenizer DIR \\
        --out bench/results/gpu_speed.json

Measures, on one GPU in bf16:
  * the embedded SmolLM2-135M (real weights, from the GGUF) reading one 1M-token document and
    answering one question, end to end (the document is a ``str`` in memory; sentence splitting,
    tokenization, the scan and the answer are all timed), for several chunk sizes and with each
    lever turned off in turn (CUDA graphs, prep workers); whether the planted needle was kept
    and named in the answer; peak GPU memory at 256k and 1M tokens;
  * ``retrieve_batch`` over 16 concurrent 128k-token documents, with the real 135M model and a
    random-weight Qwen2.5-0.5B-shaped model, against a plain batched forward over the same tokens
    (the limit): the full model, and the model up to the retrieval layer.

The haystack is the Wikipedia prose of ``examples/data`` repeated, with a needle sentence planted
at a paragraph's end. Warm-up runs (model load, CUDA graph recording, worker start) are reported
apart; "warm" runs reuse an engine that has already read a document of the same size.
``--scale`` shrinks every size (a CPU smoke test: ``--device cpu --scale 0.01 --random-only``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
PROSE = ROOT / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
NEEDLE = "The secret ingredient of Grandma Rosa's famous soup is smoked paprika."
QUESTION = "What is the secret ingredient of Grandma Rosa's soup?"
NEEDLE_WORD = "paprika"
SMOL_LAYER = 18  # the embedded model's shipped retrieval layer
QWEN_LAYER = 14  # ~0.6 of the depth, like 18 of 30
SMOL = dict(
    hidden_size=576,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    intermediate_size=1536,
    head_dim=64,
    vocab_size=49152,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    tie_word_embeddings=True,
)
QWEN = dict(
    hidden_size=896,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=151936,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
)


# --------------------------------------------------------------------------- helpers
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: str) -> float | None:
    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return None


def log(*args: Any) -> None:
    print(*args, flush=True)


class Haystacks:
    """Documents of a given token length: the prose repeated, a needle at a depth."""

    def __init__(self, tokenizer) -> None:
        text = PROSE.read_text(encoding="utf-8")
        self.paragraphs = [p for p in text.split("\n\n") if p.strip()]
        sizes = tokenizer([" " + p for p in self.paragraphs], add_special_tokens=False)
        self.sizes = [len(ids) + 1 for ids in sizes["input_ids"]]

    def build(self, tokens: int, depth: float, rotate: int = 0) -> str:
        n = len(self.paragraphs)
        chosen, total, i = [], 0, rotate
        while total < tokens:
            chosen.append(self.paragraphs[i % n])
            total += self.sizes[i % n]
            i += 1
        at = min(len(chosen) - 1, int(depth * len(chosen)))
        chosen[at] = chosen[at].rstrip() + " " + NEEDLE
        return "\n\n".join(chosen)


def random_model(shape: dict, device: str, layers: int | None = None):
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = "qwen2" if shape is QWEN else "llama"
    options = dict(shape)
    if layers:
        options["num_hidden_layers"] = layers
    config = AutoConfig.for_model(arch, **options)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


class _Stop(Exception):
    pass


@torch.inference_mode()
def plain_forward(
    model, batch: int, length: int, steps: int, device: str, upto: int | None, graphed: bool
) -> float:
    """Tokens/s of a plain SDPA forward of (batch, length) random ids.

    ``upto``: stop after that decoder layer (its MLP included), else the full model with the
    last position's logits. ``graphed``: replay it as a CUDA graph (no launch overhead).
    """
    from infiniretri.attention import causal_only

    vocab = model.config.vocab_size
    ids = torch.randint(100, min(vocab, 49152), (batch, length), device=device)
    hook = None
    if upto is not None:
        layers = model.model.layers
        if upto + 1 < len(layers):

            def stop(*_):
                raise _Stop

            hook = layers[upto + 1].register_forward_pre_hook(stop)

    def once():
        with contextlib.suppress(_Stop), causal_only():
            model(input_ids=ids, use_cache=False, logits_to_keep=1)

    try:
        run = once
        if graphed and device.startswith("cuda"):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                once()
                once()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with contextlib.suppress(_Stop), causal_only(), torch.cuda.graph(graph):
                model(input_ids=ids, use_cache=False, logits_to_keep=1)
            run = graph.replay
        for _ in range(2):
            run()
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            run()
        sync(device)
        seconds = time.perf_counter() - start
    finally:
        if hook is not None:
            hook.remove()
    return batch * length * steps / seconds


def limits(model, batch: int, length: int, steps: int, device: str, layer: int) -> dict:
    """Plain forwards of one shape: full model and up to ``layer``, eager and as a graph."""
    out: dict[str, Any] = {"shape": [batch, length]}
    for upto, name in ((None, "full_model"), (layer, "to_retrieval_layer")):
        for graphed in (False, True):
            key = f"{name}_{'graph' if graphed else 'eager'}_tokens_per_s"
            out[key] = round(plain_forward(model, batch, length, steps, device, upto, graphed))
    return out


def needle_kept(retrieval) -> bool:
    return any(NEEDLE in s.text for s in retrieval.sentences)


def summary_of(retrieval, seconds: float, device: str, answer=None, answer_s=None) -> dict:
    st = retrieval.stats
    out = {
        "seconds": round(seconds, 3),
        "scan_seconds": round(st.seconds, 3),
        "tokens_read": st.tokens_read,
        "tokens_processed": st.tokens_processed,
        "forward_passes": st.forward_passes,
        "cache_tokens": st.cache_tokens,
        "read_tokens_per_s": round(st.tokens_read / seconds),
        "processed_tokens_per_s": round(st.tokens_processed / seconds),
        "needle_kept": needle_kept(retrieval),
        "peak_gpu_mb": peak_mb(device),
    }
    if answer is not None:
        out.update(
            answer=answer.text,
            answer_seconds=round(answer_s, 3),
            answer_names_needle=NEEDLE_WORD in answer.text.lower(),
            generated_tokens=answer.generated_tokens,
        )
    return out


def single_run(engine, doc: str, device: str, max_new_tokens: int) -> tuple[dict, Any]:
    """End to end: scan + answer of one document (a str), timed with the device synced."""
    reset_peak(device)
    sync(device)
    start = time.perf_counter()
    retrieval = engine.retrieve(doc, QUESTION)
    sync(device)
    mid = time.perf_counter()
    answer = engine.answer_from(retrieval, max_new_tokens=max_new_tokens)
    sync(device)
    end = time.perf_counter()
    return summary_of(retrieval, end - start, device, answer, end - mid), retrieval


# --------------------------------------------------------------------------- sections
def single_document(engine, hay: Haystacks, args, result: dict) -> None:
    device = args.device
    n = int(1_000_000 * args.scale)
    doc = hay.build(n, 0.5)
    small = hay.build(max(4096, n // 4), 0.5, rotate=3)
    runs = result.setdefault("single_1m", {"document_tokens": n, "runs": []})["runs"]

    start = time.perf_counter()
    engine.scanner.prep.start()
    result["prep_workers_start_seconds"] = round(time.perf_counter() - start, 2)

    chosen, best = None, None
    for chunk in args.chunks:
        e = engine.with_options(chunk_tokens=chunk)
        cold, _ = single_run(e, doc, device, args.max_new_tokens)
        warm, _ = single_run(e, doc, device, args.max_new_tokens)
        for label, r in (("cold", cold), ("warm", warm)):
            r.update(
                chunk_tokens=chunk, cuda_graphs=e.cuda_graphs, prep_workers=e.scanner.prep.workers
            )
            r["run"] = label
            runs.append(r)
            log(
                f"1M chunk={chunk} {label}: {r['seconds']}s needle={r['needle_kept']} "
                f"answer={r['answer']!r} peak={r['peak_gpu_mb']}MB"
            )
        if warm["needle_kept"] and (best is None or warm["seconds"] < best):
            chosen, best = chunk, warm["seconds"]
    chosen = chosen or args.chunks[0]
    result["chosen_chunk_tokens"] = chosen
    e = engine.with_options(chunk_tokens=chosen)
    quarter, _ = single_run(e, small, device, args.max_new_tokens)
    quarter.update(chunk_tokens=chosen, run="warm, 1/4 length", document_chars=len(small))
    runs.append(quarter)
    log(f"1/4 length chunk={chosen}: {quarter['seconds']}s peak={quarter['peak_gpu_mb']}MB")

    _, graphed = single_run(e, doc, device, args.max_new_tokens)
    if device.startswith("cuda"):
        off = e.with_options(cuda_graphs=False)
        single_run(off, small, device, 4)
        r, plain = single_run(off, doc, device, args.max_new_tokens)
        r.update(chunk_tokens=chosen, cuda_graphs=False, run="warm, no CUDA graphs")
        r["same_sentences_as_graphs"] = [s.text for s in plain.sentences] == [
            s.text for s in graphed.sentences
        ]
        runs.append(r)
        log(f"no graphs chunk={chosen}: {r['seconds']}s same={r['same_sentences_as_graphs']}")
    inline = e.with_options(prep_workers=0)
    r, _ = single_run(inline, doc, device, args.max_new_tokens)
    r.update(chunk_tokens=chosen, prep_workers=0, run="warm, no prep workers")
    runs.append(r)
    log(f"no prep workers chunk={chosen}: {r['seconds']}s")

    # Splitting + tokenizing alone, with and without the workers.
    for workers, label in ((e.scanner.prep, "prep_workers"), (inline.scanner.prep, "inline")):
        from infiniretri.sources import open_documents

        start = time.perf_counter()
        count = sum(len(u.ids) for u in workers.units(open_documents(doc)))
        seconds = time.perf_counter() - start
        result.setdefault("prep_alone", {})[label] = {
            "seconds": round(seconds, 3),
            "tokens_per_s": round(count / seconds),
            "workers": workers.workers,
        }
        log(f"prep alone ({label}): {seconds:.2f}s for {count} tokens")

    # The limit: a plain forward of the same shapes (batch 1, the chunk plus the mean cache).
    warm = next(x for x in runs if x.get("chunk_tokens") == chosen and x["run"] == "warm")
    length = round(warm["tokens_processed"] / warm["forward_passes"])
    steps = max(3, min(50, warm["forward_passes"]))
    limit = limits(e.model, 1, length, steps, device, e.retrieval_layer_index)
    limit["scan_processed_vs_graph_to_layer"] = round(
        warm["processed_tokens_per_s"] / limit["to_retrieval_layer_graph_tokens_per_s"], 3
    )
    limit["scan_processed_vs_eager_to_layer"] = round(
        warm["processed_tokens_per_s"] / limit["to_retrieval_layer_eager_tokens_per_s"], 3
    )
    result["single_1m"]["limit"] = limit
    log(f"limit: {limit}")


def batch_documents(engine, hay: Haystacks, args, result: dict, name: str, chunk: int) -> None:
    device = args.device
    n = int(128_000 * args.scale)
    count = args.batch
    docs = [hay.build(n, (i + 0.5) / count, rotate=7 * i) for i in range(count)]
    pairs = [(d, QUESTION) for d in docs]
    e = engine.with_options(chunk_tokens=chunk, batch_size=count)
    section = result.setdefault("batch", {}).setdefault(name, {})
    section.update(documents=count, document_tokens=n, chunk_tokens=chunk)
    for label in ("cold", "warm"):
        reset_peak(device)
        sync(device)
        start = time.perf_counter()
        retrievals = e.retrieve_batch(pairs)
        sync(device)
        seconds = time.perf_counter() - start
        read = sum(r.stats.tokens_read for r in retrievals)
        processed = sum(r.stats.tokens_processed for r in retrievals)
        section[label] = {
            "seconds": round(seconds, 3),
            "tokens_read": read,
            "read_tokens_per_s": round(read / seconds),
            "processed_tokens_per_s": round(processed / seconds),
            "forward_passes": max(r.stats.forward_passes for r in retrievals),
            "needles_kept": sum(needle_kept(r) for r in retrievals),
            "peak_gpu_mb": peak_mb(device),
        }
        log(f"batch {name} {count}x{n} chunk={chunk} {label}: {section[label]}")
    warm = section["warm"]
    steps = warm["forward_passes"]
    length = round(warm["processed_tokens_per_s"] * warm["seconds"] / count / steps)
    reps = max(3, min(20, steps))
    layer = e.retrieval_layer_index
    section["limit_same_tokens"] = limits(e.model, count, chunk, reps, device, layer)
    section["limit_scan_shapes"] = limits(e.model, count, length, reps, device, layer)
    full = section["limit_same_tokens"]["full_model_graph_tokens_per_s"]
    full_eager = section["limit_same_tokens"]["full_model_eager_tokens_per_s"]
    upto = section["limit_scan_shapes"]["to_retrieval_layer_graph_tokens_per_s"]
    section["read_vs_plain_full_forward_graph"] = round(warm["read_tokens_per_s"] / full, 3)
    section["read_vs_plain_full_forward_eager"] = round(warm["read_tokens_per_s"] / full_eager, 3)
    section["processed_vs_plain_to_layer_graph"] = round(warm["processed_tokens_per_s"] / upto, 3)
    log(f"batch {name} limits: {section['limit_same_tokens']} {section['limit_scan_shapes']}")
    log(
        f"batch {name} ratios: read/full(graph) {section['read_vs_plain_full_forward_graph']} "
        f"read/full(eager) {section['read_vs_plain_full_forward_eager']} "
        f"processed/to-layer(graph) {section['processed_vs_plain_to_layer_graph']}"
    )
    # Batch and single agree on the device too (bf16)?
    if args.check_single:
        singles = [e.retrieve(d, QUESTION) for d in docs[:2]]
        again = e.retrieve_batch(pairs[:2])
        section["single_vs_batch_same_sentences"] = [
            [s.text for s in a.sentences] == [s.text for s in b.sentences]
            for a, b in zip(singles, again)
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--gguf", help="the embedded model's GGUF file (real weights)")
    parser.add_argument("--tokenizer", default=None, help="folder of the embedded tokenizer")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_speed.json"))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--chunks", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--random-only", action="store_true", help="no real weights")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers (smoke tests)")
    parser.add_argument("--check-single", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], help="sections: single batch qwen")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from infiniretri import InfiniRetri

    device = args.device
    result: dict[str, Any] = {
        "benchmark": "gpu_speed",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scale": args.scale,
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        result["device"] = torch.cuda.get_device_name(0)
        result["gpu_memory_gb"] = round(props.total_memory / 2**30, 1)
    else:
        result["device"] = platform.processor() or "cpu"
    import transformers

    result["transformers"] = transformers.__version__
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    start = time.perf_counter()
    if args.tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        from infiniretri.testing import embedded_tokenizer

        tokenizer = embedded_tokenizer()
    hay = Haystacks(tokenizer)
    if args.random_only or not args.gguf:
        model = random_model(SMOL, device, args.layers)
        result["model_135m"] = "random weights, SmolLM2-135M shape"
    else:
        from transformers import AutoModelForCausalLM

        gguf = Path(args.gguf)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
        )
        model = model.to(device).eval()
        result["model_135m"] = "SmolLM2-135M-Instruct Q4_1 GGUF, dequantized to bf16"
    layer = min(SMOL_LAYER, model.config.num_hidden_layers - 1)
    engine = InfiniRetri(model, tokenizer, chunk_tokens=args.chunks[0], retrieval_layer=layer)
    result["load_seconds"] = round(time.perf_counter() - start, 2)
    log(f"device {result['device']}, model loaded in {result['load_seconds']}s")

    def section(name: str, run) -> None:
        if name in args.skip:
            return
        try:
            run()
        except Exception as err:  # keep the other sections' numbers
            import traceback

            traceback.print_exc()
            result.setdefault("errors", {})[name] = f"{type(err).__name__}: {err}"
        save()

    def qwen_batch() -> None:
        qwen = random_model(QWEN, device, args.layers)
        qlayer = min(QWEN_LAYER, qwen.config.num_hidden_layers - 1)
        qengine = InfiniRetri(qwen, tokenizer, chunk_tokens=chunk, retrieval_layer=qlayer)
        qengine.scanner.prep.start()  # workers start outside the timed runs
        batch_documents(qengine, hay, args, result, "qwen2.5_0.5b_shape_random", chunk)

    try:
        section("single", lambda: single_document(engine, hay, args, result))
        chunk = result.get("chosen_chunk_tokens", args.chunks[-1])
        section("batch", lambda: batch_documents(engine, hay, args, result, "smollm2_135m", chunk))
        result["graph_error"] = engine.cuda_graph_error
        engine = model = None  # free the 135M model before the bigger one
        gc.collect()
        section("qwen", qwen_batch)
    finally:
        result["total_seconds"] = round(time.perf_counter() - start, 1)
        save()
    log(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
