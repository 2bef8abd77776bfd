"""InfiniRetriNodePostprocessor after a VectorStoreIndex retriever with real MiniLM embeddings."""

from __future__ import annotations

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeRelationship
from llama_index.postprocessor.infiniretri import InfiniRetriNodePostprocessor


def test_postprocessor_keeps_the_needle_from_vector_retrieved_chunks(engine, needle, minilm):
    documents = [
        Document(text=needle.text(), metadata={"file_name": "valley.txt"}),
        Document(text=needle.filler(30, seed=2), metadata={"file_name": "towns.txt"}),
        Document(text=needle.filler(30, seed=3), metadata={"file_name": "roads.txt"}),
    ]
    by_id = {d.doc_id: d for d in documents}
    splitter = SentenceSplitter(chunk_size=96, chunk_overlap=0)
    index = VectorStoreIndex(splitter.get_nodes_from_documents(documents), embed_model=minilm)
    retriever = index.as_retriever(similarity_top_k=4)
    retrieved = retriever.retrieve(needle.question)
    assert any(needle.sentence in n.node.get_content() for n in retrieved)  # MiniLM found it

    postprocessor = InfiniRetriNodePostprocessor(engine=engine, top_n=3)
    query_engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(), node_postprocessors=[postprocessor]
    )
    response = query_engine.query(needle.question)

    kept = response.source_nodes
    assert 1 <= len(kept) <= 3
    assert needle.sentence in [n.node.text for n in kept]
    scores = [n.score for n in kept]
    assert scores == sorted(scores, reverse=True)
    assert sum(len(n.node.text) for n in kept) < sum(len(n.node.text) for n in retrieved) / 2
    for n in kept:
        source = by_id[n.node.relationships[NodeRelationship.SOURCE].node_id]
        assert source.text[n.node.start_char_idx : n.node.end_char_idx] == n.node.text
        assert n.node.metadata["file_name"] == source.metadata["file_name"]
    assert needle.sentence in response.response  # the kept sentences are what reached the LLM
