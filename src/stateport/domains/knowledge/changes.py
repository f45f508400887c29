"""The change feed: one record per mutation, numbered in commit order.

The feed is one :class:`~stateport.primitives.Ledger` stream. Every mutation of
a collection, artifact, revision or relationship is one ledger append whose
entries are its change records and whose extra operations are the mutation
itself, so the records commit with the change they describe, or not at all.
The ledger numbers entries 1, 2, 3, ... without gaps and an entry can only
commit after its predecessor, so sequence order is commit order: a consumer
that read up to ``n`` and asks for what follows never misses a record that
committed late. The price is that mutations of one repository commit one
after another (docs/decisions/0031-knowledge-change-feed-and-queries.md).

Each record is in up to three secondary-index partitions ``changes-of#<id>``
(the entity changed, and for a relationship its two endpoints) under the
constant sort key ``"c"``: an index orders equal sort keys by the item's own
key, ``e#<seq>``, so an entity's history comes back in sequence order.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

from ... import _time
from ..._retry import moved_on
from ...digest import ContentDigest
from ...errors import Conflict, StateportError, ValidationError
from ...ports.table import Item, Op, TablePort
from ...primitives.ledger import ENTRY_TAG, PREV_TAG, Entry, Ledger
from . import keys
from .models import ChangeKind, ChangeRecord

__all__ = ["ChangeFeed", "change"]

_INDEXES: Final = (("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk"), ("gsi3pk", "gsi3sk"))
_PAGE: Final = 1000


def change(
    kind: ChangeKind,
    entity_id: str,
    *,
    at: str,
    actor: str | None,
    collection_id: str | None = None,
    artifact_id: str | None = None,
    revision: int | None = None,
    old_digest: str | None = None,
    new_digest: str | None = None,
    details: dict[str, Any] | None = None,
    also: Sequence[str] = (),
) -> dict[str, Any]:
    """The attributes of one change record; ``also`` names further entities whose
    history it belongs to (a relationship's endpoints), at most two."""
    attrs: dict[str, Any] = {
        "kind": kind.value,
        "entity": entity_id,
        "collection": collection_id,
        "artifact": artifact_id,
        "revision": revision,
        "old": old_digest,
        "new": new_digest,
        "actor": actor,
        "at": at,
        "details": details or {},
    }
    owners = list(dict.fromkeys([entity_id, *also]))
    for (pk_attr, sk_attr), owner in zip(_INDEXES, owners, strict=False):
        attrs[pk_attr] = keys.history_index(owner)
        attrs[sk_attr] = keys.HISTORY_SK
    return attrs


def _record(seq: int, a: dict[str, Any]) -> ChangeRecord:
    old, new = a["old"], a["new"]
    return ChangeRecord(
        seq=seq,
        kind=ChangeKind(a["kind"]),
        entity_id=a["entity"],
        collection_id=a["collection"],
        artifact_id=a["artifact"],
        revision=a["revision"],
        old_digest=None if old is None else ContentDigest(old),
        new_digest=None if new is None else ContentDigest(new),
        actor=a["actor"],
        at=_time.from_text(a["at"]),
        details=a["details"],
    )


def _seq_of(item: Item) -> int:
    return int(item.sk.removeprefix("e#"))


class ChangeFeed:
    """The repository's change records (one ledger stream)."""

    def __init__(self, table: TablePort) -> None:
        self.table = table
        self.ledger = Ledger(table, keys.FEED_KIND, noun="knowledge change feed")
        self.pk = self.ledger.pk(keys.FEED_STREAM)
        self._ready = False
        limit = table.capabilities.max_transaction_ops
        self.room: int | None = None if limit is None else limit - 2
        """Operations one commit may carry (records and mutation), None: no limit."""

    async def _ensure(self) -> None:
        """Create the feed's head on first use (idempotent, race-free)."""
        if self._ready:
            return
        if await self.ledger.head(keys.FEED_STREAM) is None:
            with contextlib.suppress(Conflict):  # another writer created it first
                await self.ledger.create(keys.FEED_STREAM, {})
        self._ready = True

    async def commit(
        self,
        records: Sequence[dict[str, Any]],
        ops: Sequence[Op],
        *,
        after: int | None = None,
        retry: Sequence[str] = (),
        refuse: Mapping[str, Callable[[], StateportError]] | None = None,
    ) -> int:
        """Write ``ops`` and append ``records`` in one transaction; return the first
        record's sequence number. If nothing is written, a failing condition of
        ``ops`` tagged with one of ``retry`` raises
        :class:`~stateport.primitives.Retry` (the caller's loop reads again), one
        tagged as a key of ``refuse`` raises the error it builds (a duplicate name,
        a missing run), and any other raises its :class:`Conflict`.

        With ``after`` (a :meth:`last_seq` read before the caller looked at the
        repository) the commit applies only if no mutation committed since, else
        :class:`~stateport.primitives.Retry`. Every mutation appends here, so this
        guards what the caller saw (an empty collection, an artifact without
        relationships) against any concurrent change.
        """
        await self._ensure()
        fixed = None if after is None else after + 1
        guarded = (ENTRY_TAG, PREV_TAG) if fixed is not None else ()
        try:
            with moved_on(*retry, *guarded):
                return await self.ledger.append(
                    keys.FEED_STREAM, list(records), first_seq=fixed, extra_ops=list(ops)
                )
        except Conflict as e:
            make = None if refuse is None or e.tag is None else refuse.get(e.tag)
            if make is None:
                raise
            raise make() from None

    # ---- reads ----------------------------------------------------------------

    async def after(self, after: int, limit: int) -> list[ChangeRecord]:
        """At most ``limit`` records numbered above ``after``, in order."""
        if type(after) is not int or after < 0:
            raise ValidationError(f"after must be an int >= 0, got {after!r}")
        entries = await self.ledger.entries(keys.FEED_STREAM, after=after, limit=limit)
        return [_record(e.seq, e.attrs) for e in entries]

    async def last_seq(self) -> int:
        """The number of the last record (0 when there is none)."""
        latest: Entry | None = await self.ledger.latest(keys.FEED_STREAM)
        return 0 if latest is None else latest.seq

    async def of(self, entity_id: str) -> list[ChangeRecord]:
        """Every record of ``entity_id``'s history, in sequence order."""
        pk = keys.history_index(entity_id)
        streams: list[list[tuple[int, dict[str, Any]]]] = []
        for index in ("gsi1", "gsi2", "gsi3"):
            found: list[tuple[int, dict[str, Any]]] = []
            async for items in self.table.query_pages(pk, index=index, page_size=_PAGE):
                found.extend((_seq_of(i), i.attrs) for i in items if i.pk == self.pk)
            streams.append(found)
        return [_record(seq, a) for seq, a in heapq.merge(*streams, key=lambda p: p[0])]

    async def watch(self, after: int, poll_interval: float) -> AsyncIterator[ChangeRecord]:
        """Every record numbered above ``after``, then each new one as it commits (forever)."""
        if type(after) is not int or after < 0:
            raise ValidationError(f"after must be an int >= 0, got {after!r}")
        if not isinstance(poll_interval, (int, float)) or not poll_interval > 0:
            raise ValidationError(f"poll_interval must be > 0, got {poll_interval!r}")
        last = after
        async with self.table.watch(self.pk) as watch:
            while True:
                batch = await self.after(last, _PAGE)
                for record in batch:
                    yield record
                    last = record.seq
                if len(batch) < _PAGE:
                    await watch.wait(poll_interval)
