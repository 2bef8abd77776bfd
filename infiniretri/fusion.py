"""A scorer that fuses the model's attention with lexical evidence from the same view.

Attention of a small model finds paraphrases and the entity a question is about; exact term
matches it can miss. :class:`FusedScorer` standardises both signals over the units of each
prompt (z-scores: mean 0, spread 1) and adds them, ``attention + weight * lexical``. A prompt
whose units share no question term gets lexical scores all equal, which add nothing.

This runs on the host once per scan step over ~200 units: it works on plain Python lists (a
tensor per 200 floats costs more in overhead than in arithmetic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .lexical import InView
from .scoring import Scorer, Selection, TokenScores


def zscores(values: Sequence[float]) -> list[float]:
    """``(x - mean) / std`` of each value, the spread over all of them (population); all zeros
    when the values are all equal (or not all finite)."""
    n = len(values)
    if n < 2:
        return [0.0] * n
    mean = sum(values) / n
    deviations = [x - mean for x in values]
    spread = math.sqrt(sum(d * d for d in deviations) / n)
    if not spread > 0:  # zero, or NaN from an infinite value
        return [0.0] * n
    return [d / spread for d in deviations]


def standardized(values: Sequence[float]) -> torch.Tensor:
    """:func:`zscores` as a float64 tensor."""
    return torch.tensor(zscores(values), dtype=torch.float64)


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
        texts, questions = captured.texts, captured.questions
        if texts is None or questions is None:
            raise ValueError("FusedScorer needs the units' texts and the questions")
        batch = range(len(captured))
        # The first BM25 pass needs no attention: made before the attention scorer waits for
        # the device, it runs on the host while the forward runs on a GPU.
        views = [InView(texts[b]) for b in batch]  # tokenized once for both passes
        lexical = [zscores(views[b].bm25(questions[b])) for b in batch]
        return [
            self.fuse(base, views[b], lexical[b], questions[b], texts[b])
            for b, base in enumerate(self.attention.select(captured))
        ]

    def fuse(
        self,
        base: Selection,
        view: InView,
        lexical: list[float],
        question: str,
        texts: Sequence[str],
    ) -> Selection:
        """One prompt's selection from its attention ``base`` and its first-pass lexical
        z-scores (then, with :attr:`feedback`, the second pass's)."""
        attention = zscores(base.unit_scores)
        fused = self.added(attention, lexical)
        if self.feedback and len(texts) > 1:
            best = texts[max(range(len(fused)), key=fused.__getitem__)]  # the first best
            fed = view.bm25(question, feedback=best, feedback_weight=self.feedback)
            fused = self.added(attention, zscores(fed))
        # Best first, ties in unit order (a stable sort stays stable reversed).
        order = sorted(range(len(fused)), key=fused.__getitem__, reverse=True)
        kept = sorted(order[: len(base.units)])
        return Selection(kept, [fused[i] for i in kept], fused)

    def added(self, attention: list[float], lexical: list[float]) -> list[float]:
        """``attention + weight * lexical``, unit by unit."""
        weight = self.weight
        return [a + weight * x for a, x in zip(attention, lexical, strict=True)]
