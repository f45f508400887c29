"""Running SQLite transactions for async callers.

Each transaction is one Python function run whole against a connection, inside
``BEGIN IMMEDIATE`` (writes) or ``BEGIN`` (reads) — never one thread hop per
statement. Where it runs:

* **inline**, on the caller's thread, on a connection whose busy timeout is 0,
  when that connection is free and the transaction cannot wait on a lock or a
  sync to disk. If SQLite reports the database busy, the attempt is rolled back
  and the transaction is handed to the worker instead. Nothing waits on the
  event loop; a hop to a thread costs several times a small transaction.
* **on the worker thread**, on a connection with the configured busy timeout:
  everything else (a busy database, ``durability=full`` writes, blob streams).
  A database still busy after the timeout raises :class:`Unavailable`.

See docs/decisions/0004-sqlite-threading.md for the measurements behind this.
Driver exceptions are translated here, at the boundary; nothing from
``sqlite3`` reaches a caller.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from ...errors import (
    ConfigError,
    EngineError,
    IntegrityError,
    StateportError,
    Unavailable,
)
from .._errors import ErrorMap, Rule
from .._worker import Worker

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# The log is kept near SQLite's default size (4 MiB): a checkpoint starts after
# _COPY_AT of log, and writes made beside it may add _HOLD_AT more before they
# wait for it (see Executor._count_commit).
_COPY_AT = 3 * 1024 * 1024
_HOLD_AT = 1024 * 1024
_PAGE = 4096


class _Busy(Exception):
    """The inline attempt found the database locked."""


def _codes(*codes: int) -> Callable[[BaseException], bool]:
    """A matcher of SQLite errors by primary result code."""

    def matches(e: BaseException) -> bool:
        code = getattr(e, "sqlite_errorcode", None)
        return isinstance(code, int) and (code & 0xFF) in codes

    return matches


ERRORS = ErrorMap(
    "sqlite3",
    [
        Rule(
            "busy",
            _codes(*_BUSY),
            Unavailable,
            "{where}: the database stayed locked by another writer past the busy timeout "
            "(raise busy_timeout in the URL, or retry)",
        ),
        Rule(
            "not-a-database",
            _codes(sqlite3.SQLITE_NOTADB),
            ConfigError,
            "{where}: the file is not a SQLite database: {detail}",
        ),
        Rule(
            "corrupt",
            _codes(sqlite3.SQLITE_CORRUPT),
            IntegrityError,
            "{where}: the database file is damaged: {detail}",
        ),
        Rule(
            "cannot-open",
            _codes(sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY),
            ConfigError,
            "{where}: cannot open or write the database file: {detail}",
        ),
        Rule(
            "disk-full",
            _codes(sqlite3.SQLITE_FULL),
            EngineError,
            "{where}: the disk is full: {detail}",
        ),
    ],
    fallback="{where}: {detail}",
)
"""How every ``sqlite3`` error reaches a caller (tested row by row by the engine suite)."""


def translate(e: sqlite3.Error, where: str) -> StateportError:
    """The stateport error for a driver error (to be raised ``from e``)."""
    return ERRORS.translate(e, where)


def connect(
    path: str, *, busy_timeout_ms: int, synchronous: str, where: str, switch_to_wal: bool = True
) -> sqlite3.Connection:
    """A connection with stateport's pragmas (WAL, foreign keys, ...).

    ``switch_to_wal``: put the file in WAL mode (which then stays, for every later
    connection). On a new file opened by several connections at once, SQLite may
    refuse the switch with ``SQLITE_BUSY`` at once, without waiting for the busy
    timeout (to avoid a deadlock between the switchers); the caller retries.
    """
    conn = None
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if path != ":memory:" and switch_to_wal:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(f"{where}: cannot switch the database to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    except BaseException as e:
        if conn is not None:
            conn.close()
        if isinstance(e, sqlite3.Error):
            raise translate(e, where) from e
        raise


def _transaction(conn: sqlite3.Connection, work: Work[T], write: bool, single: bool) -> T:
    if single:  # one statement: SQLite makes it its own transaction
        return work(conn)
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = work(conn)
        conn.execute("COMMIT")
        return result
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def is_busy(e: BaseException | None) -> bool:
    """``e`` is SQLite reporting the database locked."""
    code = getattr(e, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _BUSY


class Executor:
    """Runs transactions inline or on one worker thread (see the module doc)."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int,
        synchronous: str,
        where: str,
    ) -> None:
        self._where = where
        memory = path == ":memory:"
        self._worker_conn = connect(
            path, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous, where=where
        )
        if memory:
            # one database, one connection: both paths share it under one lock
            self._inline_conn = self._worker_conn
            self._inline_lock = threading.Lock()
            self._worker_lock = self._inline_lock
        else:
            inline = None
            try:  # the worker's connection has switched the file to WAL already
                inline = connect(
                    path,
                    busy_timeout_ms=0,
                    synchronous=synchronous,
                    where=where,
                    switch_to_wal=False,
                )
                inline.execute("PRAGMA wal_autocheckpoint = 0")
            except BaseException as e:
                for conn in (inline, self._worker_conn):
                    if conn is not None:
                        conn.close()
                if isinstance(e, sqlite3.Error):
                    raise translate(e, where) from e
                raise
            self._inline_conn = inline
            self._inline_lock = threading.Lock()
            self._worker_lock = threading.Lock()
        self._memory = memory
        self.inline_writes = synchronous.upper() != "FULL"
        self._written = 0  # estimated bytes of log written inline since the last checkpoint
        self._checkpointing = False  # writes queue behind a pending checkpoint
        self._copying = False  # a checkpoint runs beside the inline writes
        self._tail_due = False  # it is done: the next write starts the tail's
        self._state = threading.Lock()  # guards the three flags above
        self._worker = Worker(
            "stateport-sqlite", closed=lambda: Unavailable(f"{where}: the store is closed")
        )

    def ensure_open(self) -> None:
        """Raise :class:`Unavailable` once the store is closed."""
        if self._worker.closed:
            raise Unavailable(f"{self._where}: the store is closed")

    # ---- running ---------------------------------------------------------

    async def run(
        self,
        work: Work[T],
        *,
        write: bool,
        inline: bool = True,
        single: bool = False,
        size: int = 0,
    ) -> T:
        """Run ``work`` in one transaction and return its result.

        ``single`` says ``work`` executes exactly one statement (and fetches all
        its rows), which SQLite then runs as its own transaction: no BEGIN/COMMIT.
        ``size`` estimates the bytes a write stores (it paces checkpoints).
        """
        if self._worker.closed:  # ensure_open(), inline on the hot path
            raise Unavailable(f"{self._where}: the store is closed")
        inline = inline and (not write or (self.inline_writes and not self._checkpointing))
        if inline and self._inline_lock.acquire(False):
            try:
                result = self._attempt(work, write, single)
            except _Busy:
                pass
            else:
                if write and not self._memory:
                    self._count_commit(size)
                return result
            finally:
                self._inline_lock.release()
        return await self._submit(work, write, single)

    def _attempt(self, work: Work[T], write: bool, single: bool) -> T:
        try:
            return _transaction(self._inline_conn, work, write, single)
        except sqlite3.Error as e:
            if is_busy(e) and not self._memory:
                raise _Busy from e
            raise translate(e, self._where) from e

    def _count_commit(self, size: int) -> None:
        # The inline connection never checkpoints (that would fsync on the caller's
        # thread); the worker does, in two steps. After about _COPY_AT of log it
        # copies the log while inline writes go on (on another core, this costs
        # the writers nothing). What they wrote meanwhile is still to be copied,
        # so at the next write after that a second checkpoint runs, and until it
        # is done writes queue behind it: it copies that short tail, the log is
        # then copied whole, and the next write starts it again from the top.
        # If the writers outpace the first copy (_HOLD_AT written during it), they
        # queue behind it, and it copies the tail itself. So the log
        # stays bounded, and writes wait for a short tail only.
        self._written += max(size, _PAGE)
        if self._tail_due:
            with self._state:
                self._tail_due = False
                self._checkpointing = True  # hold writes until the tail is copied
            self._fire_checkpoint()
            return
        if self._written < (_HOLD_AT if self._copying else _COPY_AT):
            return
        with self._state:
            if self._copying:
                self._checkpointing = True  # the copy finishes with the tail
                return
            self._written = 0
            self._copying = True
        self._fire_checkpoint()

    def _fire_checkpoint(self) -> None:
        try:
            self._worker.fire(lambda: self._on_worker(self._checkpoint, True, True))
        except Unavailable:  # closing: the last connection to close checkpoints
            with self._state:
                self._checkpointing = self._copying = self._tail_due = False

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the log (the first step, or the tail): see :meth:`_count_commit`."""
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            with self._state:
                if not self._copying:  # this was the tail
                    self._checkpointing = False
                    return
                if not self._checkpointing:  # the tail is the next write's to start
                    self._copying = False
                    self._tail_due = True
                    return
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # writes are held
            with self._state:
                self._copying = self._checkpointing = False
        except BaseException:  # writes must never stay held: start again from scratch
            with self._state:
                self._copying = self._checkpointing = self._tail_due = False
            raise

    def _submit(self, work: Work[T], write: bool, single: bool) -> asyncio.Future[T]:
        return self._worker.submit(lambda: self._on_worker(work, write, single))

    def _on_worker(self, work: Work[T], write: bool, single: bool) -> T:
        with self._worker_lock:
            try:
                return _transaction(self._worker_conn, work, write, single)
            except sqlite3.Error as e:
                raise translate(e, self._where) from e

    # ---- closing ---------------------------------------------------------

    def close_now(self) -> None:
        """Close the connections of an executor that never started its worker."""
        self._worker.closed = True
        self._inline_conn.close()
        self._worker_conn.close()

    async def aclose(self) -> None:
        if self._worker.closed:
            return
        await self._worker.aclose()
        with self._inline_lock:
            self._inline_conn.close()
        if not self._memory:
            with self._worker_lock:
                self._worker_conn.close()
