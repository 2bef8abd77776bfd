"""InfiniRetriLLM: prompt splitting, keyword arguments, streaming and errors (tiny engine)."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from langchain_infiniretri import InfiniRetriLLM


# ---------------------------------------------------------------------------- splitting
# The rules themselves are tested once, in the repository's tests/test_integration_core.py;
# here: the LLM applies them, with its template and question_tokens.
@pytest.fixture
def llm(tiny_engine):
    return InfiniRetriLLM(engine=tiny_engine, max_tokens=5)


def test_default_template_splits_at_the_last_question_marker(llm):
    context = "Chapter one.\n\nQuestion: this line is part of the book.\n\nMore of the book."
    prompt = f"{context}\n\nQuestion: Who wrote it?"
    assert llm._request(prompt, {}) == ([context], "Who wrote it?")


def test_custom_template_with_text_around_both_fields(tiny_engine):
    llm = InfiniRetriLLM(
        engine=tiny_engine, template="Read this:\n<doc>{context}</doc>\nQ: {question}\nA:"
    )
    prompt = "Read this:\n<doc>Long text. More.</doc>\nQ: Why?\nA:"
    assert llm._request(prompt, {}) == (["Long text. More."], "Why?")


def test_prompt_not_matching_takes_its_tail_up_to_a_blank_line(tiny_engine):
    llm = InfiniRetriLLM(engine=tiny_engine, template="<ctx>{context}</ctx> {question}")
    assert llm._request("Some text.\n\nMore text.\n\nWhat is it?", {}) == (
        ["Some text.\n\nMore text.\n\n"],
        "What is it?",
    )
    assert llm._request("Just a question?", {}) == ([], "Just a question?")


def test_question_tokens_bounds_the_tail(tiny_engine):
    prompt = "Filler sentence here. " * 30 + "What is the code?"
    small = InfiniRetriLLM(engine=tiny_engine, template=None, question_tokens=8)
    (context,), question = small._request(prompt, {})
    assert question.endswith("What is the code?")
    assert tiny_engine.count_tokens(question) <= 8
    assert prompt.startswith(context) and context + question == prompt


@pytest.mark.parametrize(
    "template", ["{context} only", "{question} only", "{context}{context}{question}", 3]
)
def test_template_needs_each_field_once(template):
    with pytest.raises(ValueError, match="template"):
        InfiniRetriLLM(template=template)


# ---------------------------------------------------------------------------- requests
def test_request_from_prompt_and_from_keywords(llm):
    assert llm._request("Book text.\n\nQuestion: Why?", {}) == (["Book text."], "Why?")
    kwargs = {"context": "Book text.", "max_tokens": 3}
    assert llm._check_call("Why?", ["END"], kwargs) == (3, ["END"])
    assert llm._request("Why?", kwargs) == (["Book text."], "Why?")
    docs = [Document(page_content="One."), "Two."]
    assert llm._request("", {"context": docs, "question": "Q?"}) == (["One.", "Two."], "Q?")
    assert llm._request("The whole book.", {"question": "Q?"}) == (["The whole book."], "Q?")


def test_invoke_returns_text_and_generation_info(llm, short_text):
    result = llm.generate([f"{short_text.text}\n\nQuestion: {short_text.question}"])
    generation = result.generations[0][0]
    info = generation.generation_info
    assert isinstance(generation.text, str)
    assert info["cited_sentences"]
    for cited in info["cited_sentences"]:
        assert short_text.text[cited["char_start"] : cited["char_end"]] == cited["text"]
    assert info["document_tokens"] > 0
    assert 0 < info["completion_tokens"] <= 5
    usage = result.llm_output["token_usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert llm.invoke(short_text.question, context=short_text.text) == llm.invoke(
        f"{short_text.text}\n\nQuestion: {short_text.question}"
    )


def test_batch(llm, short_text):
    prompts = [
        f"{short_text.text}\n\nQuestion: {short_text.question}",
        f"{short_text.text}\n\nQuestion: Where do gulls nest?",
    ]
    assert llm.batch(prompts) == [llm.invoke(p) for p in prompts]


def test_without_context_the_question_is_answered_directly(llm):
    result = llm.generate(["Hello there"])
    info = result.generations[0][0].generation_info
    assert info["cited_sentences"] == [] and info["document_tokens"] == 0


def test_identifying_params_name_the_model_and_settings(llm, tiny_engine):
    params = llm._identifying_params
    assert params["model_name"] == tiny_engine.model_name
    assert params["chunk_tokens"] == tiny_engine.chunk_tokens
    assert params["top_k_tokens"] == tiny_engine.top_k_tokens
    assert params["max_tokens"] == 5
    assert params["template"] == llm.template
    other = InfiniRetriLLM(engine=tiny_engine, engine_kwargs={"top_k_tokens": 12})
    assert other._identifying_params["top_k_tokens"] == 12


def test_identifying_params_without_loading():
    llm = InfiniRetriLLM(engine_kwargs={"chunk_tokens": 256})
    params = llm._identifying_params
    assert params["chunk_tokens"] == 256 and params["model_name"]
    assert not llm._holder.loaded


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("prompt", "kwargs", "message"),
    [
        ("", {}, "question must be a non-empty string"),
        ("Text.", {"context": "c", "question": "q"}, "the prompt must be empty"),
        ("", {"context": "c", "question": 42}, "question must be a string"),
        ("q?", {"context": []}, None),
        ("q?", {"context": [Document(page_content=" ")]}, r"context\[0\] has empty page_content"),
        ("q?", {"context": 5}, "context must be a list"),
        ("q?", {"max_tokens": 0}, "max_tokens must be a positive integer"),
    ],
)
def test_bad_requests(llm, prompt, kwargs, message):
    if message is None:
        llm._check_call(prompt, None, kwargs)
        assert llm._request(prompt, kwargs)[0] == []
        return
    with pytest.raises(ValueError, match=message):
        llm._check_call(prompt, None, kwargs)
        llm._request(prompt, kwargs)


def test_unknown_keyword_is_an_error(llm):
    with pytest.raises(TypeError, match="temperature"):
        llm.invoke("Hi?", temperature=0.5)


def test_max_tokens_field_checked():
    with pytest.raises(ValueError, match="max_tokens must be a positive integer"):
        InfiniRetriLLM(max_tokens=0)
