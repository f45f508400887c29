"""The benchmarks: each stateport operation beside a hand-written equivalent.

A :class:`SpeedCase` times ``ops`` operations of stateport (:meth:`~SpeedCase.ours`)
or of its baseline (:meth:`~SpeedCase.baseline`) and returns the seconds taken;
set-up (opening stores, generating input) is outside the timed region.
:func:`stream_memory` runs ``stream_memory.py`` in a fresh process.

Paths are relative to the repository root, which ``run.py`` makes the working
directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import stateport
from stateport import Put

WORK = Path("bench/.work") / str(os.getpid())  # per run: two runs never share files
BLOB_SIZE = 64 * 1024

Items = list[tuple[str, str, dict[str, Any]]]  # (pk, sk, attrs) as a caller has them
Row = tuple[str, str, int, str]  # (pk, sk, version, canonical JSON) as the baseline stores it
Log = Callable[[str], None]

_BODY = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris."
)

_RAW_DDL = """
CREATE TABLE items (
    pk      TEXT NOT NULL,
    sk      TEXT NOT NULL,
    version INTEGER NOT NULL,
    attrs   TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID
"""
_RAW_INSERT = "INSERT INTO items (pk, sk, version, attrs) VALUES (?, ?, ?, ?)"


def canonical(attrs: dict[str, Any]) -> str:
    """The canonical JSON stateport stores: sorted keys, compact, UTF-8."""
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_items(first: int, n: int) -> Items:
    """Items ``first`` to ``first + n - 1``: about 300 bytes of JSON each, over 64 partitions."""
    return [
        (
            f"tenant#{i % 64:03d}",
            f"doc#{i:09d}",
            {
                "title": f"Document {i}",
                "owner": f"user#{i % 997}",
                "n": i,
                "score": i * 0.25,
                "tags": ["alpha", "beta", "gamma"],
                "done": i % 2 == 0,
                "body": _BODY,
            },
        )
        for i in range(first, first + n)
    ]


def remove_db(path: Path) -> None:
    """Delete an SQLite database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def raw_connect(path: Path, ddl: str | None = _RAW_DDL) -> sqlite3.Connection:
    """A fresh baseline database: autocommit driver mode, WAL, synchronous=NORMAL,
    with the table ``ddl`` creates (none if None)."""
    remove_db(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    if ddl is not None:
        conn.execute(ddl)
    return conn


async def open_store(url: str) -> stateport.Stateport:
    """The store at ``url`` (a coroutine, for ``asyncio.Runner.run``)."""
    return await stateport.open(url)


class SpeedCase(ABC):
    """One benchmark: stateport against its baseline on the same work."""

    name: ClassVar[str]
    unit: ClassVar[str]  # what one timed operation is ("put", "txn")
    target: ClassVar[float]  # minimum ratio of ours speed / baseline speed
    # a stretch goal: short of it is reported (SHORT), but is not a missed target
    stretch: ClassVar[bool] = False
    items_per_op: ClassVar[int] = 1
    ops: ClassVar[int]  # operations per timed round
    quick_ops: ClassVar[int]
    warm_ops: ClassVar[int] = 0  # untimed operations per side before the rounds

    def __init__(self, runner: asyncio.Runner, log: Log, *, quick: bool) -> None:
        self.runner = runner
        self.log = log
        self.quick = quick

    @property
    def warm(self) -> int:
        """Warm-up operations per side (a tenth in a quick run)."""
        return max(1, self.warm_ops // 10) if self.quick else self.warm_ops

    @classmethod
    def skip_reason(cls) -> str | None:
        """Why this benchmark cannot run here (None when it can)."""
        return None

    def setup(self) -> None:
        """Prepare state shared by every round (untimed)."""
        return None

    def teardown(self) -> None:
        """Release what :meth:`setup` made."""
        return None

    @abstractmethod
    def ours(self, n: int) -> float:
        """Seconds for ``n`` operations through stateport."""

    @abstractmethod
    def baseline(self, n: int) -> float:
        """Seconds for ``n`` operations of the hand-written equivalent."""


class NewItems:
    """Each side's next new items: the same keys in the same order on both sides.

    For cases with ``runner``, ``sp`` (the stateport store), ``items_per_op``
    and ``_next`` (the next item number of each side, set up as
    ``{"ours": 0, "baseline": 0}``).
    """

    runner: asyncio.Runner
    sp: stateport.Stateport
    items_per_op: ClassVar[int]
    _next: dict[str, int]

    def _items(self, side: str, n: int) -> Items:
        """The next ``n`` operations' worth of new items for ``side``."""
        count = n * self.items_per_op
        first = self._next[side]
        self._next[side] += count
        return make_items(first, count)

    def _batches(self, side: str, n: int) -> list[Items]:
        """The next ``n`` transactions' items for ``side``, ``items_per_op`` each."""
        items = self._items(side, n)
        size = self.items_per_op
        return [items[i : i + size] for i in range(0, len(items), size)]

    async def _transact(self, batches: list[Items]) -> float:
        """Seconds to put each batch with one ``table.transact``."""
        transact = self.sp.table.transact
        gc.collect()
        started = time.perf_counter()
        for batch in batches:
            await transact([Put(pk, sk, attrs) for pk, sk, attrs in batch])
        return time.perf_counter() - started


class _TableCase(NewItems, SpeedCase):
    """A table benchmark: one stateport store and one raw database, each opened once
    and warmed (untimed) so that rounds see a steady state: a populated table and
    WAL checkpoints under way. Both sides insert the same keys in the same order."""

    db: ClassVar[Path]
    raw_db: ClassVar[Path]
    url: ClassVar[str]

    def setup(self) -> None:
        remove_db(self.db)
        self.sp = self.runner.run(open_store(self.url))
        self.conn = raw_connect(self.raw_db)
        self._next = {"ours": 0, "baseline": 0}
        self.log(f"{self.name}: warming both databases, {self.warm} {self.unit}s each (untimed)")
        self.ours(self.warm)
        self.baseline(self.warm)

    def teardown(self) -> None:
        self.runner.run(self.sp.aclose())
        self.conn.close()
        remove_db(self.db)
        remove_db(self.raw_db)


class ItemPut(_TableCase):
    """``table.put`` of one item per transaction vs a raw ``INSERT`` per transaction."""

    name = "item_put"
    unit = "put"
    target = 0.5
    ops = 10000
    quick_ops = 1000
    warm_ops = 5000

    db = WORK / "x.db"
    raw_db = WORK / "x-raw.db"
    url = f"sqlite:///{db}"

    def ours(self, n: int) -> float:
        return self.runner.run(self._puts(self._items("ours", n)))

    async def _puts(self, items: Items) -> float:
        put = self.sp.table.put
        gc.collect()
        started = time.perf_counter()
        for pk, sk, attrs in items:
            await put(pk, sk, attrs)
        return time.perf_counter() - started

    def baseline(self, n: int) -> float:
        items = self._items("baseline", n)
        execute = self.conn.execute
        gc.collect()
        started = time.perf_counter()
        for pk, sk, attrs in items:
            execute("BEGIN IMMEDIATE")
            execute(_RAW_INSERT, (pk, sk, 1, canonical(attrs)))
            execute("COMMIT")
        return time.perf_counter() - started


class Transact100(_TableCase):
    """``table.transact`` of 100 puts vs a raw ``executemany`` of 100 rows per transaction."""

    name = "transact_100"
    unit = "txn"
    target = 0.6
    items_per_op = 100
    # a round of 1000 transactions includes several WAL checkpoints on each side
    # (stateport's after about 4 MiB of log), so best-of-rounds cannot skip them
    ops = 1000
    quick_ops = 50
    warm_ops = 100

    db = WORK / "t.db"
    raw_db = WORK / "t-raw.db"
    url = f"sqlite:///{db}"

    def ours(self, n: int) -> float:
        return self.runner.run(self._transact(self._batches("ours", n)))

    def baseline(self, n: int) -> float:
        batches = self._batches("baseline", n)
        conn = self.conn
        execute = conn.execute
        gc.collect()
        started = time.perf_counter()
        for batch in batches:
            rows: list[Row] = [(pk, sk, 1, canonical(attrs)) for pk, sk, attrs in batch]
            execute("BEGIN IMMEDIATE")
            conn.executemany(_RAW_INSERT, rows)
            execute("COMMIT")
        return time.perf_counter() - started


def _fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def raw_blob_put(root: Path, data: bytes) -> str:
    """A durable content-addressed write by hand: sha256, temporary file, fsync,
    rename into ``objects/ab/cdef...``, fsync the directory."""
    digest = hashlib.sha256(data).hexdigest()
    tmp = root / "tmp" / f"{digest}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    fan = root / "objects" / digest[:2]
    try:
        os.mkdir(fan)
    except FileExistsError:
        created = False
    else:
        created = True
    os.rename(tmp, fan / digest[2:])
    _fsync_dir(fan)
    if created:
        _fsync_dir(root / "objects")
    return digest


class BlobPut64kDurable(SpeedCase):
    """``blobs.put`` of new 64 KiB blobs, durable filesystem backend, vs a raw durable write.

    Both stores keep the two-level ``objects/ab/...`` layout and are warmed first
    (untimed) with 2000 puts each, after which (nearly) all 256 fan-out directories
    exist: rounds measure the steady state rather than directory creation.
    """

    name = "blob_put_64k_durable"
    unit = "put"
    target = 0.8
    ops = 1000
    quick_ops = 100

    db = WORK / "b.db"
    url = f"sqlite:///{db}?durability=full&blobs={WORK / 'objects'}"
    raw_root = WORK / "raw-objects"
    warm_ops = 2000

    def setup(self) -> None:
        self._rng = random.Random(64)
        remove_db(self.db)
        self.sp = self.runner.run(open_store(self.url))
        for sub in ("tmp", "objects"):
            (self.raw_root / sub).mkdir(parents=True, exist_ok=True)
        self.log(f"{self.name}: warming both stores, {self.warm} puts each (untimed)")
        self.ours(self.warm)
        self.baseline(self.warm)

    def teardown(self) -> None:
        self.runner.run(self.sp.aclose())
        remove_db(self.db)

    def _payloads(self, n: int) -> list[bytes]:
        """``n`` blobs never seen before (a repeat would be deduplicated, not written)."""
        return [self._rng.randbytes(BLOB_SIZE) for _ in range(n)]

    def ours(self, n: int) -> float:
        return self.runner.run(self._puts(self._payloads(n)))

    async def _puts(self, payloads: list[bytes]) -> float:
        put = self.sp.blobs.put
        gc.collect()
        started = time.perf_counter()
        for data in payloads:
            await put(data)
        return time.perf_counter() - started

    def baseline(self, n: int) -> float:
        payloads = self._payloads(n)
        root = self.raw_root
        gc.collect()
        started = time.perf_counter()
        for data in payloads:
            raw_blob_put(root, data)
        return time.perf_counter() - started


SPEED_CASES: tuple[type[SpeedCase], ...] = (ItemPut, Transact100, BlobPut64kDurable)


# --------------------------------------------------------------------------- memory

STREAM_NAME = "blob_stream_1gib_memory"
STREAM_BUDGET_MIB = 64
STREAM_MIB = 1024
STREAM_QUICK_MIB = 128
STREAM_MIN_FREE = 4 * 1024**3

STREAM_DB = WORK / "s.db"
STREAM_OBJECTS = WORK / "stream-objects"
STREAM_BACKENDS: tuple[tuple[str, str], ...] = (
    # (label, store URL): the filesystem blob backend, then blobs inside the SQLite file
    ("filesystem", f"sqlite:///{STREAM_DB}?blobs={STREAM_OBJECTS}"),
    ("sqlite", f"sqlite:///{STREAM_DB}"),
)


@dataclass(frozen=True)
class StreamResult:
    backend: str
    mib: int
    base_mib: float
    peak_mib: float
    put_s: float
    read_s: float
    peak_reset: bool

    @property
    def above_base_mib(self) -> float:
        return self.peak_mib - self.base_mib


def stream_memory(url: str, mib: int, backend: str) -> StreamResult:
    """Run ``stream_memory.py`` in a fresh interpreter and parse its report."""
    script = Path(__file__).with_name("stream_memory.py")
    proc = subprocess.run(
        [sys.executable, str(script), "--url", url, "--mib", str(mib)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    remove_db(STREAM_DB)
    shutil.rmtree(STREAM_OBJECTS, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return StreamResult(
        backend=backend,
        mib=mib,
        base_mib=out["base_kib"] / 1024,
        peak_mib=out["peak_kib"] / 1024,
        put_s=out["put_s"],
        read_s=out["read_s"],
        peak_reset=out["peak_reset"],
    )
