"""The real embedded model finds a planted fact through every LangChain entry point.

One shared engine (the ``engine`` fixture); ~600-token texts, two 512-token chunks per scan, and
short answers, so the whole module stays cheap on a CPU.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_infiniretri import (
    ChatInfiniRetri,
    InfiniRetriCompressor,
    InfiniRetriLLM,
    InfiniRetriRetriever,
    create_infiniretri_tool,
)

ANSWER_TOKENS = 16


class TokenCollector(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs) -> None:
        self.tokens.append(token)


def test_retriever_ranks_the_needle_first(engine, needle_text):
    retriever = InfiniRetriRetriever.from_texts(
        [needle_text.text], metadatas=[{"source": "millbrook.txt"}], engine=engine, k=3
    )
    docs = retriever.invoke(needle_text.question)
    assert len(docs) == 3
    top = docs[0]
    assert top.page_content == needle_text.needle
    assert top.metadata["char_start"] == needle_text.needle_start
    assert top.metadata["source"] == "millbrook.txt"
    for doc in docs:
        start, end = doc.metadata["char_start"], doc.metadata["char_end"]
        assert needle_text.text[start:end] == doc.page_content


async def test_retriever_async_with_k_override(engine, needle_text):
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=engine)
    (doc,) = await retriever.ainvoke(needle_text.question, k=1)
    assert doc.page_content == needle_text.needle


def test_compressor_keeps_the_needle_behind_a_vector_store(engine, needle_text):
    # A vector-store chain as it is: chunks of the text, a (toy) embedding, similarity search.
    sentences = needle_text.text.split(". ")
    chunks = [". ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)]
    store = InMemoryVectorStore.from_texts(
        chunks,
        DeterministicFakeEmbedding(size=32),
        metadatas=[{"chunk": i} for i in range(len(chunks))],
    )
    retriever = ContextualCompressionRetriever(
        base_compressor=InfiniRetriCompressor(engine=engine, k=3),
        base_retriever=store.as_retriever(search_kwargs={"k": len(chunks)}),
    )
    kept = retriever.invoke(needle_text.question)
    assert 0 < len(kept) <= 3
    needle_docs = [d for d in kept if "Marigold-47" in d.page_content]
    assert needle_docs, [d.page_content for d in kept]
    needle_doc = needle_docs[0]
    source = chunks[needle_doc.metadata["chunk"]]
    start, end = needle_doc.metadata["char_start"], needle_doc.metadata["char_end"]
    assert source[start:end] == needle_doc.page_content


def test_llm_streams_the_answer_to_callbacks(engine, needle_text):
    llm = InfiniRetriLLM(engine=engine, max_tokens=ANSWER_TOKENS)
    collector = TokenCollector()
    prompt = f"{needle_text.text}\n\nQuestion: {needle_text.question}"
    pieces = list(llm.stream(prompt, config={"callbacks": [collector]}))
    text = "".join(pieces)
    assert needle_text.answer in text
    assert len(collector.tokens) > 1
    assert "".join(collector.tokens) == text
    # Same model, same input, greedy decoding: the keyword form gives the same answer.
    assert llm.invoke(needle_text.question, context=needle_text.text) == text


def test_chat_reads_the_history_and_cites_it(engine, needle_text):
    chat = ChatInfiniRetri(engine=engine, max_tokens=ANSWER_TOKENS, streaming=True)
    collector = TokenCollector()
    reply = chat.invoke(
        [SystemMessage(needle_text.text), HumanMessage(needle_text.question)],
        config={"callbacks": [collector]},
    )
    assert needle_text.answer in reply.content
    assert "".join(collector.tokens) == reply.content and len(collector.tokens) > 1
    cited = reply.response_metadata["cited_sentences"]
    needle = [c for c in cited if c["text"] == needle_text.needle]
    assert needle == [
        {
            "text": needle_text.needle,
            "score": needle[0]["score"],
            "doc_index": 0,
            "char_start": needle_text.needle_start,
            "char_end": needle_text.needle_start + len(needle_text.needle),
            "source": "message",
            "message_index": 0,
            "role": "system",
        }
    ]
    assert reply.usage_metadata["input_tokens"] > 0
    assert 0 < reply.usage_metadata["output_tokens"] <= ANSWER_TOKENS


async def test_chat_async_with_documents(engine, needle_text):
    chat = ChatInfiniRetri(engine=engine, max_tokens=ANSWER_TOKENS)
    doc = Document(page_content=needle_text.text, metadata={"title": "Millbrook"})
    reply = await chat.ainvoke(needle_text.question, documents=[doc])
    assert needle_text.answer in reply.content
    assert any(
        c["text"] == needle_text.needle and c["metadata"] == {"title": "Millbrook"}
        for c in reply.response_metadata["cited_sentences"]
    )


def test_tool_answers_and_returns_the_cited_sentences(engine, needle_text):
    tool = create_infiniretri_tool(
        [Document(page_content=needle_text.text, metadata={"title": "Millbrook"})],
        engine=engine,
        max_tokens=ANSWER_TOKENS,
        k=3,
        description="Answers questions about the history of the town of Millbrook.",
    )
    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "call-1",
            "name": tool.name,
            "args": {"question": needle_text.question},
        }
    )
    assert isinstance(message, ToolMessage)
    assert needle_text.answer in message.content
    assert message.artifact[0].page_content == needle_text.needle
    assert message.artifact[0].metadata["title"] == "Millbrook"


@pytest.mark.parametrize("k", [0, -2])
def test_real_engine_bad_k(engine, needle_text, k):
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=engine)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        retriever.invoke(needle_text.question, k=k)


def test_without_an_engine_the_embedded_model_loads_once_on_first_use(short_text):
    retriever = InfiniRetriRetriever.from_texts([short_text.text], k=1, chunk_tokens=512)
    assert not retriever._holder.loaded  # nothing loaded at construction
    with ThreadPoolExecutor(4) as pool:  # concurrent first use: one load, one engine
        engines = list(pool.map(lambda _: retriever.get_engine(), range(4)))
    assert all(e is engines[0] for e in engines)
    assert engines[0].chunk_tokens == 512
    assert retriever.model_name == engines[0].model_name
    (doc,) = retriever.invoke(short_text.question)
    assert doc.page_content == short_text.needle
