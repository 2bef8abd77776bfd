"""The engine's behaviour on tiny random-weight models: sources, stats, limits, threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from infiniretri import InfiniRetri, Retrieval, ScanCancelled
from infiniretri.testing import TINY_ARCHS, tiny_model

FILLER = "The committee met on day {} to discuss the harbour budget and the library roof."


def document(n: int = 120) -> str:
    return " ".join(FILLER.format(i) for i in range(n))


@pytest.fixture(scope="module")
def tiny_engine():
    model, tokenizer = tiny_model("llama")
    return InfiniRetri(model, tokenizer, chunk_tokens=256, top_k_tokens=64, retrieval_layer=-1)


def assert_exact(documents: list[str], retrieval: Retrieval) -> None:
    last = {}
    for s in retrieval.sentences:
        assert documents[s.doc_index][s.char_start : s.char_end] == s.text
        assert s.char_start >= last.get(s.doc_index, 0)
        last[s.doc_index] = s.char_end


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_every_architecture_scans_and_answers(arch):
    model, tokenizer = tiny_model(arch)
    engine = InfiniRetri(model, tokenizer, chunk_tokens=200, top_k_tokens=50)
    doc = document(80)
    answer = engine.answer(doc, "When did the committee meet?", max_new_tokens=4)
    retrieval = answer.retrieval
    assert retrieval.sentences
    assert_exact([doc], retrieval)
    assert retrieval.stats.forward_passes > 1
    assert answer.generated_tokens <= 4
    assert 0 <= retrieval.stats.retrieval_layer < 4


def whole_sentence_chunks(counts: list[int], chunk_tokens: int) -> list[int]:
    """Token counts of the chunks a scan reads: whole sentences, greedily, up to the chunk size."""
    chunks = [0]
    for n in counts:
        if chunks[-1] and chunks[-1] + n > chunk_tokens:
            chunks.append(0)
        chunks[-1] += n
    return chunks


def test_stats_count_what_was_read(tiny_engine):
    doc = document(150)
    seen = []
    r = tiny_engine.retrieve(doc, "What did the committee discuss?", progress=seen.append)
    stats = r.stats
    counts = [
        len(ids) for ids in tiny_engine.segmenter.encode([FILLER.format(i) for i in range(150)])
    ]
    assert stats.sentences_read == 150
    assert stats.tokens_read == sum(counts)
    # One forward per chunk of whole sentences (17-19 tokens each here, 2740 in all): 11 chunks.
    chunks = whole_sentence_chunks(counts, 256)
    assert max(chunks) <= 256
    assert stats.forward_passes == len(chunks) == 11
    assert [b - a for a, b in zip([0, *seen], seen)] == chunks  # tokens read at each pass
    assert stats.tokens_processed > stats.tokens_read
    assert stats.cache_tokens == sum(len(ids) for ids in r.token_ids)
    assert stats.documents == 1
    assert stats.seconds > 0


def test_the_cache_respects_max_cache_tokens():
    model, tokenizer = tiny_model("llama")
    engine = InfiniRetri(model, tokenizer, chunk_tokens=256, top_k_tokens=256, max_cache_tokens=60)
    r = engine.retrieve(document(100), "What did the committee discuss?")
    assert 0 < r.stats.cache_tokens <= 60


def test_scores_rank_top(tiny_engine):
    r = tiny_engine.retrieve(document(60), "What?")
    top = r.top(3)
    assert len(top) == 3
    assert top[0].score >= top[1].score >= top[2].score
    assert r.context.startswith(r.sentences[0].text)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        r.top(0)


def test_several_documents_keep_their_offsets(tiny_engine):
    docs = [document(30), "A second document. It has two sentences.", document(40)]
    r = tiny_engine.retrieve(docs, "What did the committee discuss?")
    assert {s.doc_index for s in r.sentences} <= {0, 1, 2}
    assert_exact(docs, r)
    assert r.stats.documents == 3


def test_lazy_iterable_file_path_and_file_object_agree(tiny_engine, tmp_path):
    doc = document(90)
    path = tmp_path / "doc.txt"
    path.write_text(doc, encoding="utf-8")
    question = "What did the committee discuss?"
    expected = tiny_engine.retrieve(doc, question).sentences
    pieces = (doc[i : i + 97] for i in range(0, len(doc), 97))
    assert tiny_engine.retrieve(pieces, question).sentences == expected
    assert tiny_engine.retrieve(path, question).sentences == expected
    with path.open("rb") as handle:
        assert tiny_engine.retrieve([handle], question).sentences == expected


def test_progress_reports_tokens_read(tiny_engine):
    seen = []
    r = tiny_engine.retrieve(document(100), "What?", progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == r.stats.tokens_read
    assert len(seen) == r.stats.forward_passes


def test_cancel_stops_the_scan_and_leaves_engine_usable(tiny_engine):
    cancel = threading.Event()
    seen = []

    def progress(tokens):
        seen.append(tokens)
        cancel.set()

    with pytest.raises(ScanCancelled):
        tiny_engine.retrieve(document(200), "What?", progress=progress, cancel=cancel)
    assert len(seen) == 1
    assert tiny_engine.retrieve(document(20), "What?").sentences


def test_same_input_same_output(tiny_engine):
    doc = document(80)
    a = tiny_engine.answer(doc, "What did they discuss?", max_new_tokens=6)
    b = tiny_engine.answer(doc, "What did they discuss?", max_new_tokens=6)
    assert a.retrieval.sentences == b.retrieval.sentences
    assert a.text == b.text


def test_threads_see_only_their_own_attention(tiny_engine):
    docs = [document(60 + 7 * i) for i in range(4)]
    questions = ["What did they discuss?", "When was the meeting?", "Who met?", "Why the roof?"]
    alone = [tiny_engine.retrieve(d, q) for d, q in zip(docs, questions)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(
            pool.map(lambda dq: tiny_engine.retrieve(*dq), zip(docs * 2, questions * 2))
        )
    for i, r in enumerate(together):
        assert r.sentences == alone[i % 4].sentences


def test_with_options_shares_the_model(tiny_engine):
    other = tiny_engine.with_options(chunk_tokens=128, phrase_tokens=4)
    assert other.model is tiny_engine.model
    assert (other.chunk_tokens, other.phrase_tokens, other.top_k_tokens) == (128, 4, 64)
    assert other.retrieval_layer_index == tiny_engine.retrieval_layer_index
    with pytest.raises(ValueError, match="unknown engine options"):
        tiny_engine.with_options(chunk_size=3)


def test_stream_pieces_join_to_the_answer(tiny_engine):
    doc = document(40)
    retrieval = tiny_engine.retrieve(doc, "What did they discuss?")
    pieces = list(tiny_engine.stream_answer_from(retrieval, max_new_tokens=12))
    answer = tiny_engine.answer_from(retrieval, max_new_tokens=12)
    assert "".join(pieces) == answer.text
    assert answer.prompt_tokens == len(tiny_engine.answer_prompt(retrieval, 12).ids)


def test_auto_layer_is_calibrated_once_and_stored(isolated_cache, tmp_path):
    model, tokenizer = tiny_model("qwen2", seed=3)
    model.name_or_path = str(tmp_path / "my-model")
    engine = InfiniRetri(model, tokenizer, retrieval_layer="auto")
    layer = engine.retrieval_layer_index
    assert 0 <= layer < 4
    stored = (isolated_cache / "retrieval_layers.json").read_text()
    assert str(tmp_path / "my-model") in stored
    again = InfiniRetri(model, tokenizer, retrieval_layer="auto")
    again.calibrate_layers = None  # a second calibration would fail: the stored value is used
    assert again.retrieval_layer_index == layer


def test_negative_layer_counts_from_the_top():
    model, tokenizer = tiny_model("llama")
    assert InfiniRetri(model, tokenizer, retrieval_layer=-1).retrieval_layer_index == 3
    assert InfiniRetri(model, tokenizer, retrieval_layer=-4).retrieval_layer_index == 0
