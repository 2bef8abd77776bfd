"""``InfiniRetriRetriever``: the model's attention picks the sentences, no embeddings."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle
from llama_index.core.settings import Settings

from infiniretri import InfiniRetri, Retrieval
from infiniretri import integration as core
from infiniretri.aio import run_in_thread

from .nodes import SourceText, build_sources, note_node, sentence_nodes


def check_query(query_bundle: QueryBundle | None) -> str:
    """The query string, or a ``ValueError`` when there is none."""
    # Not a QueryBundle (bytes, a number...): LlamaIndex passes anything but str through.
    query = getattr(query_bundle, "query_str", None)
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must be a non-empty string")
    return query


def check_query_input(value: object) -> None:
    """A ``ValueError`` naming the type when a query is neither text nor a ``QueryBundle``."""
    if not isinstance(value, (str, QueryBundle)):
        raise ValueError(f"query must be a string or a QueryBundle, got {type(value).__name__}")


def check_top(name: str, value: int | None) -> int | None:
    """``value`` when it is None or a positive int, else a ``ValueError`` naming ``name``."""
    return core.check_positive_int(value, name, allow_none=True)


def hold_engine(
    engine: InfiniRetri | None,
    model: str | None,
    model_kwargs: dict[str, Any] | None,
    engine_kwargs: dict[str, Any] | None,
    options: dict[str, Any],
) -> core.EngineHolder:
    """The engine of a component: given, or loaded on first use; ``options`` add settings."""
    _, settings = core.split_engine_options({"engine_kwargs": engine_kwargs, **options}, ())
    return core.EngineHolder(engine, model=model, model_kwargs=model_kwargs, engine_kwargs=settings)


class SourceReader:
    """Documents and the engine that scans them; shared by the retriever and the query engine."""

    def __init__(self, sources: Sequence[SourceText], holder: core.EngineHolder) -> None:
        self.sources = list(sources)
        self.holder = holder

    def scan(self, question: str, cancel: threading.Event | None = None) -> Retrieval:
        """Read every document with the question and return the final sentence cache."""
        return self.holder.get().retrieve([s.text for s in self.sources], question, cancel=cancel)

    def nodes(self, retrieval: Retrieval, top_k: int | None = None) -> list[NodeWithScore]:
        """The cache as nodes: the ``top_k`` best first, or all of it in document order."""
        sentences = retrieval.sentences if top_k is None else retrieval.top(top_k)
        notes = [note_node(n, self.sources) for n in retrieval.notes]
        return sentence_nodes(sentences, self.sources) + notes


class InfiniRetriRetriever(BaseRetriever):
    """Retrieve sentences by the attention of the model that will answer, not by embeddings.

    Each query is one InfiniRetri scan over all the documents: chunk by chunk the model reads
    ``cache + chunk + query`` and keeps the sentences its retrieval-layer attention scores
    highest. The result is that final cache, one ``NodeWithScore`` per sentence, best first
    (``similarity_top_k`` of them, or the whole cache when it is None). Each node's
    ``start_char_idx``/``end_char_idx`` index into the document its ``SOURCE`` relationship
    names.

    Args:
        nodes: Documents or nodes to read (strings become Documents). Chunks cut by a node
            parser are read as their original documents (see ``from_nodes``).
        engine: The InfiniRetri engine; pass one to share a loaded model between components.
            None loads ``InfiniRetri.from_pretrained(model, **model_kwargs, **engine_kwargs)``
            on first use.
        similarity_top_k: How many sentences to return; None returns the whole cache.
        callback_manager: Defaults to ``Settings.callback_manager``.
        model: Without ``engine``: a local model directory; None is the embedded model.
        model_kwargs: Without ``engine``: loading options (``device``, ``dtype``, ...).
        engine_kwargs: Engine settings (``chunk_tokens``, ``top_k_tokens``, ...; see
            ``infiniretri.EngineSettings``); with an ``engine`` they are applied with
            ``engine.with_options`` (same model).
        **options: More engine settings, as keywords.
    """

    def __init__(
        self,
        nodes: Sequence[BaseNode | str],
        engine: InfiniRetri | None = None,
        similarity_top_k: int | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        *,
        model: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        check_top("similarity_top_k", similarity_top_k)
        holder = hold_engine(engine, model, model_kwargs, engine_kwargs, options)
        reader = SourceReader(build_sources(nodes, "nodes"), holder)
        self._init(reader, similarity_top_k, callback_manager, verbose)

    def _init(
        self,
        reader: SourceReader,
        similarity_top_k: int | None,
        callback_manager: CallbackManager | None,
        verbose: bool = False,
    ) -> None:
        self._similarity_top_k = check_top("similarity_top_k", similarity_top_k)
        self._reader = reader
        super().__init__(
            callback_manager=callback_manager or Settings.callback_manager, verbose=verbose
        )

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[BaseNode | str],
        engine: InfiniRetri | None = None,
        similarity_top_k: int | None = None,
        callback_manager: CallbackManager | None = None,
        *,
        model: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> InfiniRetriRetriever:
        """A retriever over whole documents (``Document``\\ s or strings)."""
        check_top("similarity_top_k", similarity_top_k)
        holder = hold_engine(engine, model, model_kwargs, engine_kwargs, options)
        reader = SourceReader(build_sources(documents, "documents"), holder)
        return cls._from_reader(reader, similarity_top_k, callback_manager)

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[BaseNode],
        engine: InfiniRetri | None = None,
        similarity_top_k: int | None = None,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> InfiniRetriRetriever:
        """A retriever over an index's nodes.

        Chunks of one document that carry ``start_char_idx`` and a ``SOURCE`` relationship (as
        node parsers make them) are joined back, overlaps removed, so each sentence is read once
        and offsets point into the original document. Other nodes are read as they are.
        """
        return cls(
            nodes,
            engine=engine,
            similarity_top_k=similarity_top_k,
            callback_manager=callback_manager,
            **kwargs,
        )

    @classmethod
    def from_index(
        cls, index: Any, engine: InfiniRetri | None = None, **kwargs: Any
    ) -> InfiniRetriRetriever:
        """A retriever over the nodes in an index's docstore (see ``from_nodes``)."""
        return cls.from_nodes(nodes_of_index(index), engine=engine, **kwargs)

    @classmethod
    def _from_reader(
        cls,
        reader: SourceReader,
        similarity_top_k: int | None,
        callback_manager: CallbackManager | None,
    ) -> InfiniRetriRetriever:
        """A retriever over the same documents and engine as ``reader`` (no copy, no reload)."""
        retriever = cls.__new__(cls)
        retriever._init(reader, similarity_top_k, callback_manager)
        return retriever

    @property
    def engine(self) -> InfiniRetri:
        """The engine (loaded now if it was left to load on first use)."""
        return self._reader.holder.get()

    @property
    def similarity_top_k(self) -> int | None:
        return self._similarity_top_k

    def retrieve(self, str_or_query_bundle: str | QueryBundle) -> list[NodeWithScore]:
        check_query_input(str_or_query_bundle)
        return super().retrieve(str_or_query_bundle)

    async def aretrieve(self, str_or_query_bundle: str | QueryBundle) -> list[NodeWithScore]:
        check_query_input(str_or_query_bundle)
        return await super().aretrieve(str_or_query_bundle)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        retrieval = self._reader.scan(check_query(query_bundle))
        return self._reader.nodes(retrieval, self._top_k(retrieval))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        retrieval = await run_in_thread(partial(self._reader.scan, check_query(query_bundle)))
        return self._reader.nodes(retrieval, self._top_k(retrieval))

    def _top_k(self, retrieval: Retrieval) -> int | None:
        # Without a limit the whole cache is returned, best first like other retrievers.
        if self._similarity_top_k is not None:
            return self._similarity_top_k
        return len(retrieval.sentences) or None


class InfiniRetriCacheScan(BaseRetriever):
    """The retrieval step of one query-engine call: the whole cache, in document order.

    A fresh instance per call keeps that call's ``Retrieval`` for the answer step, while
    ``BaseRetriever.retrieve`` fires the retrieval span, events and callbacks as usual.
    """

    def __init__(self, reader: SourceReader, callback_manager: CallbackManager) -> None:
        super().__init__(callback_manager=callback_manager)
        self._reader = reader
        self.retrieval: Retrieval | None = None

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        self.retrieval = self._reader.scan(check_query(query_bundle))
        return self._reader.nodes(self.retrieval)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        scan = partial(self._reader.scan, check_query(query_bundle))
        self.retrieval = await run_in_thread(scan)
        return self._reader.nodes(self.retrieval)


def nodes_of_index(index: Any) -> list[BaseNode]:
    """The nodes an index keeps in its docstore, in insertion order."""
    docstore = getattr(index, "docstore", None)
    if docstore is None:
        raise ValueError(f"index: a {type(index).__name__} has no docstore to read nodes from")
    nodes = list(docstore.docs.values())
    if not nodes:
        raise ValueError(
            "index: its docstore holds no nodes (a vector store that keeps the text itself "
            "does not fill it); pass the nodes with from_nodes(...) instead"
        )
    return nodes
