"""Lexical evidence in view (BM25 over the units of a prompt) and its fusion with attention."""

from __future__ import annotations

import math

import pytest
import torch

from infiniretri import InfiniRetri, TokenScores, WindowScorer
from infiniretri.fusion import FusedScorer, standardized
from infiniretri.lexical import bm25, words


def test_words_lower_case_and_drop_stop_words():
    assert words("The Cat sat on THE mat, and 42 dogs") == ["cat", "sat", "mat", "42", "dogs"]


def test_bm25_follows_the_lucene_formula():
    units = ["red apples and green apples", "green pears", "blue sky over the sea"]
    got = bm25("green apples", units, k1=1.5, b=0.75)
    n, lengths = 3, [3, 2, 3]  # words after stop words: red apples green apples / green pears / ...
    mean = sum(lengths) / n

    def term(tf, df, length):
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return idf * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * length / mean))

    want = [term(1, 2, 4) + term(2, 1, 4), term(1, 2, 2), 0.0]
    lengths[0] = 4
    mean = sum(lengths) / n
    want = [term(1, 2, 4) + term(2, 1, 4), term(1, 2, 2), 0.0]
    assert got == pytest.approx(want)


def test_bm25_without_shared_words_is_all_zero():
    assert bm25("quantum chromodynamics", ["a cat", "the dog barked"]) == [0.0, 0.0]
    assert bm25("the of and", ["the cat"]) == [0.0]


def test_standardized_has_zero_mean_unit_spread_or_is_zero():
    z = standardized([1.0, 2.0, 3.0, 6.0])
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-12)
    assert float(z.std(unbiased=False)) == pytest.approx(1.0)
    assert standardized([4.0, 4.0]).tolist() == [0.0, 0.0]


def captured(values, lengths, texts, question):
    t = torch.tensor([values], dtype=torch.float32)[:, None, :]
    return TokenScores(t, [0], [lengths], [1.0], [1], [texts], [question])


TEXTS = ["the harbour opened in spring", "crate nine holds copper bolts", "rain fell all day"]
LENGTHS = [3, 3, 3]


def test_fusion_lifts_the_unit_holding_the_question_terms():
    # Attention prefers unit 0; the question's words are in unit 1.
    scores = captured(
        [5, 5, 5, 4, 4, 4, 1, 1, 1], LENGTHS, TEXTS, "Which crate holds copper bolts?"
    )
    window = WindowScorer(phrase_tokens=1, top_k_tokens=3)
    plain = window.select(scores)[0]
    fused = FusedScorer(window, weight=1.0).select(scores)[0]
    assert plain.units == [0]
    assert fused.units == [1]  # as many units as the attention kept, best fused first
    assert fused.unit_scores[1] > fused.unit_scores[0] > fused.unit_scores[2]


def test_fusion_with_no_shared_words_keeps_the_attention_order():
    scores = captured([1, 1, 1, 9, 9, 9, 4, 4, 4], LENGTHS, TEXTS, "What is a zebra?")
    window = WindowScorer(phrase_tokens=1, top_k_tokens=4)
    plain, fused = window.select(scores)[0], FusedScorer(window, 1.0).select(scores)[0]
    assert fused.units == plain.units
    order = sorted(range(3), key=lambda i: -plain.unit_scores[i])
    assert sorted(range(3), key=lambda i: -fused.unit_scores[i]) == order


def test_fusion_needs_texts():
    t = TokenScores(torch.ones(1, 1, 3), [0], [[3]], [1.0], [1])
    with pytest.raises(ValueError, match="texts"):
        FusedScorer(WindowScorer(1, 1)).select(t)


def test_lexical_weight_zero_is_the_attention_scorer(tiny_llama):
    model, tokenizer = tiny_llama
    text = " ".join(f"Crate {i} holds {i * 7} copper bolts on shelf {i % 6}." for i in range(30))
    question = "How many copper bolts does crate 17 hold?"
    plain = InfiniRetri(model, tokenizer, chunk_tokens=96, retrieval_layer=2, lexical_weight=0)
    fused = plain.with_options(lexical_weight=1.0)
    assert isinstance(plain.scorer, WindowScorer) and isinstance(fused.scorer, FusedScorer)
    a, b = plain.retrieve(text, question), fused.retrieve(text, question)
    assert [s.text for s in a.sentences] != [s.text for s in b.sentences] or [
        s.score for s in a.sentences
    ] != [s.score for s in b.sentences]
    assert any("17 holds" in s.text for s in b.top(3))


def test_bm25_feedback_words_join_the_query_at_their_weight():
    units = ["the bridge was built by Anna Kovac", "Anna Kovac was born in Split", "rain fell"]
    plain = bm25("Who built the bridge?", units)
    fed = bm25("Who built the bridge?", units, feedback=units[0], feedback_weight=0.5)
    assert plain[1] == 0.0 and fed[1] > 0.0  # the second hop shares only the name
    assert fed[0] > plain[0] and fed[2] == plain[2] == 0.0
    assert bm25("Who built the bridge?", units, feedback=units[0]) == plain  # weight 0: off


def test_fusion_feedback_reaches_the_second_hop():
    # Attention is flat; the question names the bridge, the answer's sentence only its builder.
    texts = [
        "The old bridge over the river was built by Anna Kovac.",
        "The harbour opened in spring.",
        "Anna Kovac was born in the town of Split.",
        "Rain fell all day on the market square.",
    ]
    question = "Where does the builder of the old bridge come from?"
    flat = TokenScores(torch.ones(1, 1, 12), [0], [[3, 3, 3, 3]], [1.0], [1], [texts], [question])
    attention = WindowScorer(phrase_tokens=1, top_k_tokens=3)
    plain = FusedScorer(attention).select(flat)[0].unit_scores
    hop = FusedScorer(attention, feedback=0.5).select(flat)[0].unit_scores
    assert plain[2] == plain[1] == plain[3] < plain[0]  # no question word in the second hop
    assert hop[0] > hop[2] > hop[1] == hop[3]
