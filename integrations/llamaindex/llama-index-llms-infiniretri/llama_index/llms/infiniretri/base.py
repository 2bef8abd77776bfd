"""``InfiniRetriLLM``: an LLM whose prompt can be far longer than its model's window."""

from __future__ import annotations

import dataclasses
import threading
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

from infiniretri import Answer, InfiniRetri
from infiniretri import integration as core
from infiniretri.aio import iterate_in_thread, run_in_thread

DEFAULT_CONTEXT_WINDOW = 1 << 20
DEFAULT_MAX_NEW_TOKENS = 256


class InfiniRetriLLM(CustomLLM):
    """A LlamaIndex LLM that reads its prompt with InfiniRetri.

    The prompt is split into the question and the context before it by the rules every
    InfiniRetri integration shares (``infiniretri.integration.PromptSplitter``): the
    ``template`` (default ``"{context}\n\nQuestion: {question}"``) when the prompt has its
    shape, else the prompt's tail (whole lines or sentences, at most ``question_tokens``,
    stopping at a blank line or a separator line such as LlamaIndex's
    ``---------------------``); a closing ``Answer:`` cue is dropped. The context is read chunk
    by chunk, keeping only the sentences the model's attention selects, and the answer is
    generated from those (no context: the question is answered directly). A prompt can
    therefore be far longer than the model's own window: ``metadata.context_window`` is what
    this LLM accepts (``context_window``, prompt plus ``max_new_tokens``), enforced by
    ``complete``, not the model's window (``engine.context_window``).

    ``complete``/``stream_complete`` (and their async forms, which run in a worker thread)
    return ``CompletionResponse``\\ s; streamed ones carry the text so far and the new ``delta``.
    ``chat`` works through ``messages_to_prompt`` as with any ``CustomLLM``. A completion's
    ``raw["usage"]`` (what ``TokenCountingHandler`` reads) counts every token the model read
    (``prompt_tokens``: the scan's and the answer prompt's) and wrote (``completion_tokens``),
    as ``infiniretri.Usage`` defines them.

    Args:
        engine: The InfiniRetri engine; pass one to share a loaded model between components.
            None loads ``InfiniRetri.from_pretrained(model, **model_kwargs, **engine_kwargs)``
            on first use.
        model: Without ``engine``: a local model directory; None is the embedded model.
        model_kwargs: Without ``engine``: loading options (``device``, ``dtype``, ...).
        engine_kwargs: Engine settings (``chunk_tokens``, ``top_k_tokens``, ...; see
            ``infiniretri.EngineSettings``); with an ``engine`` they are applied with
            ``engine.with_options`` (same model).
        context_window: Longest prompt plus answer accepted, in tokens.
        max_new_tokens: Longest answer, in tokens.
        question_tokens: Most tokens of the prompt's tail taken as the question.
        template: The prompt shape tried first; None splits by the tail rule only.
        stop: Strings that end the answer.
        **kwargs: ``CustomLLM`` fields (``callback_manager``, ``system_prompt``,
            ``completion_to_prompt``, ...); any other keyword is an engine setting.
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
        default=core.DEFAULT_QUESTION_TOKENS,
        gt=0,
        description="Most tokens of the prompt's tail taken as the question.",
    )
    template: str | None = Field(
        default=core.DEFAULT_TEMPLATE,
        description="The prompt shape tried first ({context} and {question} once each).",
    )
    stop: list[str] | None = Field(default=None, description="Strings that end the answer.")
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
    _splitter: core.PromptSplitter = PrivateAttr()

    def __init__(self, engine: InfiniRetri | None = None, **kwargs: Any) -> None:
        own, options = core.split_engine_options(kwargs, type(self).model_fields)
        for name in ("context_window", "max_new_tokens", "question_tokens"):
            core.check_positive_int(own.get(name, 1), name)
        own["stop"] = core.check_stop(own.get("stop"))
        holder = core.EngineHolder(
            engine,
            model=own.get("model"),
            model_kwargs=own.get("model_kwargs"),
            engine_kwargs=options,
        )
        own["engine_kwargs"] = options
        splitter = core.PromptSplitter(
            own.get("template", core.DEFAULT_TEMPLATE),
            own.get("question_tokens", core.DEFAULT_QUESTION_TOKENS),
        )
        super().__init__(**own)
        self._holder = holder
        self._splitter = splitter

    @classmethod
    def class_name(cls) -> str:
        return "InfiniRetriLLM"

    @property
    def engine(self) -> InfiniRetri:
        """The engine (loaded now if it was left to load on first use)."""
        return self._holder.get()

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_new_tokens,
            is_chat_model=False,
            model_name=self._holder.model_name,
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
        split = self._splitter.split(prompt, engine.count_tokens)
        return _Prompt([split.context] if split.context else [], split.question)

    def _max_new(self, kwargs: dict[str, Any]) -> int:
        value = kwargs.get("max_new_tokens", self.max_new_tokens)
        return core.check_positive_int(value, "max_new_tokens")

    def _stop(self, kwargs: dict[str, Any]) -> list[str] | None:
        return core.check_stop(kwargs.get("stop", self.stop))

    # -- completion ----------------------------------------------------------------------

    def _answer(
        self, prompt: _Prompt, kwargs: dict[str, Any], cancel: threading.Event | None
    ) -> CompletionResponse:
        answer = core.answer(
            self.engine,
            prompt.sources,
            prompt.question,
            max_new_tokens=self._max_new(kwargs),
            stop=self._stop(kwargs),
            cancel=cancel,
        )
        return _completion(answer)

    def _stream(
        self, prompt: _Prompt, kwargs: dict[str, Any], cancel: threading.Event | None
    ) -> CompletionResponseGen:
        stream = core.stream_answer(
            self.engine,
            prompt.sources,
            prompt.question,
            max_new_tokens=self._max_new(kwargs),
            stop=self._stop(kwargs),
            cancel=cancel,
        )
        text = ""
        for piece in core.pieces(stream, cancel):
            text += piece
            yield CompletionResponse(text=text, delta=piece)
        if not text and not (cancel is not None and cancel.is_set()):
            yield CompletionResponse(text="", delta="")  # LlamaIndex needs at least one

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
    """A prompt split for the engine: the context texts to read (maybe none) and the question."""

    sources: list[str]
    question: str


def _completion(answer: Answer) -> CompletionResponse:
    """The answer, with its usage in ``raw`` the way LlamaIndex's token counting reads it."""
    usage = answer.usage.as_dict()
    stats = dataclasses.asdict(answer.retrieval.stats)
    details = {"tokens_read": stats["tokens_read"], "cache_tokens": stats["cache_tokens"]}
    return CompletionResponse(
        text=answer.text,
        raw={"usage": usage, "stats": stats},
        additional_kwargs={**usage, **details},
    )
