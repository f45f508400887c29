"""Store-assigned integer ids: increasing, never reused, on every engine.

Engines without auto-increment (DynamoDB, the portable mode of every engine)
still get dense integer ids: one counter item per kind, ``(pk, kind) ->
{"last": n}``, moved in the *same transaction* as the record the id names.
So a failed write takes no id, an id is never handed out twice, and ids only
grow (a deleted record's id is never reused). Two writers that take the same
id collide on the counter's condition; the loser takes the next one.

The counter's last value and version are kept in a bounded cache, so a store
that is the only writer allocates without reading the counter first; a stale
guess fails the condition and costs one retry with a fresh read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from .._cache import BoundedCache
from .._retry import Retry, moved_on, retrying
from ..errors import ValidationError
from ..ports.table import NotExists, Op, Put, TablePort, Update, VersionEquals

__all__ = ["ID_TAG", "IdAllocator"]

ID_TAG: Final = "id-counter"
"""The tag of the counter operation (a Conflict with it means: id taken, retry)."""

_CACHE_SIZE: Final = 1024
_ABSENT: Final = NotExists()

Build = Callable[[int], Sequence[Op] | Awaitable[Sequence[Op]]]


class IdAllocator:
    """The id counters kept in partition ``pk`` of ``table`` (one item per kind)."""

    def __init__(self, table: TablePort, pk: str) -> None:
        self.table = table
        self.pk = pk
        self._seen: BoundedCache[str, tuple[int, int]] = BoundedCache(_CACHE_SIZE)

    async def last(self, kind: str) -> int:
        """The highest id of ``kind`` handed out so far (0 when none)."""
        item = await self.table.get(self.pk, kind)
        return 0 if item is None else int(item.attrs["last"])

    async def take(self, kind: str, *, fresh: bool = False) -> tuple[int, Op]:
        """The next id of ``kind`` and the operation that takes it.

        The operation (tagged :data:`ID_TAG`) must go into the same transaction
        as the record the id names; if another writer took the id first, it
        fails with a :class:`~stateport.errors.Conflict` carrying that tag.
        With ``fresh`` the counter is read rather than taken from the cache.
        """
        seen = None if fresh else self._seen.get(kind)
        if seen is None:
            item = await self.table.get(self.pk, kind)
            if item is None:
                return 1, Put(self.pk, kind, {"last": 1}, _ABSENT, tag=ID_TAG)
            seen = (int(item.attrs["last"]), item.version)
        last, version = seen
        return last + 1, Update(
            self.pk, kind, {"last": last + 1}, condition=VersionEquals(version), tag=ID_TAG
        )

    def taken(self, kind: str, ident: int, op: Op) -> None:
        """Record that the transaction holding ``op`` (from :meth:`take`) committed."""
        version = 1 if isinstance(op, Put) else _version_after(op)
        self._seen.put(kind, (ident, version))

    async def create(
        self, kind: str, build: Build, *, retry_on: Sequence[str] = (), what: str | None = None
    ) -> int:
        """Take the next id of ``kind`` and write ``build(id)`` with it, atomically.

        ``build`` returns the operations of the record (it may be async, and it
        runs again with the next id if the id was taken meanwhile). A conflict
        of an operation tagged with one of ``retry_on`` also runs it again (its
        owner expects such races); any other conflict reaches the caller.
        Returns the id.
        """
        if not kind or type(kind) is not str:
            raise ValidationError(f"an id kind is a non-empty str, got {kind!r}")
        tags = (ID_TAG, *retry_on)
        fresh = False

        async def attempt() -> int:
            nonlocal fresh
            ident, counter = await self.take(kind, fresh=fresh)
            built = build(ident)
            ops = built if isinstance(built, Sequence) else await built
            try:
                with moved_on(*tags):
                    await self.table.transact([counter, *ops])
            except Retry:
                fresh = True  # the cached guess (or the id) was taken: read the counter
                self._seen.discard(kind)
                raise
            self.taken(kind, ident, counter)
            return ident

        return await retrying(attempt, what=what or f"the {kind} id counter")


def _version_after(op: Op) -> int:
    cond = op.condition
    assert isinstance(cond, VersionEquals)
    return cond.version + 1
