"""infiniretri.integration: the engine holder, checks, prompt splitting, scan-and-answer, usage.

Everything here is shared by the LangChain and LlamaIndex adapters; they are tested to use it
in their own suites and in ``test_integrations_agree.py``.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infiniretri import EMBEDDED_MODEL_ID, EngineSettings, InfiniRetri, Usage
from infiniretri import integration as core
from infiniretri.testing import tiny_model

QUESTION = "Where is the mill?"
TEXT = (
    "The harbour town was founded by fishermen. Its streets climb from the quay. "
    "The old mill stands by the river bridge. Gulls nest on the northern cliffs."
)


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def tiny() -> InfiniRetri:
    model, tokenizer = tiny_model("llama", layers=2)
    return InfiniRetri(model, tokenizer, chunk_tokens=64, top_k_tokens=24, retrieval_layer=1)


# -- engine holder ------------------------------------------------------------------------------


def test_a_given_engine_is_used_and_options_make_a_sibling(tiny):
    holder = core.EngineHolder(tiny)
    assert holder.loaded and holder.get() is tiny and holder.settings == tiny.settings
    tuned = core.EngineHolder(tiny, engine_kwargs={"top_k_tokens": 12})
    assert tuned.get() is not tiny and tuned.get().model is tiny.model
    assert tuned.settings == tiny.settings.replace(top_k_tokens=12) == tuned.get().settings
    assert tuned.model_name == tiny.model_name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine_kwargs": {"chunk_tokens": 0}}, "chunk_tokens must be a positive integer"),
        ({"engine_kwargs": {"chunk_size": 100}}, "unknown engine options"),
        ({"engine_kwargs": [("chunk_tokens", 64)]}, "engine_kwargs must be a dict"),
        ({"model_kwargs": {"devise": "cpu"}}, "model_kwargs: unknown option 'devise'"),
        ({"model_kwargs": {"chunk_tokens": 64}}, "chunk_tokens is an engine setting"),
        ({"model": 42}, "model must be a path or None"),
    ],
)
def test_bad_options_fail_at_construction_without_loading(kwargs, message):
    # The model directory does not exist: any attempt to load would fail differently.
    kwargs = {"model": "/nonexistent/model", **kwargs}
    with pytest.raises(ValueError, match=message):
        core.EngineHolder(**kwargs)


def test_an_engine_and_a_model_to_load_are_refused_together(tiny):
    with pytest.raises(ValueError, match="either a loaded engine or a model"):
        core.EngineHolder(tiny, model="/some/model")
    with pytest.raises(ValueError, match="either a loaded engine or a model"):
        core.EngineHolder(tiny, model_kwargs={"device": "cpu"})
    with pytest.raises(ValueError, match=r"engine must be an infiniretri\.InfiniRetri"):
        core.EngineHolder("not an engine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retrieval_layer=99 is out of range"):
        core.EngineHolder(tiny, engine_kwargs={"retrieval_layer": 99})


def test_model_options_are_the_loading_keywords_of_from_pretrained():
    assert set(core.model_options()) == {
        "device",
        "dtype",
        "trust_remote_code",
        "allow_download",
        "allow_pickle",
        "warmup",
    }
    assert not set(core.model_options()) & set(EngineSettings.names())


def test_a_model_is_loaded_on_first_use_once_across_threads(tmp_path):
    model, tokenizer = tiny_model("llama", layers=2)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    holder = core.EngineHolder(
        model=tmp_path, model_kwargs={"device": "cpu"}, engine_kwargs={"chunk_tokens": 64}
    )
    assert not holder.loaded
    assert holder.model_name == str(tmp_path)  # known without loading
    assert holder.settings == EngineSettings.from_options({"chunk_tokens": 64})
    with ThreadPoolExecutor(4) as pool:
        engines = list(pool.map(lambda _: holder.get(), range(4)))
    assert holder.loaded and all(e is engines[0] for e in engines)
    assert engines[0].settings == holder.settings
    assert core.EngineHolder().model_name == EMBEDDED_MODEL_ID


# -- checks -------------------------------------------------------------------------------------


def test_checks_name_the_argument():
    assert core.check_text(" q ", "query") == " q "
    with pytest.raises(ValueError, match="query must be a string, got int"):
        core.check_text(3, "query")
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        core.check_text(" \n", "query")
    assert core.check_positive_int(2, "k") == 2
    assert core.check_positive_int(None, "k", allow_none=True) is None
    for bad in (0, -1, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="k must be a positive integer, got"):
            core.check_positive_int(bad, "k")
    with pytest.raises(ValueError, match="top_n must be a positive integer or None, got 0"):
        core.check_positive_int(0, "top_n", allow_none=True)
    assert core.check_stop(None) is None and core.check_stop([]) is None
    assert core.check_stop(("END", "\n")) == ["END", "\n"]
    with pytest.raises(ValueError, match="stop must be a list of strings, not a single string"):
        core.check_stop("END")
    with pytest.raises(ValueError, match=r"stop\[1\] must be a string"):
        core.check_stop(["END", 3])


def test_split_engine_options_merges_engine_kwargs_and_loose_keywords():
    fields, options = core.split_engine_options(
        {"k": 2, "engine_kwargs": {"chunk_tokens": 64, "top_k_tokens": 9}, "top_k_tokens": 12},
        {"k", "engine_kwargs"},
    )
    assert fields == {"k": 2}
    assert options == {"chunk_tokens": 64, "top_k_tokens": 12}


# -- prompt splitting: the rules ----------------------------------------------------------------

LLAMAINDEX_QA = (
    "Context information is below.\n"
    "---------------------\n"
    "{context}\n"
    "---------------------\n"
    "Given the context information and not prior knowledge, answer the query.\n"
    "Query: {question}\n"
    "Answer: "
)


def split(prompt: str, **kwargs) -> tuple[str, str]:
    result = core.PromptSplitter(**kwargs).split(prompt, words)
    return result.context, result.question


def test_rule_1_the_template_when_the_prompt_has_its_shape():
    context = "Chapter one.\n\nQuestion: this line is part of the book.\n\nMore of the book."
    assert split(f"{context}\n\nQuestion: Who wrote it?") == (context, "Who wrote it?")
    custom = "Read this:\n<doc>{context}</doc>\nQ: {question}\nA:"
    prompt = "  Read this:\n<doc>Long text. More.</doc>\nQ: Why?\nA:\n"
    assert split(prompt, template=custom) == ("Long text. More.", "Why?")
    question_first = "Question: {question}\n\nContext: {context}"
    assert split("Question: Why?\n\nContext: Text.", template=question_first) == ("Text.", "Why?")


def test_rule_2_otherwise_the_tail_up_to_a_separator_or_a_blank_line():
    prompt = LLAMAINDEX_QA.format(context=TEXT, question=QUESTION)
    context, question = split(prompt)
    assert (
        context
        == f"Context information is below.\n---------------------\n{TEXT}\n" + "-" * 21 + "\n"
    )
    assert question == (
        "Given the context information and not prior knowledge, answer the query.\n"
        f"Query: {QUESTION}"
    )
    assert split(f"{TEXT}\n\nSome words first.\n{QUESTION}", template=None) == (
        f"{TEXT}\n\n",
        f"Some words first.\n{QUESTION}",
    )


def test_rule_2_the_tail_fits_question_tokens_but_holds_at_least_one_piece():
    prompt = "Filler sentence here. " * 40 + QUESTION
    context, question = split(prompt, question_tokens=8)
    assert question == f"Filler sentence here. {QUESTION}" and context + question == prompt
    context, question = split(TEXT + " " + "word " * 20 + "end?", question_tokens=3)
    assert question == "word " * 20 + "end?"  # one sentence, over the budget: still whole
    assert context == TEXT + " "


def test_rule_3_a_closing_answer_cue_is_dropped():
    assert split(f"{TEXT}\n\nQuestion: {QUESTION}\nAnswer:") == (TEXT, QUESTION)
    assert split(f"{TEXT}\n\n{QUESTION}\n  response :  \n", template=None) == (
        f"{TEXT}\n\n",
        QUESTION,
    )
    assert split(f"{TEXT}\n\n{QUESTION} Assistant:")[1] == QUESTION


def test_rule_4_no_context_and_no_question_left():
    assert split(QUESTION) == ("", QUESTION)
    assert split(f"\n\n  \n{QUESTION}") == ("", QUESTION)
    # The template matches with a blank question: the tail rule decides.
    assert split("Context.\n\nQuestion:    ") == ("Context.\n\n", "Question:")
    assert split("Some text.\n-----") == ("", "Some text.\n-----")


def test_the_splitter_checks_its_arguments():
    for template in ("{context} only", "{question} only", "{context}{context}{question}", 3):
        with pytest.raises(ValueError, match="template"):
            core.PromptSplitter(template)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="question_tokens must be a positive integer"):
        core.PromptSplitter(question_tokens=0)
    with pytest.raises(ValueError, match="prompt must be a string"):
        core.PromptSplitter().split(b"bytes", words)  # type: ignore[arg-type]


# -- prompt splitting: the same as the regexes it replaced, in linear time ---------------------


def _old_match(template: str, prompt: str) -> tuple[str, str] | None:
    """The regex LangChain's splitter used: correct, but quadratic on whitespace runs."""
    parts = []
    for piece in re.split(r"(\{context\}|\{question\})", template):
        if piece == "{context}":
            parts.append(r"(?P<context>.*)")
        elif piece == "{question}":
            parts.append(r"(?P<question>.*?)")
        else:
            parts.append(re.escape(piece))
    match = re.compile(r"\s*" + "".join(parts) + r"\s*", re.DOTALL).fullmatch(prompt)
    return None if match is None else (match["context"], match["question"])


TEMPLATES = [
    "{context}\n\nQuestion: {question}",
    "Read this:\n<doc>{context}</doc>\nQ: {question}\nA:",
    "<ctx>{context}</ctx> {question}",
    "Question: {question}\n\nContext: {context}",
]
FRAGMENTS = [
    "\n\nQuestion: ",
    "<doc>",
    "</doc>\nQ: ",
    "\nA:",
    "<ctx>",
    "</ctx> ",
    "Q: ",
    "Read this:\n",
    "\n\nContext: ",
]


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(TEMPLATES),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text("ab \n\t", max_size=5)), max_size=8),
)
def test_template_matching_is_the_old_regex(template, fragments):
    prompt = "".join(fragments)
    new, old = core.match_template(template, prompt), _old_match(template, prompt)
    # The lazy regex group leaves trailing whitespace to ``\s*``; the question is stripped anyway.
    assert (new and (new[0], new[1].rstrip())) == (old and (old[0], old[1].rstrip()))


_OLD_SEGMENT = re.compile(r"[^\n]*?(?:[.!?]+(?=\s)[ \t]*|\n|\Z)")


def _old_segments(prompt: str) -> list[str]:
    """The regex LlamaIndex's splitter used: correct, but quadratic on runs of punctuation."""
    pieces, pos = [], 0
    while pos < len(prompt):
        match = _OLD_SEGMENT.match(prompt, pos)
        end = match.end() if match and match.end() > pos else len(prompt)
        pieces.append(prompt[pos:end])
        pos = end
    return pieces


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab3 .!?\n\t\r\u3000", max_size=60))
def test_prompt_segments_are_the_old_regex(prompt):
    assert core.prompt_segments(prompt) == _old_segments(prompt)
    assert "".join(core.prompt_segments(prompt)) == prompt


_OLD_ANSWER_CUE = re.compile(
    r"\n?[ \t]*(?:answer|response|assistant)[ \t]*:[ \t]*\Z", re.IGNORECASE
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["answer", "Answer", "RESPONSE", "assistant", ":", "\n", " ", "\t"]),
            st.text("ab: \n\t", max_size=4),
        ),
        max_size=8,
    )
)
def test_answer_cue_removal_is_the_old_regex(pieces):
    text = "".join(pieces)
    assert core.drop_answer_cue(text) == _OLD_ANSWER_CUE.sub("", text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["\n\nQuestion: ", "\n", "---\n", "Answer:", ". ", "?"]),
            st.text("ab \n\t.", max_size=6),
        ),
        max_size=10,
    )
)
def test_every_split_is_a_context_and_a_question_taken_from_the_prompt(pieces):
    prompt = "".join(pieces)
    if not prompt.strip():
        return
    result = core.PromptSplitter(question_tokens=4).split(prompt, words)
    assert result.question and result.question == result.question.strip()
    assert result.question in prompt
    assert result.context == "" or (result.context.strip() and result.context in prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        " " * 300_000 + "A prompt without the marker",
        "Some context.\n\nQuestion: why" + " " * 300_000 + "now?",
        "\n" * 300_000 + "Context.\n\nQuestion: Why?",
        "Contents " + "." * 300_000 + f"\n\nQuestion: {QUESTION}",
        "Contents " + "?!" * 150_000 + f"\n\nQuestion: {QUESTION}",
        "x" + "!" * 300_000 + f" y\n\n{QUESTION}",
        "Context line.\n\n" + QUESTION + " " * 300_000 + "\nAnswer:" + " " * 300_000,
    ],
    ids=[
        "leading-spaces",
        "spaces-in-question",
        "leading-newlines",
        "dotted-leader",
        "punctuation-run",
        "bang-run",
        "spaces-around-answer-cue",
    ],
)
@pytest.mark.parametrize("template", [core.DEFAULT_TEMPLATE, None])
def test_long_runs_split_in_linear_time(prompt, template):
    """Each of these once took minutes to hours (quadratic regexes)."""
    result = core.PromptSplitter(template).split(prompt, lambda text: len(text) // 4)
    assert result.question and result.question == result.question.strip()
    assert result.question in prompt
    assert result.context in prompt


# -- scan and answer ----------------------------------------------------------------------------


def test_answer_reads_the_sources_and_reports_usage(tiny):
    answer = core.answer(tiny, [TEXT], QUESTION, max_new_tokens=4)
    retrieval = tiny.retrieve([TEXT], QUESTION)
    assert answer.retrieval.sentences == retrieval.sentences
    usage = answer.usage
    assert usage.scan_tokens == retrieval.stats.tokens_processed > 0
    assert usage.answer_prompt_tokens == len(tiny.answer_prompt(retrieval, 4).ids)
    assert usage.prompt_tokens == (
        usage.scan_tokens + usage.rescore_tokens + usage.answer_prompt_tokens
    )
    assert 0 < usage.completion_tokens <= 4


def test_without_sources_the_question_is_answered_directly(tiny):
    retrieval = core.retrieve(tiny, [], f"  {QUESTION} ")
    assert retrieval.sentences == [] and retrieval.question == QUESTION
    answer = core.answer(tiny, [], QUESTION, max_new_tokens=3)
    assert answer.usage.scan_tokens == 0
    assert answer.usage.answer_prompt_tokens == len(tiny.answer_prompt(retrieval, 3).ids)
    stream = core.stream_answer(tiny, [], QUESTION, max_new_tokens=3)
    assert "".join(core.pieces(stream)) == answer.text
    assert stream.usage == answer.usage


def test_a_stream_gives_the_answer_and_its_usage_at_the_end(tiny):
    answer = core.answer(tiny, [TEXT], QUESTION, max_new_tokens=6)
    stream = core.stream_answer(tiny, [TEXT], QUESTION, max_new_tokens=6)
    assert stream.usage is None
    assert "".join(core.pieces(stream)) == answer.text
    assert stream.usage == answer.usage
    assert stream.retrieval.sentences == answer.retrieval.sentences


def test_pieces_stop_once_cancelled_and_close_the_stream(engine):
    """The real model (tiny random ones write only newlines, which make no pieces)."""
    full = core.stream_answer(engine, [TEXT], QUESTION, max_new_tokens=8)
    assert len(list(core.pieces(full))) > 2  # enough pieces to stop in the middle
    cancel = threading.Event()
    stream = core.stream_answer(engine, [TEXT], QUESTION, max_new_tokens=8, cancel=cancel)
    got = []
    for piece in core.pieces(stream, cancel):
        got.append(piece)
        cancel.set()
    assert len(got) == 1
    assert stream.usage is not None  # closed: generation stopped, its tokens counted
    assert 0 < stream.usage.completion_tokens < full.usage.completion_tokens


def test_total_usage_adds_every_count():
    total = core.total_usage([Usage(10, 5, 2), Usage(0, 7, 3, 4)])
    assert total == Usage(10, 12, 5, 4)
    assert total.prompt_tokens == 26 and total.total_tokens == 31
    assert core.total_usage([]) == Usage()
