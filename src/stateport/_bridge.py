"""How the sync facade bridges a blocking call onto the async implementation, typed.

A :class:`Portal` is an event loop running in a daemon thread. A
:class:`Bridged` object holds an async object and a portal, and its class
declares one attribute per method of the async class, with a descriptor that
says how the call crosses over:

* :class:`blocking` — a coroutine method: run it on the portal, wait, return its
  result (or raise its error);
* :class:`iterating` — a method returning an async iterator: an iterator whose
  every step is taken on the portal;
* :class:`entering` — a method returning an async context manager: a context
  manager entered and left on the portal, yielding a bridged object;
* :class:`plain` — a method that does not wait: called as it is;
* :class:`store` — an attribute holding another async object: its bridged twin.

Each descriptor is built from the async method itself (``blocking(RunLedger.create_run)``),
and is typed with a ``ParamSpec``, so a type checker gives the blocking method
exactly the async method's parameters and its awaited result: nothing of a
signature is written twice, and none can drift. At run time a call dispatches
by name on the async object, so a backend's override is the one called.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from .digest import ContentDigest
from .ports.blob import BlobReader
from .ports.table import Watch

__all__ = [
    "Bridged",
    "Portal",
    "SyncBlobReader",
    "SyncWatch",
    "blocking",
    "entering",
    "iterating",
    "plain",
    "store",
]

S = TypeVar("S")  # the async object's class
S_co = TypeVar("S_co", covariant=True)  # a twin of a subclass serves its base's methods
B = TypeVar("B")  # a bridged class
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
U = TypeVar("U")


class Portal:
    """An event loop running in a daemon thread, and the crossings onto it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="stateport-sync", daemon=True
        )
        self._thread.start()

    def call(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop; block until it is done."""

        async def run() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        """``source``, one step at a time on the loop; closed when left early."""
        try:
            while True:
                try:
                    item = self.call(source.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                self.call(close())

    def close(self) -> None:
        """Stop the loop and its thread (and the loop's helper threads)."""
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Bridged(Generic[S_co]):
    """Blocking access to an async object ``aio``; subclasses declare its methods.

    Covariant: a method a store inherits (``KnowledgeRepository.list_collections``
    is ``CollectionOps``'s) is bridged on the store's twin.
    """

    def __init__(self, aio: S_co, portal: Portal) -> None:
        self._aio = aio
        self._portal = portal

    @property
    def aio(self) -> S_co:
        """The async object behind this one (for its plain attributes, or to await)."""
        return self._aio

    def __repr__(self) -> str:
        return f"<sync {self._aio!r}>"


class _Crossing(Generic[S]):
    """What the descriptors share: the async method, its name, the caching."""

    name: str

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.target = method.__name__  # the async object's method to call
        self.__doc__ = method.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def signature(self) -> inspect.Signature:
        """The async method's parameters, without ``self``."""
        sig = inspect.signature(self.method)
        return sig.replace(
            parameters=list(sig.parameters.values())[1:],
            return_annotation=inspect.Signature.empty,
        )

    def bind(self, obj: Bridged[S]) -> Callable[..., Any]:
        """The blocking callable for ``obj``, made once and kept on ``obj``."""
        made = self.make(getattr(obj.aio, self.target), obj._portal)
        made.__name__ = self.name
        made.__doc__ = self.__doc__
        made.__signature__ = self.signature()  # type: ignore[attr-defined]
        obj.__dict__[self.name] = made
        return made

    def make(self, method: Callable[..., Any], portal: Portal) -> Callable[..., Any]:
        raise NotImplementedError


class blocking(_Crossing[S], Generic[S, P, R]):
    """A coroutine method, called and awaited on the portal."""

    def __init__(self, method: Callable[Concatenate[S, P], Awaitable[R]]) -> None:
        super().__init__(method)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> blocking[S, P, R]: ...
    @overload
    def __get__(self, obj: Bridged[S], owner: type | None = None) -> Callable[P, R]: ...
    def __get__(self, obj: Bridged[S] | None, owner: type | None = None) -> Any:
        return self if obj is None else self.bind(obj)

    def make(self, method: Callable[..., Any], portal: Portal) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return portal.call(method(*args, **kwargs))

        return call


class iterating(_Crossing[S], Generic[S, P, T]):
    """A method returning an async iterator: an iterator stepping on the portal."""

    def __init__(self, method: Callable[Concatenate[S, P], AsyncIterator[T]]) -> None:
        super().__init__(method)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> iterating[S, P, T]: ...
    @overload
    def __get__(self, obj: Bridged[S], owner: type | None = None) -> Callable[P, Iterator[T]]: ...
    def __get__(self, obj: Bridged[S] | None, owner: type | None = None) -> Any:
        return self if obj is None else self.bind(obj)

    def make(self, method: Callable[..., Any], portal: Portal) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return portal.iterate(method(*args, **kwargs))

        return call


class entering(_Crossing[S], Generic[S, P, T, U]):
    """A method returning an async context manager: a context manager entered and
    left on the portal, yielding ``into(value, portal)``."""

    def __init__(
        self,
        method: Callable[Concatenate[S, P], AbstractAsyncContextManager[T]],
        into: Callable[[T, Portal], U],
    ) -> None:
        super().__init__(method)
        self.into = into

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> entering[S, P, T, U]: ...
    @overload
    def __get__(
        self, obj: Bridged[S], owner: type | None = None
    ) -> Callable[P, AbstractContextManager[U]]: ...
    def __get__(self, obj: Bridged[S] | None, owner: type | None = None) -> Any:
        return self if obj is None else self.bind(obj)

    def make(self, method: Callable[..., Any], portal: Portal) -> Callable[..., Any]:
        into = self.into

        def call(*args: Any, **kwargs: Any) -> Any:
            return _Entered(method(*args, **kwargs), portal, into)

        return call


class plain(_Crossing[S], Generic[S, P, R]):
    """A method that does not wait: called directly."""

    def __init__(self, method: Callable[Concatenate[S, P], R]) -> None:
        super().__init__(method)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> plain[S, P, R]: ...
    @overload
    def __get__(self, obj: Bridged[S], owner: type | None = None) -> Callable[P, R]: ...
    def __get__(self, obj: Bridged[S] | None, owner: type | None = None) -> Any:
        return self if obj is None else self.bind(obj)

    def make(self, method: Callable[..., Any], portal: Portal) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


class store(Generic[B]):
    """An attribute holding another async object, seen through its bridged class."""

    name: str

    def __init__(self, bridged: Callable[[Any, Portal], B]) -> None:
        self.bridged = bridged

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> store[B]: ...
    @overload
    def __get__(self, obj: Bridged[Any], owner: type | None = None) -> B: ...
    def __get__(self, obj: Bridged[Any] | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        made = obj.__dict__[self.name] = self.bridged(getattr(obj.aio, self.name), obj._portal)
        return made


class _Entered(Generic[T, U]):
    def __init__(
        self,
        manager: AbstractAsyncContextManager[T],
        portal: Portal,
        into: Callable[[T, Portal], U],
    ) -> None:
        self._manager = manager
        self._portal = portal
        self._into = into

    def __enter__(self) -> U:
        return self._into(self._portal.call(self._manager.__aenter__()), self._portal)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return self._portal.call(self._manager.__aexit__(exc_type, exc, tb))


# ---------------------------------------------------------------- what context managers yield


class SyncWatch(Bridged[Watch]):
    """A :class:`~stateport.ports.table.Watch` with a blocking ``wait``."""

    wait = blocking(Watch.wait)

    @property
    def pk(self) -> str:
        return self.aio.pk


class SyncBlobReader(Bridged[BlobReader]):
    """A :class:`~stateport.ports.blob.BlobReader`: iterate it for the (verified) chunks."""

    read = blocking(BlobReader.read)
    __iter__ = iterating(BlobReader.__aiter__)

    @property
    def size(self) -> int:
        return self.aio.size

    @property
    def digest(self) -> ContentDigest:
        return self.aio.digest
