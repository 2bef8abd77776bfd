"""``create_infiniretri_tool``: an agent tool that answers questions over long documents."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from infiniretri import InfiniRetri
from infiniretri import integration as core
from infiniretri.aio import run_in_thread
from langchain_core.documents import Document
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from langchain_infiniretri._documents import coerce_documents, sentences_to_documents
from langchain_infiniretri.retrievers import InfiniRetriRetriever

DEFAULT_TOOL_NAME = "long_document_qa"
DEFAULT_TOOL_DESCRIPTION = (
    "Answers a question about a set of long documents by reading them in full. "
    "Input: one self-contained question in natural language. "
    "Output: a short answer; the sentences it was read from come back as the artifact."
)


class LongDocumentQuestion(BaseModel):
    """Input of the tool."""

    question: str = Field(description="The question to answer from the documents.")


def create_infiniretri_tool(
    source: InfiniRetriRetriever | Sequence[Document | str],
    *,
    engine: InfiniRetri | None = None,
    name: str = DEFAULT_TOOL_NAME,
    description: str = DEFAULT_TOOL_DESCRIPTION,
    max_tokens: int = 128,
    k: int | None = None,
    **kwargs: Any,
) -> StructuredTool:
    """Create a tool that answers questions over long documents with InfiniRetri.

    The tool scans the documents with the model's attention and answers from the kept sentences.
    Its ``response_format`` is ``"content_and_artifact"``: the answer is the ``ToolMessage``
    content and the cited sentences (``Document``s with their source metadata plus ``score``,
    ``doc_index``, ``char_start``, ``char_end``) are its ``artifact``.

    Args:
        source: The documents (``Document``s or strings), or an ``InfiniRetriRetriever`` whose
            documents and engine to use.
        engine: A loaded engine to share (not with a retriever, which has its own).
        name: The tool's name, as the agent sees it.
        description: What the tool does, as the agent sees it; name the documents here.
        max_tokens: Most tokens of each answer.
        k: How many cited sentences to return as the artifact (highest score first);
            ``None``: all the sentences the answer was read from.
        **kwargs: With documents: ``InfiniRetriRetriever.from_documents`` keywords (``model``,
            engine settings such as ``chunk_tokens``).

    Returns:
        A ``StructuredTool`` taking ``{"question": str}``.
    """
    core.check_positive_int(max_tokens, "max_tokens")
    core.check_positive_int(k, "k", allow_none=True)
    if isinstance(source, InfiniRetriRetriever):
        if engine is not None or kwargs:
            raise ValueError(
                "engine: a retriever brings its own engine and settings; give either a "
                "retriever or documents with engine/settings"
            )
        retriever = source
        if not retriever.documents:
            raise ValueError("source: the InfiniRetriRetriever has no documents to read")
    else:
        retriever = InfiniRetriRetriever.from_documents(
            coerce_documents(source, "source"), engine, **kwargs
        )
    qa = _DocumentQA(retriever, max_tokens, k)
    return StructuredTool.from_function(
        func=qa.run,
        coroutine=qa.arun,
        name=name,
        description=description,
        args_schema=LongDocumentQuestion,
        response_format="content_and_artifact",
    )


class _DocumentQA:
    """The tool's body: scan, answer, cite."""

    def __init__(self, retriever: InfiniRetriRetriever, max_tokens: int, k: int | None) -> None:
        self.retriever = retriever
        self.max_tokens = max_tokens
        self.k = k

    def _answer(self, question: str, cancel: threading.Event | None) -> tuple[str, list[Document]]:
        documents = self.retriever.documents
        answer = core.answer(
            self.retriever.get_engine(),
            [d.page_content for d in documents],
            question,
            max_new_tokens=self.max_tokens,
            cancel=cancel,
        )
        retrieval = answer.retrieval
        cited = retrieval.top(self.k or len(retrieval.sentences)) if retrieval.sentences else []
        return answer.text, sentences_to_documents(cited, documents)

    def run(self, question: str) -> tuple[str, list[Document]]:
        core.check_text(question, "question")
        return self._answer(question, None)

    async def arun(self, question: str) -> tuple[str, list[Document]]:
        core.check_text(question, "question")
        return await run_in_thread(lambda cancel: self._answer(question, cancel))
