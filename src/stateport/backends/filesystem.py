"""The blob port on a directory: ``objects/ab/cdef...`` (git's layout).

A write goes to a temporary file in ``tmp/`` (same file system), which is then
renamed over the final name: a reader sees a whole blob or none. With
``durable=True`` the file is fsynced before the rename and its directory after
it, so a blob that :meth:`put` returned survives a power cut. Without it, a
crash can leave a torn file; reads verify content and would report it, and the
next put of the same content repairs a file of the wrong size.

Every file operation runs off the event loop on a few worker threads, one hop
per call.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..digest import ContentDigest, is_digest_hex
from ..errors import ConfigError, EngineError, Unavailable
from ..ports.blob import CHUNK_SIZE, BlobPort, Upload
from ._worker import Worker

T = TypeVar("T")

_MODE = 0o644
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _FileUpload(Upload):
    def __init__(self, port: FilesystemBlobPort, tmp: str, fd: int) -> None:
        self._port = port
        self._tmp = tmp
        self._fd: int | None = fd

    def _fd_open(self) -> int:
        if self._fd is None:
            raise EngineError("the upload is already finished")
        return self._fd

    async def write(self, chunk: bytes) -> None:
        fd = self._fd_open()
        await self._port._run(lambda: _write_all(fd, chunk), "write an upload")

    async def commit(self, digest: ContentDigest, size: int) -> None:
        fd, self._fd = self._fd_open(), None
        await self._port._run(
            lambda: self._port._publish(fd, self._tmp, digest, size, check_existing=True),
            f"store blob {digest.short()}",
        )

    async def abort(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return

        def discard() -> None:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)

        await self._port._run(discard, "discard an upload")


class FilesystemBlobPort(BlobPort):
    """Blobs as files under ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        self._objects = os.path.join(root, "objects")
        self._tmpdir = os.path.join(root, "tmp")
        try:
            os.makedirs(self._objects, exist_ok=True)
            os.makedirs(self._tmpdir, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the blob directory {self.root}: {e}") from e
        self._worker = Worker(
            "stateport-files",
            threads=4,
            closed=lambda: Unavailable(f"blob directory {self.root}: the store is closed"),
        )
        self._names = itertools.count()

    async def _run(self, call: Callable[[], T], doing: str) -> T:
        """Run a file operation on the workers; OSError becomes EngineError."""

        def guarded() -> T:
            try:
                return call()
            except OSError as e:
                raise EngineError(f"cannot {doing} under {self.root}: {e}") from e

        return await self._worker.submit(guarded)

    def _path(self, digest: ContentDigest) -> tuple[str, str]:
        h = digest.as_str()
        folder = os.path.join(self._objects, h[:2])
        return folder, os.path.join(folder, h[2:])

    def _new_tmp(self) -> tuple[str, int]:
        # pid + counter: unique among the processes sharing this directory
        tmp = os.path.join(self._tmpdir, f"{os.getpid()}-{next(self._names)}.part")
        return tmp, os.open(tmp, _CREATE, _MODE)

    def _publish(
        self, fd: int, tmp: str, digest: ContentDigest, size: int, *, check_existing: bool
    ) -> None:
        """Move a finished temporary file into place (closing ``fd``)."""
        try:
            try:
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            folder, target = self._path(digest)
            if check_existing and _size_of(target) == size:
                os.unlink(tmp)  # already stored: keep that copy
                return
            created = False
            try:
                os.replace(tmp, target)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder)
                    created = True
                os.replace(tmp, target)
            if self.durable:
                _fsync_dir(folder)
                if created:
                    _fsync_dir(self._objects)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def _store(self, digest: ContentDigest, data: bytes) -> None:
        def work() -> None:
            if _size_of(self._path(digest)[1]) == len(data):
                return  # already stored (a torn copy of another size is replaced)
            tmp, fd = self._new_tmp()
            try:
                _write_all(fd, data)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
            self._publish(fd, tmp, digest, len(data), check_existing=False)

        await self._run(work, f"store blob {digest.short()}")

    async def _begin(self) -> Upload:
        tmp, fd = await self._run(self._new_tmp, "start an upload")
        return _FileUpload(self, tmp, fd)

    async def _load(self, digest: ContentDigest) -> bytes | None:
        def work() -> bytes | None:
            try:
                with open(self._path(digest)[1], "rb") as fh:
                    return fh.read()
            except FileNotFoundError:
                return None

        return await self._run(work, f"read blob {digest.short()}")

    async def _chunks(self, digest: ContentDigest) -> tuple[int, AsyncIterator[bytes]] | None:
        def opening() -> tuple[int, BinaryIO] | None:
            try:
                fh = open(self._path(digest)[1], "rb")  # noqa: SIM115 - closed by chunks()
            except FileNotFoundError:
                return None
            return os.fstat(fh.fileno()).st_size, fh

        found = await self._run(opening, f"read blob {digest.short()}")
        if found is None:
            return None
        size, fh = found

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await self._run(
                    lambda: fh.read(CHUNK_SIZE), f"read blob {digest.short()}"
                ):
                    yield chunk
            finally:
                fh.close()

        return size, chunks()

    async def _contains(self, digest: ContentDigest) -> bool:
        path = self._path(digest)[1]
        return await self._run(lambda: os.path.isfile(path), "look up a blob")

    async def _delete(self, digest: ContentDigest) -> None:
        def work() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(digest)[1])

        await self._run(work, f"delete blob {digest.short()}")

    async def _list(self, after: ContentDigest | None, limit: int) -> list[ContentDigest]:
        start = "" if after is None else after.as_str()

        def work() -> list[ContentDigest]:
            found: list[ContentDigest] = []
            for fan in sorted(os.listdir(self._objects)):
                if len(fan) != 2 or fan < start[:2]:
                    continue
                for rest in sorted(os.listdir(os.path.join(self._objects, fan))):
                    name = fan + rest
                    if name <= start or not is_digest_hex(name):
                        continue  # stray files are not blobs
                    found.append(ContentDigest._trusted(name))
                    if len(found) >= limit:
                        return found
            return found

        return await self._run(work, "list blobs")

    def location(self) -> str:
        return str(self.root)

    async def aclose(self) -> None:
        await self._worker.aclose()


def _size_of(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None
