"""The in-memory backend (``memory://``): the table and blob ports in a process.

It behaves like the real engines, not like a convenient fake: values are stored
as their canonical JSON (a caller mutating a dict after ``put`` changes nothing
stored), the same limits apply in portable mode, the same errors are raised,
and transactions are atomic under a lock, so it is safe to share between
threads and event loops. Once closed, every call raises
:class:`~stateport.errors.Unavailable`, as a real engine's does. Nothing
survives the process. A scan returns partitions in the order of a hash of
their keys, as DynamoDB does, so code tested here does not come to rely on
the key order the SQL engines happen to scan in.

URL parameters: ``portable`` (default true), ``blobs`` (see :mod:`._blobs`).
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .. import _json
from ..digest import ContentDigest
from ..errors import Conflict, Unavailable
from ..ports.blob import CHUNK_SIZE, BlobPort, Upload
from ..ports.engine import AppliedMigration, Capability, Engine, SchemaStatus
from ..ports.table import (
    DEFAULT_INDEXES,
    UNLIMITED,
    IndexKeys,
    IndexSpec,
    Item,
    Query,
    StoredItem,
    TablePort,
    WriteOp,
    resolve,
)
from ..url import StoreURL
from ._blobs import choose_blobs

__all__ = ["MemoryBlobPort", "MemoryEngine", "MemoryTablePort", "open_memory"]

_Row = tuple[str, int]  # (canonical JSON of the attributes, version)


def _closed() -> Unavailable:
    return Unavailable("the memory store is closed")


class _Sorted:
    """Keys kept in order, with their rows."""

    __slots__ = ("keys", "rows")

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.rows: dict[Any, Any] = {}

    def set(self, key: Any, row: Any) -> None:
        if key not in self.rows:
            bisect.insort(self.keys, key)
        self.rows[key] = row

    def remove(self, key: Any) -> None:
        if key in self.rows:
            del self.rows[key]
            del self.keys[bisect.bisect_left(self.keys, key)]


class MemoryTablePort(TablePort):
    """Items in dicts and sorted key lists, guarded by one lock."""

    def __init__(
        self, *, portable: bool = True, indexes: Sequence[IndexSpec] = DEFAULT_INDEXES
    ) -> None:
        super().__init__(limits=UNLIMITED, portable=portable, indexes=indexes)
        self._lock = threading.Lock()
        self._parts: dict[str, _Sorted] = {}
        # index name -> index pk -> sorted (index sk, pk, sk); value: None
        self._ix: dict[str, dict[str, _Sorted]] = {ix.name: {} for ix in self.indexes}
        self._ix_keys: dict[tuple[str, str], tuple[tuple[str, str] | None, ...]] = {}
        self.closed = False
        self._scan_order = _Sorted()  # (_scan_rank(pk), pk) of every partition

    def _current(self, pk: str, sk: str) -> Item | None:
        part = self._parts.get(pk)
        row: _Row | None = part.rows.get(sk) if part else None
        if row is None:
            return None
        return Item(pk, sk, _json.decode(row[0]), row[1])

    async def _read(self, keys: Sequence[tuple[str, str]]) -> list[Item | None]:
        if self.closed:
            raise _closed()
        with self._lock:
            return [self._current(pk, sk) for pk, sk in keys]

    async def _write(self, ops: Sequence[WriteOp], *, returning: bool) -> list[Item | None]:
        if self.closed:
            raise _closed()
        with self._lock:
            outcomes = [
                resolve(self, i, op, self._current(op.pk, op.sk)) for i, op in enumerate(ops)
            ]
            # every condition held: apply (nothing above has changed any state)
            for op, out in zip(ops, outcomes, strict=True):
                if not out.write:
                    continue
                if out.item is None:
                    self._remove(op.pk, op.sk)
                else:
                    assert out.data is not None
                    self._store(op.pk, op.sk, out.data, out.item.version, out.index_keys)
            return [o.item for o in outcomes] if returning else []

    def _store(
        self, pk: str, sk: str, data: str, version: int, index_keys: IndexKeys
    ) -> None:
        """Store an item in place of the one under its key (lock held)."""
        key = (pk, sk)
        self._unindex(key)
        part = self._parts.get(pk)
        if part is None:
            part = self._parts[pk] = _Sorted()
            self._scan_order.set((_scan_rank(pk), pk), None)
        part.set(sk, (data, version))
        self._index(key, index_keys)

    def _remove(self, pk: str, sk: str) -> None:
        """Delete the item under ``(pk, sk)`` if any (lock held)."""
        self._unindex((pk, sk))
        part = self._parts.get(pk)
        if part is not None:
            part.remove(sk)
            if not part.keys:
                del self._parts[pk]
                self._scan_order.remove((_scan_rank(pk), pk))

    async def _restore(self, rows: Sequence[tuple[StoredItem, IndexKeys]], *, new: bool) -> None:
        if self.closed:
            raise _closed()
        with self._lock:
            if new:
                for item, _ in rows:
                    part = self._parts.get(item.pk)
                    if part is not None and item.sk in part.rows:
                        raise _stored_already(item)
            for item, index_keys in rows:
                self._store(item.pk, item.sk, item.data, item.version, index_keys)

    async def _scan(
        self, prefix: str, after: tuple[str, str] | None, fetch: int
    ) -> list[StoredItem]:
        if self.closed:
            raise _closed()
        # partitions in the order of a hash of their key, as DynamoDB scans them,
        # so that nothing comes to rely on a scan's order; items of a partition
        # in sort-key order
        with self._lock:
            order = self._scan_order.keys
            i, after_sk = 0, None
            if after is not None:
                start = (_scan_rank(after[0]), after[0])
                i = bisect.bisect_left(order, start)
                if i < len(order) and order[i] == start:
                    after_sk = after[1]
            out: list[StoredItem] = []
            while i < len(order) and len(out) < fetch:
                pk = order[i][1]
                i += 1
                if not pk.startswith(prefix):
                    continue
                part = self._parts[pk]
                first = 0 if after_sk is None else bisect.bisect_right(part.keys, after_sk)
                after_sk = None
                for sk in part.keys[first : first + fetch - len(out)]:
                    data, version = part.rows[sk]
                    out.append(StoredItem(pk, sk, version, data))
            return out

    async def _estimate_count(self, prefix: str) -> int | None:
        if self.closed:
            raise _closed()
        with self._lock:
            return sum(len(p.keys) for pk, p in self._parts.items() if pk.startswith(prefix))

    def _index(self, key: tuple[str, str], index_keys: tuple[tuple[str, str] | None, ...]) -> None:
        if any(k is not None for k in index_keys):
            self._ix_keys[key] = index_keys
        for ix, ik in zip(self.indexes, index_keys, strict=True):
            if ik is not None:
                self._ix[ix.name].setdefault(ik[0], _Sorted()).set((ik[1], *key), None)

    def _unindex(self, key: tuple[str, str]) -> None:
        old = self._ix_keys.pop(key, None)
        if old is None:
            return
        for ix, ik in zip(self.indexes, old, strict=True):
            if ik is not None:
                self._ix[ix.name][ik[0]].remove((ik[1], *key))

    async def _query(self, query: Query) -> list[Item]:
        if self.closed:
            raise _closed()
        with self._lock:
            if query.index is None:
                found = self._parts.get(query.pk)
                after: Any = None if query.after is None else query.after[0]
                first: Any = None
            else:
                found = self._ix[query.index.name].get(query.pk)
                after = query.after
                first = _first
            keys = found.keys if found else []
            lo, hi = 0, len(keys)
            if query.low is not None:
                cut = bisect.bisect_left if query.low_inclusive else bisect.bisect_right
                lo = cut(keys, query.low, key=first)
            if query.high is not None:
                cut = bisect.bisect_right if query.high_inclusive else bisect.bisect_left
                hi = cut(keys, query.high, key=first)
            if after is not None:
                if query.descending:
                    hi = min(hi, bisect.bisect_left(keys, after))
                else:
                    lo = max(lo, bisect.bisect_right(keys, after))
            selected = keys[lo:hi]
            if query.descending:
                selected.reverse()
            if query.fetch is not None:
                selected = selected[: query.fetch]
            out: list[Item] = []
            for pos in selected:
                pk, sk = (query.pk, pos) if query.index is None else (pos[1], pos[2])
                item = self._current(pk, sk)
                assert item is not None
                out.append(item)
            return out

    async def _watch_started(self, pk: str) -> None:
        if self.closed:
            raise _closed()

    async def aclose(self) -> None:
        self.closed = True


def _first(position: tuple[str, ...]) -> str:
    return position[0]


def _stored_already(item: StoredItem) -> Conflict:
    """The Conflict of a restore of new items, one of which is stored."""
    key = (item.pk, item.sk)
    return Conflict(
        f"restore of new items: {key!r} is stored already", key=key, condition="not exists"
    )


def _scan_rank(pk: str) -> bytes:
    """Where partition ``pk`` comes in a scan: a hash of its key, as on DynamoDB."""
    return hashlib.blake2b(pk.encode("utf-8"), digest_size=8).digest()


class _MemoryUpload(Upload):
    def __init__(self, port: MemoryBlobPort) -> None:
        self._port = port
        self._parts: list[bytes] = []

    async def write(self, chunk: bytes) -> None:
        self._parts.append(chunk)

    async def commit(self, digest: ContentDigest, size: int) -> None:
        await self._port._store(digest, b"".join(self._parts))
        self._parts = []

    async def abort(self) -> None:
        self._parts = []


class MemoryBlobPort(BlobPort):
    """Blobs in a dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[ContentDigest, bytes] = {}
        self.closed = False

    async def _store(self, digest: ContentDigest, data: bytes) -> None:
        if self.closed:
            raise _closed()
        with self._lock:
            self._blobs.setdefault(digest, data)

    async def _begin(self) -> Upload:
        if self.closed:
            raise _closed()
        return _MemoryUpload(self)

    async def _load(self, digest: ContentDigest) -> bytes | None:
        if self.closed:
            raise _closed()
        with self._lock:
            return self._blobs.get(digest)

    async def _chunks(self, digest: ContentDigest) -> tuple[int, AsyncIterator[bytes]] | None:
        data = await self._load(digest)
        if data is None:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK_SIZE):
                yield data[start : start + CHUNK_SIZE]

        return len(data), chunks()

    async def _contains(self, digest: ContentDigest) -> bool:
        if self.closed:
            raise _closed()
        with self._lock:
            return digest in self._blobs

    async def _delete(self, digest: ContentDigest) -> None:
        if self.closed:
            raise _closed()
        with self._lock:
            self._blobs.pop(digest, None)

    def location(self) -> str:
        return "memory"

    async def _list(self, after: ContentDigest | None, limit: int) -> list[ContentDigest]:
        if self.closed:
            raise _closed()
        with self._lock:
            ordered = sorted(self._blobs)
        start = 0 if after is None else bisect.bisect_right(ordered, after)
        return ordered[start : start + limit]

    async def aclose(self) -> None:
        self.closed = True


class MemoryEngine(Engine):
    """Both ports in memory; the schema is always current.

    No capability: nothing survives closing, another process cannot see it, and
    there is no schema to migrate.
    """

    capabilities: frozenset[Capability] = frozenset()
    table: MemoryTablePort

    def __init__(self, *, portable: bool = True, blobs: str | None = None) -> None:
        self.table = MemoryTablePort(portable=portable)
        self.blobs = choose_blobs(blobs, MemoryBlobPort, durable=True)
        self._portable = portable

    async def migrate(self, *, stop_before: int | None = None) -> list[AppliedMigration]:
        await self.schema_version()  # refuses a closed store
        return []

    async def schema_version(self) -> SchemaStatus:
        if self.table.closed:
            raise _closed()
        return SchemaStatus(0, 0, ())

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "memory",
            "location": "this process",
            "portable": self._portable,
            "blobs": self.blobs.location(),
        }


async def open_memory(url: StoreURL) -> MemoryEngine:
    """Open ``memory://`` (parameters: ``portable``)."""
    portable = url.take_bool("portable", True)
    blobs = url.take_str("blobs")
    url.finish()
    if url.netloc or url.path not in ("", "/"):
        raise url.fail("memory:// takes no location; write memory://")
    return MemoryEngine(portable=portable, blobs=blobs)
