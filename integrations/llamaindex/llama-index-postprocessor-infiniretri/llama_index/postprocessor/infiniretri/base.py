"""``InfiniRetriNodePostprocessor``: keep only the sentences the model attends to."""

from __future__ import annotations

import threading
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from llama_index.retrievers.infiniretri.base import check_query
from llama_index.retrievers.infiniretri.nodes import build_sources, sentence_nodes

from infiniretri import InfiniRetri
from infiniretri import integration as core
from infiniretri.aio import run_in_thread


class InfiniRetriNodePostprocessor(BaseNodePostprocessor):
    """Cut retrieved nodes down to the sentences InfiniRetri's attention selects.

    Put it after any retriever (a vector index's, BM25's): the retrieved nodes are read as
    documents in one InfiniRetri scan with the query, and what comes out is the scan's final
    cache, one ``NodeWithScore`` per sentence scored by attention, best first (``top_n`` of
    them, or the whole cache when ``top_n`` is None). Far fewer tokens then reach the LLM.

    Each sentence node's ``start_char_idx``/``end_char_idx`` index into the document its
    ``SOURCE`` relationship names: the retrieved chunk's source document when the chunk carries
    its offsets (as node parsers make them), else the retrieved node itself. Overlapping chunks
    of one document are read once.

    Args:
        engine: The InfiniRetri engine; pass one to share a loaded model between components.
            None loads ``InfiniRetri.from_pretrained(model, **model_kwargs, **engine_kwargs)``
            on first use.
        top_n: How many sentences to keep; None keeps the whole cache.
        model: Without ``engine``: a local model directory; None is the embedded model.
        model_kwargs: Without ``engine``: loading options (``device``, ``dtype``, ...).
        engine_kwargs: Engine settings (``chunk_tokens``, ``top_k_tokens``, ...; see
            ``infiniretri.EngineSettings``); with an ``engine`` they are applied with
            ``engine.with_options`` (same model).
        callback_manager: Callback manager (a query engine sets its own).
        **kwargs: Any other keyword is an engine setting.
    """

    top_n: int | None = Field(
        default=None, description="Sentences to keep, best first; None keeps the whole cache."
    )
    model: str | None = Field(
        default=None, description="Local model directory to load; None: the embedded model."
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Loading options (device, dtype, ...)."
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Engine settings (chunk_tokens, top_k_tokens, ...)."
    )
    _holder: core.EngineHolder = PrivateAttr()

    def __init__(
        self, engine: InfiniRetri | None = None, top_n: int | None = None, **kwargs: Any
    ) -> None:
        core.check_positive_int(top_n, "top_n", allow_none=True)
        own, options = core.split_engine_options(kwargs, type(self).model_fields)
        holder = core.EngineHolder(
            engine,
            model=own.get("model"),
            model_kwargs=own.get("model_kwargs"),
            engine_kwargs=options,
        )
        callback_manager = own.pop("callback_manager", None) or CallbackManager()
        super().__init__(
            top_n=top_n, callback_manager=callback_manager, engine_kwargs=options, **own
        )
        self._holder = holder

    @classmethod
    def class_name(cls) -> str:
        return "InfiniRetriNodePostprocessor"

    @property
    def engine(self) -> InfiniRetri:
        """The engine (loaded now if it was left to load on first use)."""
        return self._holder.get()

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return self._select(nodes, query_bundle, cancel=None)

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return await run_in_thread(lambda cancel: self._select(nodes, query_bundle, cancel))

    def _select(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None,
        cancel: threading.Event | None,
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("query_bundle is required: the query is what the model attends to")
        query = check_query(query_bundle)
        readable = [n.node for n in nodes if n.node.get_content(MetadataMode.NONE).strip()]
        if not readable:
            return []
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self._holder.model_name,
                EventPayload.QUERY_STR: query,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            sources = build_sources(readable, "nodes")
            retrieval = self.engine.retrieve([s.text for s in sources], query, cancel=cancel)
            limit = self.top_n if self.top_n is not None else len(retrieval.sentences)
            kept = retrieval.top(limit) if limit else []
            selected = sentence_nodes(kept, sources)
            event.on_end(payload={EventPayload.NODES: selected})
        return selected
