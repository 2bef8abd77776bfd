"""LangChain's standard integration tests, run on the real embedded model."""

from __future__ import annotations

from typing import Any

from infiniretri.testing import embedded_engine
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import (
    ChatModelIntegrationTests,
    RetrieversIntegrationTests,
)

from langchain_infiniretri import ChatInfiniRetri, InfiniRetriRetriever

# Short, so each scan is one chunk; enough distinct sentences for k=3.
HISTORY = (
    "The harbour town of Millbrook was founded by fishermen in the early eighteenth century. "
    "The old mill, which gave the town its name, stopped turning in the year of the great frost. "
    "A railway line reached Millbrook late, and the station still has its original clock. "
    "On market days the square fills with stalls selling cheese, wool and smoked fish. "
    "The lighthouse keeper's cottage is now a small museum of nautical instruments. "
    "A stone bridge with three arches crosses the river just above the tidal reach. "
    "The bakery on Quay Street has used the same sourdough starter for ninety years."
)


class TestInfiniRetriRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return InfiniRetriRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        from langchain_core.documents import Document

        return {
            "documents": [Document(page_content=HISTORY, metadata={"source": "millbrook"})],
            "engine": embedded_engine(),
            "engine_kwargs": {"chunk_tokens": 512},
        }

    @property
    def retriever_query_example(self) -> str:
        return "What gave the town of Millbrook its name?"


class TestChatInfiniRetriStandard(ChatModelIntegrationTests):
    """Capabilities the model lacks are switched off through the suite's flags.

    ``has_tool_calling``, ``has_structured_output`` and ``supports_json_mode`` follow from the
    class (no ``bind_tools``/``with_structured_output``); image, audio, PDF and video inputs are
    off by default; the model cannot be swapped per call, so ``supports_model_override`` is off.
    The suite skips the matching tests and says why.
    """

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatInfiniRetri

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # Few tokens: the suite checks plumbing (content, chunks, usage), not prose.
        return {"engine": embedded_engine(), "max_tokens": 6}

    @property
    def supports_model_override(self) -> bool:
        return False

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True
