"""Snapshot files: export a store (or a scope of it) and import it again.

The format is :mod:`.fileformat`'s; the moving is :mod:`.moving`'s. An export
writes to ``<path>.partial`` and renames it when complete. An import reads the
file twice: the first reading checks all of it (and every item against the
target's limits) and writes nothing; the second writes; the import ends with
the digest comparison. See docs/decisions/0023-snapshot-file-format.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, BinaryIO, Final

from .._json import check_json
from ..digest import ContentDigest
from ..domains.registry import Scope
from ..errors import EngineError, IntegrityError, ValidationError
from ..ports.blob import CHUNK_SIZE, BlobPort
from ..ports.table import StoredItem
from .fileformat import BlobStart, Chunk, Event, Header, Manifest, SnapshotWriter, read_snapshot
from .moving import (
    BATCH_BLOBS,
    BATCH_BYTES,
    BLOB_WINDOW,
    PAGE_SIZE,
    MoveSummary,
    PageWriter,
    Ports,
    Progress,
    ProgressCallback,
    Window,
    estimate_items,
    refuse_occupied,
    report,
    verify_target,
)
from .ordering import canonical_pages

__all__ = ["export_store", "import_store"]

_EVENTS_PER_HOP: Final = 512  # snapshot events read per trip to a worker thread


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
            summary = await _write_snapshot(source, f, scope, progress, name, str(path), started)
            try:
                await asyncio.to_thread(_sync_and_close, f)
                await asyncio.to_thread(os.replace, partial, path)
            except OSError as e:
                raise EngineError(f"cannot write the snapshot {path}: {e}") from e
        except BaseException:
            f.close()
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        return summary
    return await _write_snapshot(
        source, out, scope, progress, name, getattr(out, "name", "-"), started
    )


def _sync_and_close(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


async def _write_snapshot(
    source: Ports,
    f: IO[bytes],
    scope: Scope,
    progress: ProgressCallback | None,
    name: str,
    target: str,
    started: float,
) -> MoveSummary:
    total = await estimate_items(source.table, scope)
    state = Progress("export", items_total=total, started=started)
    writer = SnapshotWriter(scope)
    out = _Buffered(f, target)
    await out.write(writer.start())
    async for page, records in canonical_pages(source.table, scope, page_size=PAGE_SIZE):
        await out.write(writer.page(page, records))
        state.items += len(page)
        report(progress, state)
    if scope.blobs:
        state.phase = "blobs"
        blobs = source.blobs
        async for d in blobs.digests():
            size = await blobs.size(d)
            if size <= CHUNK_SIZE:  # whole: one read (verified by get)
                data = await blobs.get(d)
                await out.write(writer.blob(d.as_str(), len(data)))
                if data:
                    await out.write(writer.chunk(data))
            else:
                async with blobs.open(d) as reader:
                    await out.write(writer.blob(d.as_str(), reader.size))
                    async for chunk in reader:  # verified: a corrupt blob raises at its end
                        await out.write(writer.chunk(chunk))
            state.bytes += size
            state.blobs += 1
            report(progress, state)
    tail, manifest = writer.finish()
    await out.write(tail)
    await out.flush()
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


class _Buffered:
    """Writes to ``f`` on a worker thread, a megabyte or more at a time; a failed
    write (a full disk, a closed pipe) is an :class:`EngineError` naming ``name``."""

    def __init__(self, f: IO[bytes], name: str) -> None:
        self._f = f
        self._name = name
        self._parts: list[bytes] = []
        self._size = 0

    async def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)
        if self._size >= CHUNK_SIZE:
            await self.flush()

    async def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts, self._size = [], 0
            try:
                await asyncio.to_thread(self._f.write, data)
            except OSError as e:
                raise EngineError(f"cannot write the snapshot {self._name}: {e}") from e


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
    await verify_target(target, manifest.digest, "import", progress, state)
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
    """The first reading: everything is checked, nothing is written. Items are
    checked as JSON values (nesting, and numbers in portable mode) and as what
    ``restore_stored`` will write (keys, versions, sizes, index keys)."""
    table = target.table
    portable = table.capabilities.portable
    batch: list[StoredItem] = []
    manifest: Manifest | None = None

    def check(batch: list[StoredItem]) -> None:
        table.check_restore_stored(batch)
        state.items += len(batch)
        state.bytes = f.tell()
        report(progress, state)

    async for event in _events(read_snapshot(f, name)):
        if isinstance(event, Header):
            if not resume:
                await refuse_occupied(target, event.scope, "import")
        elif isinstance(event, tuple):
            stored, _, item = event
            assert item is not None  # read with decode=True
            check_json(item.attrs, portable=portable, where=f"item {(item.pk, item.sk)!r}")
            batch.append(stored)
            if len(batch) >= PAGE_SIZE:
                check(batch)
                batch = []
        elif isinstance(event, Manifest):
            manifest = event
    check(batch)
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
    """The second reading: write what the first one checked (blobs a few at once)."""
    writer = PageWriter(target.table, resume)
    window = Window(BLOB_WINDOW)
    written = [0, 0]  # blobs, bytes
    items: list[StoredItem] = []
    records: list[bytes] = []
    events = _events(read_snapshot(f, name, decode=False))

    async def flush() -> None:
        nonlocal items, records
        if items:
            await writer.add(items, records)
            state.items += len(items)
            items, records = [], []
            report(progress, state)

    async def store_small(batch: list[tuple[BlobStart, bytes]]) -> None:
        if resume:  # those stored already are skipped
            batch = [b for b in batch if not await target.blobs.contains(b[0].digest)]
        got = await target.blobs.put_many([data for _, data in batch])
        for (start, _), d in zip(batch, got, strict=True):
            if d.as_str() != start.digest:
                raise IntegrityError(
                    f"blob {start.digest[:12]} of the snapshot arrived as {d.short()}: "
                    "the file changed while it was being imported"
                )
            written[0] += 1
            written[1] += start.size

    small: list[tuple[BlobStart, bytes]] = []
    held = 0

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
                if event.size <= CHUNK_SIZE:  # whole: written with others, aside
                    small.append((event, b"".join([c async for c in _chunks(event, events)])))
                    held += event.size
                    if len(small) >= BATCH_BLOBS or held >= BATCH_BYTES:
                        await window.add(store_small(small))
                        small, held = [], 0
                elif await _store_blob(target.blobs, event, events, resume):  # streamed
                    written[0] += 1
                    written[1] += event.size
                state.blobs += 1
                state.bytes += event.size
                report(progress, state)
        await flush()
        await writer.flush()
        if small:
            await window.add(store_small(small))
        await window.drain()
    finally:
        await window.aclose()
        await writer.aclose()
    return writer.written, written[0], written[1]


async def _chunks(start: BlobStart, events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The chunks of the blob ``start`` begins, which ``events`` yields next."""
    left = start.size
    while left:
        event = await anext(events)
        assert isinstance(event, Chunk)  # read_snapshot checked the framing
        left -= len(event.data)
        yield event.data


async def _store_blob(
    blobs: BlobPort, start: BlobStart, events: AsyncIterator[Event], resume: bool
) -> bool:
    """Store the blob ``start`` begins from its chunks, which ``events`` yields next;
    False if it was there already (when resuming)."""
    digest = ContentDigest(start.digest)
    if resume and await blobs.contains(digest):
        async for _ in _chunks(start, events):
            pass
        return False
    got = await blobs.put(_chunks(start, events))
    if got != digest:
        raise IntegrityError(
            f"blob {digest.short()} of the snapshot arrived as {got.short()}: "
            "the file changed while it was being imported"
        )
    return True
