"""The needle-in-a-haystack documents: Paul Graham essays with the San Francisco needle.

The haystack is the essays, repeated past their end when a longer one is asked for. The needle is
placed at a sentence boundary: the last sentence end at or before the requested depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NEEDLE = (
    "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a "
    "sunny day."
)
QUESTION = "What is the best thing to do in San Francisco?"
NEEDLE_KEY = "eat a sandwich and sit in Dolores Park"
"""A sentence in the final cache holding this is a retrieval hit."""

LENGTHS = (4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000, 1_000_000)
DEPTHS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)

_SENTENCE_END = re.compile(
    r"(?<!\b[A-Z])(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bvs)(?<!\be\.g)(?<!\bi\.e)"
    r"[.!?][\"')\]]*(?=\s|[A-Z]|$)"
)


def answer_hit(answer: str) -> bool:
    """The answer names both Dolores Park and the sandwich."""
    low = answer.lower()
    return "dolores park" in low and "sandwich" in low


def retrieval_hit(context: str) -> bool:
    """The retrieved text holds the needle."""
    return NEEDLE_KEY.lower() in " ".join(context.split()).lower()


@dataclass(frozen=True)
class Haystack:
    """One document of the grid."""

    text: str
    length: int
    """Requested length in tokens."""
    depth: int
    """Requested depth in percent."""
    needle_char: int
    """Where the needle starts in ``text``."""

    @property
    def actual_depth(self) -> float:
        return 100.0 * self.needle_char / max(1, len(self.text))


class HaystackBuilder:
    """Builds haystacks of exact token lengths for one tokenizer (tokenizes the essays once)."""

    def __init__(self, essays: str, tokenizer, separator: str = "\n\n") -> None:
        self.essays = essays
        self.tokenizer = tokenizer
        self.separator = separator
        enc = tokenizer(essays, add_special_tokens=False, return_offsets_mapping=True)
        self._ends = [end for _, end in enc["offset_mapping"]]
        self.needle_tokens = len(
            tokenizer(" " + NEEDLE + " ", add_special_tokens=False)["input_ids"]
        )

    @property
    def essay_tokens(self) -> int:
        return len(self._ends)

    def _prefix(self, tokens: int) -> str:
        """About ``tokens`` tokens of the (repeated) essays, cut at a token boundary."""
        parts = []
        left = tokens
        while left > self.essay_tokens:
            parts.append(self.essays)
            left -= self.essay_tokens + 2  # the separator costs about two tokens
        if left > 0:
            parts.append(self.essays[: self._ends[left - 1]])
        return self.separator.join(parts)

    def build(self, length: int, depth: int) -> Haystack:
        """A document of about ``length`` tokens with the needle at ``depth`` percent."""
        if length < 256:
            raise ValueError(f"length must be at least 256 tokens, got {length}")
        if not 0 <= depth <= 100:
            raise ValueError(f"depth must be within 0..100, got {depth}")
        hay = self._prefix(length - self.needle_tokens)
        hay = hay[: sentence_boundary(hay, len(hay) - 1)] or hay  # end on a whole sentence
        target = len(hay) * depth // 100
        at = sentence_boundary(hay, target)
        head, tail = hay[:at].rstrip(), hay[at:].lstrip()
        text = " ".join(p for p in (head, NEEDLE, tail) if p)
        needle_char = len(head) + 1 if head else 0
        return Haystack(text, length, depth, needle_char)


def sentence_boundary(text: str, position: int, window: int = 20_000) -> int:
    """The end of the last sentence ending at or before ``position`` (0 when none)."""
    if position >= len(text):
        return len(text)
    start = max(0, position - window)
    best = 0
    for match in _SENTENCE_END.finditer(text, start, position + 1):
        if match.end() <= position:
            best = match.end()
    return best
