"""Moving state on the two engine ports: the content digest, and copy.

What every move does is here (export and import, in :mod:`.files`, use it):
items are read a page at a time (:data:`PAGE_SIZE`) in canonical order
(:mod:`.ordering`) and written with :meth:`TablePort.restore_stored`, which
keeps versions, one page in flight while the next is read; blobs stream a
chunk at a time; so memory stays bounded whatever the size of the store. A
move ends by hashing the target back and comparing the two content digests,
raising :class:`IntegrityError` if they differ. A copy moves items and blobs
side by side, and hashes the target's items back while its blobs still move.

A target that already holds something in scope is refused (:class:`Conflict`)
unless ``resume``: then only the items that differ from the source are
written and the blobs already there are skipped, so running a move twice
changes nothing, and an interrupted move continues where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ..digest import ContentDigest
from ..domains.registry import Scope
from ..errors import Conflict, IntegrityError, ValidationError
from ..ports.blob import CHUNK_SIZE, BlobPort
from ..ports.table import StoredItem, TablePort
from .ordering import canonical_pages
from .records import ContentHasher, StoreDigest, item_record

__all__ = [
    "PAGE_SIZE",
    "MoveSummary",
    "Ports",
    "Progress",
    "ProgressCallback",
    "content_digest",
    "copy_store",
]

PAGE_SIZE: Final = 10_000
"""Items read and written per batch."""
WRITES_IN_FLIGHT: Final = 1
"""Pages of items being written at once (while the next is read)."""
BLOB_WINDOW: Final = 8
"""Batches of blobs moved at once."""
BATCH_BLOBS: Final = 32
"""Blobs a batch names; small ones are written together, up to :data:`BATCH_BYTES`."""
BATCH_BYTES: Final = 4 * CHUNK_SIZE


class Ports(Protocol):
    """What a move reads and writes: a store's two engine ports (a
    :class:`~stateport.Stateport` or an :class:`~stateport.ports.Engine`)."""

    @property
    def table(self) -> TablePort: ...

    @property
    def blobs(self) -> BlobPort: ...


@dataclass
class Progress:
    """How far a move has got; handed to the ``progress`` callback after each step.

    ``phase`` is ``"check"`` (an import reading its file before writing),
    ``"items"``, ``"blobs"`` or ``"verify"`` (the closing digest). Totals are
    None when not known (``items_total`` is the engine's estimate).
    """

    action: str
    phase: str = "items"
    items: int = 0
    items_total: int | None = None
    blobs: int = 0
    bytes: int = 0
    """Blob bytes moved (file bytes read, in the ``check`` phase)."""
    bytes_total: int | None = None
    started: float = field(default_factory=time.monotonic)


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class MoveSummary:
    """What a copy, export or import did."""

    action: str
    source: str
    target: str
    digest: StoreDigest
    """The content digest of what was moved (the same on both sides)."""
    items_written: int
    """Items written to the target (those that differed, when resuming)."""
    blobs_written: int
    bytes_written: int
    """Blob bytes written to the target (or the snapshot file's size, for an export)."""
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "source": self.source,
            "target": self.target,
            **self.digest.to_dict(),
            "items_written": self.items_written,
            "blobs_written": self.blobs_written,
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
        }


def report(progress: ProgressCallback | None, state: Progress) -> None:
    if progress is not None:
        progress(state)


async def estimate_items(table: TablePort, scope: Scope) -> int | None:
    total = 0
    for prefix in scope.scan_prefixes():
        n = await table.estimate_count(prefix)
        if n is None:
            return None
        total += n
    return total


# --------------------------------------------------------------------------- digest


async def content_digest(
    ports: Ports,
    scope: Scope,
    *,
    progress: ProgressCallback | None = None,
    state: Progress | None = None,
) -> StoreDigest:
    """The content digest of ``scope`` of a store (see :mod:`.records`)."""
    hasher = ContentHasher(scope)
    if state is None:
        state = Progress("digest", items_total=await estimate_items(ports.table, scope))
    await _hash_items(ports.table, hasher, progress, state)
    if scope.blobs:
        await _hash_blobs(ports.blobs, hasher)
    return hasher.result()


async def _hash_items(
    table: TablePort, hasher: ContentHasher, progress: ProgressCallback | None, state: Progress
) -> None:
    async for items, records in canonical_pages(table, hasher.scope, page_size=PAGE_SIZE):
        hasher.page(items, records)
        state.items += len(items)
        report(progress, state)


async def _hash_blobs(blobs: BlobPort, hasher: ContentHasher) -> None:
    async for d in blobs.digests():
        hasher.blob(d.as_str())


def _compare(expected: StoreDigest, found: StoreDigest, what: str) -> None:
    if found.digest != expected.digest:
        raise IntegrityError(
            f"the {what} finished but the digests differ: expected {expected.digest} "
            f"({expected.items} items, {expected.blobs} blobs), the target has {found.digest} "
            f"({found.items} items, {found.blobs} blobs). The source changed during the "
            "move, or the target holds other content in scope"
        )


async def verify_target(
    target: Ports,
    expected: StoreDigest,
    what: str,
    progress: ProgressCallback | None,
    state: Progress,
) -> None:
    state.phase, state.items, state.items_total = "verify", 0, expected.items
    report(progress, state)
    found = await content_digest(target, expected.scope, progress=progress, state=state)
    _compare(expected, found, what)


async def _together(*work: Awaitable[Any]) -> list[Any]:
    """Run ``work`` concurrently; the first failure cancels the others and is raised
    as itself (not wrapped in an exception group)."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task in done and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [await task for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def refuse_occupied(target: Ports, scope: Scope, what: str) -> None:
    """Raise :class:`Conflict` if ``target`` holds an item or a blob in ``scope``."""
    found: str | None = None
    for prefix in scope.scan_prefixes():
        async for page in target.table.scan_pages(prefix, page_size=1 if not scope.rest else 500):
            hit = next((i for i in page if scope.contains(i.pk)), None)
            if hit is not None:
                found = f"item {(hit.pk, hit.sk)!r}"
                break
        if found:
            break
    if found is None and scope.blobs:
        async for d in target.blobs.digests(page_size=1):
            found = f"blob {d.short()}"
            break
    if found is not None:
        raise Conflict(
            f"the target of the {what} is not empty (it holds {found}, in scope: {scope}): "
            "move into an empty store, or resume an interrupted move "
            "(resume=True, --resume), which writes only what differs"
        )


class PageWriter:
    """Writes pages of items to a table, :data:`WRITES_IN_FLIGHT` at once while the
    next page is read; with ``resume``, only the items that differ from what is
    stored. ``written`` counts the items written."""

    def __init__(self, table: TablePort, resume: bool) -> None:
        self._table = table
        self._resume = resume
        self._writes = Window(WRITES_IN_FLIGHT)
        self.written = 0

    async def add(self, items: list[StoredItem], records: list[bytes]) -> None:
        await self._writes.add(self._write(items, records))

    async def _write(self, items: list[StoredItem], records: list[bytes]) -> None:
        if self._resume:
            now = await self._table.batch_get([(i.pk, i.sk) for i in items])
            items = [
                stored
                for stored, record, current in zip(items, records, now, strict=True)
                if current is None or item_record(current) != record
            ]
        if items:
            await self._table.restore_stored(items, new=not self._resume)
        self.written += len(items)

    async def flush(self) -> None:
        """Wait for the writes in flight (raising the first failure)."""
        await self._writes.drain()

    async def aclose(self) -> None:
        """Cancel the writes still in flight (after a failure)."""
        await self._writes.aclose()


# --------------------------------------------------------------------------- copy


async def copy_store(
    source: Ports,
    target: Ports,
    scope: Scope,
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    names: tuple[str, str] = ("source", "target"),
    page_size: int = PAGE_SIZE,
) -> MoveSummary:
    """Copy ``scope`` of ``source`` into ``target`` (see the module doc), moving
    ``page_size`` items at a time."""
    if type(page_size) is not int or page_size < 1:
        raise ValidationError(f"page_size must be a positive int, got {page_size!r}")
    started = time.monotonic()
    if not resume:
        await refuse_occupied(target, scope, "copy")
    total = await estimate_items(source.table, scope)
    state = Progress("copy", items_total=total, started=started)
    hasher, found = ContentHasher(scope), ContentHasher(scope)
    writer = PageWriter(target.table, resume)

    async def items() -> None:
        try:
            async for page, records in canonical_pages(source.table, scope, page_size=page_size):
                hasher.page(page, records)
                await writer.add(page, records)
                state.items += len(page)
                report(progress, state)
            await writer.flush()
        finally:
            await writer.aclose()
        # the items are written: hash them back from the target while blobs still move
        state.phase, state.items, state.items_total = "verify", 0, hasher.items
        await _hash_items(target.table, found, progress, state)

    async def blobs() -> tuple[int, int]:
        if not scope.blobs:
            return 0, 0
        written = await _copy_blobs(source.blobs, target.blobs, hasher, resume, progress, state)
        await _hash_blobs(target.blobs, found)
        return written

    _, (blobs_written, bytes_written) = await _together(items(), blobs())
    expected = hasher.result()
    _compare(expected, found.result(), "copy")
    return MoveSummary(
        "copy",
        names[0],
        names[1],
        expected,
        writer.written,
        blobs_written,
        bytes_written,
        time.monotonic() - started,
    )


class Window:
    """At most ``size`` tasks at once: :meth:`add` waits for room, :meth:`drain` for
    all; the first failure is raised (by :meth:`add` or :meth:`drain`), and
    :meth:`aclose` cancels what still runs."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._running: set[asyncio.Future[Any]] = set()

    async def add(self, work: Awaitable[Any]) -> None:
        while len(self._running) >= self._size:
            done, self._running = await asyncio.wait(
                self._running, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()
        self._running.add(asyncio.ensure_future(work))

    async def drain(self) -> None:
        while self._running:
            done, self._running = await asyncio.wait(
                self._running, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()

    async def aclose(self) -> None:
        running, self._running = self._running, set()
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _copy_blobs(
    source: BlobPort,
    target: BlobPort,
    hasher: ContentHasher,
    resume: bool,
    progress: ProgressCallback | None,
    state: Progress,
) -> tuple[int, int]:
    """Copy every blob of ``source`` not in ``target``; return how many were written
    and their bytes. Blobs go in batches, several batches at once: the small ones
    (one chunk at most) read whole and written together (:meth:`BlobPort.put_many`),
    larger ones streamed."""
    written = [0, 0]

    async def store(batch: list[tuple[ContentDigest, bytes]]) -> None:
        if not batch:
            return
        got = await target.put_many([data for _, data in batch])
        for (d, data), g in zip(batch, got, strict=True):
            if g != d:
                raise IntegrityError(f"blob {d.short()} arrived as {g.short()}")
            written[0] += 1
            written[1] += len(data)
            state.bytes += len(data)

    async def copy(digests: list[ContentDigest]) -> None:
        small: list[tuple[ContentDigest, bytes]] = []
        held = 0
        for d in digests:
            if resume and await target.contains(d):
                continue
            size = await source.size(d)
            if size <= CHUNK_SIZE:
                small.append((d, await source.get(d)))  # verified by get
                held += size
                if held >= BATCH_BYTES:
                    await store(small)
                    small, held = [], 0
                continue
            async with source.open(d) as reader:
                got = await target.put(reader.__aiter__())  # verified as it streams
            if got != d:
                raise IntegrityError(f"blob {d.short()} arrived as {got.short()}")
            written[0] += 1
            written[1] += size
            state.bytes += size
        await store(small)

    window = Window(BLOB_WINDOW)
    try:
        batch: list[ContentDigest] = []
        async for d in source.digests():
            hasher.blob(d.as_str())
            batch.append(d)
            if len(batch) >= BATCH_BLOBS:
                await window.add(copy(batch))
                batch = []
            state.blobs += 1
            report(progress, state)
        await window.add(copy(batch))
        await window.drain()
    finally:
        await window.aclose()
    return written[0], written[1]
