"""LangChain's standard unit tests for ChatInfiniRetri (no model is loaded by these)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_infiniretri import ChatInfiniRetri


class TestChatInfiniRetriUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatInfiniRetri

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # No engine: construction must stay cheap, the model loads on first use only.
        return {"engine_kwargs": {"chunk_tokens": 512}}

    @property
    def supports_model_override(self) -> bool:
        return False  # one loaded model per instance
