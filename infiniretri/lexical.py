"""Lexical evidence computed in the scan: BM25 of the question against the units in view.

The statistics (document frequencies, average length) come from the units of one step's prompt
(the cache and the chunk), so the score streams with the scan and needs no index of the whole
source. Words are lower-cased runs of letters and digits; English stop words are dropped (as
``bm25s``'s ``stopwords="en"`` does), with the Lucene BM25 formula.

This runs on the host once per scan step over ~200 units, so the hot paths are written for
speed: ASCII text (most prose) is tokenized with one byte translation instead of a regex, each
unit's term counts and every term's postings are made once per :class:`InView`.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence

_WORD = re.compile(r"(?u)\b\w\w+\b")

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with you your yours yourself yourselves""".split()
)

_ASCII_WORD_CHARS = string.ascii_lowercase + string.digits + "_"
_ASCII_FOLD = bytes(
    ord(chr(i).lower()) if chr(i).lower() in _ASCII_WORD_CHARS else ord(" ") for i in range(256)
)
"""Byte table: ASCII letters lower-cased, digits and ``_`` kept, every other byte a space. On
ASCII text ``\\w`` is exactly ``[A-Za-z0-9_]``, so the table's words are the regex's."""
_ASCII_DROP = STOP_WORDS | frozenset(_ASCII_WORD_CHARS)
"""What :func:`words` leaves out of ASCII text: stop words and one-character words."""
_ASCII_KEY_DROP = STOP_WORDS | frozenset(string.ascii_lowercase + "_")
"""What :func:`key_terms` leaves out of ASCII text: stop words and one-character non-digits."""


def _ascii_runs(text: str) -> list[str]:
    """The lower-cased runs of word characters of ASCII ``text``, in order."""
    return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii").split()


def words(text: str) -> list[str]:
    """The text's lower-cased words, stop words left out."""
    if text.isascii():
        return [w for w in _ascii_runs(text) if w not in _ASCII_DROP]
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


_TERM = re.compile(r"(?u)\b(?:\w\w+|\d)\b")


def key_terms(text: str) -> set[str]:
    """The text's distinct lower-cased words with single digits kept (the key of "project
    Delta-3" is its digit), stop words left out: what a sentence must hold to name what a
    question names."""
    if text.isascii():
        return set(_ascii_runs(text)) - _ASCII_KEY_DROP
    return set(_TERM.findall(text.lower())) - STOP_WORDS


def term_counts(text: str) -> dict[str, int]:
    """How often each of the text's :func:`words` occurs in it (in first-occurrence order)."""
    counts: dict[str, int] = {}
    for w in words(text):
        counts[w] = counts.get(w, 0) + 1
    return counts


class InView:
    """The units of one prompt, tokenized once, for any number of BM25 queries over them.

    The postings of every term (the units holding it, with its count there) are made with the
    view: the scan makes the view while the device runs the forward, and a query after it (the
    feedback pass, which waits for the attention) only looks its terms up.
    """

    def __init__(self, units: Sequence[str]) -> None:
        self.docs = [term_counts(u) for u in units]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.mean_length = (sum(self.lengths) / len(self.docs) or 1.0) if self.docs else 1.0
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for i, counts in enumerate(self.docs):
            for term, count in counts.items():
                posting = self._postings.get(term)
                if posting is None:
                    self._postings[term] = [(i, count)]
                else:
                    posting.append((i, count))
        self._norms: dict[tuple[float, float], list[float]] = {}

    def postings(self, term: str) -> list[tuple[int, int]]:
        """``(unit index, count)`` of each unit that holds ``term``, in unit order."""
        return self._postings.get(term, [])

    def length_norms(self, k1: float, b: float) -> list[float]:
        """Each unit's ``k1 * (1 - b + b * length / mean length)``."""
        norms = self._norms.get((k1, b))
        if norms is None:
            mean = self.mean_length
            norms = self._norms[k1, b] = [
                k1 * (1.0 - b + b * length / mean) for length in self.lengths
            ]
        return norms

    def bm25(
        self,
        question: str,
        k1: float = 1.5,
        b: float = 0.75,
        feedback: str = "",
        feedback_weight: float = 0.0,
    ) -> list[float]:
        """BM25 score of each unit for ``question`` (see :func:`bm25`)."""
        n = len(self.docs)
        weights = query_weights(question, feedback, feedback_weight)
        scores = [0.0] * n
        if not n or not weights:
            return scores
        norms = self.length_norms(k1, b)
        terms: dict[int, list[float]] = {}  # per unit holding a query term, its terms' parts
        for term, weight in weights.items():
            posting = self.postings(term)
            if not posting:
                continue
            df = len(posting)
            idf = weight * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            for i, tf in posting:
                terms.setdefault(i, []).append(idf * tf * (k1 + 1) / (tf + norms[i]))
        # Each unit's parts in query order, added by sum() (compensated on Python 3.12+): the
        # plain unit-by-unit formula's scores to the last bit.
        for i, parts in terms.items():
            scores[i] = sum(parts)
        return scores


def query_weights(
    question: str, feedback: str = "", feedback_weight: float = 0.0
) -> dict[str, float]:
    """Query terms in order with their weights: the question's words at 1, then (when
    ``feedback_weight`` is set) the feedback text's other words at ``feedback_weight``."""
    weights = dict.fromkeys(words(question), 1.0)
    if feedback_weight:
        for term in words(feedback):
            weights.setdefault(term, feedback_weight)
    return weights


def bm25(
    question: str,
    units: Sequence[str],
    k1: float = 1.5,
    b: float = 0.75,
    feedback: str = "",
    feedback_weight: float = 0.0,
) -> list[float]:
    """BM25 score of each unit for ``question``, with statistics from ``units`` alone.

    ``feedback``: text whose words, where the question lacks them, join the query with weight
    ``feedback_weight`` (pseudo-relevance feedback: the best unit of a first pass).
    """
    return InView(units).bm25(question, k1, b, feedback, feedback_weight)
