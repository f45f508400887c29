"""The conformance suite, run against every backend of this package.

Each engine is one class of hooks (the URL of a fresh store, and what the engine
suite asks of the engine itself); :func:`stateport.testing.conformance_classes`
runs every suite of the kit with it, including suites added later.
PostgreSQL does the same in tests/test_postgres.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import stateport.testing
from stateport.backends.sqlite import SqliteEngine
from stateport.backends.sqlite._executor import ERRORS as SQLITE_ERRORS
from stateport.errors import ConfigError, EngineError, IntegrityError, Unavailable
from stateport.ports import Engine
from stateport.testing import (
    BlobPortConformance,
    DriverErrors,
    EngineConformance,
    RunLedgerConformance,
    StoreConformance,
    conformance_classes,
)

# ---------------------------------------------------------------- memory


class _Memory:
    """memory://: no schema, no driver, nothing shared with other processes."""

    def store_url(self) -> str:
        return "memory://"

    async def catalogue(self, engine: Engine) -> object:
        raise AssertionError("memory:// keeps no schema: asked only of engines with MIGRATIONS")

    async def record_unknown_migration(self, engine: Engine, version: int) -> None:
        raise AssertionError("memory:// records no migrations: asked only with MIGRATIONS")

    def driver_errors(self) -> DriverErrors | None:
        return None  # no driver

    async def drop_item_table(self, engine: Engine) -> None:
        raise AssertionError("memory:// has no driver to fail: asked only with driver_errors")

    async def check_consistency(self, engine: Engine) -> None:
        raise AssertionError("memory:// is not shared by processes: asked only with MULTI_PROCESS")


# ---------------------------------------------------------------- SQLite


def _sqlite_error(kind: type[sqlite3.Error], code: int, message: str) -> sqlite3.Error:
    """A driver error SQLite raises only on a damaged file or a full disk."""
    e = kind(message)
    e.sqlite_errorcode = code  # type: ignore[attr-defined]
    return e


def _raised(fn: object) -> sqlite3.Error:
    try:
        fn()  # type: ignore[operator]
    except sqlite3.Error as e:
        return e
    raise AssertionError(f"{fn} raised nothing")


def sqlite_driver_errors(tmp: Path) -> DriverErrors:
    """Real driver errors of a real SQLite for every row that can be provoked, made
    up for the two that need a damaged file or a full disk."""
    locked = tmp / "locked.db"
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(locked, isolation_level=None, timeout=0)
    garbage = tmp / "notes.db"
    garbage.write_bytes(b"this is not a database" * 100)
    not_a_database = sqlite3.connect(garbage)
    readonly = sqlite3.connect(f"file:{locked}?mode=ro", uri=True, isolation_level=None)
    try:
        cases: list[tuple[BaseException, type]] = [
            (_raised(lambda: other.execute("BEGIN IMMEDIATE")), Unavailable),
            (_raised(lambda: not_a_database.execute("SELECT 1 FROM t")), ConfigError),
            (_raised(lambda: sqlite3.connect(tmp / "no" / "dir.db")), ConfigError),
            (_raised(lambda: readonly.execute("DELETE FROM t")), ConfigError),
            (
                _sqlite_error(sqlite3.DatabaseError, sqlite3.SQLITE_CORRUPT, "malformed"),
                IntegrityError,
            ),
            (
                _sqlite_error(sqlite3.OperationalError, sqlite3.SQLITE_FULL, "disk full"),
                EngineError,
            ),
            (_raised(lambda: other.execute("SELECT * FROM no_such_table")), EngineError),
        ]
    finally:
        holder.execute("ROLLBACK")
        for conn in (holder, other, not_a_database, readonly):
            conn.close()
    return DriverErrors(SQLITE_ERRORS, cases)


class _Sqlite:
    """What the engine suite asks of any SQLite store."""

    tmp_path: Path

    def _engine(self, engine: Engine) -> SqliteEngine:
        assert isinstance(engine, SqliteEngine)
        return engine

    async def catalogue(self, engine: Engine) -> object:
        def read(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
            return sorted(
                conn.execute(
                    "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchall()
            )

        return await self._engine(engine)._x.run(read, write=False)

    async def record_unknown_migration(self, engine: Engine, version: int) -> None:
        await self._engine(engine)._x.run(
            lambda conn: conn.execute(
                "INSERT INTO sp_migrations VALUES (?, 'from a newer stateport', '2099-01-01')",
                (version,),
            ),
            write=True,
            inline=False,
        )

    def driver_errors(self) -> DriverErrors | None:
        return sqlite_driver_errors(self.tmp_path)

    async def drop_item_table(self, engine: Engine) -> None:
        await self._engine(engine)._x.run(
            lambda conn: conn.execute("DROP TABLE sp_items"), write=True, inline=False
        )

    async def check_consistency(self, engine: Engine) -> None:
        rows = await self._engine(engine)._x.run(
            lambda conn: conn.execute("PRAGMA integrity_check").fetchall(), write=False
        )
        assert rows == [("ok",)], rows


class _SqliteFile(_Sqlite):
    def store_url(self) -> str:
        return f"sqlite:///{self.fresh_path('s')}.db"


class _SqliteDurable(_Sqlite):
    """durability=full: every write goes through the worker thread."""

    def store_url(self) -> str:
        return f"sqlite:///{self.fresh_path('d')}.db?durability=full"


class _SqliteMemory(_Sqlite):
    def store_url(self) -> str:
        return "sqlite://:memory:"


ENGINES: dict[str, type] = {
    "Memory": _Memory,
    "SqliteFile": _SqliteFile,
    "SqliteDurable": _SqliteDurable,
    "SqliteMemory": _SqliteMemory,
}

# TestMemoryRunLedger, TestSqliteFileEngine, ...: every suite of the kit on every engine
for _engine, _hooks in ENGINES.items():
    globals().update(conformance_classes(_engine, _hooks))


# ---------------------------------------------------------------- blob directories


class _FilesystemBlobs:
    def store_url(self) -> str:
        return f"memory://?blobs={self.fresh_path('objects')}"


class _FilesystemDurableBlobs:
    def store_url(self) -> str:
        db, objects = self.fresh_path("b"), self.fresh_path("o")
        return f"sqlite:///{db}.db?durability=full&blobs={objects}"


for _engine, _hooks in {
    "Filesystem": _FilesystemBlobs,
    "FilesystemDurable": _FilesystemDurableBlobs,
}.items():
    globals().update(conformance_classes(_engine, _hooks, only=[BlobPortConformance]))


def test_every_suite_runs_on_every_engine() -> None:
    """Found independently of conformance_classes: every StoreConformance subclass
    defined in stateport.testing has a class here for every engine."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(stateport.testing.__path__):
        importlib.import_module(f"stateport.testing.{info.name}")
    kit = [
        s
        for s in StoreConformance.__subclasses__()
        if s.__module__.startswith("stateport.testing.")
    ]
    assert len(kit) >= 10
    for suite in kit:
        for engine in ENGINES:
            name = f"Test{engine}{suite.__name__.removesuffix('Conformance')}"
            assert name in globals(), name


def test_a_test_class_that_forgets_a_hook_is_refused() -> None:
    """pytest passes over an abstract class without a word: the kit refuses it."""

    class UrlOnly:
        def store_url(self) -> str:
            return "memory://"

    with pytest.raises(TypeError, match="catalogue, check_consistency, driver_errors"):
        conformance_classes("UrlOnly", UrlOnly, only=[EngineConformance])
    with pytest.raises(TypeError, match="store_url"):
        type("TestNoHooks", (RunLedgerConformance,), {})
