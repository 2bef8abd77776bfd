"""The scan loop: many (source, question) items read in lockstep, one forward per step.

Each step builds every active item's prompt (its cache, its next chunk, its question), runs them as
one right-padded batch up to the retrieval layer, and updates each item's cache from its own
attention. An item whose source is read to its end drops out. A single ``retrieve`` is this loop
over one item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .cache import SentenceCache
from .chunking import pack_chunks
from .errors import ScanCancelled
from .forward import ForwardRunner
from .prompt import PromptLayout
from .results import Stats
from .scoring import select_batch
from .segments import Unit
from .sources import DocumentReader


@dataclass
class ScanItem:
    """One (source, question) being scanned, and its counters."""

    question: str
    question_ids: list[int]
    budget: int
    documents: list[DocumentReader]
    chunks: Iterator[list[Unit]]
    label: str = "source"
    cache: SentenceCache = field(default_factory=SentenceCache)
    upcoming: list[Unit] | None = None
    done: bool = False
    tokens_read: int = 0
    passes: int = 0
    processed: int = 0
    sentences: int = 0
    seconds: float = 0.0

    @classmethod
    def start(cls, question, question_ids, budget, documents, units, chunk_tokens, label):
        return cls(
            question, question_ids, budget, documents, pack_chunks(units, chunk_tokens), label
        )

    def advance(self) -> None:
        """Read the next chunk (or find the end); an empty source raises ``ValueError``."""
        first = self.upcoming is None
        self.upcoming = next(self.chunks, None)
        if self.upcoming is None:
            self.done = True
            if first:
                raise ValueError(f"{self.label} is empty or whitespace only")

    def stats(self, layer: int) -> Stats:
        return Stats(
            tokens_read=self.tokens_read,
            forward_passes=self.passes,
            tokens_processed=self.processed,
            cache_tokens=self.cache.tokens,
            seconds=self.seconds,
            documents=len(self.documents),
            sentences_read=self.sentences,
            retrieval_layer=layer,
        )


@dataclass(frozen=True)
class StepSettings:
    """What a step needs from the engine."""

    layout: PromptLayout
    runner: ForwardRunner
    layer: int
    heads: int
    phrase_tokens: int
    top_k_tokens: int


def run_scan(
    items: list[ScanItem],
    settings: StepSettings,
    progress: Callable[[int], None] | None = None,
    cancel: Any = None,
    batch_size: int = 1,
) -> None:
    """Scan all items to their ends, updating them in place.

    At most ``batch_size`` items share a step; when one is done the next waiting one joins.
    """
    started = time.perf_counter()
    waiting = list(reversed(items))
    active: list[ScanItem] = []
    while active or waiting:
        while waiting and len(active) < batch_size:
            item = waiting.pop()
            item.advance()
            if item.done:
                item.seconds = time.perf_counter() - started
            else:
                active.append(item)
        if not active:
            break
        if cancel is not None and cancel.is_set():
            raise ScanCancelled("the scan was cancelled")
        step(active, settings)
        now = time.perf_counter()
        for item in active:
            if item.done:
                item.seconds = now - started
        active = [item for item in active if not item.done]
        if progress is not None:
            progress(sum(item.tokens_read for item in items))


def step(items: list[ScanItem], settings: StepSettings) -> None:
    """One forward over the items' prompts, then each item's selection; reads the next chunks."""
    layout = settings.layout
    candidates = [[*item.cache.units, *item.upcoming] for item in items]
    prompts = [
        layout.build(_context_ids(units), item.question_ids)
        for item, units in zip(items, candidates)
    ]
    with settings.runner.session() as runner:
        scores = runner.scores(
            [p.ids for p in prompts],
            [range(p.question_start, p.question_end) for p in prompts],
            settings.layer,
        )
        chunks = [item.upcoming for item in items]
        for item in items:  # read ahead while the device works
            item.advance()
        selections = select_batch(
            scores,
            [p.context_start for p in prompts],
            [[len(u.ids) for u in units] for units in candidates],
            [float(settings.heads * (p.question_end - p.question_start)) for p in prompts],
            settings.phrase_tokens,
            settings.top_k_tokens,
        )
    for item, units, chunk, prompt, selection in zip(
        items, candidates, chunks, prompts, selections
    ):
        item.cache = SentenceCache.select(units, selection.units, selection.scores, item.budget)
        item.tokens_read += sum(len(u.ids) for u in chunk)
        item.sentences += len(chunk)
        item.passes += 1
        item.processed += len(prompt.ids)


def _context_ids(units: list[Unit]) -> list[int]:
    ids: list[int] = []
    for unit in units:
        ids.extend(unit.ids)
    return ids
