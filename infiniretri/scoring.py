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


@dataclass(frozen=True)
class WindowScorer(Scorer):
    """The paper's scorer, batched: one device-to-host copy for the whole batch."""

    phrase_tokens: int = 8
    top_k_tokens: int = 300

    def select(self, captured: TokenScores) -> list[Selection]:
        values = captured.values
        device = values.device
        batch = len(captured)
        sizes = [sum(lengths) for lengths in captured.unit_lengths]
        width = max(sizes)
        size = torch.tensor(sizes, device=device)
        norm = torch.tensor(captured.norms, device=device, dtype=values.dtype)
        pos = torch.arange(width, device=device)
        valid = pos[None, :] < size[:, None]
        starts = torch.tensor(captured.context_starts, device=device)
        index = (starts[:, None] + pos[None, :]).clamp(max=values.shape[-1] - 1)
        tokens = captured.combined()[:batch].gather(1, index) / norm[:, None]
        phrase = phrase_scores(tokens.masked_fill(~valid, 0.0), self.phrase_tokens)
        phrase = phrase.masked_fill(~valid, float("-inf"))
        # Unit ids over the padded batch: each item's units, then one filler unit for its padding.
        lengths = [n for b in range(batch) for n in (*captured.unit_lengths[b], width - sizes[b])]
        units = len(lengths)
        owner = torch.repeat_interleave(
            torch.arange(units, device=device),
            torch.tensor(lengths, device=device),
            output_size=batch * width,
        ).view(batch, width)
        best = torch.full((units,), float("-inf"), device=device)
        best = best.scatter_reduce(0, owner.flatten(), phrase.flatten().float(), reduce="amax")
        top = torch.topk(phrase, min(self.top_k_tokens, width), dim=1).indices
        picked = (top < size[:, None]).float()
        chosen = torch.zeros(units, device=device)
        chosen = chosen.scatter_reduce(0, owner.gather(1, top).flatten(), picked.flatten(), "amax")
        flags, scores = torch.stack([chosen, best]).cpu().tolist()
        selections, first = [], 0
        for b in range(batch):
            count = len(captured.unit_lengths[b])
            own = scores[first : first + count]
            picks = [i for i in range(count) if flags[first + i] > 0]
            selections.append(Selection(picks, [own[i] for i in picks], own))
            first += count + 1
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
