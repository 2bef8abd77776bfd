"""Reliability of every LangChain class: bad input gets a specific error, odd input works.

Concurrency and cancellation across both integrations are in the repository's
``tests/test_reliability_async.py``.
"""

from __future__ import annotations

import asyncio

import pytest
from infiniretri import InfiniRetri
from infiniretri.testing import silent_engine, tiny_model
from langchain_core.documents import Document

from langchain_infiniretri import (
    ChatInfiniRetri,
    InfiniRetriCompressor,
    InfiniRetriLLM,
    InfiniRetriRetriever,
    create_infiniretri_tool,
)

QUESTION = "Where is the mill?"
NUL_TEXT = "Readable start. \x00\x00\x00 binary junk."


class CountingEngine(InfiniRetri):
    """The real engine, counting the scans it starts."""

    scans = 0

    def retrieve(self, source, question, **kwargs):
        type(self).scans += 1
        return super().retrieve(source, question, **kwargs)


@pytest.fixture(scope="module")
def tiny() -> CountingEngine:
    model, tokenizer = tiny_model("llama", layers=2)
    return CountingEngine(model, tokenizer, chunk_tokens=64, top_k_tokens=24, retrieval_layer=1)


@pytest.fixture(scope="module")
def silent(tiny) -> InfiniRetri:
    """An engine whose model only ever writes a special token: every answer is empty."""
    return silent_engine(tiny)


def test_a_nul_document_is_refused_by_every_class(tiny):
    retriever = InfiniRetriRetriever.from_texts([NUL_TEXT], engine=tiny)
    with pytest.raises(ValueError, match="NUL"):
        retriever.invoke(QUESTION)
    with pytest.raises(ValueError, match="NUL"):
        asyncio.run(retriever.ainvoke(QUESTION))
    with pytest.raises(ValueError, match="NUL"):
        InfiniRetriCompressor(engine=tiny).compress_documents(
            [Document(page_content=NUL_TEXT)], QUESTION
        )
    with pytest.raises(ValueError, match="NUL"):
        InfiniRetriLLM(engine=tiny, max_tokens=2).invoke(QUESTION, context=NUL_TEXT)
    with pytest.raises(ValueError, match="NUL"):
        ChatInfiniRetri(engine=tiny, max_tokens=2).invoke([("system", NUL_TEXT), ("human", "Q?")])
    tool = create_infiniretri_tool([NUL_TEXT], engine=tiny, max_tokens=2)
    with pytest.raises(ValueError, match="NUL"):
        tool.invoke({"question": QUESTION})


@pytest.mark.parametrize("question", [None, 42, b"Where?", ["Where?"], {"q": 1}])
def test_a_question_that_is_not_text_fails_before_any_scan(tiny, question):
    """Our checks name the argument; LangChain's own input coercion answers for the models."""
    before = CountingEngine.scans
    retriever = InfiniRetriRetriever.from_texts(["Some text here."], engine=tiny)
    with pytest.raises(ValueError, match="query must be a string"):
        retriever.invoke(question)
    with pytest.raises(ValueError, match="query must be a string"):
        asyncio.run(retriever.ainvoke(question))
    with pytest.raises(ValueError, match="query must be a string"):
        InfiniRetriCompressor(engine=tiny).compress_documents(
            [Document(page_content="Some text.")], question
        )
    tool = create_infiniretri_tool(["Some text here."], engine=tiny, max_tokens=2)
    if isinstance(question, bytes):  # the tool's schema (pydantic) decodes UTF-8 bytes
        assert isinstance(tool.invoke({"question": question}), str)
    else:
        with pytest.raises(ValueError, match="question"):
            tool.invoke({"question": question})
    if not isinstance(question, list):  # a list of strings is a valid list of messages
        model_errors = (ValueError, TypeError, NotImplementedError)
        with pytest.raises(model_errors):
            InfiniRetriLLM(engine=tiny, max_tokens=2).invoke(question)
        with pytest.raises(model_errors):
            ChatInfiniRetri(engine=tiny, max_tokens=2).invoke(question)
    if not isinstance(question, bytes):
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
        lambda: InfiniRetriRetriever.from_texts(["Text."], engine=tiny, **options),
        lambda: InfiniRetriCompressor(engine=tiny, engine_kwargs=options),
        lambda: InfiniRetriLLM(engine=tiny, engine_kwargs=options),
        lambda: ChatInfiniRetri(engine=tiny, engine_kwargs=options),
        lambda: create_infiniretri_tool(["Text."], engine=tiny, **options),
    ):
        with pytest.raises(ValueError, match=message):
            build()


def test_whitespace_only_inputs(tiny):
    with pytest.raises(ValueError, match="empty page_content"):
        InfiniRetriRetriever.from_texts([" \n\t "], engine=tiny)
    whitespace = [Document(page_content="  \r\n ")]
    assert InfiniRetriCompressor(engine=tiny).compress_documents(whitespace, QUESTION) == []
    chat = ChatInfiniRetri(engine=tiny, max_tokens=2)
    before = CountingEngine.scans
    reply = chat.invoke([("system", " \n "), ("human", QUESTION)])  # no context: no scan
    assert reply.response_metadata["cited_sentences"] == []
    assert CountingEngine.scans == before


def test_an_unbroken_100kb_document_is_read_with_exact_offsets(tiny):
    text = "x" * 100_000 + " The vault code is 8812."
    engine = tiny.with_options(chunk_tokens=1024, retrieval_layer=0)
    docs = InfiniRetriRetriever.from_texts([text], engine=engine, k=4).invoke(QUESTION)
    assert docs
    for doc in docs:
        start, end = doc.metadata["char_start"], doc.metadata["char_end"]
        assert text[start:end] == doc.page_content
        assert len(doc.page_content) <= 2000  # cut before tokenizing


def test_text_that_names_a_file_is_read_as_text(tiny, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 8812.", encoding="utf-8")
    docs = InfiniRetriRetriever.from_texts([str(secret)], engine=tiny).invoke("Vault code?")
    assert [d.page_content for d in docs] == [str(secret)]
    _, artifact = create_infiniretri_tool([str(secret)], engine=tiny, max_tokens=2).func(
        "Vault code?"
    )
    assert [d.page_content for d in artifact] == [str(secret)]


def test_an_empty_answer_is_returned_and_streamed_cleanly(silent):
    context = "Some text here. More text there."
    llm = InfiniRetriLLM(engine=silent, max_tokens=3)
    assert llm.invoke(QUESTION, context=context) == ""
    chunks = list(llm.stream(QUESTION, context=context))
    assert "".join(chunks) == ""
    chat = ChatInfiniRetri(engine=silent, max_tokens=3)
    messages = [("system", context), ("human", QUESTION)]
    assert chat.invoke(messages).content == ""
    streamed = list(chat.stream(messages))
    assert streamed and "".join(c.content for c in streamed) == ""
    assert streamed[-1].usage_metadata["output_tokens"] == 3

    async def astream() -> list:
        return [c async for c in chat.astream(messages)]

    assert "".join(c.content for c in asyncio.run(astream())) == ""
    tool = create_infiniretri_tool([context], engine=silent, max_tokens=3)
    assert tool.invoke({"question": QUESTION}) == ""


# -- prompt splitting: linear time on any text -------------------------------------------------
# The splitter's equivalence with the old regexes and its linear time are tested once, on the
# shared core (the repository's tests/test_integration_core.py); here, through the LLM.


def test_the_llm_reads_a_prompt_with_long_whitespace_runs(tiny):
    """Once quadratic: 300k spaces would have taken hours to split."""
    engine = tiny.with_options(chunk_tokens=1024, retrieval_layer=0)
    llm = InfiniRetriLLM(engine=engine, max_tokens=2)
    prompt = "Some context.\n\nQuestion: why" + " " * 300_000 + "now?"
    assert llm._request(prompt, {}) == (["Some context."], "why" + " " * 300_000 + "now?")
    prompt = "\n" * 300_000 + "Some context." + " " * 300_000 + "\n\nQuestion: Why?"
    assert llm._request(prompt, {}) == (["Some context." + " " * 300_000], "Why?")
    assert isinstance(llm.invoke(prompt), str)
