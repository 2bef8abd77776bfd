"""The fast lexical path (byte-table words, postings, list z-scores) against plain references.

The references follow the code before it was made fast: regex words, one ``Counter`` per unit,
BM25 unit by unit, torch z-scores; the fused scorer must keep the same units with the same
scores on real prose.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.step_overhead import Before
from infiniretri import TokenScores, WindowScorer
from infiniretri.fusion import FusedScorer, standardized, zscores
from infiniretri.lexical import InView, bm25, key_terms, words
from infiniretri.sentences import SentenceSplitter

# The references are the code as it was before it was made fast, kept once, in the benchmark
# that times the two side by side.
reference_words = Before.words
reference_key_terms = Before.key_terms
reference_standardized = Before.standardized
ReferenceFused = Before.FusedScorer


def reference_bm25(question, units, k1=1.5, b=0.75, feedback="", feedback_weight=0.0):
    """Lucene BM25, unit by unit, as the code computed it before."""
    return Before.InView(units).bm25(question, k1, b, feedback, feedback_weight)


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
