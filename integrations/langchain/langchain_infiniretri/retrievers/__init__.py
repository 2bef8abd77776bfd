"""InfiniRetri retriever."""

from langchain_infiniretri.retrievers.infiniretri import InfiniRetriRetriever

__all__ = ["InfiniRetriRetriever"]
