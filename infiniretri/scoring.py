"""Phrase scoring and sentence selection.

Token scores (attention each context token receives from the question) are summed over a sliding
window of ``phrase_tokens`` to score phrases; the ``top_k_tokens`` best positions select the whole
units (sentences) that hold them. A unit's score is the best phrase score inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def phrase_scores(token_scores: torch.Tensor, phrase_tokens: int) -> torch.Tensor:
    """Sum of ``token_scores`` over a window of ``phrase_tokens`` centred on each position."""
    if phrase_tokens <= 1:
        return token_scores
    left = phrase_tokens // 2
    right = phrase_tokens - 1 - left
    padded = F.pad(token_scores[None, None], (left, right))
    kernel = torch.ones(1, 1, phrase_tokens, dtype=token_scores.dtype, device=token_scores.device)
    return F.conv1d(padded, kernel)[0, 0]


@dataclass(frozen=True)
class Selection:
    """Selected unit indices (ascending) and their scores."""

    units: list[int]
    scores: list[float]


def select_units(phrase: torch.Tensor, unit_lengths: list[int], top_k_tokens: int) -> Selection:
    """Units holding one of the ``top_k_tokens`` best phrase positions, in order, with scores."""
    n = phrase.shape[0]
    if n != sum(unit_lengths):
        raise ValueError(f"{n} scores for {sum(unit_lengths)} unit tokens")
    lengths = torch.tensor(unit_lengths, device=phrase.device)
    owner = torch.repeat_interleave(torch.arange(len(unit_lengths), device=phrase.device), lengths)
    best = torch.full((len(unit_lengths),), float("-inf"), device=phrase.device)
    best = best.scatter_reduce(0, owner, phrase.float(), reduce="amax")
    top = torch.topk(phrase, min(top_k_tokens, n)).indices
    chosen = torch.unique(owner[top])  # sorted ascending
    units = chosen.tolist()
    scores = best[chosen].tolist()
    return Selection(units, scores)
