"""Tampering with the audit chain in the SQLite file is detected, by the API and the CLI.

Each test writes a feature's chain through the API, edits rows of ``sp_items``
directly with ``sqlite3`` (as someone with access to the file would), and
expects verification to fail at the right entry.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import stateport
from stateport.cli import main
from stateport.domains.work import (
    AuditEntry,
    Evidence,
    Feature,
    FeatureState,
    WorkPackage,
    WpState,
)
from stateport.errors import IntegrityError
from stateport.primitives.chain import ChainHead, ChainVerification

PK = "work.audit#1"
ENTRIES = 7


def esk(seq: int) -> str:
    return f"e#{seq:020d}"


def build(path: Path) -> ChainHead:
    """Feature 1 with a chain of 7 entries (feature and WP moves); return its head."""

    async def go() -> ChainHead:
        async with stateport.open(f"sqlite:///{path}") as sp:
            w = sp.work
            fid = await w.create_feature(Feature(slug="001-login", friendly_name="Login"))
            assert fid == 1
            wp = await w.create_work_package(WorkPackage(feature_id=fid, sequence=1, title="t"))
            await w.create_evidence(Evidence(wp_id=wp, fr_id="FR-1", artifact_url="r"))
            await w.update_feature_state(fid, FeatureState.PLAN, actor="ada", evidence_refs=["r"])
            await w.update_feature_state(fid, FeatureState.IMPLEMENT, actor="ada")
            for st in (WpState.DOING, WpState.FOR_REVIEW, WpState.DONE):
                await w.update_wp_state(wp, st, actor="bot")
            await w.update_feature_state(fid, FeatureState.REVIEW, actor="ada")
            await w.update_feature_state(fid, FeatureState.DONE, actor="ada")
            return await w.audit_head(fid)

    return asyncio.run(go())


def verify(path: Path, expected: ChainHead | None = None) -> ChainVerification:
    async def go() -> ChainVerification:
        async with stateport.open(f"sqlite:///{path}") as sp:
            return await sp.work.verify_audit_chain(1, expected_head=expected)

    return asyncio.run(go())


def edit(path: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute(sql, args).rowcount >= 1


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    build(path)
    assert verify(path).ok
    return path


CHANGES: dict[str, tuple[str, object]] = {
    "wp_id": ("$.wp_id", 9),
    "wp_sequence": ("$.wp_sequence", 2),
    "timestamp": ("$.timestamp", "2020-01-01T00:00:00.000000Z"),
    "actor": ("$.actor", "mallory"),
    "transition": ("$.transition", "WP01: PLANNED -> DONE"),
    "evidence_refs": ("$.evidence_refs", json.dumps(["forged"])),
    "prev_hash": ("$.prev_hash", "0" * 64),
    "hash": ("$.hash", "f" * 64),
    "hash, as upper case": ("$.hash", None),
}


@pytest.mark.parametrize("field", list(CHANGES))
def test_a_changed_field_of_any_entry_is_detected(db: Path, field: str) -> None:
    path_expr, value = CHANGES[field]
    if value is None:  # the same bytes spelled differently is still a change
        edit(db, "UPDATE sp_items SET attrs = json_set(attrs, '$.hash', upper("
             "json_extract(attrs, '$.hash'))) WHERE pk = ? AND sk = ?", PK, esk(3))  # fmt: skip
    elif field == "evidence_refs":
        edit(db, "UPDATE sp_items SET attrs = json_set(attrs, ?, json(?)) WHERE pk = ? AND sk = ?",
             path_expr, value, PK, esk(3))  # fmt: skip
    else:
        edit(db, "UPDATE sp_items SET attrs = json_set(attrs, ?, ?) WHERE pk = ? AND sk = ?",
             path_expr, value, PK, esk(3))  # fmt: skip
    result = verify(db)
    assert not result.ok and result.broken is not None
    assert result.broken.seq == 3 and result.checked == 2


def test_an_added_attribute_is_detected(db: Path) -> None:
    edit(db, "UPDATE sp_items SET attrs = json_set(attrs, '$.seq', 9) WHERE pk = ? AND sk = ?",
         PK, esk(5))  # fmt: skip
    result = verify(db)
    assert not result.ok and result.broken is not None and result.broken.seq == 5


def test_a_deleted_entry_is_detected(db: Path) -> None:
    edit(db, "DELETE FROM sp_items WHERE pk = ? AND sk = ?", PK, esk(4))
    result = verify(db)
    assert not result.ok and result.broken is not None and result.broken.seq == 4
    assert "missing" in result.broken.reason


def test_reordered_entries_are_detected(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        a = conn.execute("SELECT attrs FROM sp_items WHERE pk = ? AND sk = ?", (PK, esk(2)))
        b = conn.execute("SELECT attrs FROM sp_items WHERE pk = ? AND sk = ?", (PK, esk(3)))
        two, three = a.fetchone()[0], b.fetchone()[0]
        conn.execute("UPDATE sp_items SET attrs = ? WHERE pk = ? AND sk = ?", (three, PK, esk(2)))
        conn.execute("UPDATE sp_items SET attrs = ? WHERE pk = ? AND sk = ?", (two, PK, esk(3)))
    result = verify(db)
    assert not result.ok and result.broken is not None and result.broken.seq == 2


def test_an_entry_copied_over_the_next_is_detected(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        five = conn.execute(
            "SELECT attrs FROM sp_items WHERE pk = ? AND sk = ?", (PK, esk(5))
        ).fetchone()[0]
        conn.execute("UPDATE sp_items SET attrs = ? WHERE pk = ? AND sk = ?", (five, PK, esk(6)))
    result = verify(db)
    assert not result.ok and result.broken is not None and result.broken.seq == 6


def test_a_truncated_tail_is_detected(db: Path) -> None:
    edit(db, "DELETE FROM sp_items WHERE pk = ? AND sk >= ? AND sk LIKE 'e#%'", PK, esk(6))
    result = verify(db)
    assert not result.ok and result.broken is not None and result.broken.seq == 6
    assert "truncated" in result.broken.reason


def test_a_truncation_with_a_rewritten_head_needs_the_exported_head(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    signed = build(db)
    with sqlite3.connect(db) as conn:
        five = json.loads(
            conn.execute(
                "SELECT attrs FROM sp_items WHERE pk = ? AND sk = ?", (PK, esk(5))
            ).fetchone()[0]
        )
        conn.execute("DELETE FROM sp_items WHERE pk = ? AND sk > ? AND sk LIKE 'e#%'", (PK, esk(5)))
        conn.execute(
            "UPDATE sp_items SET attrs = json_set(attrs, '$.count', 5, '$.hash', ?) "
            "WHERE pk = ? AND sk = 'head'",
            (five["hash"], PK),
        )
    assert verify(db).ok  # consistent on its own: only the signed-off head can tell
    result = verify(db, expected=signed)
    assert not result.ok and result.broken is not None and result.broken.seq == 6


def test_appending_to_a_damaged_chain_is_an_integrity_error(db: Path) -> None:
    edit(db, "DELETE FROM sp_items WHERE pk = ? AND sk = ?", PK, esk(ENTRIES))

    async def go() -> None:
        async with stateport.open(f"sqlite:///{db}") as sp:
            await sp.work.append_audit_entry(AuditEntry(feature_id=1, actor="a", transition="t"))

    with pytest.raises(IntegrityError, match="damaged"):
        asyncio.run(go())


# ------------------------------------------------------------------ the CLI


def cli(db: Path, *args: str) -> int:
    return main([*args, "--url", f"sqlite:///{db}"])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda db: edit(db, "UPDATE sp_items SET attrs = json_set(attrs, '$.actor', 'eve') "
                        "WHERE pk = ? AND sk = ?", PK, esk(2)),
        lambda db: edit(db, "DELETE FROM sp_items WHERE pk = ? AND sk = ?", PK, esk(3)),
        lambda db: edit(db, "DELETE FROM sp_items WHERE pk = ? AND sk = ?", PK, esk(ENTRIES)),
    ],
    ids=["changed", "deleted", "truncated"],
)  # fmt: skip
def test_cli_verify_exits_1_on_tampering(
    db: Path, tamper: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(db, "audit", "verify") == 0
    assert "ok      001-login  7 entries" in capsys.readouterr().out
    tamper(db)
    assert cli(db, "audit", "verify", "--feature", "001-login") == 1
    assert "BROKEN  001-login" in capsys.readouterr().out


def test_cli_head_export_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    build(db)
    head_file = tmp_path / "head.json"
    assert cli(db, "audit", "head", "--feature", "001-login", "-o", str(head_file)) == 0
    doc = json.loads(head_file.read_text())
    assert doc["feature"] == "001-login" and doc["count"] == ENTRIES
    assert cli(db, "audit", "verify", "--head", str(head_file)) == 0
    edit(db, "DELETE FROM sp_items WHERE pk = ? AND sk = ?", PK, esk(ENTRIES))
    edit(db, "UPDATE sp_items SET attrs = json_set(attrs, '$.count', 6, '$.hash', ?) "
         "WHERE pk = ? AND sk = 'head'", "0" * 64, PK)  # fmt: skip
    capsys.readouterr()
    assert cli(db, "audit", "verify", "--head", str(head_file)) == 1
    assert cli(db, "audit", "head", "--feature", "001-login") == 1  # refuses a broken chain
    assert "error:" in capsys.readouterr().err


def test_cli_work_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    build(db)
    capsys.readouterr()
    assert cli(db, "work", "features") == 0
    assert "001-login" in capsys.readouterr().out
    assert cli(db, "work", "features", "--state", "DONE", "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "DONE"
    assert cli(db, "work", "wps", "001-login") == 0
    assert "WP01" in capsys.readouterr().out
    assert cli(db, "work", "ready", "001-login") == 0
    assert capsys.readouterr().out == ""  # its only package is DONE
    assert cli(db, "work", "audit", "001-login", "--json") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, ENTRIES + 1))
    assert cli(db, "work", "wps", "nope") == 1
    assert "no feature" in capsys.readouterr().err
