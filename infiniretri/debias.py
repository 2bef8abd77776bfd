"""Scorers that correct the captured attention before a scorer ranks units by it.

Attention from a question to a long context is not only about the question. Some tokens draw
attention from any query (attention *sinks*), and tokens near the question draw more than far
ones (*recency*). Each class here wraps another :class:`~infiniretri.scoring.Scorer`, changes the
token scores, and hands them on, so corrections stack: ``PositionScorer(BaselineScorer(
WindowScorer()))``.

* :class:`BaselineScorer`: the ICR correction (Chen et al. 2024): subtract, token by token, the
  attention that a content-free question (:data:`CONTENT_FREE_QUESTION`) gives the same context.
  The capture must run that question beside each prompt (the scan does when the engine's
  ``score_baseline`` setting is on), at the cost of a second forward per step.
* :class:`PositionScorer`: no extra forward. Per prompt and head group, fit
  ``log attention ~ a + slope * log distance-to-question`` over the context and divide the trend
  out; then cap each token at the group's 99th percentile, so that one sink token cannot make a
  phrase on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .scoring import Scorer, Selection, TokenScores

CONTENT_FREE_QUESTION = "N/A"
"""The content-free question whose attention :class:`BaselineScorer` subtracts."""
SINK_QUANTILE = 0.99
""":class:`PositionScorer` caps each token's score at this quantile of its prompt's context."""


def context_mask(captured: TokenScores) -> torch.Tensor:
    """``(B, T)``: ``True`` at each prompt's context positions."""
    values = captured.values
    pos = torch.arange(values.shape[-1], device=values.device)
    starts = torch.tensor(captured.context_starts, device=values.device)
    sizes = torch.tensor([sum(lengths) for lengths in captured.unit_lengths], device=values.device)
    return (pos[None, :] >= starts[:, None]) & (pos[None, :] < (starts + sizes)[:, None])


@dataclass(frozen=True)
class BaselineScorer(Scorer):
    """``inner`` on the question's attention minus a content-free question's (per row)."""

    inner: Scorer

    def select(self, captured: TokenScores) -> list[Selection]:
        if captured.baseline is None or captured.baseline_norms is None:
            raise ValueError(
                "BaselineScorer needs the content-free question's attention (capture it with "
                "the score_baseline setting on)"
            )
        batch = len(captured)
        values = captured.values.clone()
        norms = torch.tensor(captured.norms, dtype=values.dtype, device=values.device)
        base = torch.tensor(captured.baseline_norms, dtype=values.dtype, device=values.device)
        # Per-row means subtracted, then scaled back to sums over the question's rows (the
        # scorers divide by ``norms``).
        ratio = (norms / base)[:, None, None]
        values[:batch] = values[:batch] - captured.baseline[:batch] * ratio
        return self.inner.select(captured.with_values(values))


@dataclass(frozen=True)
class PositionScorer(Scorer):
    """``inner`` on attention with its distance trend divided out and sinks capped."""

    inner: Scorer
    sink_quantile: float = SINK_QUANTILE

    def select(self, captured: TokenScores) -> list[Selection]:
        batch = len(captured)
        mask = context_mask(captured)
        ends = torch.tensor(
            [s + sum(u) for s, u in zip(captured.context_starts, captured.unit_lengths)],
            device=mask.device,
        )
        pos = torch.arange(mask.shape[-1], device=mask.device)
        distance = (ends[:, None] - pos[None, :]).clamp(min=1).float()
        values = captured.values.clone()
        values[:batch] = self.flattened(values[:batch], mask, distance)
        corrected = captured.with_values(values)
        if captured.baseline is not None:  # the content-free attention, corrected alike
            baseline = self.flattened(captured.baseline[:batch], mask, distance)
            corrected = replace(corrected, baseline=baseline)
        return self.inner.select(corrected)

    def flattened(
        self, values: torch.Tensor, mask: torch.Tensor, distance: torch.Tensor
    ) -> torch.Tensor:
        """``(B, G, T)`` ``values`` with the context's log-log distance trend divided out
        (mean kept) and capped at :attr:`sink_quantile`; 0 outside the context."""
        v = values.float()
        x = torch.log(distance)[:, None, :]
        m = mask[:, None, :].float()
        count = m.sum(-1, keepdim=True).clamp(min=1)
        # Attention is a probability mass; a small floor keeps zeros finite in the log.
        floor = (v.abs() * m).sum(-1, keepdim=True) / count * 1e-3 + 1e-12
        y = torch.log(v.clamp(min=0) + floor)
        mx, my = (x * m).sum(-1, keepdim=True) / count, (y * m).sum(-1, keepdim=True) / count
        var = (((x - mx) ** 2) * m).sum(-1, keepdim=True)
        slope = (((x - mx) * (y - my)) * m).sum(-1, keepdim=True) / var.clamp(min=1e-12)
        flat = v * torch.exp(-slope * (x - mx))
        cap = torch.nanquantile(flat.masked_fill(m == 0, float("nan")), self.sink_quantile, dim=-1)
        flat = torch.minimum(flat, cap.nan_to_num(0.0)[..., None]).masked_fill(m == 0, 0.0)
        return flat.to(values.dtype)
