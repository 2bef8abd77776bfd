"""LlamaIndex retriever and query engine over InfiniRetri: the model's attention retrieves.

One engine (one loaded model) can be shared by every InfiniRetri component, including
``llama_index.llms.infiniretri`` and ``llama_index.postprocessor.infiniretri``: pass the same
``engine=``.
"""

from llama_index.retrievers.infiniretri.base import InfiniRetriRetriever
from llama_index.retrievers.infiniretri.query_engine import InfiniRetriQueryEngine

__all__ = ["InfiniRetriQueryEngine", "InfiniRetriRetriever"]
