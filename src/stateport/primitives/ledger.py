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
from typing import Any, Final, NoReturn

from .._cache import BoundedCache
from .._retry import Retry, moved_on, retrying
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

__all__ = ["ENTRY_TAG", "HEAD_SK", "HEAD_TAG", "LEDGER_TAGS", "PREV_TAG", "Entry", "Ledger"]

HEAD_SK: Final = "head"
ENTRY_PREFIX: Final = "e#"
SEQ_WIDTH: Final = 20
MAX_SEQ: Final = 10**SEQ_WIDTH - 1
_CACHE_SIZE: Final = 4096
_PAGE: Final = 1000
_ALL_ENTRIES: Final = KeyRange.prefix(ENTRY_PREFIX)

HEAD_TAG: Final = "ledger.head"
"""The tag of an operation on a ledger's head (its creation, its open check, its update)."""
PREV_TAG: Final = "ledger.prev"
"""The tag of an append's check that the entry before the first new one exists."""
ENTRY_TAG: Final = "ledger.entry"
"""The tag of an append's puts of new entries (a Conflict with it: the seq is taken)."""
LEDGER_TAGS: Final = frozenset({HEAD_TAG, PREV_TAG, ENTRY_TAG})
"""The tags of a ledger's own operations."""


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


Then = Callable[[Item, int], Mapping[str, Any]]
"""After a truncation: the head (closed for it) and the last entry kept -> the
attributes to set as the stream reopens."""


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
        self._last: BoundedCache[str, int] = BoundedCache(_CACHE_SIZE)
        self._open: BoundedCache[str, Check] = BoundedCache(_CACHE_SIZE)

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
        return Put(self.pk(stream), HEAD_SK, {**attrs, "open": open}, _ABSENT, tag=HEAD_TAG)

    def entry_op(self, stream: str, seq: int, attrs: Mapping[str, Any]) -> Put:
        """The operation that writes entry ``seq`` (fails if it exists)."""
        return Put(self.pk(stream), entry_sk(seq), attrs, _ABSENT, tag=ENTRY_TAG)

    async def create(self, stream: str, attrs: Mapping[str, Any], *, open: bool = True) -> None:
        """Create the head of ``stream``; :class:`Conflict` if it exists."""
        op = self.create_op(stream, attrs, open=open)
        try:
            await self.table.transact([op])
        except Conflict as e:
            if e.tag == HEAD_TAG:
                raise Conflict(
                    f"{self.noun} {stream!r} already exists",
                    op_index=0,
                    key=e.key,
                    condition=e.condition,
                    tag=HEAD_TAG,
                ) from None
            raise
        if open:  # a new item's version is 1 (a guarantee of the table port)
            self._open.put(stream, Check(op.pk, HEAD_SK, VersionEquals(1), tag=HEAD_TAG))
            self._last.put(stream, 0)

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

        async def attempt() -> Item:
            head = await self.require_head(stream)
            change = decide(head)
            with moved_on(HEAD_TAG):  # the head moved: decide again on the new one
                new = await self.table.update(
                    pk, HEAD_SK, set=change, condition=VersionEquals(head.version), tag=HEAD_TAG
                )
            if new.attrs.get("open") is True:  # appends here check the new version
                self._open.put(stream, Check(pk, HEAD_SK, VersionEquals(new.version), tag=HEAD_TAG))
            else:
                self._open.discard(stream)
            return head

        return await retrying(attempt, what=f"{self.noun} {stream!r}")

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

        async def attempt() -> int:
            nonlocal guess
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
            except Retry:
                guess = None
                raise

        return await retrying(attempt, what=f"{self.noun} {stream!r}")

    def append_ops(
        self,
        stream: str,
        first: int,
        entries: Sequence[Mapping[str, Any]],
        *,
        head_set: Mapping[str, Any],
        expect_prev: Mapping[str, Any] | None = None,
    ) -> list[Op]:
        """The operations of :meth:`append`, for a transaction the caller runs.

        They write ``entries`` as ``first, first + 1, ...`` and set ``head_set``
        on the head (which must be open). A conflict of one of them carries
        :data:`HEAD_TAG` (the stream is closed), :data:`PREV_TAG` or
        :data:`ENTRY_TAG` (another writer appended first: read and try again).
        """
        if not entries:
            raise ValidationError("nothing to append")
        if type(first) is not int or not 1 <= first <= MAX_SEQ - len(entries):
            raise ValidationError(f"seq must be an int from 1 to {MAX_SEQ}, got {first!r}")
        pk = self.pk(stream)
        head = Update(pk, HEAD_SK, head_set, condition=_OPEN, tag=HEAD_TAG)
        return _entry_ops(pk, head, first, entries, expect_prev)

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
            head: Op = Update(pk, HEAD_SK, head_set, condition=_OPEN, tag=HEAD_TAG)
        else:
            head = self._open.get(stream) or await self._open_check(stream, pk)
        ops = _entry_ops(pk, head, first, entries, expect_prev)
        ops.extend(extra_ops)
        try:
            await self.table.transact(ops)
        except Conflict as e:
            self._last.discard(stream)
            if e.tag not in LEDGER_TAGS or e.key is None or e.key[0] != pk:
                raise  # an extra op's condition: the owner's to explain
            if e.tag == HEAD_TAG:
                self._open.discard(stream)
                if not head_set:
                    await self._open_check(stream, pk)  # raises if the head is not open
                    raise Retry("its head changed") from None  # open still: try again
                self._explain_head(stream, await self.require_head(stream))
            if not fixed and (expect_prev is None or e.tag == ENTRY_TAG):
                raise Retry("another writer appended first") from None
            latest = await self.latest(stream)
            last = 0 if latest is None else latest.seq
            if not fixed and last != first - 1:
                raise Retry("another writer appended first") from None
            if e.tag == ENTRY_TAG:
                what = f"seq {_seq_of(e.key[1])} already exists"
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
                tag=e.tag,
            ) from None
        self._last.put(stream, first + len(entries) - 1)
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
        check = Check(pk, HEAD_SK, VersionEquals(head.version), tag=HEAD_TAG)
        self._open.put(stream, check)
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
        self,
        stream: str,
        seq: int,
        *,
        allow: Callable[[Item], None] | None = None,
        then: Then | None = None,
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

        ``then(head, kept)`` (``kept``: the number of the last entry kept, 0 for
        none) returns attributes to set on the head in the step that reopens
        the stream, which then opens whatever its state before; that step must
        apply, or the truncation raises :class:`Conflict` (run it again). So a
        truncation and a change of the head's state are one operation to
        every reader.
        """
        if type(seq) is not int or seq < 0:
            raise ValidationError(f"seq must be an int >= 0, got {seq!r}")

        async def cut() -> int:
            return seq

        return await self._truncate(stream, cut, allow, then)

    async def truncate_before_first(
        self,
        stream: str,
        first: Callable[[Entry], bool],
        *,
        allow: Callable[[Item], None] | None = None,
        then: Then | None = None,
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

        return await self._truncate(stream, cut, allow, then)

    async def _truncate(
        self,
        stream: str,
        cut: Callable[[], Awaitable[int]],
        allow: Callable[[Item], None] | None,
        then: Then | None,
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
                tag=HEAD_TAG,
            )
        except Conflict:
            raise changed from None
        self._last.discard(stream)
        self._open.discard(stream)
        seq = await cut()
        same_head = Check(pk, HEAD_SK, VersionEquals(head.version), tag=HEAD_TAG)
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
                if e.tag == HEAD_TAG:
                    raise changed from None
                raise
            deleted += len(page.items)
        if then is not None:
            try:
                await self.table.update(
                    pk,
                    HEAD_SK,
                    set={**then(head, seq), "open": True},
                    remove=["truncating"],
                    condition=VersionEquals(head.version),
                    tag=HEAD_TAG,
                )
            except Conflict:
                raise changed from None
            return deleted
        with contextlib.suppress(Conflict):  # changed at the last moment: it decided `open`
            await self.table.update(
                pk,
                HEAD_SK,
                set={"open": reopen},
                remove=["truncating"],
                condition=VersionEquals(head.version),
            )
        return deleted


def _entry_ops(
    pk: str,
    head: Op,
    first: int,
    entries: Sequence[Mapping[str, Any]],
    expect_prev: Mapping[str, Any] | None,
) -> list[Op]:
    """``head``, the check of the entry before ``first`` and the puts of ``entries``."""
    ops: list[Op] = [head]
    if first > 1:
        prev: Condition | list[Condition] = _EXISTS
        if expect_prev:
            prev = [_EXISTS, *(AttrEquals(k, v) for k, v in expect_prev.items())]
        ops.append(Check(pk, entry_sk(first - 1), prev, tag=PREV_TAG))
    elif expect_prev:
        raise ValidationError("expect_prev needs an entry before the first one")
    if len(entries) == 1:
        ops.append(Put(pk, entry_sk(first), entries[0], _ABSENT, tag=ENTRY_TAG))
    else:
        ops.extend(
            Put(pk, entry_sk(first + i), a, _ABSENT, tag=ENTRY_TAG) for i, a in enumerate(entries)
        )
    return ops


def _entry(item: Item) -> Entry:
    return Entry(_seq_of(item.sk), item.attrs)
