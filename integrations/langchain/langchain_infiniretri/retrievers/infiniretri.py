"""``InfiniRetriRetriever``: the model's attention in place of ``vectorstore.as_retriever()``."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from infiniretri import InfiniRetri, Retrieval
from infiniretri import integration as core
from infiniretri.aio import run_in_thread
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator

from langchain_infiniretri._documents import (
    check_documents,
    note_to_document,
    sentences_to_documents,
    texts_to_documents,
)
from langchain_infiniretri._engine import InfiniRetriEngineMixin


class InfiniRetriRetriever(InfiniRetriEngineMixin, BaseRetriever):
    """Retrieve sentences from long documents with the LLM's own attention.

    Each call scans ``documents`` chunk by chunk with the model: the question's attention picks
    the sentences to keep, and the final cache is returned as ``Document``s, highest score
    first. No embeddings, no index: build it and invoke it.

    Each returned ``Document`` has the sentence as ``page_content``, a stable ``id``, and in
    ``metadata`` the source document's metadata plus ``score``, ``doc_index``, ``char_start`` and
    ``char_end`` (``documents[doc_index].page_content[char_start:char_end] == page_content``)
    and ``source_id`` when the source document has an id.

    Example:
        ```python
        from langchain_infiniretri import InfiniRetriRetriever

        retriever = InfiniRetriRetriever.from_texts([long_text], k=4)
        docs = retriever.invoke("Who signed the treaty?")
        docs = retriever.invoke("Who signed the treaty?", k=1)  # override k per call
        ```
    """

    documents: list[Document] = Field(default_factory=list)
    """The documents to read on every call."""
    k: int = 4
    """How many sentences to return (highest attention score first)."""

    @field_validator("k", mode="before")
    @classmethod
    def _check_k(cls, value: int) -> int:
        return core.check_positive_int(value, "k")

    @field_validator("documents", mode="before")
    @classmethod
    def _check_documents(cls, value: Any) -> Any:
        # An empty list is allowed here so that the "no documents" error can name the retriever;
        # every other malformed input is rejected now.
        if isinstance(value, (list, tuple)) and len(value) == 0:
            return []
        return check_documents(value)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        engine: InfiniRetri | None = None,
        *,
        ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> InfiniRetriRetriever:
        """Build a retriever over ``texts`` (one document each).

        Args:
            texts: The documents' text.
            metadatas: Metadata for each text (copied into every sentence taken from it).
            engine: A loaded engine to share; the embedded model is loaded lazily if omitted.
            ids: Ids of the documents (they make the sentence ids and ``source_id``).
            **kwargs: Retriever fields (``k``, ``tags``, ``metadata``, ``model``, ...); any other
                keyword is an engine setting (``chunk_tokens``, ``top_k_tokens``, ...).
        """
        return cls.from_documents(texts_to_documents(texts, metadatas, ids), engine, **kwargs)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        engine: InfiniRetri | None = None,
        **kwargs: Any,
    ) -> InfiniRetriRetriever:
        """Build a retriever over ``documents``.

        Args:
            documents: The documents to read; their metadata rides along on every sentence.
            engine: A loaded engine to share; the embedded model is loaded lazily if omitted.
            **kwargs: Retriever fields (``k``, ``tags``, ``metadata``, ``model``, ...); any other
                keyword is an engine setting (``chunk_tokens``, ``top_k_tokens``, ...).
        """
        fields, settings = core.split_engine_options(kwargs, cls.model_fields)
        if settings:
            fields["engine_kwargs"] = settings
        return cls(documents=check_documents(documents), engine=engine, **fields)

    def _retrieve(
        self, query: str, cancel: threading.Event | None, kwargs: dict[str, Any]
    ) -> list[Document]:
        k = self._call_k(kwargs)
        core.check_text(query, "query")
        if not self.documents:
            raise ValueError(
                f"{type(self).__name__} has no documents to read; build it with from_texts() "
                "or from_documents(), or pass documents=[...]"
            )
        retrieval: Retrieval = self.get_engine().retrieve(
            [doc.page_content for doc in self.documents], query, cancel=cancel
        )
        notes = [note_to_document(n, self.documents) for n in retrieval.notes]
        return sentences_to_documents(retrieval.top(k), self.documents) + notes

    def _call_k(self, kwargs: dict[str, Any]) -> int:
        unknown = set(kwargs) - {"k", "verbose"}
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s): {sorted(unknown)}"
            )
        k = kwargs.get("k", self.k)
        return core.check_positive_int(k, "k")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._retrieve(query, None, kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # Check the input on the loop (fast, clear errors), scan in a worker thread.
        self._call_k(kwargs)
        core.check_text(query, "query")
        return await run_in_thread(lambda cancel: self._retrieve(query, cancel, kwargs))
