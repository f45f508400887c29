"""``stateport runs``, ``releases``, ``cas`` and ``council``, run in-process through ``main``;
what the write commands do is read back through the Python API."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _cli import json_lines, one_json, run, using  # tests/ is on sys.path

import stateport
from stateport import ContentDigest, RunEvent, RunMetadata, RunSummary
from stateport.domains.council import CouncilRun, CouncilRunEvent, CouncilRunStatus

SPEC = ContentDigest.from_bytes(b"cli spec")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/s.db"


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


# --------------------------------------------------------------------------- run writes


def test_a_shell_drives_a_run(capsys: pytest.CaptureFixture[str], url: str) -> None:
    spec = SPEC.as_str()
    code, out, _ = run(
        capsys,
        *("--url", url, "runs", "create", spec, "--agent", "sh-agent", "--git-sha", "abc123"),
        *("--tag", "team=core", "--tag", "try=2", "--run-id", "r1"),
    )
    assert code == 0
    assert out == f"created run r1 of spec {SPEC.short()} for agent sh-agent\n"
    record = using(url, lambda sp: sp.runs.get_run("r1"))
    assert (record.status, record.spec_digest, record.metadata) == (
        "RUNNING",
        SPEC,
        RunMetadata("sh-agent", "abc123", {"team": "core", "try": "2"}),
    )

    code, out, _ = run(capsys, "--url", url, "runs", "append", "r1", "started")
    assert code == 0 and out == "appended event 1 (started) to run r1\n"
    code, out, _ = run(
        capsys, "--url", url, "runs", "append", "r1", "tool", '{"tool": "search"}', "--seq", "2"
    )
    assert code == 0 and out == "appended event 2 (tool) to run r1\n"
    code, out, _ = run(capsys, "--url", url, "runs", "append", "r1", "note", "[1, 2.5]", "--json")
    shown = one_json(out)
    assert (shown["run_id"], shown["seq"], shown["kind"], shown["payload"]) == (
        "r1",
        3,
        "note",
        [1, 2.5],
    )

    # a retried append with its --seq is refused, not recorded twice; so is a gap
    for seq in ("2", "9"):
        code, out, err = run(
            capsys, "--url", url, "runs", "append", "r1", "tool", "{}", "--seq", seq
        )
        assert code == 1 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    events = using(url, lambda sp: sp.runs.get_events("r1"))
    assert [(e.seq, e.kind, e.payload) for e in events] == [
        (1, "started", None),
        (2, "tool", {"tool": "search"}),
        (3, "note", [1, 2.5]),
    ]

    code, out, _ = run(capsys, "--url", url, "runs", "complete", "r1")
    assert code == 0
    assert out.startswith("ended run r1 as COMPLETED (3 events, ")
    done = using(url, lambda sp: sp.runs.get_run("r1"))
    assert done.status == "COMPLETED" and done.summary is not None
    assert (done.summary.total_events, done.summary.success) == (3, True)
    assert 0 <= done.summary.duration_ms < 600_000
    assert done.summary.final_state_digest is None

    code, _, err = run(capsys, "--url", url, "runs", "append", "r1", "late")
    assert code == 1 and "COMPLETED" in err
    code, _, err = run(capsys, "--url", url, "runs", "fail", "r1")
    assert code == 1 and "COMPLETED" in err and "Traceback" not in err
    assert using(url, lambda sp: sp.runs.get_run("r1")) == done


def test_runs_created_with_a_new_id_end_failed_or_cancelled(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = []
    for _ in range(2):
        code, out, _ = run(
            capsys, "--url", url, "runs", "create", SPEC.as_str(), "--agent", "a", "--json"
        )
        assert code == 0
        created.append(one_json(out))
    assert all(c["status"] == "RUNNING" and c["agent_name"] == "a" for c in created)
    first, second = (c["run_id"] for c in created)
    assert first != second
    assert {r.run_id for r in using(url, lambda sp: sp.runs.list_runs())} == {first, second}

    final = ContentDigest.from_bytes(b"final state")
    code, out, _ = run(
        capsys,
        *("--url", url, "runs", "fail", first, "--events", "7", "--duration-ms", "1500"),
        *("--final-state", final.as_str(), "--json"),
    )
    assert code == 0
    assert one_json(out)["status"] == "FAILED"
    failed = using(url, lambda sp: sp.runs.get_run(first))
    assert failed.summary == RunSummary(7, 1500, False, final)

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"reason": "timeout"}'))
    code, out, _ = run(capsys, "--url", url, "runs", "append", second, "stopping", "-")
    assert code == 0
    assert using(url, lambda sp: sp.runs.get_events(second))[0].payload == {"reason": "timeout"}
    code, out, _ = run(capsys, "--url", url, "runs", "cancel", second, "--duration-ms", "0")
    assert code == 0 and out == f"ended run {second} as CANCELLED (1 event, 0 ms)\n"
    cancelled = using(url, lambda sp: sp.runs.get_run(second))
    assert cancelled.status == "CANCELLED"
    assert cancelled.summary == RunSummary(1, 0, False)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["runs", "create", "xyz", "--agent", "a"], 1, "invalid digest"),
        (["runs", "create", SPEC.as_str()], 2, "--agent"),
        (["runs", "create", SPEC.as_str(), "--agent", ""], 1, "agent_name"),
        (["runs", "create", SPEC.as_str(), "--agent", "a", "--tag", "x"], 1, "KEY=VALUE"),
        (
            ["runs", "create", SPEC.as_str(), "--agent", "a", "--tag", "x=1", "--tag", "x=2"],
            1,
            "twice",
        ),
        (["runs", "create", SPEC.as_str(), "--agent", "a", "--run-id", "r1"], 1, "r1"),
        (["runs", "append", "r1", "k", "{nope"], 1, "the payload is not JSON"),
        (["runs", "append", "r1", "k", "NaN"], 1, "NaN"),
        (["runs", "append", "r1", "k", "1e999"], 1, "too large"),
        (["runs", "append", "r1", "k", "[" * 5000 + "]" * 5000], 1, "not JSON"),
        (["runs", "append", "r1", "k", "--seq", "0"], 1, "seq"),
        (["runs", "append", "r1", "k", "--seq", "x"], 2, "invalid int"),
        (["runs", "append", "r1", ""], 1, "kind"),
        (["runs", "append", "nope", "k"], 1, "no run 'nope'"),
        (["runs", "complete", "r1", "--events", "-1"], 1, "total_events"),
        (["runs", "complete", "r1", "--final-state", "xyz"], 1, "invalid digest"),
        (["runs", "cancel", "nope"], 1, "no run 'nope'"),
    ],
)
def test_run_writes_refuse_bad_input_and_change_nothing(
    capsys: pytest.CaptureFixture[str], url: str, argv: list[str], status: int, message: str
) -> None:
    rid = using(
        url, lambda sp: sp.runs.create_run(SPEC, RunMetadata("a"), run_id="r1"), create=True
    )

    async def snapshot(sp: stateport.Stateport) -> object:
        return await sp.runs.list_runs(), await sp.runs.get_events(rid)

    before = using(url, snapshot)
    code, out, err = run(capsys, "--url", url, *argv)
    assert code == status, err
    assert out == "" and message in err and "Traceback" not in err
    if status == 1:
        assert err.startswith("error: ") and err.count("\n") == 1
    assert using(url, snapshot) == before


# --------------------------------------------------------------------------- cas


def test_cas_contains_and_delete(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"to be deleted")
    digest = ContentDigest.from_bytes(b"to be deleted").as_str()
    assert run(capsys, "--url", url, "cas", "put", str(source))[0] == 0

    code, out, _ = run(capsys, "--url", url, "cas", "contains", digest)
    assert code == 0 and out == f"{digest} is stored\n"
    code, out, _ = run(capsys, "--url", url, "cas", "contains", digest.upper(), "--json")
    assert code == 0 and one_json(out) == {"digest": digest, "stored": True}

    code, out, _ = run(capsys, "--url", url, "cas", "delete", digest)
    assert code == 0 and out == f"deleted {digest}\n"
    assert using(url, lambda sp: sp.cas.contains(digest)) is False

    code, out, _ = run(capsys, "--url", url, "cas", "contains", digest)
    assert code == 1 and out == f"{digest} is not stored\n"
    code, out, _ = run(capsys, "--url", url, "cas", "delete", digest, "--json")
    assert code == 0 and one_json(out) == {"digest": digest, "deleted": False}

    for command in ("contains", "delete"):
        code, out, err = run(capsys, "--url", url, "cas", command, "xyz")
        assert code == 1 and out == "" and "invalid digest" in err


# --------------------------------------------------------------------------- council


def make_council(url: str) -> None:
    async def go(sp: stateport.Stateport) -> None:
        for i, rid in enumerate(("c1", "c2", "c3")):
            await sp.council.create_run(
                CouncilRun(rid, metadata={"n": i}, created_at=datetime(2026, 1, 1 + i, tzinfo=UTC))
            )
        await sp.council.update_graph("c2", '{"nodes": ["a", "b"]}')
        await sp.council.update_run_status("c2", CouncilRunStatus.AWAITING_APPROVAL)
        for wave, kind in ((0, "plan"), (1, "vote"), (1, "vote")):
            await sp.council.append_event(CouncilRunEvent("c2", kind, {"wave": wave}, wave))

    using(url, go, create=True)


def test_council_ls_show_events(capsys: pytest.CaptureFixture[str], url: str) -> None:
    make_council(url)
    code, out, _ = run(capsys, "--url", url, "council", "ls")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["c3", "c2", "c1"]
    code, out, _ = run(capsys, "--url", url, "council", "ls", "--status", "awaiting_approval")
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["c2", "awaiting_approval"]]
    code, out, _ = run(capsys, "--url", url, "council", "ls", "--json")
    assert [(r["id"], r["metadata"]) for r in json_lines(out)] == [
        ("c3", {"n": 2}),
        ("c2", {"n": 1}),
        ("c1", {"n": 0}),
    ]
    code, out, _ = run(capsys, "--url", url, "council", "ls", "--status", "completed")
    assert code == 0 and out == "no council runs\n"

    code, out, _ = run(capsys, "--url", url, "council", "show", "c2", "--json")
    shown = one_json(out)
    assert shown["status"] == "awaiting_approval"
    assert json.loads(shown["graph_json"]) == {"nodes": ["a", "b"]}
    assert shown["created_at"].startswith("2026-01-02T00:00:00")
    code, out, _ = run(capsys, "--url", url, "council", "show", "c2")
    assert "awaiting_approval" in out and '{"nodes": ["a", "b"]}' in out

    code, out, _ = run(capsys, "--url", url, "council", "events", "c2", "--json")
    events = json_lines(out)
    assert [(e["wave_index"], e["event_type"]) for e in events] == [
        (0, "plan"),
        (1, "vote"),
        (1, "vote"),
    ]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    code, out, _ = run(capsys, "--url", url, "council", "events", "c2")
    assert [line.split()[3:5] for line in out.splitlines()] == [
        ["wave", "0"],
        ["wave", "1"],
        ["wave", "1"],
    ]
    code, out, _ = run(capsys, "--url", url, "council", "events", "c1")
    assert code == 0 and out == ""

    for command in ("show", "events"):
        code, out, err = run(capsys, "--url", url, "council", command, "ghost")
        assert code == 1 and out == "" and "no council run 'ghost'" in err
    code, _, err = run(capsys, "--url", url, "council", "ls", "--status", "done")
    assert code == 2 and "invalid choice" in err
