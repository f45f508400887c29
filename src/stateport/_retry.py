"""The one retry loop of the package: bounded, with jittered backoff.

Optimistic concurrency is read, decide, write on a condition, and try again
when the condition failed because another writer moved first. Every store
does it, and the engines do it too (a PostgreSQL serialization failure, a
throttled DynamoDB request); all of them run this loop::

    async def attempt() -> Item:
        head = await table.get(pk, "head")
        with moved_on("head"):                 # a Conflict tagged "head" -> Retry
            return await table.update(pk, "head", set=..., condition=VersionEquals(head.version))

    item = await retrying(attempt, what=f"run {run_id!r}")

An attempt raises :class:`Retry` to ask for another try (or lets
:func:`moved_on` turn the conflicts it expects into one); any other exception
ends the loop and reaches the caller unchanged. When the tries run out the
loop raises :class:`~stateport.errors.Conflict` (or what ``exhausted``
builds), so a caller never waits without bound.

The first retries follow at once (in-process races resolve in a microsecond);
later ones wait a random time up to a doubling bound ("full jitter"), so
writers that keep colliding spread out instead of colliding again in step.

It sits at the bottom of the package, beside :mod:`stateport._json`, because
backends use it as well as primitives and stores; the primitives re-export it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

from .errors import Conflict

__all__ = ["OPTIMISTIC", "Backoff", "Retry", "moved_on", "retrying"]

T = TypeVar("T")


class Retry(Exception):
    """Raised by an attempt of :func:`retrying`: what it read has moved; try again.

    Never reaches a caller of a public method: :func:`retrying` consumes it.
    ``reason`` (optional) is shown if the tries run out.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often to try, and how long to wait between tries.

    ``tries`` attempts in all; the first ``immediate`` retries follow at once;
    retry ``n`` after those waits a random time in ``[0, min(cap, base * 2**k))``
    where ``k`` counts the waiting retries from 0.
    """

    tries: int
    immediate: int = 2
    base: float = 0.0005
    cap: float = 0.05

    def __post_init__(self) -> None:
        if self.tries < 1 or self.immediate < 0 or self.base < 0 or self.cap < 0:
            raise ValueError(f"invalid backoff {self!r}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        k = retry - self.immediate - 1
        if k < 0:
            return 0.0
        return random.uniform(0.0, min(self.cap, self.base * (2.0 ** min(k, 30))))


OPTIMISTIC: Final = Backoff(tries=100)
"""For optimistic writes against other writers of the same store: 100 tries,
two at once, then waits growing from 0.5 ms to at most 50 ms (a few seconds
of sustained losing in all before giving up)."""


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff: Backoff = OPTIMISTIC,
    exhausted: Callable[[str], Exception] | None = None,
) -> T:
    """Run ``attempt()`` until it returns, retrying while it raises :class:`Retry`.

    ``what`` names the contended thing in the final error: "``what`` kept
    changing ...". ``exhausted(message)`` builds that error instead of the
    default :class:`~stateport.errors.Conflict`.
    """
    reason = ""
    for n in range(backoff.tries):
        if n:
            pause = backoff.delay(n)
            if pause:
                await asyncio.sleep(pause)
        try:
            return await attempt()
        except Retry as r:
            reason = r.reason
    message = (
        f"{what} kept changing under concurrent writers; gave up after {backoff.tries} "
        f"tries{f' ({reason})' if reason else ''}: nothing was applied, try again"
    )
    raise (exhausted or Conflict)(message)


@contextlib.contextmanager
def moved_on(*tags: str) -> Iterator[None]:
    """Turn a :class:`~stateport.errors.Conflict` whose operation carries one of
    ``tags`` into :class:`Retry`; let every other exception through.

    Tag the operations whose failure means "someone moved first" (the head,
    the counter, the graph version), leave the others untagged or tagged
    otherwise, and the loop retries exactly the races.
    """
    try:
        yield
    except Conflict as e:
        if e.tag is not None and e.tag in tags:
            raise Retry(e.tag) from None
        raise
