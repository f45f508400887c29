"""The blob port: content-addressed storage by SHA-256 digest.

The public methods of :class:`BlobPort` hash, verify and stream; a backend only
stores and returns bytes under a digest (``_store``, ``_begin``, ``_load``,
``_chunks``, ``_contains``, ``_size``, ``_delete``, ``_list``; optionally
``_store_many``). Hashing and verification are written once, here.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, BinaryIO, Final

from ..digest import ContentDigest, DigestLike
from ..errors import IntegrityError, NotFound, ValidationError

__all__ = ["BlobPort", "BlobReader", "BlobSource", "ChunkedUpload", "Upload"]

CHUNK_SIZE: Final = 1024 * 1024
"""Streams are read and written in chunks of this many bytes."""

BlobSource = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes] | AsyncIterable[bytes]
"""What :meth:`BlobPort.put` accepts: bytes, a binary file, or an (async) iterable of chunks."""


class Upload(ABC):
    """A streamed write in progress, as a backend implements it.

    Chunks arrive in order through :meth:`write`; :meth:`commit` makes the
    content visible under its digest (keeping the existing copy if the digest is
    already stored); :meth:`abort` discards everything written.
    """

    @abstractmethod
    async def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the staged content."""

    @abstractmethod
    async def commit(self, digest: ContentDigest, size: int) -> None:
        """Publish the staged content under ``digest`` atomically."""

    @abstractmethod
    async def abort(self) -> None:
        """Discard the staged content. Idempotent."""


class ChunkedUpload(Upload):
    """An upload staged as numbered rows of whole :data:`CHUNK_SIZE` chunks, as the
    database backends store blobs.

    Writes are buffered to whole chunks; a backend implements storing a run of
    chunks (:meth:`_store_chunks`), publishing (:meth:`_publish`, with what is
    left in the buffer) and discarding the staged rows (:meth:`_discard`).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._seq = 0
        self._done = False

    @abstractmethod
    async def _store_chunks(self, seq: int, data: bytes) -> int:
        """Store ``data`` as chunks numbered from ``seq``; return the next number."""

    @abstractmethod
    async def _publish(self, seq: int, rest: bytes, digest: ContentDigest, size: int) -> None:
        """Store ``rest`` as the last chunks (from ``seq``) and publish under ``digest``,
        so that readers see the whole content or none of it (e.g. by setting the
        digest last); keep the existing copy if ``digest`` is stored."""

    @abstractmethod
    async def _discard(self) -> None:
        """Delete the staged rows (never a published blob)."""

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= CHUNK_SIZE:
            whole = len(self._buffer) - len(self._buffer) % CHUNK_SIZE
            data = bytes(self._buffer[:whole])
            del self._buffer[:whole]
            self._seq = await self._store_chunks(self._seq, data)

    async def commit(self, digest: ContentDigest, size: int) -> None:
        rest = bytes(self._buffer)
        self._buffer.clear()
        await self._publish(self._seq, rest, digest, size)
        self._done = True

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        await self._discard()


class BlobReader:
    """A streamed read: an async iterator of chunks, with the blob's ``size``.

    The content is verified against the digest as it streams: if it does not
    match, the last step of the iteration raises :class:`IntegrityError`, so
    treat the data as untrusted until the iteration has finished.
    """

    def __init__(self, digest: ContentDigest, size: int, chunks: AsyncIterator[bytes]) -> None:
        self.digest = digest
        self.size = size
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._verified()

    async def _verified(self) -> AsyncIterator[bytes]:
        hasher = hashlib.sha256()
        seen = 0
        async for chunk in self._chunks:
            hasher.update(chunk)
            seen += len(chunk)
            yield chunk
        if seen != self.size or hasher.hexdigest() != self.digest.as_str():
            raise IntegrityError(
                f"blob {self.digest.short()} is corrupt: stored content does not match its digest"
            )

    async def read(self) -> bytes:
        """The whole (verified) content."""
        return b"".join([c async for c in self])


class BlobPort(ABC):
    """Content-addressed blobs.

    Guarantees, on every engine:

    * :meth:`put` returns the SHA-256 digest of exactly the bytes given; the same
      content is stored once (deduplication); a put is atomic: a concurrent
      reader sees the whole blob or none;
    * :meth:`get` and :meth:`open` return the stored bytes after checking them
      against the digest (:class:`IntegrityError` on mismatch), and raise
      :class:`NotFound` for a digest not stored;
    * digests are validated (:class:`ValidationError` for a malformed one);
    * streams move in chunks of :data:`CHUNK_SIZE`, so a blob of any size is put
      and read in bounded memory.
    """

    # ---- abstract surface ------------------------------------------------

    @abstractmethod
    async def _store(self, digest: ContentDigest, data: bytes) -> None:
        """Store ``data`` (whose digest is ``digest``) unless already present."""

    @abstractmethod
    async def _begin(self) -> Upload:
        """Start a streamed write."""

    @abstractmethod
    async def _load(self, digest: ContentDigest) -> bytes | None:
        """The stored bytes, unverified, or None if absent."""

    @abstractmethod
    async def _chunks(self, digest: ContentDigest) -> tuple[int, AsyncIterator[bytes]] | None:
        """The stored size and an iterator over the stored bytes, or None if absent."""

    @abstractmethod
    async def _contains(self, digest: ContentDigest) -> bool:
        """Whether ``digest`` is stored."""

    @abstractmethod
    async def _delete(self, digest: ContentDigest) -> None:
        """Remove ``digest`` if stored."""

    @abstractmethod
    async def _list(self, after: ContentDigest | None, limit: int) -> list[ContentDigest]:
        """Up to ``limit`` stored digests greater than ``after``, ascending."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release resources. Idempotent."""

    async def _store_many(self, blobs: Sequence[tuple[ContentDigest, bytes]]) -> None:
        """Store each ``(digest, data)`` unless present (digests are distinct; each
        blob is at most :data:`CHUNK_SIZE` bytes). A backend that can store several
        in one round trip overrides this; by default, :meth:`_store` for each."""
        for digest, data in blobs:
            await self._store(digest, data)

    def location(self) -> str:
        """Where the blobs live, for display (``stateport db info``)."""
        return type(self).__name__

    # ---- public API ------------------------------------------------------

    async def put(self, data: BlobSource) -> ContentDigest:
        """Store ``data`` and return its digest.

        ``data`` may be bytes-like, a binary file object (read in chunks off the
        event loop), or a sync or async iterable of ``bytes`` chunks.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
            digest = ContentDigest.from_bytes(raw)
            await self._store(digest, raw)
            return digest
        if isinstance(data, str):
            raise ValidationError("blobs are bytes: encode the str first (e.g. text.encode())")
        chunks = _chunks_of(data)
        upload = await self._begin()
        hasher = hashlib.sha256()
        size = 0
        try:
            async for chunk in chunks:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise ValidationError(
                        f"a blob stream must yield bytes, got {type(chunk).__name__}"
                    )
                hasher.update(chunk)
                size += len(chunk)
                await upload.write(bytes(chunk))
            digest = ContentDigest._trusted(hasher.hexdigest())
            await upload.commit(digest, size)
        except BaseException:
            await asyncio.shield(upload.abort())
            raise
        return digest

    async def put_many(
        self, blobs: Sequence[bytes | bytearray | memoryview]
    ) -> list[ContentDigest]:
        """Store several small blobs (each of at most :data:`CHUNK_SIZE` bytes, as
        bytes-like objects) and return their digests in the same order: what
        :meth:`put` of each would do, in as few round trips to the engine as it
        allows (a bulk load, such as a copy, stores thousands).

        Each blob is atomic and deduplicated as with :meth:`put`; the call as a
        whole is not a transaction (if it fails part way, some may be stored).
        Every blob is validated first: :class:`ValidationError` stores nothing.
        """
        if isinstance(blobs, (bytes, bytearray, memoryview, str)) or not isinstance(
            blobs, Sequence
        ):
            raise ValidationError("put_many() takes a list of bytes")
        for i, data in enumerate(blobs):
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ValidationError(f"blob {i}: expected bytes, got {type(data).__name__}")
            if len(data) > CHUNK_SIZE:
                raise ValidationError(
                    f"blob {i} is {len(data)} bytes; put_many() takes blobs of at most "
                    f"{CHUNK_SIZE}: put() larger ones"
                )
        raws = [bytes(data) for data in blobs]
        digests = [ContentDigest.from_bytes(raw) for raw in raws]
        unique = dict(zip(digests, raws, strict=True))
        if unique:
            await self._store_many(list(unique.items()))
        return digests

    async def get(self, digest: DigestLike) -> bytes:
        """The verified content of ``digest``; :class:`NotFound` if absent."""
        d = ContentDigest.of(digest)
        data = await self._load(d)
        if data is None:
            raise NotFound(f"blob {d.short()} is not stored")
        if hashlib.sha256(data).hexdigest() != d.as_str():
            raise IntegrityError(
                f"blob {d.short()} is corrupt: stored content does not match its digest"
            )
        return data

    @asynccontextmanager
    async def open(self, digest: DigestLike) -> AsyncIterator[BlobReader]:
        """Stream the content of ``digest``: ``async with blobs.open(d) as r: async for c in r``.

        Raises :class:`NotFound` on entry if absent; see :class:`BlobReader` for
        how verification reports.
        """
        d = ContentDigest.of(digest)
        found = await self._chunks(d)
        if found is None:
            raise NotFound(f"blob {d.short()} is not stored")
        size, chunks = found
        try:
            yield BlobReader(d, size, chunks)
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    async def contains(self, digest: DigestLike) -> bool:
        """Whether ``digest`` is stored."""
        return await self._contains(ContentDigest.of(digest))

    async def size(self, digest: DigestLike) -> int:
        """The stored size of ``digest`` in bytes; :class:`NotFound` if absent."""
        d = ContentDigest.of(digest)
        found = await self._chunks(d)
        if found is None:
            raise NotFound(f"blob {d.short()} is not stored")
        size, chunks = found
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
        return size

    async def delete(self, digest: DigestLike) -> None:
        """Remove ``digest``; a no-op if it is not stored."""
        await self._delete(ContentDigest.of(digest))

    async def verify(self, digest: DigestLike) -> None:
        """Re-read ``digest`` end to end; :class:`IntegrityError` if it is corrupt."""
        async with self.open(digest) as reader:
            async for _ in reader:
                pass

    async def digests(self, *, page_size: int = 1000) -> AsyncIterator[ContentDigest]:
        """Every stored digest, ascending."""
        after: ContentDigest | None = None
        while True:
            page = await self._list(after, page_size)
            for d in page:
                yield d
            if len(page) < page_size:
                return
            after = page[-1]

    def __aiter__(self) -> AsyncIterator[ContentDigest]:
        return self.digests()


async def _chunks_of(source: Any) -> AsyncIterator[bytes]:
    """Chunks of a file object, an iterable or an async iterable."""
    if hasattr(source, "read"):
        read = source.read
        if isinstance(source, io.BytesIO):
            while chunk := read(CHUNK_SIZE):
                yield chunk
            return
        while chunk := await asyncio.to_thread(read, CHUNK_SIZE):
            yield chunk
        return
    if isinstance(source, AsyncIterable):
        async for chunk in source:
            yield chunk
        return
    if isinstance(source, Iterable):
        for chunk in source:
            yield chunk
        return
    raise ValidationError(
        f"cannot store a {type(source).__name__}: pass bytes, a binary file or an iterable of bytes"
    )
