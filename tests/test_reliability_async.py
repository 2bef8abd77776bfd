"""Async reliability of the LangChain and LlamaIndex integrations over one shared engine.

- 32 concurrent calls with different questions return exactly what the same calls return one
  at a time; nothing deadlocks; the event loop serves other coroutines while scans run.
- Cancelling any async call stops its scan within one chunk, and the engine stays usable.

A tiny random-weight model keeps this fast; its answers are noise but deterministic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
from collections.abc import Awaitable, Callable

import pytest
import torch

from infiniretri import InfiniRetri, ScanCancelled
from infiniretri.testing import tiny_model

lc = pytest.importorskip("langchain_infiniretri")
li = pytest.importorskip("llama_index.retrievers.infiniretri")
li_llms = pytest.importorskip("llama_index.llms.infiniretri")
li_postprocessor = pytest.importorskip("llama_index.postprocessor.infiniretri")
from langchain_core.documents import Document as LCDocument  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

CALLS = 32
DEADLOCK_GUARD_S = 600  # only a guard against a hang; nothing asserts on time

WORDS = (
    "harbour mill river stone chapel bell market cheese wool boat storm gull bridge bakery "
    "frost tower lantern orchard ferry quarry meadow archive compass anchor barley pier"
).split()


def prose(sentences: int, seed: int) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 14))]
        out.append(" ".join(words).capitalize() + rng.choice([".", ".", "!", "?"]))
    return " ".join(out)


QUESTIONS = [f"Where is the {WORDS[i % len(WORDS)]} of item {i}?" for i in range(CALLS)]


@dataclasses.dataclass
class ScanRecord:
    chunks: int = 0
    outcome: str | None = None
    ended: threading.Event = dataclasses.field(default_factory=threading.Event)


class WatchedEngine(InfiniRetri):
    """The real engine; records every scan (chunks read, outcome) and can hold one at a chunk.

    With ``hold_at = n`` a scan waits after its n-th chunk until ``release`` is set, so a test
    can act while a scan is certainly in flight.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hold_at: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        self.released_in_time: list[bool] = []
        self.scans: list[ScanRecord] = []
        self.in_flight = 0
        self._watch_lock = threading.Lock()

    def retrieve(self, source, question, *, progress=None, cancel=None):
        record = ScanRecord()
        with self._watch_lock:
            self.scans.append(record)
            self.in_flight += 1

        def watch(tokens: int) -> None:
            record.chunks += 1
            if record.chunks == self.hold_at:
                self.held.set()
                self.released_in_time.append(self.release.wait(120))
            if progress is not None:
                progress(tokens)

        try:
            result = super().retrieve(source, question, progress=watch, cancel=cancel)
        except ScanCancelled:
            record.outcome = "cancelled"
            raise
        except BaseException as error:
            record.outcome = type(error).__name__
            raise
        finally:
            with self._watch_lock:
                self.in_flight -= 1
            record.ended.set()
        record.outcome = "finished"
        return result


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Pin torch to one thread while this module runs (restored after): the model is tiny, and
    six worker threads each starting a team of torch threads oversubscribe a small machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return tiny_model("llama", layers=2)


@pytest.fixture
def engine(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    return WatchedEngine(model, tokenizer, chunk_tokens=48, top_k_tokens=24, retrieval_layer=1)


@pytest.fixture(scope="module")
def document() -> str:
    return prose(45, seed=7)  # about 500 tokens: ten chunks or more


# -- concurrency ---------------------------------------------------------------------------------


async def gather_with_heartbeat(engine: WatchedEngine, calls: list[Awaitable]) -> tuple[list, int]:
    """Run ``calls`` concurrently; count heartbeat ticks seen while a scan was in flight."""
    ticks_during_scans = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks_during_scans
        while not stop.is_set():
            if engine.in_flight:
                ticks_during_scans += 1
            await asyncio.sleep(0.002)

    beat = asyncio.create_task(heartbeat())
    try:
        results = await asyncio.wait_for(asyncio.gather(*calls), DEADLOCK_GUARD_S)
    finally:
        stop.set()
        await beat
    return results, ticks_during_scans


async def test_32_concurrent_langchain_ainvoke_match_one_at_a_time(engine, document):
    retriever = lc.InfiniRetriRetriever.from_texts(
        [document, prose(20, seed=8)], engine=engine, metadatas=[{"n": 0}, {"n": 1}]
    )
    ks = [1 + i % 4 for i in range(CALLS)]
    one_at_a_time = [retriever.invoke(q, k=k) for q, k in zip(QUESTIONS, ks)]
    calls = [retriever.ainvoke(q, k=k) for q, k in zip(QUESTIONS, ks)]
    together, ticks = await gather_with_heartbeat(engine, calls)
    assert together == one_at_a_time
    assert len({tuple(d.id for d in docs) for docs in together}) > 1  # the questions differ
    assert ticks > 0  # the loop ran other coroutines while scans were in flight
    assert [s.outcome for s in engine.scans] == ["finished"] * (2 * CALLS)


def _answer_view(response) -> tuple:
    stats = {k: v for k, v in response.metadata["infiniretri"].items() if k != "seconds"}
    nodes = [(n.node.node_id, n.node.get_content(), n.score) for n in response.source_nodes]
    return response.response, nodes, stats


async def test_32_concurrent_llamaindex_aquery_match_one_at_a_time(engine, document):
    query_engine = li.InfiniRetriQueryEngine.from_documents(
        [document], engine=engine, max_new_tokens=3
    )
    one_at_a_time = [_answer_view(query_engine.query(q)) for q in QUESTIONS]
    together, ticks = await gather_with_heartbeat(
        engine, [query_engine.aquery(q) for q in QUESTIONS]
    )
    assert [_answer_view(r) for r in together] == one_at_a_time
    assert len({view[1][0][0] for view in one_at_a_time}) > 1
    assert ticks > 0
    assert [s.outcome for s in engine.scans] == ["finished"] * (2 * CALLS)


@pytest.mark.parametrize("integration", ["langchain", "llamaindex"])
async def test_the_loop_runs_other_coroutines_while_a_scan_is_in_flight(
    engine, document, integration
):
    """The scan waits after its first chunk until the loop has ticked a heartbeat three times.

    If the scan ran on the event loop, the heartbeat could not tick while it waits: the wait
    would time out and the test fail. Nothing here depends on how fast anything runs.
    """
    if integration == "langchain":
        call = lc.InfiniRetriRetriever.from_texts([document], engine=engine).ainvoke
    else:
        call = li.InfiniRetriQueryEngine.from_documents(
            [document], engine=engine, max_new_tokens=2
        ).aquery
    engine.hold_at = 1
    task = asyncio.create_task(call("Where is the mill?"))
    assert await asyncio.to_thread(engine.held.wait, 120)
    ticks = 0
    for _ in range(3):
        await asyncio.sleep(0)
        ticks += 1
    engine.release.set()
    await asyncio.wait_for(task, DEADLOCK_GUARD_S)
    assert ticks == 3 and engine.released_in_time == [True]
    assert engine.scans[-1].outcome == "finished"


# -- cancellation -----------------------------------------------------------------------------


def _langchain_calls(engine: InfiniRetri, document: str) -> dict[str, Callable[[], Awaitable]]:
    retriever = lc.InfiniRetriRetriever.from_texts([document], engine=engine)
    compressor = lc.InfiniRetriCompressor(engine=engine)
    llm = lc.InfiniRetriLLM(engine=engine, max_tokens=3)
    chat = lc.ChatInfiniRetri(engine=engine, max_tokens=3)
    tool = lc.create_infiniretri_tool([document], engine=engine, max_tokens=3)
    question = "Where is the mill?"
    messages = [("system", document), ("human", question)]

    async def drain(stream) -> list:
        return [piece async for piece in stream]

    return {
        "retriever.ainvoke": lambda: retriever.ainvoke(question),
        "compressor.acompress_documents": lambda: compressor.acompress_documents(
            [LCDocument(page_content=document)], question
        ),
        "llm.ainvoke": lambda: llm.ainvoke(question, context=document),
        "llm.astream": lambda: drain(llm.astream(question, context=document)),
        "chat.ainvoke": lambda: chat.ainvoke(messages),
        "chat.astream": lambda: drain(chat.astream(messages)),
        "tool.ainvoke": lambda: tool.ainvoke({"question": question}),
    }


def _llamaindex_calls(engine: InfiniRetri, document: str) -> dict[str, Callable[[], Awaitable]]:
    retriever = li.InfiniRetriRetriever.from_documents([document], engine=engine)
    query_engine = li.InfiniRetriQueryEngine.from_documents(
        [document], engine=engine, max_new_tokens=3
    )
    streaming = li.InfiniRetriQueryEngine.from_documents(
        [document], engine=engine, streaming=True, max_new_tokens=3
    )
    llm = li_llms.InfiniRetriLLM(engine=engine, max_new_tokens=3)
    postprocessor = li_postprocessor.InfiniRetriNodePostprocessor(engine=engine)
    nodes = [NodeWithScore(node=TextNode(text=document), score=1.0)]
    question = "Where is the mill?"

    async def stream_query() -> str:
        response = await streaming.aquery(question)
        return "".join([piece async for piece in response.async_response_gen()])

    async def stream_complete() -> str:
        return "".join([r.delta async for r in await llm.astream_complete(prompt)])

    prompt = f"{document}\n\nQuestion: {question}"
    return {
        "retriever.aretrieve": lambda: retriever.aretrieve(question),
        "query_engine.aquery": lambda: query_engine.aquery(question),
        "query_engine.aquery(streaming)": stream_query,
        "llm.acomplete": lambda: llm.acomplete(prompt),
        "llm.astream_complete": stream_complete,
        "postprocessor.apostprocess_nodes": lambda: postprocessor.apostprocess_nodes(
            nodes, query_str=question
        ),
    }


def _comparable(result):
    """Results of two runs, comparable (timings dropped)."""
    if hasattr(result, "source_nodes"):
        return result.response, [(n.node.node_id, n.score) for n in result.source_nodes]
    if hasattr(result, "text") and hasattr(result, "raw"):
        return result.text
    if hasattr(result, "content"):
        return result.content, result.response_metadata.get("cited_sentences")
    if isinstance(result, list):
        return [_comparable(r) for r in result]
    if isinstance(result, NodeWithScore):
        return result.node.node_id, result.score
    return result


LANGCHAIN_CALLS = [
    "retriever.ainvoke",
    "compressor.acompress_documents",
    "llm.ainvoke",
    "llm.astream",
    "chat.ainvoke",
    "chat.astream",
    "tool.ainvoke",
]
LLAMAINDEX_CALLS = [
    "retriever.aretrieve",
    "query_engine.aquery",
    "query_engine.aquery(streaming)",
    "llm.acomplete",
    "llm.astream_complete",
    "postprocessor.apostprocess_nodes",
]


@pytest.mark.parametrize(
    ("integration", "name"),
    [("langchain", n) for n in LANGCHAIN_CALLS] + [("llamaindex", n) for n in LLAMAINDEX_CALLS],
)
async def test_cancelling_stops_the_scan_within_one_chunk(engine, document, integration, name):
    make = _langchain_calls if integration == "langchain" else _llamaindex_calls
    call = make(engine, document)[name]
    before = _comparable(await call())
    full = engine.scans[-1]
    assert full.outcome == "finished" and full.chunks >= 6

    engine.hold_at = 2  # the next scan waits after its second chunk
    task = asyncio.create_task(call())
    assert await asyncio.to_thread(engine.held.wait, 120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    engine.release.set()
    cancelled = engine.scans[-1]
    assert await asyncio.to_thread(cancelled.ended.wait, 120)
    assert cancelled.outcome == "cancelled"
    assert cancelled.chunks == 2  # no chunk was started after the cancel

    engine.hold_at = None
    after = _comparable(await call())  # the engine is still usable, with the same result
    assert after == before
    assert engine.scans[-1].outcome == "finished"
