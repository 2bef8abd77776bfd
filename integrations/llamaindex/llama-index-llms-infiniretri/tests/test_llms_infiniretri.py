"""InfiniRetriLLM with the real embedded model."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import CompletionResponse
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.llms import CustomLLM
from llama_index.llms.infiniretri import InfiniRetriLLM


@pytest.fixture(scope="module")
def counter(engine):
    return TokenCountingHandler(
        tokenizer=lambda text: engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    )


@pytest.fixture(scope="module")
def llm(engine, counter):
    return InfiniRetriLLM(
        engine=engine, max_new_tokens=12, callback_manager=CallbackManager([counter])
    )


@pytest.fixture(scope="module")
def prompt(needle):
    return f"{needle.text(sentences=16, at=9)}\n\nQuestion: {needle.question}\nAnswer:"


def test_metadata_reports_what_it_reads_and_its_model(llm, engine):
    assert isinstance(llm, CustomLLM)
    meta = llm.metadata
    assert meta.model_name == engine.model_name
    assert meta.num_output == 12
    # It reads far more than the model's own window, and says so.
    assert meta.context_window == llm.context_window > engine.context_window
    assert not meta.is_chat_model


def test_a_free_answer_streams_piece_by_piece(engine, prompt, needle):
    free = InfiniRetriLLM(engine=engine.with_options(answer_quote=0), max_new_tokens=12)
    streamed = list(free.stream_complete(prompt))
    assert len(streamed) > 1
    assert streamed[-1].text == free.complete(prompt).text


def test_stream_complete_and_complete_agree(llm, prompt, needle, counter, engine):
    streamed = list(llm.stream_complete(prompt))
    assert streamed  # a quoted answer arrives once its quote backs it (often whole)
    text = ""
    for chunk in streamed:
        assert isinstance(chunk, CompletionResponse)
        assert chunk.delta
        text += chunk.delta
        assert chunk.text == text  # cumulative text plus the new delta
    assert needle.key in text

    counter.reset_counts()
    completed = llm.complete(prompt)
    assert completed.text == text
    usage = completed.raw["usage"]
    assert 0 < usage["completion_tokens"] <= 12
    # Every token the model read: each scan step's prompt, then the answer prompt.
    stats = completed.raw["stats"]
    assert usage["scan_tokens"] == stats["tokens_processed"] >= stats["tokens_read"] > 0
    assert usage["prompt_tokens"] == (
        usage["scan_tokens"] + usage["rescore_tokens"] + usage["answer_prompt_tokens"]
    )
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["rescore_tokens"] > completed.additional_kwargs["cache_tokens"]
    # LlamaIndex's token counting reads the usage.
    assert counter.prompt_llm_token_count == usage["prompt_tokens"]
    assert counter.completion_llm_token_count == usage["completion_tokens"]


def test_prompt_beyond_context_window_is_refused(engine, prompt):
    small = InfiniRetriLLM(engine=engine, context_window=64, max_new_tokens=8)
    with pytest.raises(ValueError, match="context_window"):
        small.complete(prompt)
