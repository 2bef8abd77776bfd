"""``InfiniRetriCompressor``: keep only the sentences the model's attention selects."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from infiniretri import integration as core
from infiniretri.aio import run_in_thread
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import field_validator

from langchain_infiniretri._documents import sentences_to_documents
from langchain_infiniretri._engine import InfiniRetriEngineMixin


class InfiniRetriCompressor(InfiniRetriEngineMixin, BaseDocumentCompressor):
    """Compress retrieved documents to the sentences the model attends to for the query.

    Use it inside ``ContextualCompressionRetriever`` to keep an existing (vector-store)
    retriever and gain attention-based compression: the retrieved documents are scanned as one
    multi-document source and the final sentence cache is returned, highest score first, one
    ``Document`` per sentence. Each keeps its source document's metadata plus ``score``,
    ``doc_index`` (position in the list given to ``compress_documents``), ``char_start`` and
    ``char_end`` into that document's ``page_content``, and ``source_id`` when it has an id.

    Example:
        ```python
        from langchain_classic.retrievers import ContextualCompressionRetriever
        from langchain_infiniretri import InfiniRetriCompressor

        retriever = ContextualCompressionRetriever(
            base_compressor=InfiniRetriCompressor(engine=engine, k=3),
            base_retriever=vectorstore.as_retriever(search_kwargs={"k": 8}),
        )
        ```
    """

    k: int | None = None
    """How many sentences to keep; ``None`` keeps the whole final cache."""

    @field_validator("k", mode="before")
    @classmethod
    def _check_k(cls, value: int | None) -> int | None:
        return core.check_positive_int(value, "k", allow_none=True)

    def _compress(
        self, documents: Sequence[Document], query: str, cancel: threading.Event | None
    ) -> list[Document]:
        core.check_text(query, "query")
        if isinstance(documents, (str, Document)):
            raise ValueError("documents must be a sequence of Documents")
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise ValueError(f"documents[{i}] must be a Document, got {type(doc).__name__}")
        # Documents with no text cannot hold a sentence: read the others, keep their indices.
        readable = [i for i, doc in enumerate(documents) if doc.page_content.strip()]
        if not readable:
            return []
        retrieval = self.get_engine().retrieve(
            [documents[i].page_content for i in readable], query, cancel=cancel
        )
        if not retrieval.sentences:
            return []
        sentences = retrieval.top(self.k or len(retrieval.sentences))
        sentences = [dataclasses.replace(s, doc_index=readable[s.doc_index]) for s in sentences]
        return sentences_to_documents(sentences, documents)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Return the sentences of ``documents`` that the model keeps for ``query``."""
        return self._compress(documents, query, None)

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async ``compress_documents``: the scan runs in a worker thread, cancellable."""
        core.check_text(query, "query")
        return await run_in_thread(lambda cancel: self._compress(documents, query, cancel))
