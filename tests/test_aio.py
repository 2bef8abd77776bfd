"""infiniretri.aio: results, errors, and cancellation reaching the worker thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from infiniretri.aio import iterate_in_thread, run_in_thread


async def test_run_in_thread_returns_and_raises():
    assert await run_in_thread(lambda cancel: threading.current_thread().name) != (
        threading.current_thread().name
    )

    def fail(cancel):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await run_in_thread(fail)


async def test_cancelling_the_task_sets_the_event():
    started, seen = threading.Event(), threading.Event()

    def work(cancel: threading.Event) -> None:
        started.set()
        if cancel.wait(60):
            seen.set()

    task = asyncio.create_task(run_in_thread(work))
    assert await asyncio.to_thread(started.wait, 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(seen.wait, 60)


async def test_iterate_in_thread_yields_in_order_and_propagates_errors():
    assert [x async for x in iterate_in_thread(lambda cancel: iter(range(5)))] == [0, 1, 2, 3, 4]

    def broken(cancel):
        yield 1
        raise ValueError("bad piece")

    got = []
    with pytest.raises(ValueError, match="bad piece"):
        async for x in iterate_in_thread(broken):
            got.append(x)
    assert got == [1]


async def test_closing_the_iterator_early_stops_the_producer():
    closed = threading.Event()
    cancels: list[threading.Event] = []

    def endless(cancel):
        cancels.append(cancel)
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = iterate_in_thread(endless)
    async for x in stream:
        if x == 3:
            break
    await stream.aclose()
    assert cancels[0].is_set()
    assert await asyncio.to_thread(closed.wait, 60)
