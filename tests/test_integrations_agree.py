"""The LangChain and LlamaIndex LLMs split a prompt the same way and report the same usage.

Both adapters build on ``infiniretri.integration``: given the same prompt and the same engine,
they must scan the same context with the same question, write the same answer and count its
tokens as ``infiniretri.Usage`` defines them (every token the model read, the scan's and the
answer prompt's, and every token it wrote).
"""

from __future__ import annotations

import pytest

from infiniretri import InfiniRetri
from infiniretri import integration as core
from infiniretri.testing import tiny_model

lc = pytest.importorskip("langchain_infiniretri")
li_llms = pytest.importorskip("llama_index.llms.infiniretri")

TEXT = (
    "The harbour town was founded by fishermen in the early eighteenth century. Its narrow "
    "streets climb from the quay to a chapel of grey stone. The old mill stands by the three "
    "arched bridge.\nGulls nest on the cliffs to the north. The bakery on Quay Street is old."
)
QUESTION = "Where does the old mill stand?"
MAX_TOKENS = 4

PROMPTS = {
    "default-template": f"{TEXT}\n\nQuestion: {QUESTION}",
    "template-and-answer-cue": f"{TEXT}\n\nQuestion: {QUESTION}\nAnswer:",
    "llamaindex-qa": (
        "Context information is below.\n---------------------\n"
        f"{TEXT}\n---------------------\n"
        "Given the context information and not prior knowledge, answer the query.\n"
        f"Query: {QUESTION}\nAnswer: "
    ),
    "last-paragraph": f"{TEXT}\n\nRead the text above.\n{QUESTION}",
    "one-line": " ".join([TEXT.replace("\n", " ")] * 3 + [QUESTION]),  # over 128 tokens
    "question-only": QUESTION,
}


class RecordingEngine(InfiniRetri):
    """The real engine, recording what it is asked to read and answer."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, object, str]] = []

    def retrieve(self, source, question, **kwargs):
        self.calls.append(("retrieve", list(source), question))
        return super().retrieve(source, question, **kwargs)

    def answer_from(self, retrieval, **kwargs):
        self.calls.append(("answer", [s.text for s in retrieval.sentences], retrieval.question))
        return super().answer_from(retrieval, **kwargs)


@pytest.fixture(scope="module")
def engine() -> RecordingEngine:
    model, tokenizer = tiny_model("llama", layers=2)
    return RecordingEngine(model, tokenizer, chunk_tokens=64, top_k_tokens=24, retrieval_layer=1)


@pytest.mark.parametrize("prompt", PROMPTS.values(), ids=PROMPTS.keys())
def test_both_llms_split_alike_and_report_the_same_usage(engine, prompt):
    expected = core.PromptSplitter().split(prompt, engine.count_tokens)
    sources = [expected.context] if expected.context else []

    engine.calls.clear()
    result = lc.InfiniRetriLLM(engine=engine, max_tokens=MAX_TOKENS).generate([prompt])
    lc_calls = list(engine.calls)
    engine.calls.clear()
    completion = li_llms.InfiniRetriLLM(engine=engine, max_new_tokens=MAX_TOKENS).complete(prompt)
    li_calls = list(engine.calls)

    # The same split: the same context read with the same question, the same cache answered.
    assert lc_calls == li_calls
    scans = [call for call in lc_calls if call[0] == "retrieve"]
    assert scans == ([("retrieve", sources, expected.question)] if sources else [])
    assert [call[2] for call in lc_calls if call[0] == "answer"] == [expected.question]
    assert result.generations[0][0].text == completion.text

    # The same usage, and it is the core's definition.
    reference = core.answer(engine, sources, expected.question, max_new_tokens=MAX_TOKENS)
    usage = reference.usage
    assert result.llm_output["token_usage"] == completion.raw["usage"] == usage.as_dict()
    info = result.generations[0][0].generation_info
    assert {k: info[k] for k in usage.as_dict()} == usage.as_dict()
    assert usage.scan_tokens == reference.retrieval.stats.tokens_processed
    assert usage.scan_tokens == 0 if not sources else usage.scan_tokens > 0
    prompt_ids = engine.answer_prompt(reference.retrieval, MAX_TOKENS).ids
    assert usage.answer_prompt_tokens == len(prompt_ids)
    assert usage.prompt_tokens == (
        usage.scan_tokens + usage.rescore_tokens + usage.answer_prompt_tokens
    )
    assert usage.completion_tokens == MAX_TOKENS  # the tiny model never ends its turn early


def test_the_splits_differ_across_the_prompts(engine):
    """The prompts above exercise different rules (so the test above is not one case six times)."""
    splits = {
        name: core.PromptSplitter().split(prompt, engine.count_tokens)
        for name, prompt in PROMPTS.items()
    }
    assert splits["default-template"] == splits["template-and-answer-cue"]
    assert splits["default-template"].question == QUESTION
    assert splits["llamaindex-qa"].question.endswith(f"Query: {QUESTION}")
    assert splits["last-paragraph"].question == f"Read the text above.\n{QUESTION}"
    assert splits["one-line"].context and splits["one-line"].question.endswith(QUESTION)
    assert splits["question-only"] == core.PromptSplit("", QUESTION)
