"""ChatInfiniRetri: history as context, metadata, usage, streaming and errors (tiny engine)."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_infiniretri import ChatInfiniRetri
from langchain_infiniretri.chat_models._messages import build_request


# ---------------------------------------------------------------------------- history
def test_last_human_message_is_the_question_the_rest_is_context():
    messages = [
        SystemMessage("You answer from the manual."),
        HumanMessage("Here is the manual. Press the red button to reset."),
        AIMessage("Thanks, I have read it."),
        HumanMessage("  How do I reset it?  "),
    ]
    docs = [Document(page_content="Appendix. Hold the key for five seconds.", metadata={"p": 9})]
    request = build_request(messages, docs)
    assert request.question == "How do I reset it?"
    assert request.sources == [
        "You answer from the manual.",
        "Here is the manual. Press the red button to reset.",
        "Thanks, I have read it.",
        "Appendix. Hold the key for five seconds.",
    ]
    assert request.origins[1] == {"source": "message", "message_index": 1, "role": "human"}
    assert request.origins[3] == {"source": "document", "document_index": 0, "metadata": {"p": 9}}


def test_messages_after_the_last_human_message_are_context_too():
    request = build_request([HumanMessage("Question?"), AIMessage("A draft answer.")], [])
    assert request.question == "Question?"
    assert request.sources == ["A draft answer."]


def test_empty_messages_are_skipped_and_lists_of_text_blocks_read():
    messages = [
        ToolMessage("", tool_call_id="1"),
        HumanMessage([{"type": "text", "text": "Part one."}, {"type": "text", "text": "Two."}]),
        HumanMessage("Q?"),
    ]
    request = build_request(messages, [])
    assert request.sources == ["Part one.Two."]
    assert request.origins == [{"source": "message", "message_index": 1, "role": "human"}]


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "messages is empty"),
        ([SystemMessage("Only a system prompt.")], "no human message"),
        ([HumanMessage("   ")], r"messages\[0\] \(the question\) has no text"),
        (
            [HumanMessage([{"type": "image", "url": "https://example.com/a.png"}])],
            "'image' content block",
        ),
    ],
)
def test_bad_histories(messages, message):
    with pytest.raises(ValueError, match=message):
        build_request(messages, [])


# ---------------------------------------------------------------------------- replies
@pytest.fixture
def chat(tiny_engine):
    return ChatInfiniRetri(engine=tiny_engine, max_tokens=4)


def test_reply_has_usage_and_cited_sentences_with_origins(tiny_engine, short_text):
    # A cache large enough to keep every sentence: both kinds of origin get cited.
    chat = ChatInfiniRetri(engine=tiny_engine, engine_kwargs={"top_k_tokens": 1024}, max_tokens=4)
    reply = chat.invoke(
        [SystemMessage("Millbrook notes. The bakery opens at six."), HumanMessage("When?")],
        documents=[Document(page_content=short_text.text, metadata={"title": "guide"})],
    )
    usage = reply.usage_metadata
    assert usage["output_tokens"] == 4
    assert usage["input_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    meta = reply.response_metadata
    assert meta["model_name"] == chat.model_name
    assert meta["finish_reason"] == "length"
    sources = {"message": "Millbrook notes. The bakery opens at six.", "document": short_text.text}
    kinds = set()
    for cited in meta["cited_sentences"]:
        kinds.add(cited["source"])
        assert sources[cited["source"]][cited["char_start"] : cited["char_end"]] == cited["text"]
        if cited["source"] == "document":
            assert cited["metadata"] == {"title": "guide"} and cited["document_index"] == 0
        else:
            assert cited["message_index"] == 0 and cited["role"] == "system"
    assert kinds == {"message", "document"}


def test_documents_field_and_per_call_documents_are_both_read(tiny_engine, short_text):
    chat = ChatInfiniRetri(engine=tiny_engine, max_tokens=2, documents=[short_text.text])
    reply = chat.invoke("Where?", documents=["The ferry leaves at noon. It returns at dusk."])
    indices = {c["document_index"] for c in reply.response_metadata["cited_sentences"]}
    assert indices == {0, 1}


def test_without_context_the_question_is_answered_directly(chat):
    reply = chat.invoke("Hello")
    assert reply.response_metadata["cited_sentences"] == []
    assert reply.response_metadata["document_tokens"] == 0
    assert reply.usage_metadata["input_tokens"] > 0


def test_stream_ends_with_one_usage_chunk_marked_last(chat, short_text):
    chunks = list(chat.stream("Where?", documents=[short_text.text]))
    assert chunks[-1].chunk_position == "last"
    with_usage = [c for c in chunks if c.usage_metadata]
    assert with_usage == [chunks[-1]]
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    reply = chat.invoke("Where?", documents=[short_text.text])
    assert full.content == reply.content
    assert full.usage_metadata == reply.usage_metadata
    assert full.response_metadata["cited_sentences"] == reply.response_metadata["cited_sentences"]


async def test_ainvoke_and_astream_match_sync(chat, short_text):
    reply = chat.invoke("Where?", documents=[short_text.text])
    areply = await chat.ainvoke("Where?", documents=[short_text.text])
    assert areply.content == reply.content
    assert areply.usage_metadata == reply.usage_metadata
    chunks = [c async for c in chat.astream("Where?", documents=[short_text.text])]
    assert chunks[-1].chunk_position == "last"
    assert "".join(c.content for c in chunks) == reply.content


def test_ls_params(chat, tiny_engine):
    params = chat._get_ls_params(stop=["x"])
    assert params["ls_provider"] == "infiniretri"
    assert params["ls_model_name"] == tiny_engine.model_name
    assert params["ls_max_tokens"] == 4
    assert params["ls_stop"] == ["x"]


# ---------------------------------------------------------------------------- bad input
def test_temperature_other_than_zero_is_refused(tiny_engine):
    assert ChatInfiniRetri(engine=tiny_engine, temperature=0).temperature == 0
    with pytest.raises(ValueError, match="decodes greedily"):
        ChatInfiniRetri(engine=tiny_engine, temperature=0.7)
    with pytest.raises(ValueError, match="decodes greedily"):
        ChatInfiniRetri(engine=tiny_engine).invoke("Hi", temperature=1.0)


def test_per_call_model_override_is_refused(chat, tiny_engine):
    with pytest.raises(ValueError, match="per-call model override"):
        chat.invoke("Hi", model="gpt-4o")
    assert isinstance(chat.invoke("Hi", model=tiny_engine.model_name), AIMessage)


def test_unknown_keyword_is_an_error(chat):
    with pytest.raises(TypeError, match="top_p"):
        chat.invoke("Hi", top_p=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be a positive integer"),
        ({"documents": "a string"}, "documents must be a list"),
        ({"documents": [Document(page_content="")]}, r"documents\[0\] has empty page_content"),
    ],
)
def test_bad_call_arguments(chat, kwargs, message):
    with pytest.raises(ValueError, match=message):
        chat.invoke("Hi", **kwargs)


def test_question_must_be_text(chat):
    with pytest.raises(ValueError, match="no human message"):
        chat.invoke([AIMessage("Only an AI message.")])
