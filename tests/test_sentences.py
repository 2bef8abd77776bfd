"""Sentence splitting with exact offsets."""

from __future__ import annotations

from infiniretri.sentences import BLOCK_CHARS, SentenceSplitter


def texts(text: str, spans) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_splits_english_and_keeps_abbreviations():
    text = "Dr. Smith went to Washington. He arrived at 5 p.m. on Monday! Did he stay? Yes."
    got = texts(text, SentenceSplitter().split(text))
    assert got[0] == "Dr. Smith went to Washington."
    assert got[-2:] == ["Did he stay?", "Yes."]


def test_blank_lines_end_paragraphs():
    text = "A title without a full stop\n\nFirst sentence here. Second one.\n\n  \n\nLast line"
    got = texts(text, SentenceSplitter().split(text))
    assert got == [
        "A title without a full stop",
        "First sentence here.",
        "Second one.",
        "Last line",
    ]


def test_cjk_sentence_ends():
    text = "这是第一句。这是第二句！第三句？最后一句"
    got = texts(text, SentenceSplitter().split(text))
    assert got == ["这是第一句。", "这是第二句！", "第三句？", "最后一句"]


def test_long_line_without_punctuation_is_capped():
    splitter = SentenceSplitter(max_chars=500)
    text = " ".join(f"word{i}" for i in range(4000))
    spans = splitter.split(text)
    assert len(spans) > 1
    assert all(b - a <= 500 for a, b in spans)
    assert "".join(texts(text, spans)).replace(" ", "") == text.replace(" ", "")


def test_no_whitespace_at_all_is_capped():
    splitter = SentenceSplitter(max_chars=300)
    text = "x" * 5000
    spans = splitter.split(text)
    assert all(0 < b - a <= 300 for a, b in spans)
    assert "".join(texts(text, spans)) == text


def test_stream_offsets_are_exact_across_blocks():
    sentence = "The harbour master counted {} boats before noon. "
    text = "".join(sentence.format(i) for i in range(3 * BLOCK_CHARS // len(sentence)))
    pieces = [text[i : i + 777] for i in range(0, len(text), 777)]
    got = list(SentenceSplitter().split_stream(pieces))
    assert len(got) > 100
    previous_end = 0
    for start, end, sentence_text in got:
        assert text[start:end] == sentence_text
        assert start >= previous_end
        previous_end = end
    assert [t for _, _, t in got] == texts(text, SentenceSplitter().split(text))


def test_whitespace_only_gives_no_sentences():
    assert SentenceSplitter().split(" \n\t \n ") == []
