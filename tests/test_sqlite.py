"""SQLite mechanics: files and paths, pragmas, locks and the busy timeout, the WAL
and its checkpoints, tampering with the file, abandoned uploads.

What every engine must do (migrations, reopening, closing, driver errors,
several processes) is in the conformance kit, run on SQLite by
tests/test_conformance.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import stateport
from stateport import ConfigError, IntegrityError, Unavailable


def url_of(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


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


def test_a_scan_page_starts_where_the_last_one_ended(tmp_path: Path) -> None:
    """Each page of a scan reads from its cursor on, by the primary key, with or
    without a prefix (a row value beside ``pk >= ?`` would make SQLite read each
    page of a prefix from its start)."""
    from stateport.backends._sql import select_scan

    conn = sqlite3.connect(tmp_path / "plan.db")
    conn.execute(
        "CREATE TABLE sp_items (pk TEXT NOT NULL, sk TEXT NOT NULL, version INTEGER NOT NULL,"
        " attrs TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID"
    )
    for prefix in ("", "run#"):
        sql, args = select_scan(prefix, ("run#1", "e#1"), 100, "sp_items", lambda n: "?")
        plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        assert "USING PRIMARY KEY ((pk,sk)>(?,?)" in plan, plan
    conn.close()
