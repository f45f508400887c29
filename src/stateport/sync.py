"""The synchronous facade: ``with stateport.sync.open(url) as sp: sp.items.put(...)``.

It runs the async implementation on an event loop in a background thread and
bridges each call to it; there is no second implementation. Every store of
:class:`~stateport.Stateport` has a blocking twin (``sp.runs`` is a
``SyncRunLedger``) whose methods take the async methods' arguments, return
what they return once awaited, and raise the same errors; async iterators
become iterators, ``async with`` becomes ``with``. The signatures are the async
ones, for a type checker too (see :mod:`stateport._bridge`); the twins are
declared in :mod:`stateport._sync_stores`, generated from the async classes.
Plain attributes of an async object are on its ``aio`` (``sp.table.aio.capabilities``).
"""

from __future__ import annotations

from types import TracebackType as _TracebackType

from . import _sync_stores
from ._bridge import Portal as _Portal
from ._bridge import SyncBlobReader, SyncWatch
from ._sync_stores import *  # noqa: F403 - the twin of each store (generated)
from ._sync_stores import SyncStores as _SyncStores
from .snapshot import PAGE_SIZE as _PAGE_SIZE
from .snapshot import MoveSummary as _MoveSummary
from .snapshot import ProgressCallback as _ProgressCallback
from .store import Only as _Only
from .store import Stateport as _Stateport
from .store import _open
from .store import copy as _copy

__all__ = [
    "SyncBlobReader",
    "SyncStateport",
    "SyncWatch",
    "copy",
    "open",
    *_sync_stores.__all__,
]


class SyncStateport(_SyncStores):
    """A :class:`~stateport.Stateport` with blocking methods; close it with
    :meth:`close` or by leaving ``with``."""

    @property
    def url(self) -> str:
        """The URL the store was opened with."""
        return self.aio.url

    def close(self) -> None:
        """Close the store and stop its event loop thread. Idempotent."""
        portal = self._portal
        if portal.loop.is_closed():
            return
        try:
            portal.call(self.aio.aclose())
        finally:
            portal.close()

    def __enter__(self) -> SyncStateport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: _TracebackType | None,
    ) -> None:
        self.close()


def open(url: str | None = None, *, migrate: bool = True, create: bool = True) -> SyncStateport:
    """Open a store for blocking use; same arguments and errors as :func:`stateport.open`."""
    portal = _Portal()
    try:
        store: _Stateport = portal.call(_open(url, migrate, create))
    except BaseException:
        portal.close()
        raise
    return SyncStateport(store, portal)


def copy(
    source: str | SyncStateport,
    target: str | SyncStateport,
    *,
    only: _Only = None,
    resume: bool = False,
    progress: _ProgressCallback | None = None,
    page_size: int = _PAGE_SIZE,
) -> _MoveSummary:
    """:func:`stateport.copy`, blocking: same arguments (URLs, or stores opened
    here), same errors."""
    ends = [s.aio if isinstance(s, SyncStateport) else s for s in (source, target)]
    portal = _Portal()
    try:
        return portal.call(
            _copy(
                ends[0], ends[1], only=only, resume=resume, progress=progress, page_size=page_size
            )
        )
    finally:
        portal.close()
