"""Reliability of every LlamaIndex class: bad input gets a specific error, odd input works.

A tiny random-weight engine keeps this fast. Concurrency and cancellation across both
integrations are in the repository's ``tests/test_reliability_async.py``.
"""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.llms.infiniretri import InfiniRetriLLM
from llama_index.postprocessor.infiniretri import InfiniRetriNodePostprocessor
from llama_index.retrievers.infiniretri import InfiniRetriQueryEngine, InfiniRetriRetriever

from infiniretri import InfiniRetri
from infiniretri.testing import silent_engine, tiny_model

QUESTION = "Where is the mill?"


class CountingEngine(InfiniRetri):
    """The real engine, counting the scans it starts."""

    scans = 0

    def retrieve(self, source, question, **kwargs):
        type(self).scans += 1
        return super().retrieve(source, question, **kwargs)


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_model("llama", layers=2)
    return CountingEngine(model, tokenizer, chunk_tokens=64, top_k_tokens=24, retrieval_layer=1)


@pytest.fixture(scope="module")
def silent(tiny):
    """An engine whose model only ever writes a special token: every answer is empty."""
    return silent_engine(tiny)


NUL_TEXT = "Readable start. \x00\x00\x00 binary junk."


def test_a_nul_document_is_refused_by_every_class(tiny):
    with pytest.raises(ValueError, match="NUL"):
        InfiniRetriQueryEngine.from_documents([NUL_TEXT], engine=tiny).query(QUESTION)
    with pytest.raises(ValueError, match="NUL"):
        asyncio.run(InfiniRetriQueryEngine.from_documents([NUL_TEXT], engine=tiny).aquery(QUESTION))
    with pytest.raises(ValueError, match="NUL"):
        InfiniRetriRetriever.from_documents([NUL_TEXT], engine=tiny).retrieve(QUESTION)
    with pytest.raises(ValueError, match="NUL"):
        InfiniRetriLLM(engine=tiny).complete(f"{NUL_TEXT}\n\nQuestion: {QUESTION}")
    nodes = [NodeWithScore(node=TextNode(text=NUL_TEXT), score=1.0)]
    with pytest.raises(ValueError, match="NUL"):
        InfiniRetriNodePostprocessor(engine=tiny).postprocess_nodes(nodes, query_str=QUESTION)


@pytest.mark.parametrize("query", [None, 42, b"Where?", ["Where?"]])
def test_a_query_that_is_not_text_fails_before_any_scan(tiny, query):
    query_engine = InfiniRetriQueryEngine.from_documents(["Some text here."], engine=tiny)
    retriever = query_engine.as_retriever()
    before = CountingEngine.scans
    message = f"query must be a string or a QueryBundle, got {type(query).__name__}"
    with pytest.raises(ValueError, match=message):
        query_engine.query(query)
    with pytest.raises(ValueError, match=message):
        retriever.retrieve(query)
    with pytest.raises(ValueError, match=message):
        asyncio.run(query_engine.aquery(query))
    with pytest.raises(ValueError, match=message):
        asyncio.run(retriever.aretrieve(query))
    assert CountingEngine.scans == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_tokens": 0}, "chunk_tokens must be a positive integer"),
        ({"top_k_tokens": -1}, "top_k_tokens must be a positive integer"),
        ({"phrase_tokens": 2.5}, "phrase_tokens must be a positive integer"),
        ({"max_cache_tokens": "64"}, "max_cache_tokens must be a positive integer"),
        ({"retrieval_layer": 99}, "retrieval_layer=99 is out of range"),
    ],
)
def test_invalid_engine_numbers_fail_at_construction(tiny, options, message):
    for build in (
        lambda: InfiniRetriQueryEngine.from_documents(["Text."], engine=tiny, **options),
        lambda: InfiniRetriRetriever.from_documents(["Text."], engine=tiny, **options),
        lambda: InfiniRetriLLM(engine=tiny, **options),
        lambda: InfiniRetriNodePostprocessor(engine=tiny, **options),
    ):
        with pytest.raises(ValueError, match=message):
            build()


def test_an_unbroken_100kb_document_is_read_with_exact_offsets(tiny):
    text = "x" * 100_000 + " The vault code is 8812."
    engine = tiny.with_options(chunk_tokens=1024, retrieval_layer=0)
    nodes = InfiniRetriRetriever.from_documents([text], engine=engine).retrieve(QUESTION)
    assert nodes
    for n in nodes:
        assert text[n.node.start_char_idx : n.node.end_char_idx] == n.node.text
        assert len(n.node.text) <= 2000  # cut before tokenizing


def test_text_that_names_a_file_is_read_as_text(tiny, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 8812.", encoding="utf-8")
    response = InfiniRetriQueryEngine.from_documents(
        [str(secret)], engine=tiny, max_new_tokens=2
    ).query("What is the vault code?")
    assert [n.node.text for n in response.source_nodes] == [str(secret)]


def test_an_empty_answer_streams_without_error(silent):
    """Found by issue 7: an answer with no text made LlamaIndex's stream wrapper crash."""
    llm = InfiniRetriLLM(engine=silent, max_new_tokens=3)
    prompt = f"Some text here. More text there.\n\nQuestion: {QUESTION}"
    assert llm.complete(prompt).text == ""
    assert [r.text for r in llm.stream_complete(prompt)] == [""]

    async def astream() -> list[str]:
        return [r.delta async for r in await llm.astream_complete(prompt)]

    assert asyncio.run(astream()) == [""]
    chat = list(llm.stream_chat([ChatMessage(role="user", content=prompt)]))
    assert chat[-1].message.content == ""
    streaming = InfiniRetriQueryEngine.from_documents(
        ["Some text here."], engine=silent, streaming=True, max_new_tokens=3
    ).query(QUESTION)
    assert streaming.get_response().response == ""


# -- prompt splitting: linear time on any text -------------------------------------------------
# The splitter's equivalence with the old regexes and its linear time are tested once, on the
# shared core (the repository's tests/test_integration_core.py); here, through the LLM.


def test_the_llm_reads_a_prompt_with_a_dotted_leader(tiny):
    prompt = "Chapter one " + "." * 100_000 + f" 5\n\nQuestion: {QUESTION}"
    engine = tiny.with_options(chunk_tokens=1024, retrieval_layer=0)
    assert isinstance(InfiniRetriLLM(engine=engine, max_new_tokens=2).complete(prompt).text, str)
