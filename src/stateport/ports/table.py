"""The table port: a DynamoDB-shaped item store.

Items are addressed by ``(pk, sk)``: a partition key and a sort key, both
non-empty strings. Each item carries JSON attributes and a ``version`` that the
engine maintains (1 on creation, +1 on every put or update). Secondary indexes
are declared up front (:data:`DEFAULT_INDEXES`); an item appears in an index
when it has both of the index's key attributes as strings.

The public methods of :class:`TablePort` validate every input and then call
three small abstract methods that a backend implements (``_read``, ``_write``,
``_query``). Condition checking and the computation of the next state of an
item are written once here (:func:`resolve`) so that every engine agrees on
them.

Sort order is the order of the keys' UTF-8 bytes (which equals Python's code
point order): within a partition items are ordered by ``sk``; in an index by
``(index sk, pk, sk)``, so ties in the index sort key have a stable order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Protocol, TypeVar

from .. import _json
from ..errors import Conflict, ValidationError

__all__ = [
    "DEFAULT_INDEXES",
    "DYNAMODB_LIMITS",
    "AttrEquals",
    "Capabilities",
    "Check",
    "Condition",
    "Delete",
    "Exists",
    "IndexSpec",
    "Item",
    "KeyRange",
    "Limits",
    "NotExists",
    "Op",
    "Page",
    "Put",
    "StoredItem",
    "StoredPage",
    "TablePort",
    "Update",
    "VersionEquals",
    "Watch",
]

RESERVED_ATTRS: Final = frozenset({"pk", "sk"})
MAX_VERSION: Final = 2**63 - 1  # a version fits a signed 64-bit column on every engine
_DIGITS: Final = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # digit -> 0, else space
_DIGIT_RUN: Final = b"0" * 39  # after _DIGITS: 39 digits in a row, a number DynamoDB refuses
_ASCII_FAST: Final = 1024  # ASCII keys this short are within every engine's key limit


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A secondary index: items are found by the values of two attributes."""

    name: str
    pk_attr: str
    sk_attr: str


DEFAULT_INDEXES: Final = (
    IndexSpec("gsi1", "gsi1pk", "gsi1sk"),
    IndexSpec("gsi2", "gsi2pk", "gsi2sk"),
    IndexSpec("gsi3", "gsi3pk", "gsi3sk"),
)
"""The overloaded secondary indexes every stateport table provides."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits. ``None`` means the engine sets no practical limit."""

    max_item_bytes: int | None
    max_transaction_ops: int | None
    max_transaction_bytes: int | None
    max_pk_bytes: int | None
    max_sk_bytes: int | None


DYNAMODB_LIMITS: Final = Limits(
    max_item_bytes=400 * 1024,
    max_transaction_ops=100,
    max_transaction_bytes=4 * 1024 * 1024,
    max_pk_bytes=2048,
    max_sk_bytes=1024,
)
"""DynamoDB's limits, enforced by every engine in portable mode."""

UNLIMITED: Final = Limits(None, None, None, None, None)


def _tightest(a: Limits, b: Limits) -> Limits:
    """Each limit of ``a`` and ``b``, whichever is stricter."""

    def pick(x: int | None, y: int | None) -> int | None:
        return y if x is None else x if y is None else min(x, y)

    return Limits(
        pick(a.max_item_bytes, b.max_item_bytes),
        pick(a.max_transaction_ops, b.max_transaction_ops),
        pick(a.max_transaction_bytes, b.max_transaction_bytes),
        pick(a.max_pk_bytes, b.max_pk_bytes),
        pick(a.max_sk_bytes, b.max_sk_bytes),
    )


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A table's limits, whether DynamoDB's are enforced (``portable``), and whether
    its scan comes in key order (``ordered_scan``).

    What an engine offers beyond the port's guarantees (persistence, several
    processes, ...) is declared separately, as
    :class:`~stateport.ports.engine.Capability` values on the engine.
    """

    limits: Limits
    portable: bool
    ordered_scan: bool = False
    """Whether :meth:`TablePort.scan` returns items in ``(pk, sk)`` order (the SQL
    engines); otherwise its order is the engine's own (DynamoDB's hash order)."""

    @property
    def max_item_bytes(self) -> int | None:
        return self.limits.max_item_bytes

    @property
    def max_transaction_ops(self) -> int | None:
        return self.limits.max_transaction_ops


# --------------------------------------------------------------------------- items


@dataclass(slots=True)  # not frozen: one is built per item read, and frozen costs 3x
class Item:
    """A stored item: its key, its attributes and the engine-maintained version.

    A copy of what is stored: changing it changes nothing in the store.
    """

    pk: str
    sk: str
    attrs: dict[str, Any]
    version: int

    def to_dict(self) -> dict[str, Any]:
        """The item as one dict with ``pk`` and ``sk`` beside the attributes."""
        return {"pk": self.pk, "sk": self.sk, **self.attrs}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query: items in order, and a cursor when more follow."""

    items: list[Item]
    cursor: str | None

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


IndexKeys = tuple[tuple[str, str] | None, ...]
"""An item's key in each declared index (None where it is in no entry of that index)."""


@dataclass(slots=True)  # not frozen: one is built per item scanned
class StoredItem:
    """An item in the form the engines store it: its attributes as their canonical
    JSON text (``data``, see :func:`stateport._json.encode`) beside its key and
    version. :meth:`TablePort.scan_stored` returns these and
    :meth:`TablePort.restore_stored` takes them, so that state moves between
    stores without being decoded and encoded again."""

    pk: str
    sk: str
    version: int
    data: str

    def to_item(self) -> Item:
        """The item, its attributes decoded."""
        return Item(self.pk, self.sk, _json.decode(self.data), self.version)


@dataclass(frozen=True, slots=True)
class StoredPage:
    """One page of :meth:`TablePort.scan_stored`, and a cursor when more follow."""

    items: list[StoredItem]
    cursor: str | None


_T = TypeVar("_T")


class _Paged(Protocol[_T]):
    @property
    def items(self) -> list[_T]: ...

    @property
    def cursor(self) -> str | None: ...


def _long_digit_run(items: list[StoredItem]) -> bool:
    """Whether the data of ``items`` (or anything odd about it) may hold 39 digits in a row."""
    try:
        text = "".join([item.data for item in items])
        return _DIGIT_RUN in text.encode("utf-8").translate(_DIGITS)
    except (AttributeError, TypeError, UnicodeEncodeError):
        return True  # not all StoredItems with str data: the item-by-item checks say which


async def _pages(fetch: Callable[[str | None], Awaitable[_Paged[_T]]]) -> AsyncIterator[list[_T]]:
    """The one cursor loop: ``fetch(cursor)`` page after page until one has no cursor."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        yield page.items
        if page.cursor is None:
            return
        cursor = page.cursor


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Exists:
    """The item exists."""

    def describe(self) -> str:
        return "exists"


@dataclass(frozen=True, slots=True)
class NotExists:
    """The item does not exist."""

    def describe(self) -> str:
        return "not exists"


@dataclass(frozen=True, slots=True)
class AttrEquals:
    """The item exists and attribute ``name`` is present and equal to ``value``.

    Numbers compare by value (``1 == 1.0``); booleans are not numbers.
    """

    name: str
    value: Any

    def describe(self) -> str:
        return f"{self.name} == {_json.encode(self.value)}"


@dataclass(frozen=True, slots=True)
class VersionEquals:
    """The item exists and its version is ``version``."""

    version: int

    def describe(self) -> str:
        return f"version == {self.version}"


Condition = Exists | NotExists | AttrEquals | VersionEquals
_CONDITION_TYPES: Final = (Exists, NotExists, AttrEquals, VersionEquals)
_PLAIN_SCALARS: Final = frozenset({str, bool, type(None)})


def _failure(cond: Condition, current: Item | None) -> str | None:
    """Why ``cond`` does not hold for ``current`` (None when it holds)."""
    if isinstance(cond, NotExists):
        return None if current is None else f"item exists (version {current.version})"
    if current is None:
        return "item does not exist"
    if isinstance(cond, Exists):
        return None
    if isinstance(cond, VersionEquals):
        if current.version == cond.version:
            return None
        return f"version is {current.version}"
    if cond.name not in current.attrs:
        return f"attribute {cond.name!r} is absent"
    if _json.json_equal(current.attrs[cond.name], cond.value):
        return None
    return f"{cond.name} is {_json.encode(current.attrs[cond.name])}"


# --------------------------------------------------------------------------- operations


@dataclass(slots=True)  # not frozen: see the note under Op
class Put:
    """Create or replace an item (all its attributes), if the conditions hold."""

    pk: str
    sk: str
    attrs: Mapping[str, Any]
    condition: Condition | Sequence[Condition] | None = None
    tag: str | None = None
    kind: ClassVar[str] = "put"


@dataclass(slots=True)  # not frozen: see the note under Op
class Update:
    """Change some attributes of an existing item (``set`` wins over old values,
    ``remove`` deletes names). Fails with :class:`Conflict` if the item is absent."""

    pk: str
    sk: str
    set: Mapping[str, Any] = field(default_factory=dict)
    remove: Sequence[str] = ()
    condition: Condition | Sequence[Condition] | None = None
    tag: str | None = None
    kind: ClassVar[str] = "update"


@dataclass(slots=True)  # not frozen: see the note under Op
class Delete:
    """Delete an item if the conditions hold; deleting an absent item is a no-op
    unless a condition requires it to exist."""

    pk: str
    sk: str
    condition: Condition | Sequence[Condition] | None = None
    tag: str | None = None
    kind: ClassVar[str] = "delete"


@dataclass(slots=True)  # not frozen: see the note under Op
class Check:
    """A pure condition check inside a transaction: writes nothing."""

    pk: str
    sk: str
    condition: Condition | Sequence[Condition]
    tag: str | None = None
    kind: ClassVar[str] = "check"


Op = Put | Update | Delete | Check
# ``tag`` names an operation for its owner: a failing condition raises a
# Conflict carrying the tag, so a store says which of its checks failed by name
# ("head", "counter", "graph") instead of counting positions in the list.
# The operations are plain records, not frozen dataclasses: one is built for
# every item written, and a frozen dataclass costs three times as much to
# build. Nothing keeps them after transact() has read them (it copies what it
# stores), so changing one afterwards cannot change what was written.


@dataclass(slots=True)  # not frozen: built per operation on the hot path
class WriteOp:
    """A validated operation, as handed to a backend's ``_write``.

    For ``put`` the attributes are already encoded (``data``) and the index keys
    extracted; ``update`` is finished against the current item by :func:`resolve`.
    """

    kind: Literal["put", "update", "delete", "check"]
    pk: str
    sk: str
    conditions: tuple[Condition, ...]
    attrs: dict[str, Any] | None = None
    data: str | None = None
    index_keys: tuple[tuple[str, str] | None, ...] = ()
    set: dict[str, Any] | None = None
    remove: tuple[str, ...] = ()
    tag: str | None = None

    def needs_attrs(self) -> bool:
        """Whether :func:`resolve` reads the current item's attributes (not just
        its existence and version): a backend may skip decoding them otherwise."""
        return self.kind == "update" or any(type(c) is AttrEquals for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a write operation does to its item: the new stored state, or a delete.

    ``item`` is None for a delete (or a no-op delete of an absent item) and for a
    check; ``write`` says whether anything is to be stored or removed.
    """

    item: Item | None
    data: str | None
    index_keys: tuple[tuple[str, str] | None, ...]
    write: bool


# --------------------------------------------------------------------------- key ranges


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``.

    None when there is none (an empty prefix, or one made only of U+10FFFF).
    """
    chars = list(prefix)
    while chars and chars[-1] == "\U0010ffff":
        chars.pop()
    if not chars:
        return None
    nxt = ord(chars[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:  # skip the surrogate block: not encodable
        nxt = 0xE000
    chars[-1] = chr(nxt)
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class KeyRange:
    """A condition on the sort key of a query (one of DynamoDB's key conditions).

    Build with :meth:`prefix`, :meth:`between` (inclusive), :meth:`eq`, :meth:`lt`,
    :meth:`lte`, :meth:`gt`, :meth:`gte`.
    """

    op: Literal["prefix", "between", "eq", "lt", "lte", "gt", "gte"]
    a: str
    b: str | None = None

    @classmethod
    def prefix(cls, prefix: str) -> KeyRange:
        return cls("prefix", prefix)

    @classmethod
    def between(cls, low: str, high: str) -> KeyRange:
        return cls("between", low, high)

    @classmethod
    def eq(cls, value: str) -> KeyRange:
        return cls("eq", value)

    @classmethod
    def lt(cls, value: str) -> KeyRange:
        return cls("lt", value)

    @classmethod
    def lte(cls, value: str) -> KeyRange:
        return cls("lte", value)

    @classmethod
    def gt(cls, value: str) -> KeyRange:
        return cls("gt", value)

    @classmethod
    def gte(cls, value: str) -> KeyRange:
        return cls("gte", value)

    def bounds(self) -> tuple[str | None, bool, str | None, bool]:
        """``(low, low_inclusive, high, high_inclusive)``; None is unbounded."""
        op, a, b = self.op, self.a, self.b
        if op == "prefix":
            return (a or None, True, prefix_upper_bound(a), False)
        if op == "between":
            return (a, True, b, True)
        if op == "eq":
            return (a, True, a, True)
        if op == "lt":
            return (None, True, a, False)
        if op == "lte":
            return (None, True, a, True)
        if op == "gt":
            return (a, False, None, True)
        return (a, True, None, True)


@dataclass(frozen=True, slots=True)
class Query:
    """A validated query, as handed to a backend's ``_query``.

    The backend returns up to ``fetch`` items (all when None) of partition ``pk``
    (of ``index`` when set) whose sort key lies in the bounds, ordered as the
    module doc says (reversed when ``descending``) and strictly after ``after``,
    a position as returned by :meth:`position`.
    """

    pk: str
    index: IndexSpec | None
    low: str | None
    low_inclusive: bool
    high: str | None
    high_inclusive: bool
    descending: bool
    fetch: int | None
    after: tuple[str, ...] | None

    def position(self, item: Item) -> tuple[str, ...]:
        """Where ``item`` stands in this query's order."""
        if self.index is None:
            return (item.sk,)
        return (item.attrs[self.index.sk_attr], item.pk, item.sk)


# --------------------------------------------------------------------------- the port


class TablePort(ABC):
    """The item store every domain store is written against.

    Guarantees, on every engine:

    * every write (single operation or :meth:`transact`) is atomic: it applies
      whole or not at all; a failed condition raises :class:`Conflict` and
      applies nothing;
    * a write that returns has been committed with the engine's durability;
    * reads see every write that returned before they started (on DynamoDB,
      queries on secondary indexes are eventually consistent);
    * input is validated first: :class:`ValidationError` means nothing was written;
    * engine failures surface as :class:`Unavailable` (retry later) or
      :class:`EngineError`, never as a driver exception;
    * cancelling the task that awaits a write does not cancel the write: it may
      still commit (as with any database driver); read it back to know.

    Backends implement :meth:`_read`, :meth:`_write`, :meth:`_query`,
    :meth:`_scan`, :meth:`_restore` and :meth:`aclose`, and pass :func:`resolve`
    every operation they write.
    """

    def __init__(
        self,
        *,
        limits: Limits,
        portable: bool,
        indexes: Sequence[IndexSpec] = DEFAULT_INDEXES,
        ordered_scan: bool = False,
    ) -> None:
        effective = _tightest(limits, DYNAMODB_LIMITS) if portable else limits
        self.capabilities = Capabilities(effective, portable, ordered_scan)
        self.indexes: tuple[IndexSpec, ...] = tuple(indexes)
        self._index_by_name = {ix.name: ix for ix in self.indexes}
        self._index_attrs = frozenset(a for ix in self.indexes for a in (ix.pk_attr, ix.sk_attr))
        self._no_index_keys: tuple[None, ...] = (None,) * len(self.indexes)
        # restore_stored decodes an item that names an index attribute ("name": in
        # canonical JSON); see _suspect
        self._index_markers = tuple(sorted(_json.encode(a) + ":" for a in self._index_attrs))
        shared = self._index_markers[0] if self._index_markers else ""
        for marker in self._index_markers:
            while not marker.startswith(shared):
                shared = shared[:-1]
        self._markers_share = shared if len(shared) > 1 else ""  # '"gsi': one search first
        self._watches: dict[str, set[Watch]] = {}
        self._watch_lock = threading.Lock()

    # ---- abstract surface ------------------------------------------------

    @abstractmethod
    async def _read(self, keys: Sequence[tuple[str, str]]) -> list[Item | None]:
        """Return the current item (or None) for each key, in order, consistently."""

    @abstractmethod
    async def _write(self, ops: Sequence[WriteOp], *, returning: bool) -> list[Item | None]:
        """Apply ``ops`` atomically.

        For each operation, in order, pass its position, the operation and the
        item currently stored under its key to :func:`resolve`, then store what
        it returns. If :func:`resolve` raises (a :class:`Conflict`, or a
        :class:`ValidationError` for an update that grows too large), nothing of
        any operation may be stored. Keys are distinct within one call.
        When ``returning`` (only ever asked for a single operation), return the
        outcome's item for each operation; otherwise an empty list.
        """

    @abstractmethod
    async def _query(self, query: Query) -> list[Item]:
        """Return the items of ``query`` (see :class:`Query`)."""

    @abstractmethod
    async def _scan(
        self, prefix: str, after: tuple[str, str] | None, fetch: int
    ) -> list[StoredItem]:
        """Return up to ``fetch`` items whose pk starts with ``prefix`` (every item
        when it is empty), as stored, in the engine's scan order, strictly after
        the item ``after`` (a ``(pk, sk)`` this scan returned before; None: from
        the start).

        Fewer than ``fetch`` items means the scan is complete. The order must be
        the same on every call of one scan, so that positions are stable; with
        ``ordered_scan`` it is ``(pk, sk)`` order. (DynamoDB: a Scan with
        ``ExclusiveStartKey = after``, repeated until ``fetch`` items or the end,
        each item's attributes encoded with :func:`stateport._json.encode`.)
        """

    @abstractmethod
    async def _restore(self, rows: Sequence[tuple[StoredItem, IndexKeys]], *, new: bool) -> None:
        """Store each item (its ``data``, its version) with its index keys, in place
        of whatever is stored under its key, with no condition. Keys are distinct
        within one call. Each item must be written atomically; the call as a whole
        need not be (a batch API may be used). With ``new``, no key is expected to
        be stored: the engine may append, and raises :class:`Conflict` (writing
        nothing of that batch) if one is.
        """

    async def _estimate_count(self, prefix: str) -> int | None:
        """How many items :meth:`_scan` of ``prefix`` would return, if the engine can
        tell cheaply (None otherwise). Only for progress displays."""
        return None

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections. Idempotent."""

    # ---- reads -----------------------------------------------------------

    async def get(self, pk: str, sk: str) -> Item | None:
        """The item stored under ``(pk, sk)``, or None."""
        self._check_key(pk, sk)
        return (await self._read([(pk, sk)]))[0]

    async def batch_get(self, keys: Iterable[tuple[str, str]]) -> list[Item | None]:
        """The items stored under ``keys`` (None where absent), in the same order."""
        key_list: list[tuple[str, str]] = []
        for k in keys:
            if not isinstance(k, (tuple, list)) or len(k) != 2:
                raise ValidationError(f"a key is a (pk, sk) pair, got {k!r}")
            self._check_key(k[0], k[1])
            key_list.append((k[0], k[1]))
        if not key_list:
            return []
        return await self._read(key_list)

    async def query(
        self,
        pk: str,
        key_range: KeyRange | None = None,
        *,
        index: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of the items of partition ``pk`` whose sort key is in ``key_range``.

        With ``index``, ``pk`` and ``key_range`` refer to that index's key
        attributes. Items come in sort-key order (reversed when ``descending``);
        at most ``limit`` of them. ``Page.cursor`` is set exactly when more items
        follow; pass it back, with the same other arguments, for the next page.
        A cursor from a different query raises :class:`ValidationError`.
        """
        q = self._prepare_query(pk, key_range, index, descending, limit, cursor)
        items = await self._query(q)
        if limit is not None and len(items) > limit:
            items = items[:limit]
            return Page(items, self._encode_cursor(q, q.position(items[-1])))
        return Page(items, None)

    async def query_all(
        self,
        pk: str,
        key_range: KeyRange | None = None,
        *,
        index: str | None = None,
        descending: bool = False,
        page_size: int = 1000,
    ) -> AsyncIterator[Item]:
        """Every item of the query, fetched page by page."""
        pages = self.query_pages(
            pk, key_range, index=index, descending=descending, page_size=page_size
        )
        async for items in pages:
            for item in items:
                yield item

    async def query_pages(
        self,
        pk: str,
        key_range: KeyRange | None = None,
        *,
        index: str | None = None,
        descending: bool = False,
        page_size: int = 1000,
    ) -> AsyncIterator[list[Item]]:
        """Every item of the query, a page (a list of at most ``page_size``) at a time:
        for readers that handle items in bulk."""

        def fetch(cursor: str | None) -> Awaitable[Page]:
            return self.query(
                pk, key_range, index=index, descending=descending, limit=page_size, cursor=cursor
            )

        async for items in _pages(fetch):
            yield items

    # ---- writes ----------------------------------------------------------

    async def put(
        self,
        pk: str,
        sk: str,
        attrs: Mapping[str, Any],
        *,
        condition: Condition | Sequence[Condition] | None = None,
        tag: str | None = None,
    ) -> Item:
        """Create or replace the item; return it with its new version.

        ``tag`` names the operation in a :class:`Conflict` (see :class:`Put`).
        """
        op = self._put_op(pk, sk, attrs, condition, 0, keep=True, tag=tag)
        result = (await self._write([op], returning=True))[0]
        assert result is not None
        if self._watches:
            self._written((pk,))
        return result

    async def update(
        self,
        pk: str,
        sk: str,
        *,
        set: Mapping[str, Any] | None = None,
        remove: Sequence[str] = (),
        condition: Condition | Sequence[Condition] | None = None,
        tag: str | None = None,
    ) -> Item:
        """Change attributes of an existing item; return it with its new version.

        Raises :class:`Conflict` (carrying ``tag``) if the item does not exist
        or a condition fails.
        """
        op = self._prepare(Update(pk, sk, set or {}, remove, condition, tag), 0)
        result = (await self._write([op], returning=True))[0]
        assert result is not None
        if self._watches:
            self._written((pk,))
        return result

    async def delete(
        self,
        pk: str,
        sk: str,
        *,
        condition: Condition | Sequence[Condition] | None = None,
        tag: str | None = None,
    ) -> None:
        """Delete the item; a no-op if absent (unless a condition says otherwise)."""
        await self._write([self._prepare(Delete(pk, sk, condition, tag), 0)], returning=False)
        if self._watches:
            self._written((pk,))

    async def transact(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` all-or-nothing.

        Each operation may carry conditions; :class:`Check` is a condition with no
        write. If any condition fails, nothing is applied and :class:`Conflict`
        names the failing operation (``op_index``, ``key``, ``condition``). Two
        operations on the same key in one transaction are a :class:`ValidationError`.
        """
        if type(ops) is not list and (
            isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence)
        ):
            raise ValidationError("transact() takes a list of operations")
        count = len(ops)
        if not count:
            raise ValidationError("a transaction needs at least one operation")
        limits = self.capabilities.limits
        if limits.max_transaction_ops is not None and count > limits.max_transaction_ops:
            raise ValidationError(
                f"transaction has {count} operations; the limit is "
                f"{limits.max_transaction_ops}{self._limit_origin()}: split it"
            )
        prepare = self._prepare
        prepared = [prepare(op, i) for i, op in enumerate(ops)]
        if count > 1 and len({(w.pk, w.sk) for w in prepared}) < count:
            seen: dict[tuple[str, str], int] = {}
            for i, w in enumerate(prepared):
                first = seen.setdefault((w.pk, w.sk), i)
                if first != i:
                    raise ValidationError(
                        f"operations {first} and {i} both address {(w.pk, w.sk)!r}; "
                        "one transaction may touch each item once"
                    )
        if limits.max_transaction_bytes is not None:
            total = sum([len(w.data) for w in prepared if w.data is not None])
            if total > limits.max_transaction_bytes:
                raise ValidationError(
                    f"transaction writes {total} bytes; the limit is "
                    f"{limits.max_transaction_bytes}{self._limit_origin()}: split it"
                )
        await self._write(prepared, returning=False)
        if self._watches:
            self._written(w.pk for w in prepared if w.kind != "check")

    # ---- whole-store access: scan and restore ---------------------------

    async def scan(
        self, pk_prefix: str = "", *, limit: int = 1000, cursor: str | None = None
    ) -> Page:
        """One page of the items of every partition whose key starts with
        ``pk_prefix`` (of the whole table when empty): for tools that read a whole
        store (copy, snapshot export, the content digest), not for applications.

        Guarantees, on every engine: across the pages of one scan (each page's
        cursor passed back with the same ``pk_prefix``), every item that exists
        for the whole scan and is not written during it comes exactly once, with
        its attributes and version; an item written or deleted meanwhile may or
        may not come. A page holds at most ``limit`` items; ``Page.cursor`` is set
        exactly when more may follow. The scan is not a snapshot of one moment.

        Order: ``(pk, sk)`` (UTF-8 byte order) when ``capabilities.ordered_scan``
        (the SQL engines); otherwise the engine's own, which no caller may rely
        on (DynamoDB returns partitions in hash order, and the memory engine
        imitates it). Whoever needs a canonical order sorts.
        """
        page = await self.scan_stored(pk_prefix, limit=limit, cursor=cursor)
        return Page([stored.to_item() for stored in page.items], page.cursor)

    async def scan_stored(
        self, pk_prefix: str = "", *, limit: int = 1000, cursor: str | None = None
    ) -> StoredPage:
        """:meth:`scan`, with each item as stored (:class:`StoredItem`): for moving
        state, which needs the canonical JSON of the attributes, not their values."""
        prefix, after = self._prepare_scan(pk_prefix, limit, cursor)
        items = await self._scan(prefix, after, limit + 1)
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            return StoredPage(items, self._cursor(self._scan_shape(prefix), (last.pk, last.sk)))
        return StoredPage(items, None)

    async def scan_pages(
        self, pk_prefix: str = "", *, page_size: int = 1000
    ) -> AsyncIterator[list[Item]]:
        """Every item of :meth:`scan`, a page (a list of at most ``page_size``) at a time."""

        def fetch(cursor: str | None) -> Awaitable[Page]:
            return self.scan(pk_prefix, limit=page_size, cursor=cursor)

        async for items in _pages(fetch):
            yield items

    async def scan_stored_pages(
        self, pk_prefix: str = "", *, page_size: int = 1000
    ) -> AsyncIterator[list[StoredItem]]:
        """Every item of :meth:`scan_stored`, a page at a time."""

        def fetch(cursor: str | None) -> Awaitable[StoredPage]:
            return self.scan_stored(pk_prefix, limit=page_size, cursor=cursor)

        async for items in _pages(fetch):
            yield items

    async def estimate_count(self, pk_prefix: str = "") -> int | None:
        """About how many items :meth:`scan` of ``pk_prefix`` returns, if the engine
        can tell cheaply (exact on the SQL and memory engines; on DynamoDB the
        table's item count is hours old), else None. For progress displays only."""
        prefix, _ = self._prepare_scan(pk_prefix, 1, None)
        return await self._estimate_count(prefix)

    async def restore(self, items: Iterable[Item]) -> None:
        """Store ``items`` exactly as given, attributes *and* versions, each in place
        of whatever is stored under its key, with no condition: for moving state
        between stores (``stateport copy``, snapshot import), which must keep the
        versions that conditions like :class:`VersionEquals` compare.

        Every item is validated first, as :meth:`put` validates (keys, JSON
        values, size limits, index key attributes), its version must be an int
        from 1 to 2**63 - 1 and each key may come once: a
        :class:`ValidationError` means nothing was written. The call is not a
        transaction: each item is written atomically, but a call that fails part
        way (e.g. :class:`Unavailable`) may have written some of them. Writing
        the same items again is harmless (idempotent), which is how an
        interrupted copy resumes.
        """
        await self._restore_checked(self._restore_rows(items), False)

    async def restore_stored(self, items: Iterable[StoredItem], *, new: bool = False) -> None:
        """:meth:`restore` of items as :meth:`scan_stored` returns them, for moving
        state between stores without decoding it.

        Keys, versions and sizes are validated as :meth:`restore` validates them
        (``ValidationError``: nothing written). The attributes' JSON is trusted
        to be canonical, as an engine stored it (or as the snapshot reader
        checked it); it is decoded only where the store may need more from it:
        to find index keys (when it names an index attribute) and, in portable
        mode, to check a number of more than 38 digits.

        ``new`` says that none of the keys is stored (a copy into an empty
        store): the engine may then append without looking (PostgreSQL uses
        ``COPY``). If one is stored after all, :class:`Conflict` is raised and
        nothing of the engine's batch holding it is written.
        """
        await self._restore_checked(self._stored_rows(items), new)

    async def _restore_checked(self, rows: list[tuple[StoredItem, IndexKeys]], new: bool) -> None:
        if not rows:
            return
        await self._restore(rows, new=new)
        if self._watches:
            self._written({row[0].pk for row in rows})

    def check_restore(self, items: Iterable[Item]) -> None:
        """Validate ``items`` as :meth:`restore` does, writing nothing (for a caller
        that must know that a whole batch is storable before it writes any)."""
        self._restore_rows(items)

    def check_restore_stored(self, items: Iterable[StoredItem]) -> None:
        """Validate ``items`` as :meth:`restore_stored` does, writing nothing."""
        self._stored_rows(items)

    def _check_restored(
        self, i: int, item: Item | StoredItem, kind: type[Item] | type[StoredItem]
    ) -> None:
        """The checks :meth:`restore` and :meth:`restore_stored` share for each item:
        its type, its key and its version (:meth:`_once` checks that keys differ)."""
        if type(item) is not kind and not isinstance(item, kind):
            raise ValidationError(
                f"item {i}: expected a {kind.__name__}, got {type(item).__name__}"
            )
        self._check_key(item.pk, item.sk)
        version = item.version
        if type(version) is not int or not 0 < version <= MAX_VERSION:
            raise ValidationError(
                f"item {i} ({item.pk!r}, {item.sk!r}): a version is an int from 1 to "
                f"{MAX_VERSION}, got {version!r}"
            )

    @staticmethod
    def _once(rows: list[tuple[StoredItem, IndexKeys]]) -> list[tuple[StoredItem, IndexKeys]]:
        """``rows``, unless a key comes twice (ValidationError, naming the first)."""
        keys = [(row[0].pk, row[0].sk) for row in rows]
        if len(set(keys)) != len(keys):
            seen: set[tuple[str, str]] = set()
            for i, key in enumerate(keys):
                if key in seen:
                    raise ValidationError(f"item {i}: {key!r} comes twice; restore each key once")
                seen.add(key)
        return rows

    def _restore_rows(self, items: Iterable[Item]) -> list[tuple[StoredItem, IndexKeys]]:
        rows: list[tuple[StoredItem, IndexKeys]] = []
        for i, item in enumerate(items):
            self._check_restored(i, item, Item)
            attrs = item.attrs
            if type(attrs) is not dict:
                raise ValidationError(
                    f"item {i}: attributes must be a dict, got {type(attrs).__name__}"
                )
            data, index_keys = self.encode_attrs(item.pk, item.sk, attrs)
            rows.append((StoredItem(item.pk, item.sk, item.version, data), index_keys))
        return self._once(rows)

    def _stored_rows(self, items: Iterable[StoredItem]) -> list[tuple[StoredItem, IndexKeys]]:
        rows: list[tuple[StoredItem, IndexKeys]] = []
        append = rows.append
        portable = self.capabilities.portable
        limit = self.capabilities.limits.max_item_bytes
        share, no_index = self._markers_share, self._no_index_keys
        items = list(items)
        # in portable mode, 39 digits in a row may be a number DynamoDB refuses: looked
        # for in the whole batch at once, and item by item only where one is found
        long_numbers = portable and _long_digit_run(items)
        for i, item in enumerate(items):
            # the common case in one expression (a copy's hot path): short ASCII keys,
            # a valid version, ASCII data in no index, nothing over a limit; anything
            # else takes the item-by-item checks, which explain what is wrong
            if type(item) is StoredItem:
                pk, sk, version, data = item.pk, item.sk, item.version, item.data
                if (
                    type(pk) is str
                    and type(sk) is str
                    and type(version) is int
                    and type(data) is str
                    and 0 < len(pk) <= _ASCII_FAST
                    and 0 < len(sk) <= _ASCII_FAST
                    and 0 < version <= MAX_VERSION
                    and data[:1] == "{"
                    and data[-1:] == "}"
                    and data.isascii()
                    and pk.isascii()
                    and sk.isascii()
                    and share
                    and share not in data
                    and (limit is None or len(data) + len(pk) + len(sk) <= limit)
                    and not (long_numbers and _DIGIT_RUN in data.encode().translate(_DIGITS))
                ):
                    append((item, no_index))
                    continue
            append(self._stored_row(i, item, portable))
        return self._once(rows)

    def _stored_row(
        self, i: int, item: StoredItem, portable: bool
    ) -> tuple[StoredItem, IndexKeys]:
        """Check one item for :meth:`restore_stored`, the long way."""
        self._check_restored(i, item, StoredItem)
        data = item.data
        if type(data) is not str or not (data.startswith("{") and data.endswith("}")):
            raise ValidationError(
                f"item {i}: data must be the canonical JSON of the attributes, got {data!r:.40}"
            )
        if not data.isascii():
            try:
                data.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ValidationError(f"item {i}: data is not valid Unicode: {e}") from e
        if self._suspect(data, portable):
            try:
                attrs = _json.decode(data)
            except ValueError as e:
                raise ValidationError(f"item {i}: data is not JSON: {e}") from e
            data, index_keys = self.encode_attrs(item.pk, item.sk, attrs)
            return StoredItem(item.pk, item.sk, item.version, data), index_keys
        ascii_only = data.isascii() and item.pk.isascii() and item.sk.isascii()
        self._check_size(item.pk, item.sk, data, ascii_only)
        return item, self._no_index_keys

    # ---- watching --------------------------------------------------------

    def watch(self, pk: str) -> Watch:
        """Wake a reader when partition ``pk`` may have changed.

        ``async with table.watch(pk) as w:`` then, in a loop, read and
        ``await w.wait(timeout)``. Writes through this port object wake the
        watch at once; writes by other processes (or other port objects) are
        seen by the reader's next read, which ``timeout`` bounds, unless the
        backend wakes watches across processes (see :meth:`_watch_started`).
        A wake-up means "read again", never that something certainly changed.
        """
        self._check_key_part("pk", pk, self.capabilities.limits.max_pk_bytes)
        return Watch(self, pk)

    def _written(self, pks: Iterable[str]) -> None:
        """Wake the watches of the partitions ``pks`` (called after a commit)."""
        with self._watch_lock:
            woken = [w for pk in set(pks) for w in self._watches.get(pk, ())]
        for w in woken:
            w._wake()

    async def _watch_started(self, pk: str) -> None:  # noqa: B027 - optional hook
        """Hook: the first watch of ``pk`` in this port began (e.g. LISTEN)."""

    async def _watch_stopped(self, pk: str) -> None:  # noqa: B027 - optional hook
        """Hook: the last watch of ``pk`` in this port ended."""

    # ---- validation ------------------------------------------------------

    def _limit_origin(self) -> str:
        return " (DynamoDB's, enforced in portable mode)" if self.capabilities.portable else ""

    def _check_key(self, pk: Any, sk: Any) -> None:
        # the common case (short ASCII strings) costs four checks
        if (
            type(pk) is str
            and type(sk) is str
            and 0 < len(pk) <= _ASCII_FAST
            and 0 < len(sk) <= _ASCII_FAST
            and pk.isascii()
            and sk.isascii()
        ):
            return
        limits = self.capabilities.limits
        self._check_key_part("pk", pk, limits.max_pk_bytes)
        self._check_key_part("sk", sk, limits.max_sk_bytes)

    def _check_key_part(self, name: str, value: Any, cap: int | None) -> None:
        if type(value) is not str:
            raise ValidationError(f"{name} must be a str, got {type(value).__name__}")
        if not value:
            raise ValidationError(f"{name} must not be empty")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise ValidationError(f"{name} is not valid Unicode: {e}") from e
        if cap is not None and size > cap:
            raise ValidationError(
                f"{name} is {size} bytes; the limit is {cap}{self._limit_origin()}"
            )

    def _check_attr_name(self, name: Any) -> None:
        if type(name) is not str or not name:
            raise ValidationError(f"attribute names must be non-empty str, got {name!r}")
        if name in RESERVED_ATTRS:
            raise ValidationError(
                f"attribute name {name!r} is reserved for the key; pass it as pk/sk"
            )

    def _conditions(self, raw: Any, i: int) -> tuple[Condition, ...]:
        if raw is None:
            return ()
        kind = type(raw)
        if kind is NotExists or kind is Exists:  # the common cases, nothing to check
            return (raw,)
        if (
            kind is AttrEquals
            and type(raw.value) in _PLAIN_SCALARS
            and type(raw.name) is str
            and raw.name
            and raw.name not in RESERVED_ATTRS
        ):  # a flag or a state name: valid JSON whatever the mode
            return (raw,)
        if kind is VersionEquals and type(raw.version) is int and raw.version >= 1:
            return (raw,)
        conds = (raw,) if isinstance(raw, _CONDITION_TYPES) else raw
        if not isinstance(conds, (tuple, list)):
            raise ValidationError(f"operation {i}: condition must be a Condition or a list of them")
        out: list[Condition] = []
        for c in conds:
            if not isinstance(c, _CONDITION_TYPES):
                raise ValidationError(
                    f"operation {i}: {c!r} is not a condition "
                    "(Exists, NotExists, AttrEquals, VersionEquals)"
                )
            if isinstance(c, AttrEquals):
                self._check_attr_name(c.name)
                _json.check_json(c.value, portable=self.capabilities.portable, where=c.name)
            if isinstance(c, VersionEquals) and (type(c.version) is not int or c.version < 1):
                raise ValidationError(f"operation {i}: a version is an int >= 1, got {c.version!r}")
            out.append(c)
        return tuple(out)

    def encode_attrs(
        self, pk: str, sk: str, attrs: Mapping[str, Any]
    ) -> tuple[str, tuple[tuple[str, str] | None, ...]]:
        """Validate a full attribute set; return its canonical JSON and index keys.

        Raises :class:`ValidationError` for bad names, non-JSON values, index key
        attributes that are not strings, or an item over the size limit.
        """
        if not isinstance(attrs, dict):
            raise ValidationError(f"attributes must be a dict, got {type(attrs).__name__}")
        if "pk" in attrs or "sk" in attrs or "" in attrs:
            for name in attrs:
                self._check_attr_name(name)
        _json.check_json(attrs, portable=self.capabilities.portable, where="attrs")
        data = _json.encode(attrs)
        ascii_only = data.isascii() and pk.isascii() and sk.isascii()
        if not ascii_only:
            _json.encode_bytes(attrs)  # rejects lone surrogates
        self._check_size(pk, sk, data, ascii_only)
        if self._index_attrs.isdisjoint(attrs):
            return data, self._no_index_keys
        index_keys: list[tuple[str, str] | None] = []
        for ix in self.indexes:
            ipk, isk = attrs.get(ix.pk_attr), attrs.get(ix.sk_attr)
            for a, v in ((ix.pk_attr, ipk), (ix.sk_attr, isk)):
                if v is not None and (type(v) is not str or not v):
                    raise ValidationError(
                        f"attribute {a!r} is a key of index {ix.name!r}: "
                        f"it must be a non-empty str, got {v!r}"
                    )
            index_keys.append((ipk, isk) if ipk is not None and isk is not None else None)
        return data, tuple(index_keys)

    def _suspect(self, data: str, portable: bool) -> bool:
        """Whether the canonical JSON ``data`` may name an index attribute or, in
        portable mode, hold a number of more than 38 digits (39 digits in a row):
        then it is decoded and checked whole. Substring searches: a regular
        expression over the text costs several times more."""
        if self._markers_share in data:  # ("" is in every string)
            for marker in self._index_markers:
                if marker in data:
                    return True
        return portable and _DIGIT_RUN in data.encode("utf-8").translate(_DIGITS)

    def _check_size(self, pk: str, sk: str, data: str, ascii_only: bool) -> None:
        """ValidationError if the item is over the size limit (``ascii_only``: all
        three strings are ASCII, so their lengths are their UTF-8 sizes)."""
        limit = self.capabilities.limits.max_item_bytes
        if limit is None:
            return
        size = (
            len(data) + len(pk) + len(sk)
            if ascii_only
            else len(data.encode("utf-8")) + len(pk.encode("utf-8")) + len(sk.encode("utf-8"))
        )
        if size > limit:
            raise ValidationError(
                f"item ({pk!r}, {sk!r}) is {size} bytes; the limit is "
                f"{limit}{self._limit_origin()}: store large values as blobs"
            )

    def _put_op(
        self,
        pk: str,
        sk: str,
        attrs: Any,
        condition: Any,
        i: int,
        *,
        keep: bool = False,
        tag: Any = None,
    ) -> WriteOp:
        """The put, validated and encoded. With ``keep`` its attributes are a copy
        (they become the returned item's); otherwise only the encoding is kept
        and ``attrs`` is the caller's dict (no later change reaches the store)."""
        self._check_key(pk, sk)
        if type(attrs) is not dict:
            if not isinstance(attrs, Mapping):
                raise ValidationError(
                    f"operation {i}: attributes must be a dict, got {type(attrs).__name__}"
                )
            attrs = dict(attrs)
        elif keep:
            attrs = dict(attrs)
        data, index_keys = self.encode_attrs(pk, sk, attrs)
        conds = () if condition is None else self._conditions(condition, i)
        return WriteOp("put", pk, sk, conds, attrs, data, index_keys, tag=_tag(tag, i))

    def _prepare(self, op: Any, i: int) -> WriteOp:
        kind = type(op)
        if kind is Put:
            return self._put_op(op.pk, op.sk, op.attrs, op.condition, i, tag=op.tag)
        if kind is Check:  # the other common case, in ledger appends
            self._check_key(op.pk, op.sk)
            conds = self._conditions(op.condition, i)
            if not conds:
                raise ValidationError(f"operation {i}: a Check needs at least one condition")
            return WriteOp("check", op.pk, op.sk, conds, tag=_tag(op.tag, i))
        if isinstance(op, Put):
            return self._put_op(op.pk, op.sk, op.attrs, op.condition, i, tag=op.tag)
        if not isinstance(op, (Update, Delete, Check)):
            raise ValidationError(
                f"operation {i}: {op!r} is not an operation (Put, Update, Delete, Check)"
            )
        self._check_key(op.pk, op.sk)
        conds = self._conditions(op.condition, i)
        if isinstance(op, Update):
            if not isinstance(op.set, Mapping):
                raise ValidationError(f"operation {i}: set must be a dict")
            sets = dict(op.set)
            removes = (op.remove,) if isinstance(op.remove, str) else tuple(op.remove)
            for name in (*sets, *removes):
                self._check_attr_name(name)
            both = set(sets) & set(removes)
            if both:
                raise ValidationError(f"operation {i}: {sorted(both)} both set and removed")
            _json.check_json(sets, portable=self.capabilities.portable, where="set")
            return WriteOp(
                "update", op.pk, op.sk, conds, set=sets, remove=removes, tag=_tag(op.tag, i)
            )
        if isinstance(op, Check) and not conds:
            raise ValidationError(f"operation {i}: a Check needs at least one condition")
        return WriteOp(op.kind, op.pk, op.sk, conds, tag=_tag(op.tag, i))  # type: ignore[arg-type]

    def _prepare_query(
        self,
        pk: str,
        key_range: KeyRange | None,
        index: str | None,
        descending: bool,
        limit: int | None,
        cursor: str | None,
    ) -> Query:
        if type(pk) is not str or not pk:
            raise ValidationError("the partition key of a query must be a non-empty str")
        spec: IndexSpec | None = None
        if index is not None:
            spec = self._index_by_name.get(index)
            if spec is None:
                raise ValidationError(
                    f"unknown index {index!r}; this table has {sorted(self._index_by_name)}"
                )
        if key_range is None:
            bounds: tuple[str | None, bool, str | None, bool] = (None, True, None, True)
        elif isinstance(key_range, KeyRange):
            for v in (key_range.a, key_range.b):
                if v is not None and type(v) is not str:
                    raise ValidationError(f"key range bounds must be str, got {v!r}")
            if key_range.op == "between" and key_range.b is None:
                raise ValidationError("KeyRange.between needs two bounds")
            if key_range.op != "prefix" and not key_range.a:
                raise ValidationError(f"KeyRange.{key_range.op} needs a non-empty bound")
            bounds = key_range.bounds()
        else:
            raise ValidationError(
                f"key_range must be a KeyRange (e.g. KeyRange.prefix('x')), got {key_range!r}"
            )
        if limit is not None and (type(limit) is not int or limit < 1):
            raise ValidationError(f"limit must be a positive int, got {limit!r}")
        q = Query(
            pk,
            spec,
            *bounds,
            bool(descending),
            None if limit is None else limit + 1,
            None,
        )
        if cursor is not None:
            after = self._decode_cursor(q, cursor)
            q = Query(
                q.pk,
                q.index,
                q.low,
                q.low_inclusive,
                q.high,
                q.high_inclusive,
                q.descending,
                q.fetch,
                after,
            )
        return q

    def _prepare_scan(
        self, pk_prefix: str, limit: int, cursor: str | None
    ) -> tuple[str, tuple[str, str] | None]:
        if type(pk_prefix) is not str:
            raise ValidationError(f"pk_prefix must be a str, got {type(pk_prefix).__name__}")
        if pk_prefix:
            self._check_key_part("pk_prefix", pk_prefix, None)
        if type(limit) is not int or limit < 1:
            raise ValidationError(f"limit must be a positive int, got {limit!r}")
        if cursor is None:
            return pk_prefix, None
        pk, sk = self._position(self._scan_shape(pk_prefix), cursor, 2)
        if not pk.startswith(pk_prefix):
            raise ValidationError("the cursor does not belong to a scan of this prefix")
        return pk_prefix, (pk, sk)

    # ---- cursors ---------------------------------------------------------

    @staticmethod
    def _fingerprint(q: Query) -> str:
        shape = [
            q.pk,
            q.index.name if q.index else None,
            q.low,
            q.low_inclusive,
            q.high,
            q.high_inclusive,
            q.descending,
        ]
        return hashlib.sha256(_json.encode(shape).encode("utf-8", "surrogatepass")).hexdigest()[:16]

    @staticmethod
    def _scan_shape(prefix: str) -> str:
        return hashlib.sha256(
            _json.encode(["scan", prefix]).encode("utf-8", "surrogatepass")
        ).hexdigest()[:16]

    def _encode_cursor(self, q: Query, position: tuple[str, ...]) -> str:
        return self._cursor(self._fingerprint(q), position)

    def _decode_cursor(self, q: Query, cursor: str) -> tuple[str, ...]:
        return self._position(self._fingerprint(q), cursor, 1 if q.index is None else 3)

    @staticmethod
    def _cursor(fingerprint: str, position: tuple[str, ...]) -> str:
        """An opaque cursor: where a read stopped, and the shape of that read."""
        raw = _json.encode({"f": fingerprint, "p": list(position)})
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @staticmethod
    def _position(fingerprint: str, cursor: str, width: int) -> tuple[str, ...]:
        """The position in ``cursor``, if it was made by a read of this shape."""
        bad = ValidationError(
            "the cursor is malformed or belongs to another query: pass back the cursor "
            "of the previous page together with the same query arguments"
        )
        if type(cursor) is not str:
            raise bad
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            obj = _json.decode(raw)
            fp, pos = obj["f"], obj["p"]
        except (ValueError, KeyError, TypeError) as e:
            raise bad from e
        if (
            fp != fingerprint
            or not isinstance(pos, list)
            or len(pos) != width
            or not all(type(p) is str for p in pos)
        ):
            raise bad
        return tuple(pos)


# --------------------------------------------------------------------------- resolution


class Watch:
    """A registered interest in one partition; see :meth:`TablePort.watch`."""

    def __init__(self, table: TablePort, pk: str) -> None:
        self._table = table
        self.pk = pk
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    async def __aenter__(self) -> Watch:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        t = self._table
        with t._watch_lock:
            first = self.pk not in t._watches
            t._watches.setdefault(self.pk, set()).add(self)
        if first:
            await t._watch_started(self.pk)
        return self

    async def __aexit__(self, *exc: object) -> None:
        t = self._table
        with t._watch_lock:
            group = t._watches.get(self.pk)
            if group is not None:
                group.discard(self)
                last = not group
                if last:
                    del t._watches[self.pk]
            else:
                last = False
        if last:
            await t._watch_stopped(self.pk)

    def _wake(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(event.set)

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a poll interval
        """Wait until woken (True) or ``timeout`` seconds pass (False)."""
        if self._event is None:
            raise RuntimeError("use the watch as `async with table.watch(pk) as w`")
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True


def resolve(table: TablePort, index: int, op: WriteOp, current: Item | None) -> Outcome:
    """Check ``op``'s conditions against ``current`` and compute the new state.

    Raises :class:`Conflict` naming the operation when a condition fails (or an
    update finds no item), and :class:`ValidationError` when an update would
    produce an invalid item. Every backend calls this for every operation.
    """
    key = (op.pk, op.sk)
    for cond in op.conditions:
        reason = _failure(cond, current)
        if reason is not None:
            raise Conflict(
                f"operation {index} ({_named(op)}{op.kind} {key!r}): condition "
                f"'{cond.describe()}' failed: {reason}",
                op_index=index,
                key=key,
                condition=cond.describe(),
                tag=op.tag,
            )
    version = 1 if current is None else current.version + 1
    if op.kind == "put":
        assert op.attrs is not None and op.data is not None
        return Outcome(Item(op.pk, op.sk, op.attrs, version), op.data, op.index_keys, True)
    if op.kind == "update":
        if current is None:
            raise Conflict(
                f"operation {index} ({_named(op)}update {key!r}): the item does not exist",
                op_index=index,
                key=key,
                condition="exists",
                tag=op.tag,
            )
        attrs = {**current.attrs, **(op.set or {})}
        for name in op.remove:
            attrs.pop(name, None)
        data, index_keys = table.encode_attrs(op.pk, op.sk, attrs)
        return Outcome(Item(op.pk, op.sk, attrs, version), data, index_keys, True)
    if op.kind == "delete":
        return Outcome(None, None, (), current is not None)
    return Outcome(None, None, (), False)


def _tag(tag: Any, i: int) -> str | None:
    """A valid operation tag (None or a short non-empty str)."""
    if tag is None or (type(tag) is str and 0 < len(tag) <= 64):
        return tag
    raise ValidationError(f"operation {i}: a tag is a str of 1 to 64 characters, got {tag!r}")


def _named(op: WriteOp) -> str:
    return "" if op.tag is None else f"{op.tag}: "
