"""Which attention the scan reads: all heads of one layer summed, or chosen (layer, head) pairs.

A :class:`Readout` is the resolved form of the ``retrieval_layer`` and ``retrieval_heads``
settings. Each of its *groups* is one row of the captured scores: ``(layer, None)`` sums every
head of the layer (the paper's reading), ``(layer, head)`` is one head. The forward runs up to
the highest layer named and no further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .attention import HeadMap

Group = tuple[int, int | None]
"""``(layer, head)``, or ``(layer, None)`` for every head of the layer summed."""


@dataclass(frozen=True)
class Readout:
    """The head groups one capture forward reads, in order."""

    groups: tuple[Group, ...]

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("a readout needs at least one (layer, head) group")
        if len(set(self.groups)) != len(self.groups):
            raise ValueError(f"repeated (layer, head) groups in {self.groups}")
        for layer, head in self.groups:
            if head is None and any(g == layer and h is not None for g, h in self.groups):
                raise ValueError(f"layer {layer} is read both summed and head by head")

    @classmethod
    def layer(cls, layer: int) -> Readout:
        """Every head of ``layer``, summed."""
        return cls(((layer, None),))

    @classmethod
    def layers(cls, layers: Sequence[int]) -> Readout:
        """Every head of each of ``layers``, summed per layer."""
        return cls(tuple((layer, None) for layer in layers))

    @classmethod
    def heads(cls, pairs: Sequence[tuple[int, int]]) -> Readout:
        """The given ``(layer, head)`` pairs, one group each."""
        return cls(tuple((int(layer), int(head)) for layer, head in pairs))

    @property
    def layers_read(self) -> tuple[int, ...]:
        """Layers named, ascending."""
        return tuple(sorted({layer for layer, _ in self.groups}))

    @property
    def stop_layer(self) -> int:
        """The highest layer: the forward stops after it."""
        return max(layer for layer, _ in self.groups)

    @property
    def head_map(self) -> HeadMap:
        """Layers read head by head, and their heads (for the capture request)."""
        chosen: dict[int, list[int]] = {}
        for layer, head in self.groups:
            if head is not None:
                chosen.setdefault(layer, []).append(head)
        return tuple((layer, tuple(sorted(heads))) for layer, heads in sorted(chosen.items()))

    def group_heads(self, heads_per_layer: int) -> list[int]:
        """Heads summed in each group (``heads_per_layer`` for a whole layer, else 1)."""
        return [heads_per_layer if head is None else 1 for _, head in self.groups]

    def gather(self, values: dict[int, torch.Tensor]) -> torch.Tensor:
        """``(B, G, T)``: the captured ``{layer: (B, T) or (B, h, T)}`` in group order."""
        position = {layer: dict(zip(heads, range(len(heads)))) for layer, heads in self.head_map}
        rows = []
        for layer, head in self.groups:
            value = values[layer]
            rows.append(value if head is None else value[:, position[layer][head]])
        return torch.stack(rows, dim=1)

    def check(self, num_layers: int, num_heads: int) -> None:
        """``ValueError`` for a layer or head the model does not have."""
        for layer, head in self.groups:
            if not 0 <= layer < num_layers:
                raise ValueError(
                    f"retrieval_heads names layer {layer}; the model has layers 0..{num_layers - 1}"
                )
            if head is not None and not 0 <= head < num_heads:
                raise ValueError(
                    f"retrieval_heads names head {head} of layer {layer}; the model has heads "
                    f"0..{num_heads - 1}"
                )
