"""Sentence splitting and tokenization ahead of the scan, in worker processes.

Punkt is pure Python (about 1-2M characters a second on one core) and a 1M-token document holds
about 4.5M characters, so on a GPU the splitting alone would take longer than the model's work.
Documents are cut into blocks that split independently (``SentenceSplitter.blocks``); worker
processes turn blocks into tokenized units while the scan runs, a bounded number of blocks ahead
(memory stays flat). The units are exactly those of ``Segmenter.units``: the same code runs on
the same blocks, only elsewhere.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from .segments import Segmenter, Unit
from .sources import DocumentReader

_worker: dict[str, Segmenter] = {}
"""The segmenter of a worker process, set once by its initializer (worker processes only)."""


def _init_worker(segmenter: Segmenter) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _worker["segmenter"] = segmenter


def _block_units(doc_index: int, base: int, block: str) -> list[Unit]:
    return _worker["segmenter"].block_units(doc_index, base, block)


def _ready() -> bool:
    return "segmenter" in _worker


def _start_method() -> str:
    """``fork`` on Linux: workers start at once and import nothing (they use no CUDA, only
    Python, nltk and the Rust tokenizer, which turns its own threads off after a fork);
    ``spawn`` elsewhere."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def can_start_workers() -> bool:
    """Whether this process may start worker processes: a daemonic one (a worker of a
    ``multiprocessing.Pool``) may not."""
    return not multiprocessing.current_process().daemon


def default_workers(device_type: str) -> int:
    """Workers used by default: none on a CPU (the model needs the cores) or in a process that
    cannot start any (:func:`can_start_workers`), else up to 8."""
    if device_type == "cpu" or not can_start_workers():
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 2))


class PrepPool:
    """A lazily started pool of worker processes that split and tokenize blocks.

    Shared by engines over the same model (``with_options``); thread-safe.
    """

    def __init__(self, segmenter: Segmenter, workers: int) -> None:
        if workers > 0 and not can_start_workers():
            raise ValueError(
                f"prep_workers={workers} needs worker processes, which a daemonic process (a "
                "multiprocessing.Pool worker) cannot start; use prep_workers=0 or None"
            )
        self.segmenter = segmenter
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context(_start_method()),
                    initializer=_init_worker,
                    initargs=(self.segmenter,),
                )
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "This process .* is multi-threaded")
                    # One task per worker starts them all now, in one place.
                    started = [pool.submit(_ready) for _ in range(self.workers)]
                for future in started:
                    future.result()
                weakref.finalize(self, pool.shutdown, wait=False, cancel_futures=True)
                self._pool = pool
            return self._pool

    def start(self) -> None:
        """Start the workers now rather than at the first long document."""
        if self.workers > 0:
            self._executor()

    def units(self, documents: Sequence[DocumentReader]) -> Iterator[Unit]:
        """The units of ``documents`` in order, as ``Segmenter.units`` yields them.

        A document of one block is done inline; longer ones go to the workers, at most
        ``2 * workers`` blocks ahead of the reader.
        """
        blocks = self.segmenter.blocks(documents)
        first = next(blocks, None)
        if first is None:
            return
        second = next(blocks, None)
        if self.workers <= 0 or second is None:
            yield from self.segmenter.block_units(*first)
            if second is not None:
                yield from self.segmenter.block_units(*second)
                for block in blocks:
                    yield from self.segmenter.block_units(*block)
            return
        pool = self._executor()
        ahead = 2 * self.workers
        pending: deque[Future] = deque(
            [pool.submit(_block_units, *first), pool.submit(_block_units, *second)]
        )
        try:
            for block in blocks:
                pending.append(pool.submit(_block_units, *block))
                if len(pending) >= ahead:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
