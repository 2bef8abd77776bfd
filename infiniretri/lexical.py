"""Lexical evidence computed in the scan: BM25 of the question against the units in view.

The statistics (document frequencies, average length) come from the units of one step's prompt
(the cache and the chunk), so the score streams with the scan and needs no index of the whole
source. Words are lower-cased runs of letters and digits; English stop words are dropped (as
``bm25s``'s ``stopwords="en"`` does), with the Lucene BM25 formula.
"""

from __future__ import annotations

import math
import re
from collections import Counter
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


def words(text: str) -> list[str]:
    """The text's lower-cased words, stop words left out."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


_TERM = re.compile(r"(?u)\b(?:\w\w+|\d)\b")


def key_terms(text: str) -> set[str]:
    """The text's distinct lower-cased words with single digits kept (the key of "project
    Delta-3" is its digit), stop words left out: what a sentence must hold to name what a
    question names."""
    return {w for w in _TERM.findall(text.lower()) if w not in STOP_WORDS}


class InView:
    """The units of one prompt, tokenized once, for any number of BM25 queries over them."""

    def __init__(self, units: Sequence[str]) -> None:
        self.docs = [Counter(words(u)) for u in units]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.mean_length = (sum(self.lengths) / len(self.docs) or 1.0) if self.docs else 1.0

    def bm25(
        self,
        question: str,
        k1: float = 1.5,
        b: float = 0.75,
        feedback: str = "",
        feedback_weight: float = 0.0,
    ) -> list[float]:
        """BM25 score of each unit for ``question`` (see :func:`bm25`)."""
        docs = self.docs
        weights = dict.fromkeys(words(question), 1.0)
        if feedback_weight:
            for term in words(feedback):
                weights.setdefault(term, feedback_weight)
        if not docs or not weights:
            return [0.0] * len(docs)
        n = len(docs)
        idf = {}
        for term, weight in weights.items():
            df = sum(1 for d in docs if term in d)
            if df:
                idf[term] = weight * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        scores = []
        for d, length in zip(docs, self.lengths):
            norm = k1 * (1.0 - b + b * length / self.mean_length)
            scores.append(
                sum(w * d[t] * (k1 + 1) / (d[t] + norm) for t, w in idf.items() if t in d)
            )
        return scores


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
