"""``stateport blobs``: put, get, list and verify content-addressed blobs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import stat
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, cast

from ..digest import ContentDigest
from ..errors import IntegrityError, NotFound
from ..ports.blob import BlobReader
from ..store import Stateport
from ._common import CommandError, Commands, Progress, command_group, store_of, subcommand

__all__ = ["PROGRESS_THRESHOLD", "add_get", "add_put", "get_command", "put_command", "register"]

PROGRESS_THRESHOLD = 64 * 1024 * 1024
"""Files bigger than this report progress on stderr while they are stored."""


def register(
    commands: Commands,
    common: argparse.ArgumentParser,
) -> None:
    sub = command_group(
        commands,
        common,
        "blobs",
        help="store, read, list and verify blobs",
        description=(
            "Content-addressed blobs: each is stored once under the SHA-256 "
            "digest of its bytes and checked against it whenever it is read."
        ),
    )

    add_put(
        sub,
        common,
        help="store files as blobs and print their digests",
        description=(
            "Store each FILE as a blob, streaming it in chunks, and print "
            "'<digest>  <file>'. A FILE of '-' reads standard input. Files over "
            "64 MiB report progress on stderr."
        ),
    )
    add_get(
        sub,
        common,
        help="write a blob to stdout or a file",
        description=(
            "Stream the blob DIGEST to standard output, or to FILE with -o. The "
            "content is verified against its digest as it streams; with -o it is "
            "written to a temporary file that replaces FILE only once verified, "
            "so a corrupt blob leaves no output file."
        ),
    )

    subcommand(
        sub,
        common,
        "ls",
        _ls,
        help="list stored blobs with their sizes",
        description="List every stored blob as '<digest>  <size in bytes>', one per line.",
    )

    verify = subcommand(
        sub,
        common,
        "verify",
        _verify,
        help="re-read blobs and check them against their digests",
        description=(
            "Re-read each DIGEST (every stored blob when none is given) end to end "
            "and check it against its digest. Prints each corrupt or missing blob "
            "and exits 1 if there is any."
        ),
    )
    verify.add_argument("digests", nargs="*", metavar="DIGEST", help="a blob to verify")


# --------------------------------------------------------------------------- put


class _ProgressReader:
    """A binary file whose reads report progress once ``start_at`` bytes are read."""

    def __init__(self, raw: BinaryIO, progress: Progress, start_at: int) -> None:
        self._raw = raw
        self._progress = progress
        self._start_at = start_at
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self.done += len(chunk)
        if self.done > self._start_at:
            self._progress.update(self.done)
        return chunk


def _regular_size(fh: BinaryIO) -> int | None:
    """The size of a regular file; None for a pipe, terminal, ..."""
    try:
        st = os.fstat(fh.fileno())
    except (OSError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


async def _put_stream(sp: Stateport, fh: BinaryIO, name: str) -> ContentDigest:
    size = _regular_size(fh)
    threshold = PROGRESS_THRESHOLD
    if size is not None and size <= threshold:
        return await sp.blobs.put(fh)
    progress = Progress(name, size)
    reader = _ProgressReader(fh, progress, start_at=0 if size is not None else threshold)
    try:
        # a duck-typed binary file: put() reads it in chunks, off the event loop
        digest = await sp.blobs.put(cast(BinaryIO, reader))
    finally:
        progress.finish(reader.done, force=reader.done > threshold)
    return digest


async def _put_one(sp: Stateport, name: str) -> ContentDigest:
    if name == "-":
        return await _put_stream(sp, sys.stdin.buffer, name)
    try:
        fh = await asyncio.to_thread(Path(name).open, "rb")
    except OSError as e:
        raise CommandError(f"cannot read {name}: {e.strerror or e}") from e
    with fh:
        return await _put_stream(sp, fh, name)


def add_put(
    commands: Commands, common: argparse.ArgumentParser, *, help: str, description: str
) -> None:
    """A ``put`` command (``blobs put``, ``cas put``): store files, print their digests."""
    put = subcommand(commands, common, "put", put_command, help=help, description=description)
    put.add_argument("files", nargs="+", metavar="FILE", help="a file to store, or - for stdin")


def add_get(
    commands: Commands, common: argparse.ArgumentParser, *, help: str, description: str
) -> None:
    """A ``get`` command (``blobs get``, ``cas get``): write a digest's verified content."""
    get = subcommand(commands, common, "get", get_command, help=help, description=description)
    get.add_argument("digest", metavar="DIGEST", help="the blob's SHA-256 digest (64 hex digits)")
    get.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of stdout (- for stdout)"
    )


async def put_command(args: argparse.Namespace) -> int:
    status = 0
    async with store_of(args, create=True) as sp:
        for name in args.files:
            try:
                digest = await _put_one(sp, name)
            except CommandError as e:
                print(f"error: {e}", file=sys.stderr)
                status = 1
                continue
            except OSError as e:
                print(f"error: cannot read {name}: {e.strerror or e}", file=sys.stderr)
                status = 1
                continue
            print(f"{digest}  {name}", flush=True)
    return status


# --------------------------------------------------------------------------- get


async def _to_stdout(reader: BlobReader) -> None:
    sys.stdout.flush()
    out = sys.stdout.buffer
    async for chunk in reader:
        out.write(chunk)
    out.flush()


async def _to_file(reader: BlobReader, target: Path) -> None:
    """Write the verified content to ``target`` through a temporary file beside it."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        fh = await asyncio.to_thread(tmp.open, "xb")
    except OSError as e:
        raise CommandError(f"cannot write {target}: {e.strerror or e}") from e
    try:
        try:
            async for chunk in reader:
                await asyncio.to_thread(fh.write, chunk)
            await asyncio.to_thread(fh.flush)
            await asyncio.to_thread(os.fsync, fh.fileno())
        finally:
            fh.close()
        try:
            await asyncio.to_thread(os.replace, tmp, target)
        except OSError as e:
            raise CommandError(f"cannot write {target}: {e.strerror or e}") from e
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


async def get_command(args: argparse.Namespace) -> int:
    digest = ContentDigest(args.digest)
    async with store_of(args, create=False) as sp, sp.blobs.open(digest) as reader:
        if args.output in (None, "-"):
            await _to_stdout(reader)
        else:
            await _to_file(reader, Path(args.output))
    return 0


# --------------------------------------------------------------------------- ls


async def _ls(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        async for digest in sp.blobs.digests():
            try:
                size = await sp.blobs.size(digest)
            except NotFound:
                continue  # deleted since it was listed
            print(f"{digest}  {size}")
    return 0


# --------------------------------------------------------------------------- verify


async def _verify(args: argparse.Namespace) -> int:
    wanted = [ContentDigest(d) for d in args.digests]
    checked = bad = 0
    progress = Progress("verify", len(wanted) or None, fmt=lambda n: f"{n} blobs")
    async with store_of(args, create=False) as sp:
        source = _each(wanted) if wanted else sp.blobs.digests()
        try:
            async for digest in source:
                problem: str | None = None
                try:
                    await sp.blobs.verify(digest)
                except IntegrityError:
                    problem = "corrupt"
                except NotFound:
                    if wanted:
                        problem = "missing"
                    else:
                        continue  # deleted since it was listed
                checked += 1
                if problem is not None:
                    bad += 1
                    progress.clear()
                    print(f"{problem}  {digest}", flush=True)
                progress.update(checked)
        finally:
            progress.finish(checked)
    noun = "blob" if checked == 1 else "blobs"
    if bad:
        print(f"{checked} {noun} checked, {bad} failed verification")
        return 1
    print(f"{checked} {noun} checked, all intact")
    return 0


async def _each(digests: list[ContentDigest]) -> AsyncIterator[ContentDigest]:
    for d in digests:
        yield d
