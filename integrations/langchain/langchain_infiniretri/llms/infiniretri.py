"""``InfiniRetriLLM``: a text LLM that reads prompts of any length."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from infiniretri import Retrieval, Usage
from infiniretri import integration as core
from infiniretri.aio import iterate_in_thread, run_in_thread
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import LLM
from langchain_core.language_models.base import LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import PrivateAttr, ValidationInfo, field_validator, model_validator

from langchain_infiniretri._documents import citation, coerce_documents
from langchain_infiniretri._engine import InfiniRetriEngineMixin

_CALL_KWARGS = frozenset({"context", "question", "max_tokens"})


class InfiniRetriLLM(InfiniRetriEngineMixin, LLM):
    r"""A text-completion LLM for long prompts: scan the context, answer from the kept sentences.

    The prompt is split into a long context and a question by the rules every InfiniRetri
    integration shares (``infiniretri.integration.PromptSplitter``): the ``template`` (default
    ``"{context}\n\nQuestion: {question}"``) when the prompt has its shape, else the prompt's
    tail (whole lines or sentences, at most ``question_tokens``, stopping at a blank or separator
    line); a closing ``Answer:`` cue is dropped. Instead of one prompt you may pass ``context=``
    (a string, or a list of strings or ``Document``s) and ``question=`` as keyword arguments;
    whichever is missing is the prompt. The context is scanned with the model's attention and
    the answer is generated from the final sentence cache alone, so the context may be far longer
    than the model's window; with no context the question is answered directly.

    Token usage (``llm_output["token_usage"]``, each generation's ``generation_info``) counts
    every token the model read (``prompt_tokens``: the scan's and the answer prompt's) and wrote
    (``completion_tokens``), as ``infiniretri.Usage`` defines them.

    Example:
        ```python
        from langchain_infiniretri import InfiniRetriLLM

        llm = InfiniRetriLLM(max_tokens=64)
        llm.invoke(f"{book}\n\nQuestion: Who is the narrator?")
        llm.invoke("Who is the narrator?", context=book)
        for token in llm.stream("Who is the narrator?", context=book):
            print(token, end="")
        ```
    """

    template: str | None = core.DEFAULT_TEMPLATE
    """The prompt shape tried first, ``{context}`` and ``{question}`` once each; None: tail only."""
    question_tokens: int = core.DEFAULT_QUESTION_TOKENS
    """Most tokens of the prompt's tail taken as the question when the template does not match."""
    max_tokens: int = 256
    """Most tokens to generate."""
    stop: list[str] | None = None
    """Strings that end the answer (cut before the first one); merged with per-call ``stop``."""

    _splitter: core.PromptSplitter = PrivateAttr()

    @field_validator("max_tokens", "question_tokens", mode="before")
    @classmethod
    def _check_positive(cls, value: int, info: ValidationInfo) -> int:
        return core.check_positive_int(value, info.field_name)

    @model_validator(mode="after")
    def _make_splitter(self) -> InfiniRetriLLM:
        self._splitter = core.PromptSplitter(self.template, self.question_tokens)
        return self

    @property
    def _llm_type(self) -> str:
        return "infiniretri"

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        return {
            **self._engine_settings(),
            "template": self.template,
            "question_tokens": self.question_tokens,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "infiniretri"
        params["ls_model_name"] = self.model_name
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        return params

    # ------------------------------------------------------------------ request building
    def _check_call(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[int, list[str]]:
        """Check one call's arguments (no model work); return ``(max_tokens, stop)``."""
        unknown = set(kwargs) - _CALL_KWARGS
        if unknown:
            raise TypeError(f"InfiniRetriLLM got unexpected keyword argument(s): {sorted(unknown)}")
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
        context, question = kwargs.get("context"), kwargs.get("question")
        if context is not None and question is not None and prompt.strip():
            raise ValueError(
                "prompt: with both context= and question= given, the prompt must be empty"
            )
        if question is not None:
            core.check_text(question, "question")
        if context is not None:
            _context_texts(context)
        max_tokens = core.check_positive_int(
            kwargs.get("max_tokens", self.max_tokens), "max_tokens"
        )
        stops = [*(self.stop or []), *(core.check_stop(stop) or [])]
        return max_tokens, stops

    def _request(self, prompt: str, kwargs: dict[str, Any]) -> tuple[list[str], str]:
        """Return ``(sources, question)`` for one checked prompt."""
        context, question = kwargs.get("context"), kwargs.get("question")
        if context is None and question is None:
            split = self._splitter.split(prompt, self.get_engine().count_tokens)
            sources, question = ([split.context] if split.context else []), split.question
        else:
            sources = _context_texts(prompt if context is None else context)
            if question is None:
                question = prompt
        return sources, core.check_text(question, "question")

    def _answer(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any], cancel: Any
    ) -> tuple[str, Retrieval, Usage]:
        max_tokens, stops = self._check_call(prompt, stop, kwargs)
        sources, question = self._request(prompt, kwargs)
        answer = core.answer(
            self.get_engine(),
            sources,
            question,
            max_new_tokens=max_tokens,
            stop=stops,
            cancel=cancel,
        )
        return answer.text, answer.retrieval, answer.usage

    # ------------------------------------------------------------------ LangChain API
    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return self._answer(prompt, stop, kwargs, None)[0]

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        answers = [self._answer(prompt, stop, kwargs, None) for prompt in prompts]
        return self._result(answers, kwargs)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        for prompt in prompts:  # bad input fails fast, on the loop
            self._check_call(prompt, stop, kwargs)
        answers = [
            await run_in_thread(lambda cancel, p=prompt: self._answer(p, stop, kwargs, cancel))
            for prompt in prompts
        ]
        return self._result(answers, kwargs)

    def _result(
        self, answers: list[tuple[str, Retrieval, Usage]], kwargs: dict[str, Any]
    ) -> LLMResult:
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        usage = core.total_usage(usage for _, _, usage in answers)
        return LLMResult(
            generations=[
                [Generation(text=text, generation_info=_info(retrieval, usage, max_tokens))]
                for text, retrieval, usage in answers
            ],
            llm_output={"token_usage": usage.as_dict(), "model_name": self.model_name},
        )

    def _stream_pieces(
        self,
        prompt: str,
        stop: list[str] | None,
        kwargs: dict[str, Any],
        cancel: threading.Event | None,
    ) -> Iterator[GenerationChunk]:
        max_tokens, stops = self._check_call(prompt, stop, kwargs)
        sources, question = self._request(prompt, kwargs)
        stream = core.stream_answer(
            self.get_engine(),
            sources,
            question,
            max_new_tokens=max_tokens,
            stop=stops,
            cancel=cancel,
        )
        for piece in core.pieces(stream, cancel):
            yield GenerationChunk(text=piece)
        if stream.retrieval is not None and stream.usage is not None:
            info = _info(stream.retrieval, stream.usage, max_tokens)
            yield GenerationChunk(text="", generation_info=info)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        for chunk in self._stream_pieces(prompt, stop, kwargs, None):
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        self._check_call(prompt, stop, kwargs)
        chunks = iterate_in_thread(lambda cancel: self._stream_pieces(prompt, stop, kwargs, cancel))
        async for chunk in chunks:
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _context_texts(context: object) -> list[str]:
    if isinstance(context, str):
        return [context] if context.strip() else []
    if isinstance(context, Document):
        context = [context]
    if isinstance(context, Sequence) and len(context) == 0:
        return []
    return [doc.page_content for doc in coerce_documents(context, "context")]


def _info(retrieval: Retrieval, usage: Usage, max_tokens: int) -> dict[str, Any]:
    """Generation info: why it stopped, the cited sentences and the token counts."""
    return {
        "finish_reason": "length" if usage.completion_tokens >= max_tokens else "stop",
        "cited_sentences": [citation(s) for s in retrieval.sentences],
        **usage.as_dict(),
        "document_tokens": retrieval.stats.tokens_read,
    }
