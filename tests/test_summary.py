"""The summary track (answer_mode), its auto choice, and top_k_tokens='auto'."""

from __future__ import annotations

import threading

import pytest

from infiniretri import InfiniRetri, Note, ScanCancelled
from infiniretri.itemizing import item_sentences
from infiniretri.scope import best_split, competing
from infiniretri.segments import Unit
from infiniretri.summary import Drafts, note_text

TEXT = " ".join(
    f"Crate {i} of the northern depot holds {3 * i + 1} coils of copper wire and a lamp."
    for i in range(80)
)
QUESTION = "List every crate that holds copper wire."


def unit(doc: int, start: int, tokens: int) -> Unit:
    return Unit(doc, start, start + 10, f"u{doc}.{start}", list(range(tokens)))


def test_drafts_stay_bounded_ordered_and_file_units_where_they_were_read():
    drafts = Drafts(notes=3, source_tokens=12)
    for step in range(20):
        chunk = [unit(0, 100 * step + 10 * k, 4) for k in range(5)]
        left = [(u, float(k)) for k, u in enumerate(chunk[:4])]
        if step >= 2:  # a sentence the cache kept two steps ago is dropped now
            left.append((unit(0, 100 * (step - 2) + 40, 4), 9.0))
        drafts.read(chunk, left)
        assert len(drafts.stretches) <= 3
        for stretch in drafts.stretches:
            assert sum(len(u.ids) for _, u in stretch.picks) <= 12
            assert all(
                stretch.start <= (u.doc_index, u.char_start) <= stretch.end
                for _, u in stretch.picks
            )
        ends = [s.end for s in drafts.stretches]
        starts = [s.start for s in drafts.stretches]
        assert all(e < s for e, s in zip(ends, starts[1:]))  # consecutive, in order
    assert drafts.stretches[0].start == (0, 0)
    assert drafts.stretches[-1].end == (0, 100 * 19 + 50)
    # The best-scored left-out sentences survive the merges.
    best = drafts.stretches[-1].picks[0]
    assert best[0] == 9.0


def test_note_text_drops_notes_that_say_nothing():
    assert note_text("  nothing. ") == ""
    assert note_text("Nothing") == ""
    assert note_text(" Crate 4 holds\n13 coils. ") == "Crate 4 holds 13 coils."


def test_best_split_and_competing():
    assert best_split([-1.0, -0.8, -0.5], [0.2, 0.5]) == pytest.approx(-0.15)
    assert best_split([0.0], [0.0]) == 0.0  # no split: the middle of the tie
    assert competing([5.0, 4.5, 1.0, 4.1]) == 3
    assert competing([9.0, 2.0, 1.0]) == 1
    assert competing([]) == 0


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    model, tokenizer = tiny_llama
    return InfiniRetri(model, tokenizer, chunk_tokens=96, retrieval_layer=2)


def test_summary_mode_writes_notes_with_ranges_and_counts_them(engine):
    small = engine.with_options(chunk_tokens=256)
    summary = small.with_options(
        answer_mode="summary", summary_notes=3, summary_note_tokens=12, summary_source_tokens=60
    )
    plain = small.retrieve(TEXT, QUESTION)
    retrieval = summary.retrieve(TEXT, QUESTION)
    assert plain.mode == "retrieval" and plain.notes == [] and plain.stats.summary_tokens == 0
    assert retrieval.mode == "summary" and retrieval.mode_reason == "setting"
    assert plain.mode_reason == ""
    # The scan itself is the same: the same sentences kept.
    assert [s.text for s in retrieval.sentences] == [s.text for s in plain.sentences]
    assert 1 <= len(retrieval.notes) <= 3
    assert retrieval.stats.summary_tokens > 0 and retrieval.stats.summary_seconds > 0
    previous = -1
    for note in retrieval.notes:
        assert isinstance(note, Note) and note.kind == "summary" and note.text
        assert note.doc_index == note.end_doc_index == 0
        assert previous < note.char_start < note.char_end <= len(TEXT)
        previous = note.char_end
        assert note.sources  # the sentences it was written from, inside its range
        for doc, start, end in note.sources:
            assert doc == 0 and note.char_start <= start < end <= note.char_end
            assert TEXT[start:end] not in {s.text for s in retrieval.sentences}
    answer = summary.answer_from(retrieval, max_new_tokens=4)
    chosen = item_sentences([s.score for s in retrieval.sentences])  # read one by one
    assert answer.shown == [retrieval.sentences[k] for k in chosen] and answer.quoted == []
    read = summary.with_options(summary_answer="read").answer_from(retrieval, max_new_tokens=4)
    assert read.shown == retrieval.sentences  # one prompt: the whole cache
    usage = answer.usage
    assert usage.summary_tokens == retrieval.stats.summary_tokens
    assert usage.prompt_tokens == (
        usage.scan_tokens + usage.summary_tokens + usage.answer_prompt_tokens + usage.rescore_tokens
    )
    prompt = summary.answer_prompt(retrieval)
    assert prompt.summary and prompt.quoted == ()
    assert prompt.shown == tuple(range(len(retrieval.sentences)))  # the whole cache
    text = engine.tokenizer.decode(prompt.ids)
    assert all(note.text[:10] in text for note in retrieval.notes)


def test_summary_mode_batch_equals_single_and_cancels(tiny):
    summary = tiny.with_options(answer_mode="summary", summary_notes=2, summary_note_tokens=4)
    single = summary.retrieve(TEXT, QUESTION)
    batch = summary.retrieve_batch([(TEXT, QUESTION), (TEXT[:2000], QUESTION)])
    assert [n.char_start for n in batch[0].notes] == [n.char_start for n in single.notes]
    assert batch[0].stats.summary_tokens == single.stats.summary_tokens > 0
    assert all(b.mode == "summary" for b in batch)
    assert all(n.char_end <= 2000 for n in batch[1].notes)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ScanCancelled):
        summary.retrieve(TEXT, QUESTION, cancel=cancel)


def test_summary_memory_is_flat_in_length(tiny):
    summary = tiny.with_options(
        answer_mode="summary", summary_notes=4, summary_note_tokens=2, summary_source_tokens=30
    )
    short = summary.retrieve(TEXT, QUESTION)
    long = summary.retrieve(TEXT * 4, QUESTION)
    assert len(long.notes) <= 4 and len(short.notes) <= 4
    # The note prompts cost the same whatever the length: bounded stretches.
    assert long.stats.summary_tokens <= 1.5 * short.stats.summary_tokens


def test_bad_summary_settings_name_the_setting(tiny):
    with pytest.raises(ValueError, match="answer_mode"):
        tiny.with_options(answer_mode="notes")
    with pytest.raises(ValueError, match="summary_notes"):
        tiny.with_options(summary_notes=0)
    with pytest.raises(ValueError, match="top_k_tokens"):
        tiny.with_options(top_k_tokens="many")


def test_auto_top_k_keeps_at_least_the_fixed_selection(tiny):
    fixed = tiny.retrieve(TEXT, QUESTION)
    auto = tiny.with_options(top_k_tokens="auto").retrieve(TEXT, QUESTION)
    assert auto.stats.cache_tokens >= fixed.stats.cache_tokens


def test_auto_mode_reads_the_question_with_the_real_model(engine):
    probe = engine.scope
    assert probe.whole_document("Summarize the document.")
    assert not probe.whole_document("What is the passcode of locker 12?")
    auto = engine.with_options(answer_mode="auto")
    needle = auto.retrieve(TEXT[:3000], "How many coils does crate 7 hold?")
    assert needle.mode == "retrieval" and needle.notes == []
    assert needle.mode_reason == "needle"
    # It paid only for the probe, which Usage counts.
    probe = engine.scope.judge("How many coils does crate 7 hold?")[1]
    assert needle.stats.summary_tokens == probe > 0
    wide = auto.retrieve(TEXT[:3000], "Summarize the document.")
    assert wide.mode == "summary" and wide.mode_reason in ("question", "competing")
