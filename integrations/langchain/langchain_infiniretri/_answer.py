"""Scan-then-answer steps shared by the LLM, the chat model and the tool."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from infiniretri import Answer, InfiniRetri, Retrieval, Sentence, Stats
from infiniretri.generation import GenerationCounter


@dataclass
class StreamCounts:
    """Token counts of one streamed answer, complete once the stream is exhausted."""

    prompt_tokens: int = 0
    generated_tokens: int = 0


def scan(
    engine: InfiniRetri,
    sources: Sequence[str],
    question: str,
    cancel: threading.Event | None = None,
) -> Retrieval:
    """Scan ``sources`` for ``question``; with no sources, an empty cache (answer directly)."""
    if not sources:
        return Retrieval(question=question, sentences=[], stats=Stats())
    return engine.retrieve(list(sources), question, cancel=cancel)


def answer(
    engine: InfiniRetri, retrieval: Retrieval, *, max_tokens: int, stop: Sequence[str] | None
) -> Answer:
    """Answer from the cache."""
    return engine.answer_from(retrieval, max_new_tokens=max_tokens, stop=list(stop or []))


def stream(
    engine: InfiniRetri,
    retrieval: Retrieval,
    counts: StreamCounts,
    *,
    max_tokens: int,
    stop: Sequence[str] | None,
) -> Iterator[str]:
    """Yield the answer's pieces; ``counts`` holds the token counts once exhausted."""
    # The engine fills a GenerationCounter while it streams (its ``_counter`` hook); the public
    # stream API yields text only.
    counter = GenerationCounter()
    pieces = engine.stream_answer_from(
        retrieval, max_new_tokens=max_tokens, stop=list(stop or []), _counter=counter
    )
    for piece in pieces:
        counts.prompt_tokens = counter.prompt_tokens
        counts.generated_tokens = counter.generated_tokens
        yield piece
    counts.prompt_tokens = counter.prompt_tokens
    counts.generated_tokens = counter.generated_tokens


def input_tokens(retrieval: Retrieval, prompt_tokens: int) -> int:
    """Tokens the model read for one answer: the scan's forward passes plus the answer prompt."""
    return retrieval.stats.tokens_processed + prompt_tokens


def citation(sentence: Sentence) -> dict[str, object]:
    """A JSON-friendly description of one cited sentence."""
    return {
        "text": sentence.text,
        "score": float(sentence.score),
        "doc_index": sentence.doc_index,
        "char_start": sentence.char_start,
        "char_end": sentence.char_end,
    }
