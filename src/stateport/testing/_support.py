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
