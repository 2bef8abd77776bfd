"""Tokenized retrieval units and chunk packing."""

from __future__ import annotations

import pytest

from infiniretri.chunking import pack_chunks
from infiniretri.segments import Segmenter, Unit
from infiniretri.sources import open_documents
from infiniretri.testing import embedded_tokenizer


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(embedded_tokenizer(), max_tokens=32)


def test_units_map_back_to_the_document(segmenter):
    doc = (
        "Short one. " + "A very long sentence that goes on and on " * 20 + "end. Final words here."
    )
    units = list(segmenter.units(open_documents(doc)))
    assert len(units) > 3
    for unit in units:
        assert doc[unit.char_start : unit.char_end] == unit.text
        assert 0 < len(unit.ids) <= 32
    ends = [u.char_end for u in units]
    starts = [u.char_start for u in units]
    assert all(e <= s for e, s in zip(ends, starts[1:]))


def test_long_sentence_pieces_cover_it(segmenter):
    doc = "one two three four five six seven eight nine ten " * 30
    units = list(segmenter.units(open_documents(doc)))
    assert len(units) >= 10
    joined = " ".join(u.text for u in units)
    assert joined.split() == doc.split()


def test_emoji_and_cjk_offsets(segmenter):
    doc = "Party time 🎉🎉🎉 is here! 今天天气很好。我们去公园吧！" + "🙂" * 200
    units = list(segmenter.units(open_documents(doc)))
    for unit in units:
        assert doc[unit.char_start : unit.char_end] == unit.text
        assert len(unit.ids) <= 32
    assert units[-1].char_end == len(doc)


def test_slow_tokenizer_path_keeps_offsets():
    class Slow:
        is_fast = False

        def __call__(self, texts, add_special_tokens=False):
            batch = [texts] if isinstance(texts, str) else texts
            ids = [[len(w) for w in t.split()] for t in batch]
            return {"input_ids": ids[0] if isinstance(texts, str) else ids}

    doc = " ".join(f"w{i}" for i in range(100)) + "."
    units = list(Segmenter(Slow(), max_tokens=8).units(open_documents(doc)))
    assert all(len(u.ids) <= 8 for u in units)
    assert all(doc[u.char_start : u.char_end] == u.text for u in units)
    assert " ".join(u.text for u in units) == doc


def unit(n: int, i: int) -> Unit:
    return Unit(0, i, i + 1, "x", list(range(n)))


def test_pack_chunks_keeps_whole_units_in_order():
    units = [unit(n, i) for i, n in enumerate([5, 7, 3, 10, 1, 9, 2])]
    chunks = list(pack_chunks(units, 12))
    assert [u for c in chunks for u in c] == units
    assert all(sum(len(u.ids) for u in c) <= 12 for c in chunks)
    assert [[len(u.ids) for u in c] for c in chunks] == [[5, 7], [3], [10, 1], [9, 2]]


def test_pack_chunks_rejects_oversized_unit_and_bad_size():
    with pytest.raises(ValueError, match="exceeds chunk_tokens"):
        list(pack_chunks([unit(20, 0)], 10))
    with pytest.raises(ValueError, match="chunk_tokens"):
        list(pack_chunks([], 0))
