"""The blob port on a directory: ``objects/ab/cdef...`` (git's layout).

A write goes to a temporary file in ``tmp/`` (same file system), which is then
renamed over the final name: a reader sees a whole blob or none. With
``durable=True`` the file is fsynced before the rename and its directory after
it, so a blob that :meth:`put` returned survives a power cut. Without it, a
crash can leave a torn file; reads verify content and would report it, and the
next put of the same content repairs a file of the wrong size.

Every file operation runs off the event loop, one thread hop per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from ..digest import ContentDigest
from ..errors import ConfigError, EngineError
from ..ports.blob import CHUNK_SIZE, BlobPort, Upload

_MODE = 0o644


def _is_digest(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileUpload(Upload):
    def __init__(self, port: FilesystemBlobPort, tmp: Path, fh: BinaryIO) -> None:
        self._port = port
        self._tmp = tmp
        self._fh = fh

    async def write(self, chunk: bytes) -> None:
        await asyncio.to_thread(self._fh.write, chunk)

    async def commit(self, digest: ContentDigest, size: int) -> None:
        await asyncio.to_thread(self._port._publish, self._fh, self._tmp, digest, size)

    async def abort(self) -> None:
        def work() -> None:
            self._fh.close()
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

        await asyncio.to_thread(work)


class FilesystemBlobPort(BlobPort):
    """Blobs as files under ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        self._objects = self.root / "objects"
        self._tmpdir = self.root / "tmp"
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmpdir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the blob directory {self.root}: {e}") from e

    def _path(self, digest: ContentDigest) -> Path:
        h = digest.as_str()
        return self._objects / h[:2] / h[2:]

    def _new_tmp(self) -> tuple[Path, BinaryIO]:
        tmp = self._tmpdir / f"{uuid.uuid4().hex}.part"
        return tmp, open(tmp, "xb")

    def _publish(self, fh: BinaryIO, tmp: Path, digest: ContentDigest, size: int) -> None:
        """Move a finished temporary file into place (closing it)."""
        try:
            if self.durable:
                fh.flush()
                os.fsync(fh.fileno())
            fh.close()
            target = self._path(digest)
            try:
                if target.stat().st_size == size:  # already stored: keep that copy
                    tmp.unlink()
                    return
            except FileNotFoundError:
                pass
            parent_new = not target.parent.exists()
            target.parent.mkdir(exist_ok=True)
            os.chmod(tmp, _MODE)
            os.replace(tmp, target)
            if self.durable:
                _fsync_dir(target.parent)
                if parent_new:
                    _fsync_dir(self._objects)
        except OSError as e:
            with contextlib.suppress(OSError):
                fh.close()
                tmp.unlink()
            raise EngineError(f"cannot store blob {digest.short()} under {self.root}: {e}") from e

    async def _store(self, digest: ContentDigest, data: bytes) -> None:
        def work() -> None:
            target = self._path(digest)
            try:
                if target.stat().st_size == len(data):
                    return
            except FileNotFoundError:
                pass
            try:
                tmp, fh = self._new_tmp()
                fh.write(data)
            except OSError as e:
                raise EngineError(f"cannot write blob {digest.short()}: {e}") from e
            self._publish(fh, tmp, digest, len(data))

        await asyncio.to_thread(work)

    async def _begin(self) -> Upload:
        try:
            tmp, fh = await asyncio.to_thread(self._new_tmp)
        except OSError as e:
            raise EngineError(f"cannot start a blob upload under {self.root}: {e}") from e
        return _FileUpload(self, tmp, fh)

    async def _load(self, digest: ContentDigest) -> bytes | None:
        def work() -> bytes | None:
            try:
                return self._path(digest).read_bytes()
            except FileNotFoundError:
                return None
            except OSError as e:
                raise EngineError(f"cannot read blob {digest.short()}: {e}") from e

        return await asyncio.to_thread(work)

    async def _chunks(self, digest: ContentDigest) -> tuple[int, AsyncIterator[bytes]] | None:
        def opening() -> tuple[int, BinaryIO] | None:
            try:
                fh = open(self._path(digest), "rb")  # noqa: SIM115 - closed by chunks()
            except FileNotFoundError:
                return None
            return os.fstat(fh.fileno()).st_size, fh

        found = await asyncio.to_thread(opening)
        if found is None:
            return None
        size, fh = found

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(fh.read, CHUNK_SIZE):
                    yield chunk
            finally:
                fh.close()

        return size, chunks()

    async def _contains(self, digest: ContentDigest) -> bool:
        return await asyncio.to_thread(self._path(digest).is_file)

    async def _delete(self, digest: ContentDigest) -> None:
        def work() -> None:
            with contextlib.suppress(FileNotFoundError):
                self._path(digest).unlink()

        await asyncio.to_thread(work)

    async def _list(self, after: ContentDigest | None, limit: int) -> list[ContentDigest]:
        start = "" if after is None else after.as_str()

        def work() -> list[ContentDigest]:
            found: list[ContentDigest] = []
            for fan in sorted(os.listdir(self._objects)):
                if len(fan) != 2 or fan < start[:2]:
                    continue
                for rest in sorted(os.listdir(self._objects / fan)):
                    name = fan + rest
                    if name <= start or not _is_digest(name):
                        continue  # stray files are not blobs
                    found.append(ContentDigest._trusted(name))
                    if len(found) >= limit:
                        return found
            return found

        return await asyncio.to_thread(work)

    async def aclose(self) -> None:
        return None
