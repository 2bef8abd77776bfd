"""``ChatInfiniRetri``: a chat model whose context (history and documents) may be any length."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from infiniretri import Retrieval, Usage
from infiniretri import integration as core
from infiniretri.aio import iterate_in_thread, run_in_thread
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, field_validator

from langchain_infiniretri._documents import citation, coerce_documents
from langchain_infiniretri._engine import InfiniRetriEngineMixin
from langchain_infiniretri.chat_models._messages import ChatRequest, build_request

_CALL_KWARGS = frozenset({"documents", "max_tokens", "model", "temperature", "stream"})


@dataclass(frozen=True)
class _Call:
    """One validated chat request."""

    request: ChatRequest
    max_tokens: int
    stop: list[str]


class ChatInfiniRetri(InfiniRetriEngineMixin, BaseChatModel):
    """Chat with a long context: the last human message is the question, the rest is context.

    Every earlier message (system, human, AI, tool) and every document (``documents`` field, or
    ``documents=`` per call) is a context document. The model scans them with its own attention,
    keeps the sentences relevant to the question, and answers from those alone, so the history
    and documents may be far longer than the model's window. With no context, the question is
    answered directly.

    The reply's ``response_metadata["cited_sentences"]`` lists the kept sentences, each with its
    ``text``, ``score``, ``char_start``/``char_end`` into its source text and where it came from
    (``{"source": "message", "message_index": i}`` or ``{"source": "document",
    "document_index": j, "metadata": {...}}``). ``usage_metadata`` counts the tokens the model
    read (``input_tokens``: the scan's and the answer prompt's) and wrote (``output_tokens``), as
    ``infiniretri.Usage`` defines them.

    Decoding is greedy (deterministic). Tool calling, structured output and images are not
    supported.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_infiniretri import ChatInfiniRetri

        chat = ChatInfiniRetri(max_tokens=64)
        reply = chat.invoke(
            [("system", long_manual), ("human", "How do I reset the device?")]
        )
        reply = chat.invoke("How do I reset it?", documents=[Document(page_content=manual)])
        print(reply.content, reply.response_metadata["cited_sentences"])
        ```
    """

    documents: list[Document] = Field(default_factory=list)
    """Context documents read on every call (after the messages)."""
    max_tokens: int = 256
    """Most tokens to generate."""
    temperature: float | None = None
    """Only ``None`` or ``0``: decoding is greedy."""
    stop: list[str] | None = None
    """Strings that end the answer (cut before the first one); merged with per-call ``stop``."""
    streaming: bool = False
    """Stream through ``_stream`` on ``invoke`` (callbacks get each token)."""

    @field_validator("documents", mode="before")
    @classmethod
    def _check_documents(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 0:
            return []
        return coerce_documents(value)

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _check_max_tokens(cls, value: int) -> int:
        return core.check_positive_int(value, "max_tokens")

    @field_validator("temperature", mode="before")
    @classmethod
    def _check_temperature(cls, value: float | None) -> float | None:
        return _greedy_temperature(value)

    @property
    def _llm_type(self) -> str:
        return "infiniretri-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**self._engine_settings(), "max_tokens": self.max_tokens, "stop": self.stop}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="infiniretri",
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ------------------------------------------------------------------ request building
    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> _Call:
        unknown = set(kwargs) - _CALL_KWARGS
        if unknown:
            raise TypeError(
                f"ChatInfiniRetri got unexpected keyword argument(s): {sorted(unknown)}"
            )
        model = kwargs.get("model")
        if model is not None and model not in (self.model, self.model_name):
            raise ValueError(
                f"model: this ChatInfiniRetri runs {self.model_name!r}; per-call model "
                f"override ({model!r}) is not supported, build another ChatInfiniRetri"
            )
        _greedy_temperature(kwargs.get("temperature"))
        max_tokens = core.check_positive_int(
            kwargs.get("max_tokens", self.max_tokens), "max_tokens"
        )
        extra = kwargs.get("documents")
        extra_docs = [] if extra is None or extra == [] else coerce_documents(extra)
        request = build_request(messages, [*self.documents, *extra_docs])
        stops = [*(self.stop or []), *(core.check_stop(stop) or [])]
        return _Call(request, max_tokens, stops)

    def _metadata(self, call: _Call, retrieval: Retrieval, usage: Usage) -> dict[str, Any]:
        origins = call.request.origins
        return {
            "model_name": self.model_name,
            "model_provider": "infiniretri",
            "finish_reason": "length" if usage.completion_tokens >= call.max_tokens else "stop",
            "cited_sentences": [
                {**citation(s), **origins[s.doc_index]} for s in retrieval.sentences
            ],
            "document_tokens": retrieval.stats.tokens_read,
        }

    @staticmethod
    def _usage(usage: Usage) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )

    def _respond(self, call: _Call, cancel: threading.Event | None) -> ChatResult:
        answer = core.answer(
            self.get_engine(),
            call.request.sources,
            call.request.question,
            max_new_tokens=call.max_tokens,
            stop=call.stop,
            cancel=cancel,
        )
        message = AIMessage(
            content=answer.text,
            usage_metadata=self._usage(answer.usage),
            response_metadata=self._metadata(call, answer.retrieval, answer.usage),
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self.model_name},
        )

    def _chunks(self, call: _Call, cancel: threading.Event | None) -> Iterator[ChatGenerationChunk]:
        stream = core.stream_answer(
            self.get_engine(),
            call.request.sources,
            call.request.question,
            max_new_tokens=call.max_tokens,
            stop=call.stop,
            cancel=cancel,
        )
        for piece in core.pieces(stream, cancel):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        if stream.retrieval is None or stream.usage is None:
            return  # cancelled before the answer began
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=self._usage(stream.usage),
                response_metadata=self._metadata(call, stream.retrieval, stream.usage),
                chunk_position="last",
            )
        )

    # ------------------------------------------------------------------ LangChain API
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._respond(self._prepare(messages, stop, kwargs), None)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        return await run_in_thread(lambda cancel: self._respond(call, cancel))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._prepare(messages, stop, kwargs), None):
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        async for chunk in iterate_in_thread(lambda cancel: self._chunks(call, cancel)):
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _greedy_temperature(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != 0:
        raise ValueError(
            f"temperature: ChatInfiniRetri decodes greedily; only 0 or None is supported, "
            f"got {value!r}"
        )
    return float(value)
