"""Stream one large blob through a store and report the memory it took.

Run by ``bench/run.py`` in a fresh process (so that the peak RSS belongs to this
measurement alone)::

    python bench/stream_memory.py --url sqlite:///bench/.work/s.db --mib 1024

The blob is generated chunk by chunk (never whole in memory), put through
``sp.blobs.put(<async generator>)`` and read back with
``async with sp.blobs.open(d) as r: async for chunk in r``. Prints one JSON
object: the resident set size after imports and opening the store
(``base_kib``), the peak during the put and the read (``peak_kib``), and timings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import random
import resource
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import stateport

CHUNK = 1024 * 1024
_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in KiB (None if unavailable)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def current_kib() -> int:
    rss = _status_kib("VmRSS")
    if rss is not None:
        return rss
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # pragma: no cover - non-Linux


def peak_kib() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # pragma: no cover - non-Linux


async def generate(mib: int, hasher: Any) -> AsyncIterator[bytes]:
    """``mib`` chunks of 1 MiB of pseudo-random bytes, hashed on the way out."""
    rng = random.Random(mib)
    for _ in range(mib):
        chunk = rng.randbytes(CHUNK)
        hasher.update(chunk)
        yield chunk


async def measure(url: str, mib: int) -> dict[str, Any]:
    async with stateport.open(url) as sp:
        gc.collect()
        peak_reset = reset_peak()
        base = current_kib()

        expected = hashlib.sha256()
        started = time.perf_counter()
        digest = await sp.blobs.put(generate(mib, expected))
        put_s = time.perf_counter() - started
        if digest.as_str() != expected.hexdigest():
            raise SystemExit(f"put returned {digest}, expected {expected.hexdigest()}")

        read = 0
        started = time.perf_counter()
        async with sp.blobs.open(digest) as reader:
            async for chunk in reader:
                read += len(chunk)
        read_s = time.perf_counter() - started
        if read != mib * CHUNK:
            raise SystemExit(f"read {read} bytes back, expected {mib * CHUNK}")

        peak = peak_kib()
    return {
        "url": url,
        "mib": mib,
        "base_kib": base,
        "peak_kib": peak,
        "peak_reset": peak_reset,
        "put_s": put_s,
        "read_s": read_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="store URL to stream through")
    parser.add_argument("--mib", type=int, default=1024, help="blob size in MiB (default 1024)")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.url, args.mib))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
