"""``InfiniRetriLLM``: a text LLM that reads prompts of any length."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from infiniretri import Answer
from infiniretri.aio import iterate_in_thread, run_in_thread
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import LLM
from langchain_core.language_models.base import LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import field_validator

from langchain_infiniretri import _answer
from langchain_infiniretri._documents import check_k, check_question, coerce_documents
from langchain_infiniretri._engine import InfiniRetriEngineMixin
from langchain_infiniretri._split import DEFAULT_SPLIT_TEMPLATE, PromptSplitter

_CALL_KWARGS = frozenset({"context", "question", "max_tokens"})


class InfiniRetriLLM(InfiniRetriEngineMixin, LLM):
    r"""A text-completion LLM for long prompts: scan the context, answer from the kept sentences.

    The prompt is split into a long context and a question by ``template`` (default
    ``"{context}\n\nQuestion: {question}"``; a prompt that does not match is split at its last
    blank line). Instead of one prompt you may pass ``context=`` (a string, or a list of strings
    or ``Document``s) and ``question=`` as keyword arguments; whichever is missing is the prompt.
    The context is scanned with the model's attention and the answer is generated from the final
    sentence cache alone, so the context may be far longer than the model's window.

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

    template: str = DEFAULT_SPLIT_TEMPLATE
    """How a prompt splits into ``{context}`` and ``{question}`` (each exactly once)."""
    max_tokens: int = 256
    """Most tokens to generate."""
    stop: list[str] | None = None
    """Strings that end the answer (cut before the first one); merged with per-call ``stop``."""

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        PromptSplitter(value)
        return value

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _check_max_tokens(cls, value: int) -> int:
        return check_k(value, "max_tokens")  # type: ignore[return-value]

    @property
    def _llm_type(self) -> str:
        return "infiniretri"

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        return {
            **self._engine_settings(),
            "template": self.template,
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
    def _request(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[list[str], str, int, list[str]]:
        """Return ``(sources, question, max_tokens, stop)`` for one prompt."""
        unknown = set(kwargs) - _CALL_KWARGS
        if unknown:
            raise TypeError(f"InfiniRetriLLM got unexpected keyword argument(s): {sorted(unknown)}")
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
        context, question = kwargs.get("context"), kwargs.get("question")
        if context is None and question is None:
            text, question = PromptSplitter(self.template).split(prompt)
            sources = [text] if text.strip() else []
        else:
            if context is not None and question is not None and prompt.strip():
                raise ValueError(
                    "prompt: with both context= and question= given, the prompt must be empty"
                )
            if question is None:
                question = prompt
            if context is None:
                context = prompt
            sources = _context_texts(context)
        check_question(question, "question")
        max_tokens = check_k(kwargs.get("max_tokens", self.max_tokens), "max_tokens")
        return sources, question, max_tokens, [*(self.stop or []), *(stop or [])]  # type: ignore[return-value]

    def _answer(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any], cancel: Any
    ) -> Answer:
        sources, question, max_tokens, stops = self._request(prompt, stop, kwargs)
        engine = self.get_engine()
        retrieval = _answer.scan(engine, sources, question, cancel)
        return _answer.answer(engine, retrieval, max_tokens=max_tokens, stop=stops)

    # ------------------------------------------------------------------ LangChain API
    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return self._answer(prompt, stop, kwargs, None).text

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
            self._request(prompt, stop, kwargs)
        answers = [
            await run_in_thread(lambda cancel, p=prompt: self._answer(p, stop, kwargs, cancel))
            for prompt in prompts
        ]
        return self._result(answers, kwargs)

    def _result(self, answers: list[Answer], kwargs: dict[str, Any]) -> LLMResult:
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        for answer in answers:
            usage["prompt_tokens"] += _answer.input_tokens(answer.retrieval, answer.prompt_tokens)
            usage["completion_tokens"] += answer.generated_tokens
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return LLMResult(
            generations=[
                [Generation(text=answer.text, generation_info=_info(answer, max_tokens))]
                for answer in answers
            ],
            llm_output={"token_usage": usage, "model_name": self.model_name},
        )

    def _stream_pieces(
        self,
        prompt: str,
        stop: list[str] | None,
        kwargs: dict[str, Any],
        cancel: threading.Event | None,
    ) -> Iterator[GenerationChunk]:
        sources, question, max_tokens, stops = self._request(prompt, stop, kwargs)
        engine = self.get_engine()
        retrieval = _answer.scan(engine, sources, question, cancel)
        counts = _answer.StreamCounts()
        for piece in _answer.stream(engine, retrieval, counts, max_tokens=max_tokens, stop=stops):
            yield GenerationChunk(text=piece)
        info = _info(
            Answer("", retrieval, counts.prompt_tokens, counts.generated_tokens), max_tokens
        )
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
        self._request(prompt, stop, kwargs)
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


def _info(answer: Answer, max_tokens: int) -> dict[str, Any]:
    """Generation info: why it stopped, the cited sentences and the token counts."""
    retrieval = answer.retrieval
    return {
        "finish_reason": "length" if answer.generated_tokens >= max_tokens else "stop",
        "cited_sentences": [_answer.citation(s) for s in retrieval.sentences],
        "prompt_tokens": _answer.input_tokens(retrieval, answer.prompt_tokens),
        "completion_tokens": answer.generated_tokens,
        "document_tokens": retrieval.stats.tokens_read,
    }
