"""The scanner: the sliding-window loop over one or many (source, question) items.

Many items are read in lockstep, one forward per step.

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
from .fusion import zscores
from .model_context import ModelContext
from .prep import PrepPool
from .prompt import PromptLayout
from .readout import Readout
from .results import Stats
from .scoring import Scorer
from .segments import Unit
from .sources import DocumentReader, Source, open_documents
from .summary import Drafts

MIN_CACHE_TOKENS = 64
"""The least room the cache must have next to a chunk and the question."""


@dataclass
class ScanItem:
    """One (source, question) being scanned, and its counters."""

    question: str
    question_ids: list[int]
    budget: int
    documents: list[DocumentReader]
    chunks: Iterator[list[Unit]]
    label: str = "source"
    drafts: Drafts | None = None
    """The summary track's stretches (``None``: the track is off)."""
    cache: SentenceCache = field(default_factory=SentenceCache)
    upcoming: list[Unit] | None = None
    done: bool = False
    tokens_read: int = 0
    passes: int = 0
    processed: int = 0
    sentences: int = 0
    seconds: float = 0.0

    @classmethod
    def start(
        cls, question, question_ids, budget, documents, units, chunk_tokens, label, drafts=None
    ):
        chunks = pack_chunks(units, chunk_tokens)
        return cls(question, question_ids, budget, documents, chunks, label, drafts)

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
    """What a step needs: how prompts are laid out, the model, the heads read and the scorer."""

    layout: PromptLayout
    context: ModelContext
    readout: Readout
    scorer: Scorer
    graphs: bool = True
    compiled: bool = False
    """Record graphs through compiled layers (``compile_layers``)."""
    rows: str = "question"
    """Which prompt rows query the context (``question_rows``)."""
    baseline_ids: list[int] | None = None
    """A content-free question run beside each prompt (``score_baseline``), or ``None``."""


class Scanner:
    """Reads sources chunk by chunk and keeps, per question, the sentences its attention picks.

    Built by the engine from its settings; holds no per-scan state, so one scanner serves
    concurrent scans.
    """

    def __init__(
        self,
        context: ModelContext,
        layout: PromptLayout,
        prep: PrepPool,
        scorer: Scorer,
        *,
        chunk_tokens: int,
        max_cache_tokens: int | None,
        batch_size: int,
        graphs: bool,
        compiled: bool = False,
        rows: str = "question",
        baseline_ids: list[int] | None = None,
        summary: tuple[int, int] | None = None,
    ) -> None:
        self.context = context
        self.layout = layout
        self.prep = prep
        self.scorer = scorer
        self.chunk_tokens = chunk_tokens
        self.max_cache_tokens = max_cache_tokens
        self.batch_size = batch_size
        self.graphs = graphs
        self.compiled = compiled
        self.rows = rows
        self.baseline_ids = baseline_ids
        self.summary = summary
        """``(notes, source_tokens)`` of the summary track's drafts, or ``None`` (off)."""

    def cache_budget(self, question_tokens: int) -> int:
        """Tokens the cache may hold next to a chunk and a question of this length."""
        window = self.context.context_window
        room = window - self.layout.overhead - self.chunk_tokens - question_tokens
        if room < MIN_CACHE_TOKENS:
            raise ValueError(
                f"question is too long: {question_tokens} tokens leave no room for the cache next "
                f"to a chunk of {self.chunk_tokens} tokens in a {window}-token window"
            )
        return min(room, self.max_cache_tokens) if self.max_cache_tokens else room

    def item(
        self, source: Source, question: str, question_ids: list[int], label: str = "source"
    ) -> ScanItem:
        """A (source, question) ready to scan; a bad source or question is a ``ValueError``."""
        budget = self.cache_budget(len(question_ids))
        documents = open_documents(source)
        units = self.prep.units(documents)
        drafts = Drafts(*self.summary) if self.summary else None
        return ScanItem.start(
            question, question_ids, budget, documents, units, self.chunk_tokens, label, drafts
        )

    def run(
        self,
        items: list[ScanItem],
        readout: Readout,
        progress: Callable[[int], None] | None = None,
        cancel: Any = None,
    ) -> None:
        """Scan every item to its end, reading ``readout``'s heads (:func:`run_scan`)."""
        settings = StepSettings(
            self.layout,
            self.context,
            readout,
            self.scorer,
            self.graphs,
            self.compiled,
            self.rows,
            self.baseline_ids,
        )
        run_scan(items, settings, progress, cancel, self.batch_size)


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
    candidates = [[*item.cache.units, *item.upcoming] for item in items]
    prompts = [
        settings.layout.build(context_ids(units), item.question_ids)
        for item, units in zip(items, candidates)
    ]
    lengths = [[len(u.ids) for u in units] for units in candidates]
    capture = settings.context.capture(
        prompts,
        lengths,
        settings.readout,
        graphs=settings.graphs,
        compiled=settings.compiled,
        texts=[[u.text for u in units] for units in candidates],
        questions=[item.question for item in items],
        rows=settings.rows,
        baseline_ids=settings.baseline_ids,
    )
    with capture as captured:
        chunks = [item.upcoming for item in items]
        for item in items:  # read ahead while the device works
            item.advance()
        selections = settings.scorer.select(captured)
    for item, units, chunk, prompt, selection in zip(
        items, candidates, chunks, prompts, selections
    ):
        item.cache = SentenceCache.select(units, selection.units, selection.scores, item.budget)
        if item.drafts is not None:
            item.drafts.read(chunk, left_out(units, item.cache, selection.unit_scores))
        item.tokens_read += sum(len(u.ids) for u in chunk)
        item.sentences += len(chunk)
        item.passes += 1
        item.processed += len(prompt.ids)
        if settings.baseline_ids is not None:  # the content-free prompt beside it
            item.processed += len(prompt.ids) - len(item.question_ids) + len(settings.baseline_ids)


def context_ids(units: list[Unit]) -> list[int]:
    """The units' token ids, back to back."""
    ids: list[int] = []
    for unit in units:
        ids.extend(unit.ids)
    return ids


def left_out(
    units: list[Unit], cache: SentenceCache, scores: list[float]
) -> list[tuple[Unit, float]]:
    """The units in view that ``cache`` did not keep, with their standardised scores."""
    kept = {id(u) for u in cache.units}
    z = zscores(scores)
    return [(u, z[i]) for i, u in enumerate(units) if id(u) not in kept]
