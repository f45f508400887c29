"""Worker threads that run blocking calls for async callers.

Leaner than ``asyncio.to_thread``: no ``concurrent.futures`` future and no
context copy, just a queue into the threads and ``call_soon_threadsafe`` back to
the loop that asked, which saves about a sixth of a hop's cost. A result is
delivered to whichever event loop submitted the call, so one worker serves
callers on several threads and loops. With one thread, calls run in the order
submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["Worker"]


class Worker:
    """``threads`` daemon threads, started on first use, serving one queue."""

    def __init__(self, name: str, *, threads: int = 1, closed: Callable[[], BaseException]):
        self._name = name
        self._count = threads
        self._closed_error = closed
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.closed = False

    def submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``call`` on a worker thread; await the returned future for its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._put((loop, fut, call))
        return fut

    def fire(self, call: Callable[[], object]) -> None:
        """Run ``call`` on a worker thread; nobody waits for it."""
        self._put((None, None, call))

    def _put(self, job: tuple[Any, Any, Callable[[], Any]]) -> None:
        if self.closed:
            raise self._closed_error()
        if not self._threads:
            with self._start_lock:
                if not self._threads:
                    self._threads = [
                        threading.Thread(target=self._serve, name=self._name, daemon=True)
                        for _ in range(self._count)
                    ]
                    for t in self._threads:
                        t.start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            loop, fut, call = job
            try:
                result = call()
            except BaseException as e:
                _deliver(loop, fut, None, e)
            else:
                _deliver(loop, fut, result, None)

    def _refuse_remaining(self) -> None:
        """Fail calls that raced the close: never leave a caller waiting forever."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                _deliver(job[0], job[1], None, self._closed_error())

    async def aclose(self) -> None:
        """Finish the calls already queued, then stop the threads. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._threads:
            for _ in self._threads:
                self._jobs.put(None)
            threads = self._threads

            def join() -> None:
                for t in threads:
                    t.join()

            await asyncio.to_thread(join)
        self._refuse_remaining()


def _deliver(
    loop: asyncio.AbstractEventLoop | None,
    fut: asyncio.Future[Any] | None,
    result: Any,
    error: BaseException | None,
) -> None:
    if loop is None or fut is None:
        return

    def settle() -> None:
        if fut.done():  # the caller was cancelled
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody waits
        loop.call_soon_threadsafe(settle)
