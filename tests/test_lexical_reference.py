"""The fast lexical path (byte-table words, postings, list z-scores) against plain references.

The references follow the code before it was made fast: regex words, one ``Counter`` per unit,
BM25 unit by unit, torch z-scores; the fused scorer must keep the same units with the same
scores on real prose.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from infiniretri import TokenScores, WindowScorer
from infiniretri.fusion import FusedScorer, standardized, zscores
from infiniretri.lexical import STOP_WORDS, InView, bm25, key_terms, words
from infiniretri.scoring import Scorer, Selection
from infiniretri.sentences import SentenceSplitter

_WORD = re.compile(r"(?u)\b\w\w+\b")
_TERM = re.compile(r"(?u)\b(?:\w\w+|\d)\b")


def reference_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def reference_key_terms(text: str) -> set[str]:
    return {w for w in _TERM.findall(text.lower()) if w not in STOP_WORDS}


def reference_bm25(question, units, k1=1.5, b=0.75, feedback="", feedback_weight=0.0):
    """Lucene BM25, unit by unit, as the code computed it before."""
    docs = [Counter(reference_words(u)) for u in units]
    lengths = [sum(d.values()) for d in docs]
    mean = (sum(lengths) / len(docs) or 1.0) if docs else 1.0
    weights = dict.fromkeys(reference_words(question), 1.0)
    if feedback_weight:
        for term in reference_words(feedback):
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
    for d, length in zip(docs, lengths):
        norm = k1 * (1.0 - b + b * length / mean)
        scores.append(sum(w * d[t] * (k1 + 1) / (d[t] + norm) for t, w in idf.items() if t in d))
    return scores


def reference_standardized(values: list[float]) -> torch.Tensor:
    x = torch.tensor(values, dtype=torch.float64)
    spread = x.std(unbiased=False) if len(values) > 1 else torch.tensor(0.0, dtype=x.dtype)
    return (x - x.mean()) / spread if spread > 0 else torch.zeros_like(x)


@dataclass(frozen=True)
class ReferenceFused(Scorer):
    """The fused scorer as it was written before (torch z-scores, unit-by-unit BM25)."""

    attention: Scorer
    weight: float = 1.0
    feedback: float = 0.0

    def select(self, captured: TokenScores) -> list[Selection]:
        selections = []
        for b, base in enumerate(self.attention.select(captured)):
            question, texts = captured.questions[b], captured.texts[b]
            attention = reference_standardized(base.unit_scores)
            fused = attention + self.weight * reference_standardized(
                reference_bm25(question, texts)
            )
            if self.feedback and len(texts) > 1:
                best = texts[int(torch.argmax(fused))]
                lexical = reference_bm25(
                    question, texts, feedback=best, feedback_weight=self.feedback
                )
                fused = attention + self.weight * reference_standardized(lexical)
            order = sorted(range(len(fused)), key=lambda i: (-float(fused[i]), i))
            kept = sorted(order[: len(base.units)])
            scores = fused.tolist()
            selections.append(Selection(kept, [scores[i] for i in kept], scores))
        return selections


QUESTIONS = [
    "Which NASA satellite measured the dust blown from the Sahara to the Amazon?",
    "Who improved the steam engine with a separate condenser, and when?",
    "What percentage of the Earth's atmosphere is oxygen?",
]


@pytest.fixture(scope="module")
def sentences(prose) -> list[str]:
    return [prose[a:b] for a, b in SentenceSplitter().split(prose)]


def windows(sentences: list[str], size: int = 230, count: int = 6) -> list[list[str]]:
    step = max(1, (len(sentences) - size) // count)
    return [sentences[i : i + size] for i in range(0, step * count, step)]


def test_words_and_key_terms_match_the_regex_on_prose(sentences):
    assert any(not s.isascii() for s in sentences)  # both paths are exercised
    for text in [*sentences, *QUESTIONS]:
        assert words(text) == reference_words(text)
        assert key_terms(text) == reference_key_terms(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ9_ -.,'\n\t\x1fİΣσßé٣3x\u0301"), max_size=40))
def test_words_and_key_terms_match_the_regex_on_any_text(text):
    assert words(text) == reference_words(text)
    assert key_terms(text) == reference_key_terms(text)
    ascii_text = text.encode("ascii", "ignore").decode()
    assert words(ascii_text) == reference_words(ascii_text)
    assert key_terms(ascii_text) == reference_key_terms(ascii_text)


@pytest.mark.parametrize("question", QUESTIONS)
def test_bm25_equals_the_reference_on_prose(sentences, question):
    for units in windows(sentences):
        assert bm25(question, units) == reference_bm25(question, units)  # to the last bit
        view = InView(units)
        first = view.bm25(question)
        best = units[max(range(len(first)), key=first.__getitem__)]
        for weight in (0.5, 1.0):
            fed = view.bm25(question, feedback=best, feedback_weight=weight)
            assert fed == reference_bm25(question, units, feedback=best, feedback_weight=weight)
        assert view.bm25(question, k1=1.2, b=0.5) == reference_bm25(question, units, 1.2, 0.5)
        assert view.bm25(question) == first  # the memos change nothing


def test_bm25_edge_cases_equal_the_reference():
    for question, units in [
        ("the of", ["cat sat"]),
        ("cat", []),
        ("cat", ["", "the a", "cat cat cat"]),
        ("Zürich café", ["Zürich's café", "ZÜRICH", "cafe"]),
    ]:
        assert bm25(question, units) == reference_bm25(question, units)


@pytest.mark.parametrize(
    "values",
    [[1.0, 2.0, 3.0, 6.0], [4.0, 4.0], [2.5], [], [1e-9, 3e-9, -2e-9], [0.0, float("-inf"), 1.0]],
)
def test_zscores_equal_the_torch_reference(values):
    want = reference_standardized(values).tolist()
    assert zscores(values) == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert standardized(values).dtype == torch.float64
    assert standardized(values).tolist() == zscores(values)


@pytest.mark.parametrize(("weight", "feedback"), [(1.5, 0.5), (1.5, 0.0), (1.0, 1.0)])
def test_fused_scorer_equals_the_reference_on_prose(sentences, weight, feedback):
    window = WindowScorer(phrase_tokens=8, top_k_tokens=300)
    fast, slow = FusedScorer(window, weight, feedback), ReferenceFused(window, weight, feedback)
    generator = torch.Generator().manual_seed(0)
    for n, units in enumerate(windows(sentences)):
        lengths = [max(1, len(u) // 4) for u in units]
        width = 20 + sum(lengths) + 16
        values = torch.rand(2, 2, width, generator=generator) ** 6
        question = QUESTIONS[n % len(QUESTIONS)]
        captured = TokenScores(
            values, [20, 10], [lengths, lengths[:-5]], [16.0, 12.0], [3, 5],
            [units, units[:-5]], [question, QUESTIONS[0]],
        )  # fmt: skip
        for got, want in zip(fast.select(captured), slow.select(captured), strict=True):
            assert got.units == want.units
            assert got.unit_scores == pytest.approx(want.unit_scores, rel=1e-9, abs=1e-12)
            assert got.scores == pytest.approx(want.scores, rel=1e-9, abs=1e-12)
