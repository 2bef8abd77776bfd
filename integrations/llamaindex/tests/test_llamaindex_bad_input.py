"""Bad input fails early with a ValueError that names the argument (no model work is done)."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.llms.infiniretri import InfiniRetriLLM
from llama_index.postprocessor.infiniretri import InfiniRetriNodePostprocessor
from llama_index.retrievers.infiniretri import InfiniRetriQueryEngine, InfiniRetriRetriever


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([], "documents is empty"),
        ([Document(text="   \n ")], "no document has any text"),
        ("just one string", "not a single one"),
        ([42], r"documents\[0\] is a int"),
    ],
)
def test_no_documents(engine, documents, message):
    with pytest.raises(ValueError, match=message):
        InfiniRetriQueryEngine.from_documents(documents, engine=engine)
    with pytest.raises(ValueError, match=message):
        InfiniRetriRetriever.from_documents(documents, engine=engine)


def test_no_nodes(engine):
    with pytest.raises(ValueError, match="nodes is empty"):
        InfiniRetriQueryEngine.from_nodes([], engine=engine)
    with pytest.raises(ValueError, match="nodes is empty"):
        InfiniRetriRetriever.from_nodes([], engine=engine)


def test_index_without_nodes_in_its_docstore(engine):
    index = VectorStoreIndex([], embed_model=MockEmbedding(embed_dim=4))
    with pytest.raises(ValueError, match="docstore holds no nodes"):
        InfiniRetriQueryEngine.from_index(index, engine=engine)
    with pytest.raises(ValueError, match="has no docstore"):
        InfiniRetriRetriever.from_index(object(), engine=engine)


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query(engine, query):
    query_engine = InfiniRetriQueryEngine.from_documents(["Some text."], engine=engine)
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        query_engine.query(query)
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        asyncio.run(query_engine.aquery(query))
    retriever = InfiniRetriRetriever.from_documents(["Some text."], engine=engine)
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        retriever.retrieve(query)
    postprocessor = InfiniRetriNodePostprocessor(engine=engine)
    nodes = [NodeWithScore(node=TextNode(text="Some text."), score=1.0)]
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        postprocessor.postprocess_nodes(nodes, query_str=query)


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "3"])
def test_similarity_top_k_below_one(engine, value):
    with pytest.raises(ValueError, match="similarity_top_k must be a positive integer"):
        InfiniRetriRetriever.from_documents(["Some text."], engine=engine, similarity_top_k=value)
    with pytest.raises(ValueError, match="similarity_top_k must be a positive integer"):
        InfiniRetriRetriever(["Some text."], engine=engine, similarity_top_k=value)
    query_engine = InfiniRetriQueryEngine.from_documents(["Some text."], engine=engine)
    with pytest.raises(ValueError, match="similarity_top_k must be a positive integer"):
        query_engine.as_retriever(similarity_top_k=value)


@pytest.mark.parametrize("value", [0, -3, 1.5, False])
def test_top_n_below_one(engine, value):
    with pytest.raises(ValueError, match="top_n must be a positive integer"):
        InfiniRetriNodePostprocessor(engine=engine, top_n=value)


def test_postprocessor_needs_a_query_and_passes_no_nodes_through(engine):
    postprocessor = InfiniRetriNodePostprocessor(engine=engine, top_n=2)
    nodes = [NodeWithScore(node=TextNode(text="Some text."), score=1.0)]
    with pytest.raises(ValueError, match="query_bundle is required"):
        postprocessor.postprocess_nodes(nodes)
    assert postprocessor.postprocess_nodes([], query_str="Anything?") == []
    empty = [NodeWithScore(node=TextNode(text="  "), score=1.0)]
    assert postprocessor.postprocess_nodes(empty, query_str="Anything?") == []


def test_bad_engine_and_options(engine):
    with pytest.raises(ValueError, match=r"engine must be an infiniretri\.InfiniRetri"):
        InfiniRetriQueryEngine.from_documents(["Some text."], engine="smollm2")
    with pytest.raises(ValueError, match="unknown engine options"):
        InfiniRetriRetriever.from_documents(["Some text."], engine=engine, chunk_size=10)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        InfiniRetriQueryEngine.from_documents(["Some text."], engine=engine, max_new_tokens=0)
    with pytest.raises(ValueError, match="stop must be a list of strings"):
        InfiniRetriQueryEngine.from_documents(["Some text."], engine=engine, stop="\n")


def test_llm_bad_input(engine):
    llm = InfiniRetriLLM(engine=engine)
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        llm.complete("")
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        llm.stream_complete("  ")
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        llm.complete("Hello?", max_new_tokens=0)
    for name in ("context_window", "max_new_tokens", "question_tokens"):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            InfiniRetriLLM(engine=engine, **{name: 0})
