"""The base of every conformance class: one hook that names a fresh store.

Every suite (the table port, the blob port, the engine, each domain store) is
run through a whole store opened by URL, so a backend proves all of them by
implementing :meth:`StoreConformance.store_url` once::

    class TestMyRuns(MyEngineHooks, RunLedgerConformance):
        def store_url(self) -> str:
            return f"mydb://test/{uuid.uuid4().hex}"

Tests that need something only some engines offer (several processes, data
that survives a reopen, migrations) say so with :func:`needs`; they skip, with
the capability's description as the reason, on engines whose
:attr:`~stateport.ports.Engine.capabilities` lack it. The engine declares its
capabilities itself, so a test class cannot claim one its engine lacks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest

from ..ports.engine import Capability
from ._support import needed_capabilities

if TYPE_CHECKING:
    from ..store import Stateport

__all__ = ["StoreConformance"]

T = TypeVar("T")


class StoreConformance(ABC):
    """Implement :meth:`store_url`; the suites do the rest.

    A test class (named ``Test...``) that leaves a hook of its suite
    unimplemented is refused when it is defined, with the names of the missing
    hooks: pytest would otherwise pass over an abstract class without a word,
    and the whole suite would silently not run.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("Test"):
            return
        missing = sorted(
            name
            for name in dir(cls)
            if getattr(getattr(cls, name, None), "__isabstractmethod__", False)
        )
        if missing:
            suites = [c.__name__ for c in cls.__mro__ if c.__module__.startswith(__package__ or "")]
            raise TypeError(
                f"{cls.__name__} does not implement {', '.join(missing)}, "
                f"hooks of {suites[0] if suites else 'the conformance kit'}: pytest would skip it "
                "without a word, so it is refused"
            )

    tmp_path: Path
    """A fresh directory for each test, for engines that keep files."""
    _paths: int

    _declared: ClassVar[dict[type, frozenset[Capability]]] = {}

    @abstractmethod
    def store_url(self) -> str:
        """A URL naming a fresh, empty store, a different one on each call.

        The suites open it (migrating it), sometimes several times, from several
        threads or processes when the engine declares it can; the same URL must
        then name the same store. For engines that keep files,
        :meth:`fresh_path` gives a new path in pytest's temporary directory.
        """

    def open_store(self) -> AbstractAsyncContextManager[Stateport]:
        """Open a fresh store (``async with self.open_store() as sp``)."""
        import stateport

        return stateport.open(self.store_url())

    def capabilities(self) -> frozenset[Capability]:
        """What the engine under test declares (learnt by opening one store, once)."""
        # one lookup per class defining store_url: the suites run with it share it
        cls = next(c for c in type(self).__mro__ if "store_url" in vars(c))
        found = StoreConformance._declared.get(cls)
        if found is None:
            found = StoreConformance._declared[cls] = _run(_capabilities_of(self.store_url()))
        return found

    def require(self, *capabilities: Capability) -> None:
        """Skip the running test, saying why, unless the engine offers ``capabilities``."""
        offered = self.capabilities()
        for c in capabilities:
            if c not in offered:
                pytest.skip(f"the engine does not offer {c.name}: {c.value}")

    def fresh_path(self, name: str) -> Path:
        """A path under ``self.tmp_path`` that no earlier call of this test returned."""
        self._paths += 1
        return self.tmp_path / f"{name}{self._paths}"

    @pytest.fixture(autouse=True)
    def _conformance_setup(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._paths = 0
        self.require(*needed_capabilities(request.function))


async def _capabilities_of(url: str) -> frozenset[Capability]:
    import stateport

    async with stateport.open(url) as sp:
        return frozenset(sp.engine.capabilities)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end on a fresh loop, also from inside a running one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
