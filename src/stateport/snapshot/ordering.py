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

from ..domains.registry import Scope
from ..ports.table import StoredItem, TablePort
from .records import parse_record, stored_records

__all__ = ["RUN_BYTES", "Records", "canonical_pages"]

RUN_BYTES: Final = 32 * 1024 * 1024
"""Bytes of records sorted in memory at a time when the scan is unordered."""

Record = tuple[StoredItem, bytes]
"""An item as stored, and its canonical record."""

Records = tuple[list[StoredItem], list[bytes]]
"""A page: items as stored, and their canonical records, in the same order."""


async def _scope_pages(
    table: TablePort, scope: Scope, page_size: int
) -> AsyncIterator[list[StoredItem]]:
    for prefix in scope.scan_prefixes():
        async for page in table.scan_stored_pages(prefix, page_size=page_size):
            if scope.rest and not scope.everything:
                page = [i for i in page if scope.contains(i.pk)]
            if page:
                yield page


async def canonical_pages(
    table: TablePort, scope: Scope, *, page_size: int = 1000, run_bytes: int = RUN_BYTES
) -> AsyncIterator[Records]:
    """The items of ``scope`` with their records, in ``(pk, sk)`` order, a page at a time."""
    if table.capabilities.ordered_scan:
        async for page in _scope_pages(table, scope, page_size):
            yield page, stored_records(page)
        return
    with _Runs(run_bytes) as runs:
        async for page in _scope_pages(table, scope, page_size):
            for item, record in zip(page, stored_records(page), strict=True):
                runs.add(item, record)
        items: list[StoredItem] = []
        records: list[bytes] = []
        for item, record in runs.merged():
            items.append(item)
            records.append(record)
            if len(items) >= page_size:
                yield items, records
                items, records = [], []
        if items:
            yield items, records


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

    def add(self, item: StoredItem, record: bytes) -> None:
        self._current.append((item, record))
        self._size += 2 * len(record) + 200  # the record, the item's strings and objects
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
        yield parse_record(record), record
