"""Helpers of the conformance suite: running async test bodies under plain pytest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

C = TypeVar("C")


def async_test(fn: Callable[[C], Coroutine[Any, Any, None]]) -> Callable[[C], None]:
    """Turn ``async def test_x(self)`` into a sync pytest test run on a fresh loop.

    The suite needs no async pytest plugin, so any project can run it.
    """

    def test(self: C) -> None:
        asyncio.run(fn(self))

    test.__name__ = fn.__name__
    test.__qualname__ = fn.__qualname__
    test.__doc__ = fn.__doc__
    test.__module__ = fn.__module__
    return test


async def in_threads(work: Callable[[int], Coroutine[Any, Any, Any]], threads: int) -> list[Any]:
    """Run ``work(i)`` for ``i`` in ``range(threads)``, each on its own thread and event
    loop, all at once; return their results in order (re-raising the first failure)."""
    import threading

    results: list[Any] = [None] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = asyncio.run(work(i))
        except BaseException as e:  # re-raised below, in the test's thread
            errors.append(e)

    def start_and_join() -> None:
        workers = [
            threading.Thread(target=run, args=(i,), name=f"conformance-{i}") for i in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    await asyncio.to_thread(start_and_join)
    if errors:
        raise errors[0]
    return results


def in_processes(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    """Run ``target(*a)`` for each ``a`` in ``args``, each in a fresh (spawned)
    process, all at once; fail unless every one exits cleanly within two minutes."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert codes == [0] * len(procs), f"worker processes exited with {codes}"
