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


def select_batch(
    token_scores: torch.Tensor,
    context_starts: list[int],
    unit_lengths: list[list[int]],
    norms: list[float],
    phrase_tokens: int,
    top_k_tokens: int,
) -> list[Selection]:
    """:func:`select_units` for a batch of prompts, with one device-to-host copy in all.

    ``token_scores``: ``(B', T)`` attention per prompt position (``B' >= B``); item ``b``'s
    context holds the units of ``unit_lengths[b]`` from position ``context_starts[b]``, and its
    scores are divided by ``norms[b]``. Each row gives what :func:`phrase_scores` and
    :func:`select_units` give on that item alone.
    """
    device = token_scores.device
    batch = len(unit_lengths)
    sizes = [sum(lengths) for lengths in unit_lengths]
    width = max(sizes)
    starts = torch.tensor(context_starts, device=device)
    size = torch.tensor(sizes, device=device)
    norm = torch.tensor(norms, device=device, dtype=token_scores.dtype)
    pos = torch.arange(width, device=device)
    valid = pos[None, :] < size[:, None]
    index = (starts[:, None] + pos[None, :]).clamp(max=token_scores.shape[1] - 1)
    tokens = token_scores[:batch].gather(1, index) / norm[:, None]
    tokens = tokens.masked_fill(~valid, 0.0)
    if phrase_tokens > 1:
        left = phrase_tokens // 2
        padded = F.pad(tokens[:, None], (left, phrase_tokens - 1 - left))
        kernel = torch.ones(1, 1, phrase_tokens, dtype=tokens.dtype, device=device)
        phrase = F.conv1d(padded, kernel)[:, 0]
    else:
        phrase = tokens
    phrase = phrase.masked_fill(~valid, float("-inf"))
    # Unit ids over the padded batch: each item's units, then one filler unit for its padding.
    lengths = [n for b in range(batch) for n in (*unit_lengths[b], width - sizes[b])]
    units = len(lengths)
    owner = torch.repeat_interleave(
        torch.arange(units, device=device),
        torch.tensor(lengths, device=device),
        output_size=batch * width,
    ).view(batch, width)
    best = torch.full((units,), float("-inf"), device=device)
    best = best.scatter_reduce(0, owner.flatten(), phrase.flatten().float(), reduce="amax")
    top = torch.topk(phrase, min(top_k_tokens, width), dim=1).indices
    picked = (top < size[:, None]).float()
    chosen = torch.zeros(units, device=device)
    chosen = chosen.scatter_reduce(0, owner.gather(1, top).flatten(), picked.flatten(), "amax")
    flags, values = torch.stack([chosen, best]).cpu().tolist()
    selections, first = [], 0
    for b in range(batch):
        count = len(unit_lengths[b])
        picks = [i for i in range(count) if flags[first + i] > 0]
        selections.append(Selection(picks, [values[first + i] for i in picks]))
        first += count + 1
    return selections
