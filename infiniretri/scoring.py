"""Scorers: from captured attention to per-unit scores and the units kept.

A capture forward gives, per prompt, the attention each position receives from the question
(summed over heads and question rows). A :class:`Scorer` turns a batch of these token scores,
plus the units (sentences) that the prompts' contexts hold, into one :class:`Selection` per
prompt: every unit's score and the units to keep. The scan, the batch scan, calibration and the
benchmarks all score through this seam; a new scoring idea is a new ``Scorer``, apart from the
pipeline (as kvpress keeps its presses apart from the model).

The paper's scorer (:class:`WindowScorer`, and its plain per-prompt twin
:class:`ReferenceScorer`): token scores are summed over a sliding window of ``phrase_tokens`` to
score phrases; the ``top_k_tokens`` best positions select the whole units that hold them. A
unit's score is the best phrase score inside it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TokenScores:
    """Captured attention for a batch of prompts, and the units each prompt's context holds.

    ``values``: ``(B', G, T)``, for each of ``G`` head groups (see
    :class:`~infiniretri.readout.Readout`) the attention each prompt position receives, summed
    over the group's ``group_heads[g]`` heads and the prompt's ``norms[b]`` question rows
    (``B' >= B``; positions past a prompt's end are meaningless). Prompt ``b``'s context starts
    at ``context_starts[b]`` and holds units of ``unit_lengths[b]`` tokens, back to back;
    ``texts[b]`` are those units' texts and ``questions[b]`` the prompt's question (for scorers
    that read words as well as attention; ``None`` where the caller has no text).
    ``baseline``, when the capture ran a content-free question beside each prompt (same
    context, same positions), holds its ``(B, G, T)`` values and ``baseline_norms`` its rows.
    """

    values: torch.Tensor
    context_starts: list[int]
    unit_lengths: list[list[int]]
    norms: list[float]
    group_heads: list[int]
    texts: list[list[str]] | None = None
    questions: list[str] | None = None
    baseline: torch.Tensor | None = None
    baseline_norms: list[float] | None = None

    def __len__(self) -> int:
        return len(self.unit_lengths)

    def combined(self) -> torch.Tensor:
        """``(B', T)``: the groups' mean attention per head, averaged over groups (not yet
        divided by the question rows)."""
        heads = torch.tensor(self.group_heads, dtype=self.values.dtype, device=self.values.device)
        return (self.values / heads[None, :, None]).mean(dim=1)

    def tokens(self, b: int) -> torch.Tensor:
        """Prompt ``b``'s context tokens: mean attention per head and question row."""
        start, size = self.context_starts[b], sum(self.unit_lengths[b])
        return self.combined()[b, start : start + size] / self.norms[b]

    def group(self, g: int) -> TokenScores:
        """The scores of head group ``g`` alone."""
        return replace(self, values=self.values[:, g : g + 1], group_heads=[self.group_heads[g]])

    def with_values(self, values: torch.Tensor) -> TokenScores:
        """The same prompts and units with other ``(B', G, T)`` values (for calibrations)."""
        return replace(self, values=values)


@dataclass(frozen=True)
class Selection:
    """What a scorer gives for one prompt."""

    units: list[int]
    """Indices of the kept units, ascending."""
    scores: list[float]
    """Scores of the kept units (parallel to ``units``)."""
    unit_scores: list[float]
    """Score of every unit of the prompt, in order."""


class Scorer(ABC):
    """Turns :class:`TokenScores` into one :class:`Selection` per prompt."""

    @abstractmethod
    def select(self, captured: TokenScores) -> list[Selection]:
        """Every unit's score, and the units to keep, for each prompt of ``captured``."""


def phrase_scores(token_scores: torch.Tensor, phrase_tokens: int) -> torch.Tensor:
    """Sum of ``token_scores`` over a window of ``phrase_tokens`` centred on each position.

    Works along the last dimension of a 1-D or 2-D tensor.
    """
    if phrase_tokens <= 1:
        return token_scores
    left = phrase_tokens // 2
    flat = token_scores.reshape(-1, 1, token_scores.shape[-1])
    padded = F.pad(flat, (left, phrase_tokens - 1 - left))
    kernel = torch.ones(1, 1, phrase_tokens, dtype=token_scores.dtype, device=token_scores.device)
    return F.conv1d(padded, kernel).reshape(token_scores.shape)


def window_sums(tokens: np.ndarray, phrase_tokens: int) -> np.ndarray:
    """:func:`phrase_scores` of a 1-D float32 array, on the host (float64 running sums)."""
    if phrase_tokens <= 1:
        return tokens
    left = phrase_tokens // 2
    padded = np.zeros(tokens.shape[0] + phrase_tokens, dtype=np.float64)
    padded[left + 1 : left + 1 + tokens.shape[0]] = tokens
    running = np.cumsum(padded)
    return (running[phrase_tokens:] - running[:-phrase_tokens]).astype(np.float32)


@dataclass(frozen=True)
class WindowScorer(Scorer):
    """The paper's scorer, batched: one device-to-host copy, then a few array operations per
    prompt on the host (a step's scores are a few thousand floats: on a GPU, launching the
    same work as kernels costs more than doing it)."""

    phrase_tokens: int = 8
    top_k_tokens: int = 300

    def select(self, captured: TokenScores) -> list[Selection]:
        batch = len(captured)
        values = captured.values[:batch].float().cpu().numpy()  # (B, G, T)
        heads = np.asarray(captured.group_heads, dtype=np.float32)
        combined = (values / heads[None, :, None]).mean(axis=1, dtype=np.float32)
        selections = []
        for b in range(batch):
            lengths = captured.unit_lengths[b]
            start, size = captured.context_starts[b], sum(lengths)
            tokens = combined[b, start : start + size] / np.float32(captured.norms[b])
            phrase = window_sums(tokens, self.phrase_tokens)
            bounds = np.cumsum([0, *lengths[:-1]])
            scores = np.maximum.reduceat(phrase, bounds).tolist()
            k = min(self.top_k_tokens, size)
            top = np.argpartition(phrase, size - k)[size - k :] if k < size else np.arange(size)
            owner = np.repeat(np.arange(len(lengths)), lengths)
            picks = np.unique(owner[top]).tolist()
            selections.append(Selection(picks, [scores[i] for i in picks], scores))
        return selections


@dataclass(frozen=True)
class ReferenceScorer(Scorer):
    """The paper's scorer, written plainly, one prompt at a time (the tests' reference)."""

    phrase_tokens: int = 8
    top_k_tokens: int = 300

    def select(self, captured: TokenScores) -> list[Selection]:
        return [
            self._one(captured.tokens(b), captured.unit_lengths[b]) for b in range(len(captured))
        ]

    def _one(self, tokens: torch.Tensor, unit_lengths: list[int]) -> Selection:
        phrase = phrase_scores(tokens, self.phrase_tokens).float()
        owner = torch.repeat_interleave(
            torch.arange(len(unit_lengths), device=phrase.device),
            torch.tensor(unit_lengths, device=phrase.device),
        )
        best = torch.full((len(unit_lengths),), float("-inf"), device=phrase.device)
        best = best.scatter_reduce(0, owner, phrase, reduce="amax").tolist()
        top = torch.topk(phrase, min(self.top_k_tokens, phrase.shape[0])).indices
        kept = sorted(set(owner[top].tolist()))
        return Selection(kept, [best[i] for i in kept], best)
