"""Large blobs move in bounded memory (Python-level buffering, via tracemalloc)."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import stateport
from stateport.ports.blob import CHUNK_SIZE

SIZE = 48 * 1024 * 1024
BUDGET = 12 * 1024 * 1024


async def _chunks(hasher: hashlib._Hash) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (CHUNK_SIZE // 256)
    for i in range(SIZE // CHUNK_SIZE):
        chunk = block[i % 256 :] + block[: i % 256]
        hasher.update(chunk)
        yield chunk


@pytest.mark.parametrize("where", ["sqlite", "files"])
def test_put_and_read_of_a_large_blob_stay_in_bounded_memory(tmp_path: Path, where: str) -> None:
    url = f"sqlite:///{tmp_path}/s.db" + (f"?blobs={tmp_path}/objects" if where == "files" else "")

    async def main() -> None:
        async with stateport.open(url) as sp:
            expected = hashlib.sha256()
            tracemalloc.start()
            try:
                digest = await sp.blobs.put(_chunks(expected))
                seen = 0
                async with sp.blobs.open(digest) as reader:
                    async for chunk in reader:
                        seen += len(chunk)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert digest.as_str() == expected.hexdigest()
            assert seen == SIZE
            assert peak < BUDGET, f"peak {peak / 2**20:.1f} MiB for a {SIZE / 2**20:.0f} MiB blob"

    asyncio.run(main())
