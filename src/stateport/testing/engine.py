"""Conformance tests for an engine's life: migrations, opening, reopening, closing, errors.

Subclass :class:`EngineConformance` and implement its hooks (each abstract: a
class that leaves one out cannot run, and pytest says which). The suite then
proves, on your engine:

* a fresh install equals a migration made step by step (same catalogue);
* ``migrate(stop_before=...)`` stops there, and ``open(migrate=False)`` refuses
  what is still pending;
* a database written by a newer schema is refused with ``ConfigError``;
* several threads (and processes) opening one new store at once all succeed,
  and each migration is applied once;
* reopening keeps the data, versions and schema;
* every method of a closed store raises ``Unavailable`` (no driver error, no hang);
* no driver exception escapes: the backend's table of driver errors is shown
  one driver error per row, and a real failure inside the driver arrives as a
  stateport error caused by it.

Tests that need a :class:`~stateport.ports.Capability` the engine lacks skip,
saying which.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest

from ..backends import ErrorMap, open_engine
from ..errors import ConfigError, Conflict, StateportError, Unavailable
from ..ports.engine import Capability, Engine
from ..ports.table import KeyRange, Put
from ._calls import CALLS, missing_calls
from ._support import async_test, in_processes, in_threads, needs
from .store import StoreConformance

__all__ = ["DriverErrors", "EngineConformance"]


@dataclass(frozen=True, slots=True)
class DriverErrors:
    """A backend's table of driver errors, and the cases that check it row by row."""

    errors: ErrorMap
    """The backend's table (``ERRORS`` of its module)."""
    cases: Sequence[tuple[BaseException, type[StateportError]]]
    """Driver exceptions, each with the stateport error it must become; together
    they must reach every row of ``errors``, its last (catch-all) row included."""


def _first_open_worker(url: str, worker: int, times: int) -> None:
    """A child process: open a new store (migrating it) and write ``times`` pairs."""
    import stateport

    async def main() -> None:
        async with stateport.open(url) as sp:
            for i in range(times):
                await sp.table.transact(
                    [
                        Put("opened", f"{worker:02d}-{i:03d}-a", {"w": worker}),
                        Put("opened", f"{worker:02d}-{i:03d}-b", {"w": worker}),
                    ]
                )

    asyncio.run(main())


class EngineConformance(StoreConformance):
    """What every engine must show about its own life. Implement the hooks below."""

    # ------------------------------------------------------------ hooks

    @abstractmethod
    async def catalogue(self, engine: Engine) -> object:
        """The engine's own description of the schema of ``engine``'s store, as
        comparable data (SQLite: ``sqlite_master``; PostgreSQL: columns and
        indexes; DynamoDB: key schema and indexes). Called on engines that declare
        ``Capability.MIGRATIONS``."""

    @abstractmethod
    async def record_unknown_migration(self, engine: Engine, version: int) -> None:
        """Record migration ``version`` as applied, as a newer stateport would, in
        the store of ``engine`` (which does not know that version). Called on
        engines that declare ``Capability.MIGRATIONS``."""

    @abstractmethod
    def driver_errors(self) -> DriverErrors | None:
        """The backend's table of driver errors with its cases (see
        :class:`DriverErrors`), or None for an engine without a driver (memory://)."""

    @abstractmethod
    async def drop_item_table(self, engine: Engine) -> None:
        """Remove what holds the items of ``engine``'s store behind the engine's back
        (as a bad manual edit would), so the next table call fails inside the
        driver. Called when :meth:`driver_errors` is not None."""

    @abstractmethod
    async def check_consistency(self, engine: Engine) -> None:
        """Run the engine's own check of the store's files or tables (SQLite:
        ``PRAGMA integrity_check``) and fail if it finds damage. Called after
        several processes wrote at once."""

    # ------------------------------------------------------------ migrations

    @needs(Capability.MIGRATIONS)
    @async_test
    async def test_a_fresh_install_equals_a_stepwise_migration(self) -> None:
        fresh = await open_engine(self.store_url())
        try:
            status = await fresh.schema_version()
            latest = status.latest
            assert status.current == 0 and latest >= 1
            applied = await fresh.migrate()
            assert [a.version for a in applied] == list(range(1, latest + 1))
            expected = await self.catalogue(fresh)
        finally:
            await fresh.aclose()
        assert expected, "the catalogue of a migrated store describes nothing"
        url = self.store_url()
        reopen = Capability.PERSISTENT in self.capabilities()
        engine = await open_engine(url)
        try:
            for version in range(1, latest + 1):
                if reopen and version > 1:  # each step from a freshly opened engine
                    await engine.aclose()
                    engine = await open_engine(url)
                applied = await engine.migrate(stop_before=version + 1)
                assert [a.version for a in applied] == [version]
                assert (await engine.schema_version()).current == version
            assert await self.catalogue(engine) == expected
        finally:
            await engine.aclose()

    @needs(Capability.MIGRATIONS)
    @async_test
    async def test_stop_before_leaves_the_rest_pending(self) -> None:
        import stateport

        url = self.store_url()
        reopen = Capability.PERSISTENT in self.capabilities()
        engine = await open_engine(url)
        try:
            latest = (await engine.schema_version()).latest
            applied = await engine.migrate(stop_before=latest)
            assert [a.version for a in applied] == list(range(1, latest))
            status = await engine.schema_version()
            assert (status.current, status.pending) == (latest - 1, 1)
            assert await engine.migrate(stop_before=latest) == []
            if reopen:
                with pytest.raises(ConfigError, match="db migrate"):
                    await stateport.open(url, migrate=False)
            rest = await engine.migrate()
            assert [a.version for a in rest] == [latest]
            assert await engine.migrate() == []  # idempotent
            status = await engine.schema_version()
            assert [a.version for a in status.applied] == list(range(1, latest + 1))
            assert all(a.name and a.applied_at for a in status.applied)
            assert len({a.name for a in status.applied}) == latest
        finally:
            await engine.aclose()
        if reopen:
            async with stateport.open(url, migrate=False) as sp:
                assert (await sp.schema_version()).pending == 0

    @needs(Capability.MIGRATIONS)
    @async_test
    async def test_a_schema_from_a_newer_stateport_is_refused(self) -> None:
        import stateport

        url = self.store_url()
        newer = "newer than this stateport.*upgrade stateport"
        async with stateport.open(url) as sp:
            latest = (await sp.schema_version()).latest
            await self.record_unknown_migration(sp.engine, latest + 1)
            with pytest.raises(ConfigError, match=newer):
                await sp.schema_version()
            with pytest.raises(ConfigError, match=newer):
                await sp.migrate()
        if Capability.PERSISTENT in self.capabilities():
            for create in (True, False):
                with pytest.raises(ConfigError, match=newer):
                    await stateport.open(url, create=create)

    # ------------------------------------------------------------ opening

    @needs(Capability.PERSISTENT)
    @async_test
    async def test_concurrent_first_opens_in_threads_all_succeed(self) -> None:
        import stateport

        url = self.store_url()

        async def first_open(i: int) -> int:
            async with stateport.open(url) as sp:
                await sp.table.put("opened", f"{i:02d}", {"by": i})
                return (await sp.schema_version()).current

        currents = await in_threads(first_open, 6)
        async with stateport.open(url, migrate=False) as sp:
            status = await sp.schema_version()
            assert currents == [status.latest] * 6
            assert [a.version for a in status.applied] == list(range(1, status.latest + 1))
            opened = [i.sk async for i in sp.table.query_all("opened")]
            assert opened == [f"{i:02d}" for i in range(6)]

    @needs(Capability.MULTI_PROCESS)
    def test_concurrent_first_opens_in_processes_all_succeed(self) -> None:
        import stateport

        url = self.store_url()
        processes, times = 4, 15
        in_processes(_first_open_worker, [(url, w, times) for w in range(processes)])

        async def check() -> None:
            async with stateport.open(url, migrate=False) as sp:
                status = await sp.schema_version()
                assert [a.version for a in status.applied] == list(range(1, status.latest + 1))
                rows = [i async for i in sp.table.query_all("opened")]
                assert len(rows) == processes * times * 2
                assert sorted({r.attrs["w"] for r in rows}) == list(range(processes))
                await self.check_consistency(sp.engine)

        asyncio.run(check())

    @needs(Capability.PERSISTENT)
    @async_test
    async def test_reopening_keeps_data_versions_and_schema(self) -> None:
        import stateport

        url = self.store_url()
        async with stateport.open(url) as sp:
            await sp.items.put({"pk": "p", "sk": "a", "v": 1})
            await sp.table.put("p", "b", {"gsi1pk": "g", "gsi1sk": "x"})
            await sp.table.update("p", "b", set={"n": 2})
            digest = await sp.blobs.put(b"kept" * 100_000)
            status = await sp.schema_version()
        async with stateport.open(url, migrate=False) as sp:
            assert await sp.items.get("p", "a") == {"pk": "p", "sk": "a", "v": 1}
            b = await sp.table.get("p", "b")
            assert b is not None and b.version == 2 and b.attrs["n"] == 2
            assert [i.sk for i in await sp.table.query("g", index="gsi1")] == ["b"]
            assert await sp.blobs.get(digest) == b"kept" * 100_000
            assert await sp.schema_version() == status
            again = await sp.table.update("p", "b", set={"n": 3})
            assert again.version == 3

    # ------------------------------------------------------------ closing

    @async_test
    async def test_every_method_of_a_closed_store_raises_unavailable(self) -> None:
        import stateport

        missing = missing_calls()
        assert missing == [], f"no call for {missing} in stateport/testing/_calls.py"
        sp = await stateport.open(self.store_url())
        await sp.aclose()
        await sp.aclose()  # closing again is allowed
        wrong: list[str] = []
        for name, call in CALLS.items():
            try:
                await asyncio.wait_for(call(sp), 10)
            except Unavailable as e:
                if "closed" not in str(e):
                    wrong.append(f"{name}: Unavailable not saying the store is closed: {e}")
            except TimeoutError:
                wrong.append(f"{name}: still waiting after 10 s")
            except BaseException as e:
                wrong.append(f"{name}: {type(e).__module__}.{type(e).__qualname__}: {e}")
            else:
                wrong.append(f"{name}: answered")
        assert wrong == [], "\n".join(wrong)

    # ------------------------------------------------------------ driver errors

    def _driver_errors(self) -> DriverErrors:
        table = self.driver_errors()
        if table is None:
            pytest.skip("the engine has no driver whose errors need translating")
        return table

    def test_every_row_of_the_driver_error_table(self) -> None:
        table = self._driver_errors()
        where = "the store under test"
        reached: set[str] = set()
        wrong: list[str] = []
        for error, expected in table.cases:
            assert not isinstance(error, StateportError), f"{error!r} is not a driver error"
            rule = table.errors.rule_for(error)
            reached.add(rule.name)
            got = table.errors.translate(error, where)
            if type(got) is not expected:
                wrong.append(
                    f"{type(error).__name__}({error}) took row {rule.name!r} and became "
                    f"{type(got).__name__}, not {expected.__name__}"
                )
            elif not str(got).strip():
                wrong.append(f"row {rule.name!r} gives an empty message")
        unreached = [r.name for r in table.errors.rules if r.name not in reached]
        assert wrong == [], "\n".join(wrong)
        assert unreached == [], f"rows no case reaches: {unreached}"
        conflict = Conflict("already a stateport error")
        assert table.errors.translate(conflict, where) is conflict

    @async_test
    async def test_a_failure_inside_the_driver_arrives_as_a_stateport_error(self) -> None:
        import stateport

        self._driver_errors()
        async with stateport.open(self.store_url()) as sp:
            await sp.table.put("p", "s", {})
            await self.drop_item_table(sp.engine)
            calls: dict[str, Callable[[], Awaitable[object]]] = {
                "put": lambda: sp.table.put("p", "t", {}),
                "get": lambda: sp.table.get("p", "s"),
                "query": lambda: sp.table.query("p", KeyRange.prefix("s")),
                "transact": lambda: sp.table.transact([Put("p", "a", {}), Put("p", "b", {})]),
            }
            for name, call in calls.items():
                with pytest.raises(StateportError) as info:
                    await call()
                cause = info.value.__cause__
                assert cause is not None and not isinstance(cause, StateportError), name
                assert not type(cause).__module__.startswith("stateport"), (name, cause)

    # ------------------------------------------------------------ the sync facade and CLI

    def test_the_sync_facade_shares_one_store_between_threads(self) -> None:
        import stateport.sync

        with stateport.sync.open(self.store_url()) as sp:
            errors: list[BaseException] = []

            def write(w: int) -> None:
                try:
                    for i in range(10):
                        sp.table.put("t", f"{w}-{i:02d}", {"w": w})
                except BaseException as e:  # reported below
                    errors.append(e)

            workers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
            for t in workers:
                t.start()
            for t in workers:
                t.join()
            assert errors == []
            assert len(sp.table.query("t").items) == 40
            item = sp.table.get("t", "0-00")
            assert item is not None and item.attrs == {"w": 0}

    @needs(Capability.MIGRATIONS, Capability.PERSISTENT)
    def test_the_cli_migrates_and_reports_the_version(self) -> None:
        url = self.store_url()
        code, _, err = _cli("db", "version", "--url", url)
        assert code == 1 and "db migrate" in err  # looking creates nothing
        code, out, err = _cli("db", "migrate", "--url", url)
        assert code == 0, err
        assert "applied migration 1" in out
        code, out, err = _cli("db", "version", "--url", url)
        assert code == 0, err
        latest = out.splitlines()[0].split()[2]
        assert out.splitlines()[0] == f"schema version {latest} of {latest} (up to date)"


def _cli(*argv: str) -> tuple[int, str, str]:
    """Run the ``stateport`` command in this process; its status, stdout and stderr."""
    from ..cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()
