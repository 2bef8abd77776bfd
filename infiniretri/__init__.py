"""InfiniRetri: the model's own attention retrieves from text of any length.

Implements "Infinite Retrieval: Attention Enhanced LLMs in Long-Context Processing"
(arXiv 2502.12962) for any Hugging Face causal LM.
"""

from . import omp  # noqa: F401  (first: chooses how CPU threads wait, before torch loads)
from .answering import AnswerPrompt, AnswerStream
from .engine import InfiniRetri
from .errors import ScanCancelled
from .loading import EMBEDDED_MODEL_ID
from .results import Answer, Note, Retrieval, Sentence, Stats, Usage
from .scoring import ReferenceScorer, Scorer, Selection, TokenScores, WindowScorer
from .settings import EngineSettings

__all__ = [
    "EMBEDDED_MODEL_ID",
    "Answer",
    "AnswerPrompt",
    "AnswerStream",
    "EngineSettings",
    "InfiniRetri",
    "Note",
    "ReferenceScorer",
    "Retrieval",
    "ScanCancelled",
    "Scorer",
    "Selection",
    "Sentence",
    "Stats",
    "TokenScores",
    "Usage",
    "WindowScorer",
]
__version__ = "0.1.0"
