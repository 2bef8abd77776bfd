"""Run the engine's blocking work off an asyncio event loop, cancelling it with the caller.

The engine checks a ``threading.Event`` before each chunk of a scan (``cancel=``). These helpers
create one per call, hand it to the work, and set it when the awaiting task is cancelled or the
consumer of a stream stops early, so the worker thread stops at its next check instead of running
on. Integrations (LangChain, LlamaIndex) build their async methods on them.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


async def run_in_thread(work: Callable[[threading.Event], T]) -> T:
    """Await ``work(cancel)`` run in a worker thread; cancelling the await sets ``cancel``."""
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(work, cancel)
    finally:
        cancel.set()


async def iterate_in_thread(
    make_iterator: Callable[[threading.Event], Iterator[T]],
) -> AsyncGenerator[T, None]:
    """Yield the items of ``make_iterator(cancel)``, which runs in a worker thread.

    Items are handed over as soon as the thread produces them. When the consumer stops early
    (``aclose``, cancellation, garbage collection) ``cancel`` is set and the thread closes the
    iterator before its next item. Errors raised in the thread are raised here.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    cancel = threading.Event()

    def post(item: object, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancel.set()

    def produce() -> None:
        try:
            iterator = make_iterator(cancel)
            try:
                for item in iterator:
                    if cancel.is_set():
                        break
                    post(item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as error:  # handed to the consumer, raised there
            post(_DONE, error)
        else:
            post(_DONE)

    # The worker is not awaited: once nobody listens it stops at its next cancel check.
    loop.run_in_executor(None, contextvars.copy_context().run, produce)
    try:
        while True:
            item, error = await queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        cancel.set()
