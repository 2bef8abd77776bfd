"""The scorer an engine's settings call for, composed from the scorers behind the seam.

Attention corrections wrap the paper's window scorer first (:mod:`~infiniretri.debias`), then
lexical fusion ranks the units (:mod:`~infiniretri.fusion`)::

    FusedScorer(PositionScorer(BaselineScorer(WindowScorer(phrase_tokens, top_k_tokens))))

each layer present only when its setting is on; ``top_k_tokens="auto"`` wraps the whole in
:class:`~infiniretri.topk.StandoutScorer`.
"""

from __future__ import annotations

from .debias import BaselineScorer, PositionScorer
from .fusion import FusedScorer
from .scoring import Scorer
from .settings import EngineSettings
from .sizing import AUTO
from .topk import StandoutScorer


def ranking_scorer(settings: EngineSettings, attention: Scorer) -> Scorer:
    """``attention`` (the window scorer) with the corrections and fusion ``settings`` ask for."""
    scorer = attention
    if settings.score_baseline:
        scorer = BaselineScorer(scorer)
    if settings.score_position:
        scorer = PositionScorer(scorer)
    if settings.lexical_weight:
        scorer = FusedScorer(
            scorer, float(settings.lexical_weight), float(settings.lexical_feedback)
        )
    if settings.top_k_tokens == AUTO:
        scorer = StandoutScorer(scorer)
    return scorer
