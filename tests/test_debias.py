"""Attention corrections behind the scorer seam: content-free baseline (ICR), position and sinks,
and the choice of query rows."""

from __future__ import annotations

import pytest
import torch

from infiniretri import EngineSettings, InfiniRetri, TokenScores, WindowScorer
from infiniretri.debias import CONTENT_FREE_QUESTION, BaselineScorer, PositionScorer
from infiniretri.fusion import FusedScorer
from infiniretri.prompt import QUESTION_ROWS
from infiniretri.ranking import ranking_scorer

PROSE = " ".join(
    f"Sentence {i} tells of the {w} river and the town that grew along it."
    for i, w in enumerate(["red", "blue", "green", "grey", "black", "white", "gold", "pale"] * 3)
)
NEEDLE = "The vault code of the lighthouse is 4417."
QUESTION = "What is the vault code of the lighthouse?"


def scores(values, lengths, baseline=None, start=0):
    v = torch.tensor([values], dtype=torch.float32)[:, None, :]
    b = None if baseline is None else torch.tensor([baseline], dtype=torch.float32)[:, None, :]
    return TokenScores(
        v, [start], [lengths], [2.0], [1], baseline=b, baseline_norms=None if b is None else [1.0]
    )


def test_baseline_removes_what_any_question_attends_to():
    # Unit 0 draws attention from the question and from a content-free one alike (a sink);
    # unit 1 only from the question.
    question = [9, 9, 9, 0, 6, 6, 6, 0, 1, 1, 1, 1]
    content_free = [4.5, 4.5, 4.5, 0, 0.5, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 0.5]  # per row; norm 1
    plain = WindowScorer(phrase_tokens=3, top_k_tokens=1).select(scores(question, [4, 4, 4]))[0]
    corrected = BaselineScorer(WindowScorer(3, 1)).select(
        scores(question, [4, 4, 4], content_free)
    )[0]
    assert plain.units == [0]
    assert corrected.units == [1]
    # Per row: question 9/2 - 4.5 = 0 on unit 0's tokens; 6/2 - 0.5 = 2.5 on unit 1's (unit 0's
    # best phrase reaches one token into unit 1).
    assert corrected.unit_scores[:2] == pytest.approx([2.5, 3 * 2.5])


def test_baseline_scorer_refuses_scores_without_a_baseline():
    with pytest.raises(ValueError, match="score_baseline"):
        BaselineScorer(WindowScorer()).select(scores([1.0, 2.0], [2]))


def test_position_correction_lifts_a_far_bump_over_recency():
    # Attention falls off with distance to the question (the context's end), with a bump far
    # away: the plain scorer keeps the nearest unit, the corrected one the bump.
    n = 64
    distance = torch.arange(n, 0, -1).float()
    values = (10.0 / distance).tolist()
    for t in range(8, 12):
        values[t] *= 6.0
    lengths = [16, 16, 16, 16]
    plain = WindowScorer(4, 1).select(scores(values, lengths))[0]
    corrected = PositionScorer(WindowScorer(4, 1)).select(scores(values, lengths))[0]
    assert plain.units == [3]
    assert corrected.units == [0]


def test_sink_cap_stops_one_spike_from_making_a_phrase():
    # Unit 0 holds one huge token; unit 1 four raised ones. Flat attention otherwise.
    values = [1.0] * 200
    values[20] = 1000.0
    for t in range(120, 124):
        values[t] = 5.0
    lengths = [100, 100]
    plain = WindowScorer(4, 1).select(scores(values, lengths))[0]
    capped = PositionScorer(WindowScorer(4, 1)).select(scores(values, lengths))[0]
    assert plain.units == [0]
    assert capped.units == [1]


def test_position_scorer_ignores_what_lies_outside_the_context():
    values = [50.0] * 5 + [1.0, 1.0, 3.0, 3.0, 1.0, 1.0] + [50.0] * 5
    got = PositionScorer(WindowScorer(1, 1)).select(scores(values, [2, 2, 2], start=5))[0]
    assert got.units == [1]


def test_ranking_scorer_composes_what_the_settings_ask_for():
    attention = WindowScorer()
    assert ranking_scorer(EngineSettings(lexical_weight=0), attention) is attention
    composed = ranking_scorer(EngineSettings(score_baseline=True, score_position=True), attention)
    assert isinstance(composed, FusedScorer)
    assert isinstance(composed.attention, PositionScorer)
    assert isinstance(composed.attention.inner, BaselineScorer)
    assert composed.attention.inner.inner is attention


@pytest.mark.parametrize(
    "name,value", [("question_rows", "first"), ("score_baseline", "yes"), ("score_position", 1)]
)
def test_bad_correction_settings_name_the_setting(name, value):
    with pytest.raises(ValueError, match=name):
        EngineSettings(**{name: value})


@pytest.fixture(scope="module")
def engine(tiny_llama):
    model, tokenizer = tiny_llama
    return InfiniRetri(model, tokenizer, retrieval_layer=2, chunk_tokens=128, cuda_graphs=False)


def test_query_rows_are_the_question_the_template_end_or_both(engine):
    prompt = engine.layout.build([5, 6, 7], engine.question_ids(QUESTION))
    question = prompt.rows("question")
    end = prompt.rows("end")
    assert list(question) == list(range(prompt.question_start, prompt.question_end))
    assert end.start == prompt.question_end and end.stop == len(prompt.ids) and len(end) >= 1
    assert list(prompt.rows("all")) == [*question, *end]
    assert QUESTION_ROWS == ("question", "end", "all")
    with pytest.raises(ValueError, match="question_rows"):
        prompt.rows("middle")


def test_captured_baseline_is_the_content_free_prompt_read_alone(engine):
    on = engine.with_options(score_baseline=True)
    units = on.units([NEEDLE, "The harbour opened in spring.", "Rain fell all day."])
    with on.unit_scores(units, QUESTION) as captured:
        assert captured.baseline is not None
        baseline = captured.baseline.clone()
        together = captured.values.clone()
        norms = captured.baseline_norms
    with engine.unit_scores(units, CONTENT_FREE_QUESTION) as alone:
        want = alone.values.clone()
        assert norms == alone.norms
    with engine.unit_scores(units, QUESTION) as plain:
        assert torch.allclose(together, plain.values, rtol=1e-4, atol=1e-6)
    size = min(want.shape[-1], baseline.shape[-1])
    start, end = alone.context_starts[0], alone.context_starts[0] + sum(alone.unit_lengths[0])
    assert end <= size
    assert torch.allclose(baseline[..., start:end], want[..., start:end], rtol=1e-4, atol=1e-6)


def test_end_rows_read_other_attention_than_question_rows(engine):
    units = engine.units([NEEDLE, "The harbour opened in spring."])
    with engine.unit_scores(units, QUESTION) as q:
        question = q.tokens(0).clone()
    with engine.with_options(question_rows="end").unit_scores(units, QUESTION) as e:
        end = e.tokens(0).clone()
        assert e.norms[0] == len(engine.layout.suffix)
    assert not torch.allclose(question, end)


def test_scan_with_every_correction_counts_the_second_forward(engine):
    plain = engine.retrieve(PROSE + " " + NEEDLE, QUESTION)
    full = engine.with_options(score_baseline=True, score_position=True, question_rows="all")
    corrected = full.retrieve(PROSE + " " + NEEDLE, QUESTION)
    assert corrected.stats.forward_passes == plain.stats.forward_passes
    extra = corrected.stats.tokens_processed - plain.stats.tokens_processed
    free = len(engine.question_ids(CONTENT_FREE_QUESTION))
    per_pass = plain.stats.tokens_processed - plain.stats.forward_passes * (
        len(engine.question_ids(QUESTION)) - free
    )
    assert extra == per_pass
    assert corrected.sentences and all(s.text for s in corrected.sentences)
