"""The scorer seam: the batched window scorer equals the plain reference on random inputs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from infiniretri import InfiniRetri, ReferenceScorer, TokenScores, WindowScorer
from infiniretri.scoring import phrase_scores
from infiniretri.sources import open_documents


@st.composite
def captures(draw):
    """Random token scores for 1..5 prompts and 1..3 head groups, each prompt with its own
    units, offset and norm."""
    batch = draw(st.integers(1, 5))
    unit_lengths = [
        draw(st.lists(st.integers(1, 12), min_size=1, max_size=10)) for _ in range(batch)
    ]
    starts = [draw(st.integers(0, 6)) for _ in range(batch)]
    norms = [draw(st.floats(0.5, 64.0)) for _ in range(batch)]
    extra_rows = draw(st.integers(0, 2))
    width = max(s + sum(u) for s, u in zip(starts, unit_lengths)) + draw(st.integers(0, 5))
    group_heads = draw(st.lists(st.sampled_from([1, 9]), min_size=1, max_size=3))
    seed = draw(st.integers(0, 2**31 - 1))
    shape = (batch + extra_rows, len(group_heads), width)
    values = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return TokenScores(values, starts, unit_lengths, norms, group_heads)


@settings(max_examples=300, deadline=None)
@given(captures(), st.integers(1, 9), st.integers(1, 80))
def test_window_scorer_equals_the_reference(captured, phrase_tokens, top_k_tokens):
    # Where two phrases tie at the top-K boundary, either may be kept (summation order).
    for b in range(len(captured)):
        phrase = torch.sort(phrase_scores(captured.tokens(b), phrase_tokens), descending=True)[0]
        if top_k_tokens < phrase.numel():
            assume(float(phrase[top_k_tokens - 1] - phrase[top_k_tokens]) > 1e-5)
    fast = WindowScorer(phrase_tokens, top_k_tokens).select(captured)
    plain = ReferenceScorer(phrase_tokens, top_k_tokens).select(captured)
    assert len(fast) == len(plain) == len(captured)
    for b, (f, p) in enumerate(zip(fast, plain)):
        assert f.units == p.units
        assert len(f.unit_scores) == len(p.unit_scores) == len(captured.unit_lengths[b])
        assert f.unit_scores == pytest.approx(p.unit_scores, rel=1e-5, abs=1e-7)
        assert f.scores == pytest.approx([p.unit_scores[i] for i in p.units], rel=1e-5)


@settings(max_examples=200, deadline=None)
@given(captures(), st.integers(1, 9))
def test_a_unit_score_is_its_best_phrase(captured, phrase_tokens):
    selections = ReferenceScorer(phrase_tokens, 1).select(captured)
    for b, selection in enumerate(selections):
        phrase = phrase_scores(captured.tokens(b), phrase_tokens)
        start = 0
        for length, score in zip(captured.unit_lengths[b], selection.unit_scores):
            assert score == pytest.approx(float(phrase[start : start + length].max()), rel=1e-6)
            start += length


@settings(max_examples=200, deadline=None)
@given(captures(), st.integers(1, 9), st.integers(1, 80))
def test_kept_units_hold_the_top_phrases(captured, phrase_tokens, top_k_tokens):
    selections = WindowScorer(phrase_tokens, top_k_tokens).select(captured)
    for b, selection in enumerate(selections):
        phrase = phrase_scores(captured.tokens(b), phrase_tokens)
        k = min(top_k_tokens, phrase.shape[0])
        owner = [i for i, n in enumerate(captured.unit_lengths[b]) for _ in range(n)]
        values = phrase.tolist()
        ranked = sorted(values, reverse=True)
        kth = ranked[k - 1]
        if k < len(values) and kth - ranked[k] <= 1e-5:
            # A tie at the k-th place: either tied phrase may be kept. Every phrase above the
            # tie is kept, and nothing below it.
            above = {owner[t] for t, v in enumerate(values) if v > kth + 1e-5}
            at_least = {owner[t] for t, v in enumerate(values) if v >= kth - 1e-5}
            assert above <= set(selection.units) <= at_least
            continue
        top = torch.topk(phrase, k).indices.tolist()
        assert selection.units == sorted({owner[t] for t in top})


def test_phrase_scores_sum_a_centred_window():
    tokens = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert phrase_scores(tokens, 1).tolist() == tokens.tolist()
    assert phrase_scores(tokens, 3).tolist() == [3.0, 6.0, 9.0, 12.0, 9.0]
    assert phrase_scores(tokens[None], 3).tolist() == [[3.0, 6.0, 9.0, 12.0, 9.0]]


def test_the_scan_and_unit_attention_score_alike(tiny_llama):
    """One chunk scanned gives the scores that scoring its units directly gives."""
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model, tokenizer, chunk_tokens=512, retrieval_layer=2, top_k_tokens=4)
    text = " ".join(
        f"Item {i} weighs {i * 3} grams and is kept in drawer {i % 5}." for i in range(20)
    )
    question = "What does item 7 weigh?"
    retrieval = engine.retrieve(text, question)
    units = list(engine.segmenter.units(open_documents(text)))
    with engine.unit_attention(units, question, [2]) as captured:
        selection = engine.scorer.select(captured[2])[0]
    assert [s.text for s in retrieval.sentences] == [units[i].text for i in selection.units]
    assert [s.score for s in retrieval.sentences] == pytest.approx(selection.scores, rel=1e-5)
