"""The answer's evidence: which cached sentences the reader sees, and which it quotes.

The scan's scores already rank the evidence (the asked-for sentence is usually the cache's
best); a small reader still copies a neighbour's value when it reads many look-alike sentences.
So the answer step may show only the best ``answer_sentences`` (in document order), and may
*quote* the best sentences at the start of the answer, where the reader copies from: every
sentence whose standardised score is within ``answer_quote_margin`` of the best, at most
``answer_quote`` of them (several when several sentences score alike, as the values of one key
do; one when a single sentence stands out).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .fusion import standardized
from .lexical import key_terms


@dataclass(frozen=True)
class Evidence:
    """Indices into a retrieval's sentences (document order)."""

    shown: list[int]
    """Sentences the answer prompt holds."""
    quoted: list[int]
    """Sentences quoted before the answer (a subset of ``shown``)."""


def choose_evidence(
    scores: Sequence[float],
    sentences: int | None,
    quote: int,
    margin: float,
    coverage: Sequence[int] | None = None,
) -> Evidence:
    """The best ``sentences`` by score (all with ``None``), and those of them to quote.

    ``coverage``: per sentence, how many of the question's key terms it holds. When given,
    only the shown sentences of the highest coverage may be quoted (best score first): among
    look-alike sentences ("project Delta-3" and "Delta-9"), the one that names everything the
    question names.
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    shown = order if sentences is None else order[:sentences]
    quoted: list[int] = []
    if quote and order:
        z = standardized(list(scores)).tolist()
        pool = shown
        if coverage is not None and shown:
            most = max(coverage[i] for i in shown)
            pool = [i for i in shown if coverage[i] == most]
        best = z[pool[0]]
        quoted = [i for i in pool[:quote] if z[i] >= best - margin]
    return Evidence(sorted(shown), sorted(quoted))


def unsupported(answer: str, question: str, quote: str) -> bool:
    """Whether a quoted answer says nothing that its quote backs.

    Judged only where the quote names all the question names (else the quote may not hold the
    answer). Then the answer's own words, those beyond the question's, must come from the
    quote: an answer made only of the question's words ("Delta-3" for "... project Delta-3?")
    has not answered, and one whose new words are not in the quote ("San Francisco is a great
    place" after a quote about Dolores Park, or a look-alike's "Brorflar ... igloo" after a quote
    about Brerflor) contradicts the evidence it just quoted. A comparison's answer (one
    alternative the question names, "Alpha" for "Alpha or Beta?") is left alone: its quote
    names only that one.
    """
    return bool(key_terms(answer)) and not QuoteCheck(question, quote).backs(answer)


_WORD = re.compile(r"\w")
_LAST_WORD = re.compile(r"\w+$")


class QuoteCheck:
    """Whether a quoted answer, as written so far, is backed by its quote (see
    :func:`unsupported`).

    Backing, once shown, holds for every longer text (a new word from the quote stays), so a
    stream may pass an answer on from the moment it is backed, and hold it back before: an
    answer never backed is replaced by its quote. Only complete words count (a trailing one
    may still grow); an answer the check does not judge is backed once it has a word.
    """

    def __init__(self, question: str, quote: str) -> None:
        self.asked = key_terms(question)
        self.quoted = key_terms(quote)
        self.judged = not self.asked - self.quoted

    def backs(self, text: str, finished: bool = True) -> bool:
        """Whether ``text`` is backed; ``finished=False`` leaves out a trailing partial word."""
        if not finished:
            text = _LAST_WORD.sub("", text)
        if not self.judged:
            return bool(_WORD.search(text))
        return bool((key_terms(text) - self.asked) & self.quoted)
