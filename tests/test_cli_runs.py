"""``stateport runs``, ``releases`` and ``cas``, run in-process through ``main``."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

import stateport
from stateport import ContentDigest, RunEvent, RunMetadata, RunSummary
from stateport.cli import main

SPEC = ContentDigest.from_bytes(b"cli spec")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/s.db"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_runs(url: str, count: int) -> list[str]:
    async def go() -> list[str]:
        async with stateport.open(url) as sp:
            ids = []
            for i in range(count):
                rid = await sp.runs.create_run(SPEC, RunMetadata(f"agent{i}"))
                await sp.runs.append_events(rid, [RunEvent("a", {"i": i}), RunEvent("b")])
                ids.append(rid)
            await sp.runs.complete_run(ids[0], RunSummary(2, 5, True))
            return ids

    return asyncio.run(go())


def test_runs_list_show_events(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ids = make_runs(url, 3)
    code, out, _ = run(capsys, "--url", url, "runs", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]
    code, out, _ = run(capsys, "--url", url, "runs", "list", "--status", "COMPLETED", "--json")
    assert [json.loads(line)["run_id"] for line in out.splitlines()] == [ids[0]]
    code, out, _ = run(capsys, "--url", url, "runs", "list", "--limit", "2")
    assert "first 2 shown" in out
    code, out, _ = run(capsys, "--url", url, "runs", "show", ids[0], "--json")
    shown = json.loads(out)
    assert shown["status"] == "COMPLETED" and shown["summary"]["duration_ms"] == 5
    assert shown["last_event"]["seq"] == 2
    code, out, _ = run(capsys, "--url", url, "runs", "events", ids[1])
    assert [line.split()[0] for line in out.splitlines()] == ["1", "2"]
    code, out, _ = run(capsys, "--url", url, "runs", "events", ids[1], "--after", "1", "--json")
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["b"]


def test_runs_events_follow_ends_with_the_run(capsys: pytest.CaptureFixture[str], url: str) -> None:
    rid = make_runs(url, 2)[1]

    def finish_later() -> None:
        async def go() -> None:
            async with stateport.open(url) as sp:
                for i in range(3):
                    await asyncio.sleep(0.05)
                    await sp.runs.append_event(rid, RunEvent("late", {"i": i}))
                await sp.runs.fail_run(rid, RunSummary(5, 1, False))

        asyncio.run(go())

    writer = threading.Thread(target=finish_later)
    writer.start()
    code, out, _ = run(capsys, "--url", url, "runs", "events", rid, "--follow", "--json")
    writer.join()
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2, 3, 4, 5]


def test_runs_errors(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    make_runs(url, 1)
    code, _, err = run(capsys, "--url", url, "runs", "show", "nope")
    assert code == 1 and "no run 'nope'" in err
    code, _, err = run(capsys, "--url", url, "runs", "list", "--spec", "xyz")
    assert code == 1 and "invalid digest" in err
    code, _, err = run(capsys, "--url", url, "runs", "list", "--status", "DONE")
    assert code == 2
    missing = f"sqlite:///{tmp_path}/missing.db"
    code, _, err = run(capsys, "--url", missing, "runs", "list")
    assert code == 1 and "no database" in err
    assert not (tmp_path / "missing.db").exists()


def test_releases_promote_rollback_history(capsys: pytest.CaptureFixture[str], url: str) -> None:
    digests = [ContentDigest.from_bytes(bytes([i])).as_str() for i in range(3)]
    for i, d in enumerate(digests):
        code, out, _ = run(
            capsys, "--url", url, "releases", "promote", "bot", d, "--by", "ci", "--label", f"v{i}"
        )
        assert code == 0 and d[:12] in out
    code, out, _ = run(capsys, "--url", url, "releases", "rollback", "bot", "--json")
    back = json.loads(out)
    assert (back["seq"], back["action"], back["spec_digest"], back["restores"]) == (
        4,
        "rollback",
        digests[1],
        2,
    )
    code, out, _ = run(capsys, "--url", url, "releases", "history", "bot", "--json")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [4, 3, 2, 1]
    code, out, _ = run(capsys, "--url", url, "releases", "list")
    assert "bot" in out and digests[1][:12] in out
    run(capsys, "--url", url, "releases", "rollback", "bot")
    code, _, err = run(capsys, "--url", url, "releases", "rollback", "bot")
    assert code == 1 and "no release before" in err
    code, _, err = run(capsys, "--url", url, "releases", "history", "ghost")
    assert code == 1 and "ghost" in err
    code, _, err = run(capsys, "--url", url, "releases", "promote", "bot", "not-hex")
    assert code == 1 and "invalid digest" in err


def test_cas_put_and_get(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"content for cas")
    code, out, _ = run(capsys, "--url", url, "cas", "put", str(source))
    digest = out.split()[0]
    assert code == 0 and digest == ContentDigest.from_bytes(b"content for cas").as_str()
    target = tmp_path / "back.bin"
    code, _, _ = run(capsys, "--url", url, "cas", "get", digest, "-o", str(target))
    assert code == 0 and target.read_bytes() == b"content for cas"
    code, _, err = run(capsys, "--url", url, "cas", "get", "0" * 64)
    assert code == 1 and "not stored" in err
