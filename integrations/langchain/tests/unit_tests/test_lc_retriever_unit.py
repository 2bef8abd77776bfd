"""InfiniRetriRetriever plumbing, on a tiny random-weight engine (scores are noise, offsets not)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from infiniretri import InfiniRetri, ScanCancelled
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document

from langchain_infiniretri import InfiniRetriRetriever


def test_documents_carry_metadata_offsets_and_ids(tiny_engine, needle_text):
    texts = [needle_text.text, "A second short document. It has three sentences. This is one."]
    retriever = InfiniRetriRetriever.from_texts(
        texts, metadatas=[{"source": "a.txt"}, {"source": "b.txt"}], engine=tiny_engine, k=6
    )
    docs = retriever.invoke(needle_text.question)
    assert len(docs) == 6
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    for doc in docs:
        meta = doc.metadata
        source = texts[meta["doc_index"]]
        assert source[meta["char_start"] : meta["char_end"]] == doc.page_content
        assert meta["source"] == ("a.txt", "b.txt")[meta["doc_index"]]
        assert doc.id
    assert len({d.id for d in docs}) == len(docs)
    again = retriever.invoke(needle_text.question)
    assert [d.id for d in again] == [d.id for d in docs]


def test_source_ids_make_sentence_ids_and_ride_along(tiny_engine, needle_text):
    retriever = InfiniRetriRetriever.from_texts(
        [needle_text.text], ids=["doc-1"], engine=tiny_engine, k=2
    )
    other = InfiniRetriRetriever.from_texts(
        [needle_text.text], ids=["doc-2"], engine=tiny_engine, k=2
    )
    docs = retriever.invoke(needle_text.question)
    assert all(d.metadata["source_id"] == "doc-1" for d in docs)
    other_docs = other.invoke(needle_text.question)
    assert [d.page_content for d in docs] == [d.page_content for d in other_docs]
    assert {d.id for d in docs}.isdisjoint(d.id for d in other_docs)


def test_k_field_and_per_call_override(tiny_engine, needle_text):
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine, k=3)
    assert len(retriever.invoke(needle_text.question)) == 3
    one = retriever.invoke(needle_text.question, k=1)
    assert len(one) == 1
    assert one[0] == retriever.invoke(needle_text.question)[0]
    assert retriever.k == 3


def test_from_documents_keeps_metadata_and_routes_engine_settings(tiny_engine, needle_text):
    docs = [Document(page_content=needle_text.text, metadata={"page": 7}, id="p7")]
    retriever = InfiniRetriRetriever.from_documents(
        docs, engine=tiny_engine, k=2, tags=["mine"], chunk_tokens=32
    )
    assert retriever.k == 2
    assert retriever.tags == ["mine"]
    assert retriever.engine_kwargs == {"chunk_tokens": 32}
    assert retriever.get_engine().chunk_tokens == 32
    assert tiny_engine.chunk_tokens == 64  # the shared engine is left as it was
    result = retriever.invoke(needle_text.question)
    assert all(d.metadata["page"] == 7 and d.metadata["source_id"] == "p7" for d in result)


def test_batch_runs_each_question(tiny_engine, needle_text):
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine, k=2)
    questions = [needle_text.question, "Where do gulls nest?"]
    results = retriever.batch(questions)
    assert [len(r) for r in results] == [2, 2]
    assert results[0] == retriever.invoke(questions[0])
    assert results[1] == retriever.invoke(questions[1])


async def test_ainvoke_matches_invoke_and_leaves_the_loop_free(tiny_engine, needle_text):
    long_text = " ".join([needle_text.text] * 6)
    retriever = InfiniRetriRetriever.from_texts([long_text], engine=tiny_engine, k=3)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    docs = await retriever.ainvoke(needle_text.question, k=2)
    ticks_during_scan = ticks
    done.set()
    await ticking
    assert ticks_during_scan > 1
    assert docs == retriever.invoke(needle_text.question, k=2)


async def test_abatch(tiny_engine, needle_text):
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine, k=1)
    results = await retriever.abatch([needle_text.question, "Where do gulls nest?"])
    assert [len(r) for r in results] == [1, 1]


class _RecordingEngine(InfiniRetri):
    """The real engine, noting the cancel event of each scan and how the scan ended."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started = threading.Event()
        self.cancel_events: list[object] = []
        self.outcomes: list[str] = []

    def retrieve(self, source, question, *, progress=None, cancel=None):
        self.cancel_events.append(cancel)

        def note_progress(tokens: int) -> None:
            self.started.set()

        try:
            result = super().retrieve(source, question, progress=note_progress, cancel=cancel)
        except ScanCancelled:
            self.outcomes.append("cancelled")
            raise
        self.outcomes.append("finished")
        return result


async def test_cancelling_ainvoke_stops_the_scan(tiny_engine, needle_text):
    engine = _RecordingEngine(
        tiny_engine.model,
        tiny_engine.tokenizer,
        chunk_tokens=16,
        top_k_tokens=8,
        retrieval_layer=-1,
    )
    # Hundreds of chunks: far from done when the task is cancelled.
    long_text = " ".join([needle_text.text] * 40)
    retriever = InfiniRetriRetriever.from_texts([long_text], engine=engine)
    task = asyncio.create_task(retriever.ainvoke(needle_text.question))
    assert await asyncio.to_thread(engine.started.wait, 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (cancel,) = engine.cancel_events
    assert cancel is not None and cancel.is_set()
    for _ in range(600):  # the worker thread notices within one chunk
        if engine.outcomes:
            break
        await asyncio.sleep(0.05)
    assert engine.outcomes == ["cancelled"]


def test_tags_metadata_and_callbacks_pass_through(tiny_engine, needle_text):
    events: list[tuple[str, object]] = []

    class Handler(BaseCallbackHandler):
        def on_retriever_start(self, serialized, query, *, tags=None, metadata=None, **kwargs):
            events.append(("start", (query, tags, metadata)))

        def on_retriever_end(self, documents, **kwargs):
            events.append(("end", documents))

    retriever = InfiniRetriRetriever.from_texts(
        [needle_text.text], engine=tiny_engine, k=1, tags=["own-tag"], metadata={"own": 1}
    )
    docs = retriever.invoke(
        needle_text.question,
        config={"callbacks": [Handler()], "tags": ["call-tag"], "metadata": {"call": 2}},
    )
    (start, query_tags_meta), (end, ended_with) = events
    query, tags, metadata = query_tags_meta
    assert (start, end) == ("start", "end")
    assert query == needle_text.question
    assert {"own-tag", "call-tag"} <= set(tags)
    assert metadata["own"] == 1 and metadata["call"] == 2
    assert ended_with == docs


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], "texts is empty"),
        ("just one string", "single string"),
        ([42], r"texts\[0\] must be a string"),
        (["ok", "   "], r"documents\[1\] has empty page_content"),
    ],
)
def test_from_texts_rejects_bad_texts(tiny_engine, texts, message):
    with pytest.raises(ValueError, match=message):
        InfiniRetriRetriever.from_texts(texts, engine=tiny_engine)


def test_from_texts_rejects_mismatched_metadatas(tiny_engine):
    with pytest.raises(ValueError, match="metadatas has 1 items but texts has 2"):
        InfiniRetriRetriever.from_texts(["a.", "b."], metadatas=[{}], engine=tiny_engine)


def test_from_documents_rejects_empty_list(tiny_engine):
    with pytest.raises(ValueError, match="documents is empty"):
        InfiniRetriRetriever.from_documents([], engine=tiny_engine)


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", True])
def test_k_below_one_or_not_an_int_is_rejected(tiny_engine, needle_text, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine, k=k)
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        retriever.invoke(needle_text.question, k=k)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (42, "query must be a string"),
        (None, "query must be a string"),
        ("  ", "query must be a non-empty string"),
    ],
)
async def test_bad_query_is_rejected(tiny_engine, needle_text, query, message):
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine)
    with pytest.raises(ValueError, match=message):
        retriever.invoke(query)
    with pytest.raises(ValueError, match=message):
        await retriever.ainvoke(query)


def test_retriever_without_documents_says_so(tiny_engine):
    retriever = InfiniRetriRetriever(engine=tiny_engine)
    with pytest.raises(ValueError, match="InfiniRetriRetriever has no documents"):
        retriever.invoke("anything?")


def test_unknown_call_keyword_is_an_error(tiny_engine, needle_text):
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine)
    with pytest.raises(TypeError, match="top_k"):
        retriever.invoke(needle_text.question, top_k=2)


def test_engine_and_model_together_are_rejected(tiny_engine):
    with pytest.raises(ValueError, match="either a loaded engine or a model"):
        InfiniRetriRetriever(
            documents=[Document(page_content="x.")], engine=tiny_engine, model="/some/model"
        )


def test_bad_engine_setting_fails_at_construction(tiny_engine, needle_text):
    with pytest.raises(ValueError, match="unknown engine options"):
        InfiniRetriRetriever.from_texts([needle_text.text], engine=tiny_engine, chunk_size=100)


def test_no_model_is_loaded_until_first_use():
    retriever = InfiniRetriRetriever.from_texts(["One sentence. Another one."])
    assert retriever.engine is None
    assert not retriever._holder.loaded
    assert retriever.model_name  # known without loading
