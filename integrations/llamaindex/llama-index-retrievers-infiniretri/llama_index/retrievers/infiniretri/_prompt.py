"""Split an LLM prompt into the part InfiniRetri reads as a document and the question at its end.

LlamaIndex hands an LLM one string: context first, the instruction and the query last (as in
``DEFAULT_TEXT_QA_PROMPT``). The question is the prompt's tail: whole lines or sentences taken
from the end while they fit in ``question_tokens`` (at least one), stopping early at a separator
line such as ``---------------------``. Everything before it is the document. A closing
``Answer:`` cue is dropped from the question: the engine's own prompt asks for the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_END = re.compile(r"\n|[.!?]+")
r"""A line end, or a maximal run of sentence punctuation (a sentence end when whitespace follows).

Matched run by run and checked by hand: a regex with ``[.!?]+(?=\s)`` inside a lazy scan
backtracks over every run of punctuation and takes quadratic time on ``"....."`` or ``"?!?!"``.
"""
_SEPARATOR = re.compile(r"[-=_*#~]{3,}")
_ANSWER_CUES = ("answer", "response", "assistant")


def _drop_answer_cue(text: str) -> str:
    """``text`` without a closing ``Answer:`` cue (any case; also ``Response:``/``Assistant:``).

    What ``re.sub(r"\\n?[ \\t]*(answer|response|assistant)[ \\t]*:[ \\t]*\\Z", "", text, flags=I)``
    does, by hand: that regex took quadratic time on a long run of spaces.
    """
    head = text.rstrip(" \t")
    if not head.endswith(":"):
        return text
    head = head[:-1].rstrip(" \t")
    for cue in _ANSWER_CUES:
        if head[-len(cue) :].lower() == cue:
            head = head[: -len(cue)].rstrip(" \t")
            return head[:-1] if head.endswith("\n") else head
    return text


def _segments(prompt: str) -> list[str]:
    """Lines, and sentences within long lines, that join back to ``prompt``."""
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


def split_prompt(
    prompt: str, count_tokens: Callable[[str], int], question_tokens: int
) -> tuple[str, str]:
    """Return ``(document, question)`` for ``prompt``; they never overlap.

    When nothing precedes the question (a short prompt) the whole prompt is the document too,
    so the model reads what it was asked.
    """
    pieces = _segments(prompt)
    cut = len(pieces)
    used = 0
    while cut > 0:
        piece = pieces[cut - 1]
        if _SEPARATOR.fullmatch(piece.strip()):
            break
        cost = count_tokens(piece) if piece.strip() else 0
        if used and used + cost > question_tokens:
            break
        used += cost
        cut -= 1
    question = _drop_answer_cue("".join(pieces[cut:]).strip()).strip()
    document = "".join(pieces[:cut])
    if not question:
        question = prompt.strip()
    if not document.strip():
        document = prompt
    return document, question
