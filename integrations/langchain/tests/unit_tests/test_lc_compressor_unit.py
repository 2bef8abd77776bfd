"""InfiniRetriCompressor plumbing on a tiny engine: metadata, offsets, skipped empties, k."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from langchain_infiniretri import InfiniRetriCompressor


@pytest.fixture
def documents(short_text):
    return [
        Document(page_content=short_text.text, metadata={"source": "guide"}, id="g"),
        Document(page_content="   ", metadata={"source": "blank"}),
        Document(page_content="The ferry leaves at noon. It returns at dusk.", metadata={"n": 2}),
    ]


def test_sentences_keep_their_source_metadata_and_offsets(tiny_engine, documents, short_text):
    compressor = InfiniRetriCompressor(engine=tiny_engine, engine_kwargs={"top_k_tokens": 1024})
    kept = compressor.compress_documents(documents, short_text.question)
    assert kept
    scores = [d.metadata["score"] for d in kept]
    assert scores == sorted(scores, reverse=True)
    seen = set()
    for doc in kept:
        index = doc.metadata["doc_index"]
        seen.add(index)
        source = documents[index]
        assert source.page_content[doc.metadata["char_start"] : doc.metadata["char_end"]] == (
            doc.page_content
        )
        for key, value in source.metadata.items():
            assert doc.metadata[key] == value
    assert seen == {0, 2}  # the blank document is skipped, indices still point into the input
    assert all(d.metadata["source_id"] == "g" for d in kept if d.metadata["doc_index"] == 0)


def test_k_limits_the_sentences(tiny_engine, documents, short_text):
    compressor = InfiniRetriCompressor(engine=tiny_engine, k=2)
    assert len(compressor.compress_documents(documents, short_text.question)) == 2


async def test_async_matches_sync(tiny_engine, documents, short_text):
    compressor = InfiniRetriCompressor(engine=tiny_engine, k=3)
    expected = compressor.compress_documents(documents, short_text.question)
    assert await compressor.acompress_documents(documents, short_text.question) == expected


def test_nothing_to_compress(tiny_engine):
    compressor = InfiniRetriCompressor(engine=tiny_engine)
    assert compressor.compress_documents([], "Anything?") == []
    assert compressor.compress_documents([Document(page_content=" ")], "Anything?") == []


@pytest.mark.parametrize(
    ("documents", "query", "message"),
    [
        ([Document(page_content="Text.")], 3, "query must be a string"),
        ([Document(page_content="Text.")], "", "query must be a non-empty string"),
        (["not a document"], "Q?", r"documents\[0\] must be a Document"),
    ],
)
def test_bad_input(tiny_engine, documents, query, message):
    with pytest.raises(ValueError, match=message):
        InfiniRetriCompressor(engine=tiny_engine).compress_documents(documents, query)


def test_k_below_one_is_rejected(tiny_engine):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        InfiniRetriCompressor(engine=tiny_engine, k=0)
