"""Batched scans and answers give what single calls give; the prep workers change nothing."""

from __future__ import annotations

import pytest

from infiniretri import InfiniRetri
from infiniretri.sentences import BLOCK_CHARS, SentenceSplitter
from infiniretri.sources import open_documents
from infiniretri.testing import tiny_model

FILLER = "Meeting {} of the harbour board looked at the budget, the roof and the {} ferry."
COLOURS = ("red", "blue", "green", "small", "night", "old", "fast")


def document(n: int, seed: int = 0) -> str:
    return " ".join(FILLER.format(i, COLOURS[(i * 7 + seed) % len(COLOURS)]) for i in range(n))


PAIRS = [
    (document(90, 1), "Which ferry did they look at?"),
    (document(25, 2), "What did meeting 3 discuss?"),
    ([document(40, 3), "A short second document. It has two sentences."], "Which roof?"),
    (document(140, 4), "When was the budget discussed by the board?"),
    ("Only one sentence here.", "What is here?"),
]


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def engine(request):
    model, tokenizer = tiny_model(request.param, seed=4)
    # batch_size=16: these tests are about batched scans ("auto" is one pair per forward on a CPU)
    return InfiniRetri(
        model, tokenizer, chunk_tokens=192, top_k_tokens=40, retrieval_layer=2, batch_size=16
    )


def assert_same_retrieval(batch, single):
    assert [(s.text, s.doc_index, s.char_start, s.char_end) for s in batch.sentences] == [
        (s.text, s.doc_index, s.char_start, s.char_end) for s in single.sentences
    ]
    # Scores are standardised per prompt (lexical fusion): the float noise of a padded batch
    # (relative 1e-5 in the attention) grows where a score is close to the prompt's mean.
    for a, b in zip(batch.sentences, single.sentences):
        assert a.score == pytest.approx(b.score, rel=1e-3, abs=1e-4)
    assert batch.token_ids == single.token_ids
    for field in ("tokens_read", "forward_passes", "tokens_processed", "cache_tokens"):
        assert getattr(batch.stats, field) == getattr(single.stats, field), field


@pytest.mark.parametrize("batch_size", [16, 2])
def test_batch_and_single_select_the_same_sentences(engine, batch_size):
    single = [engine.retrieve(source, question) for source, question in PAIRS]
    batched = engine.with_options(batch_size=batch_size).retrieve_batch(PAIRS)
    assert len(batched) == len(PAIRS)
    for b, s, (_, question) in zip(batched, single, PAIRS):
        assert b.question == question
        assert_same_retrieval(b, s)


def test_batch_progress_counts_all_pairs(engine):
    seen = []
    results = engine.retrieve_batch(PAIRS[:3], progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == sum(r.stats.tokens_read for r in results)
    assert len(seen) == max(r.stats.forward_passes for r in results)


def test_batch_and_single_answers_are_the_same(engine):
    pairs = PAIRS[:4]
    for stop in (None, ["."]):
        single = [engine.answer(s, q, max_new_tokens=7, stop=stop) for s, q in pairs]
        batched = engine.answer_batch(pairs, max_new_tokens=7, stop=stop)
        for b, s in zip(batched, single):
            assert b.text == s.text
            assert b.generated_tokens == s.generated_tokens
            assert b.prompt_tokens == s.prompt_tokens
            assert_same_retrieval(b.retrieval, s.retrieval)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], "pairs is empty"),
        ("text", "pairs must be a list"),
        (None, "pairs must be a list"),
        (["ab"], r"pairs\[0\] must be a \(source, question\) pair"),
        ([("doc", "q?", "extra")], r"pairs\[0\] must be a \(source, question\) pair"),
        ([("doc. more.", "q?"), 5], r"pairs\[1\] must be a \(source, question\) pair"),
        ([("doc. more.", "q?"), ("doc.", "  ")], r"pairs\[1\]: question must be a non-empty"),
        ([("doc. more.", "q?"), ([], "q?")], r"pairs\[1\]: source is an empty sequence"),
        ([("doc. more.", "q?"), ("  ", "q?")], r"pairs\[1\]: source is empty or whitespace"),
    ],
)
def test_bad_batch_input(engine, pairs, message):
    with pytest.raises(ValueError, match=message):
        engine.retrieve_batch(pairs)
    with pytest.raises(ValueError, match=message):
        engine.answer_batch(pairs)


def test_missing_file_in_a_batch(engine, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pairs\[0\]: source: .* does not exist"):
        engine.retrieve_batch([(tmp_path / "nope.txt", "Why?")])


def long_document() -> str:
    paragraphs = [document(30 + i % 11, i) for i in range(40)]
    # No blank line inside this stretch: its block ends at a sentence that Punkt finds.
    paragraphs.insert(7, " ".join(document(60, 9) for _ in range(4)))
    return "\n\n".join(paragraphs)


def test_blocks_split_like_the_whole_text():
    splitter = SentenceSplitter()
    text = long_document()
    assert len(text) > 3 * BLOCK_CHARS
    whole = [text[a:b] for a, b in splitter.split(text)]
    for size in (len(text), 1000, 4093):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        blocks = list(splitter.blocks(pieces))
        assert "".join(b for _, b in blocks) == text
        assert [base for base, _ in blocks] == [
            sum(len(b) for _, b in blocks[:i]) for i in range(len(blocks))
        ]
        assert [t for _, _, t in splitter.split_stream(pieces)] == whole


def test_a_documents_first_blocks_are_small_and_split_like_the_whole_text():
    """The lead blocks (handed back first, for the scan's first chunk) hold at most
    ``lead_chars``; the rest up to ``block_chars``; the sentences are the whole text's."""
    splitter = SentenceSplitter()
    text = long_document()
    whole = [text[a:b] for a, b in splitter.split(text)]
    blocks = list(splitter.blocks([text], lead_blocks=3, lead_chars=4096))
    sizes = [len(b) for _, b in blocks]
    assert all(2048 <= n <= 4096 for n in sizes[:3])
    assert all(n > 4096 for n in sizes[3:-1]) and max(sizes) <= BLOCK_CHARS
    assert "".join(b for _, b in blocks) == text
    split = [b[x:y] for _, b in blocks for x, y in splitter.split(b)]
    assert split == whole


def test_prep_workers_give_the_units_of_the_inline_path(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    inline = InfiniRetri(model, tokenizer, chunk_tokens=512, retrieval_layer=1, prep_workers=0)
    pooled = inline.with_options(prep_workers=2)
    text = long_document()
    path = tmp_path / "long.txt"
    path.write_text(text, encoding="utf-8")
    expected = list(inline.segmenter.units(open_documents(text)))
    assert list(pooled.scanner.prep.units(open_documents(path))) == expected
    question = "Which ferry did the board look at?"
    a = inline.retrieve(text, question)
    b = pooled.retrieve(path, question)
    assert a.sentences == b.sentences


def _in_pool_worker() -> tuple[int, str]:
    """Run in a ``multiprocessing.Pool`` worker (a daemonic process, which has no children)."""
    from infiniretri.prep import PrepPool, default_workers

    try:
        PrepPool(None, 2)
    except ValueError as error:
        return default_workers("cuda"), str(error)
    return default_workers("cuda"), ""


def test_prep_workers_in_a_daemonic_process():
    """A Pool worker gets no prep workers by default, and a clear error if it asks for some
    (starting them there fails deep inside multiprocessing)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        workers, error = pool.apply(_in_pool_worker)
    assert workers == 0
    assert "prep_workers=2" in error and "daemonic" in error
