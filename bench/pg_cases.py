"""PostgreSQL benchmarks: the table port beside the raw driver (asyncpg) on the same server.

The server is ``STATEPORT_BENCH_POSTGRES_URL``, else ``STATEPORT_TEST_POSTGRES_URL``,
else ``postgresql://postgres@127.0.0.1:5432/postgres`` (its database is only
used to create the benchmark's own; ``postgres`` if it names one of those); the
cases skip with the reason when none answers. Each case creates a fresh
database for itself and drops it at the end (``DROP DATABASE ... WITH
(FORCE)``), so the user needs ``CREATEDB``:

* ``stateport_bench``, with ``synchronous_commit = off`` for every session in
  it, so a commit does not wait for the WAL flush. Both sides pay the same
  flush, and on this kind of disk it costs several times the software being
  compared (100 to 800 µs per commit), so with it every ratio is pushed towards 1
  and moves with the disk's mood rather than with the code. Nothing is less
  durable in a way that matters here: the data is dropped afterwards.
* ``stateport_bench_durable``, with the server's defaults, for
  ``pg_run_append_durable``: the append comparison as a deployment would see it,
  flush included.

Each side writes into its own schema, over its own connection(s) to the same
database with the same settings.

Run as a script, this file compares the candidate drivers (the measurement
behind docs/decisions/0012-postgresql-backend.md)::

    .venv/bin/python bench/pg_cases.py --drivers [N]
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from cases import Items, NewItems, SpeedCase, canonical, make_items

import stateport

SERVER = os.environ.get(
    "STATEPORT_BENCH_POSTGRES_URL",
    os.environ.get("STATEPORT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
FAST_DB = "stateport_bench"  # synchronous_commit = off
DURABLE_DB = "stateport_bench_durable"  # the server's defaults
OURS_SCHEMA = "sp_bench_ours"
RAW_SCHEMA = "sp_bench_raw"
_RAW_DDL = f"""
DROP SCHEMA IF EXISTS {RAW_SCHEMA} CASCADE;
CREATE SCHEMA {RAW_SCHEMA};
CREATE TABLE {RAW_SCHEMA}.items (
    pk      text COLLATE "C" NOT NULL,
    sk      text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    attrs   text NOT NULL,
    PRIMARY KEY (pk, sk)
)
"""
_RAW_INSERT = f"INSERT INTO {RAW_SCHEMA}.items (pk, sk, version, attrs) VALUES ($1, $2, $3, $4)"
_problem: list[str | None] = []
T = TypeVar("T")


def _dsn(database: str | None = None) -> str:
    """A driver URL for ``database`` on the server; without one, the database to
    connect to for creating and dropping ours (the URL's, unless it is one of ours)."""
    parts = urlsplit(SERVER.replace("postgres://", "postgresql://", 1))
    if database is None:
        database = parts.path.lstrip("/")
        if database in ("", FAST_DB, DURABLE_DB):
            database = "postgres"
    return urlunsplit(("postgresql", parts.netloc, f"/{database}", "", ""))


def store_url(database: str, schema: str) -> str:
    """A stateport URL for ``schema`` in ``database``, keeping the server URL's parameters."""
    parts = urlsplit(SERVER)
    query = "&".join(p for p in (parts.query, f"schema={schema}", "pool_min=1") if p)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", query, ""))


async def create_database(name: str, *, durable: bool) -> None:
    """(Re)create database ``name``; without ``durable``, commits in it skip the WAL flush."""
    import asyncpg

    conn = await asyncpg.connect(_dsn(), timeout=10)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
        if not durable:
            await conn.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(), timeout=10)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def _or_drop(database: str, setup: Coroutine[Any, Any, T]) -> T:
    """``await setup``; if it fails, drop ``database`` (which it was filling)."""
    try:
        return await setup
    except BaseException:
        await drop_database(database)
        raise


def server_problem() -> str | None:
    """Why the PostgreSQL cases cannot run (None when they can). Cached."""
    if not _problem:
        try:
            import asyncpg
        except ImportError:
            _problem.append("asyncpg is not installed: pip install -e '.[postgres]'")
            return _problem[0]

        async def probe() -> None:
            conn = await asyncpg.connect(_dsn(), timeout=3)
            try:
                if not await conn.fetchval(
                    "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
                ):
                    raise PermissionError(
                        "the user may not create databases (the benchmarks create their own)"
                    )
            finally:
                await conn.close()

        try:
            asyncio.run(probe())
            _problem.append(None)
        except Exception as e:
            _problem.append(f"no usable PostgreSQL server at {SERVER}: {e!r}")
    return _problem[0]


class _PgCase(NewItems, SpeedCase):
    """A table benchmark on PostgreSQL: a stateport store and a raw asyncpg
    connection, each opened once and warmed; both insert the same new keys."""

    @classmethod
    def skip_reason(cls) -> str | None:
        return server_problem()

    def setup(self) -> None:
        import asyncpg

        async def open_both() -> tuple[stateport.Stateport, Any]:
            await create_database(FAST_DB, durable=False)
            conn = await asyncpg.connect(_dsn(FAST_DB))
            await conn.execute(_RAW_DDL)
            sp = await stateport.open(store_url(FAST_DB, OURS_SCHEMA))
            return sp, conn

        self.sp, self.conn = self.runner.run(_or_drop(FAST_DB, open_both()))
        self._next = {"ours": 0, "baseline": 0}
        self.log(f"{self.name}: warming both sides, {self.warm} {self.unit}s each (untimed)")
        self.ours(self.warm)
        self.baseline(self.warm)

    def teardown(self) -> None:
        async def close() -> None:
            await self.sp.aclose()
            await self.conn.close()
            await drop_database(FAST_DB)

        self.runner.run(close())


class PgItemPut(_PgCase):
    """``table.put`` of one item per transaction vs one raw ``INSERT`` per transaction."""

    name = "pg_item_put"
    unit = "put"
    target = 0.8
    ops = 3000
    quick_ops = 300
    warm_ops = 1000

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
        return self.runner.run(self._raw(self._items("baseline", n)))

    async def _raw(self, items: Items) -> float:
        execute = self.conn.execute
        gc.collect()
        started = time.perf_counter()
        for pk, sk, attrs in items:  # autocommit: each statement is its own transaction
            await execute(_RAW_INSERT, pk, sk, 1, canonical(attrs))
        return time.perf_counter() - started


class PgTransact100(_PgCase):
    """``table.transact`` of 100 puts vs a raw ``executemany`` of 100 rows per transaction."""

    name = "pg_transact_100"
    unit = "txn"
    target = 0.7
    items_per_op = 100
    ops = 200
    quick_ops = 20
    warm_ops = 50

    def ours(self, n: int) -> float:
        return self.runner.run(self._transact(self._batches("ours", n)))

    def baseline(self, n: int) -> float:
        return self.runner.run(self._raw(self._batches("baseline", n)))

    async def _raw(self, batches: list[Items]) -> float:
        conn = self.conn
        gc.collect()
        started = time.perf_counter()
        for batch in batches:
            rows = [(pk, sk, 1, canonical(attrs)) for pk, sk, attrs in batch]
            async with conn.transaction():
                await conn.executemany(_RAW_INSERT, rows)
        return time.perf_counter() - started


class PgTransact100VsCopy(PgTransact100):
    """``table.transact`` of 100 puts vs ``COPY`` of the same 100 rows (a stretch goal:
    a put is an upsert that returns nothing but bumps versions; ``COPY`` only appends)."""

    name = "pg_transact_100_vs_copy"
    target = 1.0
    stretch = True

    async def _raw(self, batches: list[Items]) -> float:
        copy = self.conn.copy_records_to_table
        gc.collect()
        started = time.perf_counter()
        for batch in batches:  # one COPY is its own transaction
            rows = [(pk, sk, 1, canonical(attrs)) for pk, sk, attrs in batch]
            await copy("items", schema_name=RAW_SCHEMA, records=rows)
        return time.perf_counter() - started


_aggregates: list[Any] = []


def _run_aggregate() -> Any:
    """The eventsourcing aggregate of a run (a class may be registered once per process)."""
    if not _aggregates:
        from eventsourcing.domain import Aggregate, event

        class Run(Aggregate):
            @event("Started")
            def __init__(self, spec: str) -> None:
                self.spec = spec

            @event("EventAppended")
            def append(self, kind: str, payload: dict[str, Any]) -> None:
                pass

        _aggregates.append(Run)
    return _aggregates[0]


class PgAppendVsEventsourcing(SpeedCase):
    """``runs.append_event`` on PostgreSQL vs the eventsourcing library's PostgreSQL
    recorder (psycopg 3) saving one new event of one aggregate per call.

    Same server, same database, each side in its own schema; both commit every
    event, in ``stateport_bench`` (``synchronous_commit = off``). The payloads
    are those of the SQLite ledger benchmarks.
    """

    name = "pg_run_append_vs_eventsourcing"
    unit = "event"
    target = 2.5
    ops = 1000
    quick_ops = 100
    warm_ops = 300
    es_schema = "sp_bench_es"
    database = FAST_DB
    durable = False

    @classmethod
    def skip_reason(cls) -> str | None:
        problem = server_problem()
        if problem is None:
            try:
                import eventsourcing.postgres  # noqa: F401
            except ImportError as e:
                return (
                    f"the eventsourcing baseline is not installed ({e}): pip install -e '.[bench]'"
                )
        return problem

    def setup(self) -> None:
        import asyncpg

        async def reset() -> stateport.Stateport:
            await create_database(self.database, durable=self.durable)
            conn = await asyncpg.connect(_dsn(self.database))
            await conn.execute(f"CREATE SCHEMA {self.es_schema}")
            await conn.close()
            return await stateport.open(store_url(self.database, OURS_SCHEMA))

        self.sp = self.runner.run(_or_drop(self.database, reset()))
        try:
            self._start_both()
        except BaseException:
            self.runner.run(self.sp.aclose())
            self.runner.run(drop_database(self.database))
            raise

    def _start_both(self) -> None:
        from eventsourcing.application import Application
        from ledger_cases import META, SPEC

        self.run_id = self.runner.run(self.sp.runs.create_run(SPEC, META))
        where = urlsplit(_dsn(self.database))
        os.environ.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": self.database,
                "POSTGRES_HOST": where.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(where.port or 5432),
                "POSTGRES_USER": where.username or "postgres",
                "POSTGRES_PASSWORD": where.password or "",
                "POSTGRES_SCHEMA": self.es_schema,
            }
        )
        self.app = Application()
        self.aggregate = _run_aggregate()(SPEC.as_str())
        self.app.save(self.aggregate)
        self.n = {"ours": 0, "baseline": 0}
        self.log(f"{self.name}: warming both sides, {self.warm} events each (untimed)")
        self.ours(self.warm)
        self.baseline(self.warm)

    def teardown(self) -> None:
        self.app.close()

        async def close() -> None:
            await self.sp.aclose()
            await drop_database(self.database)

        self.runner.run(close())

    def _range(self, side: str, n: int) -> range:
        first = self.n[side]
        self.n[side] += n
        return range(first, first + n)

    def ours(self, n: int) -> float:
        return self.runner.run(self._append(self._range("ours", n)))

    async def _append(self, numbers: range) -> float:
        from ledger_cases import payload

        from stateport import RunEvent

        append, run_id = self.sp.runs.append_event, self.run_id
        gc.collect()
        started = time.perf_counter()
        for i in numbers:
            await append(run_id, RunEvent("tool_called", payload(i)))
        return time.perf_counter() - started

    def baseline(self, n: int) -> float:
        from ledger_cases import payload

        app, aggregate = self.app, self.aggregate
        numbers = self._range("baseline", n)
        gc.collect()
        started = time.perf_counter()
        for i in numbers:
            aggregate.append("tool_called", payload(i))
            app.save(aggregate)
        return time.perf_counter() - started


class PgAppendDurable(PgAppendVsEventsourcing):
    """:class:`PgAppendVsEventsourcing` with the server's default ``synchronous_commit``
    (``on``): every commit of both sides waits for the WAL flush, which dominates
    both. The figure a deployment with default settings sees; not slower than the
    baseline is the bar."""

    name = "pg_run_append_durable"
    target = 1.0
    ops = 500
    quick_ops = 50
    warm_ops = 100
    database = DURABLE_DB
    durable = True


PG_CASES: tuple[type[SpeedCase], ...] = (
    PgItemPut,
    PgTransact100,
    PgTransact100VsCopy,
    PgAppendVsEventsourcing,
    PgAppendDurable,
)


# --------------------------------------------------------------------------- driver choice

_DRIVER_SQL = (
    "INSERT INTO sp_bench_drivers.items (pk, sk, version, attrs) VALUES ({}, {}, 1, {}) "
    "ON CONFLICT (pk, sk) DO UPDATE SET version = items.version + 1, attrs = excluded.attrs "
    "RETURNING version"
)


async def compare_drivers(n: int, rounds: int = 5) -> None:
    """Single-row upserts (autocommit) through each candidate, on a raw
    connection and through each driver's own pool; best of ``rounds``."""
    import asyncpg

    await create_database(FAST_DB, durable=False)
    dsn = _dsn(FAST_DB)
    setup = await asyncpg.connect(dsn)
    await setup.execute(
        "CREATE SCHEMA sp_bench_drivers; "
        'CREATE TABLE sp_bench_drivers.items (pk text COLLATE "C", sk text COLLATE "C", '
        "version bigint NOT NULL, attrs text NOT NULL, PRIMARY KEY (pk, sk))"
    )
    attrs = canonical(make_items(0, 1)[0][2])
    a_sql, p_sql = _DRIVER_SQL.format("$1", "$2", "$3"), _DRIVER_SQL.format("%s", "%s", "%s")
    sides: dict[str, Any] = {}
    a_conn = await asyncpg.connect(dsn)
    a_pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)

    async def asyncpg_conn(tag: str) -> None:
        for i in range(n):
            await a_conn.fetchval(a_sql, f"t{i % 64}", f"{tag}{i}", attrs)

    async def asyncpg_pool(tag: str) -> None:
        for i in range(n):
            async with a_pool.acquire() as c:
                await c.fetchval(a_sql, f"t{i % 64}", f"{tag}{i}", attrs)

    sides["asyncpg, one connection"] = asyncpg_conn
    sides["asyncpg, its pool"] = asyncpg_pool
    try:
        import psycopg
        from psycopg_pool import AsyncConnectionPool
    except ImportError:
        print("psycopg / psycopg-pool not installed: comparing asyncpg alone", file=sys.stderr)
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None:
        p_conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        p_pool = AsyncConnectionPool(
            dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}
        )
        await p_pool.open()

        async def psycopg_conn(tag: str) -> None:
            for i in range(n):
                cur = await p_conn.execute(p_sql, (f"t{i % 64}", f"{tag}{i}", attrs), prepare=True)
                await cur.fetchone()

        async def psycopg_pool(tag: str) -> None:
            for i in range(n):
                async with p_pool.connection() as c:
                    cur = await c.execute(p_sql, (f"t{i % 64}", f"{tag}{i}", attrs), prepare=True)
                    await cur.fetchone()

        sides["psycopg 3, one connection"] = psycopg_conn
        sides["psycopg 3, psycopg_pool"] = psycopg_pool
    best: dict[str, float] = {}
    try:
        for r in range(rounds):
            for k, (name, run) in enumerate(sides.items()):
                started = time.perf_counter()
                await run(f"r{r}s{k}-")
                per = (time.perf_counter() - started) / n
                best[name] = min(best.get(name, per), per)
    finally:
        await setup.close()
        await a_conn.close()
        await a_pool.close()
        if psycopg is not None:
            await p_conn.close()
            await p_pool.close()
        await drop_database(FAST_DB)
    print(f"| driver (best of {rounds} rounds of {n} upserts) | µs per upsert |")
    print("|---|---|")
    for name, per in best.items():
        print(f"| {name} | {per * 1e6:.1f} |")


if __name__ == "__main__":
    if "--drivers" not in sys.argv:
        raise SystemExit(
            "usage: bench/pg_cases.py --drivers [N]   (the cases run from bench/run.py)"
        )
    problem = server_problem()
    if problem:
        raise SystemExit(problem)
    args = [a for a in sys.argv[1:] if a != "--drivers"]
    asyncio.run(compare_drivers(int(args[0]) if args else 3000))
