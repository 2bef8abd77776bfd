"""Run blocking engine calls off the event loop, stopping them when the awaiting task is cancelled.

The engine checks a ``threading.Event`` between chunks (``cancel=``); these helpers set it when the
coroutine awaiting the work is cancelled (or an async iterator is closed early), so an abandoned
scan stops within one chunk instead of running to the end in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


async def run_in_thread(func: Callable[[threading.Event], T]) -> T:
    """Await ``func(cancel)`` run in a worker thread; cancelling the caller sets ``cancel``."""
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(func, cancel)
    except asyncio.CancelledError:
        cancel.set()
        raise


async def iterate_in_thread(
    make_iterator: Callable[[threading.Event], Iterator[T]],
) -> AsyncIterator[T]:
    """Async-iterate ``make_iterator(cancel)`` run in a worker thread.

    Items arrive as the thread produces them. When the consumer stops early or is cancelled,
    ``cancel`` is set and the thread stops before its next item (or next chunk of a scan).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop closed: nobody is listening any more
            cancel.set()

    def produce() -> None:
        try:
            iterator = make_iterator(cancel)
            try:
                for item in iterator:
                    if cancel.is_set():
                        break
                    put(item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as error:  # handed to the consumer, re-raised there
            put(_END, error)
        else:
            put(_END)

    context = contextvars.copy_context()
    worker = loop.run_in_executor(None, context.run, produce)
    try:
        while True:
            item, error = await queue.get()
            if item is _END:
                if error is not None:
                    raise error
                break
            yield item
    finally:
        cancel.set()
        if worker.done():
            worker.result()
