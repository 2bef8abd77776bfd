"""create_infiniretri_tool: schema, content and artifact, errors (tiny engine)."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage

from langchain_infiniretri import InfiniRetriRetriever, create_infiniretri_tool


def test_tool_schema_and_response_format(tiny_engine, short_text):
    tool = create_infiniretri_tool([short_text.text], engine=tiny_engine, name="guide_qa")
    assert tool.name == "guide_qa"
    assert tool.response_format == "content_and_artifact"
    assert set(tool.args) == {"question"}
    assert tool.description


def test_tool_call_returns_answer_as_content_and_sentences_as_artifact(tiny_engine, short_text):
    source = Document(page_content=short_text.text, metadata={"title": "guide"})
    tool = create_infiniretri_tool([source], engine=tiny_engine, max_tokens=3, k=2)
    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "call-1",
            "name": tool.name,
            "args": {"question": short_text.question},
        }
    )
    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call-1"
    assert isinstance(message.content, str)
    artifact = message.artifact
    assert len(artifact) == 2
    for doc in artifact:
        assert isinstance(doc, Document)
        assert doc.metadata["title"] == "guide"
        start, end = doc.metadata["char_start"], doc.metadata["char_end"]
        assert short_text.text[start:end] == doc.page_content
    # Called with plain arguments, a content-and-artifact tool returns the content only.
    assert tool.invoke({"question": short_text.question}) == message.content


async def test_tool_async_and_from_a_retriever(tiny_engine, short_text):
    retriever = InfiniRetriRetriever.from_texts([short_text.text], engine=tiny_engine)
    tool = create_infiniretri_tool(retriever, max_tokens=3)
    call = {
        "type": "tool_call",
        "id": "c",
        "name": tool.name,
        "args": {"question": short_text.question},
    }
    sync_message = tool.invoke(call)
    async_message = await tool.ainvoke(call)
    assert async_message.content == sync_message.content
    assert async_message.artifact == sync_message.artifact
    # k=None: the artifact holds every sentence the answer was read from.
    retrieval = tiny_engine.retrieve([short_text.text], short_text.question)
    assert len(sync_message.artifact) == len(retrieval.sentences)


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        ([], {}, "source is empty"),
        ("one string", {}, "source must be a list"),
        (["Text."], {"k": 0}, "k must be a positive integer"),
        (["Text."], {"max_tokens": 0}, "max_tokens must be a positive integer"),
    ],
)
def test_bad_construction(tiny_engine, source, kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_infiniretri_tool(source, engine=tiny_engine, **kwargs)


def test_retriever_and_engine_together_are_rejected(tiny_engine):
    retriever = InfiniRetriRetriever.from_texts(["Text."], engine=tiny_engine)
    with pytest.raises(ValueError, match="brings its own engine"):
        create_infiniretri_tool(retriever, engine=tiny_engine)
    with pytest.raises(ValueError, match="no documents"):
        create_infiniretri_tool(InfiniRetriRetriever(engine=tiny_engine))


def test_bad_question(tiny_engine):
    tool = create_infiniretri_tool(["Text. More text."], engine=tiny_engine)
    with pytest.raises(ValueError, match="question"):
        tool.invoke({"question": 42})
    with pytest.raises(ValueError, match="question must be a non-empty string"):
        tool.invoke({"question": "  "})


def test_langchain_retriever_tool_works_with_the_retriever(tiny_engine, short_text):
    from langchain_core.tools import create_retriever_tool

    retriever = InfiniRetriRetriever.from_texts([short_text.text], engine=tiny_engine, k=2)
    tool = create_retriever_tool(
        retriever,
        "millbrook",
        "Sentences about Millbrook.",
        response_format="content_and_artifact",
    )
    message = tool.invoke(
        {"type": "tool_call", "id": "c", "name": "millbrook", "args": {"query": "Gulls?"}}
    )
    assert [d.page_content for d in message.artifact] == [
        d.page_content for d in retriever.invoke("Gulls?")
    ]
    assert message.content == "\n\n".join(d.page_content for d in message.artifact)
