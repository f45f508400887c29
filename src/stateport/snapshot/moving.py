"""Moving state: the content digest, copy, export and import, on the two engine ports.

Everything here streams: items a page at a time (``page_size``), blobs a
chunk at a time, so memory stays bounded whatever the size of the store. The
three moves share their steps: read the source's items in canonical order
(:mod:`.ordering`), write them with :meth:`TablePort.restore` (which keeps
versions), stream each blob, and end by computing the destination's content
digest and comparing it with the source's, raising :class:`IntegrityError`
if they differ.

A destination that already holds something in scope is refused
(:class:`Conflict`) unless ``resume``: then only the items that differ from the
source are written and the blobs already there are skipped, so running a move
twice changes nothing, and an interrupted move continues where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Final, Protocol

from ..digest import ContentDigest
from ..domains.registry import Scope
from ..errors import Conflict, EngineError, IntegrityError, ValidationError
from ..ports.blob import CHUNK_SIZE, BlobPort
from ..ports.table import Item, StoredItem, TablePort
from .fileformat import BlobStart, Chunk, Event, Header, Manifest, SnapshotWriter, read_snapshot
from .ordering import canonical_pages
from .records import ContentHasher, StoreDigest, item_record

__all__ = [
    "MoveSummary",
    "Ports",
    "Progress",
    "ProgressCallback",
    "content_digest",
    "copy_store",
    "export_store",
    "import_store",
]

PAGE_SIZE: Final = 5000
"""Items read and written per batch."""
BLOB_WINDOW: Final = 8
"""Blobs streamed at once by a copy."""
_EVENTS_PER_HOP: Final = 512  # snapshot events read per trip to a worker thread


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


def _report(progress: ProgressCallback | None, state: Progress) -> None:
    if progress is not None:
        progress(state)


async def _estimate(table: TablePort, scope: Scope) -> int | None:
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
        state = Progress("digest", items_total=await _estimate(ports.table, scope))
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
        _report(progress, state)


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


async def _verify(
    target: Ports,
    expected: StoreDigest,
    what: str,
    progress: ProgressCallback | None,
    state: Progress,
) -> None:
    state.phase, state.items, state.items_total = "verify", 0, expected.items
    _report(progress, state)
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


async def _refuse_occupied(target: Ports, scope: Scope, what: str) -> None:
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


class _Writer:
    """Writes pages of items to a table, one write in flight while the next page is
    read; with ``resume``, only the items that differ from what is stored."""

    def __init__(self, table: TablePort, resume: bool) -> None:
        self._table = table
        self._resume = resume
        self._pending: asyncio.Task[int] | None = None
        self.written = 0

    async def add(self, items: list[StoredItem], records: list[bytes]) -> None:
        await self.flush()
        self._pending = asyncio.ensure_future(self._write(items, records))

    async def _write(self, items: list[StoredItem], records: list[bytes]) -> int:
        if self._resume:
            now = await self._table.batch_get([(i.pk, i.sk) for i in items])
            items = [
                stored
                for stored, record, current in zip(items, records, now, strict=True)
                if current is None or item_record(current) != record
            ]
        if items:
            await self._table.restore_stored(items, new=not self._resume)
        return len(items)

    async def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.written += await pending

    async def aclose(self) -> None:
        """Wait for (or, after a failure, cancel) the write in flight."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


# --------------------------------------------------------------------------- copy


async def copy_store(
    source: Ports,
    target: Ports,
    scope: Scope,
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    names: tuple[str, str] = ("source", "target"),
) -> MoveSummary:
    """Copy ``scope`` of ``source`` into ``target`` (see the module doc)."""
    started = time.monotonic()
    if not resume:
        await _refuse_occupied(target, scope, "copy")
    state = Progress("copy", items_total=await _estimate(source.table, scope), started=started)
    hasher, found = ContentHasher(scope), ContentHasher(scope)
    writer = _Writer(target.table, resume)

    async def items() -> None:
        try:
            async for page, records in canonical_pages(source.table, scope, page_size=PAGE_SIZE):
                hasher.page(page, records)
                await writer.add(page, records)
                state.items += len(page)
                _report(progress, state)
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


async def _copy_blobs(
    source: BlobPort,
    target: BlobPort,
    hasher: ContentHasher,
    resume: bool,
    progress: ProgressCallback | None,
    state: Progress,
) -> tuple[int, int]:
    """Stream every blob of ``source`` not in ``target`` (a few at once); return how
    many were written and their bytes."""
    written = [0, 0]

    async def one(d: ContentDigest) -> None:
        if resume and await target.contains(d):
            return
        size = await source.size(d)
        if size <= CHUNK_SIZE:  # whole: one read, one write (verified by get, hashed by put)
            got = await target.put(await source.get(d))
        else:
            async with source.open(d) as reader:
                size = reader.size
                got = await target.put(reader.__aiter__())  # verified as it streams
        if got != d:
            raise IntegrityError(f"blob {d.short()} arrived as {got.short()}")
        written[0] += 1
        written[1] += size
        state.bytes += size

    running: set[asyncio.Future[None]] = set()
    try:
        async for d in source.digests():
            hasher.blob(d.as_str())
            if len(running) >= BLOB_WINDOW:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            running.add(asyncio.ensure_future(one(d)))
            state.blobs += 1
            _report(progress, state)
        for task in asyncio.as_completed(running):
            await task
        running = set()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return written[0], written[1]


# --------------------------------------------------------------------------- export


async def export_store(
    source: Ports,
    out: str | os.PathLike[str] | IO[bytes],
    scope: Scope,
    *,
    progress: ProgressCallback | None = None,
    name: str = "source",
) -> MoveSummary:
    """Write ``scope`` of ``source`` to a snapshot file (a path or a binary file
    object). A path is written beside itself (``<path>.partial``) and renamed into
    place when complete, so a failed export never leaves a file under the name."""
    started = time.monotonic()
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        partial = path.with_name(path.name + ".partial")
        try:
            f = await asyncio.to_thread(open, partial, "wb")
        except OSError as e:
            raise ValidationError(f"cannot write the snapshot {path}: {e}") from e
        try:
            summary = await _export(source, f, scope, progress, name, str(path), started)
            await asyncio.to_thread(_sync_and_close, f)
            await asyncio.to_thread(os.replace, partial, path)
        except BaseException:
            f.close()
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        return summary
    return await _export(source, out, scope, progress, name, getattr(out, "name", "-"), started)


def _sync_and_close(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


async def _export(
    source: Ports,
    f: IO[bytes],
    scope: Scope,
    progress: ProgressCallback | None,
    name: str,
    target: str,
    started: float,
) -> MoveSummary:
    try:
        return await _write_snapshot(source, f, scope, progress, name, target, started)
    except OSError as e:  # a full disk, a closed pipe: the file is not complete
        raise EngineError(f"cannot write the snapshot {target}: {e}") from e


async def _write_snapshot(
    source: Ports,
    f: IO[bytes],
    scope: Scope,
    progress: ProgressCallback | None,
    name: str,
    target: str,
    started: float,
) -> MoveSummary:
    state = Progress("export", items_total=await _estimate(source.table, scope), started=started)
    writer = SnapshotWriter(scope)
    await asyncio.to_thread(f.write, writer.start())
    async for page, records in canonical_pages(source.table, scope, page_size=PAGE_SIZE):
        await asyncio.to_thread(f.write, writer.page(page, records))
        state.items += len(page)
        _report(progress, state)
    if scope.blobs:
        state.phase = "blobs"
        async for d in source.blobs.digests():
            async with source.blobs.open(d) as reader:
                await asyncio.to_thread(f.write, writer.blob(d.as_str(), reader.size))
                async for chunk in reader:  # verified: a corrupt blob raises at its end
                    await asyncio.to_thread(f.write, writer.chunk(chunk))
                    state.bytes += len(chunk)
            state.blobs += 1
            _report(progress, state)
    tail, manifest = writer.finish()
    await asyncio.to_thread(f.write, tail)
    return MoveSummary(
        "export",
        name,
        target,
        manifest.digest,
        0,
        0,
        writer.size,
        time.monotonic() - started,
    )


# --------------------------------------------------------------------------- import


async def _events(source: Iterator[Event]) -> AsyncIterator[Event]:
    """The events of a snapshot reader, read and checked on a worker thread a batch
    at a time (the reading is CPU work: checksums, JSON, SHA-256)."""

    def take() -> list[Event]:
        batch: list[Event] = []
        size = 0
        for event in source:
            batch.append(event)
            size += len(event.data) if isinstance(event, Chunk) else 0
            if len(batch) >= _EVENTS_PER_HOP or size >= 4 * 1024 * 1024:
                break
        return batch

    while True:
        try:
            batch = await asyncio.to_thread(take)
        except OSError as e:
            raise EngineError(f"cannot read the snapshot: {e}") from e
        if not batch:
            return
        for event in batch:
            yield event


def _open_snapshot(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(path, "rb", buffering=1024 * 1024)
    except OSError as e:
        raise ValidationError(f"cannot read the snapshot {path}: {e}") from e


async def import_store(
    target: Ports,
    path: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    name: str = "target",
) -> MoveSummary:
    """Load the snapshot at ``path`` into ``target``.

    The whole file is read and checked first (checksums, order, blob digests,
    manifest, file SHA-256, and every item against the target's limits), and
    nothing is written unless all of it is sound; then it is read again and
    written; the import ends with the digest check. A file that changes between
    the two readings is detected and the import stops (resume with a sound file).
    """
    started = time.monotonic()
    display = str(path)
    f = await asyncio.to_thread(_open_snapshot, path)
    try:
        size = os.fstat(f.fileno()).st_size
        state = Progress("import", "check", bytes_total=size, started=started)
        manifest = await _check(target, f, display, resume, progress, state)
        await asyncio.to_thread(f.seek, 0)
        state = Progress(
            "import",
            items_total=manifest.digest.items,
            bytes_total=manifest.blob_bytes,
            started=started,
        )
        written = await _load(target, f, display, resume, progress, state)
    finally:
        await asyncio.to_thread(f.close)
    await _verify(target, manifest.digest, "import", progress, state)
    return MoveSummary(
        "import",
        display,
        name,
        manifest.digest,
        written[0],
        written[1],
        written[2],
        time.monotonic() - started,
    )


async def _check(
    target: Ports,
    f: BinaryIO,
    name: str,
    resume: bool,
    progress: ProgressCallback | None,
    state: Progress,
) -> Manifest:
    """The first reading: everything is checked, nothing is written."""
    batch: list[Item] = []
    manifest: Manifest | None = None
    async for event in _events(read_snapshot(f, name)):
        if isinstance(event, Header):
            if not resume:
                await _refuse_occupied(target, event.scope, "import")
        elif isinstance(event, tuple):
            assert event[2] is not None  # read with decode=True
            batch.append(event[2])
            if len(batch) >= PAGE_SIZE:
                target.table.check_restore(batch)
                state.items += len(batch)
                batch = []
                state.bytes = f.tell()
                _report(progress, state)
        elif isinstance(event, Manifest):
            manifest = event
    target.table.check_restore(batch)
    state.items += len(batch)
    state.bytes = f.tell()
    _report(progress, state)
    assert manifest is not None  # read_snapshot ends with it or raises
    return manifest


async def _load(
    target: Ports,
    f: BinaryIO,
    name: str,
    resume: bool,
    progress: ProgressCallback | None,
    state: Progress,
) -> tuple[int, int, int]:
    """The second reading: write what the first one checked."""
    writer = _Writer(target.table, resume)
    blobs = blob_bytes = 0
    items: list[StoredItem] = []
    records: list[bytes] = []
    events = _events(read_snapshot(f, name, decode=False))

    async def flush() -> None:
        nonlocal items, records
        if items:
            await writer.add(items, records)
            state.items += len(items)
            items, records = [], []
            _report(progress, state)

    try:
        async for event in events:
            if isinstance(event, tuple):
                items.append(event[0])
                records.append(event[1])
                if len(items) >= PAGE_SIZE:
                    await flush()
            elif isinstance(event, BlobStart):
                await flush()
                await writer.flush()
                state.phase = "blobs"
                if await _load_blob(target.blobs, event, events, resume):
                    blobs += 1
                    blob_bytes += event.size
                state.blobs += 1
                state.bytes += event.size
                _report(progress, state)
        await flush()
        await writer.flush()
    finally:
        await writer.aclose()
    return writer.written, blobs, blob_bytes


async def _load_blob(
    blobs: BlobPort, start: BlobStart, events: AsyncIterator[Event], resume: bool
) -> bool:
    """Store the blob whose chunks ``events`` yields next; False if it was there."""

    async def chunks() -> AsyncIterator[bytes]:
        left = start.size
        while left:
            event = await anext(events)
            assert isinstance(event, Chunk)  # read_snapshot checked the framing
            left -= len(event.data)
            yield event.data

    digest = ContentDigest(start.digest)
    if resume and await blobs.contains(digest):
        async for _ in chunks():
            pass
        return False
    if start.size <= CHUNK_SIZE:  # whole: one write
        got = await blobs.put(b"".join([c async for c in chunks()]))
    else:
        got = await blobs.put(chunks())
    if got != digest:
        raise IntegrityError(
            f"blob {digest.short()} of the snapshot arrived as {got.short()}: "
            "the file changed while it was being imported"
        )
    return True
