"""The synchronous facade: ``with stateport.sync.open(url) as sp: sp.items.put(...)``.

It runs the async implementation on an event loop in a background thread and
bridges each call to it; there is no second implementation. Every async method
becomes a blocking one with the same name, arguments and errors; async
iterators become iterators; ``async with`` becomes ``with``. The facade is
typed loosely (``Any``): see the async classes for signatures.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from .store import Stateport, _open

__all__ = ["SyncStateport", "open"]

T = TypeVar("T")


class _Portal:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="stateport-sync", daemon=True
        )
        self._thread.start()

    def call(self, awaitable: Awaitable[T]) -> T:
        async def run() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def iterate(self, source: AsyncIterator[Any]) -> Iterator[Any]:
        try:
            while True:
                try:
                    item = self.call(source.__anext__())
                except StopAsyncIteration:
                    return
                yield bridge(item, self)
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                self.call(close())

    def close(self) -> None:
        # join the loop's helper threads too (loop.close() would leave them exiting)
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def bridge(value: Any, portal: _Portal) -> Any:
    """``value`` as a sync caller should see it."""
    if inspect.isawaitable(value):
        return bridge(portal.call(value), portal)
    if hasattr(value, "__aenter__"):
        return _SyncContext(value, portal)
    if isinstance(value, AsyncIterator):
        return portal.iterate(value)
    if _has_async_api(type(value)):
        return SyncProxy(value, portal)
    return value


_ASYNC_API: dict[type, bool] = {}


def _has_async_api(cls: type) -> bool:
    found = _ASYNC_API.get(cls)
    if found is None:
        found = _ASYNC_API[cls] = _scan_async_api(cls)
    return found


def _scan_async_api(cls: type) -> bool:
    return any(
        inspect.iscoroutinefunction(getattr(cls, name, None))
        or inspect.isasyncgenfunction(getattr(cls, name, None))
        for name in dir(cls)
        if not name.startswith("_")
    ) or hasattr(cls, "__aiter__")


class SyncProxy:
    """Blocking access to an async object's public API."""

    def __init__(self, target: Any, portal: _Portal) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_portal", portal)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        portal = self._portal
        if callable(attr) and not isinstance(attr, type):

            def call(*args: Any, **kwargs: Any) -> Any:
                return bridge(attr(*args, **kwargs), portal)

            call.__name__ = name
            call.__doc__ = getattr(attr, "__doc__", None)
            return call
        return bridge(attr, portal)

    def __iter__(self) -> Iterator[Any]:
        if hasattr(self._target, "__aiter__"):
            iterator: Iterator[Any] = self._portal.iterate(self._target.__aiter__())
            return iterator
        raise TypeError(f"{type(self._target).__name__} is not iterable")

    def __repr__(self) -> str:
        return f"<sync {self._target!r}>"


class _SyncContext:
    def __init__(self, target: Any, portal: _Portal) -> None:
        self._target = target
        self._portal = portal

    def __enter__(self) -> Any:
        return bridge(self._portal.call(self._target.__aenter__()), self._portal)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return self._portal.call(self._target.__aexit__(exc_type, exc, tb))  # type: ignore[no-any-return]


class SyncStateport(SyncProxy):
    """A :class:`~stateport.store.Stateport` with blocking methods."""

    def close(self) -> None:
        """Close the store and stop its event loop thread. Idempotent."""
        portal: _Portal = self._portal
        if portal.loop.is_closed():
            return
        try:
            portal.call(self._target.aclose())
        finally:
            portal.close()

    def __enter__(self) -> SyncStateport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open(url: str | None = None, *, migrate: bool = True, create: bool = True) -> SyncStateport:
    """Open a store for blocking use; same arguments and errors as :func:`stateport.open`."""
    portal = _Portal()
    try:
        store: Stateport = portal.call(_open(url, migrate, create))
    except BaseException:
        portal.close()
        raise
    return SyncStateport(store, portal)
