"""HotpotQA items as benchmark documents, seeded splits, and sentence-level scoring.

Each item's 10 paragraphs (2 gold, 8 distractors) are joined into one document::

    Title one
    Sentence 0. Sentence 1. ...

    Title two
    ...

Retrieval units of the baselines are HotpotQA's own sentences; a paragraph's first unit also
holds its title line (the engine's sentence splitter makes the same unit). A gold (supporting)
sentence counts as found when at least half of its characters lie inside the selected spans:
exact for the baselines, and robust to the engine splitting a sentence differently.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

DEV_SIZE = 100
REPORT_SIZE = 300
SPLIT_SEED = 0
FOUND_FRACTION = 0.5


@dataclass(frozen=True)
class HotpotDoc:
    """One benchmark item."""

    qid: str
    question: str
    answer: str
    kind: str
    text: str
    units: list[tuple[int, int]]
    """Character spans of the baseline units (sentences; the title joins the first)."""
    gold: list[tuple[int, int]]
    """Character spans of the supporting sentences (without titles)."""
    gold_units: list[int]

    def unit_text(self, i: int) -> str:
        a, b = self.units[i]
        return self.text[a:b]

    def as_dict(self) -> dict[str, Any]:
        return {
            "qid": self.qid,
            "question": self.question,
            "answer": self.answer,
            "kind": self.kind,
            "text": self.text,
            "units": [list(u) for u in self.units],
            "gold": [list(g) for g in self.gold],
            "gold_units": list(self.gold_units),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HotpotDoc:
        return cls(
            d["qid"],
            d["question"],
            d["answer"],
            d["kind"],
            d["text"],
            [tuple(u) for u in d["units"]],
            [tuple(g) for g in d["gold"]],
            list(d["gold_units"]),
        )


def eligible(item: dict[str, Any]) -> bool:
    """10 paragraphs and every supporting fact present and non-empty."""
    if len(item["context"]) != 10:
        return False
    paragraphs = dict((t, s) for t, s in item["context"])
    for title, index in item["supporting_facts"]:
        sentences = paragraphs.get(title)
        if sentences is None or index >= len(sentences) or not sentences[index].strip():
            return False
    return True


def build_doc(item: dict[str, Any]) -> HotpotDoc:
    """The joined document of one item, with unit and gold spans."""
    parts: list[str] = []
    units: list[tuple[int, int]] = []
    where: dict[tuple[str, int], tuple[int, int]] = {}
    unit_of: dict[tuple[str, int], int] = {}
    pos = 0
    for p, (title, sentences) in enumerate(item["context"]):
        if p:
            parts.append("\n\n")
            pos += 2
        head = title.strip() + "\n"
        para_start = pos
        parts.append(head)
        pos += len(head)
        first = True
        for j, raw in enumerate(sentences):
            s = " ".join(raw.split())
            if not s:
                continue
            if not first:
                parts.append(" ")
                pos += 1
            start = pos
            parts.append(s)
            pos += len(s)
            where[(title, j)] = (start, pos)
            unit_of[(title, j)] = len(units)
            units.append((para_start if first else start, pos))
            first = False
    text = "".join(parts)
    gold, gold_units = [], []
    for title, index in item["supporting_facts"]:
        key = (title, index)
        if key in where and where[key] not in gold:
            gold.append(where[key])
            gold_units.append(unit_of[key])
    return HotpotDoc(
        item["_id"],
        item["question"].strip(),
        item["answer"],
        item["type"],
        text,
        units,
        gold,
        gold_units,
    )


def splits(items: list[dict[str, Any]], seed: int = SPLIT_SEED) -> dict[str, list[int]]:
    """Disjoint seeded samples of eligible items: ``report`` (300) and ``dev`` (100)."""
    pool = [i for i, item in enumerate(items) if eligible(item)]
    random.Random(seed).shuffle(pool)
    return {"report": pool[:REPORT_SIZE], "dev": pool[REPORT_SIZE : REPORT_SIZE + DEV_SIZE]}


def found(gold: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[bool]:
    """For each gold span, whether at least half of it lies inside the selected spans."""
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out = []
    for a, b in gold:
        inside = sum(max(0, min(b, y) - max(a, x)) for x, y in merged)
        out.append(inside >= FOUND_FRACTION * (b - a))
    return out


def recall_stats(hits: list[bool]) -> tuple[float, bool]:
    """(fraction of gold sentences found, all found?)."""
    if not hits:
        return 0.0, False
    return sum(hits) / len(hits), all(hits)
