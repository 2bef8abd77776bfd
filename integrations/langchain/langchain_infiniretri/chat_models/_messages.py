"""Turn a chat history into ``(context documents, question)`` for the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, HumanMessage

_MEDIA_BLOCKS = frozenset(
    {"image", "image_url", "audio", "input_audio", "video", "file", "media", "document"}
)


@dataclass(frozen=True)
class ChatRequest:
    """The question, and the context texts with where each came from."""

    question: str
    sources: list[str]
    origins: list[dict[str, object]]
    """For each source: ``{"source": "message", "message_index": i, "role": ...}`` or
    ``{"source": "document", "document_index": j, "metadata": {...}}``."""


def message_text(message: BaseMessage, index: int) -> str:
    """The text of a message; media content (images, audio, files) is refused."""
    content = message.content
    if isinstance(content, list):
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else "text"
            if kind in _MEDIA_BLOCKS:
                raise ValueError(
                    f"messages[{index}] has a {kind!r} content block; ChatInfiniRetri reads "
                    "text only"
                )
    return message.text


def build_request(messages: Sequence[BaseMessage], documents: Sequence[Document]) -> ChatRequest:
    """The last human message is the question; every other message and document is context."""
    if not messages:
        raise ValueError("messages is empty; the last human message is the question")
    question_at = next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)),
        None,
    )
    if question_at is None:
        raise ValueError(
            "messages has no human message; ChatInfiniRetri answers the last human message"
        )
    question = message_text(messages[question_at], question_at)
    if not question.strip():
        raise ValueError(f"messages[{question_at}] (the question) has no text")
    sources: list[str] = []
    origins: list[dict[str, object]] = []
    for i, message in enumerate(messages):
        if i == question_at:
            continue
        text = message_text(message, i)
        if text.strip():
            sources.append(text)
            origins.append({"source": "message", "message_index": i, "role": message.type})
    for j, doc in enumerate(documents):
        if doc.page_content.strip():
            sources.append(doc.page_content)
            origins.append({"source": "document", "document_index": j, "metadata": doc.metadata})
    return ChatRequest(question=question.strip(), sources=sources, origins=origins)
