"""What every framework integration of InfiniRetri needs, written once.

The LangChain (``langchain_infiniretri``) and LlamaIndex (``llama_index.*.infiniretri``)
adapters are thin: they translate their framework's types and conventions, and leave the rest
to this module.

- :class:`EngineHolder`: the engine a component reads with. Either a given engine (one loaded
  model shared by many components), or one loaded on first use, once, from ``model``,
  ``model_kwargs`` and ``engine_kwargs``. Every option is checked at construction, before any
  model is loaded.
- Checks that name the argument: :func:`check_text`, :func:`check_positive_int`,
  :func:`check_stop`, :func:`split_engine_options`.
- :class:`PromptSplitter`: one prompt string into the context to read and the question (the
  rules are in its docstring); linear time in the prompt's length.
- :func:`retrieve`, :func:`answer`, :func:`stream_answer`: scan zero or more context texts
  and answer from the final cache (no context: the question is answered directly).
  :func:`pieces` is the cancellable stream every adapter iterates.
- Usage: :class:`~infiniretri.results.Usage` is the one definition of token counts
  (``prompt_tokens`` = every token the model read, the scan's and the answer prompt's;
  ``completion_tokens`` = tokens it wrote). :func:`total_usage` adds several up.
"""

from __future__ import annotations

import inspect
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from . import (
    EMBEDDED_MODEL_ID,
    Answer,
    AnswerStream,
    EngineSettings,
    InfiniRetri,
    Retrieval,
    Stats,
    Usage,
)

__all__ = [
    "ANSWER_CUES",
    "DEFAULT_QUESTION_TOKENS",
    "DEFAULT_TEMPLATE",
    "EngineHolder",
    "PromptSplit",
    "PromptSplitter",
    "answer",
    "check_positive_int",
    "check_stop",
    "check_text",
    "drop_answer_cue",
    "match_template",
    "model_options",
    "pieces",
    "prompt_segments",
    "retrieve",
    "split_engine_options",
    "stream_answer",
    "total_usage",
]

# -- checks -----------------------------------------------------------------------------------


def check_text(value: object, name: str) -> str:
    """``value`` if it is a string with some non-space text, else a ``ValueError`` naming it."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


@overload
def check_positive_int(value: object, name: str, *, allow_none: Literal[False] = False) -> int: ...


@overload
def check_positive_int(value: object, name: str, *, allow_none: bool) -> int | None: ...


def check_positive_int(value: object, name: str, *, allow_none: bool = False) -> int | None:
    """``value`` if it is an int >= 1 (or None when allowed), else a ``ValueError`` naming it."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def check_stop(value: object, name: str = "stop") -> list[str] | None:
    """Stop strings as a list (None for none); a single string or a non-string is refused."""
    if value is None:
        return None
    if isinstance(value, str):
        raise ValueError(f"{name} must be a list of strings, not a single string")
    if not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of strings, got {type(value).__name__}")
    stops = list(value)
    for i, stop in enumerate(stops):
        if not isinstance(stop, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(stop).__name__}")
    return stops or None


def split_engine_options(
    kwargs: Mapping[str, Any], own: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split constructor keywords into a component's ``own`` fields and its engine settings.

    The settings are ``kwargs["engine_kwargs"]`` (when given) updated with every keyword not in
    ``own``; the fields never hold ``engine_kwargs``. :class:`EngineHolder` checks the settings.
    """
    fields = {k: v for k, v in kwargs.items() if k in own and k != "engine_kwargs"}
    options = _mapping(kwargs.get("engine_kwargs"), "engine_kwargs")
    options.update((k, v) for k, v in kwargs.items() if k not in own and k != "engine_kwargs")
    return fields, options


# -- the engine -------------------------------------------------------------------------------


def model_options() -> tuple[str, ...]:
    """The ``model_kwargs`` that ``InfiniRetri.from_pretrained`` takes (``device``, ...)."""
    signature = inspect.signature(InfiniRetri.from_pretrained)
    return tuple(
        name
        for name, p in signature.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "settings"
    )


class EngineHolder:
    """The engine a component reads with: given, or loaded on first use (once, thread-safe).

    Args:
        engine: A loaded engine to use and share. With ``engine_kwargs`` the holder uses
            ``engine.with_options(**engine_kwargs)`` (same model, other settings).
        model: Without ``engine``: a local model directory for ``InfiniRetri.from_pretrained``;
            None is the embedded model.
        model_kwargs: Without ``engine``: loading options (``device``, ``dtype``,
            ``trust_remote_code``, ...; see :func:`model_options`).
        engine_kwargs: Engine settings (names and checks from
            :class:`~infiniretri.settings.EngineSettings`).

    Every argument is checked here, before any model is loaded: a bad setting, an unknown
    option or an engine together with a model to load is a ``ValueError`` naming it.
    """

    def __init__(
        self,
        engine: InfiniRetri | None = None,
        *,
        model: str | os.PathLike[str] | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        model_kwargs = _mapping(model_kwargs, "model_kwargs")
        engine_kwargs = _mapping(engine_kwargs, "engine_kwargs")
        if engine is not None and not isinstance(engine, InfiniRetri):
            raise ValueError(
                f"engine must be an infiniretri.InfiniRetri or None, got {type(engine).__name__}"
            )
        if model is not None and not isinstance(model, (str, os.PathLike)):
            raise ValueError(f"model must be a path or None, got {type(model).__name__}")
        if engine is not None and (model is not None or model_kwargs):
            raise ValueError(
                "model: give either a loaded engine or a model to load, not both "
                f"(engine is {engine.model_name!r}, model is {model!r})"
            )
        loading = model_options()
        for name in model_kwargs:
            if name in EngineSettings.names():
                raise ValueError(
                    f"model_kwargs: {name} is an engine setting; give it in engine_kwargs"
                )
            if name not in loading:
                raise ValueError(
                    f"model_kwargs: unknown option {name!r} (options are {list(loading)})"
                )
        settings = EngineSettings.from_options(engine_kwargs)
        if engine is not None and engine_kwargs:
            engine = engine.with_options(**engine_kwargs)  # cheap; checks against the model
        self._engine = engine
        self._settings = engine.settings if engine is not None else settings
        self._model = None if model is None else os.fspath(model)
        self._model_kwargs = model_kwargs
        self._engine_kwargs = engine_kwargs
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the engine exists yet (given, or already loaded)."""
        return self._engine is not None

    @property
    def model_name(self) -> str:
        """The model's name, without loading it."""
        if self._engine is not None:
            return self._engine.model_name
        return self._model or EMBEDDED_MODEL_ID

    @property
    def settings(self) -> EngineSettings:
        """The engine's settings, without loading it."""
        return self._settings

    def get(self) -> InfiniRetri:
        """The engine, loading the model now if none was given (once, even across threads)."""
        engine = self._engine
        if engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = InfiniRetri.from_pretrained(
                        self._model, **self._model_kwargs, **self._engine_kwargs
                    )
                engine = self._engine
        return engine


def _mapping(value: object, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    return dict(value)


# -- the prompt -------------------------------------------------------------------------------

DEFAULT_TEMPLATE = "{context}\n\nQuestion: {question}"
"""The prompt shape tried first: context, a blank line, then ``Question: ...``."""
DEFAULT_QUESTION_TOKENS = 128
"""Most tokens of a prompt's tail taken as the question when the template does not match."""
ANSWER_CUES = ("answer", "response", "assistant")
"""Closing cues (``Answer:``, any case) dropped from a question: the engine asks for the answer."""

_END = re.compile(r"\n|[.!?]+")
r"""A line end, or a maximal run of sentence punctuation (a sentence end when whitespace follows).

Matched run by run and checked by hand: ``[.!?]+(?=\s)`` inside a lazy scan backtracks over
every run of punctuation and takes quadratic time on ``"....."`` or ``"?!?!"``.
"""
_SEPARATOR = re.compile(r"[-=_*#~]{3,}")


@dataclass(frozen=True)
class PromptSplit:
    """A prompt as the engine reads it: the context to scan and the question."""

    context: str
    """The text to read; ``""`` when there is none (the question is answered directly)."""
    question: str
    """The question, stripped; never empty."""


@dataclass(frozen=True)
class PromptSplitter:
    """Splits a prompt into the context to read and the question; one rule set for every adapter.

    The rules, in order:

    1. **Template.** When ``template`` (holding ``{context}`` and ``{question}`` once each) is
       given and the prompt has its shape (the literal text around the fields appears;
       leading and trailing whitespace of the prompt is ignored; the context is matched
       greedily, so a ``Question:`` inside the context does not end it), its fields are the
       context and the question.
    2. **Tail.** Otherwise the question is the prompt's tail: whole lines, and sentences within
       lines, taken from the end while they fit in ``question_tokens`` (always at least one),
       stopping early at a blank line or at a separator line such as
       ``---------------------``. Everything before it is the context.
    3. A closing ``Answer:`` cue (or ``Response:``/``Assistant:``, any case) is dropped from the
       question.
    4. A context with no text is ``""``: nothing is scanned and the question is answered
       directly. A prompt that leaves no question (it ends with a separator line) is all
       question.

    Every step runs in time linear in the prompt's length (no regex that backtracks).
    """

    template: str | None = DEFAULT_TEMPLATE
    question_tokens: int = DEFAULT_QUESTION_TOKENS

    def __post_init__(self) -> None:
        if self.template is not None:
            _template_parts(self.template)
        check_positive_int(self.question_tokens, "question_tokens")

    def split(self, prompt: str, count_tokens: Callable[[str], int]) -> PromptSplit:
        """Split ``prompt``; ``count_tokens`` measures the tail (the engine's ``count_tokens``)."""
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
        if self.template is not None:
            match = match_template(self.template, prompt)
            if match is not None:
                question = drop_answer_cue(match[1].strip()).strip()
                if question:
                    return PromptSplit(_text_or_empty(match[0]), question)
        context, question = _split_tail(
            drop_answer_cue(prompt.rstrip()), count_tokens, self.question_tokens
        )
        if not question:
            return PromptSplit("", prompt.strip())
        return PromptSplit(_text_or_empty(context), question)


def _text_or_empty(text: str) -> str:
    return text if text.strip() else ""


def _split_tail(
    prompt: str, count_tokens: Callable[[str], int], question_tokens: int
) -> tuple[str, str]:
    """``(context, question)`` by the tail rule; the question is stripped and may be empty."""
    pieces = prompt_segments(prompt)
    cut = len(pieces)
    used = 0
    taken = False
    while cut > 0:
        piece = pieces[cut - 1]
        text = piece.strip()
        if not text:
            if taken and "\n" in piece and (cut == 1 or pieces[cut - 2].endswith("\n")):
                break  # a blank line: the question is the last paragraph at most
            cut -= 1
            continue
        if _SEPARATOR.fullmatch(text):
            break
        cost = count_tokens(piece)
        if taken and used + cost > question_tokens:
            break
        used += cost
        taken = True
        cut -= 1
    return "".join(pieces[:cut]), "".join(pieces[cut:]).strip()


def prompt_segments(prompt: str) -> list[str]:
    """Lines, and sentences within lines, that join back to ``prompt`` exactly.

    A line ends after its ``\\n``; a sentence ends after a run of ``.``/``!``/``?`` followed by
    whitespace, and takes the spaces and tabs after it.
    """
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(prompt):
        end = match.end()
        if match.group() != "\n":
            if end < len(prompt) and not prompt[end].isspace():
                continue  # "3.14", "e.g.x": not a sentence end
            while end < len(prompt) and prompt[end] in " \t":
                end += 1
        pieces.append(prompt[start:end])
        start = end
    if start < len(prompt):
        pieces.append(prompt[start:])
    return pieces


def drop_answer_cue(text: str) -> str:
    """``text`` without a closing ``Answer:`` cue (any case; also ``Response:``/``Assistant:``).

    What ``re.sub(r"\\n?[ \\t]*(answer|response|assistant)[ \\t]*:[ \\t]*\\Z", "", text, flags=I)``
    does, by hand: that regex takes quadratic time on a long run of spaces.
    """
    head = text.rstrip(" \t")
    if not head.endswith(":"):
        return text
    head = head[:-1].rstrip(" \t")
    for cue in ANSWER_CUES:
        if head[-len(cue) :].lower() == cue:
            head = head[: -len(cue)].rstrip(" \t")
            return head[:-1] if head.endswith("\n") else head
    return text


def _template_parts(template: object) -> tuple[str, str, str, bool]:
    """``(before, between, after, context_first)``: the literal text around the two fields."""
    if not isinstance(template, str):
        raise ValueError(f"template must be a string or None, got {type(template).__name__}")
    for field in ("{context}", "{question}"):
        if template.count(field) != 1:
            raise ValueError(f"template must contain {field} exactly once, got {template!r}")
    context_first = template.index("{context}") < template.index("{question}")
    first, second = ("{context}", "{question}") if context_first else ("{question}", "{context}")
    before, rest = template.split(first, 1)
    between, after = rest.split(second, 1)
    # Leading/trailing whitespace of the prompt is not significant.
    return before.lstrip(), between, after.rstrip(), context_first


def match_template(template: str, prompt: str) -> tuple[str, str] | None:
    r"""``(context, question)`` when ``prompt`` has the shape of ``template``, else None.

    What the regex ``\s* before (.*) between (.*?) after \s*`` (context greedy, question lazy,
    ``DOTALL``) matches, found with ``str.find``/``rfind`` in linear time: the regex
    backtracks quadratically over long runs of whitespace. The question is not stripped.
    """
    before, between, after, context_first = _template_parts(template)
    start = 0
    if before:
        start = len(prompt) - len(prompt.lstrip())
        if not prompt.startswith(before, start):
            return None
        start += len(before)
    end = len(prompt)
    if after:
        end = len(prompt.rstrip()) - len(after)
        if end < start or not prompt.startswith(after, end):
            return None
    find = prompt.rfind if context_first else prompt.find
    at = find(between, start, end)
    if at < 0:
        return None
    first, second = prompt[start:at], prompt[at + len(between) : end]
    if not before:
        first = first.lstrip()  # the regex's leading whitespace
    return (first, second) if context_first else (second, first)


# -- scan and answer --------------------------------------------------------------------------


def retrieve(
    engine: InfiniRetri,
    sources: Sequence[str],
    question: str,
    *,
    cancel: threading.Event | None = None,
) -> Retrieval:
    """Scan ``sources`` for ``question``; with no sources, an empty cache (nothing is read)."""
    if not sources:
        return Retrieval(question=question.strip(), sentences=[], stats=Stats())
    return engine.retrieve(list(sources), question, cancel=cancel)


def answer(
    engine: InfiniRetri,
    sources: Sequence[str],
    question: str,
    *,
    max_new_tokens: int,
    stop: Sequence[str] | None = None,
    cancel: threading.Event | None = None,
) -> Answer:
    """Scan ``sources`` (none: answer directly) and answer ``question`` from the cache."""
    retrieval = retrieve(engine, sources, question, cancel=cancel)
    return engine.answer_from(retrieval, max_new_tokens=max_new_tokens, stop=list(stop or []))


def stream_answer(
    engine: InfiniRetri,
    sources: Sequence[str],
    question: str,
    *,
    max_new_tokens: int,
    stop: Sequence[str] | None = None,
    cancel: threading.Event | None = None,
) -> AnswerStream:
    """:func:`answer`, streamed: the scan runs when the stream is first read.

    ``stream.retrieval`` is set once the scan has finished and ``stream.usage`` once the stream
    has ended; iterate it through :func:`pieces` to honour ``cancel`` while it generates.
    """
    stops = list(stop or [])
    if not sources:
        empty = retrieve(engine, sources, question)
        return engine.stream_answer_from(empty, max_new_tokens=max_new_tokens, stop=stops)
    return engine.stream_answer(
        list(sources), question, max_new_tokens=max_new_tokens, stop=stops, cancel=cancel
    )


def pieces(stream: AnswerStream, cancel: threading.Event | None = None) -> Iterator[str]:
    """The stream's non-empty text pieces, as the model writes them.

    Stops before the next piece once ``cancel`` is set; the stream is closed however this
    ends (exhausted, cancelled, or the consumer stopping early), which stops generation and
    sets ``stream.usage``.
    """
    try:
        for piece in stream:
            if cancel is not None and cancel.is_set():
                return
            if piece:
                yield piece
    finally:
        stream.close()


def total_usage(usages: Iterable[Usage]) -> Usage:
    """Several answers' usage added up."""
    return sum(usages, Usage())
