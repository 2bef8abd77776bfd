"""The real embedded model finds a planted fact in real prose (Wikipedia, CC BY-SA 4.0)."""

from __future__ import annotations

import pytest

from infiniretri.sentences import SentenceSplitter

NEEDLE = "The secret ingredient of Grandma Rosa's famous soup is smoked paprika."
QUESTION = "What is the secret ingredient of Grandma Rosa's soup?"


@pytest.fixture(scope="module")
def haystack(engine, prose):
    """Build ``n_tokens`` of prose with the needle at ``depth``, at a sentence boundary."""
    sentences = [prose[a:b] for a, b in SentenceSplitter().split(prose)]
    sizes = [len(ids) for ids in engine.segmenter.encode(sentences)]

    def build(n_tokens: int, depth: float) -> str:
        chosen, total = [], 0
        for sentence, size in zip(sentences, sizes):
            if total + size > n_tokens:
                break
            chosen.append(sentence)
            total += size
        chosen.insert(round(depth * len(chosen)), NEEDLE)
        return " ".join(chosen)

    return build


@pytest.mark.parametrize(
    ("n_tokens", "depth"), [(2000, 0.0), (2000, 0.5), (2000, 1.0), (8000, 0.25), (8000, 0.75)]
)
def test_needle_is_kept_in_the_cache(engine, haystack, n_tokens, depth):
    doc = haystack(n_tokens, depth)
    retrieval = engine.retrieve(doc, QUESTION)
    stats = retrieval.stats
    assert stats.tokens_read >= n_tokens * 0.95
    # The needle's unit may carry a fragment the prose left before it (e.g. "[citation needed]").
    holding = [s for s in retrieval.sentences if NEEDLE in s.text]
    assert holding, "the needle sentence is in the final cache"
    assert holding[0] in retrieval.top(3)
    assert doc[holding[0].char_start : holding[0].char_end] == holding[0].text
    assert stats.cache_tokens < stats.tokens_read
    if n_tokens >= 8000:
        assert stats.cache_tokens < stats.tokens_read / 4


def test_answer_names_the_needle(engine, haystack):
    answer = engine.answer(haystack(2000, 0.3), QUESTION, max_new_tokens=24)
    assert "paprika" in answer.text.lower()
    assert answer.retrieval.stats.forward_passes >= 2
