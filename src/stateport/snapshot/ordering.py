"""Every item of a scope in canonical ``(pk, sk)`` order, in bounded memory.

The table port's scan promises no order (DynamoDB scans in hash order); the
content digest and the snapshot file need key order. An engine whose scan is
ordered (``capabilities.ordered_scan``) streams straight through, prefix by
prefix. Otherwise the items are sorted outside memory: runs of at most
``run_bytes`` of records are sorted and spilled to temporary files, then
merged; a scope that fits in one run is never written to disk.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO, Final

from .. import _json
from ..domains.registry import Scope
from ..ports.table import Item, TablePort
from .records import item_record

__all__ = ["RUN_BYTES", "canonical_pages"]

RUN_BYTES: Final = 32 * 1024 * 1024
"""Bytes of records sorted in memory at a time when the scan is unordered."""

Record = tuple[Item, bytes]
"""An item and its canonical record."""


async def _scope_pages(table: TablePort, scope: Scope, page_size: int) -> AsyncIterator[list[Item]]:
    for prefix in scope.scan_prefixes():
        async for page in table.scan_pages(prefix, page_size=page_size):
            if scope.rest and not scope.everything:
                page = [i for i in page if scope.contains(i.pk)]
            if page:
                yield page


async def canonical_pages(
    table: TablePort, scope: Scope, *, page_size: int = 1000, run_bytes: int = RUN_BYTES
) -> AsyncIterator[list[Record]]:
    """The items of ``scope`` with their records, in ``(pk, sk)`` order, a page at a time."""
    if table.capabilities.ordered_scan:
        async for page in _scope_pages(table, scope, page_size):
            yield [(item, item_record(item)) for item in page]
        return
    with _Runs(run_bytes) as runs:
        async for page in _scope_pages(table, scope, page_size):
            for item in page:
                runs.add(item, item_record(item))
        batch: list[Record] = []
        for record in runs.merged():
            batch.append(record)
            if len(batch) >= page_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _key(record: Record) -> tuple[str, str]:
    return record[0].pk, record[0].sk


class _Runs:
    """Sorted runs of records: the last in memory, the others in temporary files."""

    def __init__(self, run_bytes: int) -> None:
        self._limit = run_bytes
        self._current: list[Record] = []
        self._size = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[str] = []

    def __enter__(self) -> _Runs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            self._dir.cleanup()

    def add(self, item: Item, record: bytes) -> None:
        self._current.append((item, record))
        self._size += len(record) + 200  # the item's objects, roughly
        if self._size >= self._limit:
            self._spill()

    def _spill(self) -> None:
        self._current.sort(key=_key)
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="stateport-sort-")
        path = os.path.join(self._dir.name, f"run{len(self._files)}")
        with open(path, "wb") as f:
            for _, record in self._current:
                f.write(len(record).to_bytes(4, "big"))
                f.write(record)
        self._files.append(path)
        self._current, self._size = [], 0

    def merged(self) -> Iterator[Record]:
        self._current.sort(key=_key)
        if not self._files:
            yield from self._current
            return
        files = [open(path, "rb", buffering=256 * 1024) for path in self._files]  # noqa: SIM115
        try:
            yield from heapq.merge(*(_read_run(f) for f in files), iter(self._current), key=_key)
        finally:
            for f in files:
                f.close()


def _read_run(f: BinaryIO) -> Iterator[Record]:
    while head := f.read(4):
        record = f.read(int.from_bytes(head, "big"))
        pk, sk, version, attrs = _json.decode(record)
        yield Item(pk, sk, attrs, version), record
