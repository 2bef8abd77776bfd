"""The answer step's options: evidence choice, quotes, re-scoring and copy-friendly decoding."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from infiniretri import InfiniRetri
from infiniretri.copying import CopyBias, WordTokens
from infiniretri.evidence import choose_evidence
from infiniretri.gathering import gather_values
from infiniretri.lexical import key_terms
from infiniretri.prompt import QUOTE_END, QUOTE_LEAD

TEXT = " ".join(
    f"Locker {i} is opened with the passcode {1000 + 37 * i} on weekdays." for i in range(30)
)
QUESTION = "What is the passcode of locker 12?"


def test_evidence_keeps_the_best_sentences_in_document_order():
    scores = [0.1, 0.9, 0.3, 0.8, 0.2]
    assert choose_evidence(scores, None, 0, 1.0).shown == [0, 1, 2, 3, 4]
    assert choose_evidence(scores, 2, 0, 1.0).shown == [1, 3]
    assert choose_evidence(scores, 2, 0, 1.0).quoted == []


def test_quotes_are_the_sentences_close_to_the_best():
    # One sentence stands out: only it is quoted.
    assert choose_evidence([0.0, 5.0, 0.1, 0.2, 0.0], None, 3, 1.0).quoted == [1]
    # Three score alike: all three (at most answer_quote of them).
    alike = [0.0, 5.0, 0.1, 4.9, 4.95, 0.0]
    assert choose_evidence(alike, None, 3, 0.5).quoted == [1, 3, 4]
    assert choose_evidence(alike, None, 2, 0.5).quoted == [1, 4]
    # Quotes come from what the prompt shows.
    assert set(choose_evidence(alike, 1, 3, 0.5).quoted) <= {1}


def test_quotes_come_from_the_sentences_that_name_what_the_question_names():
    question = "Which number is registered for project Delta-9?"
    texts = [
        "The number registered for project Delta-3 is 4412907.",
        "The number registered for project Delta-9 is 1190335.",
        "Rain fell all day.",
    ]
    asked = key_terms(question)
    assert {"delta", "9"} <= asked and "3" not in asked
    coverage = [len(asked & key_terms(t)) for t in texts]
    assert coverage[1] > coverage[0] > coverage[2]
    scores = [3.0, 2.0, 0.0]  # the attention prefers the look-alike
    assert choose_evidence(scores, 8, 4, 1.0).quoted == [0, 1]
    assert choose_evidence(scores, 8, 4, 1.0, coverage).quoted == [1]
    assert choose_evidence(scores, 8, 4, 5.0, coverage).shown == [0, 1, 2]


def test_copy_bias_follows_a_span_and_restarts_anywhere():
    bias = CopyBias([[5, 6, 7], [8, 6, 9]], bonus=2.0)
    assert bias.candidates() == [5, 6, 7, 8, 9]  # nothing copied yet: any evidence token
    bias.advance(6)  # 6 is in both spans: either may continue
    assert bias.candidates() == [7, 9]
    bias.advance(9)
    assert bias.candidates() == [5, 6, 7, 8, 9]  # span 2 ended: no continuation across spans
    bias.advance(8)
    assert bias.candidates() == [6]
    logits = bias.apply(torch.zeros(12))
    assert logits[6] == 2.0 and logits.sum() == 2.0
    bias.advance(3)  # a token outside the evidence: the next may start a span anywhere
    assert bias.candidates() == [5, 6, 7, 8, 9]


def words(**ids) -> WordTokens:
    """Word-token sets of a made-up vocabulary (empty where not given)."""
    return WordTokens(*(frozenset(ids.get(f, ())) for f in WordTokens._fields))


def test_copy_bias_never_outvotes_the_end_of_the_answer():
    bias = CopyBias([[5, 6]], bonus=2.0, words=words(answer_ends=[3], initial=[5, 6]))
    ending = torch.zeros(8)
    ending[3] = 1.0  # the model would end here: the bonus stays out
    assert bias.apply(ending.clone()).tolist() == ending.tolist()
    going = torch.zeros(8)
    going[4] = 1.0
    assert bias.apply(going)[[5, 6]].tolist() == [2.0, 2.0]
    # 1: a space; 5 opens a word after it, 6 is its second piece, 7 opens a word with a space;
    # 2: a hyphen inside a word, 8 follows it ("4146a91a-1c30": no span starts at "1c30").
    spaced = CopyBias([[1, 5, 6, 7, 2, 8]], 2.0, words(wordless=[1, 2], initial=[7], spacing=[1]))
    assert spaced.candidates() == [5, 7]  # a span starts where a word starts
    spaced.advance(5)
    assert spaced.candidates() == [6]  # and goes on mid-word


PLAIN = {"answer_sentences": None, "answer_rescore": False, "answer_quote": 0, "answer_copy": 0.0}
"""Every answer option off: the paper's answer step (the whole cache, then the question)."""


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    model, tokenizer = tiny_llama
    return InfiniRetri(model, tokenizer, chunk_tokens=128, retrieval_layer=2, **PLAIN)


def test_defaults_rescore_show_eight_quote_and_copy(tiny_llama):
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model, tokenizer, chunk_tokens=128, retrieval_layer=2)
    retrieval = engine.retrieve(TEXT, QUESTION)
    assert len(retrieval.sentences) > 8
    prompt = engine.answer_prompt(retrieval)
    assert prompt.rescore_tokens > 0 and 1 <= len(prompt.quoted) <= 4
    assert prompt.copy_spans == tuple(tuple(retrieval.token_ids[k]) for k in prompt.quoted)


def test_plain_answer_prompt_is_the_whole_cache_then_the_question(tiny):
    retrieval = tiny.retrieve(TEXT, QUESTION)
    prompt = tiny.answer_prompt(retrieval)
    context = [i for ids in retrieval.token_ids for i in ids]
    assert prompt.ids == tiny.layout.build(context, tiny.question_ids(QUESTION)).ids
    assert prompt.copy_spans == () and prompt.quoted == () and prompt.rescore_tokens == 0


def test_answer_sentences_and_quote_shape_the_prompt(tiny):
    engine = tiny.with_options(answer_sentences=3, answer_quote=1)
    retrieval = engine.retrieve(TEXT, QUESTION)
    prompt = engine.answer_prompt(retrieval)
    best = max(range(len(retrieval.sentences)), key=lambda i: retrieval.sentences[i].score)
    order = sorted(range(len(retrieval.sentences)), key=lambda i: -retrieval.sentences[i].score)
    shown = sorted(order[:3])
    context = [i for k in shown for i in retrieval.token_ids[k]]
    head = engine.layout.build(context, engine.question_ids(QUESTION)).ids
    quote = f"{QUOTE_LEAD}{retrieval.sentences[best].text}{QUOTE_END}"
    tail = engine.tokenizer(quote, add_special_tokens=False)["input_ids"]
    assert prompt.ids == head + tail
    assert prompt.quoted == (best,)
    answer = engine.answer_from(retrieval, max_new_tokens=4)
    assert [s.text for s in answer.quoted] == [retrieval.sentences[best].text]
    assert answer.usage.answer_prompt_tokens == len(prompt.ids)


def test_rescore_reads_the_cache_in_one_forward_and_is_counted(tiny):
    engine = tiny.with_options(answer_rescore=True, answer_sentences=2)
    retrieval = engine.retrieve(TEXT, QUESTION)
    fresh = engine.rescore(retrieval)
    assert len(fresh) == len(retrieval.sentences)
    prompt = engine.answer_prompt(retrieval)
    order = sorted(range(len(fresh)), key=lambda i: (-fresh[i], i))
    context = [i for k in sorted(order[:2]) for i in retrieval.token_ids[k]]
    assert prompt.ids == engine.layout.build(context, engine.question_ids(QUESTION)).ids
    cache = sum(len(ids) for ids in retrieval.token_ids)
    want = cache + engine.layout.overhead + len(engine.question_ids(QUESTION))
    assert prompt.rescore_tokens == want
    answer = engine.answer_from(retrieval, max_new_tokens=3)
    assert answer.usage.scan_tokens == retrieval.stats.tokens_processed
    assert answer.usage.rescore_tokens == want
    assert answer.usage.prompt_tokens == retrieval.stats.tokens_processed + want + len(prompt.ids)


def test_copy_decoding_is_the_same_alone_streamed_and_batched(tiny):
    engine = tiny.with_options(answer_copy=50.0, answer_quote=1)
    assert engine.answer_copy == 50.0
    retrieval = engine.retrieve(TEXT, QUESTION)
    alone = engine.answer_from(retrieval, max_new_tokens=8)
    streamed = "".join(engine.stream_answer_from(retrieval, max_new_tokens=8))
    batched = engine.answer_from_batch([retrieval, retrieval], max_new_tokens=8)
    assert alone.text == streamed == batched[0].text == batched[1].text
    # With a huge bonus every token is copied from the quoted sentence (a random-weight model
    # would otherwise write anything).
    assert len(alone.quoted) == 1
    words = set(re.findall(r"\w+", alone.text))
    assert words and words <= set(re.findall(r"\w+", alone.quoted[0].text))
    # Without the bonus the random-weight reader writes words its quote does not back: the
    # answer is then the quote itself, held back while streamed, and batched alike.
    free = tiny.with_options(answer_quote=1)
    written = free.answer_from(
        retrieval,
        max_new_tokens=8,
    ).text
    assert written == alone.quoted[0].text
    assert list(free.stream_answer_from(retrieval, max_new_tokens=8)) == [written]
    assert free.answer_from_batch([retrieval], max_new_tokens=8)[0].text == written


def test_a_quoted_answer_is_passed_on_once_its_quote_backs_it():
    from infiniretri.evidence import QuoteCheck

    check = QuoteCheck(
        "Which codeword was Brerflor given?", "Brerflor was given the codeword walrus."
    )
    assert not check.backs("Brerflor was given the codeword", finished=False)
    assert not check.backs("Brerflor was given the codeword wal", finished=False)
    assert check.backs("Brerflor was given the codeword walrus", finished=True)
    assert check.backs("Brerflor was given the codeword walrus.", finished=False)
    # A look-alike's sentence is never backed; a word the quote holds backs for good.
    assert not check.backs("Brorflar was given the codeword igloo.")
    assert check.backs("Walrus, not igloo.")
    # The quote does not name all the question names: not judged, backed once it has a word.
    loose = QuoteCheck("Which codeword was Brerflor given?", "The codeword was walrus.")
    assert not loose.backs("  ", finished=False)
    assert not loose.backs(" Igl", finished=False)
    assert loose.backs(" Igloo ", finished=False)


def test_gathering_adds_the_values_of_parallel_quoted_sentences():
    quoted = [
        "The special magic number for Orlan is 4412907.",
        "The special magic number for Orlan is 1190335.",
        "The special magic number for Orlen is 5550132.",
        "The special magic number for Orlan is 7.25-B.",
    ]
    assert gather_values("4412907.", quoted) == ["1190335", "7.25-B"]
    assert gather_values("Orlan's number is 1190335", quoted) == ["4412907", "7.25-B"]
    # A look-alike key is another statement: it never joins.
    assert gather_values("5550132", quoted) == []
    assert gather_values("4412907", quoted[:1]) == []
    assert gather_values("no value here", quoted) == []
    # An answer that copies its whole source sentence gathers only from parallel ones.
    mixed = [*quoted[:2], "I think the harbour is lovely in spring."]
    assert gather_values(quoted[0], mixed) == ["1190335"]


def test_gathering_never_joins_a_look_alike_key_the_question_names():
    # The answer copies its whole sentence; the look-alikes differ in the key and the value.
    quoted = [
        "In the memo, Brerflor was given the codeword walrus.",
        "In the memo, Brerfler was given the codeword raven.",
        "In the memo, Brorflar was given the codeword apricot.",
    ]
    question = "In the memo, which codeword was Brerflor given?"
    assert gather_values(quoted[0], quoted, question) == []
    assert gather_values(quoted[0], quoted) != []  # without the question they would join
    # The values of one key still join: they differ in no word of the question.
    values = [
        "Note: project Trirturk also uses the code 6439378.",
        "Note: project Trirturk also uses the code 4926389.",
    ]
    asked = "Which codes does project Trirturk use? Give all of them."
    assert gather_values(values[0], values, asked) == ["4926389"]


HAY = (
    "The committee met on a rainy morning and reviewed the harbour plans. "
    "Several members asked about the cost of dredging the old channel. "
    "The mayor said the ferry timetable would change in the spring. "
    "A local bakery offered to cater the opening of the new pier. "
)


@pytest.mark.parametrize("plain", [False, True])
def test_the_embedded_reader_gathers_every_value(engine, plain):
    values = ["4412907", "1190335", "8023416", "6675021"]
    parts = [HAY * 2]
    for value in values:
        parts += [f"One of the special magic numbers for Orlan is {value}. ", HAY]
    text = "".join(parts)
    options = PLAIN if plain else {}
    answer = engine.with_options(**options).answer(
        text, "What are all the special magic numbers for Orlan?", max_new_tokens=48
    )
    found = [v for v in values if v in answer.text]
    if plain:
        assert len(found) < len(values)  # the paper's answer step names only some of them
    else:
        assert found == values, answer.text


def test_the_embedded_reader_picks_the_asked_look_alike(engine):
    keys = {"Bronton": "4412907", "Brenton": "1190335", "Brontan": "8023416", "Branton": "6675021"}
    parts = [HAY]
    for key, value in keys.items():
        parts += [f"The approved budget code for {key} is {value}. ", HAY]
    text = "".join(parts)
    for key, value in keys.items():
        answer = engine.answer(text, f"What is the approved budget code for {key}?")
        named = [v for v in keys.values() if v in answer.text]
        assert named == [value], (key, answer.text)


def test_the_embedded_reader_answers_from_a_long_quoted_sentence(engine):
    # The answer opens a long sentence: the reader that ends at once after its quote answers
    # with the quote, instead of copying a span from the sentence's middle.
    path = Path(__file__).resolve().parents[1] / "examples/data/wikipedia_steam_oxygen_amazon.txt"
    text = path.read_text(encoding="utf-8")
    at = text.index("NASA's CALIPSO")
    part = text[at - 6000 : at + 3000]
    answer = engine.answer(
        part, "Which NASA satellite measured the dust blown from the Sahara to the Amazon?"
    )
    assert "CALIPSO" in answer.text, answer.text


def test_the_embedded_reader_names_the_value_of_a_digit_key(engine):
    # Keys that differ in one digit: the quote is the sentence naming the asked key
    # (answer_quote_coverage), and an answer that only repeats the key gets its quote.
    keys = {"Delta-3": "4412907", "Delta-9": "1190335", "Delta-4": "8023416", "Delta-7": "6675021"}
    parts = [HAY * 3]
    for key, value in keys.items():
        parts += [f"According to the records, the number registered for project {key} is {value}. "]
        parts += [HAY * 3]
    text = "".join(parts)
    for key, value in keys.items():
        question = f"According to the records, which number is registered for project {key}?"
        answer = engine.answer(text, question)
        named = [v for v in keys.values() if v in answer.text]
        assert named == [value], (key, answer.text)


def test_an_answer_the_quote_does_not_back_is_unsupported():
    from infiniretri.evidence import unsupported

    question = "What is the best thing to do in San Francisco?"
    quote = "The best thing to do in San Francisco is eat a sandwich in Dolores Park."
    assert unsupported("Sirens", question, quote)  # nothing from the quote
    assert unsupported("San Francisco", question, quote)  # only the question's words
    # Its own words are not the quote's: the question's words alone do not back it.
    assert unsupported("San Francisco is a great place to do anything.", question, quote)
    assert not unsupported("In San Francisco, eat a sandwich.", question, quote)
    assert not unsupported("Eat a sandwich.", question, quote)
    # The quote does not name all the question names: no judgement.
    assert not unsupported("Sirens", question, "Dolores Park is sunny.")
    # A comparison's answer: its quote names only the one alternative.
    assert not unsupported("Alpha", "Is Alpha or Beta older?", "Alpha is older than the sea.")
