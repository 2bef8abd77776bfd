"""The summary track's itemised answer (``summary_answer="map"``): each unit read on its own.

Asked to list every X of a long document, a small reader shown 30 cached sentences at once
names one or two of them. Shown one sentence, it answers as well as it does a needle question.
So the summary track's answer reads each cached sentence, and each note, alone
against the question (one short generation each, batched), and lists the distinct answers: a
map step, then a merge that keeps each answer once.

The sentences read are the whole cache (what the scan judged worth keeping), at most
:data:`ITEM_UNITS` of them, best first; the answer lists their answers in document order, then
the notes'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ITEM_UNITS = 48
"""Cached sentences read one by one, at most (the best by the scan's scores)."""
ITEM_NEW_TOKENS = 24
"""Tokens the model may write per unit (one line)."""
ITEM_BULLET = "- "
"""Starts each listed answer's line."""
ITEM_STOPS = ("\n",)
"""A unit's answer is one line."""

_EDGES = re.compile(r"^[\s\-*•\"'“”]+|[\s\"'“”.,;:]+$")


def item_sentences(scores: Sequence[float]) -> list[int]:
    """Indices (document order) of the sentences read one by one: the best ``ITEM_UNITS``."""
    best = sorted(range(len(scores)), key=lambda k: (-scores[k], k))
    return sorted(best[:ITEM_UNITS])


def item_text(answer: str) -> str:
    """One unit's answer as listed: its first line, without bullets, quotes or end marks."""
    line = answer.strip().split("\n", 1)[0] if answer.strip() else ""
    return _EDGES.sub("", line)


def list_items(answers: Sequence[str]) -> str:
    """The distinct answers (case and spacing aside), in order, one line each."""
    seen: set[str] = set()
    lines = []
    for answer in answers:
        text = item_text(answer)
        key = " ".join(text.lower().split())
        if text and key not in seen:
            seen.add(key)
            lines.append(f"{ITEM_BULLET}{text}")
    return "\n".join(lines)
