"""Content-addressed storage (``sp.cas``): the source's ``CasStore`` port.

A thin face on the blob port, which already holds its guarantees: ``put``
returns the SHA-256 of the content (stored once, however often it is put),
``get`` returns exactly those bytes, re-verified on every read
(:class:`~stateport.errors.IntegrityError` if not), and a missing digest is
:class:`~stateport.errors.NotFound`. Digests are validated and lowercased
(:class:`~stateport.ContentDigest`). For large content, ``put`` also takes a
file or an iterable of chunks, and :meth:`CasStore.open` streams it back.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from ..digest import ContentDigest, DigestLike
from ..ports.blob import BlobPort, BlobReader, BlobSource

__all__ = ["CasStore"]


class CasStore:
    """``sp.cas``: put, get, contains and delete by content digest."""

    def __init__(self, blobs: BlobPort) -> None:
        self._blobs = blobs

    async def put(self, data: BlobSource) -> ContentDigest:
        """Store ``data`` (bytes, a binary file, or chunks); return its digest."""
        return await self._blobs.put(data)

    async def get(self, digest: DigestLike) -> bytes:
        """The content of ``digest``; ``NotFound`` if absent."""
        return await self._blobs.get(digest)

    def open(self, digest: DigestLike) -> AbstractAsyncContextManager[BlobReader]:
        """Stream the content of ``digest``, verified as it is read."""
        return self._blobs.open(digest)

    async def contains(self, digest: DigestLike) -> bool:
        """Whether ``digest`` is stored."""
        return await self._blobs.contains(digest)

    async def delete(self, digest: DigestLike) -> None:
        """Remove ``digest``; a no-op if absent."""
        await self._blobs.delete(digest)
