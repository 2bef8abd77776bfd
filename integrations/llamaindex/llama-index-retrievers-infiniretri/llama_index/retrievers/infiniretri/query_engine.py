"""``InfiniRetriQueryEngine``: read documents of any length, answer from the attention cache."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import llama_index.core.instrumentation as instrument
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import (
    RESPONSE_TYPE,
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation.events.synthesis import (
    SynthesizeEndEvent,
    SynthesizeStartEvent,
)
from llama_index.core.prompts.mixin import PromptMixinType
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle
from llama_index.core.settings import Settings

from infiniretri import Answer, InfiniRetri, Retrieval
from infiniretri import integration as core
from infiniretri.aio import iterate_in_thread, run_in_thread

from .base import (
    InfiniRetriCacheScan,
    InfiniRetriRetriever,
    SourceReader,
    check_query,
    check_query_input,
    hold_engine,
    nodes_of_index,
)
from .nodes import build_sources

dispatcher = instrument.get_dispatcher(__name__)

DEFAULT_MAX_NEW_TOKENS = 128


class InfiniRetriQueryEngine(BaseQueryEngine):
    """Answer queries over documents of any length with InfiniRetri.

    ``query(q)`` scans all the documents once with the query (the retrieval step: the model's
    attention keeps the most relevant sentences in a small cache) and then generates the answer
    from that cache alone (the synthesis step). The ``Response``'s ``source_nodes`` are the
    final cache in document order: one ``NodeWithScore`` per sentence whose score is its
    attention score, whose ``start_char_idx``/``end_char_idx`` index into the document its
    ``SOURCE`` relationship names. ``Response.metadata["infiniretri"]`` holds the scan's
    statistics and, once answered, the token ``usage`` (``infiniretri.Usage.as_dict()``).

    With ``streaming=True`` the answer comes as a ``StreamingResponse`` (``AsyncStreamingResponse``
    from ``aquery``) whose generator yields text as the model writes it. ``aquery`` runs the model
    in a worker thread and never blocks the event loop; cancelling it stops the scan before its
    next chunk.

    Args:
        nodes: Documents or nodes to read (see ``from_documents``/``from_nodes``).
        engine: The InfiniRetri engine; pass one to share a loaded model between components.
            None loads ``InfiniRetri.from_pretrained(model, **model_kwargs, **engine_kwargs)``
            on first use.
        streaming: Return streaming responses.
        max_new_tokens: Longest answer, in tokens.
        stop: Strings that end the answer (the text is cut before the first one).
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
        streaming: bool = False,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        stop: Sequence[str] | None = None,
        callback_manager: CallbackManager | None = None,
        *,
        model: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self._init(
            build_sources(nodes, "nodes"),
            hold_engine(engine, model, model_kwargs, engine_kwargs, options),
            streaming,
            max_new_tokens,
            stop,
            callback_manager,
        )

    def _init(
        self,
        sources: Sequence[Any],
        holder: core.EngineHolder,
        streaming: bool,
        max_new_tokens: int,
        stop: Sequence[str] | None,
        callback_manager: CallbackManager | None,
    ) -> None:
        self._max_new_tokens = core.check_positive_int(max_new_tokens, "max_new_tokens")
        self._stop = core.check_stop(stop)
        self._reader = SourceReader(sources, holder)
        self._streaming = bool(streaming)
        super().__init__(callback_manager=callback_manager or Settings.callback_manager)

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[BaseNode | str],
        engine: InfiniRetri | None = None,
        streaming: bool = False,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        stop: Sequence[str] | None = None,
        callback_manager: CallbackManager | None = None,
        model: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> InfiniRetriQueryEngine:
        """A query engine over whole documents (``Document``\\ s or strings)."""
        engine_obj = cls.__new__(cls)
        engine_obj._init(
            build_sources(documents, "documents"),
            hold_engine(engine, model, model_kwargs, engine_kwargs, options),
            streaming,
            max_new_tokens,
            stop,
            callback_manager,
        )
        return engine_obj

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[BaseNode],
        engine: InfiniRetri | None = None,
        streaming: bool = False,
        **kwargs: Any,
    ) -> InfiniRetriQueryEngine:
        """A query engine over an index's nodes.

        Chunks of one document that carry ``start_char_idx`` and a ``SOURCE`` relationship (as
        node parsers make them) are joined back, overlaps removed, so each sentence is read once
        and source nodes point into the original document. Other nodes are read as they are.
        """
        return cls(nodes, engine=engine, streaming=streaming, **kwargs)

    @classmethod
    def from_index(
        cls, index: Any, engine: InfiniRetri | None = None, streaming: bool = False, **kwargs: Any
    ) -> InfiniRetriQueryEngine:
        """A query engine over the nodes in an index's docstore (see ``from_nodes``)."""
        return cls.from_nodes(nodes_of_index(index), engine=engine, streaming=streaming, **kwargs)

    @property
    def engine(self) -> InfiniRetri:
        """The engine (loaded now if it was left to load on first use)."""
        return self._reader.holder.get()

    @property
    def streaming(self) -> bool:
        return self._streaming

    def as_retriever(self, similarity_top_k: int | None = None) -> InfiniRetriRetriever:
        """A retriever over the same documents, sharing this engine."""
        return InfiniRetriRetriever._from_reader(
            self._reader, similarity_top_k, self.callback_manager
        )

    def _get_prompt_modules(self) -> PromptMixinType:
        return {}

    def retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """The final cache for ``query_bundle``, in document order (no answer generated)."""
        return InfiniRetriCacheScan(self._reader, self.callback_manager).retrieve(query_bundle)

    async def aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await InfiniRetriCacheScan(self._reader, self.callback_manager).aretrieve(
            query_bundle
        )

    # -- query -------------------------------------------------------------------------------

    def query(self, str_or_query_bundle: str | QueryBundle) -> RESPONSE_TYPE:
        check_query_input(str_or_query_bundle)
        return super().query(str_or_query_bundle)

    async def aquery(self, str_or_query_bundle: str | QueryBundle) -> RESPONSE_TYPE:
        check_query_input(str_or_query_bundle)
        return await super().aquery(str_or_query_bundle)

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        query = check_query(query_bundle)
        with self.callback_manager.event(
            CBEventType.QUERY, payload={EventPayload.QUERY_STR: query}
        ) as query_event:
            scan = InfiniRetriCacheScan(self._reader, self.callback_manager)
            nodes = scan.retrieve(query_bundle)
            response = self._synthesize(query_bundle, scan.retrieval, nodes)
            query_event.on_end(payload={EventPayload.RESPONSE: response})
        return response

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        query = check_query(query_bundle)
        with self.callback_manager.event(
            CBEventType.QUERY, payload={EventPayload.QUERY_STR: query}
        ) as query_event:
            scan = InfiniRetriCacheScan(self._reader, self.callback_manager)
            nodes = await scan.aretrieve(query_bundle)
            response = await self._asynthesize(query_bundle, scan.retrieval, nodes)
            query_event.on_end(payload={EventPayload.RESPONSE: response})
        return response

    # -- synthesis: the answer is generated from the cache alone ----------------------------

    def _synthesize(
        self, query_bundle: QueryBundle, retrieval: Retrieval | None, nodes: list[NodeWithScore]
    ) -> RESPONSE_TYPE:
        retrieval = _scanned(retrieval)
        dispatcher.event(SynthesizeStartEvent(query=query_bundle))
        with self.callback_manager.event(
            CBEventType.SYNTHESIZE, payload={EventPayload.QUERY_STR: query_bundle.query_str}
        ) as event:
            metadata = _metadata(retrieval, nodes)
            if self._streaming:
                response: RESPONSE_TYPE = StreamingResponse(
                    response_gen=self._pieces(retrieval),
                    source_nodes=nodes,
                    metadata=metadata,
                )
            else:
                answer = self._answer(retrieval)
                response = Response(
                    answer.text, source_nodes=nodes, metadata=_with_answer(metadata, answer)
                )
            event.on_end(payload={EventPayload.RESPONSE: response})
        dispatcher.event(SynthesizeEndEvent(query=query_bundle, response=response))
        return response

    async def _asynthesize(
        self, query_bundle: QueryBundle, retrieval: Retrieval | None, nodes: list[NodeWithScore]
    ) -> RESPONSE_TYPE:
        retrieval = _scanned(retrieval)
        dispatcher.event(SynthesizeStartEvent(query=query_bundle))
        with self.callback_manager.event(
            CBEventType.SYNTHESIZE, payload={EventPayload.QUERY_STR: query_bundle.query_str}
        ) as event:
            metadata = _metadata(retrieval, nodes)
            if self._streaming:
                response: RESPONSE_TYPE = AsyncStreamingResponse(
                    response_gen=iterate_in_thread(partial(self._pieces, retrieval)),
                    source_nodes=nodes,
                    metadata=metadata,
                )
            else:
                answer = await run_in_thread(partial(self._answer, retrieval))
                response = Response(
                    answer.text, source_nodes=nodes, metadata=_with_answer(metadata, answer)
                )
            event.on_end(payload={EventPayload.RESPONSE: response})
        dispatcher.event(SynthesizeEndEvent(query=query_bundle, response=response))
        return response

    def _answer(self, retrieval: Retrieval, cancel: threading.Event | None = None) -> Answer:
        # Generation is bounded by max_new_tokens; cancel only matters to scans and streams.
        del cancel
        return self.engine.answer_from(
            retrieval, max_new_tokens=self._max_new_tokens, stop=self._stop
        )

    def _pieces(self, retrieval: Retrieval, cancel: threading.Event | None = None) -> Iterator[str]:
        """Answer text as the model writes it; stops early once ``cancel`` is set."""
        stream = self.engine.stream_answer_from(
            retrieval, max_new_tokens=self._max_new_tokens, stop=self._stop
        )
        yield from core.pieces(stream, cancel)


def _scanned(retrieval: Retrieval | None) -> Retrieval:
    if retrieval is None:  # pragma: no cover - InfiniRetriCacheScan always records its scan
        raise RuntimeError("the retrieval step returned without a scan result")
    return retrieval


def _metadata(retrieval: Retrieval, nodes: list[NodeWithScore]) -> dict[str, Any]:
    """Source-node metadata by node id (as LlamaIndex synthesizers do) plus scan statistics."""
    metadata: dict[str, Any] = {n.node.node_id: n.node.metadata for n in nodes}
    metadata["infiniretri"] = dataclasses.asdict(retrieval.stats)
    return metadata


def _with_answer(metadata: dict[str, Any], answer: Answer) -> dict[str, Any]:
    metadata["infiniretri"] = {**metadata["infiniretri"], "usage": answer.usage.as_dict()}
    return metadata
