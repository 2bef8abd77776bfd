"""Document checks and the mapping from engine ``Sentence``s to LangChain ``Document``s."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from infiniretri import Note, Sentence
from langchain_core.documents import Document

_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/langchain-infiniretri/")

SENTENCE_METADATA_KEYS = ("score", "doc_index", "char_start", "char_end")
"""Keys every returned sentence ``Document`` adds to its source document's metadata."""


def texts_to_documents(
    texts: Iterable[str],
    metadatas: Sequence[dict[str, Any]] | None = None,
    ids: Sequence[str] | None = None,
) -> list[Document]:
    """Build ``Document``s from texts, checking each text and the parallel lists."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, got a single string; wrap it: [text]")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty; give at least one text")
    for name, values in (("metadatas", metadatas), ("ids", ids)):
        if values is not None and len(values) != len(texts):
            raise ValueError(f"{name} has {len(values)} items but texts has {len(texts)}")
    documents = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] must be a string, got {type(text).__name__}")
        metadata = dict(metadatas[i]) if metadatas is not None else {}
        documents.append(
            Document(page_content=text, metadata=metadata, id=ids[i] if ids is not None else None)
        )
    return check_documents(documents)


def check_documents(documents: object, name: str = "documents") -> list[Document]:
    """Return ``documents`` as a list if it is a non-empty list of non-empty ``Document``s."""
    if isinstance(documents, (str, Document)) or not isinstance(documents, Iterable):
        raise ValueError(f"{name} must be a list of Documents, got {type(documents).__name__}")
    documents = list(documents)
    if not documents:
        raise ValueError(f"{name} is empty; give at least one document")
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise ValueError(f"{name}[{i}] must be a Document, got {type(doc).__name__}")
        if not doc.page_content.strip():
            raise ValueError(f"{name}[{i}] has empty page_content")
    return documents


def coerce_documents(items: object, name: str = "documents") -> list[Document]:
    """Accept a list of ``Document``s and/or strings; return ``Document``s."""
    if isinstance(items, (str, Document)) or not isinstance(items, Iterable):
        raise ValueError(
            f"{name} must be a list of Documents or strings, got {type(items).__name__}"
        )
    docs = [Document(page_content=item) if isinstance(item, str) else item for item in items]
    return check_documents(docs, name)


def sentence_id(source: Document, doc_index: int, sentence: Sentence) -> str:
    """A stable id: the same sentence of the same source document always gets the same id."""
    origin = f"id:{source.id}" if source.id is not None else f"index:{doc_index}"
    key = f"{origin}|{sentence.char_start}|{sentence.char_end}|{sentence.text}"
    return str(uuid.uuid5(_ID_NAMESPACE, key))


def sentence_to_document(sentence: Sentence, sources: Sequence[Document]) -> Document:
    """Turn one cached sentence into a ``Document`` carrying its source's metadata.

    ``sources[sentence.doc_index].page_content[char_start:char_end] == page_content``.
    """
    source = sources[sentence.doc_index]
    metadata = {
        **source.metadata,
        "score": float(sentence.score),
        "doc_index": sentence.doc_index,
        "char_start": sentence.char_start,
        "char_end": sentence.char_end,
    }
    if source.id is not None:
        metadata["source_id"] = source.id
    return Document(
        page_content=sentence.text,
        metadata=metadata,
        id=sentence_id(source, sentence.doc_index, sentence),
    )


def sentences_to_documents(
    sentences: Iterable[Sentence], sources: Sequence[Document]
) -> list[Document]:
    """Map several sentences (order kept)."""
    return [sentence_to_document(s, sources) for s in sentences]


def note_to_document(note: Note, sources: Sequence[Document]) -> Document:
    """A summary-track note as a ``Document``: generated text, not a source sentence.

    ``metadata["kind"] == "summary"``; the note covers ``sources[doc_index]`` from
    ``char_start`` to ``sources[end_doc_index]`` at ``char_end``.
    """
    metadata = {
        **sources[note.doc_index].metadata,
        "kind": note.kind,
        "doc_index": note.doc_index,
        "char_start": note.char_start,
        "end_doc_index": note.end_doc_index,
        "char_end": note.char_end,
    }
    return Document(page_content=note.text, metadata=metadata)


def citation(sentence: Sentence) -> dict[str, object]:
    """A JSON-friendly description of one cited sentence."""
    return {
        "text": sentence.text,
        "score": float(sentence.score),
        "doc_index": sentence.doc_index,
        "char_start": sentence.char_start,
        "char_end": sentence.char_end,
    }
