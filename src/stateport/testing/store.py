"""The base of the domain conformance classes: one hook that opens a whole store.

Every domain port (runs, releases, CAS, council, work tracking, ...) is tested
through a :class:`~stateport.Stateport`, so a backend proves all of them by
implementing :meth:`StoreConformance.open_store` once::

    class TestMyRuns(RunLedgerConformance):
        def open_store(self):
            return stateport.open("mydb://test")
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import Stateport

__all__ = ["StoreConformance"]


class StoreConformance:
    """Implement :meth:`open_store`; override :meth:`shared_url` for multi-process tests."""

    def open_store(self) -> AbstractAsyncContextManager[Stateport]:
        """An async context manager yielding a fresh, empty, migrated store."""
        raise NotImplementedError

    def shared_url(self) -> str | None:
        """A store URL several processes can open at once (None skips those tests).

        Each call must name a fresh, empty store.
        """
        return None

    def reopen_url(self) -> str | None:
        """A store URL whose data survives close and reopen (None skips those tests).

        Each call must name a fresh, empty store; tests open it several times.
        """
        return self.shared_url()
