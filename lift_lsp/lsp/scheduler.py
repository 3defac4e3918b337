"""Where the server's work runs, so that requests never wait behind background work.

Requests are answered on the event loop when the answer is ready (a lookup), else in `RequestPool`'s threads.
Background work (analysis, checks) runs in `Lane`s: each lane is one thread at a lower OS priority (on Linux each
thread has its own nice value, and the threads and processes it starts, such as the sandbox's workers, inherit it),
running one job at a time, the job of the most recently used document first. A newer job for a document replaces
its pending one, whose future fails with `Superseded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from lift_lsp.lsp.memory import release_freed

R = TypeVar("R")
BACKGROUND_NICE = 10
"""How much lower than the server's the background threads' priority is (nice increment)."""
REQUEST_THREADS = 2


class Superseded(Exception):
    """A newer job for the same document replaced this one before it ran."""


def lower_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def started(executor: ThreadPoolExecutor, threads: int) -> ThreadPoolExecutor:
    """The pool with its `threads` threads started now (a pool starts them only as work comes), so that the server
    runs the same threads from its start to its end."""
    barrier = threading.Barrier(threads)
    for _ in range(threads):
        executor.submit(barrier.wait)  # each waits for the others: the pool must start a thread for each
    return executor


def _then_release(work: Callable[[], R]) -> R:
    """Run a background job, then give the memory it freed back to the system."""
    try:
        return work()
    finally:
        release_freed()


class Lane:
    def __init__(self, name: str, rank: Callable[[str], int]) -> None:
        """`rank(uri)`: how recently the document was used (higher: sooner)."""
        self._rank = rank
        self._executor = started(ThreadPoolExecutor(1, thread_name_prefix=name, initializer=lower_priority), 1)
        self._pending: dict[str, tuple[Callable[[], Any], asyncio.Future[Any]]] = {}
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self.running: str | None = None
        """The document whose job runs now."""

    def submit(self, uri: str, work: Callable[[], R]) -> asyncio.Future[R]:
        """Run `work()` in the lane (call on the event loop); its result, or its exception, or `Superseded`."""
        loop = asyncio.get_running_loop()
        if self._runner is None or self._wake is None:
            self._wake = asyncio.Event()
            self._runner = loop.create_task(self._run())
        self.cancel(uri)
        future: asyncio.Future[R] = loop.create_future()
        self._pending[uri] = (work, future)
        self._wake.set()
        return future

    def has_pending(self, uri: str) -> bool:
        return uri in self._pending

    def cancel(self, uri: str) -> None:
        """Drop the document's pending job (a running one finishes)."""
        replaced = self._pending.pop(uri, None)
        if replaced is not None and not replaced[1].done():
            replaced[1].set_exception(Superseded())
            replaced[1].exception()  # retrieved: nobody need await a superseded job

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                uri = max(self._pending, key=self._rank)
                work, future = self._pending.pop(uri)
                if future.done():
                    continue
                self.running = uri
                try:
                    result = await loop.run_in_executor(self._executor, functools.partial(_then_release, work))
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
                finally:
                    self.running = None

    def close(self) -> None:
        for uri in list(self._pending):
            self.cancel(uri)
        if self._runner is not None:
            self._runner.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


class RequestPool:
    """Threads for the part of a request that cannot be answered from what is ready (normal priority)."""

    def __init__(self) -> None:
        self._executor = started(
            ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="lift-request"), REQUEST_THREADS
        )

    async def run(self, work: Callable[[], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
