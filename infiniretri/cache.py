"""The sentence cache carried from one chunk to the next."""

from __future__ import annotations

from dataclasses import dataclass, field

from .segments import Unit


@dataclass(frozen=True)
class SentenceCache:
    """Cached units in document order, each with the score that kept it."""

    units: tuple[Unit, ...] = ()
    scores: tuple[float, ...] = field(default=())

    @property
    def tokens(self) -> int:
        return sum(len(u.ids) for u in self.units)

    @classmethod
    def select(
        cls, candidates: list[Unit], chosen: list[int], scores: list[float], max_tokens: int
    ) -> SentenceCache:
        """The new cache: the chosen candidates, trimmed to ``max_tokens`` by score.

        When the chosen units hold more than ``max_tokens`` tokens, the best-scoring ones are kept
        (a unit that does not fit is skipped and smaller ones may still fit); order stays the
        document's.
        """
        total = sum(len(candidates[i].ids) for i in chosen)
        keep = list(range(len(chosen)))
        if total > max_tokens:
            keep, used = [], 0
            for j in sorted(range(len(chosen)), key=lambda j: -scores[j]):
                size = len(candidates[chosen[j]].ids)
                if used + size <= max_tokens:
                    keep.append(j)
                    used += size
            keep.sort()
        return cls(
            tuple(candidates[chosen[j]] for j in keep), tuple(float(scores[j]) for j in keep)
        )
