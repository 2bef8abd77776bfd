"""LangChain integration of InfiniRetri: the LLM's own attention retrieves from unbounded text.

One loaded engine (``infiniretri.InfiniRetri``) can be shared by every class here through their
``engine`` field; without one, each loads the embedded model on first use.
"""

from importlib import metadata

from langchain_infiniretri.chat_models import ChatInfiniRetri
from langchain_infiniretri.document_compressors import InfiniRetriCompressor
from langchain_infiniretri.llms import InfiniRetriLLM
from langchain_infiniretri.retrievers import InfiniRetriRetriever
from langchain_infiniretri.tools import create_infiniretri_tool

try:
    __version__ = metadata.version("langchain-infiniretri")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = ""

__all__ = [
    "ChatInfiniRetri",
    "InfiniRetriCompressor",
    "InfiniRetriLLM",
    "InfiniRetriRetriever",
    "__version__",
    "create_infiniretri_tool",
]
