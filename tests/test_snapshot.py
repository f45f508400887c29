"""Moving state between engines: every pair of engines, killed copies, damaged files, the CLI.

The behaviour every engine must show is in ``stateport.testing.snapshot``
(run per engine by test_conformance.py and test_postgres.py); this module runs
what needs several engines at once, separate processes or the command line.
PostgreSQL cases skip with the reason when no server answers (fail under CI=true).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import random
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pg import drop_run_schemas, raw_connect, schema_of, server_problem, url  # tests/ on path

import stateport
from stateport import Item, Scope
from stateport.cli import main
from stateport.cli._moving import TransferDisplay
from stateport.domains.registry import DOMAINS, domain_of
from stateport.snapshot import Progress
from stateport.snapshot.ordering import canonical_pages
from stateport.testing.snapshot import EMPTY_DIGEST, check_domains_work, fill_every_domain

ENGINES = ("memory", "sqlite", "postgres")


def _need_pg() -> None:
    problem = server_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the PostgreSQL tests cannot run: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module", autouse=True)
def _drop_schemas() -> Iterator[None]:
    yield
    if server_problem() is None:
        asyncio.run(drop_run_schemas())


def engine_url(engine: str, tmp_path: Path, name: str) -> str:
    if engine == "memory":
        return "memory://"
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / name}.db"
    _need_pg()
    return url()


# --------------------------------------------------------------------------- every pair


@pytest.mark.parametrize(("source", "target"), list(itertools.product(ENGINES, ENGINES)))
def test_copy_between_every_pair_of_engines(source: str, target: str, tmp_path: Path) -> None:
    urls = engine_url(source, tmp_path, "src"), engine_url(target, tmp_path, "dst")

    async def main() -> None:
        async with stateport.open(urls[0]) as src, stateport.open(urls[1]) as dst:
            facts = await fill_every_domain(src)
            expected = await src.digest()
            assert set(expected.by_domain) == {d.name for d in DOMAINS}
            assert all(n > 0 for n in expected.by_domain.values()), expected.by_domain
            summary = await stateport.copy(src, dst)
            assert summary.digest == expected == await dst.digest()
            await check_domains_work(dst, facts)

    asyncio.run(main())


@pytest.mark.parametrize(("source", "target"), list(itertools.product(ENGINES, ENGINES)))
def test_snapshot_between_every_pair_of_engines(source: str, target: str, tmp_path: Path) -> None:
    path = tmp_path / "snap.spsnap"
    urls = engine_url(source, tmp_path, "src"), engine_url(target, tmp_path, "dst")

    async def main() -> None:
        async with stateport.open(urls[0]) as src, stateport.open(urls[1]) as dst:
            facts = await fill_every_domain(src)
            exported = await src.export_snapshot(path)
            assert exported.bytes_written == path.stat().st_size
            imported = await dst.import_snapshot(path)
            assert imported.digest == exported.digest == await src.digest() == await dst.digest()
            again = io.BytesIO()
            await dst.export_snapshot(again)
            assert again.getvalue() == path.read_bytes()  # byte-identical from any engine
            await check_domains_work(dst, facts)

    asyncio.run(main())


@pytest.mark.parametrize("engine", ENGINES)
def test_scoped_snapshots_take_only_their_domains(engine: str, tmp_path: Path) -> None:
    path = tmp_path / "runs.spsnap"
    source = engine_url(engine, tmp_path, "src")

    async def main() -> None:
        async with stateport.open(source) as src, stateport.open("memory://") as dst:
            await fill_every_domain(src)
            await src.items.put({"pk": "run#nope", "sk": "x"})  # the prefix decides
            summary = await src.export_snapshot(path, only=["runs", "work"])
            assert set(summary.digest.by_domain) == {"runs", "work"}
            await dst.items.put({"pk": "mine", "sk": "1"})  # outside the scope: allowed
            await dst.import_snapshot(path)
            assert await dst.digest("runs,work") == summary.digest
            keys = [i async for page in dst.table.scan_pages() for i in page]
            assert {domain_of(i.pk) for i in keys} == {"runs", "work", "items"}
            assert [(i.pk, i.sk) for i in keys if domain_of(i.pk) == "items"] == [("mine", "1")]
            assert [d async for d in dst.blobs.digests()] == []

    asyncio.run(main())


# --------------------------------------------------------------------------- canonical order


def test_unordered_scans_are_sorted_outside_memory() -> None:
    """The memory engine scans in hash order, as DynamoDB does; with a tiny run size
    the sort spills to files and merges them."""

    async def main() -> None:
        async with stateport.open("memory://") as sp:
            assert not sp.table.capabilities.ordered_scan
            rng = random.Random(3)
            keys = {(f"p{rng.randrange(300)}#é", f"s{rng.randrange(10**6)}") for _ in range(3000)}
            await sp.table.restore([Item(pk, sk, {"v": sk}, 1) for pk, sk in keys])
            scanned = [(i.pk, i.sk) async for page in sp.table.scan_pages() for i in page]
            assert scanned != sorted(scanned)  # the engine's own order
            for run_bytes in (2048, 10**9):
                pages = canonical_pages(sp.table, Scope(), run_bytes=run_bytes)
                out = [(i.pk, i.sk) async for items, _ in pages for i in items]
                assert out == sorted(keys)

    asyncio.run(main())


def test_scope_resolution() -> None:
    assert Scope.of(None).everything and Scope.of(None).scan_prefixes() == ("",)
    s = Scope.of("work, runs")
    assert s.domains == ("runs", "work") and not s.blobs and not s.rest
    assert s.scan_prefixes() == ("run#", "work.")
    assert s.contains("run#1") and s.contains("work.feature#1") and not s.contains("runs")
    assert Scope.of(["cas"]).blobs and Scope.of(["cas"]).scan_prefixes() == ()
    items = Scope.of(["items"])
    assert items.contains("demo#1") and not items.contains("release#x")
    extra = Scope.checked(["runs"], ["knowledge#", "run#a"])
    assert extra.scan_prefixes() == ("knowledge#", "run#")
    assert str(extra) == "runs, knowledge#*, run#a*"
    for bad in ("nonsense", "", [], ["runs", 3]):
        with pytest.raises(stateport.ValidationError):
            Scope.of(bad)  # type: ignore[arg-type]
    with pytest.raises(stateport.ValidationError):
        Scope.checked(["runs"], [""])


# --------------------------------------------------------------------------- killed moves


_KILL_ITEMS = 12_000
_KILL_BLOBS = 60


@pytest.fixture(scope="module")
def kill_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    """A SQLite store of a few seconds' copying, its snapshot and its digest."""
    where = tmp_path_factory.mktemp("kill")
    src = f"sqlite:///{where / 'src.db'}"
    snap = where / "src.spsnap"

    async def build() -> str:
        async with stateport.open(src) as sp:
            await fill_every_domain(sp)
            for b in range(_KILL_ITEMS // 1000):
                rows = [(f"bulk#{i % 97}", f"{b:03d}-{i:05d}", i) for i in range(1000)]
                await sp.table.restore(
                    [Item(pk, sk, {"i": i, "t": "x" * 99}, i % 5 + 1) for pk, sk, i in rows]
                )
            rng = random.Random(11)
            for _ in range(_KILL_BLOBS):
                await sp.blobs.put(rng.randbytes(64 * 1024))
            await sp.export_snapshot(snap)
            return (await sp.digest()).digest

    return src, snap, asyncio.run(build())


def _written(target: str) -> int:
    """Items plus blobs in the target so far (0 before its tables exist)."""
    if target.startswith("sqlite"):
        path = target.removeprefix("sqlite:///")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                n = conn.execute("SELECT (SELECT count(*) FROM sp_items) + "
                                 "(SELECT count(*) FROM sp_blobs WHERE digest IS NOT NULL)")
                return int(n.fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error:
            return 0

    async def count() -> int:
        s = schema_of(target)
        conn = await raw_connect()
        try:
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{s}".sp_blobs'):
                return 0
            return int(
                await conn.fetchval(
                    f'SELECT (SELECT count(*) FROM "{s}".sp_items) + '
                    f'(SELECT count(*) FROM "{s}".sp_blobs WHERE digest IS NOT NULL)'
                )
            )
        finally:
            await conn.close()

    return asyncio.run(count())


def _cli(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stateport", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("action", "engine"),
    [("copy", "sqlite"), ("copy", "postgres"), ("import", "sqlite"), ("import", "postgres")],
)
def test_a_move_killed_at_a_random_point_resumes_to_equal_digests(
    action: str, engine: str, tmp_path: Path, kill_source: tuple[str, Path, str]
) -> None:
    src, snap, expected = kill_source
    target = engine_url(engine, tmp_path, "dst")
    seed = int(os.environ.get("STATEPORT_KILL_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    # the point: after this many of the items and blobs are written
    total = _KILL_ITEMS + _KILL_BLOBS
    point = rng.randrange(1, total)
    why = f"seed {seed} (STATEPORT_KILL_SEED), kill after {point} of ~{total} written"
    argv = ["copy", src, target] if action == "copy" else ["import", str(snap), "--url", target]
    proc = _cli(*argv, "--quiet")
    deadline = time.monotonic() + 120
    while proc.poll() is None and _written(target) < point and time.monotonic() < deadline:
        time.sleep(0.005)
    killed = proc.poll() is None
    proc.kill()  # SIGKILL: no clean-up of any kind
    proc.wait()
    assert killed, f"the {action} finished before the kill: {why}"
    written = _written(target)

    refused = _cli(*argv, "--quiet")
    _, err = refused.communicate(timeout=120)
    if written:
        assert refused.returncode == 1 and b"--resume" in err, why
    resumed = _cli(*argv, "--resume", "--json")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, f"{why}: {err.decode()}"
    summary = json.loads(out)
    assert summary["digest"] == expected, why

    async def digest() -> str:
        async with stateport.open(target) as sp:
            return (await sp.digest()).digest

    assert asyncio.run(digest()) == expected, why


# --------------------------------------------------------------------------- the CLI


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_digest_copy_export_import(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a, b, c = (f"sqlite:///{tmp_path / n}.db" for n in "abc")
    snap = tmp_path / "a.spsnap"
    assert run(capsys, "demo", "--url", a)[0] == 0
    code, out, _ = run(capsys, "digest", "--url", a)
    assert code == 0 and out.startswith("digest  sha256:")
    digest_a = out.splitlines()[0]

    code, out, err = run(capsys, "copy", a, b)
    assert code == 0, err
    assert out.startswith(f"copied {a} -> {b}: ") and digest_a.split()[-1] in out
    assert out.count("\n") == 1
    assert run(capsys, "digest", "--url", b)[1].splitlines()[0] == digest_a
    assert run(capsys, "runs", "list", "--url", a)[1] == run(capsys, "runs", "list", "--url", b)[1]

    code, out, err = run(capsys, "copy", a, b)
    assert code == 1 and "not empty" in err and "--resume" in err and "Traceback" not in err
    code, out, _ = run(capsys, "copy", a, b, "--resume", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["items_written"] == 0 and summary["digest"] in digest_a

    code, out, _ = run(capsys, "export", str(snap), "--url", a, "--json")
    exported = json.loads(out)
    assert code == 0 and exported["bytes_written"] == snap.stat().st_size
    assert not Path(str(snap) + ".partial").exists()
    code, out, err = run(capsys, "import", str(snap), "--url", c)
    assert code == 0, err
    assert "imported" in out and digest_a.split()[-1] in out
    code, out, _ = run(capsys, "digest", "--url", c, "--only", "runs,work", "--json")
    scoped = json.loads(out)
    assert scoped["scope"]["domains"] == ["runs", "work"] and set(scoped["by_domain"]) == {
        "runs",
        "work",
    }


def test_cli_export_to_stdout(capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    a = f"sqlite:///{tmp_path / 'a'}.db"
    main(["demo", "--url", a])
    capfdbinary.readouterr()
    assert main(["export", "-", "--url", a, "--only", "runs"]) == 0
    out, err = capfdbinary.readouterr()
    assert out.startswith(stateport.snapshot.MAGIC) and b"exported" in err


def test_cli_errors_are_one_line_and_show_no_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = f"sqlite:///{tmp_path / 'a'}.db"
    secret = "postgresql://u:s3cr%40t@127.0.0.1:1/db?connect_timeout=1"
    snap = tmp_path / "x.spsnap"
    snap.write_bytes(b"not a snapshot")
    main(["demo", "--url", a])
    capsys.readouterr()
    cases = [
        (["copy", a, secret], "unreachable"),
        (["copy", secret, a], "unreachable"),
        (["copy", a, "nosuch://x"], "unknown scheme"),
        (["copy", f"sqlite:///{tmp_path / 'missing'}.db", a], "no database"),
        (["copy", a, a], "same store"),
        (["copy", a, f"sqlite:///{tmp_path / 'b'}.db", "--url", a], "--url does not apply"),
        (["copy", a, f"sqlite:///{tmp_path / 'b'}.db", "--only", "runs,nope"], "unknown domain"),
        (["import", str(snap), "--url", f"sqlite:///{tmp_path / 'c'}.db"], "not a stateport"),
        (["import", "-", "--url", a], "give a file"),
        (["import", str(tmp_path / "absent"), "--url", a], "cannot read"),
        (["digest", "--url", secret], "unreachable"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == 1, argv
        assert message in err, (argv, err)
        assert "s3cr" not in out + err and "Traceback" not in err, argv
        assert err.count("\n") == 1 and err.startswith("error: "), (argv, err)


def test_progress_line() -> None:
    state = Progress("copy", items=250_000, items_total=1_000_000, started=100.0)
    line = TransferDisplay.line(state, now=110.0)
    assert line == "copy (items) · 250.0k/1.00M items · 25.0k items/s · 0:30 left"
    state = Progress("import", "blobs", 1000, 1000, blobs=12, bytes=3 << 20, bytes_total=6 << 20,
                     started=0.0)
    line = TransferDisplay.line(state, now=2.0)
    assert line == "import (blobs) · 1,000/1,000 items · 12 blobs, 3.0 MiB · 1.5 MiB/s · 0:02 left"
    state = Progress("export", "blobs", 10, None, blobs=1, bytes=100, started=0.0)
    assert TransferDisplay.line(state, now=65.0).endswith("1:05 elapsed")
    check = Progress("import", "check", bytes=1 << 20, bytes_total=4 << 20, started=0.0)
    assert "1.0 MiB of 4.0 MiB checked" in TransferDisplay.line(check, now=1.0)

    stream = io.StringIO()
    shown = TransferDisplay(quiet=False, stream=stream, plain_interval=0.0)
    shown(state)
    assert stream.getvalue().count("\n") == 1
    quiet = io.StringIO()
    TransferDisplay(quiet=True, stream=quiet, plain_interval=0.0)(state)
    assert quiet.getvalue() == ""


def test_empty_digest_matches_the_definition() -> None:
    async def main() -> Any:
        async with stateport.open("memory://") as sp:
            return await sp.digest()

    digest = asyncio.run(main())
    assert (digest.digest, digest.items, digest.blobs) == (EMPTY_DIGEST, 0, 0)


def test_the_readme_walkthrough_moves_the_demo_store_to_postgresql(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's "Try it" commands, as written, with a fresh schema for the server URL."""
    _need_pg()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("### Try it")[1].split("```sh\n")[1].split("```")[0]
    commands = [shlex.split(line) for line in block.splitlines() if line.startswith(".venv/bin/")]
    target = url()
    outputs = []
    for argv in commands:
        args = [target if a.startswith("postgresql://") else a for a in argv[1:]]
        code, out, err = run(capsys, *args)
        assert code == 0, (args, err)
        outputs.append(out)
    assert [c[1] for c in commands] == ["demo", "digest", "copy", "digest", "runs", "runs"]
    digest = outputs[1].splitlines()[0]
    assert digest.startswith("digest  sha256:")
    assert digest.removeprefix("digest  ") in outputs[2]
    assert outputs[3].splitlines()[0] == digest
    assert outputs[4] == outputs[5] and "COMPLETED" in outputs[4]


def test_the_sync_facade_moves_state_too(tmp_path: Path) -> None:
    import stateport.sync

    a, b = f"sqlite:///{tmp_path / 'a'}.db", f"sqlite:///{tmp_path / 'b'}.db"
    with stateport.sync.open(a) as sp:
        sp.items.put({"pk": "p", "sk": "s", "v": 1})
        digest = sp.digest()
        sp.export_snapshot(tmp_path / "a.spsnap")
    summary = stateport.sync.copy(a, b)
    assert summary.digest == digest
    with stateport.sync.open("memory://") as mem, stateport.sync.open(b) as sb:
        assert stateport.sync.copy(sb, mem).digest == digest
        assert mem.digest() == digest
    with stateport.sync.open("memory://") as mem:
        assert mem.import_snapshot(tmp_path / "a.spsnap").digest == digest


def test_a_store_of_its_own_snapshots_its_partitions_by_prefix(tmp_path: Path) -> None:
    """How a store that is not a registered domain yet (say, a knowledge
    repository) takes its own partitions along: a Scope of partition-key prefixes."""
    path = tmp_path / "k.spsnap"
    scope = Scope.checked([], ["knowledge#"])

    async def main() -> None:
        async with stateport.open("memory://") as src, stateport.open("memory://") as dst:
            await fill_every_domain(src)
            for i in range(3):
                await src.items.put({"pk": f"knowledge#{i}", "sk": "artifact", "n": i})
            summary = await src.export_snapshot(path, only=scope)
            assert (summary.digest.items, summary.digest.blobs) == (3, 0)
            await dst.items.put({"pk": "elsewhere", "sk": "x"})
            await dst.import_snapshot(path)
            keys = sorted([i.pk async for page in dst.table.scan_pages() for i in page])
            assert keys == ["elsewhere", "knowledge#0", "knowledge#1", "knowledge#2"]
            assert await dst.digest(scope) == summary.digest
            with pytest.raises(stateport.Conflict):
                await dst.import_snapshot(path)  # its partitions are there now
            assert (await dst.import_snapshot(path, resume=True)).items_written == 0

    asyncio.run(main())


def test_snapshot_file_errors_are_typed(tmp_path: Path) -> None:
    async def main() -> None:
        async with stateport.open("memory://") as sp:
            await sp.items.put({"pk": "p", "sk": "s"})
            with pytest.raises(stateport.ValidationError, match="cannot write"):
                await sp.export_snapshot(tmp_path / "no" / "such" / "dir.spsnap")
            with pytest.raises(stateport.ValidationError, match="cannot read"):
                await sp.import_snapshot(tmp_path / "absent.spsnap")

            class Full(io.BytesIO):
                def write(self, data: Any) -> int:
                    raise OSError(28, "No space left on device")

            with pytest.raises(stateport.EngineError, match="No space left"):
                await sp.export_snapshot(Full())

    asyncio.run(main())


def test_the_hasher_takes_items_in_key_order_only() -> None:
    from stateport.ports.table import StoredItem
    from stateport.snapshot.records import ContentHasher, stored_records

    items = [StoredItem(pk, sk, 1, "{}") for pk in ("a", "b", "run#1") for sk in ("x", "y")]
    by_page, by_item = ContentHasher(Scope()), ContentHasher(Scope())
    by_page.page(items[:3], stored_records(items[:3]))
    by_page.page(items[3:], stored_records(items[3:]))
    for item, record in zip(items, stored_records(items), strict=True):
        by_item.item(item.pk, item.sk, record)
    assert by_page.result() == by_item.result()
    counts = by_page.result().by_domain
    assert counts == {d.name: 0 for d in DOMAINS} | {"runs": 2, "items": 4}
    for pages in ([items[1], items[0]], [items[2], items[0]], [items[0], items[0]]):
        with pytest.raises(stateport.EngineError, match="out of key order"):
            ContentHasher(Scope()).page(pages, stored_records(pages))
    later = ContentHasher(Scope())
    later.page(items[2:4], stored_records(items[2:4]))
    with pytest.raises(stateport.EngineError):
        later.page(items[:1], stored_records(items[:1]))


def test_copy_validates_its_arguments_before_writing() -> None:
    async def main() -> None:
        async with stateport.open("memory://") as src, stateport.open("memory://") as dst:
            await src.items.put({"pk": "p", "sk": "s"})
            for bad in (0, -1, "10", 2.5):
                with pytest.raises(stateport.ValidationError):
                    await stateport.copy(src, dst, page_size=bad)  # type: ignore[arg-type]
            with pytest.raises(stateport.ValidationError):
                await stateport.copy(src, dst, only="runs,bogus")
            with pytest.raises(stateport.ValidationError):
                await stateport.copy(src, src)
            assert (await dst.digest()).digest == EMPTY_DIGEST

    asyncio.run(main())
