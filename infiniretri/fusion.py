"""A scorer that fuses the model's attention with lexical evidence from the same view.

Attention of a small model finds paraphrases and the entity a question is about; exact term
matches it can miss. :class:`FusedScorer` standardises both signals over the units of each
prompt (z-scores: mean 0, spread 1) and adds them, ``attention + weight * lexical``. A prompt
whose units share no question term gets lexical scores all equal, which add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .lexical import InView
from .scoring import Scorer, Selection, TokenScores


def standardized(values: list[float]) -> torch.Tensor:
    """``(x - mean) / std`` (all zeros when the values are all equal)."""
    x = torch.tensor(values, dtype=torch.float64)
    spread = x.std(unbiased=False) if len(values) > 1 else torch.tensor(0.0, dtype=x.dtype)
    return (x - x.mean()) / spread if spread > 0 else torch.zeros_like(x)


@dataclass(frozen=True)
class FusedScorer(Scorer):
    """``attention``'s unit scores fused with in-view BM25; keeps as many units as it does."""

    attention: Scorer
    weight: float = 1.0
    feedback: float = 0.0
    """With ``feedback > 0``, a second BM25 pass adds the words of the first fused ranking's
    best unit to the question at this weight (pseudo-relevance feedback: the bridge entity of
    a two-hop question is named in the first hop's sentence, not in the question)."""

    def select(self, captured: TokenScores) -> list[Selection]:
        if captured.texts is None or captured.questions is None:
            raise ValueError("FusedScorer needs the units' texts and the questions")
        selections = []
        for b, base in enumerate(self.attention.select(captured)):
            question, texts = captured.questions[b], captured.texts[b]
            view = InView(texts)  # tokenized once for both passes
            attention = standardized(base.unit_scores)
            fused = attention + self.weight * standardized(view.bm25(question))
            if self.feedback and len(texts) > 1:
                best = texts[int(torch.argmax(fused))]
                lexical = view.bm25(question, feedback=best, feedback_weight=self.feedback)
                fused = attention + self.weight * standardized(lexical)
            order = sorted(range(len(fused)), key=lambda i: (-float(fused[i]), i))
            kept = sorted(order[: len(base.units)])
            scores = fused.tolist()
            selections.append(Selection(kept, [scores[i] for i in kept], scores))
        return selections
