"""InfiniRetri agent tool."""

from langchain_infiniretri.tools.infiniretri import (
    LongDocumentQuestion,
    create_infiniretri_tool,
)

__all__ = ["LongDocumentQuestion", "create_infiniretri_tool"]
