"""InfiniRetri: the model's own attention retrieves from text of any length.

Implements "Infinite Retrieval: Attention Enhanced LLMs in Long-Context Processing"
(arXiv 2502.12962) for any Hugging Face causal LM.
"""

from .engine import InfiniRetri
from .errors import ScanCancelled
from .loading import EMBEDDED_MODEL_ID
from .results import Answer, Retrieval, Sentence, Stats

__all__ = [
    "EMBEDDED_MODEL_ID",
    "Answer",
    "InfiniRetri",
    "Retrieval",
    "ScanCancelled",
    "Sentence",
    "Stats",
]
__version__ = "0.1.0"
