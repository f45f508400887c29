"""Conformance tests for the blob port (``sp.blobs``).

Subclass :class:`BlobPortConformance` and implement
:meth:`~stateport.testing.StoreConformance.store_url`; every test runs as a
pytest item.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from ..digest import ContentDigest
from ..errors import NotFound, ValidationError
from ..ports.blob import CHUNK_SIZE, BlobPort
from ._support import async_test
from .store import StoreConformance

__all__ = ["BlobPortConformance"]


class _Boom(Exception):
    pass


class BlobPortConformance(StoreConformance):
    """The behaviour every blob engine must show."""

    def open_blobs(self) -> AbstractAsyncContextManager[BlobPort]:
        """The blob port of a fresh store."""
        return blobs_of(self.store_url())

    @async_test
    async def test_put_returns_the_sha256(self) -> None:
        async with self.open_blobs() as b:
            data = b"hello, blobs"
            d = await b.put(data)
            assert d == ContentDigest(hashlib.sha256(data).hexdigest())
            assert await b.get(d) == data
            assert await b.contains(d)
            assert await b.size(d) == len(data)

    @async_test
    async def test_same_content_is_stored_once(self) -> None:
        async with self.open_blobs() as b:
            d1 = await b.put(b"same")
            d2 = await b.put(bytearray(b"same"))
            d3 = await b.put(iter([b"sa", b"me"]))
            assert d1 == d2 == d3
            assert [d async for d in b] == [d1]

    @async_test
    async def test_put_many_stores_each_once(self) -> None:
        async with self.open_blobs() as b:
            before = await b.put(b"stored before")
            blobs: list[bytes | bytearray] = [b"one", b"", b"stored before", bytearray(b"one")]
            blobs.append(os.urandom(CHUNK_SIZE))
            digests = await b.put_many(blobs)
            assert digests == [ContentDigest.from_bytes(bytes(x)) for x in blobs]
            assert digests[2] == before and digests[0] == digests[3]
            for d, data in zip(digests, blobs, strict=True):
                assert await b.get(d) == data
                assert await b.size(d) == len(data)
            assert sorted([d async for d in b]) == sorted(set(digests))
            assert await b.put_many([]) == []

    @async_test
    async def test_put_many_validates_every_blob_first(self) -> None:
        async with self.open_blobs() as b:
            for bad in (
                [b"fine", "text"],
                [b"fine", None],
                [b"fine", b"x" * (CHUNK_SIZE + 1)],  # put() takes large ones
                b"not a list",
            ):
                with pytest.raises(ValidationError):
                    await b.put_many(bad)  # type: ignore[arg-type]
                assert [d async for d in b] == []

    @async_test
    async def test_missing_digest_is_not_found(self) -> None:
        async with self.open_blobs() as b:
            missing = ContentDigest.from_bytes(b"never stored")
            assert not await b.contains(missing)
            with pytest.raises(NotFound):
                await b.get(missing)
            with pytest.raises(NotFound):
                await b.size(missing)
            with pytest.raises(NotFound):
                async with b.open(missing):
                    pass

    @async_test
    async def test_delete(self) -> None:
        async with self.open_blobs() as b:
            d = await b.put(b"to delete")
            await b.delete(d)
            assert not await b.contains(d)
            with pytest.raises(NotFound):
                await b.get(d)
            await b.delete(d)  # absent: a no-op
            assert await b.put(b"to delete") == d  # and storable again
            assert await b.get(d) == b"to delete"

    @async_test
    async def test_digests_are_validated(self) -> None:
        async with self.open_blobs() as b:
            for bad in ("", "abc", "g" * 64, "a" * 63, "a" * 65, " " + "a" * 63, 42):
                with pytest.raises(ValidationError):
                    await b.get(bad)  # type: ignore[arg-type]
                with pytest.raises(ValidationError):
                    await b.contains(bad)  # type: ignore[arg-type]
                with pytest.raises(ValidationError):
                    await b.delete(bad)  # type: ignore[arg-type]
            d = await b.put(b"case")
            assert await b.get(d.as_str().upper()) == b"case"

    @async_test
    async def test_empty_blob(self) -> None:
        async with self.open_blobs() as b:
            d = await b.put(b"")
            assert d.as_str() == hashlib.sha256(b"").hexdigest()
            assert await b.get(d) == b""
            async with b.open(d) as r:
                assert r.size == 0
                assert await r.read() == b""

    @async_test
    async def test_streamed_put_from_every_source(self) -> None:
        async with self.open_blobs() as b:
            data = os.urandom(3 * CHUNK_SIZE + 12345)
            expected = ContentDigest.from_bytes(data)

            def sync_chunks() -> Iterator[bytes]:
                for i in range(0, len(data), 7777):
                    yield data[i : i + 7777]

            async def async_chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(data), CHUNK_SIZE + 1):
                    yield data[i : i + CHUNK_SIZE + 1]

            assert await b.put(sync_chunks()) == expected
            assert await b.put(async_chunks()) == expected
            assert await b.put(io.BytesIO(data)) == expected
            assert await b.get(expected) == data
            async with b.open(expected) as r:
                assert r.size == len(data)
                chunks = [c async for c in r]
            assert b"".join(chunks) == data
            assert max(len(c) for c in chunks) <= CHUNK_SIZE

    @async_test
    async def test_file_object_source(self) -> None:
        async with self.open_blobs() as b:
            import tempfile

            data = os.urandom(CHUNK_SIZE + 99)
            with tempfile.TemporaryFile() as fh:
                fh.write(data)
                fh.seek(0)
                d = await b.put(fh)
            assert await b.get(d) == data

    @async_test
    async def test_bad_sources_store_nothing(self) -> None:
        async with self.open_blobs() as b:
            with pytest.raises(ValidationError):
                await b.put("text is not bytes")  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await b.put(iter([b"ok", "not bytes"]))  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await b.put(12345)  # type: ignore[arg-type]

            def failing() -> Iterator[bytes]:
                yield b"x" * CHUNK_SIZE
                yield b"y" * 10
                raise _Boom

            with pytest.raises(_Boom):
                await b.put(failing())
            assert [d async for d in b] == []

    @async_test
    async def test_listing_is_sorted_and_paged(self) -> None:
        async with self.open_blobs() as b:
            stored = sorted([await b.put(f"blob {i}".encode()) for i in range(7)])
            assert [d async for d in b] == stored
            assert [d async for d in b.digests(page_size=3)] == stored

    @async_test
    async def test_verify(self) -> None:
        async with self.open_blobs() as b:
            d = await b.put(os.urandom(CHUNK_SIZE * 2 + 1))
            await b.verify(d)
            with pytest.raises(NotFound):
                await b.verify(ContentDigest.from_bytes(b"absent"))

    @async_test
    async def test_concurrent_puts_of_one_content(self) -> None:
        async with self.open_blobs() as b:
            data = os.urandom(CHUNK_SIZE + 5)

            async def put_streamed() -> ContentDigest:
                return await b.put(iter([data[:1000], data[1000:]]))

            digests = await asyncio.gather(
                *(b.put(data) for _ in range(5)), *(put_streamed() for _ in range(5))
            )
            assert len(set(digests)) == 1
            assert [d async for d in b] == [digests[0]]
            assert await b.get(digests[0]) == data


@asynccontextmanager
async def blobs_of(url: str) -> AsyncIterator[BlobPort]:
    """The blob port of the store at ``url``."""
    import stateport

    async with stateport.open(url) as sp:
        yield sp.blobs
