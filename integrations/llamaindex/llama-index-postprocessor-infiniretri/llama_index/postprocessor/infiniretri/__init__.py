"""LlamaIndex node postprocessor over InfiniRetri: keep the sentences the model attends to."""

from llama_index.postprocessor.infiniretri.base import InfiniRetriNodePostprocessor

__all__ = ["InfiniRetriNodePostprocessor"]
