"""The SQLite backend: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
``sqlite://:memory:``.

URL parameters:

``durability``
    ``normal`` (default: WAL with ``synchronous=NORMAL``; a power cut may lose
    the last commits, never corrupt) or ``full`` (``synchronous=FULL``: every
    commit is on disk when it returns).
``busy_timeout``
    Milliseconds a write waits for another process's lock before
    :class:`~stateport.errors.Unavailable` (default 5000).
``portable``
    Enforce DynamoDB's limits (default true).
``blobs``
    Where blobs go (default: inside the database file); see :mod:`.._blobs`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime
from typing import Any

from ..._retry import Backoff, Retry, retrying
from ...errors import ConfigError, Unavailable
from ...migrations import pending, schema_status
from ...ports.engine import AppliedMigration, Capability, Engine, SchemaStatus
from ...url import StoreURL
from .._blobs import choose_blobs
from ._executor import Executor, is_busy
from .blob import SqliteBlobPort
from .schema import LEDGER_DDL, MIGRATIONS
from .table import SqliteTablePort

__all__ = ["SqliteEngine", "open_sqlite"]


def _applied(conn: sqlite3.Connection) -> list[AppliedMigration]:
    rows = conn.execute(
        "SELECT version, name, applied_at FROM sp_migrations ORDER BY version"
    ).fetchall()
    return [AppliedMigration(*r) for r in rows]


class SqliteEngine(Engine):
    """A SQLite database file (or ``:memory:``) holding the table and, by default, blobs."""

    def __init__(
        self,
        path: str,
        *,
        durability: str,
        busy_timeout_ms: int,
        portable: bool,
        blobs: str | None = None,
    ) -> None:
        self.path = path
        self._where = f"SQLite database {path}"
        self._settings = {
            "durability": durability,
            "busy_timeout_ms": busy_timeout_ms,
            "portable": portable,
        }
        self._x = Executor(
            path,
            busy_timeout_ms=busy_timeout_ms,
            synchronous="FULL" if durability == "full" else "NORMAL",
            where=self._where,
        )
        try:
            self.table = SqliteTablePort(self._x, portable=portable)
            self.blobs = choose_blobs(
                blobs, lambda: SqliteBlobPort(self._x), durable=durability == "full"
            )
        except BaseException:
            self._x.close_now()
            raise

    @property
    def capabilities(self) -> frozenset[Capability]:
        if self.path == ":memory:":  # one connection's private database
            return frozenset({Capability.MIGRATIONS})
        return frozenset({Capability.MIGRATIONS, Capability.PERSISTENT, Capability.MULTI_PROCESS})

    async def _bootstrap(self) -> None:
        """Create the migration ledger if missing; refuse a schema from the future."""

        def has_ledger(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sp_migrations'"
                ).fetchone()
            )

        if not await self._x.run(has_ledger, write=False):
            # only a new database takes the write lock on open
            await self._x.run(lambda conn: conn.execute(LEDGER_DDL), write=True, inline=False)
        await self.schema_version()

    async def migrate(self, *, stop_before: int | None = None) -> list[AppliedMigration]:
        done: list[AppliedMigration] = []
        status = await self.schema_version()
        for m in pending(MIGRATIONS, [a.version for a in status.applied], stop_before):

            def work(conn: sqlite3.Connection, m: Any = m) -> AppliedMigration | None:
                if conn.execute(
                    "SELECT 1 FROM sp_migrations WHERE version = ?", (m.version,)
                ).fetchone():
                    return None  # another process applied it meanwhile
                for statement in m.steps:
                    conn.execute(statement)
                record = AppliedMigration(m.version, m.name, datetime.now(UTC).isoformat())
                conn.execute(
                    "INSERT INTO sp_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (record.version, record.name, record.applied_at),
                )
                return record

            record = await self._x.run(work, write=True, inline=False)
            if record is not None:
                done.append(record)
        return done

    async def schema_version(self) -> SchemaStatus:
        applied = await self._x.run(_applied, write=False)
        return schema_status(MIGRATIONS, applied, self._where)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": f"sqlite {sqlite3.sqlite_version}",
            "location": self.path,
            **self._settings,
            "blobs": self.blobs.location(),
        }

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self._x.aclose()


def _first_open_backoff(busy_timeout_ms: int) -> Backoff:
    """Retries of a first open that found the new file locked: about the busy timeout."""
    return Backoff(tries=max(3, busy_timeout_ms // 25), immediate=1, base=0.001, cap=0.05)


def _path_of(url: StoreURL) -> str:
    if url.netloc == ":memory:" and url.path in ("", "/"):
        return ":memory:"
    if url.netloc:
        raise url.fail(
            "an SQLite URL has no host: write sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite://:memory:"
        )
    path = url.path[1:] if url.path.startswith("/") else url.path
    if not path:
        raise url.fail("no database path: write sqlite:///path/to/state.db")
    return path


async def open_sqlite(url: StoreURL) -> SqliteEngine:
    """Open (creating if needed) the database a ``sqlite://`` URL names."""
    path = _path_of(url)
    durability = url.take_choice("durability", "normal", ("normal", "full"))
    busy_timeout_ms = url.take_int("busy_timeout", 5000)
    portable = url.take_bool("portable", True)
    blobs = url.take_str("blobs")
    url.finish()

    def connect() -> SqliteEngine:  # file system work and connecting: off the loop
        if path != ":memory:":
            if not url.create and not os.path.exists(path):
                raise ConfigError(
                    f"no database at {path}: check the URL, or create it with  stateport db migrate"
                )
            parent = os.path.dirname(path) or "."
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"cannot create the directory {parent} for {path}: {e}") from e
        return SqliteEngine(
            path,
            durability=durability,
            busy_timeout_ms=busy_timeout_ms,
            portable=portable,
            blobs=blobs,
        )

    async def attempt() -> SqliteEngine:
        try:
            return await asyncio.to_thread(connect)
        except Unavailable as e:
            if is_busy(e.__cause__):  # a new file switched to WAL by another opener
                raise Retry("the new database was being set up by another connection") from None
            raise

    engine = await retrying(
        attempt,
        what=f"SQLite database {path}",
        backoff=_first_open_backoff(busy_timeout_ms),
        exhausted=Unavailable,
    )
    try:
        await engine._bootstrap()
    except BaseException:
        await engine.aclose()
        raise
    return engine
