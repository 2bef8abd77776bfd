"""``InfiniRetriLLM``: an LLM whose prompt can be far longer than its model's window."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.retrievers.infiniretri._engine import EngineSlot, split_engine_kwargs
from llama_index.retrievers.infiniretri._prompt import split_prompt

from infiniretri import Answer, InfiniRetri
from infiniretri.aio import iterate_in_thread, run_in_thread

DEFAULT_CONTEXT_WINDOW = 1 << 20
DEFAULT_MAX_NEW_TOKENS = 256
DEFAULT_QUESTION_TOKENS = 128


class InfiniRetriLLM(CustomLLM):
    """A LlamaIndex LLM that reads its prompt with InfiniRetri.

    The prompt's tail (the instruction and query LlamaIndex templates put last; at most
    ``question_tokens``, see ``_prompt.split_prompt``) is the question; everything before it is
    read chunk by chunk, keeping only the sentences the model's attention selects, and the
    answer is generated from those. A prompt can therefore be far longer than the model's own
    window: ``metadata.context_window`` is what this LLM accepts (``context_window``, prompt
    plus ``max_new_tokens``), enforced by ``complete``, not the model's window
    (``engine.context_window``).

    ``complete``/``stream_complete`` (and their async forms, which run in a worker thread)
    return ``CompletionResponse``\\ s; streamed ones carry the text so far and the new ``delta``.
    ``chat`` works through ``messages_to_prompt`` as with any ``CustomLLM``.

    Args:
        engine: The InfiniRetri engine; pass one to share a loaded model between components.
            None loads ``InfiniRetri.from_pretrained(**engine_kwargs)`` on first use.
        context_window: Longest prompt plus answer accepted, in tokens.
        max_new_tokens: Longest answer, in tokens.
        question_tokens: Most tokens of the prompt's tail taken as the question.
        stop: Strings that end the answer.
        **kwargs: ``CustomLLM`` fields (``callback_manager``, ``system_prompt``,
            ``completion_to_prompt``, ...); any other keyword is an engine option.
    """

    context_window: int = Field(
        default=DEFAULT_CONTEXT_WINDOW,
        gt=0,
        description="Longest prompt plus answer this LLM accepts, in tokens.",
    )
    max_new_tokens: int = Field(
        default=DEFAULT_MAX_NEW_TOKENS, gt=0, description="Longest answer, in tokens."
    )
    question_tokens: int = Field(
        default=DEFAULT_QUESTION_TOKENS,
        gt=0,
        description="Most tokens of the prompt's tail taken as the question.",
    )
    stop: list[str] | None = Field(default=None, description="Strings that end the answer.")
    _slot: EngineSlot = PrivateAttr()

    def __init__(self, engine: InfiniRetri | None = None, **kwargs: Any) -> None:
        own, engine_kwargs = split_engine_kwargs(kwargs, set(type(self).model_fields))
        for name in ("context_window", "max_new_tokens", "question_tokens"):
            value = own.get(name, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        slot = EngineSlot(engine, **engine_kwargs)
        super().__init__(**own)
        self._slot = slot

    @classmethod
    def class_name(cls) -> str:
        return "InfiniRetriLLM"

    @property
    def engine(self) -> InfiniRetri:
        """The engine (loaded now if it was left to load on first use)."""
        return self._slot.get()

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_new_tokens,
            is_chat_model=False,
            model_name=self.engine.model_name,
        )

    # -- the prompt ----------------------------------------------------------------------

    def _split(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> _Prompt:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        if not formatted:
            prompt = self.completion_to_prompt(prompt)
        engine = self.engine
        limit = self.context_window - self._max_new(kwargs)
        tokens = engine.count_tokens(prompt)
        if tokens > limit:
            raise ValueError(
                f"prompt is {tokens} tokens; this InfiniRetriLLM reads at most {limit} "
                "(context_window - max_new_tokens); raise context_window to read more"
            )
        document, question = split_prompt(prompt, engine.count_tokens, self.question_tokens)
        return _Prompt(document, question, tokens)

    def _max_new(self, kwargs: dict[str, Any]) -> int:
        value = kwargs.get("max_new_tokens", self.max_new_tokens)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {value!r}")
        return value

    def _stop(self, kwargs: dict[str, Any]) -> list[str] | None:
        stop: Sequence[str] | None = kwargs.get("stop", self.stop)
        return list(stop) if stop else None

    # -- completion ----------------------------------------------------------------------

    def _answer(
        self, prompt: _Prompt, kwargs: dict[str, Any], cancel: threading.Event | None
    ) -> CompletionResponse:
        answer = self.engine.answer(
            prompt.document,
            prompt.question,
            max_new_tokens=self._max_new(kwargs),
            stop=self._stop(kwargs),
            cancel=cancel,
        )
        return _completion(answer, prompt.tokens)

    def _stream(
        self, prompt: _Prompt, kwargs: dict[str, Any], cancel: threading.Event | None
    ) -> CompletionResponseGen:
        stream = self.engine.stream_answer(
            prompt.document,
            prompt.question,
            max_new_tokens=self._max_new(kwargs),
            stop=self._stop(kwargs),
            cancel=cancel,
        )
        text = ""
        try:
            for piece in stream:
                if cancel is not None and cancel.is_set():
                    return
                if piece:
                    text += piece
                    yield CompletionResponse(text=text, delta=piece)
            if not text:  # an empty answer is one empty response (LlamaIndex needs at least one)
                yield CompletionResponse(text="", delta="")
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._answer(self._split(prompt, formatted, kwargs), kwargs, cancel=None)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return self._stream(self._split(prompt, formatted, kwargs), kwargs, cancel=None)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        split = await run_in_thread(lambda cancel: self._split(prompt, formatted, kwargs))
        return await run_in_thread(lambda cancel: self._answer(split, kwargs, cancel))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        split = await run_in_thread(lambda cancel: self._split(prompt, formatted, kwargs))
        return iterate_in_thread(lambda cancel: self._stream(split, kwargs, cancel))


@dataclass(frozen=True)
class _Prompt:
    """A prompt split for the engine, and its length in tokens."""

    document: str
    question: str
    tokens: int


def _completion(answer: Answer, prompt_tokens: int) -> CompletionResponse:
    """The answer, with usage in ``raw`` the way LlamaIndex's token counting reads it.

    ``prompt_tokens`` is the prompt this LLM was given; the model itself read it chunk by chunk
    and answered from ``cache_tokens`` of it (``answer_prompt_tokens`` with the question).
    """
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": answer.generated_tokens}
    stats = dataclasses.asdict(answer.retrieval.stats)
    details = {
        "tokens_read": stats["tokens_read"],
        "cache_tokens": stats["cache_tokens"],
        "answer_prompt_tokens": answer.prompt_tokens,
    }
    return CompletionResponse(
        text=answer.text,
        raw={"usage": usage, "stats": stats, "answer_prompt_tokens": answer.prompt_tokens},
        additional_kwargs={**usage, **details},
    )
