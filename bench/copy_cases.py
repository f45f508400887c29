"""Moving a store: ``stateport copy`` from SQLite to PostgreSQL beside a raw transfer.

Run by ``bench/run.py`` (``--only copy_sqlite_to_postgres``); each side runs in
a fresh process, so that its peak RSS belongs to the measurement alone::

    python bench/copy_cases.py build SRC.db --items N --blob-mib M
    python bench/copy_cases.py ours sqlite:///SRC.db POSTGRES_URL
    python bench/copy_cases.py raw SRC.db DSN SCHEMA
    python bench/copy_cases.py export sqlite:///SRC.db FILE
    python bench/copy_cases.py import FILE POSTGRES_URL

The source is a stateport SQLite store of ``N`` items (about 300 bytes of JSON
each, the table benchmarks' items, over 64 partitions) and ``M`` MiB of blobs
of 64 KiB each. *Ours* is ``await stateport.copy(src, dst)``: every item read,
validated and written with its version, every blob streamed and verified, and
the closing comparison of both sides' content digests. The *raw* side moves
the same rows into the same tables (a stateport schema, created untimed):
``SELECT`` from the SQLite file, ``copy_records_to_table`` into PostgreSQL
(asyncpg), items in batches of 10,000 rows, blob rows and their 64 KiB chunk
rows in batches of 256; it checks nothing. Each subcommand prints one JSON
object: seconds, and the resident set size after start-up (``base_kib``) and
its peak during the work (``peak_kib``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cases import WORK, Log, make_items  # bench/ is the script's directory: on sys.path
from stream_memory import current_kib, peak_kib, reset_peak

import stateport
from stateport import Item

BLOB = 64 * 1024
_ITEM_COLUMNS = ["pk", "sk", "version", "attrs", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk",
                 "gsi3sk"]  # fmt: skip


def _measure(work: Any) -> dict[str, Any]:
    gc.collect()
    reset_peak()
    base = current_kib()
    started = time.perf_counter()
    extra = asyncio.run(work)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "base_kib": base, "peak_kib": peak_kib(), **(extra or {})}


# --------------------------------------------------------------------------- the source


async def build(path: str, items: int, blob_mib: int) -> dict[str, Any]:
    async with stateport.open(f"sqlite:///{path}") as sp:
        batch = 5000
        for first in range(0, items, batch):
            rows = make_items(first, min(batch, items - first))
            await sp.table.restore([Item(pk, sk, attrs, 1 + i % 3) for i, (pk, sk, attrs) in
                                    enumerate(rows)])  # fmt: skip
        rng = random.Random(20)
        for _ in range(blob_mib * 1024 * 1024 // BLOB):
            await sp.blobs.put(rng.randbytes(BLOB))
        digest = await sp.digest()
    return {"digest": digest.digest, "items": digest.items, "blobs": digest.blobs}


# --------------------------------------------------------------------------- the two sides


async def ours(src: str, dst: str) -> dict[str, Any]:
    summary = await stateport.copy(src, dst)
    return {"digest": summary.digest.digest, "items": summary.digest.items}


async def raw(src_path: str, dsn: str, schema: str) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    db = sqlite3.connect(src_path)
    rows = 0
    try:
        cur = db.execute(f"SELECT {', '.join(_ITEM_COLUMNS)} FROM sp_items")
        while batch := cur.fetchmany(10_000):
            await conn.copy_records_to_table(
                "sp_items", schema_name=schema, records=batch, columns=_ITEM_COLUMNS
            )
            rows += len(batch)
        cur = db.execute("SELECT blob_id, digest, size FROM sp_blobs WHERE digest IS NOT NULL")
        while batch := cur.fetchmany(10_000):
            await conn.copy_records_to_table(
                "sp_blobs", schema_name=schema, records=batch, columns=["blob_id", "digest", "size"]
            )
            rows += len(batch)
        cur = db.execute("SELECT blob_id, seq, data FROM sp_blob_chunks")
        while batch := cur.fetchmany(256):
            await conn.copy_records_to_table(
                "sp_blob_chunks",
                schema_name=schema,
                records=batch,
                columns=["blob_id", "seq", "data"],
            )
            rows += len(batch)
    finally:
        db.close()
        await conn.close()
    return {"rows": rows}


async def export(src: str, file: str) -> dict[str, Any]:
    async with stateport.open(src, create=False) as sp:
        summary = await sp.export_snapshot(file)
    return {"bytes": summary.bytes_written, "items": summary.digest.items}


async def import_(file: str, dst: str) -> dict[str, Any]:
    async with stateport.open(dst) as sp:
        summary = await sp.import_snapshot(file)
    return {"items": summary.digest.items}


# --------------------------------------------------------------------------- the driver

COPY_NAME = "copy_sqlite_to_postgres"
COPY_TARGET = 0.5  # ours speed / raw speed
COPY_RSS_BUDGET_MIB = 128
COPY_ITEMS, COPY_BLOB_MIB = 1_000_000, 1024
QUICK_ITEMS, QUICK_BLOB_MIB = 100_000, 64
COPY_DB = "stateport_bench_copy"
COPY_MIN_FREE = 12 * 1024**3


@dataclass
class CopyRun:
    """The figures of one benchmark run (see :func:`run_copy`)."""

    items: int
    blob_mib: int
    ours_s: list[float]
    raw_s: list[float]
    ours_rss_kib: list[int]
    raw_rss_kib: list[int]
    export_s: float
    import_s: float
    file_bytes: int
    build_s: float


def _side(*argv: str) -> dict[str, Any]:
    script = Path(__file__).resolve()
    proc = subprocess.run(
        [sys.executable, str(script), *argv], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} {argv[0]} failed:\n{proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_copy(quick: bool, rounds: int, log: Log) -> CopyRun:
    """Build the source, then ``rounds`` rounds of ours and raw, alternating which goes
    first, each into a fresh schema of :data:`COPY_DB` (``synchronous_commit = off``,
    as in the other PostgreSQL benchmarks), each in a fresh process; then one export
    and one import. Raises RuntimeError when a side fails."""
    from pg_cases import _dsn, create_database, drop_database, store_url

    items, mib = (QUICK_ITEMS, QUICK_BLOB_MIB) if quick else (COPY_ITEMS, COPY_BLOB_MIB)
    src = WORK / "copy-src.db"
    snap = WORK / "copy.spsnap"
    log(f"{COPY_NAME}: building the source, {items} items and {mib} MiB of blobs (untimed)")
    built = _side("build", str(src), "--items", str(items), "--blob-mib", str(mib))
    run = CopyRun(items, mib, [], [], [], [], 0.0, 0.0, 0, built["seconds"])
    asyncio.run(create_database(COPY_DB, durable=False))
    try:
        for r in range(rounds):
            order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
            for side in order:
                schema = f"copy_{side}_{r}"
                url = store_url(COPY_DB, schema)
                if side == "ours":
                    out = _side("ours", f"sqlite:///{src}", url)
                    if out["digest"] != built["digest"]:
                        raise RuntimeError("the copy's digest is not the source's")
                    run.ours_s.append(out["seconds"])
                    run.ours_rss_kib.append(out["peak_kib"] - out["base_kib"])
                else:
                    asyncio.run(_create_store(url))  # the same tables, untimed
                    out = _side("raw", str(src), _dsn(COPY_DB), schema)
                    run.raw_s.append(out["seconds"])
                    run.raw_rss_kib.append(out["peak_kib"] - out["base_kib"])
                log(f"{COPY_NAME}: round {r + 1}/{rounds} {side:<4} {out['seconds']:.2f} s")
                asyncio.run(_drop_schema(schema))
        out = _side("export", f"sqlite:///{src}", str(snap))
        run.export_s, run.file_bytes = out["seconds"], out["bytes"]
        log(f"{COPY_NAME}: export {out['seconds']:.2f} s, {out['bytes'] / 2**20:.0f} MiB")
        out = _side("import", str(snap), store_url(COPY_DB, "copy_import"))
        run.import_s = out["seconds"]
        log(f"{COPY_NAME}: import {out['seconds']:.2f} s")
    finally:
        asyncio.run(drop_database(COPY_DB))
        for path in (src, snap):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    return run


async def _create_store(url: str) -> None:
    async with stateport.open(url):
        pass


async def _drop_schema(schema: str) -> None:
    import asyncpg
    from pg_cases import _dsn

    conn = await asyncpg.connect(_dsn(COPY_DB))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("build")
    b.add_argument("path")
    b.add_argument("--items", type=int, required=True)
    b.add_argument("--blob-mib", type=int, required=True)
    o = sub.add_parser("ours")
    o.add_argument("src")
    o.add_argument("dst")
    r = sub.add_parser("raw")
    r.add_argument("src_path")
    r.add_argument("dsn")
    r.add_argument("schema")
    e = sub.add_parser("export")
    e.add_argument("src")
    e.add_argument("file")
    i = sub.add_parser("import")
    i.add_argument("file")
    i.add_argument("dst")
    args = parser.parse_args(argv)
    if args.what == "build":
        result = _measure(build(args.path, args.items, args.blob_mib))
    elif args.what == "ours":
        result = _measure(ours(args.src, args.dst))
    elif args.what == "raw":
        result = _measure(raw(args.src_path, args.dsn, args.schema))
    elif args.what == "export":
        result = _measure(export(args.src, args.file))
    else:
        result = _measure(import_(args.file, args.dst))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
