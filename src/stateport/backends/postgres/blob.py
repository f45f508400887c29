"""The blob port in PostgreSQL: one row per blob, content in ``bytea`` chunk rows.

As in the SQLite file: a row of ``sp_blobs`` per blob and its content in 1 MiB
rows of ``sp_blob_chunks``, so reads stream. A blob put whole that fits one
chunk is one statement (both rows, atomic on its own: the common case, and a
copy's). A streamed upload stages its chunks
under a row whose digest is NULL, one statement per chunk (no transaction is
held open while the caller produces data), and publishes by setting the digest
in one statement; if the digest is stored meanwhile, the staged copy is
dropped. Staged rows left by a crash are removed by :meth:`sweep`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from ..._retry import Retry
from ...digest import ContentDigest
from ...errors import NotFound
from ...ports.blob import CHUNK_SIZE, BlobPort, ChunkedUpload, Upload
from ._conn import Connection, Database, sqlstate


async def _insert_chunks(
    conn: Connection, schema: str, blob_id: int, first_seq: int, data: bytes
) -> int:
    seq = first_seq
    view = memoryview(data)
    for start in range(0, len(data), CHUNK_SIZE):  # one chunk at a time: no second copy
        await conn.execute(
            f"INSERT INTO {schema}.sp_blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)",
            blob_id,
            seq,
            bytes(view[start : start + CHUNK_SIZE]),
        )
        seq += 1
    return seq


class _PostgresUpload(ChunkedUpload):
    def __init__(self, port: PostgresBlobPort, blob_id: int) -> None:
        super().__init__()
        self._db = port._db
        self._blob_id = blob_id

    async def _store_chunks(self, seq: int, data: bytes) -> int:
        s, blob_id = self._db.schema, self._blob_id
        return await self._db.call(lambda conn: _insert_chunks(conn, s, blob_id, seq, data))

    async def _publish(self, seq: int, rest: bytes, digest: ContentDigest, size: int) -> None:
        s, blob_id = self._db.schema, self._blob_id

        async def work(conn: Connection) -> None:
            await _insert_chunks(conn, s, blob_id, seq, rest)
            try:
                await conn.execute(
                    f"UPDATE {s}.sp_blobs SET digest = $1, size = $2 WHERE blob_id = $3",
                    digest.as_str(),
                    size,
                    blob_id,
                )
            except Exception as e:
                if sqlstate(e) != "23505":
                    raise
                # stored meanwhile by someone else: keep theirs
                await conn.execute(f"DELETE FROM {s}.sp_blobs WHERE blob_id = $1", blob_id)

        await self._db.call(work)

    async def _discard(self) -> None:
        s, blob_id = self._db.schema, self._blob_id
        await self._db.call(
            lambda conn: conn.execute(
                f"DELETE FROM {s}.sp_blobs WHERE blob_id = $1 AND digest IS NULL", blob_id
            )
        )


class PostgresBlobPort(BlobPort):
    """Blobs in ``sp_blobs`` / ``sp_blob_chunks`` of the store's schema."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _store(self, digest: ContentDigest, data: bytes) -> None:
        s, key = self._db.schema, digest.as_str()
        if 0 < len(data) <= CHUNK_SIZE:  # one chunk: one statement, atomic on its own
            await self._db.fetchrow(
                f"WITH b AS (INSERT INTO {s}.sp_blobs (digest, size) VALUES ($1, $2) "
                "ON CONFLICT (digest) DO NOTHING RETURNING blob_id) "
                f"INSERT INTO {s}.sp_blob_chunks (blob_id, seq, data) SELECT blob_id, 0, $3 FROM b",
                key,
                len(data),
                data,
            )
            return

        async def work(conn: Connection) -> None:
            blob_id = await conn.fetchval(
                f"INSERT INTO {s}.sp_blobs (digest, size) VALUES ($1, $2) "
                "ON CONFLICT (digest) DO NOTHING RETURNING blob_id",
                key,
                len(data),
            )
            if blob_id is not None:  # None: already stored
                await _insert_chunks(conn, s, blob_id, 0, data)

        await self._db.home.call(self._db.transaction(work))

    async def _store_many(self, blobs: Sequence[tuple[ContentDigest, bytes]]) -> None:
        """The blobs not stored yet, in one transaction of two ``COPY``s (ids drawn
        from the blobs' sequence first); one stored meanwhile by someone else makes
        the transaction run again, and look again."""
        s = self._db.schema
        schema = s.strip('"')

        async def work(conn: Connection) -> None:
            stored = {
                r[0]
                for r in await conn.fetch(
                    f"SELECT digest FROM {s}.sp_blobs WHERE digest = ANY($1::text[])",
                    [d.as_str() for d, _ in blobs],
                )
            }
            new = [(d, data) for d, data in blobs if d.as_str() not in stored]
            if not new:
                return
            ids = await conn.fetch(
                f"SELECT nextval(pg_get_serial_sequence('{s}.sp_blobs', 'blob_id')) "
                "FROM generate_series(1, $1)",
                len(new),
            )
            numbered = [(r[0], d, data) for r, (d, data) in zip(ids, new, strict=True)]
            blob_rows = [(i, d.as_str(), len(data)) for i, d, data in numbered]
            chunk_rows = [(i, 0, data) for i, _, data in numbered if data]
            copy = conn.copy_records_to_table
            try:
                await copy("sp_blobs", schema_name=schema, records=blob_rows,
                           columns=["blob_id", "digest", "size"])  # fmt: skip
                await copy("sp_blob_chunks", schema_name=schema, records=chunk_rows,
                           columns=["blob_id", "seq", "data"])  # fmt: skip
            except Exception as e:
                if sqlstate(e) == "23505":  # stored meanwhile: look again
                    raise Retry(str(e)) from e
                raise

        await self._db.home.call(self._db.transaction(work))

    async def _begin(self) -> Upload:
        s = self._db.schema
        blob_id = await self._db.call(
            lambda conn: conn.fetchval(
                f"INSERT INTO {s}.sp_blobs (digest, size) VALUES (NULL, 0) RETURNING blob_id"
            )
        )
        return _PostgresUpload(self, int(blob_id))

    async def _load(self, digest: ContentDigest) -> bytes | None:
        s, key = self._db.schema, digest.as_str()

        async def work(conn: Connection) -> bytes | None:
            # one statement: one snapshot, so a concurrent delete is all or nothing
            rows = await conn.fetch(
                f"SELECT c.data FROM {s}.sp_blobs b LEFT JOIN {s}.sp_blob_chunks c "
                "ON c.blob_id = b.blob_id WHERE b.digest = $1 ORDER BY c.seq",
                key,
            )
            if not rows:
                return None
            return b"".join(r[0] for r in rows if r[0] is not None)

        return await self._db.call(work)

    async def _locate(self, digest: ContentDigest) -> tuple[int, int] | None:
        s, key = self._db.schema, digest.as_str()

        async def work(conn: Connection) -> tuple[int, int] | None:
            row = await conn.fetchrow(
                f"SELECT blob_id, size FROM {s}.sp_blobs WHERE digest = $1", key
            )
            return None if row is None else (int(row[0]), int(row[1]))

        return await self._db.call(work)

    async def _chunks(self, digest: ContentDigest) -> tuple[int, AsyncIterator[bytes]] | None:
        found = await self._locate(digest)
        if found is None:
            return None
        blob_id, size = found
        db, s = self._db, self._db.schema
        sql = f"SELECT data FROM {s}.sp_blob_chunks WHERE blob_id = $1 AND seq = $2"

        async def chunks() -> AsyncIterator[bytes]:
            seq = 0
            while True:

                async def fetch(conn: Connection, seq: int = seq) -> bytes | None:
                    found: bytes | None = await conn.fetchval(sql, blob_id, seq)
                    return found

                data = await db.call(fetch)
                if data is None:
                    if seq * CHUNK_SIZE < size:
                        raise NotFound(f"blob {digest.short()} was deleted while being read")
                    return
                yield bytes(data)
                seq += 1

        return size, chunks()

    async def _contains(self, digest: ContentDigest) -> bool:
        return await self._locate(digest) is not None

    async def _delete(self, digest: ContentDigest) -> None:
        s, key = self._db.schema, digest.as_str()
        await self._db.call(
            lambda conn: conn.execute(f"DELETE FROM {s}.sp_blobs WHERE digest = $1", key)
        )

    async def _list(self, after: ContentDigest | None, limit: int) -> list[ContentDigest]:
        s, start = self._db.schema, "" if after is None else after.as_str()

        async def work(conn: Connection) -> list[ContentDigest]:
            rows = await conn.fetch(
                f"SELECT digest FROM {s}.sp_blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
                start,
                limit,
            )
            return [ContentDigest._trusted(r[0]) for r in rows]

        return await self._db.call(work)

    async def sweep(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Drop uploads abandoned (by a crash) longer than ``older_than`` ago."""
        s = self._db.schema

        async def work(conn: Connection) -> int:
            status = await conn.execute(
                f"DELETE FROM {s}.sp_blobs WHERE digest IS NULL AND created_at < now() - $1",
                older_than,
            )
            return int(status.split()[-1])

        return await self._db.call(work)

    def location(self) -> str:
        return f"in the database ({self._db.where})"

    async def aclose(self) -> None:
        return None  # the pool belongs to the engine
