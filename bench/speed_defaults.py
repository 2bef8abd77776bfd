"""Today's settings against the new defaults, side by side in one run (issue 16).

    python -m bench.speed_defaults --device cuda --sections single batch big \\
        --deadline 520 --out bench/results/speed_defaults.json
    python -m bench.speed_defaults --device cpu --sections cpu   # the CPU demo document
    python -m bench.speed_defaults --device cpu --scale 0.004    # a smoke test of every section

"Today" is ``chunk_tokens=1024, batch_size=16`` (the defaults before ``"auto"``); "new" is the
engine's defaults (``chunk_tokens="auto"``, ``batch_size="auto"``, warm-up on CUDA). Sections:

* ``single``: one 1M-token document, end to end (retrieve + answer, default answer length), on
  two haystacks: the Paul Graham essays (``bench/haystack.py``, San Francisco needle) and the
  Wikipedia prose of ``examples/data`` repeated (``bench/gpu_speed.py``, paprika needle), needle
  at 10/50/90% depth. Per setting: the first (cold) call, then the median of 5 warm runs;
  whether the needle was kept and named in each run; peak GPU memory at 256k and 1M tokens.
* ``batch``: 16 documents of 128k tokens: ``retrieve_batch`` at ``batch_size`` 16 and
  ``"auto"`` against one ``retrieve`` per document, document tokens/s, at both chunks.
* ``big``: a 7B-shaped random-weight model (Qwen2-7B shape, bf16, 32k window): tokens through
  the model per document token (from ``Answer.usage``) and MFU, at chunk 1024 and ``"auto"``
  (with and without compiled layers), each setting in a process of its own.
* ``cpu``: the demo document and question on the CPU, both settings alternating, document
  tokens/s, and whether answer and kept sentences are the same.

``--scale`` shrinks every size; ``--deadline`` stops before a run that would not fit and
writes what was measured; ``--merge`` keeps the sections of an earlier result file that this
run does not measure.
"""

from __future__ import annotations

import infiniretri  # noqa: F401  (first: it chooses how CPU threads wait, before torch loads)

# isort: split
import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import gpu_speed
from bench.common import RESULTS_DIR, Deadline, load_essays, machine_info, write_json
from bench.haystack import QUESTION as ESSAY_QUESTION
from bench.haystack import HaystackBuilder, answer_hit, retrieval_hit

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
DEMO_QUESTION = "Which NASA satellite measured the dust blown from the Sahara to the Amazon?"
TODAY = {"chunk_tokens": 1024, "batch_size": 16}
"""The defaults before ``"auto"``."""
DEPTHS = (10, 50, 90)
WARM_RUNS = 5
SECTIONS = ("single", "batch", "big", "cpu")
BIG = dict(
    hidden_size=3584,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    intermediate_size=18944,
    vocab_size=152064,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    tie_word_embeddings=False,
)
"""Qwen2-7B's shape."""
BIG_LAYER = 16
"""The retrieval layer of the 7B-shaped model (~0.6 of its depth, as 18 of 30 for SmolLM2)."""
H200_BF16_FLOPS = 989e12
"""Dense bf16 peak of an H100/H200 SXM."""

log = gpu_speed.log


@dataclass(frozen=True)
class Hay:
    """A haystack: documents of a length with the needle at a depth, and how to score a run."""

    name: str
    build: Callable[[int, int], str]
    question: str
    kept: Callable[[Any], bool]
    answered: Callable[[str], bool]


def essay_hay(tokenizer) -> Hay:
    builder = HaystackBuilder(load_essays(), tokenizer)
    return Hay(
        "paul_graham_essays",
        lambda tokens, depth: builder.build(tokens, depth).text,
        ESSAY_QUESTION,
        lambda r: retrieval_hit(r.context),
        answer_hit,
    )


def wiki_hay(tokenizer) -> Hay:
    prose = gpu_speed.Haystacks(tokenizer)
    return Hay(
        "wikipedia_prose",
        lambda tokens, depth: prose.build(tokens, depth / 100, rotate=depth),
        gpu_speed.QUESTION,
        gpu_speed.needle_kept,
        lambda text: gpu_speed.NEEDLE_WORD in text.lower(),
    )


def end_to_end(
    engine, doc: str, question: str, device: str, max_new_tokens: int = 128
) -> tuple[float, Any, Any]:
    """Seconds of ``retrieve`` + ``answer_from`` (128 new tokens at most: the default), synced."""
    gpu_speed.sync(device)
    start = time.perf_counter()
    retrieval = engine.retrieve(doc, question)
    answer = engine.answer_from(retrieval, max_new_tokens=max_new_tokens)
    gpu_speed.sync(device)
    return time.perf_counter() - start, retrieval, answer


def run_record(seconds: float, retrieval, answer, hay: Hay | None, device: str) -> dict:
    st = retrieval.stats
    out = {
        "seconds": round(seconds, 3),
        "scan_seconds": round(st.seconds, 3),
        "tokens_read": st.tokens_read,
        "doc_tokens_per_s": round(st.tokens_read / seconds),
        "tokens_processed": st.tokens_processed,
        "model_tokens_per_doc_token": round(answer.usage.prompt_tokens / st.tokens_read, 3),
        "forward_passes": st.forward_passes,
        "cache_tokens": st.cache_tokens,
        "answer": answer.text,
        "peak_gpu_mb": gpu_speed.peak_mb(device),
    }
    if hay is not None:
        out["needle_kept"] = hay.kept(retrieval)
        out["answer_names_needle"] = hay.answered(answer.text)
    return out


def settings_of(engine) -> dict:
    return {
        "chunk_tokens": engine.chunk_tokens,
        "batch_size": engine.batch_size,
        "setting": {k: engine.settings.as_dict()[k] for k in ("chunk_tokens", "batch_size")},
        "why": {k: choice.reason for k, choice in engine.sizing.items()},
    }


def load(device: str, options: dict, warmup: bool):
    from infiniretri import InfiniRetri

    start = time.perf_counter()
    engine = InfiniRetri.from_pretrained(device=device, warmup=False, **options)
    _ = engine.readout  # a calibration is a one-time cost per model (stored), kept out of both
    loaded = time.perf_counter() - start
    warm = engine.warmup() if warmup else None
    return engine, {"load_seconds": round(loaded, 2), "warmup_seconds": warm and round(warm, 2)}


# --------------------------------------------------------------------------- sections
def single(engines: dict, hays: list[Hay], args, deadline: Deadline, out: dict) -> None:
    device, n = args.device, max(2048, int(1_000_000 * args.scale))
    small = max(1024, int(256_000 * args.scale))
    for hay in hays:
        docs = {depth: hay.build(n, depth) for depth in DEPTHS}
        quarter = hay.build(small, 50)
        section = out.setdefault(hay.name, {"document_tokens": n})
        for name, engine in engines.items():
            if deadline.expired(args.run_margin):
                section.setdefault("skipped", []).append(name)
                continue
            gpu_speed.reset_peak(device)
            seconds, r, a = end_to_end(engine, docs[50], hay.question, device, args.new_tokens)
            cold = {"depth": 50, **run_record(seconds, r, a, hay, device)}
            warm = []
            for i in range(args.warm_runs):
                if deadline.expired(args.run_margin):
                    break
                depth = DEPTHS[i % len(DEPTHS)]
                gpu_speed.reset_peak(device)
                doc = docs[depth]
                seconds, r, a = end_to_end(engine, doc, hay.question, device, args.new_tokens)
                warm.append({"depth": depth, **run_record(seconds, r, a, hay, device)})
            gpu_speed.reset_peak(device)
            seconds, r, a = end_to_end(engine, quarter, hay.question, device, args.new_tokens)
            at_quarter = run_record(seconds, r, a, hay, device)
            times = [w["seconds"] for w in warm]
            result = {
                **settings_of(engine),
                "cold": cold,
                "warm": warm,
                "warm_median_seconds": statistics.median(times) if times else None,
                "cold_vs_warm_median": round(cold["seconds"] / statistics.median(times), 2)
                if times
                else None,
                "needle_kept_every_run": all(x["needle_kept"] for x in [cold, *warm]),
                "answer_names_needle_runs": sum(x["answer_names_needle"] for x in [cold, *warm]),
                "runs": 1 + len(warm),
                "peak_gpu_mb": {f"{small}": at_quarter["peak_gpu_mb"], f"{n}": cold["peak_gpu_mb"]},
                "quarter_length_run": at_quarter,
            }
            section[name] = result
            log(
                f"single {hay.name} {name} (chunk {engine.chunk_tokens}): cold {cold['seconds']}s, "
                f"warm median {result['warm_median_seconds']}s, needle every run "
                f"{result['needle_kept_every_run']}, peak {result['peak_gpu_mb']} MB"
            )


def scan_rate(retrievals: list, seconds: float) -> dict:
    read = sum(r.stats.tokens_read for r in retrievals)
    return {
        "seconds": round(seconds, 3),
        "doc_tokens_per_s": round(read / seconds),
        "needles_kept": sum(gpu_speed.needle_kept(r) for r in retrievals),
    }


def scan_all(engine, texts: list[str], single: bool, device: str) -> tuple[float, list]:
    """Seconds to retrieve for every text: one ``retrieve`` each, or one ``retrieve_batch``."""
    pairs = [(t, gpu_speed.QUESTION) for t in texts]
    gpu_speed.sync(device)
    start = time.perf_counter()
    got = [engine.retrieve(t, q) for t, q in pairs] if single else engine.retrieve_batch(pairs)
    gpu_speed.sync(device)
    return time.perf_counter() - start, got


def batch(engines: dict, tokenizer, args, deadline: Deadline, out: dict) -> None:
    device, count = args.device, args.batch
    n = max(1024, int(128_000 * args.scale))
    prose = gpu_speed.Haystacks(tokenizer)
    docs = [prose.build(n, (i + 0.5) / count, rotate=7 * i) for i in range(count)]
    small = [prose.build(max(1024, n // 4), 0.5, rotate=7 * i) for i in range(count)]
    out.update(documents=count, document_tokens=n)
    for name, base in engines.items():
        section = out.setdefault(name, {"chunk_tokens": base.chunk_tokens})
        variants = {
            "retrieve_batch, batch_size 16": base.with_options(batch_size=16),
            'retrieve_batch, batch_size "auto"': base.with_options(batch_size="auto"),
            "one retrieve per document": base,
        }
        for label, engine in variants.items():
            if deadline.expired(args.run_margin):
                section.setdefault("skipped", []).append(label)
                continue

            one = label.startswith("one")
            warm_s, _ = scan_all(engine, small, one, device)  # records the batch's shapes
            seconds, got = scan_all(engine, docs, one, device)
            section[label] = {
                "batch_size_in_use": engine.batch_size if not label.startswith("one") else 1,
                "warm_up_seconds": round(warm_s, 2),
                **scan_rate(got, seconds),
            }
            log(f"batch {name} {label}: {section[label]}")
        one = section.get("one retrieve per document", {}).get("doc_tokens_per_s")
        for label in list(section):
            if one and isinstance(section[label], dict) and "doc_tokens_per_s" in section[label]:
                section[label]["vs_one_by_one"] = round(section[label]["doc_tokens_per_s"] / one, 3)


def forward_flops(model, layer: int, passes: int, processed: int) -> float:
    """FLOPs of ``passes`` forwards over ``processed`` tokens up to ``layer``: 2 per weight per
    token in the layers below it and in the q, k and v projections of ``layer`` itself (its
    attention reads them, then the forward stops), plus causal attention (2 T^2 per attention
    unit, at the mean T: a lower bound of the sum over passes)."""
    config = model.config
    layers = model.model.layers
    weights = sum(p.numel() for p in layers[0].parameters() if p.dim() == 2)
    projections = layers[layer].self_attn
    qkv = sum(getattr(projections, n).weight.numel() for n in ("q_proj", "k_proj", "v_proj"))
    attn = config.num_attention_heads * (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    mean = processed / passes
    return layer * (2 * weights * processed + passes * 2 * mean * mean * attn) + 2 * qkv * processed


BIG_RUNS = (("today", TODAY), ("new", {}), ("new_eager_layers", {"compile_layers": False}))
"""The settings of the ``big`` section, each measured in a process of its own."""


def big(args, deadline: Deadline, out: dict) -> None:
    """Each of :data:`BIG_RUNS` in a child process (:func:`big_run`): a fresh process per
    setting, so that no setting inherits another's compiled code, graphs or allocator state."""
    for name, options in BIG_RUNS:
        if deadline.expired(args.run_margin):
            out.setdefault("skipped", []).append(name)
            continue
        child = child_run("--big-run", options, args)
        if child is None:
            out.setdefault("failed", []).append(name)
            continue
        out.update(child["model"])
        out[name] = child["record"]
        log(f"big {name}: {child['record']}")
    out["mfu_formula"] = (
        "scan FLOPs / scan seconds / peak: 2 FLOPs per weight per token in the layers below the "
        "retrieval layer and in its q, k and v projections, plus 2*T^2*heads*head_dim per layer "
        f"for causal attention at the mean window T; peak {args.peak_tflops} TFLOP/s (bf16 dense)"
    )


def big_run(options: dict, args) -> dict:
    """One setting of the ``big`` section on the 7B-shaped random model (a child's work)."""
    import os

    from infiniretri import InfiniRetri
    from infiniretri.testing import embedded_tokenizer

    device = args.device
    tokenizer = embedded_tokenizer()
    shape = dict(BIG)
    if args.scale < 0.05:  # a smoke test: the same code on a small model
        shape.update(hidden_size=256, num_hidden_layers=6, intermediate_size=512)
        shape.update(num_attention_heads=4, num_key_value_heads=2, vocab_size=49152)
    layer = min(BIG_LAYER, shape["num_hidden_layers"] - 1)
    start = time.perf_counter()
    model = gpu_speed.random_model(shape, device)
    n = max(1024, int(128_000 * args.scale))
    meta = {
        "model": "random weights, Qwen2-7B shape" if shape == BIG else f"smoke test {shape}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "retrieval_layer": layer,
        "document_tokens": n,
        "load_seconds": round(time.perf_counter() - start, 1),
        "process": "one per setting",
    }
    peak = args.peak_tflops * 1e12 if device.startswith("cuda") else None
    prose = gpu_speed.Haystacks(tokenizer)
    doc, first = prose.build(n, 0.5), prose.build(max(1024, n // 4), 0.5, rotate=5)
    engine = InfiniRetri(model, tokenizer, retrieval_layer=layer, **options)
    end_to_end(engine, first, gpu_speed.QUESTION, device, 4)  # most shapes recorded here
    first_s, _, _ = end_to_end(engine, doc, gpu_speed.QUESTION, device, args.new_tokens)
    warm = [end_to_end(engine, doc, gpu_speed.QUESTION, device, args.new_tokens)]
    warm += [end_to_end(engine, doc, gpu_speed.QUESTION, device, 1) for _ in range(2)]
    seconds, r, a = warm[0]  # end to end: the run with an answer
    r = sorted((w[1] for w in warm), key=lambda x: x.stats.seconds)[1]  # the median scan
    st = r.stats
    flops = forward_flops(model, layer, st.forward_passes, st.tokens_processed)
    record = {**settings_of(engine), **run_record(seconds, r, a, None, device)}
    record["first_run_seconds"] = round(first_s, 3)  # the measured runs follow it
    record["scan_seconds_warm"] = [round(w[1].stats.seconds, 3) for w in warm]
    record["compile_error"] = engine.compile_error
    record["process_id"] = os.getpid()
    record["scan_tokens_per_doc_token"] = round(st.tokens_processed / st.tokens_read, 3)
    record["scan_doc_tokens_per_s"] = round(st.tokens_read / st.seconds)
    record["scan_tflops_per_s"] = round(flops / st.seconds / 1e12, 1)
    if peak:
        record["mfu"] = round(flops / st.seconds / peak, 3)
    return {"model": meta, "record": record}


def cpu_configs(args) -> dict[str, tuple[dict, dict]]:
    """``{name: (engine options, environment)}`` of the CPU runs. Today's runs keep OpenMP's
    own waiting (``GOMP_SPINCOUNT`` at libgomp's default, so ``import infiniretri`` leaves it
    alone); the new ones let ``import infiniretri`` choose (``infiniretri.omp``)."""
    configs = {"today": (TODAY, {"GOMP_SPINCOUNT": "300000"}), "new": ({}, {})}
    for chunk in args.cpu_chunks:  # for the record, not defaults
        configs[f"new, chunk_tokens={chunk}"] = ({"chunk_tokens": chunk}, {})
    for variable in args.cpu_env:
        name, _, value = variable.partition("=")
        configs[f"new, {variable}"] = ({}, {name: value})
    return configs


def cpu(args, deadline: Deadline, out: dict) -> None:
    """The demo document on the CPU: each setting in its own process (the way CPU threads
    wait is fixed when torch loads), rounds alternating."""
    configs = cpu_configs(args)
    runs: dict[str, list] = {name: [] for name in configs}
    for _ in range(args.cpu_rounds):
        for name, (options, env) in configs.items():
            if deadline.expired(args.run_margin):
                break
            record = child_run("--cpu-run", options, args, env)
            if record:
                runs[name].append(record)
                log(f"cpu {name}: {record['seconds']}s, {record['doc_tokens_per_s']} doc tokens/s")
    for name, (_, env) in configs.items():
        if runs[name]:
            best = max(x["doc_tokens_per_s"] for x in runs[name])
            out[name] = {
                **{k: runs[name][0][k] for k in ("chunk_tokens", "batch_size", "setting", "why")},
                "environment": env,
                "best_doc_tokens_per_s": best,
                "runs": runs[name],
            }
    if not runs["today"]:
        return
    today = runs["today"][0]
    out.update(document_chars=today["document_chars"], question=DEMO_QUESTION)
    for name in runs:
        if name == "today" or not runs[name]:
            continue
        other = runs[name][0]
        out[name].update(
            same_answer_as_today=other["answer"] == today["answer"],
            same_sentences_as_today=other["sentences"] == today["sentences"],
            sentences_shared_with_today=len(set(other["sentences"]) & set(today["sentences"])),
            sentences_today=len(today["sentences"]),
            vs_today=round(
                out[name]["best_doc_tokens_per_s"] / out["today"]["best_doc_tokens_per_s"], 3
            ),
        )


def child_run(flag: str, payload: dict, args, env: dict | None = None) -> dict | None:
    """``flag payload`` (a child's run: ``--cpu-run`` or ``--big-run``) in a child process, its
    result, or ``None`` if it wrote none. The child's environment is this one without the OpenMP
    waiting variables (``import infiniretri`` may have set them here), plus ``env``."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "run.json"
        command = [sys.executable, "-m", "bench.speed_defaults", flag, json.dumps(payload)]
        command += ["--device", args.device, "--scale", str(args.scale)]
        command += ["--new-tokens", str(args.new_tokens), "--peak-tflops", str(args.peak_tflops)]
        command += ["--out", str(target)]
        base = {
            k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
        }
        subprocess.run(command, env={**base, **(env or {})}, cwd=ROOT, check=False)
        if not target.is_file():
            return None
        return json.loads(target.read_text(encoding="utf-8"))


def cpu_run(options: dict, args) -> dict:
    """The demo document, retrieve + answer, on the CPU with ``options`` (a child's work)."""
    import os

    from infiniretri import InfiniRetri

    doc = DEMO.read_text(encoding="utf-8")
    if args.scale < 0.05:
        doc = doc[: max(2000, int(len(doc) * args.scale * 10))]
    engine = InfiniRetri.from_pretrained(device="cpu", **options)
    _ = engine.readout
    seconds, r, a = end_to_end(engine, doc, DEMO_QUESTION, "cpu", args.new_tokens)
    record = {**settings_of(engine), **run_record(seconds, r, a, None, "cpu")}
    record.update(
        sentences=[s.text for s in r.sentences],
        document_chars=len(doc),
        threads=torch.get_num_threads(),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        gomp_spincount=os.environ.get("GOMP_SPINCOUNT"),
        load_average=round(os.getloadavg()[0], 2),
    )
    return record


# --------------------------------------------------------------------------- the README table
def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.2f}"
    elif isinstance(value, int) and value >= 10_000:
        value = f"{value:,}"
    return f"{value}{unit}"


def table(result: dict) -> str:
    """The README's speed rows (markdown) from a result file: today's settings against the
    new defaults."""
    rows = ["| what | today (chunk 1024, batch 16) | new defaults |", "|---|---|---|"]

    def row(what: str, today: str, new: str) -> None:
        rows.append(f"| {what} | {today} | {new} |")

    for name, hay in result.get("single", {}).items():
        if not isinstance(hay, dict) or "today" not in hay:
            continue
        t, n = hay["today"], hay.get("new", {})

        def cell(x: dict) -> str:
            if not x:
                return "-"
            return (
                f"{_fmt(x.get('warm_median_seconds'), ' s')} warm median of "
                f"{len(x.get('warm', []))}, cold {_fmt(x.get('cold', {}).get('seconds'), ' s')}"
                f" (chunk {x.get('chunk_tokens')}); needle kept in "
                f"{'every run' if x.get('needle_kept_every_run') else 'NOT every run'}, named "
                f"in {x.get('answer_names_needle_runs')} of {x.get('runs')} answers"
            )

        what = f"{hay.get('document_tokens', 0):,}-token document ({name}), retrieve + answer"
        row(what, cell(t), cell(n))

        def peak(x: dict) -> str:
            return " / ".join(f"{_fmt(v, ' MB')}" for v in x.get("peak_gpu_mb", {}).values())

        row(f"peak GPU memory, 1/4 length / full length ({name})", peak(t), peak(n))
    batch = result.get("batch", {})
    for label in (
        []
        if "today" not in batch
        else ("retrieve_batch, batch_size 16", 'retrieve_batch, batch_size "auto"')
    ):
        cells = []
        for name in ("today", "new"):
            runs = batch.get(name, {})
            x, one = runs.get(label, {}), runs.get("one retrieve per document", {})
            cells.append(
                f"{_fmt(x.get('doc_tokens_per_s'))} doc tokens/s, "
                f"{_fmt(x.get('vs_one_by_one'))}x one by one "
                f"({_fmt(one.get('doc_tokens_per_s'))}; chunk {runs.get('chunk_tokens')})"
                if x
                else "-"
            )
        docs = f"{batch.get('documents')} x {batch.get('document_tokens', 0):,} tokens"
        row(f"{docs}: {label}", *cells)
    big = result.get("big", {})
    if "today" in big or "new" in big:
        cells = []
        for name in ("today", "new"):
            x = big.get(name, {})
            cells.append(
                f"{_fmt(x.get('model_tokens_per_doc_token'))} tokens through the model per doc "
                f"token, MFU {_fmt(x.get('mfu'))}, {_fmt(x.get('scan_doc_tokens_per_s'))} doc "
                f"tokens/s (chunk {x.get('chunk_tokens')})"
                if x
                else "-"
            )
        row(f"{big.get('model')}, one {_fmt(big.get('document_tokens'))}-token document", *cells)
        x = big.get("new_eager_layers")
        if x:
            row(
                "the same, new defaults but `compile_layers=False`",
                "-",
                f"{_fmt(x.get('model_tokens_per_doc_token'))} tokens through the model per doc "
                f"token, MFU {_fmt(x.get('mfu'))}, {_fmt(x.get('scan_doc_tokens_per_s'))} doc "
                f"tokens/s (chunk {x.get('chunk_tokens')})",
            )
    cpu_runs = result.get("cpu", {})
    if "today" in cpu_runs:
        t, n = cpu_runs["today"], cpu_runs.get("new", {})
        row(
            "CPU, demo document and question, retrieve + answer",
            f"{_fmt(t.get('best_doc_tokens_per_s'))} doc tokens/s",
            f"{_fmt(n.get('best_doc_tokens_per_s'))} doc tokens/s ({_fmt(n.get('vs_today'))}x); "
            f"same answer: {n.get('same_answer_as_today')}, same sentences: "
            f"{n.get('same_sentences_as_today')}",
        )
    return "\n".join(rows)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every size")
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the whole run")
    parser.add_argument("--run-margin", type=float, default=15.0, help="seconds a run may take")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--batch", type=int, default=16, help="documents of the batch section")
    parser.add_argument("--cpu-rounds", type=int, default=2)
    parser.add_argument(
        "--cpu-chunks", type=int, nargs="*", default=[], help="also time these chunks (cpu)"
    )
    parser.add_argument(
        "--cpu-env", nargs="*", default=[], help="also time NAME=VALUE in a child process (cpu)"
    )
    parser.add_argument("--cpu-run", default=None, help=argparse.SUPPRESS)  # a child's run
    parser.add_argument("--big-run", default=None, help=argparse.SUPPRESS)  # a child's run
    parser.add_argument("--warm-runs", type=int, default=WARM_RUNS)
    parser.add_argument("--new-tokens", type=int, default=128, help="answer length limit")
    parser.add_argument("--peak-tflops", type=float, default=H200_BF16_FLOPS / 1e12)
    parser.add_argument("--merge", default=None, help="keep other sections of this result file")
    parser.add_argument("--out", default=str(RESULTS_DIR / "speed_defaults.json"))
    parser.add_argument("--table", default=None, help="print the README rows of this file")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text(encoding="utf-8"))))
        return 0
    for payload, child in ((args.cpu_run, cpu_run), (args.big_run, big_run)):
        if payload is not None:  # a child's run (child_run): its options in, its record out
            record = child(json.loads(payload), args)
            Path(args.out).write_text(json.dumps(record), encoding="utf-8")
            return 0
    deadline = Deadline(args.deadline)
    started = time.perf_counter()

    result: dict[str, Any] = {"benchmark": "speed_defaults", "today": TODAY, "new": "defaults"}
    if args.merge and Path(args.merge).is_file():
        earlier = json.loads(Path(args.merge).read_text(encoding="utf-8"))
        result.update({k: v for k, v in earlier.items() if k in SECTIONS})
    result.update(device=args.device, scale=args.scale, sections_run=args.sections)
    out = Path(args.out)

    def save() -> None:
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        write_json(out, result)

    def section(name: str, run: Callable[[dict], None]) -> None:
        if name not in args.sections:
            return
        data = result[name] = {"machine": machine_info(), "date": time.strftime("%F %T")}
        try:
            run(data)
        except Exception as err:  # keep the other sections' numbers
            import traceback

            traceback.print_exc()
            data["error"] = f"{type(err).__name__}: {err}"
        data["seconds"] = round(time.perf_counter() - started, 1)
        save()

    from infiniretri.testing import embedded_tokenizer

    tokenizer = embedded_tokenizer()
    engines: dict = {}
    if {"single", "batch"} & set(args.sections):
        today, today_load = load(args.device, TODAY, warmup=False)
        new, new_load = load(args.device, {}, warmup=args.device.startswith("cuda"))
        engines = {"today": today, "new": new}
        result["engines"] = {"today": today_load, "new": new_load}
        log(f"engines: {result['engines']}")

    def hays() -> list[Hay]:
        found = []
        for make in (essay_hay, wiki_hay):
            try:
                found.append(make(tokenizer))
            except FileNotFoundError as err:
                log(f"haystack skipped: {err}")
        return found

    section("single", lambda data: single(engines, hays(), args, deadline, data))
    section("batch", lambda data: batch(engines, tokenizer, args, deadline, data))
    engines.clear()
    gc.collect()
    section("big", lambda data: big(args, deadline, data))
    section("cpu", lambda data: cpu(args, deadline, data))
    save()
    log(f"wrote {out} in {result['total_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
