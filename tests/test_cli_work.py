"""``stateport work``: its write commands, checked through the Python API, and its listings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from _cli import json_lines, one_json, run, using  # tests/ is on sys.path

import stateport
from stateport.domains.work import (
    DeviceNode,
    Evidence,
    Feature,
    GovernanceContract,
    Metric,
    PolicyRule,
    SyncMapping,
    VectorClock,
    WorkPackage,
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/s.db"


def test_create_move_and_depend(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(capsys, "--url", url, "work", "create", "feature", "001-login", "Login")
    assert code == 0
    feature = using(url, lambda sp: sp.work.require_feature("001-login"))
    assert out == f"created feature {feature.id} '001-login' (SPECIFY): Login\n"
    assert (feature.friendly_name, feature.state, feature.target_branch) == (
        "Login",
        "SPECIFY",
        "main",
    )

    code, out, _ = run(
        capsys, "--url", url, "work", "create", "feature", "002-api", "API", "--branch", "dev"
    )
    assert code == 0
    code, out, _ = run(capsys, "--url", url, "work", "create", "feature", "003-x", "X", "--json")
    created = one_json(out)
    assert using(url, lambda sp: sp.work.require_feature("002-api")).target_branch == "dev"
    assert created["slug"] == "003-x" and created["state"] == "SPECIFY"
    assert using(url, lambda sp: sp.work.require_feature(created["id"])).slug == "003-x"

    code, out, _ = run(
        capsys,
        *("--url", url, "work", "create", "wp", "001-login", "1", "Schema"),
        *("--agent-id", "agent-1", "--file-scope", "db.py", "--file-scope", "models.py"),
        *("--acceptance-criteria", "migrations run"),
    )
    assert code == 0
    schema_id = int(out.split()[3].rstrip(":"))
    assert out == f"created work package {schema_id}: WP01 of '001-login' (PLANNED): Schema\n"
    schema = using(url, lambda sp: sp.work.get_work_package(schema_id))
    assert schema is not None
    assert (schema.feature_id, schema.sequence, schema.title, schema.state) == (
        feature.id,
        1,
        "Schema",
        "PLANNED",
    )
    assert schema.agent_id == "agent-1" and schema.file_scope == ("db.py", "models.py")
    assert schema.acceptance_criteria == "migrations run"

    code, out, _ = run(
        capsys, "--url", url, "work", "create", "wp", "001-login", "2", "API", "--json"
    )
    api_id = one_json(out)["id"]
    assert one_json(out)["sequence"] == 2
    assert [wp.id for wp in using(url, lambda sp: sp.work.list_wps_by_feature(feature.id))] == [
        schema_id,
        api_id,
    ]

    code, out, _ = run(capsys, "--url", url, "work", "depend", str(api_id), str(schema_id))
    assert code == 0
    assert out == f"work package {api_id} now depends on {schema_id} (explicit)\n"
    deps = using(url, lambda sp: sp.work.get_wp_dependencies(api_id))
    assert [(d.depends_on, d.dep_type) for d in deps] == [(schema_id, "explicit")]
    ready = using(url, lambda sp: sp.work.get_ready_wps(feature.id))
    assert [wp.id for wp in ready] == [schema_id]

    code, _, err = run(capsys, "--url", url, "work", "depend", str(schema_id), str(api_id))
    assert code == 1 and err.startswith("error: ") and "cycle" in err
    assert using(url, lambda sp: sp.work.get_wp_dependencies(schema_id)) == []

    move_feature = ("--url", url, "work", "move", "feature", "001-login", "PLAN")
    code, _, err = run(capsys, *move_feature, "--actor", "ada", "--evidence", "spec-review")
    assert code == 1 and "names no evidence" in err  # cited evidence must be stored
    evidence = Evidence(wp_id=schema_id, fr_id="FR-1", artifact_url="spec-review")
    using(url, lambda sp: sp.work.create_evidence(evidence))
    code, out, _ = run(capsys, *move_feature, "--actor", "ada", "--evidence", "spec-review")
    assert code == 0
    assert out == "moved feature '001-login' to PLAN (actor ada)\n"
    assert using(url, lambda sp: sp.work.require_feature(feature.id)).state == "PLAN"
    last = using(url, lambda sp: sp.work.get_latest_audit_entry(feature.id))
    assert last is not None
    assert (last.actor, last.transition, last.evidence_refs) == (
        "ada",
        "SPECIFY -> PLAN",
        ("spec-review",),
    )

    code, out, _ = run(
        capsys,
        *("--url", url, "work", "move", "wp", str(schema_id), "DOING", "--actor", "agent-1"),
        "--json",
    )
    assert code == 0
    assert one_json(out)["state"] == "DOING" and one_json(out)["id"] == schema_id
    moved = using(url, lambda sp: sp.work.get_work_package(schema_id))
    assert moved is not None and moved.state == "DOING"
    trail = using(url, lambda sp: sp.work.get_audit_trail(feature.id))
    assert [(e.actor, e.wp_id, e.transition) for e in trail][-1] == (
        "agent-1",
        schema_id,
        "WP01: PLANNED -> DOING",
    )
    assert using(url, lambda sp: sp.work.verify_audit_chain(feature.id)).ok

    # a move the machine refuses is an error that changes nothing
    code, _, err = run(
        capsys, "--url", url, "work", "move", "wp", str(schema_id), "DONE", "--actor", "x"
    )
    assert code == 1 and "cannot become" in err and "Traceback" not in err
    after = using(url, lambda sp: sp.work.get_work_package(schema_id))
    assert after is not None and after.state == "DOING"
    assert len(using(url, lambda sp: sp.work.get_audit_trail(feature.id))) == len(trail)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["work", "create", "feature", "001-login", "Again"], 1, "already exists"),
        (["work", "create", "feature", "bad slug ", "X"], 1, "slug"),
        (["work", "create", "wp", "nope", "1", "X"], 1, "no feature 'nope'"),
        (["work", "create", "wp", "001-login", "1", "Dup"], 1, "sequence 1"),
        (["work", "create", "wp", "001-login", "one", "X"], 2, "invalid int"),
        (["work", "move", "feature", "001-login", "PLAN"], 2, "--actor"),
        (["work", "move", "feature", "001-login", "LATER", "--actor", "a"], 2, "invalid choice"),
        (["work", "move", "wp", "1", "DONE", "--actor", "a"], 1, "cannot become"),
        (["work", "move", "feature", "nope", "PLAN", "--actor", "a"], 1, "no feature"),
        (["work", "move", "wp", "999", "DOING", "--actor", "a"], 1, "no work package 999"),
        (["work", "move", "wp", "1", "DOING", "--actor", ""], 1, "actor"),
        (["work", "depend", "1", "1"], 1, "itself"),
        (["work", "depend", "1", "999"], 1, "no work package 999"),
        (["work", "depend", "1", "2", "--type", "maybe"], 2, "invalid choice"),
    ],
)
def test_bad_input_is_a_one_line_error_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], url: str, argv: list[str], status: int, message: str
) -> None:
    assert run(capsys, "--url", url, "work", "create", "feature", "001-login", "Login")[0] == 0
    assert run(capsys, "--url", url, "work", "create", "wp", "001-login", "1", "A")[0] == 0

    async def snapshot(sp: stateport.Stateport) -> object:
        features = await sp.work.list_all_features()
        wps = [await sp.work.list_wps_by_feature(f.id) for f in features]
        trails = [await sp.work.get_audit_trail(f.id) for f in features]
        return features, wps, trails

    before = using(url, snapshot)
    code, out, err = run(capsys, "--url", url, *argv)
    assert code == status, err
    assert out == ""
    assert message in err and "Traceback" not in err
    if status == 1:
        assert err.startswith("error: ") and err.count("\n") == 1
    assert using(url, snapshot) == before


def fill(url: str) -> dict[str, int]:
    """A feature with evidence, metrics, contracts, sync mappings; two devices."""
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)

    async def go(sp: stateport.Stateport) -> dict[str, int]:
        fid = await sp.work.create_feature(Feature(slug="001-login", friendly_name="Login"))
        other = await sp.work.create_feature(Feature(slug="002-other", friendly_name="Other"))
        wid = await sp.work.create_work_package(WorkPackage(feature_id=fid, sequence=1, title="A"))
        await sp.work.create_evidence(
            Evidence(wp_id=wid, fr_id="FR-1", artifact_url="ci://1", confidence=0.5)
        )
        await sp.work.create_evidence(
            Evidence(wp_id=wid, fr_id="FR-2", artifact_url="ci://2", evidence_type="test")
        )
        await sp.work.record_metric(
            Metric(feature_id=fid, metric_type="tokens", value=1200, unit="tok", wp_id=wid)
        )
        await sp.work.record_metric(Metric(feature_id=fid, metric_type="cost", value=0.25))
        rules = (PolicyRule(rule_id="R1", description="two reviews"),)
        await sp.work.create_governance_contract(
            GovernanceContract(feature_id=fid, version=1, rules=rules)
        )
        await sp.work.create_governance_contract(
            GovernanceContract(
                feature_id=fid,
                version=2,
                rules=(*rules, PolicyRule(rule_id="R2", description="no force", is_active=False)),
            )
        )
        await sp.work.create_sync_mapping(
            SyncMapping(
                feature_id=fid, platform="github", external_id="#1", last_synced_at=long_ago
            )
        )
        await sp.work.create_sync_mapping(
            SyncMapping(feature_id=fid, platform="jira", external_id="J-1", wp_id=wid)
        )
        await sp.work.create_sync_mapping(
            SyncMapping(feature_id=other, platform="github", external_id="#2")
        )
        await sp.work.upsert_device_node(
            DeviceNode(
                device_id="laptop",
                name="Laptop",
                clock=VectorClock({"laptop": 3}),
                last_seen=long_ago,
            )
        )
        await sp.work.upsert_device_node(DeviceNode(device_id="ci", clock=VectorClock({"ci": 1})))
        return {"feature": fid, "other": other, "wp": wid}

    return using(url, go, create=True)


def test_listings(capsys: pytest.CaptureFixture[str], url: str) -> None:
    ids = fill(url)
    code, out, _ = run(capsys, "--url", url, "work", "evidence", "--wp", str(ids["wp"]), "--json")
    assert code == 0
    rows = json_lines(out)
    assert [(r["fr_id"], r["confidence"], r["evidence_type"]) for r in rows] == [
        ("FR-1", 0.5, ""),
        ("FR-2", 1.0, "test"),
    ]
    code, out, _ = run(capsys, "--url", url, "work", "evidence", "--fr", "FR-2")
    assert code == 0 and len(out.splitlines()) == 1 and "ci://2" in out and "test" in out
    code, _, err = run(capsys, "--url", url, "work", "evidence")
    assert code == 2 and "--wp" in err

    code, out, _ = run(capsys, "--url", url, "work", "metrics", "001-login", "--json")
    assert [(m["metric_type"], m["value"], m["wp_id"]) for m in json_lines(out)] == [
        ("tokens", 1200, ids["wp"]),
        ("cost", 0.25, None),
    ]
    code, out, _ = run(capsys, "--url", url, "work", "metrics", "001-login")
    assert "tokens" in out.splitlines()[0] and "1200 tok" in out

    code, out, _ = run(capsys, "--url", url, "work", "governance", "001-login")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("governance contract version 2 of '001-login'")
    assert lines[1].split()[:2] == ["R1", "active"] and lines[2].split()[:2] == ["R2", "inactive"]
    code, out, _ = run(
        capsys, "--url", url, "work", "governance", "001-login", "--version", "1", "--json"
    )
    (contract,) = json_lines(out)
    assert contract["version"] == 1 and [r["rule_id"] for r in contract["rules"]] == ["R1"]
    code, _, err = run(capsys, "--url", url, "work", "governance", "001-login", "--version", "9")
    assert code == 1 and "no governance contract version 9" in err
    code, out, _ = run(capsys, "--url", url, "work", "governance", "002-other")
    assert code == 0 and out == "feature '002-other' has no governance contract\n"
    code, out, _ = run(capsys, "--url", url, "work", "governance", "002-other", "--json")
    assert code == 0 and out == ""

    code, out, _ = run(capsys, "--url", url, "work", "sync", "--json")
    mappings = json_lines(out)
    # least recently synced first
    assert [m["external_id"] for m in mappings] == ["#1", "J-1", "#2"]
    code, out, _ = run(capsys, "--url", url, "work", "sync", "--feature", "001-login", "--json")
    assert sorted(m["external_id"] for m in json_lines(out)) == ["#1", "J-1"]
    code, out, _ = run(capsys, "--url", url, "work", "sync", "--platform", "github", "--json")
    assert sorted(m["external_id"] for m in json_lines(out)) == ["#1", "#2"]
    code, out, _ = run(capsys, "--url", url, "work", "sync", "--older-than", "1h")
    assert code == 0 and len(out.splitlines()) == 1 and "#1" in out
    code, out, _ = run(capsys, "--url", url, "work", "sync", "--older-than", "99999999w")
    assert code == 0 and out == ""

    code, out, _ = run(capsys, "--url", url, "work", "devices", "--json")
    devices = json_lines(out)
    assert [(d["device_id"], d["clock"]) for d in devices] == [
        ("laptop", {"laptop": 3}),
        ("ci", {"ci": 1}),
    ]
    code, out, _ = run(capsys, "--url", url, "work", "devices", "--active-within", "1h")
    assert code == 0 and out.split()[0] == "ci" and len(out.splitlines()) == 1
    code, out, _ = run(capsys, "--url", url, "work", "devices", "--active-within", "99999999w")
    assert len(out.splitlines()) == 2
    for bad in ("1y", "h", "-1h", "99999999999w"):
        code, _, err = run(capsys, "--url", url, "work", "devices", "--active-within", bad)
        assert code == 2 and "--active-within" in err, bad
    code, _, err = run(capsys, "--url", url, "work", "metrics", "nope")
    assert code == 1 and "no feature 'nope'" in err
    code, _, err = run(capsys, "--url", url, "work", "sync", "--feature", "nope")
    assert code == 1 and "no feature 'nope'" in err


def test_edit_a_work_package_and_a_feature(capsys: pytest.CaptureFixture[str], url: str) -> None:
    async def fill(sp: stateport.Stateport) -> int:
        fid = await sp.work.create_feature(Feature(slug="001-login", friendly_name="Login"))
        wp = await sp.work.create_work_package(
            WorkPackage(feature_id=fid, sequence=1, title="Schema", agent_id="agent-1")
        )
        await sp.work.create_evidence(Evidence(wp_id=wp, fr_id="FR-1", artifact_url="pr/7"))
        return wp

    wp = using(url, fill, create=True)
    edit = ("--url", url, "work", "edit", "wp", str(wp), "--actor", "ada")
    code, out, _ = run(
        capsys, *edit, "--pr-state", "open", "--file-scope", "db.py", "--file-scope", "m.py"
    )
    assert code == 0
    assert out == (
        f'work package {wp} (WP01): set pr_state="open", file_scope=["db.py", "m.py"] (actor ada)\n'
    )
    code, out, _ = run(capsys, *edit, "--pr-state", "open")
    assert (code, out) == (0, f"work package {wp} (WP01): nothing to change\n")
    code, out, _ = run(capsys, *edit, "--agent-id", "", "--evidence", "pr/7", "--json")
    stored = one_json(out)
    assert stored["agent_id"] is None and stored["pr_state"] == "open" and stored["id"] == wp
    got = using(url, lambda sp: sp.work.get_work_package(wp))
    assert got is not None and got.agent_id is None and got.file_scope == ("db.py", "m.py")

    feature = ("--url", url, "work", "edit", "feature", "001-login", "--actor", "ada")
    code, out, _ = run(capsys, *feature, "--spec-hash", "ab01")
    assert (code, out) == (0, "feature '001-login': set spec_hash=\"ab01\" (actor ada)\n")
    assert using(url, lambda sp: sp.work.require_feature("001-login")).spec_hash == b"\xab\x01"
    trail = using(url, lambda sp: sp.work.get_audit_trail(1))
    assert [(e.actor, e.transition, e.evidence_refs) for e in trail] == [
        ("ada", 'WP01: set pr_state="open", file_scope=["db.py", "m.py"]', ()),
        ("ada", "WP01: set agent_id=null", ("pr/7",)),
        ("ada", 'set spec_hash="ab01"', ()),
    ]
    for bad, message in (
        (edit, "nothing to change"),
        ((*feature, "--spec-hash", "xyz"), "hexadecimal"),
        (("--url", url, "work", "edit", "wp", "99", "--actor", "a", "--pr-url", "u"), "no work"),
        ((*edit, "--pr-url", "u", "--evidence", "pr/404"), "names no evidence"),
    ):
        code, _, err = run(capsys, *bad)
        assert code == 1 and message in err, err
    assert len(using(url, lambda sp: sp.work.get_audit_trail(1))) == 3  # nothing more written


def test_create_in_a_later_state_is_audited(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(
        capsys,
        *("--url", url, "work", "create", "feature", "010-late", "Late"),
        *("--state", "IMPLEMENT", "--actor", "importer"),
    )
    assert code == 0 and "(IMPLEMENT)" in out
    feature = using(url, lambda sp: sp.work.require_feature("010-late"))
    assert feature.state == "IMPLEMENT"
    trail = using(url, lambda sp: sp.work.get_audit_trail(feature.id))
    assert [e.actor for e in trail] == ["importer"]
    assert "SPECIFY" in trail[0].transition and "PLAN" in trail[0].transition

    code, out, _ = run(
        capsys, "--url", url, "work", "create", "wp", "010-late", "1", "Late WP", "--state", "DOING"
    )
    assert code == 0 and "(DOING)" in out
    wps = using(url, lambda sp: sp.work.list_wps_by_feature(feature.id))
    assert [wp.state for wp in wps] == ["DOING"]
    assert len(using(url, lambda sp: sp.work.get_audit_trail(feature.id))) == 2
    assert using(url, lambda sp: sp.work.verify_audit_chain(feature.id)).ok

    code, _, err = run(
        capsys, "--url", url, "work", "create", "feature", "011-x", "X", "--state", "NOPE"
    )
    assert code != 0 and "invalid choice" in err
    assert using(url, lambda sp: sp.work.get_feature_by_slug("011-x")) is None
