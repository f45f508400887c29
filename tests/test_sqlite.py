"""SQLite specifics: files, processes, locks, migrations, tampering."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import stateport
from stateport import ConfigError, IntegrityError, Unavailable
from stateport.backends import open_engine
from stateport.backends.sqlite.schema import MIGRATIONS


def url_of(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(
            conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchall()
        )


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    url = url_of(tmp_path / "s.db")

    async def write() -> str:
        async with stateport.open(url) as sp:
            await sp.items.put({"pk": "p", "sk": "a", "v": 1})
            await sp.table.put("p", "b", {"gsi1pk": "g", "gsi1sk": "x"})
            return (await sp.blobs.put(b"kept")).as_str()

    async def read(digest: str) -> None:
        async with stateport.open(url) as sp:
            assert await sp.items.get("p", "a") == {"pk": "p", "sk": "a", "v": 1}
            assert [i.sk for i in await sp.table.query("g", index="gsi1")] == ["b"]
            assert await sp.blobs.get(digest) == b"kept"

    digest = asyncio.run(write())
    asyncio.run(read(digest))


def test_relative_path_and_missing_directories_are_created(tmp_path: Path) -> None:
    async def main() -> None:
        async with stateport.open("sqlite:///./deep/er/state.db") as sp:
            await sp.items.put({"pk": "p", "sk": "s"})

    asyncio.run(main())  # the test runs in a fresh working directory
    assert Path("deep/er/state.db").is_file()


def test_pragmas(tmp_path: Path) -> None:
    async def main() -> None:
        async with stateport.open(url_of(tmp_path / "s.db", durability="full")) as sp:
            assert sp.describe()["durability"] == "full"

    asyncio.run(main())
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---------------------------------------------------------------- locking


def test_writer_waits_for_a_lock_held_shorter_than_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    url = url_of(path, busy_timeout="5000")
    asyncio.run(_touch(url))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        holder.execute("COMMIT")
        released.set()

    timer = threading.Timer(0.3, release)

    async def main() -> None:
        async with stateport.open(url) as sp:
            timer.start()
            await sp.table.put("p", "after-lock", {"v": 1})  # must wait, not fail
            assert released.is_set()
            assert await sp.table.get("p", "after-lock") is not None

    try:
        asyncio.run(main())
    finally:
        timer.join()
        holder.close()


def test_a_first_open_waits_for_a_writer_before_switching_to_wal(tmp_path: Path) -> None:
    """A new file in rollback mode whose write lock is held: switching it to WAL
    needs that lock, and SQLite refuses at once (SQLITE_BUSY, busy timeout or not,
    as waiting could deadlock). The open tries again until the lock is released."""
    path = tmp_path / "s.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: holder.execute("COMMIT"))

    async def main() -> None:
        timer.start()
        async with stateport.open(url_of(path, busy_timeout="5000")) as sp:
            await sp.table.put("p", "s", {"v": 1})
        assert not holder.in_transaction  # it waited for the writer

    try:
        asyncio.run(main())
    finally:
        timer.join()
        holder.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_writer_gets_unavailable_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    url = url_of(path, busy_timeout="200")
    asyncio.run(_touch(url))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> None:
        async with stateport.open(url, migrate=False) as sp:
            with pytest.raises(Unavailable, match="busy timeout"):
                await sp.table.put("p", "s", {"v": 1})
            # reads are not blocked by a writer in WAL mode
            assert await sp.table.get("p", "s") is None

    try:
        asyncio.run(main())
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    async def after() -> None:
        async with stateport.open(url) as sp:
            await sp.table.put("p", "s", {"v": 1})
            assert await sp.table.get("p", "s") is not None

    asyncio.run(after())


async def _touch(url: str) -> None:
    async with stateport.open(url):
        pass


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize(("transactions", "per_txn", "pad"), [(6000, 1, 200), (60, 100, 3000)])
def test_inline_writes_keep_the_wal_bounded(
    tmp_path: Path, transactions: int, per_txn: int, pad: int
) -> None:
    """Without checkpoints either workload leaves a log of 20 MB or more."""
    from stateport import Put

    path = tmp_path / "s.db"
    largest = 0

    async def main() -> None:
        nonlocal largest
        async with stateport.open(url_of(path)) as sp:
            for t in range(transactions):
                ops = [
                    Put(f"p{i % 7}", f"{t:05d}-{i:03d}", {"pad": "x" * pad}) for i in range(per_txn)
                ]
                await sp.table.transact(ops)
                largest = max(largest, _wal_size(path))
            stored = [i.sk async for i in sp.table.query_all("p0")]
            assert len(stored) == transactions * len(range(0, per_txn, 7))

    asyncio.run(main())
    assert largest < 12 * 1024 * 1024, largest


def test_a_failing_checkpoint_does_not_hold_writes(tmp_path: Path) -> None:
    """A checkpoint that raises leaves the inline path open, also when writes were
    held behind it (else they would all take the worker from then on)."""
    path = tmp_path / "s.db"

    async def main() -> None:
        async with stateport.open(url_of(path)) as sp:
            executor = sp.table._x  # type: ignore[attr-defined]
            real = executor._worker_conn
            failed: list[str] = []

            class FailingCheckpoints:
                def execute(self, sql: str, *args: object) -> object:
                    if "wal_checkpoint" in sql:
                        failed.append(sql)
                        time.sleep(0.2)  # slow enough that the writers outpace it
                        raise sqlite3.OperationalError("disk I/O error")
                    return real.execute(sql, *args)

                def __getattr__(self, name: str) -> object:
                    return getattr(real, name)

            executor._worker_conn = FailingCheckpoints()
            for t in range(3000):
                await sp.table.put("p", f"{t:05d}", {"pad": "x" * 2000})
            # a read queued on the worker returns after any checkpoint still running
            await executor.run(lambda conn: None, write=False, inline=False)
            executor._worker_conn = real
            assert failed, "the workload should have started checkpoints"
            assert not executor._checkpointing and not executor._copying
            assert len([i async for i in sp.table.query_all("p")]) == 3000

    asyncio.run(main())


# ---------------------------------------------------------------- migrations


def test_fresh_install_equals_stepwise_upgrade(tmp_path: Path) -> None:
    fresh, stepwise = tmp_path / "fresh.db", tmp_path / "stepwise.db"

    async def main() -> None:
        engine = await open_engine(url_of(fresh))
        try:
            assert [m.version for m in await engine.migrate()] == [m.version for m in MIGRATIONS]
        finally:
            await engine.aclose()
        for m in MIGRATIONS:
            engine = await open_engine(url_of(stepwise))
            try:
                applied = await engine.migrate(stop_before=m.version + 1)
                assert [a.version for a in applied] == [m.version]
                assert (await engine.schema_version()).current == m.version
            finally:
                await engine.aclose()

    asyncio.run(main())
    assert schema_of(fresh) == schema_of(stepwise)


def test_migrate_is_idempotent_and_recorded(tmp_path: Path) -> None:
    async def main() -> None:
        async with stateport.open(url_of(tmp_path / "s.db")) as sp:
            assert await sp.migrate() == []
            status = await sp.schema_version()
            assert status.current == status.latest == MIGRATIONS[-1].version
            assert [a.name for a in status.applied] == [m.name for m in MIGRATIONS]
            assert status.pending == 0

    asyncio.run(main())


def test_pending_migrations_refused_without_migrate(tmp_path: Path) -> None:
    url = url_of(tmp_path / "s.db")

    async def main() -> None:
        engine = await open_engine(url)
        await engine.migrate(stop_before=2)
        await engine.aclose()
        with pytest.raises(ConfigError, match="stateport db migrate"):
            await stateport.open(url, migrate=False)
        async with stateport.open(url) as sp:  # migrates
            assert (await sp.schema_version()).pending == 0

    asyncio.run(main())


def test_database_from_a_newer_stateport_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(_touch(url_of(path)))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO sp_migrations VALUES (999, 'future', '2030-01-01')")
    with pytest.raises(ConfigError, match="newer than this stateport"):
        asyncio.run(_touch(url_of(path)))


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    url = url_of(tmp_path / "s.db")
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            asyncio.run(_touch(url))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT count(*) FROM sp_migrations").fetchone()[0] == len(MIGRATIONS)


# ---------------------------------------------------------------- bad files


def test_a_file_that_is_not_sqlite_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ConfigError, match="not a SQLite database"):
        asyncio.run(_touch(url_of(path)))


def test_tampered_blob_chunk_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def put() -> str:
        async with stateport.open(url_of(path)) as sp:
            return (await sp.blobs.put(b"original content" * 1000)).as_str()

    digest = asyncio.run(put())
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sp_blob_chunks SET data = ?", (b"tampered" * 2000,))

    async def read() -> None:
        async with stateport.open(url_of(path)) as sp:
            with pytest.raises(IntegrityError, match="corrupt"):
                await sp.blobs.get(digest)
            with pytest.raises(IntegrityError):
                await sp.blobs.verify(digest)

    asyncio.run(read())


def test_no_driver_exception_escapes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    asyncio.run(_touch(url_of(path)))
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sp_items")

    async def main() -> None:
        async with stateport.open(url_of(path), migrate=False) as sp:
            with pytest.raises(stateport.StateportError) as info:
                await sp.table.put("p", "s", {})
            assert isinstance(info.value.__cause__, sqlite3.Error)

    asyncio.run(main())


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    async def main() -> None:
        sp = await stateport.open(url_of(tmp_path / "s.db"))
        await sp.aclose()
        await sp.aclose()  # idempotent
        with pytest.raises(Unavailable, match="closed"):
            await sp.table.get("p", "s")

    asyncio.run(main())


def test_abandoned_uploads_are_invisible_and_swept(tmp_path: Path) -> None:
    from datetime import timedelta

    from stateport.backends.sqlite.blob import SqliteBlobPort

    path = tmp_path / "s.db"

    async def main() -> None:
        async with stateport.open(url_of(path)) as sp:
            blobs = sp.blobs
            assert isinstance(blobs, SqliteBlobPort)
            upload = await blobs._begin()  # as a crash mid-upload would leave it
            await upload.write(b"x" * (2 * 1024 * 1024))
            assert [d async for d in blobs] == []
            assert await blobs.sweep() == 0  # too young to be abandoned
            assert await blobs.sweep(older_than=timedelta(0)) == 1

    asyncio.run(main())
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sp_blob_chunks").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sp_blobs").fetchone()[0] == 0


# ---------------------------------------------------------------- several processes


def _transfer_worker(url: str, seed: int, transfers: int) -> None:
    import random

    from stateport import Conflict, Update, VersionEquals

    rng = random.Random(seed)

    async def main() -> None:
        async with stateport.open(url) as sp:
            done = 0
            while done < transfers:
                a, b = rng.sample(range(5), 2)
                src, dst = await sp.table.batch_get([("bank", f"acct{a}"), ("bank", f"acct{b}")])
                assert src is not None and dst is not None
                amount = rng.randint(1, 5)
                try:
                    await sp.table.transact(
                        [
                            Update(
                                "bank",
                                src.sk,
                                {"balance": src.attrs["balance"] - amount},
                                condition=VersionEquals(src.version),
                            ),
                            Update(
                                "bank",
                                dst.sk,
                                {"balance": dst.attrs["balance"] + amount},
                                condition=VersionEquals(dst.version),
                            ),
                        ]
                    )
                except Conflict:
                    continue
                done += 1
                await sp.blobs.put(f"receipt {seed} {done}".encode())

    asyncio.run(main())


def test_transfers_from_several_processes_keep_the_total(tmp_path: Path) -> None:
    """Atomic two-item transactions from 4 processes: money is neither made nor lost."""
    import multiprocessing

    path = tmp_path / "bank.db"
    url = url_of(path)

    async def setup() -> None:
        async with stateport.open(url) as sp:
            for i in range(5):
                await sp.table.put("bank", f"acct{i}", {"balance": 1000})

    asyncio.run(setup())
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_transfer_worker, args=(url, seed, 60)) for seed in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * 4

    async def check() -> None:
        async with stateport.open(url) as sp:
            accounts = [i async for i in sp.table.query_all("bank")]
            assert sum(a.attrs["balance"] for a in accounts) == 5000
            assert sum(a.version - 1 for a in accounts) == 2 * 4 * 60  # every transfer counted
            assert len([d async for d in sp.blobs]) == 4 * 60

    asyncio.run(check())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
