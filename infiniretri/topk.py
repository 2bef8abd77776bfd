"""``top_k_tokens="auto"``: a cache sized from each step's score distribution.

The fixed rule keeps the sentences that hold the ``top_k_tokens`` best phrase positions, so a
step keeps about the same number of sentences whether one sentence stands out (a needle) or
many are relevant (the items of a list). :class:`StandoutScorer` keeps those, and every further
sentence whose standardised score is at least :data:`STANDOUT_Z` (one spread above the mean of
the sentences in view). A peaked distribution adds nothing; a flat top, where many sentences
score alike, keeps them all. The cache's window budget still bounds it (best first).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fusion import zscores
from .scoring import Scorer, Selection, TokenScores

AUTO_BASE_TOP_K = 300
"""The phrase positions the fixed rule under ``"auto"`` keeps (the fixed default)."""

STANDOUT_Z = 1.0
"""A sentence stands out of its step when its standardised score is at least this."""


@dataclass(frozen=True)
class StandoutScorer(Scorer):
    """``base``'s selection, plus every unit that stands out of its prompt's scores."""

    base: Scorer
    z: float = STANDOUT_Z

    def select(self, captured: TokenScores) -> list[Selection]:
        selections = []
        for chosen in self.base.select(captured):
            scores = chosen.unit_scores
            z = zscores(scores)
            kept = sorted(set(chosen.units) | {i for i, v in enumerate(z) if v >= self.z})
            selections.append(Selection(kept, [scores[i] for i in kept], scores))
        return selections
