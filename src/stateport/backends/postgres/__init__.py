"""The PostgreSQL backend: ``postgresql://user[:password]@host[:port]/database?...``.

URL parameters:

``schema``
    The schema holding this store's tables (default ``stateport``). Several
    stores share one database by using different schemas. With ``create=False``
    (``stateport db version``, ``db info``) a missing schema is a
    :class:`~stateport.errors.ConfigError`.
``pool_min``, ``pool_max``
    Connections kept open / opened at most by this store (default 1 and 10).
    A store that watches partitions opens one more, to LISTEN.
``pool_timeout``
    Seconds a call waits for a free connection before
    :class:`~stateport.errors.Unavailable` (default 30).
``connect_timeout``
    Seconds to wait for the server when connecting (default 5).
``statement_timeout``
    Milliseconds a statement may run (including waiting for locks) before the
    server cancels it and the call raises ``Unavailable`` (default 30000; 0 for none).
``sslmode``
    ``disable``, ``allow``, ``prefer`` (default), ``require``, ``verify-ca`` or
    ``verify-full``, as in libpq.
``portable``
    Enforce DynamoDB's limits (default true).
``blobs``
    Where blobs go (default: in the database, as ``bytea`` chunks).

The password may also come from ``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import asyncpg  # type: ignore[import-untyped, import-not-found, unused-ignore]

from ...errors import ConfigError, StateportError
from ...migrations import pending, schema_status
from ...ports.engine import AppliedMigration, Capability, Engine, SchemaStatus
from ...url import StoreURL, redact
from .._blobs import choose_blobs
from ._conn import Connection, Database, Home, Pool, translate
from .blob import PostgresBlobPort
from .schema import LEDGER_DDL, MIGRATIONS
from .table import PostgresTablePort, lock_key

__all__ = ["PostgresEngine", "open_postgres"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class PostgresEngine(Engine):
    """A schema of a PostgreSQL database holding the table and, by default, blobs."""

    table: PostgresTablePort
    capabilities = frozenset(
        {Capability.MIGRATIONS, Capability.PERSISTENT, Capability.MULTI_PROCESS}
    )

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        database: str,
        schema: str,
        pool_min: int,
        pool_max: int,
        pool_timeout: float,
        connect_timeout: float,
        statement_timeout_ms: int,
        sslmode: str,
        portable: bool,
        blobs: str | None,
        create: bool,
        url: str,
    ) -> None:
        self.where = f"PostgreSQL at {host}:{port}/{database} (schema {schema})"
        self.schema = schema
        self._create = create
        self._url = redact(url)
        self._settings: dict[str, Any] = {
            "schema": schema,
            "pool_min": pool_min,
            "pool_max": pool_max,
            "pool_timeout_s": pool_timeout,
            "connect_timeout_s": connect_timeout,
            "statement_timeout_ms": statement_timeout_ms,
            "portable": portable,
        }
        settings = {
            "application_name": f"stateport/{schema}",
            "statement_timeout": str(statement_timeout_ms),
        }
        command_timeout = None if statement_timeout_ms == 0 else statement_timeout_ms / 1000 + 5
        where = self.where

        async def connect(timed: bool = True) -> Connection:
            try:
                return await asyncpg.connect(
                    host=host,
                    port=port,
                    user=user,
                    password=password,
                    database=database,
                    timeout=connect_timeout,
                    command_timeout=command_timeout if timed else None,
                    ssl=sslmode,
                    server_settings=settings,
                )
            except StateportError:
                raise
            except Exception as e:
                raise translate(e, where) from e

        async def connect_pooled() -> Connection:
            # no timer per statement: the pool bounds them (see _conn.Timed, Pool.arm)
            return await connect(timed=False)

        self._home = Home(self.where)
        self._pool = Pool(
            connect_pooled,
            min_size=pool_min,
            max_size=pool_max,
            acquire_timeout=pool_timeout,
            where=self.where,
            command_timeout=command_timeout,
        )
        self._db = Database(self._home, self._pool, connect, f'"{schema}"', self.where)
        self.table = PostgresTablePort(self._db, portable=portable)
        self.blobs = choose_blobs(blobs, lambda: PostgresBlobPort(self._db), durable=True)
        self._server_version = ""
        self._closed = False

    async def _bootstrap(self) -> None:
        """Connect; create the schema and the migration ledger if missing (and allowed)."""
        await self._pool.open()
        name, s = self.schema, self._db.schema

        async def look(conn: Connection) -> tuple[bool, bool, str]:
            has_schema = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name
            )
            has_ledger = await conn.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"{s}.sp_migrations"
            )
            version = await conn.fetchval("SHOW server_version")
            return bool(has_schema), bool(has_ledger), str(version)

        has_schema, has_ledger, self._server_version = await self._db.run(look)
        if not has_ledger:
            if not self._create:
                what = "no schema" if not has_schema else "no stateport tables in the schema"
                raise ConfigError(
                    f"{self.where}: {what} {name!r}: check the URL's schema parameter, "
                    f"or create it with  stateport db migrate --url '{self._url}'"
                )

            async def create(conn: Connection) -> None:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key("schema", name))
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                await conn.execute(LEDGER_DDL.format(s=s))

            await self._db.transaction(create)
        await self.schema_version()

    async def _applied(self) -> list[AppliedMigration]:
        s = self._db.schema

        async def work(conn: Connection) -> list[AppliedMigration]:
            rows = await conn.fetch(
                f"SELECT version, name, applied_at FROM {s}.sp_migrations ORDER BY version"
            )
            return [AppliedMigration(r[0], r[1], r[2]) for r in rows]

        return await self._db.call(work)

    async def migrate(self, *, stop_before: int | None = None) -> list[AppliedMigration]:
        return await self._home.call(self._migrate(stop_before))

    async def _migrate(self, stop_before: int | None) -> list[AppliedMigration]:
        done: list[AppliedMigration] = []
        status = await self.schema_version()
        s = self._db.schema
        for m in pending(MIGRATIONS, [a.version for a in status.applied], stop_before):

            async def work(conn: Connection, m: Any = m) -> AppliedMigration | None:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1)", lock_key("schema", self.schema)
                )
                if await conn.fetchval(
                    f"SELECT 1 FROM {s}.sp_migrations WHERE version = $1", m.version
                ):
                    return None  # another process applied it meanwhile
                for statement in m.steps:
                    await conn.execute(statement.format(s=s))
                record = AppliedMigration(m.version, m.name, datetime.now(UTC).isoformat())
                await conn.execute(
                    f"INSERT INTO {s}.sp_migrations (version, name, applied_at) "
                    "VALUES ($1, $2, $3)",
                    record.version,
                    record.name,
                    record.applied_at,
                )
                return record

            record = await self._db.transaction(work)
            if record is not None:
                done.append(record)
        return done

    async def schema_version(self) -> SchemaStatus:
        applied = await self._applied()
        return schema_status(MIGRATIONS, applied, self.where)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": f"postgresql {self._server_version}".strip(),
            "location": self.where,
            **self._settings,
            "blobs": self.blobs.location(),
        }

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._home.loop.is_closed() or not self._home.loop.is_running():
            self._pool.closed = True  # nothing left to close gracefully on a dead loop
            return
        await self._home.call(self._close())

    async def _close(self) -> None:
        try:
            await super().aclose()
        finally:
            await self._pool.aclose()


def _parse(url: StoreURL) -> dict[str, Any]:
    try:
        from urllib.parse import urlsplit

        parts = urlsplit(url.raw)
        port = parts.port or 5432
        host = parts.hostname or "localhost"
    except ValueError as e:
        raise url.fail(
            f"malformed host or port ({e}): write postgresql://user:password@host:5432/database"
        ) from e
    database = unquote(url.path.lstrip("/"))
    if not database or "/" in database:
        raise url.fail("name one database: write postgresql://user:password@host:5432/database")
    return {
        "host": host,
        "port": port,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "database": database,
    }


async def open_postgres(url: StoreURL) -> PostgresEngine:
    """Open (creating the schema if needed) the store a ``postgresql://`` URL names."""
    where = _parse(url)
    schema = url.take_str("schema", "stateport") or ""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise url.fail(
            f"schema={schema!r} is not a valid schema name: use lowercase letters, "
            "digits and underscores, starting with a letter or underscore, at most 63"
        )
    pool_min = url.take_int("pool_min", 1)
    pool_max = url.take_int("pool_max", 10, minimum=1)
    if pool_min > pool_max:
        raise url.fail(f"pool_min={pool_min} is greater than pool_max={pool_max}")
    pool_timeout = url.take_int("pool_timeout", 30, minimum=1)
    connect_timeout = url.take_int("connect_timeout", 5, minimum=1)
    statement_timeout = url.take_int("statement_timeout", 30000)
    sslmode = url.take_choice("sslmode", "prefer", _SSLMODES)
    portable = url.take_bool("portable", True)
    blobs = url.take_str("blobs")
    url.finish()
    engine = PostgresEngine(
        **where,
        schema=schema,
        pool_min=pool_min,
        pool_max=pool_max,
        pool_timeout=float(pool_timeout),
        connect_timeout=float(connect_timeout),
        statement_timeout_ms=statement_timeout,
        sslmode=sslmode,
        portable=portable,
        blobs=blobs,
        create=url.create,
        url=url.raw,
    )
    try:
        await engine._bootstrap()
    except BaseException:
        await asyncio.shield(engine.aclose())
        raise
    return engine
