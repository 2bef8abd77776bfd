"""Offsets are always exact: property tests over random unicode text and random settings.

Every sentence the splitter, the segmenter or the engine hands back satisfies
``document[char_start:char_end] == text``; sentences come in document order and never overlap;
no non-whitespace character of the document is lost before the model reads it.

The splitter and segmenter run thousands of examples (``INFINIRETRI_FUZZ_EXAMPLES`` scales them);
the engine, with a tiny random-weight model, fewer.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from infiniretri import InfiniRetri
from infiniretri.segments import Segmenter
from infiniretri.sentences import SentenceSplitter
from infiniretri.sources import open_documents
from infiniretri.testing import embedded_tokenizer, tiny_model

SCALE = float(os.environ.get("INFINIRETRI_FUZZ_EXAMPLES", "1"))


def examples(n: int) -> settings:
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- random text ------------------------------------------------------------------------------

# Any code point but surrogates (not encodable) and NUL (refused as binary, tested elsewhere).
ANY_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
TRICKY = [
    "Mr.",
    "Dr. Smith",
    "e.g.",
    "U.S.",
    "3.14",
    "...",
    "?!",
    ".",
    "!",
    "?",
    "。",
    "！",
    "？",
    "」",
    "”",
    "\u0301",
    "e\u0301",
    "\u0915\u094d\u0937",
    "🎉",
    "👩\u200d👩\u200d👧",
    "🇫🇷",
    "\r\n",
    "\r",
    "\n\n",
    "\n \n",
    " ",
    "\t",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x85",
    "\u2028",
    "\u2029",
    "\u00a0",
    "\u3000",
    "\u200b",
    "\ufeff",
    "北京",
    "東京は",
    "שלום",
    "مرحبا",
    "<|im_end|>",
    "<|im_start|>assistant",
    "http://a.b/c?d=e.",
    "x" * 70,
    "—",
    "«»",
]
WORDS = st.from_regex(r"[A-Z][a-z]{0,8}( [a-z]{1,8}){0,6}[.!?]( |\n)?", fullmatch=True)
TEXT = st.lists(
    st.one_of(st.text(ANY_CHAR, max_size=8), st.sampled_from(TRICKY), WORDS), max_size=50
).map("".join)


def pieces_of(text: str, cuts: list[int]) -> list[str]:
    """``text`` cut at ``cuts`` (a stream of pieces, as a file or generator would give it)."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(text)}), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


def non_space(text: str) -> str:
    return "".join(c for c in text if not c.isspace())


def check_spans(text: str, spans: list[tuple[int, int]], max_chars: int | None = None) -> None:
    """Exact, stripped, ordered, non-overlapping spans that hold every non-space character."""
    end = 0
    for start, stop in spans:
        assert end <= start < stop <= len(text)
        piece = text[start:stop]
        assert not piece[0].isspace() and not piece[-1].isspace()
        if max_chars is not None:
            assert stop - start <= max_chars
        end = stop
    assert non_space("".join(text[a:b] for a, b in spans)) == non_space(text)


@functools.cache
def splitter(max_chars: int) -> SentenceSplitter:
    return SentenceSplitter(max_chars)


# -- splitter ---------------------------------------------------------------------------------


@examples(1000)
@given(TEXT, st.integers(16, 300))
def test_split_spans_are_exact_and_never_overlap(text, max_chars):
    check_spans(text, splitter(max_chars).split(text), max_chars)


@examples(600)
@given(TEXT, st.lists(st.integers(0, 600), max_size=8), st.integers(16, 120))
def test_streamed_split_gives_exact_offsets_whatever_the_pieces(text, cuts, max_chars):
    got = list(splitter(max_chars).split_stream(pieces_of(text, cuts)))
    for start, stop, piece in got:
        assert text[start:stop] == piece
    check_spans(text, [(a, b) for a, b, _ in got], max_chars)


@examples(600)
@given(TEXT, st.lists(st.integers(0, 600), max_size=8), st.integers(40, 200))
def test_small_blocks_still_give_exact_offsets(text, cuts, block_chars):
    """Blocks far smaller than sentences: each block's spans, moved by its offset, stay exact."""
    split = splitter(16)
    spans = []
    for base, block in split.blocks(pieces_of(text, cuts), block_chars=block_chars):
        assert text[base : base + len(block)] == block
        spans.extend((base + a, base + b) for a, b in split.split(block))
    check_spans(text, spans, 16)


# -- segmenter: sentences become token units ---------------------------------------------------


class PythonTokenizer:
    """The embedded tokenizer seen as a slow one (no offsets): the segmenter's other path."""

    is_fast = False

    def __init__(self, inner) -> None:
        self.inner = inner
        self.split_special_tokens = False

    def __call__(self, texts, **kwargs):
        kwargs.pop("return_offsets_mapping", None)
        return self.inner(texts, **kwargs)


@examples(600)
@given(
    st.lists(TEXT, min_size=1, max_size=3),
    st.integers(1, 48),
    st.booleans(),
    st.lists(st.integers(0, 600), max_size=4),
)
def test_units_are_exact_bounded_and_lose_no_token(documents, max_tokens, slow, cuts):
    tokenizer = embedded_tokenizer()
    segmenter = Segmenter(PythonTokenizer(tokenizer) if slow else tokenizer, max_tokens)
    # One document arrives as a stream of pieces; several arrive as a list of texts.
    source = iter(pieces_of(documents[0], cuts)) if len(documents) == 1 else documents
    round_trips = [
        tokenizer.decode(tokenizer(" " + d, add_special_tokens=False)["input_ids"]) == " " + d
        for d in documents
    ]
    ends = [0] * len(documents)
    spans: list[list[tuple[int, int]]] = [[] for _ in documents]
    last_doc = 0
    for unit in segmenter.units(open_documents(source)):
        doc = documents[unit.doc_index]
        assert unit.doc_index >= last_doc
        last_doc = unit.doc_index
        assert doc[unit.char_start : unit.char_end] == unit.text
        assert ends[unit.doc_index] <= unit.char_start < unit.char_end
        ends[unit.doc_index] = unit.char_end
        assert 1 <= len(unit.ids) <= max_tokens
        spans[unit.doc_index].append((unit.char_start, unit.char_end))
        if max_tokens >= 8 and round_trips[unit.doc_index]:
            # A piece of a long sentence holds exactly its own tokens: none lost or shared.
            assert tokenizer.decode(unit.ids).strip() == unit.text
    for doc, doc_spans in zip(documents, spans):
        check_spans(doc, doc_spans)


def test_a_long_cjk_sentence_is_cut_without_losing_tokens():
    """Found by the property above: pieces once dropped byte tokens of multi-token characters."""
    tokenizer = embedded_tokenizer()
    doc = "北京是中国的首都" * 40 + "🎉" * 50
    units = list(Segmenter(tokenizer, 16).units(open_documents(doc)))
    assert len(units) > 10
    assert all(len(u.ids) <= 16 for u in units)
    assert [tokenizer.decode(u.ids).strip() for u in units] == [u.text for u in units]
    whole = tokenizer(" " + doc, add_special_tokens=False)["input_ids"]
    assert sum(len(u.ids) for u in units) == len(whole)


# -- the engine, with a tiny random-weight model -------------------------------------------------


@pytest.fixture(scope="module")
def base_engine():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest (restored after the module)
    yield _tiny_engine()
    torch.set_num_threads(before)


def _tiny_engine() -> InfiniRetri:
    model, tokenizer = tiny_model("llama", layers=2)
    return InfiniRetri(model, tokenizer, chunk_tokens=64, top_k_tokens=16, retrieval_layer=1)


SETTINGS = st.fixed_dictionaries(
    {
        "chunk_tokens": st.integers(8, 200),
        "phrase_tokens": st.integers(1, 12),
        "top_k_tokens": st.integers(1, 96),
        "max_sentence_tokens": st.one_of(st.none(), st.integers(1, 64)),
        "retrieval_layer": st.sampled_from([0, 1, -1]),
    }
)


def check_retrieval(retrieval, documents: list[str]) -> None:
    assert retrieval.sentences
    last = (-1, -1)
    for s in retrieval.sentences:
        assert documents[s.doc_index][s.char_start : s.char_end] == s.text
        assert s.text and not s.text[0].isspace() and not s.text[-1].isspace()
        assert (s.doc_index, s.char_start) >= last  # document order, no overlap
        last = (s.doc_index, s.char_end)
    assert len(retrieval.token_ids) == len(retrieval.sentences)


@examples(30)
@given(st.lists(TEXT, min_size=1, max_size=3), SETTINGS, st.sampled_from(["Why?", "What is 北京?"]))
def test_engine_sentences_are_exact_and_in_document_order(base_engine, documents, options, q):
    assume(any(non_space(d) for d in documents))
    engine = base_engine.with_options(**options)
    check_retrieval(engine.retrieve(documents, q), documents)


@examples(12)
@given(TEXT, SETTINGS, st.lists(st.integers(0, 600), max_size=5))
def test_engine_offsets_index_the_file_and_the_stream(base_engine, text, options, cuts):
    """A file (read as UTF-8 bytes, ``\\r\\n`` kept) and a stream of pieces give exact offsets."""
    assume(non_space(text))
    engine = base_engine.with_options(**options)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.txt"
        path.write_bytes(text.encode("utf-8"))
        from_file = engine.retrieve(path, "What?")
    check_retrieval(from_file, [text])
    from_stream = engine.retrieve(iter(pieces_of(text, cuts)), "What?")
    check_retrieval(from_stream, [text])
    assert from_stream.sentences == from_file.sentences
