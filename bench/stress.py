"""Stress checks: concurrency, cancellation and flat memory, at full size, on this machine.

    python bench/stress.py                       # everything; writes bench/results/stress.json
    python bench/stress.py section               # bench/RELIABILITY_SECTION.md from that JSON
    python bench/stress.py memory --tokens 20000 200000 --out -   # memory only, JSON to stdout

A tiny random-weight Llama (64 hidden units, 2 layers, the embedded tokenizer; attention read at
layer 0, default chunk and cache settings) stands in for a real model: it is fast on a CPU, and
the checks are about the engine and the integrations, not about answer quality. Torch runs one
thread (the model is tiny; more threads only fight the worker threads over the cores).

1. Concurrency: 32 concurrent LangChain ``retriever.ainvoke`` and 32 concurrent LlamaIndex
   ``query_engine.aquery`` calls, each with its own question, over one shared engine, against
   the same calls made one at a time. Counts failures and mismatches (any difference in
   returned sentences, scores, offsets or answer text), heartbeat ticks of the event loop while
   scans were in flight, and the most scans in flight at once.
2. Cancellation: 32 concurrent calls again; every other one is cancelled as soon as its scan has
   read its first chunk. Cancelled scans must stop within one chunk (``ScanCancelled``), the
   others must match their one-at-a-time results, and the engine must still answer afterwards.
3. Memory: a document of N generated tokens (random words in random sentences, made here and
   written to a temporary file) is streamed from its path through the engine; peak RSS and the
   peak of Python allocations (tracemalloc) are recorded after each size, smallest first, in a
   fresh process. The growth from the first size to the last must stay under 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from infiniretri import InfiniRetri, ScanCancelled
from infiniretri.testing import tiny_model

RESULTS = Path(__file__).resolve().parent / "results" / "stress.json"
CALLS = 32
MEMORY_BOUND_MB = 100.0
GUARD_S = 3600  # a hang guard only; nothing is judged on time

SYLLABLES = (
    "ka lo mi ren tas vel dor an si pe tru gal hon ber ris fa mun zel cor ith op lem sa "
    "quo ny ver bal tin cho ru de mar ox wen lis pra gu"
).split()


# --------------------------------------------------------------------------- the document
def random_words(rng: random.Random, count: int) -> list[str]:
    """A vocabulary of ``count`` made-up words, 1-4 syllables each."""
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def random_sentence(rng: random.Random, vocabulary: list[str]) -> str:
    words = [rng.choice(vocabulary) for _ in range(rng.randint(4, 24))]
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), str(rng.randint(1, 99999)))
    return " ".join(words).capitalize() + rng.choice(".....!?;")


def write_document(path: Path, tokens: int, tokenizer, seed: int = 0) -> int:
    """Write random sentences to ``path`` until they hold at least ``tokens`` tokens.

    Written a paragraph at a time, so making it takes no more memory than reading it.
    Returns the tokens written (counted as the engine reads sentences: with a leading space).
    """
    rng = random.Random(seed)
    vocabulary = random_words(rng, 5000)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        while written < tokens:
            paragraph = [random_sentence(rng, vocabulary) for _ in range(rng.randint(3, 12))]
            counts = tokenizer([" " + s for s in paragraph], add_special_tokens=False)
            written += sum(len(ids) for ids in counts["input_ids"])
            handle.write(" ".join(paragraph) + rng.choice(["\n\n", "\r\n\r\n", " ", "\n"]))
    return written


# --------------------------------------------------------------------------- the engine
def tiny_engine(cls: type[InfiniRetri] = InfiniRetri, **options: Any) -> InfiniRetri:
    model, tokenizer = tiny_model("llama", layers=2)
    settings = {"chunk_tokens": 1024, "top_k_tokens": 300, "retrieval_layer": 0, **options}
    return cls(model, tokenizer, **settings)


class WatchedEngine(InfiniRetri):
    """The real engine; counts scans in flight and each scan's chunks, before and after cancel.

    ``on_first_chunk(question)`` is called from the worker thread after a scan's first chunk.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self.most_in_flight = 0
        self.outcomes: list[dict[str, Any]] = []
        self.on_first_chunk = None
        self._watch_lock = threading.Lock()

    def retrieve(self, source, question, *, progress=None, cancel=None):
        record = {"question": question, "chunks": 0, "after_cancel": 0, "outcome": None}
        with self._watch_lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

        def watch(tokens: int) -> None:
            record["chunks"] += 1
            if cancel is not None and cancel.is_set():
                record["after_cancel"] += 1  # a chunk that finished after the cancel
            if record["chunks"] == 1 and self.on_first_chunk is not None:
                self.on_first_chunk(question)
            if progress is not None:
                progress(tokens)

        try:
            result = super().retrieve(source, question, progress=watch, cancel=cancel)
            record["outcome"] = "finished"
            return result
        except ScanCancelled:
            record["outcome"] = "cancelled"
            raise
        except BaseException as error:
            record["outcome"] = type(error).__name__
            raise
        finally:
            with self._watch_lock:
                self.in_flight -= 1
                self.outcomes.append(record)


def questions(count: int) -> list[str]:
    rng = random.Random(1)
    vocabulary = random_words(rng, 200)
    return [f"Where did the {rng.choice(vocabulary)} go in part {i}?" for i in range(count)]


# --------------------------------------------------------------------------- integrations
def langchain_call(engine: InfiniRetri, text: str):
    from langchain_infiniretri import InfiniRetriRetriever

    retriever = InfiniRetriRetriever.from_texts([text], engine=engine, k=4)

    def view(docs) -> list[tuple]:
        return [(d.id, d.page_content, d.metadata) for d in docs]

    return "langchain.InfiniRetriRetriever.ainvoke", retriever.invoke, retriever.ainvoke, view


def llamaindex_call(engine: InfiniRetri, text: str):
    from llama_index.retrievers.infiniretri import InfiniRetriQueryEngine

    query_engine = InfiniRetriQueryEngine.from_documents([text], engine=engine, max_new_tokens=4)

    def view(response) -> tuple:
        stats = {k: v for k, v in response.metadata["infiniretri"].items() if k != "seconds"}
        nodes = [
            (n.node.node_id, n.node.get_content(), n.score, n.node.start_char_idx)
            for n in response.source_nodes
        ]
        return response.response, nodes, stats

    return "llamaindex.InfiniRetriQueryEngine.aquery", query_engine.query, query_engine.aquery, view


async def _heartbeat(engine: WatchedEngine, stop: asyncio.Event, ticks: list[int]) -> None:
    while not stop.is_set():
        if engine.in_flight:
            ticks[0] += 1
        await asyncio.sleep(0.005)


async def _concurrent(engine: WatchedEngine, acall, qs: list[str], cancel_every: int = 0):
    """Run ``acall(q)`` for every question at once; cancel every ``cancel_every``-th one as soon
    as its scan has read one chunk. Returns (results or exceptions, heartbeat ticks)."""
    loop = asyncio.get_running_loop()
    tasks: dict[str, asyncio.Task] = {}
    doomed = {q for i, q in enumerate(qs) if cancel_every and i % cancel_every == 0}

    def first_chunk(question: str) -> None:
        if question in doomed:
            loop.call_soon_threadsafe(tasks[question].cancel)

    engine.on_first_chunk = first_chunk
    stop, ticks = asyncio.Event(), [0]
    beat = asyncio.create_task(_heartbeat(engine, stop, ticks))
    try:
        for q in qs:
            tasks[q] = asyncio.create_task(acall(q))
        results = await asyncio.wait_for(
            asyncio.gather(*tasks.values(), return_exceptions=True), GUARD_S
        )
    finally:
        engine.on_first_chunk = None
        stop.set()
        await beat
    return results, ticks[0], doomed


def check_integration(make_call, engine: WatchedEngine, text: str) -> dict[str, dict[str, Any]]:
    """The concurrency and cancellation rounds of one integration."""
    name, call, acall, view = make_call(engine, text)
    qs = questions(CALLS)
    started = time.perf_counter()
    alone = [view(call(q)) for q in qs]
    sequential_s = time.perf_counter() - started

    engine.outcomes.clear()
    engine.most_in_flight = 0
    started = time.perf_counter()
    results, ticks, _ = asyncio.run(_concurrent(engine, acall, qs))
    concurrent_s = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    mismatches = sum(
        1
        for r, expected in zip(results, alone)
        if not isinstance(r, BaseException) and view(r) != expected
    )
    concurrency = {
        "calls": CALLS,
        "failures": len(failures),
        "failure_types": sorted({type(f).__name__ for f in failures}),
        "mismatches": mismatches,
        "distinct_results": len({json.dumps(a, default=str) for a in alone}),
        "most_scans_in_flight": engine.most_in_flight,
        "heartbeat_ticks_during_scans": ticks,
        "seconds_one_at_a_time": round(sequential_s, 2),
        "seconds_concurrent": round(concurrent_s, 2),
    }

    engine.outcomes.clear()
    results, _, doomed = asyncio.run(_concurrent(engine, acall, qs, cancel_every=2))
    by_question = {o["question"]: o for o in engine.outcomes}
    cancelled_ok = [
        q
        for q in doomed
        if isinstance(results[qs.index(q)], asyncio.CancelledError)
        and by_question[q]["outcome"] == "cancelled"
    ]
    survivors = [i for i, q in enumerate(qs) if q not in doomed]
    survivor_failures = sum(1 for i in survivors if isinstance(results[i], BaseException))
    survivor_mismatches = sum(
        1
        for i in survivors
        if not isinstance(results[i], BaseException) and view(results[i]) != alone[i]
    )
    usable = view(call(qs[0])) == alone[0]
    cancellation = {
        "calls": CALLS,
        "cancelled": len(doomed),
        "cancelled_scans_stopped": len(cancelled_ok),
        "max_chunks_read_after_cancel": max(by_question[q]["after_cancel"] for q in doomed),
        "max_chunks_read_by_a_cancelled_scan": max(by_question[q]["chunks"] for q in doomed),
        "chunks_of_a_full_scan": max(o["chunks"] for o in engine.outcomes),
        "survivor_failures": survivor_failures,
        "survivor_mismatches": survivor_mismatches,
        "engine_usable_after": usable,
    }
    return {name: {"concurrency": concurrency, "cancellation": cancellation}}


# --------------------------------------------------------------------------- memory
def _peak_rss_mb() -> float:
    """Peak resident memory of this process's address space (``VmHWM``), in MiB.

    Not ``ru_maxrss``: that one keeps the peak of the parent process this one was forked from.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _reset_peak_rss() -> bool:
    """Start a new peak (Linux: ``5`` to ``/proc/self/clear_refs``); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def offsets_exact(path: Path, sentences) -> bool:
    """``file[char_start:char_end] == text`` for every sentence, reading only those bytes.

    The generated text is ASCII, so character offsets are byte offsets.
    """
    with path.open("rb") as handle:
        for s in sentences:
            handle.seek(s.char_start)
            if handle.read(s.char_end - s.char_start).decode("ascii") != s.text:
                return False
    return bool(sentences)


def check_memory(sizes: list[int]) -> dict[str, Any]:
    """Stream generated documents of ``sizes`` tokens from files; peak memory after each."""
    engine = tiny_engine()
    runs = []
    with tempfile.TemporaryDirectory(prefix="infiniretri-stress-") as folder:
        warm = Path(folder) / "warm.txt"
        write_document(warm, 2000, engine.tokenizer, seed=99)
        engine.retrieve(warm, "What is this?")  # one-time allocations before measuring
        tracemalloc.start()
        for tokens in sorted(sizes):
            path = Path(folder) / f"doc-{tokens}.txt"
            written = write_document(path, tokens, engine.tokenizer, seed=tokens)
            tracemalloc.reset_peak()
            reset = _reset_peak_rss()
            started = time.perf_counter()
            retrieval = engine.retrieve(path, "Where did the quorisbal go?")
            seconds = time.perf_counter() - started
            rss = _peak_rss_mb()
            heap = tracemalloc.get_traced_memory()[1]
            runs.append(
                {
                    "tokens_requested": tokens,
                    "tokens_written": written,
                    "tokens_read": retrieval.stats.tokens_read,
                    "file_mb": round(path.stat().st_size / 2**20, 2),
                    "forward_passes": retrieval.stats.forward_passes,
                    "cache_tokens": retrieval.stats.cache_tokens,
                    "offsets_exact": offsets_exact(path, retrieval.sentences),
                    "scan_seconds": round(seconds, 2),
                    "peak_rss_mb": round(rss, 1),
                    "peak_rss_reset_before_run": reset,
                    "python_heap_peak_mb": round(heap / 2**20, 2),
                }
            )
            path.unlink()
        tracemalloc.stop()
    first, last = runs[0], runs[-1]
    growth = last["peak_rss_mb"] - first["peak_rss_mb"]
    return {
        "runs": runs,
        "rss_growth_mb": round(growth, 1),
        "python_heap_growth_mb": round(
            last["python_heap_peak_mb"] - first["python_heap_peak_mb"], 2
        ),
        "bound_mb": MEMORY_BOUND_MB,
        "within_bound": growth < MEMORY_BOUND_MB,
    }


def memory_in_fresh_process(sizes: list[int]) -> dict[str, Any]:
    """``check_memory`` in a new process: peak RSS is per process, and this one has been busy."""
    command = [sys.executable, str(Path(__file__).resolve()), "memory", "--out", "-", "--tokens"]
    done = subprocess.run(
        [*command, *map(str, sizes)], capture_output=True, text=True, timeout=GUARD_S
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"the memory check failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


# --------------------------------------------------------------------------- main
def run_all(doc_tokens: int, sizes: list[int]) -> dict[str, Any]:
    engine = tiny_engine(WatchedEngine)
    with tempfile.TemporaryDirectory(prefix="infiniretri-stress-") as folder:
        path = Path(folder) / "doc.txt"
        write_document(path, doc_tokens, engine.tokenizer, seed=5)
        text = path.read_text(encoding="utf-8")
    integrations: dict[str, Any] = {}
    for make_call in (langchain_call, llamaindex_call):
        print(f"stress: {make_call.__name__} ...", file=sys.stderr, flush=True)
        integrations.update(check_integration(make_call, engine, text))
    print("stress: memory ...", file=sys.stderr, flush=True)
    memory = memory_in_fresh_process(sizes)
    calls = sum(
        r["concurrency"]["calls"] + r["cancellation"]["calls"] for r in integrations.values()
    )
    failures = sum(
        r["concurrency"]["failures"] + r["cancellation"]["survivor_failures"]
        for r in integrations.values()
    )
    mismatches = sum(
        r["concurrency"]["mismatches"] + r["cancellation"]["survivor_mismatches"]
        for r in integrations.values()
    )
    stopped = all(
        r["cancellation"]["cancelled_scans_stopped"] == r["cancellation"]["cancelled"]
        and r["cancellation"]["max_chunks_read_after_cancel"] <= 1
        and r["cancellation"]["engine_usable_after"]
        for r in integrations.values()
    )
    return {
        "model": {
            "kind": "tiny random-weight Llama (tests' infiniretri.testing.tiny_model)",
            "layers": 2,
            "hidden_size": 64,
            "tokenizer": "embedded SmolLM2-135M tokenizer",
            "engine": {"chunk_tokens": 1024, "top_k_tokens": 300, "retrieval_layer": 0},
            "torch_threads": torch.get_num_threads(),
        },
        "document_tokens": engine.count_tokens(text),
        "integrations": integrations,
        "memory": memory,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "summary": {
            "async_calls": calls,
            "calls_one_at_a_time": sum(
                r["concurrency"]["calls"] + 1 for r in integrations.values()
            ),
            "failures": failures,
            "mismatches": mismatches,
            "cancelled_scans_stopped_within_one_chunk": stopped,
            "memory_growth_mb": memory["rss_growth_mb"],
            "memory_within_bound": memory["within_bound"],
            "ok": failures == 0 and mismatches == 0 and stopped and memory["within_bound"],
        },
    }


SECTION = Path(__file__).resolve().parent / "RELIABILITY_SECTION.md"


def render_section(results: dict[str, Any]) -> str:
    """The README's reliability section; every number in it comes from ``results``."""
    lc = results["integrations"]["langchain.InfiniRetriRetriever.ainvoke"]
    li = results["integrations"]["llamaindex.InfiniRetriQueryEngine.aquery"]
    memory, summary, machine = results["memory"], results["summary"], results["meta"]["machine"]
    small, large = memory["runs"][0], memory["runs"][-1]

    def concurrency(r: dict[str, Any]) -> str:
        c = r["concurrency"]
        return (
            f"{c['failures']} failures, {c['mismatches']} mismatches against the same "
            f"{c['calls']} calls made one at a time ({c['distinct_results']} distinct results); "
            f"up to {c['most_scans_in_flight']} scans in flight; the event loop ticked "
            f"{c['heartbeat_ticks_during_scans']} times while scans ran"
        )

    def cancellation(r: dict[str, Any]) -> str:
        c = r["cancellation"]
        return (
            f"{c['cancelled_scans_stopped']} of {c['cancelled']} scans stopped, at most "
            f"{c['max_chunks_read_after_cancel']} chunk read after the cancel (a full scan reads "
            f"{c['chunks_of_a_full_scan']}); the other {c['calls'] - c['cancelled']} calls: "
            f"{c['survivor_failures']} failures, {c['survivor_mismatches']} mismatches; engine "
            f"usable afterwards: {'yes' if c['engine_usable_after'] else 'NO'}"
        )

    n_lc, n_li = lc["concurrency"]["calls"], li["concurrency"]["calls"]
    rows = [
        (
            f"{n_lc} concurrent LangChain `retriever.ainvoke`, each with its own question, "
            f"over a {results['document_tokens']:,}-token document",
            concurrency(lc),
        ),
        (
            f"{n_li} concurrent LlamaIndex `query_engine.aquery` (scan and answer), same document",
            concurrency(li),
        ),
        (
            f"the same {n_lc} LangChain calls, every other one cancelled after its scan's "
            "first chunk",
            cancellation(lc),
        ),
        (f"the same {n_li} LlamaIndex calls, every other one cancelled", cancellation(li)),
        (
            f"a generated document streamed from a file: {small['tokens_read']:,} then "
            f"{large['tokens_read']:,} tokens",
            f"peak RSS {small['peak_rss_mb']} MB then {large['peak_rss_mb']} MB: "
            f"{memory['rss_growth_mb']} MB more for "
            f"{large['tokens_read'] / small['tokens_read']:.0f}x the text (bound: "
            f"{memory['bound_mb']:.0f} MB); Python objects at peak {small['python_heap_peak_mb']}"
            f" MB then {large['python_heap_peak_mb']} MB; offsets exact: "
            f"{'yes' if small['offsets_exact'] and large['offsets_exact'] else 'NO'}",
        ),
    ]
    table = "\n".join(f"| {check} | {result} |" for check, result in rows)
    setting = (
        f"a tiny random-weight Llama on a {machine['cpu_count']}-core {machine['cpu']} CPU, "
        f"torch on {results['model']['torch_threads']} thread"
    )
    return (
        SECTION_TEMPLATE.replace("{setting}", setting)
        .replace("{table}", table)
        .replace("{calls}", str(summary["async_calls"]))
        .replace("{failures}", str(summary["failures"]))
        .replace("{mismatches}", str(summary["mismatches"]))
    )


SECTION_TEMPLATE = """## Reliability

InfiniRetri is built to sit behind chains, query pipelines and agents that serve many requests.
`bench/stress.py` checks that at full size and writes `bench/results/stress.json`, quoted here.
Setting: {setting}.
The checks are about the engine and the integrations, not answer quality; every call shares one
engine.

| check | result |
|---|---|
{table}

In all, {calls} concurrent async calls: {failures} failures, {mismatches} mismatches.

The test suite holds the same properties at every public entry point (the engine, `infiniretri
ask`, the LangChain and LlamaIndex classes):

- **Bad input** gets a `ValueError` naming the argument (or exit status 2 and one line on stderr
  from the CLI), never a crash from inside torch or a hang: empty or whitespace documents, empty
  or non-string questions, invalid numbers, a directory, undecodable bytes (with their offset),
  NUL-filled text; a bad question or number is refused before any model work. A tokenizer
  without a chat template gets the documented plain-text prompt. A multi-megabyte document with
  no whitespace is read to its end, and no text longer than a capped sentence ever reaches the
  tokenizer.
- **Offsets are exact**: property-based tests (hypothesis) over random Unicode (combining marks,
  CJK, emoji, `\\r\\n`, control characters, special-token text), random sentence shapes, piece
  boundaries, chunk sizes and sentence caps check `document[char_start:char_end] == text`, that
  sentences never overlap and that no non-space character is dropped, from the sentence
  splitter up to the engine reading a file.
- **Concurrency and cancellation**: concurrent calls match one-at-a-time calls; a scan held
  mid-flight proves the event loop keeps running; cancelling any async call of either
  integration (retrievers, compressor, query engines, LLMs, chat model, tool, postprocessor,
  streams) stops its scan before its next chunk and leaves the engine usable.
- **Memory** stays flat as a streamed file grows (a smaller version of the check above runs in
  the test suite).
- **Safety**: `trust_remote_code` is off unless the caller turns it on (custom model code never
  runs by default, through the engine or the integrations); weights load from safetensors or
  GGUF only, never from pickle files, unless the caller passes `allow_pickle=True`; document text
  is never used as a path (only `os.PathLike` opens a file), never formatted or evaluated, and
  text that spells a special token (`<|im_end|>`) is read as text, not as that token.

Reproduce with `python bench/stress.py` (it rewrites the JSON and this section).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["all", "memory", "section"], default="all")
    parser.add_argument("--tokens", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--doc-tokens", type=int, default=20_000, help="concurrency document")
    parser.add_argument("--out", default=str(RESULTS), help="JSON file, or - for stdout")
    args = parser.parse_args(argv)
    if args.what == "section":
        SECTION.write_text(render_section(json.loads(RESULTS.read_text())), encoding="utf-8")
        print(f"stress: wrote {SECTION}", file=sys.stderr)
        return 0
    torch.set_num_threads(1)
    payload = (
        check_memory(args.tokens)
        if args.what == "memory"
        else run_all(args.doc_tokens, args.tokens)
    )
    if args.out == "-":
        print(json.dumps(payload, indent=1))
    else:
        from bench.common import write_json

        print(f"stress: wrote {write_json(Path(args.out), payload)}", file=sys.stderr)
        if args.what == "all" and Path(args.out).resolve() == RESULTS:
            SECTION.write_text(render_section(json.loads(RESULTS.read_text())), encoding="utf-8")
    ok = payload["within_bound"] if args.what == "memory" else payload["summary"]["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
