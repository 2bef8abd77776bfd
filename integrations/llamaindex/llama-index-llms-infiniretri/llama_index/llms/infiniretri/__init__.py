"""LlamaIndex LLM over InfiniRetri: a prompt may be far longer than the model's own window."""

from llama_index.llms.infiniretri.base import InfiniRetriLLM

__all__ = ["InfiniRetriLLM"]
