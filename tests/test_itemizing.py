"""The summary track's itemised answer (``summary_answer="map"``, ``infiniretri.itemizing``)."""

from __future__ import annotations

import random

import pytest

from infiniretri import InfiniRetri
from infiniretri.itemizing import (
    ITEM_BULLET,
    ITEM_UNITS,
    item_sentences,
    item_text,
    list_items,
)

TEXT = " ".join(
    f"Crate {i} of the northern depot holds {3 * i + 1} coils of copper wire and a lamp."
    for i in range(60)
)
QUESTION = "List every crate that holds copper wire."


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    model, tokenizer = tiny_llama
    return InfiniRetri(
        model, tokenizer, chunk_tokens=96, retrieval_layer=2, answer_mode="summary",
        summary_notes=2, summary_note_tokens=4,
    )  # fmt: skip


def test_the_whole_cache_is_read_up_to_a_cap_best_first():
    assert item_sentences([]) == [] and item_sentences([3.0]) == [0]
    assert item_sentences([1.0, 5.0, 0.0, 4.0]) == [0, 1, 2, 3]  # document order
    scores = [float((7 * i) % 100) for i in range(100)]
    chosen = item_sentences(scores)
    assert len(chosen) == ITEM_UNITS and chosen == sorted(chosen)
    assert min(scores[k] for k in chosen) > max(s for k, s in enumerate(scores) if k not in chosen)


def test_answers_are_listed_once_each_in_order():
    assert item_text(' - "Gelilite."\nand more') == "Gelilite"
    assert item_text("   ") == ""
    listed = list_items(["Gelilite.", "", "Zornite", "gelilite", "  Zornite  ", "Tarhavite"])
    assert listed == f"{ITEM_BULLET}Gelilite\n{ITEM_BULLET}Zornite\n{ITEM_BULLET}Tarhavite"
    assert list_items(["", " \n"]) == ""


def test_the_itemised_answer_is_the_same_alone_streamed_and_batched(tiny):
    retrieval = tiny.retrieve(TEXT, QUESTION)
    assert retrieval.mode == "summary"
    prompts = tiny.answerer.item_prompts(retrieval, 8)
    chosen = item_sentences([s.score for s in retrieval.sentences])
    assert len(prompts) == len(chosen) + len(retrieval.notes)
    assert all(p.summary and p.quoted == () and p.max_new_tokens <= 8 for p in prompts)
    alone = tiny.answer_from(retrieval, max_new_tokens=8)
    pieces = list(tiny.stream_answer_from(retrieval, max_new_tokens=8))
    batched = tiny.answer_from_batch([retrieval, retrieval], max_new_tokens=8)
    assert "".join(pieces) == alone.text == batched[0].text == batched[1].text
    assert all(line.startswith(ITEM_BULLET) for line in alone.text.splitlines())
    assert alone.shown == [retrieval.sentences[k] for k in chosen]
    usage = alone.usage
    assert usage.answer_prompt_tokens == sum(len(p.ids) for p in prompts)
    assert 0 < usage.completion_tokens <= 8 * len(prompts)
    assert batched[0].usage == usage


def test_read_answers_from_one_prompt(tiny):
    read = tiny.with_options(summary_answer="read")
    retrieval = read.retrieve(TEXT, QUESTION)
    assert read.answerer.item_prompts(retrieval, 8) == []
    answer = read.answer_from(retrieval, max_new_tokens=4)
    assert answer.usage.answer_prompt_tokens == len(read.answer_prompt(retrieval, 4).ids)
    assert answer.shown == retrieval.sentences


def test_retrieval_mode_never_itemises(tiny):
    plain = tiny.with_options(answer_mode="retrieval")
    retrieval = plain.retrieve(TEXT, QUESTION)
    assert plain.answerer.item_prompts(retrieval, 8) == []


def test_the_real_reader_lists_scattered_items(engine):
    """Six minerals, one sentence each, scattered through filler: read one sentence at a time,
    the 135M reader names most of them."""
    rng = random.Random(3)
    filler = [
        "The committee met again in the spring to review the budget for the coming year.",
        "Rain fell through most of the week, and the roads to the valley were closed twice.",
        "Several of the older buildings were repainted before the festival opened.",
        "The library extended its opening hours during the examination period.",
    ]
    names = ["Zaslorite", "Gelilite", "Tarhavite", "Mormevite", "Drevanite", "Krohusite"]
    parts = [rng.choice(filler) for _ in range(120)]
    for k, name in enumerate(names):
        found = f"Geologists of the Ostrander survey found {name} in a creek bed."
        parts.insert(10 + k * 20, found)
    summary = engine.with_options(answer_mode="summary")
    question = "List every mineral that the Ostrander survey found."
    answer = summary.answer(" ".join(parts), question, max_new_tokens=150)
    named = [n for n in names if n in answer.text]
    assert len(named) >= 5, answer.text
