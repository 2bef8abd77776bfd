"""InfiniRetriQueryEngine with the real embedded model: answers, source nodes, streaming, async."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.query import QueryEndEvent, QueryStartEvent
from llama_index.core.instrumentation.events.retrieval import (
    RetrievalEndEvent,
    RetrievalStartEvent,
)
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.tools import QueryEngineTool
from llama_index.retrievers.infiniretri import InfiniRetriQueryEngine

MAX_NEW_TOKENS = 12


class EventRecorder(BaseEventHandler):
    """Keeps every instrumentation event it is handed."""

    events: list = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventRecorder"

    def handle(self, event, **kwargs) -> None:
        self.events.append(event)


@pytest.fixture(scope="module")
def observed_query(engine, needle, needle_document):
    """One query, watched by an instrumentation event handler, a span handler and callbacks."""
    root = get_dispatcher()
    recorder = EventRecorder()
    spans = SimpleSpanHandler()
    root.add_event_handler(recorder)
    root.add_span_handler(spans)
    debug = LlamaDebugHandler()
    query_engine = InfiniRetriQueryEngine.from_documents(
        [needle_document],
        engine=engine,
        max_new_tokens=MAX_NEW_TOKENS,
        callback_manager=CallbackManager([debug]),
    )
    try:
        response = query_engine.query(needle.question)
    finally:
        root.event_handlers.remove(recorder)
        root.span_handlers.remove(spans)
    return query_engine, response, recorder.events, spans, debug


def test_answer_names_the_needle_and_the_needle_is_a_source_node(observed_query, needle):
    _, response, _, _, _ = observed_query
    assert isinstance(response, Response)
    assert needle.key in response.response
    assert needle.sentence in [n.node.get_content() for n in response.source_nodes]


def test_source_nodes_are_the_cache_one_sentence_each_in_document_order(
    observed_query, needle, needle_document
):
    _, response, _, _, _ = observed_query
    nodes = response.source_nodes
    assert len(nodes) > 1
    starts = [n.node.start_char_idx for n in nodes]
    assert starts == sorted(starts)
    for n in nodes:
        assert isinstance(n.node, TextNode)
        assert isinstance(n.score, float)
        assert n.node.get_content() in needle.sentences  # one whole sentence, not a chunk
        assert n.node.metadata == needle_document.metadata
    stats = response.metadata["infiniretri"]
    assert stats["tokens_read"] > 512  # more than one chunk was read
    usage = stats["usage"]  # infiniretri.Usage: every token the model read, and wrote
    assert 0 < usage["completion_tokens"] <= MAX_NEW_TOKENS
    assert usage["scan_tokens"] == stats["tokens_processed"]
    assert usage["prompt_tokens"] == (
        usage["scan_tokens"] + usage["rescore_tokens"] + usage["answer_prompt_tokens"]
    )
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # The cache is a selection: fewer sentences and tokens than were read.
    assert len(nodes) < stats["sentences_read"]
    assert stats["cache_tokens"] < stats["tokens_read"]


def test_offsets_and_source_relationship_map_back_to_the_document(observed_query, needle_document):
    _, response, _, _, _ = observed_query
    for n in response.source_nodes:
        node = n.node
        source = node.relationships[NodeRelationship.SOURCE]
        assert source.node_id == needle_document.doc_id
        assert node.ref_doc_id == needle_document.doc_id
        assert needle_document.text[node.start_char_idx : node.end_char_idx] == node.text


def test_needle_is_among_the_best_scored_sentences(observed_query, needle):
    _, response, _, _, _ = observed_query
    best = sorted(response.source_nodes, key=lambda n: n.score, reverse=True)[:3]
    assert needle.sentence in [n.node.text for n in best]


def test_instrumentation_events_fire_for_query_and_retrieval(observed_query, needle):
    _, response, events, _, _ = observed_query
    kinds = [type(e) for e in events]
    for kind in (QueryStartEvent, RetrievalStartEvent, RetrievalEndEvent, QueryEndEvent):
        assert kind in kinds, kind.__name__
    order = [kinds.index(k) for k in (QueryStartEvent, RetrievalStartEvent)]
    order += [kinds.index(k) for k in (RetrievalEndEvent, QueryEndEvent)]
    assert order == sorted(order)
    retrieval_end = next(e for e in events if isinstance(e, RetrievalEndEvent))
    assert [n.node.text for n in retrieval_end.nodes] == [
        n.node.text for n in response.source_nodes
    ]
    query_end = next(e for e in events if isinstance(e, QueryEndEvent))
    assert query_end.response is response


def test_spans_nest_retrieval_inside_the_query(observed_query):
    _, _, _, spans, _ = observed_query
    by_id = {s.id_: s for s in spans.completed_spans}
    names = {s.id_.rsplit("-", 5)[0] for s in by_id.values()}
    assert "InfiniRetriQueryEngine.query" in names
    assert "InfiniRetriCacheScan.retrieve" in names
    retrieve = next(s for s in by_id.values() if s.id_.startswith("InfiniRetriCacheScan.retrieve"))
    ancestors = []
    parent = retrieve.parent_id
    while parent in by_id:
        ancestors.append(parent.rsplit("-", 5)[0])
        parent = by_id[parent].parent_id
    assert "InfiniRetriQueryEngine.query" in ancestors


def test_callback_manager_sees_query_and_retrieve(observed_query, needle):
    _, response, _, _, debug = observed_query
    (query_start, query_end), *_ = debug.get_event_pairs(CBEventType.QUERY)
    assert query_start.payload["query_str"] == needle.question
    assert query_end.payload["response"] is response
    (_, retrieve_end), *_ = debug.get_event_pairs(CBEventType.RETRIEVE)
    assert len(retrieve_end.payload["nodes"]) == len(response.source_nodes)
    assert debug.get_event_pairs(CBEventType.SYNTHESIZE)


def test_query_engine_tool_returns_the_answer_with_source_nodes(observed_query, needle):
    query_engine, response, _, _, _ = observed_query
    tool = QueryEngineTool.from_defaults(
        query_engine, name="valley_notes", description="Answers questions about the valley notes."
    )
    output = tool.call(needle.question)
    assert output.content == response.response  # greedy decoding: the same answer again
    assert needle.key in output.content
    assert isinstance(output.raw_output, Response)
    assert [n.node.text for n in output.raw_output.source_nodes] == [
        n.node.text for n in response.source_nodes
    ]


def test_a_free_answer_streams_piece_by_piece(engine, needle):
    free = engine.with_options(answer_quote=0)
    options = dict(engine=free, max_new_tokens=MAX_NEW_TOKENS)
    whole = InfiniRetriQueryEngine.from_documents([needle.text()], **options).query(needle.question)
    streaming = InfiniRetriQueryEngine.from_documents(
        [needle.text()], streaming=True, **options
    ).query(needle.question)
    pieces = list(streaming.response_gen)
    assert len(pieces) > 1
    assert "".join(pieces) == whole.response


def test_streaming_yields_pieces_that_join_to_the_answer(engine, needle, observed_query):
    _, response, _, _, _ = observed_query
    query_engine = InfiniRetriQueryEngine.from_documents(
        [needle.text()], engine=engine, streaming=True, max_new_tokens=MAX_NEW_TOKENS
    )
    streaming = query_engine.query(needle.question)
    assert isinstance(streaming, StreamingResponse)
    assert needle.sentence in [n.node.text for n in streaming.source_nodes]
    pieces = list(streaming.response_gen)
    assert pieces  # a quoted answer arrives once its quote backs it (often whole)
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == response.response


def test_aquery_answers_without_blocking_the_event_loop(engine, needle, observed_query):
    _, response, _, _, _ = observed_query
    query_engine = InfiniRetriQueryEngine.from_documents(
        [needle.text()], engine=engine, max_new_tokens=MAX_NEW_TOKENS
    )

    async def main():
        ticks = 0
        task = asyncio.create_task(query_engine.aquery(needle.question))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.05)
        return ticks, await task

    ticks, async_response = asyncio.run(main())
    assert ticks > 3  # the loop kept running while the model worked
    assert isinstance(async_response, Response)
    assert async_response.response == response.response
    assert needle.sentence in [n.node.text for n in async_response.source_nodes]


def test_aquery_streaming_yields_pieces_as_written(engine, needle, observed_query):
    _, response, _, _, _ = observed_query
    query_engine = InfiniRetriQueryEngine.from_documents(
        [needle.text()], engine=engine, streaming=True, max_new_tokens=MAX_NEW_TOKENS
    )

    async def main():
        streaming = await query_engine.aquery(needle.question)
        assert isinstance(streaming, AsyncStreamingResponse)
        return [piece async for piece in streaming.async_response_gen()]

    pieces = asyncio.run(main())
    assert pieces  # a quoted answer arrives once its quote backs it (often whole)
    assert "".join(pieces) == response.response
