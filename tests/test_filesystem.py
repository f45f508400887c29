"""The filesystem blob backend: layout, atomicity, tampering, repair."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stateport import ContentDigest, IntegrityError
from stateport.backends.filesystem import FilesystemBlobPort


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture
def make_port() -> Iterator[Callable[..., FilesystemBlobPort]]:
    """FilesystemBlobPort instances, closed (their worker threads stopped) after the test."""
    made: list[FilesystemBlobPort] = []

    def make(root: Path, **options: bool) -> FilesystemBlobPort:
        made.append(FilesystemBlobPort(root, **options))
        return made[-1]

    yield make
    for port in made:
        run(port.aclose())


def test_layout_is_objects_fanout(
    tmp_path: Path, make_port: Callable[..., FilesystemBlobPort]
) -> None:
    port = make_port(tmp_path)
    d = run(port.put(b"layout"))
    h = d.as_str()
    assert (tmp_path / "objects" / h[:2] / h[2:]).read_bytes() == b"layout"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_tampered_file_is_detected_on_get_and_stream(
    tmp_path: Path, make_port: Callable[..., FilesystemBlobPort]
) -> None:
    port = make_port(tmp_path)
    d = run(port.put(b"original" * 100_000))
    path = tmp_path / "objects" / d.as_str()[:2] / d.as_str()[2:]
    path.write_bytes(b"tampered" * 100_000)
    with pytest.raises(IntegrityError, match=d.short()):
        run(port.get(d))

    async def stream() -> None:
        async with port.open(d) as reader:
            async for _ in reader:
                pass

    with pytest.raises(IntegrityError):
        run(stream())


def test_torn_file_is_repaired_by_the_next_put(
    tmp_path: Path, make_port: Callable[..., FilesystemBlobPort]
) -> None:
    port = make_port(tmp_path, durable=False)
    data = os.urandom(50_000)
    d = run(port.put(data))
    path = tmp_path / "objects" / d.as_str()[:2] / d.as_str()[2:]
    path.write_bytes(data[:1000])  # as a crash before the data reached the disk might
    with pytest.raises(IntegrityError):
        run(port.get(d))
    assert run(port.put(data)) == d
    assert run(port.get(d)) == data


def test_stray_files_are_not_listed(
    tmp_path: Path, make_port: Callable[..., FilesystemBlobPort]
) -> None:
    port = make_port(tmp_path)
    d = run(port.put(b"real"))
    (tmp_path / "objects" / "zz").mkdir()
    (tmp_path / "objects" / "zz" / "notes.txt").write_text("hi")
    (tmp_path / "objects" / d.as_str()[:2] / "short").write_text("hi")
    (tmp_path / "objects" / d.as_str()[:2] / ("Z" * 62)).write_text("hi")

    async def listing() -> list[ContentDigest]:
        return [x async for x in port]

    assert run(listing()) == [d]


def test_failed_stream_leaves_no_temporary_file(
    tmp_path: Path, make_port: Callable[..., FilesystemBlobPort]
) -> None:
    port = make_port(tmp_path)

    def chunks():  # type: ignore[no-untyped-def]
        yield b"partial"
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        run(port.put(chunks()))
    assert list((tmp_path / "tmp").iterdir()) == []
    assert list((tmp_path / "objects").iterdir()) == []
