"""InfiniRetri chat model."""

from langchain_infiniretri.chat_models.infiniretri import ChatInfiniRetri

__all__ = ["ChatInfiniRetri"]
