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

LEAD_BLOCKS = 16
LEAD_BLOCK_CHARS = 1 << 13
"""A document's first :data:`LEAD_BLOCKS` blocks hold at most this many characters: the scan's
first forward waits for the units of its first chunk, and smaller blocks, split side by side by
the prep workers, hand them back sooner (16 blocks of 8k characters hold about 28k tokens, more
than the largest chunk of ``"auto"``)."""

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

        The document is cut into blocks (see :meth:`blocks`) that are split one at a time, so only
        a bounded part of the text is held.
        """
        for base, block in self.blocks(pieces):
            for start, end in self.split(block):
                yield base + start, base + end, block[start:end]

    def blocks(
        self,
        pieces: Iterable[str],
        block_chars: int = BLOCK_CHARS,
        lead_blocks: int = LEAD_BLOCKS,
        lead_chars: int = LEAD_BLOCK_CHARS,
    ) -> Iterator[tuple[int, str]]:
        """Cut a streamed document into ``(offset, text)`` blocks that split independently.

        A block ends at a paragraph break (where :meth:`split` ends a sentence anyway, so the
        blocks' sentences are exactly the whole text's), else where Punkt ends a sentence near
        the block's end, else at whitespace. Blocks hold ``size // 2`` to ``size`` characters
        (the last one fewer), where ``size`` is ``block_chars``, and at most ``lead_chars`` for
        the first ``lead_blocks`` blocks. The cut depends on the text alone, not on how it is
        cut into pieces, so blocks can be split in parallel with the same result.
        """
        buffer = ""
        base = made = 0
        size = min(block_chars, lead_chars) if lead_blocks > 0 else block_chars
        for piece in pieces:
            for i in range(0, len(piece), block_chars):
                buffer += piece[i : i + block_chars]
                while len(buffer) > size:
                    cut = self._block_end(buffer, size)
                    yield base, buffer[:cut]
                    buffer = buffer[cut:]
                    base += cut
                    made += 1
                    if made == lead_blocks:
                        size = block_chars
        if buffer:
            yield base, buffer

    def _block_end(self, text: str, block_chars: int) -> int:
        """Where to end a block of ``text`` (longer than ``block_chars``)."""
        low = block_chars // 2
        cut = -1
        for match in _PARAGRAPH_BREAK.finditer(text, low, block_chars + 1):
            if match.end() <= block_chars:
                cut = match.end()
        if cut > 0:
            return cut
        # No paragraph break: the last sentence start that Punkt finds near the end.
        window = max(low, block_chars - 2 * self.max_chars)
        starts = [a for a, _ in self.split(text[window:block_chars])[1:]]
        if starts:
            return window + starts[-1]
        spaces = [m.end() for m in _SPACE.finditer(text, low, block_chars)]
        return spaces[-1] if spaces else block_chars


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
