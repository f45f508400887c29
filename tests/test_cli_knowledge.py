"""``stateport knowledge``, run in-process through ``main``."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from _cli import json_lines as lines  # tests/ is on sys.path
from _cli import run

import stateport


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/s.db"


def populate(url: str) -> dict[str, str]:
    async def go() -> dict[str, str]:
        async with stateport.open(url) as sp:
            k = sp.knowledge
            col = await k.create_collection("papers")
            await k.create_collection("empty")
            a = await k.create_artifact(
                col.id, "b-paper", b"v1", artifact_type="paper", metadata={"year": 2024}
            )
            b = await k.create_artifact(col.id, "a-note", b"note", artifact_type="note")
            c = await k.create_artifact(col.id, "c-ref", b"ref", artifact_type="ref")
            await k.update_artifact(a.id, content=b"v2", actor="ada")
            rel = await k.create_relationship(b.id, "about", a.id)
            await k.create_relationship(a.id, "cites", c.id)
            return {"col": col.id, "a": a.id, "b": b.id, "c": c.id, "rel": rel.id}

    return asyncio.run(go())


def test_collections_ls_show(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ids = populate(url)
    code, out, _ = run(capsys, "--url", url, "knowledge", "collections")
    assert code == 0
    rows = out.splitlines()
    assert [r.split()[0] for r in rows] == ["empty", "papers"]
    assert rows[1].split()[1] == ids["col"]
    code, out, _ = run(capsys, "--url", url, "knowledge", "collections", "--json")
    assert [c["name"] for c in lines(out)] == ["empty", "papers"]
    for ref in ("papers", ids["col"]):  # by name or by id
        code, out, _ = run(capsys, "--url", url, "knowledge", "ls", ref)
        assert code == 0
        assert [r.split()[0] for r in out.splitlines()] == ["a-note", "b-paper", "c-ref"]
    code, out, _ = run(capsys, "--url", url, "knowledge", "ls", "papers", "--limit", "2")
    assert "first 2 shown" in out
    code, out, _ = run(capsys, "--url", url, "knowledge", "ls", "papers", "--json")
    listed = lines(out)
    assert [a["name"] for a in listed] == ["a-note", "b-paper", "c-ref"]
    assert listed[1]["revision"] == 2 and listed[1]["metadata"] == {"year": 2024}
    code, out, _ = run(capsys, "--url", url, "knowledge", "ls", "empty")
    assert code == 0 and "holds no artifacts" in out
    code, out, _ = run(capsys, "--url", url, "knowledge", "show", ids["a"], "--json")
    shown = json.loads(out)
    assert shown["id"] == ids["a"] and shown["artifact_type"] == "paper"
    assert shown["provenance"] == {"actor": None, "run_id": None, "source_uris": []}
    code, out, _ = run(capsys, "--url", url, "knowledge", "show", ids["a"])
    assert f"{ids['col']} (papers)" in out and "b-paper" in out


def test_history_related_changes(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ids = populate(url)
    code, out, _ = run(capsys, "--url", url, "knowledge", "history", ids["a"])
    assert code == 0
    assert [r.split()[0] for r in out.splitlines()] == ["1", "2"]
    code, out, _ = run(capsys, "--url", url, "knowledge", "history", ids["a"], "--json")
    revs = lines(out)
    assert revs[1]["old_digest"] == revs[0]["digest"] and revs[1]["actor"] == "ada"
    code, out, _ = run(capsys, "--url", url, "knowledge", "history", ids["a"], "--changes")
    kinds = [r.split()[3] for r in out.splitlines()]
    assert kinds == [
        "artifact.created",
        "artifact.updated",
        "relationship.created",
        "relationship.created",
    ]
    code, out, _ = run(capsys, "--url", url, "knowledge", "related", ids["a"])
    rows = [r.split() for r in out.splitlines()]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("->", "cites", ids["c"]),
        ("<-", "about", ids["b"]),
    ]
    code, out, _ = run(
        capsys, "--url", url, "knowledge", "related", ids["a"], "--direction", "in", "--json"
    )
    assert [r["id"] for r in lines(out)] == [ids["rel"]]
    code, out, _ = run(
        capsys, "--url", url, "knowledge", "related", ids["b"], "--depth", "3", "--json"
    )
    assert [(n["artifact_id"], n["depth"]) for n in lines(out)] == [(ids["a"], 1), (ids["c"], 2)]
    code, out, _ = run(capsys, "--url", url, "knowledge", "related", ids["c"], "--direction", "out")
    assert out.strip() == "no relationships"
    code, out, _ = run(capsys, "--url", url, "knowledge", "changes")
    assert [int(r.split()[0]) for r in out.splitlines()] == list(range(1, 9))
    code, out, _ = run(capsys, "--url", url, "knowledge", "changes", "--after", "5", "--json")
    assert [c["seq"] for c in lines(out)] == [6, 7, 8]
    assert lines(out)[1]["kind"] == "relationship.created"
    code, out, _ = run(capsys, "--url", url, "knowledge", "changes", "--limit", "2", "--json")
    assert [c["seq"] for c in lines(out)] == [1, 2]


def test_changes_follow(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ids = populate(url)

    def write_later() -> None:
        async def go() -> None:
            async with stateport.open(url) as sp:
                for i in range(3):
                    await asyncio.sleep(0.05)
                    await sp.knowledge.update_artifact(ids["c"], metadata={"i": i})

        asyncio.run(go())

    writer = threading.Thread(target=write_later)
    writer.start()
    code, out, _ = run(
        capsys,
        "--url",
        url,
        "knowledge",
        "changes",
        "--after",
        "7",
        "--follow",
        "--limit",
        "4",
        "--json",
    )
    writer.join()
    assert code == 0
    records = lines(out)
    assert [c["seq"] for c in records] == [8, 9, 10, 11]
    assert [c["revision"] for c in records[1:]] == [2, 3, 4]


def test_knowledge_errors(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    populate(url)
    for argv, message in (
        (["show", "art_nope"], "no artifact 'art_nope'"),
        (["show", "bad id"], "artifact_id must be at most"),
        (["history", "art_nope"], "no artifact 'art_nope'"),
        (["related", "art_nope"], "no artifact 'art_nope'"),
        (["ls", "nothing here"], "no collection named 'nothing here'"),
        (["ls", "papers", "--limit", "-1"], "--limit must be >= 0"),
        (["changes", "--after", "-2"], "must be >= 0"),
    ):
        code, _, err = run(capsys, "--url", url, "knowledge", *argv)
        assert code == 1, argv
        assert err.startswith("error: ") and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = run(capsys, "--url", url, "knowledge", "related", "x", "--direction", "up")
    assert code == 2
    missing = f"sqlite:///{tmp_path}/missing.db"
    code, _, err = run(capsys, "--url", missing, "knowledge", "collections")
    assert code == 1 and "no database" in err
    assert not (tmp_path / "missing.db").exists()
