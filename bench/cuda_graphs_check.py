"""CUDA graphs against eager on a GPU: the same retrieved sentences, scores within tolerance.

    python -m bench.cuda_graphs_check --tokenizer DIR --out bench/results/cuda_graphs_check.json

Through the public API: ``InfiniRetri(model, tokenizer, cuda_graphs=True)`` against
``engine.with_options(cuda_graphs=False)``, ``retrieve(text, question)`` at each of ``--lengths``
(32k and 256k document tokens by default) and ``retrieve_batch`` over ``--batch-docs``
documents of ``--batch-tokens`` tokens. Per case it records whether the sentences (and the scan's
counters) are equal, the largest score difference (absolute, and relative to the largest
score), the seconds with graphs (the first call, which records the graphs it needs, and a
second, warm one) and without, and ``engine.cuda_graph_error``. A lower-level check compares
the forward runner's token scores, graphed and eager, on random prompts of several shapes.

The model has the SmolLM2-135M shape (30 layers, hidden 576, 9 heads, 3 key/value heads) with
random weights, in bf16; the tokenizer is the embedded model's (``--tokenizer``: a folder saved
with ``save_pretrained``; default: the embedded one). Documents are the Wikipedia prose of
``examples/data`` in a different paragraph order for each repeat, each paragraph opened by a
numbered sentence, with a needle sentence planted at a depth. On a CPU graphs are off, so both
sides run eagerly (a smoke test: ``--device cpu --lengths 3000 --batch-tokens 2000``).

Exit status 0 when every case passes (same sentences, relative score difference at most
``--rtol``, no graph error), else 1; the JSON is written either way.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.gpu_speed import SMOL as SMOL_SHAPE
from bench.gpu_speed import SMOL_LAYER as LAYER
from infiniretri import InfiniRetri, Retrieval

ROOT = Path(__file__).resolve().parents[1]
PROSE = ROOT / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
OUT = ROOT / "bench" / "results" / "cuda_graphs_check.json"
NEEDLES = [
    (
        "The secret ingredient of Grandma Rosa's famous soup is smoked paprika.",
        "What is the secret ingredient of Grandma Rosa's soup?",
    ),
    (
        "The vault under the old mill opens with the code 7319.",
        "Which code opens the vault under the old mill?",
    ),
    (
        "Captain Ilse Marrow sailed the Bluefin to Valparaiso in the spring of 1911.",
        "Where did Captain Ilse Marrow sail the Bluefin?",
    ),
    (
        "The lighthouse keeper's cat was called Pepper and slept on the lamp room stairs.",
        "What was the lighthouse keeper's cat called?",
    ),
]


def log(*args: Any) -> None:
    print(*args, flush=True)


def smol_model(device: str, dtype: torch.dtype, seed: int = 0):
    """A random-weight Llama of the SmolLM2-135M shape, SDPA attention."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**SMOL_SHAPE, attn_implementation="sdpa"))
    return model.to(dtype).eval()


class Documents:
    """Documents of a given token length: the prose, reordered per repeat, with a needle."""

    def __init__(self, tokenizer) -> None:
        text = PROSE.read_text(encoding="utf-8")
        self.paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        ids = tokenizer([" " + p for p in self.paragraphs], add_special_tokens=False)["input_ids"]
        self.sizes = [len(i) + 8 for i in ids]  # + the numbered opening sentence, about

    def build(self, tokens: int, depth: float, needle: str, seed: int) -> str:
        rng = random.Random(seed)
        chosen: list[str] = []
        total = 0
        while total < tokens:
            order = list(range(len(self.paragraphs)))
            rng.shuffle(order)
            for i in order:
                chosen.append(f"Record {len(chosen) + 1} follows. {self.paragraphs[i]}")
                total += self.sizes[i]
                if total >= tokens:
                    break
        at = min(len(chosen) - 1, int(depth * len(chosen)))
        chosen[at] = chosen[at] + " " + needle
        return "\n\n".join(chosen)


def timed(call):
    started = time.perf_counter()
    out = call()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, round(time.perf_counter() - started, 3)


def key(retrieval: Retrieval) -> list[tuple[int, int, int]]:
    return [(s.doc_index, s.char_start, s.char_end) for s in retrieval.sentences]


def counters(retrieval: Retrieval) -> dict[str, int]:
    st = retrieval.stats
    return {
        "tokens_read": st.tokens_read,
        "forward_passes": st.forward_passes,
        "tokens_processed": st.tokens_processed,
        "cache_tokens": st.cache_tokens,
    }


def compare(graphed: Retrieval, eager: Retrieval) -> dict[str, Any]:
    """Same sentences and counters? The score differences over the sentences both kept."""
    mine = {k: s.score for k, s in zip(key(graphed), graphed.sentences)}
    theirs = {k: s.score for k, s in zip(key(eager), eager.sentences)}
    common = sorted(set(mine) & set(theirs))
    diffs = [abs(mine[k] - theirs[k]) for k in common]
    top = max((abs(theirs[k]) for k in common), default=0.0)
    max_abs = max(diffs, default=0.0)
    return {
        "sentences_equal": key(graphed) == key(eager),
        "sentences": [len(graphed.sentences), len(eager.sentences)],
        "sentences_only_in_one": len(set(mine) ^ set(theirs)),
        "counters_equal": counters(graphed) == counters(eager),
        "counters": counters(eager),
        "max_abs_score_diff": max_abs,
        "max_rel_score_diff": max_abs / top if top else 0.0,
        "max_score": top,
    }


def needle_kept(retrieval: Retrieval, needle: str) -> bool:
    return any(needle in s.text for s in retrieval.sentences)


def single_case(model, tokenizer, docs: Documents, tokens: int, args) -> dict[str, Any]:
    needle, question = NEEDLES[0]
    text = docs.build(tokens, 0.37, needle, seed=tokens)
    graphs = InfiniRetri(model, tokenizer, cuda_graphs=True, retrieval_layer=LAYER)
    eager = graphs.with_options(cuda_graphs=False)
    first, first_s = timed(lambda: graphs.retrieve(text, question))
    warm, warm_s = timed(lambda: graphs.retrieve(text, question))
    plain, eager_s = timed(lambda: eager.retrieve(text, question))
    result = {
        "case": f"retrieve {tokens // 1000}k",
        "document_tokens": plain.stats.tokens_read,
        **compare(warm, plain),
        "graphs_repeat_identical": [(s.score, *k) for s, k in zip(first.sentences, key(first))]
        == [(s.score, *k) for s, k in zip(warm.sentences, key(warm))],
        "needle_kept": [needle_kept(warm, needle), needle_kept(plain, needle)],
        "seconds_graphs_first": first_s,
        "seconds_graphs_warm": warm_s,
        "seconds_eager": eager_s,
        "cuda_graph_error": graphs.cuda_graph_error,
    }
    log(result)
    return result


def batch_case(model, tokenizer, docs: Documents, args) -> dict[str, Any]:
    pairs = []
    for i in range(args.batch_docs):
        needle, question = NEEDLES[i % len(NEEDLES)]
        depth = (i + 0.5) / args.batch_docs
        tokens = int(args.batch_tokens * (1 - 0.15 * i))  # different lengths: some finish first
        pairs.append((docs.build(tokens, depth, needle, seed=1000 + i), question))
    graphs = InfiniRetri(model, tokenizer, cuda_graphs=True, retrieval_layer=LAYER)
    eager = graphs.with_options(cuda_graphs=False)
    first, first_s = timed(lambda: graphs.retrieve_batch(pairs))
    warm, warm_s = timed(lambda: graphs.retrieve_batch(pairs))
    plain, eager_s = timed(lambda: eager.retrieve_batch(pairs))
    per_doc = [compare(g, e) for g, e in zip(warm, plain)]
    result = {
        "case": f"retrieve_batch {args.batch_docs} x {args.batch_tokens // 1000}k",
        "document_tokens": [r.stats.tokens_read for r in plain],
        "sentences_equal": all(d["sentences_equal"] for d in per_doc),
        "counters_equal": all(d["counters_equal"] for d in per_doc),
        "max_abs_score_diff": max(d["max_abs_score_diff"] for d in per_doc),
        "max_rel_score_diff": max(d["max_rel_score_diff"] for d in per_doc),
        "per_document": per_doc,
        "graphs_repeat_identical": [key(r) for r in first] == [key(r) for r in warm],
        "seconds_graphs_first": first_s,
        "seconds_graphs_warm": warm_s,
        "seconds_eager": eager_s,
        "cuda_graph_error": graphs.cuda_graph_error,
    }
    log({k: v for k, v in result.items() if k != "per_document"})
    return result


@torch.inference_mode()
def forward_case(model, tokenizer, device: str) -> dict[str, Any]:
    """The runner's token scores, graphed and eager, on random prompts of several shapes."""
    engine = InfiniRetri(model, tokenizer, cuda_graphs=True, retrieval_layer=LAYER)
    graphed, plain = engine.context.runner(True), engine.context.runner(False)
    generator = torch.Generator().manual_seed(7)
    shapes = [(1, [1100], 20), (1, [5300], 12), (1, [8100], 30), (4, [5300, 4100, 5000, 700], 20)]
    layers = (6, LAYER)
    out = []
    scale = 1.0 if device.startswith("cuda") else 0.05  # a CPU smoke test: short prompts
    for _, full, q in shapes:
        lengths = [max(2 * q, int(n * scale)) for n in full]
        prompts = [torch.randint(100, 49000, (n,), generator=generator).tolist() for n in lengths]
        rows = [range(n - q, n) for n in lengths]
        with graphed.session():
            got = {k: v.float().cpu() for k, v in graphed.scores(prompts, rows, layers).items()}
        with plain.session():
            want = {k: v.float().cpu() for k, v in plain.scores(prompts, rows, layers).items()}
        for layer in layers:
            diff = top = 0.0
            for b, n in enumerate(lengths):
                diff = max(diff, (got[layer][b, :n] - want[layer][b, :n]).abs().max().item())
                top = max(top, want[layer][b, :n].abs().max().item())
            out.append(
                {
                    "lengths": lengths,
                    "question_rows": q,
                    "layer": layer,
                    "graph_shape": list(got[layer].shape),
                    "max_abs_diff": diff,
                    "max_rel_diff": diff / top if top else 0.0,
                }
            )
    result = {
        "case": "forward runner, random prompts",
        "graphs_on": graphed.graphs,
        "shapes": out,
        "max_rel_score_diff": max(s["max_rel_diff"] for s in out),
        "max_abs_score_diff": max(s["max_abs_diff"] for s in out),
        "cuda_graph_error": graphed.graph_error,
    }
    log({k: v for k, v in result.items() if k != "shapes"})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--tokenizer", help="a saved tokenizer folder (default: the embedded)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[32_000, 256_000])
    parser.add_argument("--batch-docs", type=int, default=4)
    parser.add_argument("--batch-tokens", type=int, default=32_000)
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--out", default=str(OUT), help="JSON file")
    args = parser.parse_args(argv)

    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        from infiniretri.testing import embedded_tokenizer

        tokenizer = embedded_tokenizer()
    dtype = getattr(torch, args.dtype)
    model = smol_model(args.device, dtype)
    docs = Documents(tokenizer)
    started = time.perf_counter()
    cases = [forward_case(model, tokenizer, args.device)]
    cases += [single_case(model, tokenizer, docs, n, args) for n in args.lengths]
    cases.append(batch_case(model, tokenizer, docs, args))

    def passed(case: dict[str, Any]) -> bool:
        same = case.get("sentences_equal", True) and case.get("counters_equal", True)
        close = case["max_rel_score_diff"] <= args.rtol
        return bool(same and close and case["cuda_graph_error"] is None)

    for case in cases:
        case["passed"] = passed(case)
    payload = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "dtype": args.dtype,
        "model": "random-weight Llama, SmolLM2-135M shape (30 layers, hidden 576, 9/3 heads)",
        "retrieval_layer": LAYER,
        "lengths": args.lengths,
        "batch": {"documents": args.batch_docs, "tokens": args.batch_tokens},
        "rtol": args.rtol,
        "graphs_used": args.device.startswith("cuda"),
        "all_passed": all(c["passed"] for c in cases),
        "seconds": round(time.perf_counter() - started, 1),
        "cases": cases,
    }
    from bench.common import write_json

    log(f"cuda_graphs_check: wrote {write_json(Path(args.out), payload)}")
    log(f"all passed: {payload['all_passed']}")
    return 0 if payload["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
