"""Ledgers: ordered, sequenced, stateful streams, written once on the table port.

A ledger is one partition of the table::

    pk = "<kind>#<stream>"
    sk = "head"                      the head: {"open": bool, ...the owner's attributes}
    sk = "e#<seq as 20 digits>"      entry 1, 2, 3, ...: the owner's attributes

Appending entries ``n .. m`` is one transaction of condition checks and puts:

* the head is unchanged since it was seen open (``VersionEquals``: every
  change of a head changes its version, and heads are never deleted, so this
  says "open" without the engine reading the attributes), or, with
  ``head_set``, ``AttrEquals("open", True)`` on an update of the head;
* entry ``n - 1`` exists (unless ``n == 1``), optionally with expected values;
* entries ``n .. m`` do not exist yet.

So a duplicate sequence number and a gap are both refused by the engine, under
any concurrency, and an entry can only commit after its predecessor committed:
a reader that sees entry ``n`` also sees every entry before it (tailing readers
never skip an entry that commits late). The head holds no counter, so appends
write only their entries; the last sequence number is the last entry's.

Truncation deletes entries from the highest down, so every intermediate state
(a crash mid-way, on an engine that must split the deletes over several
transactions) is still a prefix, and appends continue from the last kept entry.
See docs/decisions/0009-ledger-and-ref-registry.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeVar

from ..errors import Conflict, InvalidTransition, NotFound, ValidationError
from ..ports.table import (
    AttrEquals,
    Check,
    Condition,
    Delete,
    Exists,
    Item,
    KeyRange,
    NotExists,
    Op,
    Put,
    TablePort,
    Update,
    VersionEquals,
)

__all__ = ["HEAD_SK", "Entry", "Ledger"]

HEAD_SK: Final = "head"
ENTRY_PREFIX: Final = "e#"
SEQ_WIDTH: Final = 20
MAX_SEQ: Final = 10**SEQ_WIDTH - 1
_CACHE_SIZE: Final = 4096
_MAX_RETRIES: Final = 1000
_PAGE: Final = 1000
_ALL_ENTRIES: Final = KeyRange.prefix(ENTRY_PREFIX)
_V = TypeVar("_V")


_ENTRY_FORMAT: Final = f"{ENTRY_PREFIX}%0{SEQ_WIDTH}d"
_OPEN: Final = AttrEquals("open", True)
_EXISTS: Final = Exists()
_ABSENT: Final = NotExists()


def entry_sk(seq: int) -> str:
    """The sort key of entry ``seq``: fixed width, so byte order is numeric order."""
    return _ENTRY_FORMAT % seq


def _after(seq: int) -> KeyRange:
    """The entries numbered above ``seq`` (and not the head, which sorts after them)."""
    return _ALL_ENTRIES if seq == 0 else KeyRange.between(entry_sk(seq + 1), entry_sk(MAX_SEQ))


def _seq_of(sk: str) -> int:
    return int(sk[len(ENTRY_PREFIX) :])


@dataclass(slots=True)  # not frozen: one is built per entry read (as Item)
class Entry:
    """One entry of a ledger: its sequence number and its attributes."""

    seq: int
    attrs: dict[str, Any]


class Ledger:
    """The ledgers of one kind (``"run"``, ``"release"``, ...) on a table port.

    ``noun`` names a stream in error messages (``"run"``) and ``status_attr``
    names the head attribute shown when a closed stream refuses an append.
    The ledger validates sequence numbers and its own keys; the owner validates
    the attributes it stores.
    """

    def __init__(
        self, table: TablePort, kind: str, *, noun: str = "stream", status_attr: str = "status"
    ) -> None:
        if not kind or "#" in kind:
            raise ValueError(f"a ledger kind is a non-empty name without '#', got {kind!r}")
        self.table = table
        self.kind = kind
        self.noun = noun
        self.status_attr = status_attr
        self._prefix = f"{kind}#"
        limit = table.capabilities.max_transaction_ops
        self._room = None if limit is None else limit - 2  # entries per append, at most
        # bounded caches: stream -> the last seq seen here; stream -> the check that
        # its head is unchanged since it was seen open (see _open_check)
        self._last: dict[str, int] = {}
        self._open: dict[str, Check] = {}

    # ---- keys -------------------------------------------------------------

    def pk(self, stream: str) -> str:
        """The partition key of ``stream``."""
        if not isinstance(stream, str) or not stream:
            raise ValidationError(f"a {self.noun} id must be a non-empty str, got {stream!r}")
        return self._prefix + stream

    def stream_of(self, pk: str) -> str:
        """The stream id of partition key ``pk``."""
        return pk[len(self._prefix) :]

    # ---- heads ------------------------------------------------------------

    def create_op(self, stream: str, attrs: Mapping[str, Any], *, open: bool = True) -> Put:
        """The operation that creates the head of ``stream`` (fails if it exists)."""
        return Put(self.pk(stream), HEAD_SK, {**attrs, "open": open}, _ABSENT)

    def entry_op(self, stream: str, seq: int, attrs: Mapping[str, Any]) -> Put:
        """The operation that writes entry ``seq`` (fails if it exists)."""
        return Put(self.pk(stream), entry_sk(seq), attrs, _ABSENT)

    async def create(self, stream: str, attrs: Mapping[str, Any], *, open: bool = True) -> None:
        """Create the head of ``stream``; :class:`Conflict` if it exists."""
        op = self.create_op(stream, attrs, open=open)
        try:
            await self.table.transact([op])
        except Conflict as e:
            if e.op_index == 0:
                raise Conflict(
                    f"{self.noun} {stream!r} already exists",
                    op_index=0,
                    key=e.key,
                    condition=e.condition,
                ) from None
            raise
        if open:  # a new item's version is 1 (a guarantee of the table port)
            _keep(self._open, stream, Check(op.pk, HEAD_SK, VersionEquals(1)))
            _keep(self._last, stream, 0)

    async def head(self, stream: str) -> Item | None:
        """The head of ``stream``, or None."""
        return await self.table.get(self.pk(stream), HEAD_SK)

    async def require_head(self, stream: str) -> Item:
        """The head of ``stream``; :class:`NotFound` if there is none."""
        head = await self.head(stream)
        if head is None:
            raise NotFound(f"no {self.noun} {stream!r}")
        return head

    async def update_head(self, stream: str, decide: Callable[[Item], Mapping[str, Any]]) -> Item:
        """Set the head attributes ``decide(head)`` returns.

        ``decide`` sees the current head and returns the attributes to set, or
        raises (an :class:`InvalidTransition`, say) to refuse the change. The write is conditional
        on the head's version, so a concurrent change makes ``decide`` run again
        on the new head: a state machine checked in ``decide`` holds under any
        concurrency. Returns the head as it was when the change applied.
        """
        pk = self.pk(stream)
        for _ in range(_MAX_RETRIES):
            head = await self.require_head(stream)
            change = decide(head)
            try:
                new = await self.table.update(
                    pk, HEAD_SK, set=change, condition=VersionEquals(head.version)
                )
            except Conflict:
                continue  # the head moved (or went): decide again on the new one
            if new.attrs.get("open") is True:  # appends here check the new version
                _keep(self._open, stream, Check(pk, HEAD_SK, VersionEquals(new.version)))
            else:
                self._open.pop(stream, None)
            return head
        raise Conflict(f"{self.noun} {stream!r} kept changing; gave up after {_MAX_RETRIES} tries")

    # ---- appends ------------------------------------------------------------

    async def append(
        self,
        stream: str,
        entries: Sequence[Mapping[str, Any]],
        *,
        first_seq: int | None = None,
        expect_prev: Mapping[str, Any] | None = None,
        head_set: Mapping[str, Any] | None = None,
        extra_ops: Sequence[Op] = (),
    ) -> int:
        """Append ``entries`` in one transaction; return the first one's seq.

        With ``first_seq`` the entries get ``first_seq, first_seq + 1, ...``;
        if that is not exactly the next number, nothing is written and
        :class:`Conflict` says whether it duplicates or leaves a gap. Without
        it the ledger assigns the next numbers, retrying if another writer
        appended first. ``expect_prev`` adds conditions (attribute values) on
        the entry before the first new one; ``head_set`` updates the head in
        the same transaction. A missing head raises :class:`NotFound`; a closed
        one :class:`InvalidTransition`.
        """
        if not entries:
            raise ValidationError("nothing to append")
        room = self._room
        if room is not None and len(entries) > room - len(extra_ops):
            raise ValidationError(
                f"{len(entries)} entries in one append; at most {room - len(extra_ops)} fit "
                f"in one transaction of {room + 2} operations (DynamoDB's limit, enforced "
                "in portable mode): split the batch, or open the store with portable=false"
            )
        pk = self.pk(stream)
        fixed = first_seq is not None
        if fixed and (type(first_seq) is not int or not 1 <= first_seq <= MAX_SEQ - len(entries)):
            raise ValidationError(f"seq must be an int from 1 to {MAX_SEQ}, got {first_seq!r}")
        guess = self._last.get(stream)
        for _ in range(_MAX_RETRIES):
            if first_seq is not None:
                first = first_seq
            else:
                if guess is None:
                    latest = await self.latest(stream)
                    guess = 0 if latest is None else latest.seq
                first = guess + 1
            try:
                return await self._try_append(
                    pk, stream, first, entries, expect_prev, head_set, extra_ops, fixed=fixed
                )
            except _Moved:
                guess = None
        raise Conflict(f"{self.noun} {stream!r}: appends kept racing; gave up after retries")

    async def _try_append(
        self,
        pk: str,
        stream: str,
        first: int,
        entries: Sequence[Mapping[str, Any]],
        expect_prev: Mapping[str, Any] | None,
        head_set: Mapping[str, Any] | None,
        extra_ops: Sequence[Op],
        *,
        fixed: bool,
    ) -> int:
        if head_set:
            head: Op = Update(pk, HEAD_SK, head_set, condition=_OPEN)
        else:
            head = self._open.get(stream) or await self._open_check(stream, pk)
        ops: list[Op] = [head]
        if first > 1:
            prev: Condition | list[Condition] = _EXISTS
            if expect_prev:
                prev = [_EXISTS, *(AttrEquals(k, v) for k, v in expect_prev.items())]
            ops.append(Check(pk, entry_sk(first - 1), prev))
        elif expect_prev:
            raise ValidationError("expect_prev needs an entry before the first one")
        first_put = len(ops)
        if len(entries) == 1:
            ops.append(Put(pk, entry_sk(first), entries[0], _ABSENT))
        else:
            ops.extend(Put(pk, entry_sk(first + i), a, _ABSENT) for i, a in enumerate(entries))
        ops.extend(extra_ops)
        try:
            await self.table.transact(ops)
        except Conflict as e:
            self._last.pop(stream, None)
            if e.op_index is None or e.op_index >= first_put + len(entries):
                raise  # an extra op's condition: the owner's to explain
            if e.op_index == 0:
                self._open.pop(stream, None)
                if not head_set:
                    await self._open_check(stream, pk)  # raises if the head is not open
                    raise _Moved from None  # open still, only changed: try again
                self._explain_head(stream, await self.require_head(stream))
            if not fixed and (expect_prev is None or e.op_index >= first_put):
                raise _Moved from None
            latest = await self.latest(stream)
            last = 0 if latest is None else latest.seq
            if not fixed and last != first - 1:
                raise _Moved from None
            if e.op_index >= first_put:
                what = f"seq {first + e.op_index - first_put} already exists"
            elif latest is not None and latest.seq == first - 1:
                what = f"entry {first - 1} is not as expected ({e.condition})"
            else:
                what = f"seq {first} would leave a gap"
            raise Conflict(
                f"{self.noun} {stream!r}: {what}; the last seq is {last}, "
                f"so the next is {last + 1}",
                op_index=e.op_index,
                key=e.key,
                condition=e.condition,
            ) from None
        _keep(self._last, stream, first + len(entries) - 1)
        return first

    async def _open_check(self, stream: str, pk: str) -> Check:
        """The check an append makes on the head of ``stream``, which is open now.

        It checks the head's version, not its ``open`` attribute: the same
        guarantee (every change of the head, closing included, changes its
        version, and heads are never deleted), but an engine compares a number
        without reading the attributes. A head that changed and is still open
        fails the check, and the append reads it again and retries.
        """
        head = await self.require_head(stream)
        if head.attrs.get("open") is not True:
            self._explain_head(stream, head)
        check = Check(pk, HEAD_SK, VersionEquals(head.version))
        _keep(self._open, stream, check)
        return check

    def _explain_head(self, stream: str, head: Item) -> NoReturn:
        """Raise the InvalidTransition of appending to ``head``, which is not open."""
        if head.attrs.get("truncating") is True:
            raise InvalidTransition(
                f"{self.noun} {stream!r} is being truncated: it takes no entries until "
                "the truncation is done (run it again if it was cut short)"
            )
        status = head.attrs.get(self.status_attr, "closed")
        raise InvalidTransition(f"{self.noun} {stream!r} is {status}: it takes no more entries")

    # ---- reads --------------------------------------------------------------

    async def entries(
        self, stream: str, *, after: int = 0, limit: int | None = None
    ) -> list[Entry]:
        """Entries with ``seq > after``, in order, at most ``limit`` of them."""
        if type(after) is not int or after < 0:
            raise ValidationError(f"after must be an int >= 0, got {after!r}")
        pk = self.pk(stream)
        if after >= MAX_SEQ:
            return []
        key_range = _after(after)
        if limit is not None:
            page = await self.table.query(pk, key_range, limit=limit)
            return [_entry(i) for i in page.items]
        out: list[Entry] = []
        # page by page, without an async iterator's cost per entry
        async for items in self.table.query_pages(pk, key_range, page_size=_PAGE):
            out.extend([_entry(i) for i in items])
        return out

    async def iter_entries(self, stream: str, *, after: int = 0) -> AsyncIterator[Entry]:
        """Every entry with ``seq > after``, fetched page by page."""
        if type(after) is not int or after < 0:
            raise ValidationError(f"after must be an int >= 0, got {after!r}")
        if after >= MAX_SEQ:
            return
        key_range = _after(after)
        async for item in self.table.query_all(self.pk(stream), key_range):
            yield _entry(item)

    async def latest(self, stream: str) -> Entry | None:
        """The last entry, or None when the ledger has none."""
        page = await self.table.query(self.pk(stream), _ALL_ENTRIES, descending=True, limit=1)
        return _entry(page.items[0]) if page.items else None

    async def entry(self, stream: str, seq: int) -> Entry | None:
        """Entry ``seq``, or None."""
        item = await self.table.get(self.pk(stream), entry_sk(seq))
        return None if item is None else _entry(item)

    # ---- truncation -----------------------------------------------------------

    async def truncate_after(
        self, stream: str, seq: int, *, allow: Callable[[Item], None] | None = None
    ) -> int:
        """Delete every entry with a number above ``seq``; return how many.

        ``allow(head)`` may refuse the truncation (raise). The stream is closed
        while entries go, so no append can land in the middle of it and vanish;
        it reopens when the truncation is done (if it was open before). Deletes
        run from the highest number down, in as few transactions as the engine
        allows, each conditional on the head not having changed, so the ledger
        is a prefix at every moment: if the head changes meanwhile (a state
        change), the truncation stops with :class:`Conflict` and can be run
        again; a truncation cut short by a crash is finished by running it
        again. The next append continues at the last kept entry's number + 1.
        """
        if type(seq) is not int or seq < 0:
            raise ValidationError(f"seq must be an int >= 0, got {seq!r}")

        async def cut() -> int:
            return seq

        return await self._truncate(stream, cut, allow)

    async def truncate_before_first(
        self,
        stream: str,
        first: Callable[[Entry], bool],
        *,
        allow: Callable[[Item], None] | None = None,
    ) -> int:
        """Delete the first entry for which ``first(entry)`` holds and every entry
        after it; return how many. Chosen once the stream is closed, so an
        append racing the call is either kept or refused, never lost; otherwise
        as :meth:`truncate_after`."""

        async def cut() -> int:
            keep = 0
            async for entry in self.iter_entries(stream):
                if first(entry):
                    break
                keep = entry.seq
            return keep

        return await self._truncate(stream, cut, allow)

    async def _truncate(
        self,
        stream: str,
        cut: Callable[[], Awaitable[int]],
        allow: Callable[[Item], None] | None,
    ) -> int:
        pk = self.pk(stream)
        head = await self.require_head(stream)
        if allow is not None:
            allow(head)
        reopen = head.attrs.get("open") is True or head.attrs.get("truncating") is True
        changed = Conflict(
            f"{self.noun} {stream!r} changed while it was being truncated; "
            "the entries kept are still a prefix: run the truncation again"
        )
        try:
            head = await self.table.update(
                pk,
                HEAD_SK,
                set={"open": False, "truncating": True},
                condition=VersionEquals(head.version),
            )
        except Conflict:
            raise changed from None
        self._last.pop(stream, None)
        self._open.pop(stream, None)
        seq = await cut()
        same_head = Check(pk, HEAD_SK, VersionEquals(head.version))
        limit = self.table.capabilities.max_transaction_ops
        batch = limit - 1 if limit is not None else 10_000
        deleted = 0
        while seq < MAX_SEQ:
            page = await self.table.query(pk, _after(seq), descending=True, limit=batch)
            if not page.items:
                break
            try:
                await self.table.transact([same_head, *(Delete(pk, i.sk) for i in page.items)])
            except Conflict as e:
                if e.op_index == 0:
                    raise changed from None
                raise
            deleted += len(page.items)
        with contextlib.suppress(Conflict):  # changed at the last moment: it decided `open`
            await self.table.update(
                pk,
                HEAD_SK,
                set={"open": reopen},
                remove=["truncating"],
                condition=VersionEquals(head.version),
            )
        return deleted


class _Moved(Exception):
    """Internal: the ledger moved under an append (another writer's entries, or a
    change of the head); retry."""


def _keep(cache: dict[str, _V], stream: str, value: _V) -> None:
    """Set ``cache[stream]``, forgetting the stream remembered longest ago when full."""
    if len(cache) >= _CACHE_SIZE and stream not in cache:
        del cache[next(iter(cache))]
    cache[stream] = value


def _entry(item: Item) -> Entry:
    return Entry(_seq_of(item.sk), item.attrs)
