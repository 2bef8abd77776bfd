"""Sentence splitting with character offsets, offline.

Punkt (nltk) finds sentence ends. Its pretrained English data is used when installed; otherwise
Punkt runs with a built-in abbreviation list: nothing is ever downloaded. On top of Punkt, blank
lines end a paragraph, CJK sentence ends (。！？) end a sentence, and a span longer than
``max_chars`` is cut at a line break, else at whitespace, else anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

_ABBREVIATIONS = (
    "mr mrs ms dr prof sr jr st mt ft rev gen col capt lt sgt gov sen rep pres vs etc "
    "e.g i.e al cf approx dept est fig inc ltd co corp no nos vol pp ed eds univ "
    "jan feb mar apr jun jul aug sep sept oct nov dec a.m p.m u.s u.k u.n ph.d b.c a.d"
).split()

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_CJK_END = re.compile(r"[。！？]+[」』”’\"')）]*")
_SPACE = re.compile(r"\s")

BLOCK_CHARS = 1 << 15
"""Characters handed to Punkt at a time when reading a stream."""

MAX_SENTENCE_CHARS = 2000
"""Longer spans are cut before tokenization (tokens cut them finer later)."""


def _make_punkt() -> PunktSentenceTokenizer:
    try:
        from nltk.tokenize import PunktTokenizer

        return PunktTokenizer("english")
    except (LookupError, ImportError, OSError, ValueError):
        params = PunktParameters()
        params.abbrev_types = set(_ABBREVIATIONS)
        return PunktSentenceTokenizer(params)


class SentenceSplitter:
    """Split text into sentence spans ``(start, end)`` with ``text[start:end]`` stripped."""

    def __init__(self, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        if max_chars < 16:
            raise ValueError(f"max_chars must be at least 16, got {max_chars}")
        self.max_chars = max_chars
        self._punkt = _make_punkt()

    def split(self, text: str) -> list[tuple[int, int]]:
        """All sentence spans of ``text``, in order, non-overlapping, never empty."""
        spans: list[tuple[int, int]] = []
        for p_start, p_end in _paragraphs(text):
            paragraph = text[p_start:p_end]
            for s_start, s_end in self._punkt.span_tokenize(paragraph):
                for c_start, c_end in _cjk_split(paragraph, s_start, s_end):
                    for start, end in _cap(paragraph, c_start, c_end, self.max_chars):
                        start, end = _strip(paragraph, start, end)
                        if start < end:
                            spans.append((p_start + start, p_start + end))
        return spans

    def split_stream(self, pieces: Iterable[str]) -> Iterator[tuple[int, int, str]]:
        """Split a document given as text pieces; yield ``(start, end, text)`` lazily.

        Only a bounded tail of the text is held: the last, possibly unfinished, sentence.
        """
        buffer = ""
        base = 0
        for piece in pieces:
            for i in range(0, len(piece), BLOCK_CHARS):
                buffer += piece[i : i + BLOCK_CHARS]
                if len(buffer) < BLOCK_CHARS:
                    continue
                spans = self.split(buffer)
                if len(spans) < 2:
                    continue
                for start, end in spans[:-1]:
                    yield base + start, base + end, buffer[start:end]
                cut = spans[-1][0]
                buffer = buffer[cut:]
                base += cut
        for start, end in self.split(buffer):
            yield base + start, base + end, buffer[start:end]


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        yield start, match.start()
        start = match.end()
    yield start, len(text)


def _cjk_split(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    for match in _CJK_END.finditer(text, start, end):
        if match.end() < end:
            yield start, match.end()
            start = match.end()
    yield start, end


def _cap(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    while end - start > max_chars:
        limit = start + max_chars
        cut = text.rfind("\n", start + max_chars // 2, limit)
        if cut < 0:
            window = text[start + max_chars // 2 : limit]
            spaces = [m.start() for m in _SPACE.finditer(window)]
            cut = start + max_chars // 2 + spaces[-1] if spaces else limit
        yield start, cut
        start = cut
    yield start, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
