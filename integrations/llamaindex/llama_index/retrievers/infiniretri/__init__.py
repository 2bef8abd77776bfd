"""LlamaIndex integration of InfiniRetri: the model's attention retrieves, from text of any length.

One engine (one loaded model) can be shared by every component: pass the same ``engine=``.
"""

from llama_index.retrievers.infiniretri.llm import InfiniRetriLLM
from llama_index.retrievers.infiniretri.postprocessor import InfiniRetriNodePostprocessor
from llama_index.retrievers.infiniretri.query_engine import InfiniRetriQueryEngine
from llama_index.retrievers.infiniretri.retriever import InfiniRetriRetriever

__all__ = [
    "InfiniRetriLLM",
    "InfiniRetriNodePostprocessor",
    "InfiniRetriQueryEngine",
    "InfiniRetriRetriever",
]
