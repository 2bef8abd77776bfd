"""Bad input gets a specific error naming what is wrong; odd but valid input works."""

from __future__ import annotations

import pytest

from infiniretri import InfiniRetri
from infiniretri.testing import tiny_model


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_model("llama")
    return InfiniRetri(model, tokenizer, chunk_tokens=256, top_k_tokens=64, retrieval_layer=2)


@pytest.mark.parametrize("source", ["", "   \n\t  \n", ["", "  "], iter(["", " "])])
def test_empty_or_whitespace_document(tiny, source):
    with pytest.raises(ValueError, match="empty or whitespace"):
        tiny.retrieve(source, "What?")


def test_empty_document_list(tiny):
    with pytest.raises(ValueError, match="empty sequence"):
        tiny.retrieve([], "What?")


@pytest.mark.parametrize("question", ["", "   ", None, 42, ["why"]])
def test_bad_question(tiny, question):
    with pytest.raises(ValueError, match="question must be"):
        tiny.retrieve("Some text. More text.", question)


@pytest.mark.parametrize(
    "name", ["chunk_tokens", "phrase_tokens", "top_k_tokens", "max_cache_tokens"]
)
@pytest.mark.parametrize("value", [0, -5, 2.5, "10", True])
def test_numbers_must_be_positive_integers(tiny_llama, name, value):
    model, tokenizer = tiny_llama
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
        InfiniRetri(model, tokenizer, retrieval_layer=0, **{name: value})


@pytest.mark.parametrize("layer", [4, -5, 100, "last", 1.0])
def test_retrieval_layer_out_of_range(tiny_llama, layer):
    model, tokenizer = tiny_llama
    with pytest.raises(ValueError, match="retrieval_layer"):
        InfiniRetri(model, tokenizer, retrieval_layer=layer)


def test_chunk_too_large_for_the_context_window(tiny_llama):
    model, tokenizer = tiny_llama
    with pytest.raises(ValueError, match=r"chunk_tokens=8192 is too large .* 8192 tokens"):
        InfiniRetri(model, tokenizer, chunk_tokens=8192, retrieval_layer=0)


def test_question_too_long_for_the_window(tiny):
    with pytest.raises(ValueError, match="question is too long"):
        tiny.retrieve("Some text.", "why " * 9000)


def test_missing_path_directory_and_binary_file(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tiny.retrieve(tmp_path / "nope.txt", "What?")
    with pytest.raises(ValueError, match="is a directory"):
        tiny.retrieve(tmp_path, "What?")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(ValueError, match="not UTF-8 text"):
        tiny.retrieve(binary, "What?")


def test_bytes_that_are_not_text(tiny):
    with pytest.raises(ValueError, match="not UTF-8 text"):
        tiny.retrieve(b"\xff\xfe\x00abc", "What?")
    with pytest.raises(ValueError, match="NUL"):
        tiny.retrieve("\x00" * 1000, "What?")


def test_a_str_is_never_taken_as_a_path(tiny, tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("The vault code is 1234.")
    r = tiny.retrieve(str(path), "What is the vault code?")
    assert [s.text for s in r.sentences] == [str(path)]


def test_wrong_source_and_piece_types(tiny):
    with pytest.raises(ValueError, match="source"):
        tiny.retrieve(12345, "What?")
    with pytest.raises(ValueError, match="must yield str"):
        tiny.retrieve(iter(["fine text. ", 7]), "What?")


def test_bad_generation_arguments(tiny):
    with pytest.raises(ValueError, match="max_new_tokens"):
        tiny.answer("Text here.", "What?", max_new_tokens=0)
    with pytest.raises(ValueError, match="stop"):
        tiny.answer("Text here.", "What?", stop=[1, 2])


@pytest.mark.parametrize(
    "doc",
    [
        "x" * 20_000,
        "word " * 4000,
        "Just one short sentence.",
        "北京是中国的首都。上海是最大的城市！广州在南方？" * 30,
        "def f(x):\n    return x + 1\n\nclass A:\n    pass\n" * 40,
        "Party 🎉 time 🙂 with 👩‍👩‍👧 families. " * 100,
    ],
    ids=[
        "20k-chars-no-punctuation",
        "no-punctuation-words",
        "shorter-than-a-chunk",
        "cjk",
        "code",
        "emoji",
    ],
)
def test_unusual_documents_work(tiny, doc):
    r = tiny.retrieve(doc, "What is this about?")
    assert r.sentences
    for s in r.sentences:
        assert doc[s.char_start : s.char_end] == s.text
    assert r.stats.cache_tokens <= r.stats.tokens_read
