"""Helpers of the conformance suite: async test bodies under plain pytest,
capability requirements, URLs, threads and processes."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing.context
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlencode

from ..ports.engine import Capability

C = TypeVar("C")
F = TypeVar("F", bound=Callable[..., Any])


def async_test(fn: Callable[[C], Coroutine[Any, Any, None]]) -> Callable[[C], None]:
    """Turn ``async def test_x(self)`` into a sync pytest test run on a fresh loop.

    The suite needs no async pytest plugin, so any project can run it.
    """

    @functools.wraps(fn)
    def test(self: C) -> None:
        asyncio.run(fn(self))

    return test


def needs(*capabilities: Capability) -> Callable[[F], F]:
    """Mark a test as needing ``capabilities`` of the engine: on an engine that
    does not declare them, it skips with their description as the reason."""

    def mark(fn: F) -> F:
        fn.__dict__["stateport_needs"] = (*needed_capabilities(fn), *capabilities)
        return fn

    return mark


def needed_capabilities(fn: object) -> tuple[Capability, ...]:
    """What :func:`needs` recorded on ``fn``."""
    found: tuple[Capability, ...] = getattr(fn, "stateport_needs", ())
    return found


def with_params(url: str, **params: str) -> str:
    """``url`` with query parameters added (``portable=false``, ...)."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


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


def processes() -> multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext:
    """Where the suite starts worker processes: a fork server that has imported
    stateport (a new process costs a fork, not an interpreter start and the
    imports), or fresh interpreters where there is none (Windows). Never a fork of
    the test process itself, whose threads may hold locks."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["stateport", "stateport.testing"])
    return ctx


def in_processes(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    """Run ``target(*a)`` for each ``a`` in ``args``, each in a new process (see
    :func:`processes`), all at once; fail unless every one exits cleanly within two
    minutes."""
    ctx = processes()
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
