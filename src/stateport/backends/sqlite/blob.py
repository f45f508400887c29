"""The blob port inside the SQLite file: one row per blob, content in chunk rows.

Keeps a store in a single file. Uploads stage their chunks under a row whose
digest is NULL, each chunk in its own short transaction (a large upload never
holds the write lock for long), and publish in one final transaction that sets
the digest — or drops the staged copy when the digest is already stored.
Staged rows left by a crash are swept after a day (:meth:`SqliteBlobPort.sweep`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

from ...digest import ContentDigest
from ...errors import NotFound
from ...ports.blob import CHUNK_SIZE, BlobPort, ChunkedUpload, Upload
from ._executor import Executor

_INLINE_MAX = 256 * 1024  # bigger blobs are written off the caller's thread


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _find(conn: sqlite3.Connection, key: str) -> tuple[int, int] | None:
    """``(blob_id, size)`` of the stored blob with digest ``key``, or None."""
    row = conn.execute("SELECT blob_id, size FROM sp_blobs WHERE digest = ?", (key,)).fetchone()
    return None if row is None else (row[0], row[1])


def _insert_chunks(conn: sqlite3.Connection, blob_id: int, first_seq: int, data: bytes) -> int:
    seq = first_seq
    for start in range(0, len(data), CHUNK_SIZE):
        conn.execute(
            "INSERT INTO sp_blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)",
            (blob_id, seq, data[start : start + CHUNK_SIZE]),
        )
        seq += 1
    return seq


class _SqliteUpload(ChunkedUpload):
    def __init__(self, port: SqliteBlobPort, blob_id: int) -> None:
        super().__init__()
        self._x = port._x
        self._blob_id = blob_id

    async def _store_chunks(self, seq: int, data: bytes) -> int:
        blob_id = self._blob_id

        def work(conn: sqlite3.Connection) -> int:
            return _insert_chunks(conn, blob_id, seq, data)

        return await self._x.run(work, write=True, inline=False)

    async def _publish(self, seq: int, rest: bytes, digest: ContentDigest, size: int) -> None:
        blob_id = self._blob_id

        def work(conn: sqlite3.Connection) -> None:
            _insert_chunks(conn, blob_id, seq, rest)
            if conn.execute(
                "SELECT 1 FROM sp_blobs WHERE digest = ?", (digest.as_str(),)
            ).fetchone():
                conn.execute("DELETE FROM sp_blobs WHERE blob_id = ?", (blob_id,))
            else:
                conn.execute(
                    "UPDATE sp_blobs SET digest = ?, size = ? WHERE blob_id = ?",
                    (digest.as_str(), size, blob_id),
                )

        await self._x.run(work, write=True, inline=False)

    async def _discard(self) -> None:
        blob_id = self._blob_id

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM sp_blobs WHERE blob_id = ? AND digest IS NULL", (blob_id,))

        await self._x.run(work, write=True, inline=False)


class SqliteBlobPort(BlobPort):
    """Blobs in ``sp_blobs`` / ``sp_blob_chunks`` of the store's own file."""

    def __init__(self, executor: Executor) -> None:
        self._x = executor

    async def _store(self, digest: ContentDigest, data: bytes) -> None:
        key = digest.as_str()

        def work(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM sp_blobs WHERE digest = ?", (key,)).fetchone():
                return
            blob_id = conn.execute(
                "INSERT INTO sp_blobs (digest, size, created_at) VALUES (?, ?, ?) "
                "RETURNING blob_id",
                (key, len(data), _now()),
            ).fetchone()[0]
            _insert_chunks(conn, blob_id, 0, data)

        await self._x.run(work, write=True, inline=len(data) <= _INLINE_MAX, size=len(data))

    async def _store_many(self, blobs: Sequence[tuple[ContentDigest, bytes]]) -> None:
        """The blobs not stored yet, in one transaction (off the caller's thread)."""
        now = _now()

        def work(conn: sqlite3.Connection) -> None:
            for digest, data in blobs:
                key = digest.as_str()
                if conn.execute("SELECT 1 FROM sp_blobs WHERE digest = ?", (key,)).fetchone():
                    continue
                blob_id = conn.execute(
                    "INSERT INTO sp_blobs (digest, size, created_at) VALUES (?, ?, ?) "
                    "RETURNING blob_id",
                    (key, len(data), now),
                ).fetchone()[0]
                _insert_chunks(conn, blob_id, 0, data)

        size = sum(len(data) for _, data in blobs)
        await self._x.run(work, write=True, inline=False, size=size)

    async def _begin(self) -> Upload:
        def work(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "INSERT INTO sp_blobs (digest, size, created_at) VALUES (NULL, 0, ?) "
                "RETURNING blob_id",
                (_now(),),
            ).fetchone()
            return int(row[0])

        return _SqliteUpload(self, await self._x.run(work, write=True))

    async def _locate(self, digest: ContentDigest) -> tuple[int, int] | None:
        key = digest.as_str()
        return await self._x.run(lambda conn: _find(conn, key), write=False, single=True)

    async def _load(self, digest: ContentDigest) -> bytes | None:
        key = digest.as_str()

        def work(conn: sqlite3.Connection) -> bytes | None:
            found = _find(conn, key)
            if found is None:
                return None
            parts = conn.execute(
                "SELECT data FROM sp_blob_chunks WHERE blob_id = ? ORDER BY seq", (found[0],)
            ).fetchall()
            return b"".join(p[0] for p in parts)

        return await self._x.run(work, write=False, inline=False)

    async def _chunks(self, digest: ContentDigest) -> tuple[int, AsyncIterator[bytes]] | None:
        found = await self._locate(digest)
        if found is None:
            return None
        blob_id, size = found
        x = self._x

        async def chunks() -> AsyncIterator[bytes]:
            seq = 0
            while True:

                def work(conn: sqlite3.Connection, seq: int = seq) -> bytes | None:
                    row = conn.execute(
                        "SELECT data FROM sp_blob_chunks WHERE blob_id = ? AND seq = ?",
                        (blob_id, seq),
                    ).fetchone()
                    return None if row is None else bytes(row[0])

                data = await x.run(work, write=False, inline=False)
                if data is None:
                    if seq * CHUNK_SIZE < size:
                        raise NotFound(f"blob {digest.short()} was deleted while being read")
                    return
                yield data
                seq += 1

        return size, chunks()

    async def _contains(self, digest: ContentDigest) -> bool:
        return await self._locate(digest) is not None

    async def _delete(self, digest: ContentDigest) -> None:
        key = digest.as_str()

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM sp_blobs WHERE digest = ?", (key,))

        await self._x.run(work, write=True)

    async def _list(self, after: ContentDigest | None, limit: int) -> list[ContentDigest]:
        start = "" if after is None else after.as_str()

        def work(conn: sqlite3.Connection) -> list[ContentDigest]:
            rows = conn.execute(
                "SELECT digest FROM sp_blobs WHERE digest > ? ORDER BY digest LIMIT ?",
                (start, limit),
            ).fetchall()
            return [ContentDigest._trusted(r[0]) for r in rows]

        return await self._x.run(work, write=False)

    async def sweep(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Drop uploads abandoned (by a crash) longer than ``older_than`` ago."""
        cutoff = (datetime.now(UTC) - older_than).isoformat()

        def work(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM sp_blobs WHERE digest IS NULL AND created_at < ?", (cutoff,)
            )
            return cur.rowcount

        return await self._x.run(work, write=True, inline=False)

    def location(self) -> str:
        return "in the database"

    async def aclose(self) -> None:
        return None  # the executor belongs to the engine
