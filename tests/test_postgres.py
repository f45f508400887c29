"""PostgreSQL: the whole conformance kit on a real server, and its own mechanics
(URLs, pools, guarded statements, LISTEN/NOTIFY, timeouts, dropped connections,
server restarts).

The server comes from ``STATEPORT_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). When none answers, these
tests skip with the reason, except under ``CI=true``, where they fail. Each
store lives in a fresh schema named after this run; all are dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _pg import (  # tests/ is on sys.path
    BASE_URL,
    drop_run_schemas,
    raw_connect,
    schema_of,
    server_problem,
    sql,
    url,
)

import stateport
import stateport.sync
import stateport.testing
from stateport import (
    AttrEquals,
    ConfigError,
    Conflict,
    EngineError,
    Put,
    StateportError,
    Unavailable,
    Update,
    ValidationError,
    VersionEquals,
)
from stateport.backends import open_engine
from stateport.ports import Engine
from stateport.primitives.ledger import entry_sk
from stateport.testing import DriverErrors, StoreConformance, conformance_classes
from stateport.testing.ledger import append
from stateport.testing.model import GUARD_VALUES as KIT_GUARD_VALUES


@pytest.fixture(scope="module")
def pg() -> Any:
    """A reachable server, or a skip (a failure under CI=true); drops this run's schemas."""
    problem = server_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the PostgreSQL tests cannot run: {problem}")
        pytest.skip(problem)
    yield
    asyncio.run(drop_run_schemas())


needs_pg = pytest.mark.usefixtures("pg")


@pytest.fixture(scope="module")
def driver() -> None:
    """The postgres extra is installed, or a skip (a failure under CI=true)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        problem = "asyncpg is not installed: pip install -e '.[dev,postgres]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the PostgreSQL tests cannot run: {problem}")
        pytest.skip(problem)


needs_driver = pytest.mark.usefixtures("driver")


def _flag(portable: bool) -> str:
    return "true" if portable else "false"


# ---------------------------------------------------------------- the conformance suite


def _driver_error_cases() -> list[tuple[BaseException, type[StateportError]]]:
    """Driver errors for every row of the PostgreSQL table (the server's SQLSTATEs,
    raised by asyncpg as one class per state, and lost connections)."""
    import asyncpg.exceptions as pg

    return [
        (pg.InvalidPasswordError("password authentication failed"), ConfigError),
        (pg.InvalidAuthorizationSpecificationError('role "x" does not exist'), ConfigError),
        (pg.InvalidCatalogNameError('database "x" does not exist'), ConfigError),
        (pg.QueryCanceledError("canceling statement due to statement timeout"), Unavailable),
        (pg.TooManyConnectionsError("too many clients already"), Unavailable),
        (pg.ConfigurationLimitExceededError("limit exceeded"), Unavailable),
        (pg.LockNotAvailableError("could not obtain lock"), Unavailable),
        (ConnectionRefusedError(111, "Connection refused"), Unavailable),
        (TimeoutError(), Unavailable),
        (pg.ConnectionDoesNotExistError("connection was closed in the middle"), Unavailable),
        (pg.AdminShutdownError("terminating connection"), Unavailable),
        (pg.CannotConnectNowError("the database system is starting up"), Unavailable),
        (pg.InterfaceError("connection is closed"), Unavailable),
        (pg.CharacterNotInRepertoireError("invalid byte sequence"), ValidationError),
        (pg.UntranslatableCharacterError("unsupported Unicode escape"), ValidationError),
        (pg.UndefinedTableError('relation "sp_items" does not exist'), ConfigError),
        (pg.InvalidSchemaNameError('schema "x" does not exist'), ConfigError),
        (pg.SerializationError("could not serialize access"), Conflict),
        (pg.DeadlockDetectedError("deadlock detected"), Conflict),
        (pg.DiskFullError("could not extend file"), EngineError),
        (pg.UniqueViolationError("duplicate key value"), EngineError),
    ]


@needs_pg
class _Postgres:
    """A fresh schema of the test server for each store, and what the engine suite
    asks of PostgreSQL."""

    def store_url(self) -> str:
        return url()

    def _schema(self, engine: Engine) -> str:
        from stateport.backends.postgres import PostgresEngine  # needs the driver

        assert isinstance(engine, PostgresEngine)
        return engine.schema

    async def catalogue(self, engine: Engine) -> object:
        return await _layout(self._schema(engine))

    async def record_unknown_migration(self, engine: Engine, version: int) -> None:
        await sql(
            f'INSERT INTO "{self._schema(engine)}".sp_migrations VALUES ($1, $2, $3)',
            version,
            "from a newer stateport",
            "2099-01-01",
        )

    def driver_errors(self) -> DriverErrors | None:
        from stateport.backends.postgres._conn import ERRORS

        return DriverErrors(ERRORS, _driver_error_cases())

    async def drop_item_table(self, engine: Engine) -> None:
        await sql(f'DROP TABLE "{self._schema(engine)}".sp_items CASCADE')

    async def check_consistency(self, engine: Engine) -> None:
        """Every index of the store is valid, and no connection of it was left
        inside a transaction."""
        schema = self._schema(engine)
        invalid = await sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND NOT (i.indisvalid AND i.indisready)",
            schema,
        )
        assert invalid == []
        stuck = await sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
            "AND state LIKE 'idle in transaction%'",
            f"stateport/{schema}",
        )
        assert stuck == []


# TestPostgresTablePort, TestPostgresEngine, TestPostgresRunLedger, ...: every suite
# of the kit, including suites added after this file was written
globals().update(conformance_classes("Postgres", _Postgres))


def test_every_suite_gets_a_postgres_class() -> None:
    """Found the other way round: every StoreConformance subclass defined in any
    module of stateport.testing (exported or not) has its PostgreSQL class."""
    import importlib
    import pkgutil

    import stateport.testing as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    suites = [
        s for s in StoreConformance.__subclasses__() if s.__module__.startswith(package.__name__)
    ]
    assert len(suites) >= 10
    for suite in suites:
        assert "TestPostgres" + suite.__name__.removesuffix("Conformance") in globals(), suite


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("postgresql://u@host:notaport/db", "malformed host or port"),
        ("postgresql://u@host:5432/", "name one database"),
        ("postgresql://u@host:5432/db?schema=Bad-Name", "not a valid schema name"),
        ("postgresql://u@host:5432/db?pool_max=0", "pool_max='0' must be an integer >= 1"),
        ("postgresql://u@host:5432/db?pool_min=5&pool_max=2", "pool_min=5 is greater than"),
        ("postgresql://u@host:5432/db?statement_timeout=soon", "'soon' must be an integer"),
        ("postgresql://u@host:5432/db?sslmode=maybe", "must be one of disable"),
        ("postgresql://u@host:5432/db?scheme=x", r"unknown parameter\(s\): scheme"),
    ],
)
@needs_driver
def test_malformed_urls_are_config_errors(bad: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        asyncio.run(stateport.open(bad).__aenter__())


def test_missing_extra_names_the_pip_install() -> None:
    code = (
        "import sys, asyncio; sys.modules['asyncpg'] = None\n"
        "import stateport\n"
        "try:\n"
        "    asyncio.run(stateport.open('postgresql://u@127.0.0.1:1/db').__aenter__())\n"
        "except stateport.ConfigError as e:\n"
        "    print('ConfigError:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "ConfigError:" in out.stdout, out.stderr
    assert "pip install 'stateport[postgres]'" in out.stdout


@needs_driver
def test_unreachable_server_is_unavailable_naming_the_host() -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"127\.0\.0\.1:1/"):
        asyncio.run(stateport.open("postgresql://u@127.0.0.1:1/db?connect_timeout=2").__aenter__())
    assert time.monotonic() - started < 10


@needs_pg
def test_unknown_user_is_a_config_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="credentials"):
        asyncio.run(_open_close(url().replace("postgres@", "no_such_role_xyz@", 1)))


@needs_pg
def test_missing_database_is_a_config_error_naming_the_fix() -> None:
    store_url = url()
    head, _, query = store_url.partition("?")
    missing = head.rsplit("/", 1)[0] + "/no_such_database_xyz?" + query
    with pytest.raises(ConfigError, match="create the database"):
        asyncio.run(_open_close(missing))


@needs_pg
def test_missing_schema_without_create_is_a_config_error() -> None:
    store_url = url()

    async def main() -> None:
        with pytest.raises(ConfigError, match="db migrate"):
            await open_engine(store_url, create=False)
        rows = await sql("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema_of(store_url))
        assert rows == []  # nothing was created

    asyncio.run(main())


async def _open_close(store_url: str) -> None:
    async with stateport.open(store_url):
        pass


@needs_pg
def test_nul_characters_are_a_validation_error_and_nothing_is_written() -> None:
    async def main() -> None:
        async with stateport.open(url()) as sp:
            with pytest.raises(ValidationError, match="NUL"):
                await sp.table.put("p", "a\x00b", {})
            with pytest.raises(ValidationError, match="NUL"):
                await sp.table.transact([Put("p", "ok", {}), Put("p", "x\x00", {})])
            assert (await sp.table.query("p")).items == []

    asyncio.run(main())


# ---------------------------------------------------------------- migrations


async def _layout(schema: str) -> list[tuple[Any, ...]]:
    cols = await sql(
        "SELECT table_name, column_name, data_type, collation_name, is_nullable "
        "FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1, 2",
        schema,
    )
    idx = await sql(
        "SELECT indexname, replace(indexdef, $1, 'S') FROM pg_indexes "
        "WHERE schemaname = $2 ORDER BY 1",
        f'"{schema}"' if schema != schema.lower() else schema,
        schema,
    )
    return [tuple(r) for r in cols] + [tuple(r) for r in idx]


@needs_pg
def test_stores_in_one_database_do_not_collide() -> None:
    a, b = url(), url()

    async def main() -> None:
        async with stateport.open(a) as sa, stateport.open(b) as sb:
            await sa.table.put("p", "s", {"store": "a"})
            await sb.table.put("p", "s", {"store": "b"})
            item_a, item_b = await sa.table.get("p", "s"), await sb.table.get("p", "s")
            assert item_a is not None and item_a.attrs == {"store": "a"} and item_a.version == 1
            assert item_b is not None and item_b.attrs == {"store": "b"} and item_b.version == 1

    asyncio.run(main())


# ---------------------------------------------------------------- guarded inserts

# the kit's values, and text with NUL, which only jsonb refuses
GUARD_VALUES: list[Any] = [*KIT_GUARD_VALUES, "a\x00b"]
_ABSENT = object()


def _spy_guarded(table: Any) -> list[bool]:
    """Record what each one-statement attempt of ``table`` decided (True: applied)."""
    decided: list[bool] = []
    original = table._guarded_insert

    async def spy(ops: Any) -> bool:
        applied = bool(await original(ops))
        decided.append(applied)
        return applied

    table._guarded_insert = spy
    return decided


@needs_pg
def test_guarded_inserts_compare_values_as_resolve_does() -> None:
    """Every stored value against every condition value, on the shape PostgreSQL
    runs as one statement (checks, then one put on NotExists): the answers are
    the memory backend's, and the one statement itself decided every case it
    compiles (not just the general path behind it)."""
    from stateport.backends._guarded import guards_of
    from stateport.backends.postgres.table import _predicate

    names = ["v", "n'a\"me"]

    def cases() -> list[tuple[int, int, str, list[Any]]]:
        out = []
        for i in range(len(GUARD_VALUES) + 1):
            pk = f"p{i}"
            for j, wanted in enumerate(GUARD_VALUES):
                for name in names:
                    forms: list[tuple[str, Any]] = [
                        ("attr", AttrEquals(name, wanted)),
                        ("exists+attr", [stateport.Exists(), AttrEquals(name, wanted)]),
                        ("version+attr", [VersionEquals(1), AttrEquals(name, wanted)]),
                    ]
                    for form, cond in forms:
                        ops = [
                            stateport.Check(pk, "a", cond),
                            stateport.Check(pk, "b", stateport.Exists()),
                            Put(pk, f"new{j}", {"n": j}, stateport.NotExists()),
                        ]
                        out.append((i, j, f"{name}/{form}", ops))
        return out

    async def run(store_url: str) -> tuple[list[tuple[Any, ...]], list[bool], list[bool]]:
        outcomes: list[tuple[Any, ...]] = []
        compiled: list[bool] = []
        async with stateport.open(store_url) as sp:
            table: Any = sp.table
            on_postgres = store_url.startswith("postgresql")
            decided = _spy_guarded(table) if on_postgres else []
            for i, stored in enumerate([*GUARD_VALUES, _ABSENT]):
                attrs = {} if stored is _ABSENT else dict.fromkeys(names, stored)
                await sp.table.put(f"p{i}", "a", attrs)
                await sp.table.put(f"p{i}", "b", {})
            for i, j, form, ops in cases():
                if on_postgres:
                    prepared = [table._prepare(op, k) for k, op in enumerate(ops)]
                    compiled.append(guards_of(prepared, _predicate) is not None)
                try:
                    await sp.table.transact(ops)
                    outcomes.append((i, j, form, "ok"))
                    await sp.table.delete(ops[-1].pk, ops[-1].sk)
                except Conflict as e:
                    outcomes.append((i, j, form, e.op_index))
        return outcomes, compiled, decided

    memory, _, _ = asyncio.run(run("memory://"))
    postgres, compiled, decided = asyncio.run(run(url()))
    assert postgres == memory
    assert {o[3] for o in memory} == {"ok", 0}
    # the fast path ran for every case whose conditions compile, and its answer
    # (inserted or not) is the memory backend's
    assert len(decided) == len(memory) == len(compiled)
    fast = [(o, d) for o, c, d in zip(memory, compiled, decided, strict=True) if c]
    assert len(fast) > len(memory) // 2
    wrong = [o for o, d in fast if d != (o[3] == "ok")]
    assert wrong == []


async def _ledger_with_head(sp: stateport.Stateport, pk: str) -> list[Any]:
    """A head and entry 1; the operations that append entry 2."""
    await sp.table.put(pk, "head", {"open": True, "n": 0})
    await sp.table.put(pk, entry_sk(1), {})
    return [
        stateport.Check(pk, "head", AttrEquals("open", True)),
        stateport.Check(pk, entry_sk(1), stateport.Exists()),
        Put(pk, entry_sk(2), {"x": 1}, condition=stateport.NotExists()),
    ]


@needs_pg
@pytest.mark.parametrize(
    ("head", "applies", "op_index"),
    [
        ({"n": 0, "open": False}, False, 0),
        ({"n": 1, "open": True}, True, None),
        (None, False, 1),  # the previous entry is deleted instead
    ],
    ids=["closed", "still-open", "previous-deleted"],
)
def test_guarded_insert_waits_for_a_concurrent_writer_and_sees_its_commit(
    head: dict[str, Any] | None, applies: bool, op_index: int | None
) -> None:
    """Another client changes a checked row in an open transaction; the one-statement
    append waits for it (FOR SHARE) and then checks what it committed."""
    store_url = url()
    table_name = f'"{schema_of(store_url)}".sp_items'
    change: tuple[str, ...] = (f"DELETE FROM {table_name} WHERE pk = $1 AND sk = $2", entry_sk(1))
    if head is not None:
        text = json.dumps(head, sort_keys=True, separators=(",", ":"))
        bump = "attrs = $3, version = version + 1"
        change = (f"UPDATE {table_name} SET {bump} WHERE pk = $1 AND sk = $2", "head", text)

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            ops = await _ledger_with_head(sp, "log#s")
            decided = _spy_guarded(sp.table)
            other = await raw_connect()
            try:
                await other.execute("BEGIN")
                await other.execute(change[0], "log#s", *change[1:])
                task = asyncio.create_task(sp.table.transact(ops))
                await asyncio.sleep(0.5)
                assert not task.done()  # waiting for the row lock
                await other.execute("COMMIT")
                if applies:
                    await asyncio.wait_for(task, 10)
                else:
                    with pytest.raises(Conflict) as info:
                        await asyncio.wait_for(task, 10)
                    assert info.value.op_index == op_index
            finally:
                await other.close()
            assert decided == [applies]  # the one statement decided, after the commit
            assert (await sp.table.get("log#s", entry_sk(2)) is not None) == applies

    asyncio.run(main())


@needs_pg
def test_guarded_insert_takes_the_advisory_locks_of_the_general_path() -> None:
    """A multi-operation transaction of the general path holds advisory locks on its
    keys: a one-statement append touching one of them waits for it to commit."""
    from stateport.backends.postgres.table import lock_key

    store_url = url()

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            ops = await _ledger_with_head(sp, "log#s")
            decided = _spy_guarded(sp.table)
            key = lock_key(f'"{schema_of(store_url)}"', "log#s", entry_sk(2))
            other = await raw_connect()
            try:
                await other.execute("BEGIN")
                await other.execute("SELECT pg_advisory_xact_lock($1)", key)
                task = asyncio.create_task(sp.table.transact(ops))
                await asyncio.sleep(0.5)
                assert not task.done()  # waiting for the advisory lock
                await other.execute("COMMIT")
                await asyncio.wait_for(task, 10)
            finally:
                await other.close()
            assert decided == [True]

    asyncio.run(main())


@needs_pg
def test_guarded_insert_wakes_watches_of_another_store() -> None:
    store_url = url()

    async def main() -> None:
        listener = await raw_connect()
        got: list[str] = []
        async with stateport.open(store_url) as watcher, stateport.open(store_url) as writer:
            table: Any = writer.table
            channel = table.channel("log#s")
            await listener.add_listener(channel, lambda *a: got.append(a[2]))
            decided = _spy_guarded(writer.table)
            await writer.table.put("log#s", "head", {"open": True})
            await append(writer.table, "s", {"i": 0})  # unwatched: no NOTIFY
            await append(writer.table, "s", {"i": 1})
            await asyncio.sleep(0.3)
            assert got == []
            async with watcher.table.watch("log#s") as w:
                await append(writer.table, "s", {"i": 2})
                assert await w.wait(10)  # True: woken, not timed out
            # the server delivers the NOTIFY to each listening connection on its own:
            # the raw listener may see it after the watcher did
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.05)
            assert decided[-2:] == [True, True] and got != []
        await listener.close()

    asyncio.run(main())


# ---------------------------------------------------------------- watches


@needs_pg
def test_watch_wakes_on_a_write_by_another_store_via_notify() -> None:
    store_url = url()

    async def main() -> None:
        async with stateport.open(store_url) as watcher, stateport.open(store_url) as writer:
            schema = schema_of(store_url)
            async with watcher.table.watch("run#1") as w:
                rows = await sql(f'SELECT pk FROM "{schema}".sp_watches')
                assert [r[0] for r in rows] == ["run#1"]
                await writer.table.put("run#2", "e", {})  # another partition
                assert not await w.wait(0.5)
                await writer.table.transact([Put("run#1", "e#1", {}), Put("run#3", "x", {})])
                assert await w.wait(10)  # True: woken, not timed out
                await writer.table.put("run#1", "e#2", {})
                assert await w.wait(10)
                await writer.table.update("run#1", "e#2", set={"x": 1})
                assert await w.wait(10)
            rows = await sql(f'SELECT pk FROM "{schema}".sp_watches')
            assert rows == []  # unwatched: writes no longer notify

    asyncio.run(main())


@needs_pg
def test_unwatched_writes_do_not_notify() -> None:
    store_url = url()

    async def main() -> None:
        listener = await raw_connect()
        got: list[str] = []
        async with stateport.open(store_url) as sp:
            table: Any = sp.table
            channel = table.channel("p")
            await listener.add_listener(channel, lambda *a: got.append(a[2]))
            await sp.table.put("p", "a", {})
            await sp.table.transact([Put("p", "b", {}), Put("q", "c", {})])
            await asyncio.sleep(0.3)
            assert got == []  # nobody registered: no NOTIFY on the hot path
            async with sp.table.watch("p"):
                await sp.table.put("p", "c", {})
                for _ in range(50):
                    if got:
                        break
                    await asyncio.sleep(0.05)
                assert got == [channel]
        await listener.close()

    asyncio.run(main())


# ---------------------------------------------------------------- failures and limits


async def _connections(schema: str) -> int:
    rows = await sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", f"stateport/{schema}"
    )
    return int(rows[0][0])


@needs_pg
def test_opening_and_closing_leaks_no_connection() -> None:
    store_url = url(pool_min=2)
    schema = schema_of(store_url)

    async def main() -> None:
        for i in range(15):
            async with stateport.open(store_url) as sp:
                async with sp.table.watch("p"):
                    await asyncio.gather(*(sp.table.put("p", f"{i}-{k}", {}) for k in range(6)))
                assert await _connections(schema) >= 2
        await asyncio.sleep(0.2)
        assert await _connections(schema) == 0

    asyncio.run(main())


@needs_pg
def test_pool_max_bounds_the_connections() -> None:
    store_url = url(pool_max=3)
    schema = schema_of(store_url)

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            peak = 0

            async def slow_get(i: int) -> None:
                await sp.table.put("p", str(i), {})

            for _ in range(5):
                await asyncio.gather(*(slow_get(i) for i in range(30)))
                peak = max(peak, await _connections(schema))
            assert 1 <= peak <= 3

    asyncio.run(main())


@needs_pg
def test_statement_timeout_is_unavailable() -> None:
    store_url = url(statement_timeout=300)

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            await sp.table.put("p", "locked", {"n": 1})
            holder = await raw_connect()
            try:
                await holder.execute("BEGIN")
                await holder.execute(
                    f'SELECT 1 FROM "{schema_of(store_url)}".sp_items WHERE sk = $1 FOR UPDATE',
                    "locked",
                )
                # the server cancels it (the client's own bound says "not responding")
                with pytest.raises(Unavailable, match="the statement was cancelled"):
                    await sp.table.update("p", "locked", set={"n": 2})
            finally:
                await holder.close()
            item = await sp.table.update("p", "locked", set={"n": 2})
            assert item.version == 2

    asyncio.run(main())


@needs_pg
def test_dropped_connections_surface_as_unavailable_then_recover() -> None:
    store_url = url(pool_min=3, pool_max=3)
    schema = schema_of(store_url)

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            await asyncio.gather(*(sp.table.put("p", str(i), {}) for i in range(6)))
            errors: list[BaseException] = []

            async def worker(w: int) -> None:
                for i in range(40):
                    try:
                        await sp.table.put("p", f"w{w}-{i}", {})
                    except StateportError as e:
                        errors.append(e)
                    await asyncio.sleep(0.005)

            async def killer() -> None:
                await asyncio.sleep(0.05)
                await sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1",
                    f"stateport/{schema}",
                )

            await asyncio.wait_for(asyncio.gather(killer(), *(worker(w) for w in range(3))), 60)
            assert all(isinstance(e, Unavailable) for e in errors), errors
            assert all("127.0.0.1" in str(e) or "localhost" in str(e) for e in errors)
            await sp.table.put("p", "after", {"ok": True})  # the next call succeeds
            assert (await sp.table.get("p", "after")) is not None

    asyncio.run(main())


@needs_pg
@pytest.mark.slow
def test_a_backend_that_stops_answering_is_unavailable_then_recovers() -> None:
    """The client-side bound of a statement (statement_timeout + 5 s): on the
    single-statement path (the pool's watchdog) and inside a transaction."""
    if "127.0.0.1" not in BASE_URL and "localhost" not in BASE_URL:
        pytest.skip("the server under test is not local: not stopping its processes")
    if os.geteuid() != 0:
        pytest.skip("stopping a server process needs root")
    store_url = url(pool_min=1, pool_max=1, statement_timeout=500)
    schema = schema_of(store_url)

    async def backend() -> int:
        # the backend of a connection the pool dropped (the one stopped before) exits
        # once it runs again and sees its client gone: on a busy machine, a moment later
        for _ in range(100):
            rows = await sql(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                f"stateport/{schema}",
            )
            if len(rows) == 1:
                return int(rows[0][0])
            await asyncio.sleep(0.1)
        raise AssertionError(f"the store (pool_max=1) has {len(rows)} server backends")

    async def stalled(sp: stateport.Stateport, call: Callable[[], Awaitable[Any]]) -> None:
        await sp.table.get("p", "a")  # a pooled connection is open
        pid = await backend()
        os.kill(pid, signal.SIGSTOP)  # the server process stops answering (not closed)
        try:
            started = time.monotonic()
            with pytest.raises(Unavailable, match=r"not responding|unreachable"):
                await asyncio.wait_for(call(), 30)
            # not before the statement timeout plus its 5 s grace; the upper bound
            # only says "does not hang" (wait_for above gives up at 30 s)
            assert time.monotonic() - started > 5
        finally:
            os.kill(pid, signal.SIGCONT)

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            await sp.table.put("p", "a", {"n": 1})
            await stalled(sp, lambda: sp.table.put("p", "b", {}))
            await stalled(sp, lambda: sp.table.update("p", "a", set={"n": 2}))
            item = await sp.table.update("p", "a", set={"n": 3})  # a fresh connection answers
            assert item.attrs == {"n": 3}

    asyncio.run(main())


def _cluster_command(action: str) -> list[str]:
    versions = os.listdir("/etc/postgresql")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", action]


@needs_pg
@pytest.mark.slow
def test_server_restart_surfaces_as_unavailable_then_recovers() -> None:
    if "127.0.0.1" not in BASE_URL and "localhost" not in BASE_URL:
        pytest.skip("the server under test is not local: not restarting it")
    if not os.path.isdir("/etc/postgresql") or os.geteuid() != 0:
        pytest.skip("no local cluster this user may restart (pg_ctlcluster)")
    store_url = url(connect_timeout=2, pool_timeout=5)

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            await sp.table.put("p", "before", {})
            stop = await asyncio.to_thread(
                subprocess.run, _cluster_command("stop"), capture_output=True, text=True
            )
            assert stop.returncode == 0, stop.stderr
            try:
                for _ in range(3):  # while down: a typed error, quickly
                    started = time.monotonic()
                    with pytest.raises(Unavailable, match=r"127\.0\.0\.1|localhost"):
                        await sp.table.put("p", "down", {})
                    assert time.monotonic() - started < 10
            finally:
                start = await asyncio.to_thread(
                    subprocess.run, _cluster_command("start"), capture_output=True, text=True
                )
            assert start.returncode == 0, start.stderr
            for _ in range(50):  # wait until it accepts connections
                if await asyncio.to_thread(_accepts):
                    break
                await asyncio.sleep(0.2)
            await sp.table.put("p", "after", {})  # the next call after it is back succeeds
            assert await sp.table.get("p", "before") is not None

    try:
        asyncio.run(main())
    finally:
        subprocess.run(
            _cluster_command("start"), capture_output=True
        )  # up again, whatever happened


def _accepts() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0


@needs_pg
def test_deadlock_with_another_client_is_retried() -> None:
    store_url = url()
    schema = schema_of(store_url)

    async def main() -> None:
        async with stateport.open(store_url) as sp:
            await sp.table.put("p", "a", {"n": 0})
            await sp.table.put("p", "b", {"n": 0})
            other = await raw_connect()
            try:
                await other.execute("BEGIN")
                await other.execute(
                    f'UPDATE "{schema}".sp_items SET version = version WHERE sk = $1', "b"
                )

                async def ours() -> None:
                    await sp.table.transact(
                        [Update("p", "a", set={"n": 1}), Update("p", "b", set={"n": 1})]
                    )

                task = asyncio.create_task(ours())
                await asyncio.sleep(0.3)  # ours holds a and waits for b
                try:
                    # the other client now wants a: a deadlock; one of the two is aborted
                    await other.execute(
                        f'UPDATE "{schema}".sp_items SET version = version WHERE sk = $1', "a"
                    )
                    await other.execute("COMMIT")
                except Exception:
                    await other.execute("ROLLBACK")
                await asyncio.wait_for(task, 30)  # ours succeeds, retried if it was the victim
            finally:
                await other.close()
            a, b = await sp.table.batch_get([("p", "a"), ("p", "b")])
            assert a is not None and b is not None and a.attrs["n"] == b.attrs["n"] == 1

    asyncio.run(main())


@needs_pg
def test_describe_names_the_server_and_settings() -> None:
    async def main() -> None:
        async with stateport.open(url(pool_max=4, statement_timeout=1000)) as sp:
            facts = sp.describe()
            assert facts["engine"].startswith("postgresql ")
            assert facts["pool_max"] == 4 and facts["statement_timeout_ms"] == 1000

    asyncio.run(main())
