"""InfiniRetriRetriever with the real embedded model, inside LlamaIndex's RetrieverQueryEngine."""

from __future__ import annotations

import asyncio

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeRelationship, QueryBundle
from llama_index.retrievers.infiniretri import InfiniRetriQueryEngine, InfiniRetriRetriever


def test_retriever_in_retriever_query_engine_over_chunked_nodes(engine, needle):
    document = Document(text=needle.text(), metadata={"file_name": "valley.txt"})
    nodes = SentenceSplitter(chunk_size=96, chunk_overlap=24).get_nodes_from_documents([document])
    assert len(nodes) > 4
    retriever = InfiniRetriRetriever.from_nodes(nodes, engine=engine, similarity_top_k=3)
    # MockLLM without max_tokens answers with its prompt: it shows what reached the LLM.
    query_engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())

    response = asyncio.run(query_engine.aquery(needle.question))  # exercises _aretrieve

    sources = response.source_nodes
    assert len(sources) == 3
    scores = [n.score for n in sources]
    assert scores == sorted(scores, reverse=True)
    assert needle.sentence in [n.node.text for n in sources]
    assert needle.sentence in response.response
    for n in sources:
        # Chunks were joined back: offsets index the original document, not a chunk.
        assert n.node.relationships[NodeRelationship.SOURCE].node_id == document.doc_id
        assert document.text[n.node.start_char_idx : n.node.end_char_idx] == n.node.text
        assert n.node.text in needle.sentences


def test_query_engine_from_index_points_into_the_indexed_documents(engine, needle):
    documents = [Document(text=needle.text(sentences=24, at=15)), Document(text=needle.filler(8))]
    index = VectorStoreIndex.from_documents(
        documents,
        embed_model=MockEmbedding(embed_dim=8),
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=16)],
    )
    query_engine = InfiniRetriQueryEngine.from_index(index, engine=engine)

    nodes = query_engine.retrieve(QueryBundle(needle.question))  # the cache, no answer

    by_id = {d.doc_id: d for d in documents}
    assert needle.sentence in [n.node.text for n in nodes]
    starts = [(n.node.ref_doc_id, n.node.start_char_idx) for n in nodes]
    assert len(set(starts)) == len(starts)  # overlapping chunks were read once
    for n in nodes:
        source = by_id[n.node.ref_doc_id]
        assert source.text[n.node.start_char_idx : n.node.end_char_idx] == n.node.text


def test_query_engine_shares_its_engine_and_documents_with_its_retriever(engine, needle):
    query_engine = InfiniRetriQueryEngine.from_documents([needle.text()], engine=engine)
    retriever = query_engine.as_retriever(similarity_top_k=2)
    assert isinstance(retriever, InfiniRetriRetriever)
    assert retriever.engine is query_engine.engine is engine
    assert retriever.similarity_top_k == 2


def test_engine_options_reuse_the_loaded_model(engine, needle):
    retriever = InfiniRetriRetriever.from_documents([needle.text()], engine=engine, top_k_tokens=50)
    assert retriever.engine is not engine
    assert retriever.engine.model is engine.model
    assert retriever.engine.top_k_tokens == 50
