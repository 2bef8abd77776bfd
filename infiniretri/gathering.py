"""Gathering every value: the evidence sentences that say the same thing with another value.

A small reader asked for all the values of one key names one of them, even when its evidence
holds several sentences that give them. After the answer, :func:`gather_values` finds the
sentence the answer copied its value from, and every other evidence sentence that reads the same
word for word except for that value: the same statement about the same subject. Their values
are added to the answer. Sentences that differ anywhere else (another subject, another
relation) add nothing, and neither do sentences that differ in a word of the question, so a
look-alike needle with another key never joins, even when the answer copied its whole sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w[\w'-]*|[^\w\s]")

GATHER_LEAD, GATHER_END = " (other values: ", ")"
"""Around the values gathered from parallel sentences, after the answer."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _WORD.finditer(text)]


def _find(words: list[str], part: list[str]) -> int:
    for i in range(len(words) - len(part) + 1):
        if words[i : i + len(part)] == part:
            return i
    return -1


def _is_word(token: str) -> bool:
    return bool(re.match(r"\w", token))


def _source(answer: list[str], sentences: list[list[str]]) -> tuple[int, int, int] | None:
    """``(sentence, start, end)``: the longest run of the answer's words (starting and ending
    with a word) that occurs in exactly one quoted sentence, where the answer took its value."""
    for size in range(len(answer), 0, -1):
        for a in range(len(answer) - size + 1):
            part = answer[a : a + size]
            if not (_is_word(part[0]) and _is_word(part[-1])):
                continue
            hits = [(i, _find(words, part)) for i, words in enumerate(sentences)]
            hits = [(i, at) for i, at in hits if at >= 0]
            if len(hits) == 1:
                i, at = hits[0]
                return i, at, at + size
    return None


def gather_values(answer: str, quoted: Sequence[str], question: str = "") -> list[str]:
    """Values that other quoted sentences give in the place of the answer's value.

    A value never holds a word of ``question``: where two sentences differ in a word the
    question names (its key, as with look-alike keys), they are two statements, not one.
    """
    asked = {w.lower() for w in _words(question) if _is_word(w)}
    answer_words = _words(answer)
    if not answer_words or len(quoted) < 2:
        return []
    sentences = [_words(q) for q in quoted]
    found = _source(answer_words, sentences)
    if found is None:
        return []
    source_index, start, end = found
    source = sentences[source_index]
    extra: list[str] = []
    for i, words in enumerate(sentences):
        if i == source_index:
            continue
        # The two sentences agree word for word outside one span each; the source's span must
        # lie inside the run the answer copied (it is the value), the other's is its value.
        head = 0
        while head < min(len(words), len(source)) and words[head] == source[head]:
            head += 1
        tail = 0
        most = min(len(words), len(source)) - head
        while tail < most and words[-1 - tail] == source[-1 - tail]:
            tail += 1
        if not (start <= head < len(source) - tail <= end) or head >= len(words) - tail:
            continue
        if head + tail < max(2, len(source) // 2):
            continue  # too little in common: another statement, not the same one
        if any(w.lower() in asked for w in source[head : len(source) - tail]):
            continue  # they differ in what the question asks about: another key
        spans = _spans(quoted[i])
        text = quoted[i][spans[head][0] : spans[len(words) - tail - 1][1]]
        if text not in extra and text not in answer:
            extra.append(text)
    return extra
