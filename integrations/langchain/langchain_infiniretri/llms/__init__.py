"""InfiniRetri text LLM."""

from langchain_infiniretri.llms.infiniretri import InfiniRetriLLM

__all__ = ["InfiniRetriLLM"]
