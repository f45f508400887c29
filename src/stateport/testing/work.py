"""Conformance tests for work tracking (``sp.work``)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..domains.work import (
    AUDIT_FIELDS,
    AUDIT_SCHEMA,
    AuditEntry,
    ClockOrder,
    DependencyCycle,
    DependencyType,
    DeviceNode,
    Evidence,
    Feature,
    FeatureState,
    GovernanceContract,
    Metric,
    PolicyRule,
    SyncDirection,
    SyncMapping,
    VectorClock,
    WorkPackage,
    WorkStore,
    WpDependency,
    WpState,
)
from ..errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    StateportError,
    ValidationError,
)
from ..ports.engine import Capability
from ..primitives.chain import GENESIS, ChainHead
from ._support import async_test, in_threads, needs, processes
from .store import StoreConformance

__all__ = ["WorkStoreConformance", "recompute_audit_hash"]

FORWARD = [FeatureState.PLAN, FeatureState.IMPLEMENT, FeatureState.REVIEW, FeatureState.DONE]
WP_FORWARD = [WpState.DOING, WpState.FOR_REVIEW, WpState.DONE]


def recompute_audit_hash(entry: AuditEntry) -> bytes:
    """The hash of an audit entry, computed from docs/decisions/0016-audit-chain.md alone
    (no stateport code): each field as u32 name length, name, tag, then the value."""

    def u32(n: int) -> bytes:
        return struct.pack(">I", n)

    def field(name: str, value: Any) -> bytes:
        head = u32(len(name.encode())) + name.encode()
        if value is None:
            return head + b"\x00"
        if isinstance(value, int):
            digits = str(value).encode()
            return head + b"\x01" + u32(len(digits)) + digits
        if isinstance(value, str):
            raw = value.encode()
            return head + b"\x02" + u32(len(raw)) + raw
        out = head + b"\x04" + u32(len(value))
        for s in value:
            out += u32(len(s.encode())) + s.encode()
        return out

    assert entry.timestamp is not None
    stamp = entry.timestamp.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    values = [
        AUDIT_SCHEMA,
        entry.id,
        entry.feature_id,
        entry.seq,
        entry.wp_id,
        entry.wp_sequence,
        stamp,
        entry.actor,
        entry.transition,
        list(entry.evidence_refs),
    ]
    message = b"".join(field(n, v) for n, v in zip(AUDIT_FIELDS, values, strict=True))
    return hashlib.sha256(message + entry.prev_hash).digest()


async def _feature(work: WorkStore, slug: str = "001-login") -> int:
    return await work.create_feature(Feature(slug=slug, friendly_name=f"Feature {slug}"))


async def _wps(work: WorkStore, fid: int, n: int) -> list[int]:
    return [
        await work.create_work_package(WorkPackage(feature_id=fid, sequence=i, title=f"WP {i}"))
        for i in range(1, n + 1)
    ]


async def _finish(work: WorkStore, wp: int) -> None:
    for st in WP_FORWARD:
        await work.update_wp_state(wp, st, actor="tester")


def _race_worker(url: str, fid: int, worker: int, out: Any, step: Any) -> None:
    import stateport

    async def main() -> list[str]:
        won = []
        async with stateport.open(url) as sp:
            for st in FORWARD:
                step.wait(timeout=60)  # every process tries each move at the same time
                try:
                    await sp.work.update_feature_state(fid, st, actor=f"proc-{worker}")
                except InvalidTransition:
                    continue
                won.append(st.value)
        return won

    out.put((worker, asyncio.run(main())))


class WorkStoreConformance(StoreConformance):
    """What every engine must show for ``sp.work``."""

    # ------------------------------------------------------------ features

    @async_test
    async def test_create_and_get_feature(self) -> None:
        async with self.open_store() as sp:
            before = datetime.now(UTC)
            fid = await _feature(sp.work)
            by_id = await sp.work.get_feature_by_id(fid)
            by_slug = await sp.work.get_feature_by_slug("001-login")
            assert by_id is not None and by_id == by_slug
            assert by_id.id == fid and by_id.state is FeatureState.SPECIFY
            assert by_id.target_branch == "main"
            assert by_id.created_at is not None and by_id.created_at >= before
            assert await sp.work.get_feature_by_id(fid + 100) is None
            assert await sp.work.get_feature_by_slug("nope") is None
            assert await _feature(sp.work, "002-other") == fid + 1

    @async_test
    async def test_duplicate_slug_is_a_conflict(self) -> None:
        async with self.open_store() as sp:
            await _feature(sp.work)
            with pytest.raises(Conflict, match="001-login"):
                await _feature(sp.work)
            assert len(await sp.work.list_all_features()) == 1

    @async_test
    async def test_bad_feature_input_is_rejected_and_writes_nothing(self) -> None:
        async with self.open_store() as sp:
            bad: list[Any] = [
                Feature(slug="", friendly_name="x"),
                Feature(slug="a", friendly_name="  "),
                Feature(slug="a", friendly_name="x", state="LATER"),  # type: ignore[arg-type]
                Feature(slug="a", friendly_name="x", spec_hash=b""),
                Feature(slug="a", friendly_name="x", spec_hash="ab"),  # type: ignore[arg-type]
                Feature(slug="a", friendly_name="x", spec_hash=b"x" * 65),
                Feature(slug=" a", friendly_name="x"),
                Feature(slug="a", friendly_name="x", target_branch=""),
                {"slug": "a"},
            ]
            for f in bad:
                with pytest.raises(ValidationError):
                    await sp.work.create_feature(f)
            assert await sp.work.list_all_features() == []
            wrongs: list[Any] = [0, -1, True, "1", 2**63]
            for wrong in wrongs:
                with pytest.raises(ValidationError):
                    await sp.work.get_feature_by_id(wrong)

    @async_test
    async def test_feature_state_machine_is_enforced(self) -> None:
        """Any step forward (the states skipped named in the audit entry), one step
        back before DONE; DONE is final."""
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            with pytest.raises(InvalidTransition, match="SPECIFY"):
                await w.update_feature_state(fid, FeatureState.SPECIFY, actor="ada")
            await w.update_feature_state(fid, "PLAN", actor="ada")
            await w.update_feature_state(fid, FeatureState.SPECIFY, actor="ada")  # back one
            await w.update_feature_state(fid, FeatureState.IMPLEMENT, actor="ada")  # skips PLAN
            with pytest.raises(InvalidTransition, match="allowed: DONE, PLAN, REVIEW"):
                await w.update_feature_state(fid, FeatureState.SPECIFY, actor="ada")  # two back
            await w.update_feature_state(fid, FeatureState.PLAN, actor="ada")
            await w.update_feature_state(fid, FeatureState.DONE, actor="ada")
            for st in FeatureState:
                with pytest.raises(InvalidTransition, match="DONE is final"):
                    await w.update_feature_state(fid, st, actor="ada")
            trail = await w.get_audit_trail(fid)
            assert [e.transition for e in trail] == [
                "SPECIFY -> PLAN",
                "PLAN -> SPECIFY",
                "SPECIFY -> IMPLEMENT (skipped PLAN)",
                "IMPLEMENT -> PLAN",
                "PLAN -> DONE (skipped IMPLEMENT, REVIEW)",
            ]
            assert (await w.verify_audit_chain(fid)).ok

    @async_test
    async def test_state_change_input_errors(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            with pytest.raises(NotFound):
                await w.update_feature_state(fid + 1, FeatureState.PLAN, actor="ada")
            with pytest.raises(ValidationError):
                await w.update_feature_state(fid, "plan", actor="ada")
            with pytest.raises(ValidationError):
                await w.update_feature_state(fid, FeatureState.PLAN, actor="")
            with pytest.raises(ValidationError):
                await w.update_feature_state(fid, FeatureState.PLAN, actor="a", evidence_refs="x")
            assert await w.get_audit_trail(fid) == []
            assert (await w.require_feature(fid)).state is FeatureState.SPECIFY

    @async_test
    async def test_list_features(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            ids = [await _feature(w, f"f-{i}") for i in range(4)]
            await w.update_feature_state(ids[1], FeatureState.PLAN, actor="a")
            await w.update_feature_state(ids[3], FeatureState.PLAN, actor="a")
            planned = await w.list_features_by_state(FeatureState.PLAN)
            assert [f.id for f in planned] == [ids[1], ids[3]]
            assert [f.id for f in await w.list_features_by_state("SPECIFY")] == [ids[0], ids[2]]
            assert [f.slug for f in await w.list_all_features()] == [f"f-{i}" for i in range(4)]
            with pytest.raises(ValidationError):
                await w.list_features_by_state("WAITING")

    # ------------------------------------------------------------ work packages

    @async_test
    async def test_work_packages(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            b = await w.create_work_package(
                WorkPackage(
                    feature_id=fid, sequence=2, title="B", agent_id="bot", file_scope=("a.py",)
                )
            )
            a = await w.create_work_package(WorkPackage(feature_id=fid, sequence=1, title="A"))
            got = await w.get_work_package(b)
            assert got is not None and got.file_scope == ("a.py",) and got.agent_id == "bot"
            assert got.state is WpState.PLANNED and got.feature_id == fid
            assert [p.id for p in await w.list_wps_by_feature(fid)] == [a, b]
            assert await w.get_work_package(b + 10) is None
            with pytest.raises(Conflict, match="sequence 2"):
                await w.create_work_package(WorkPackage(feature_id=fid, sequence=2, title="C"))
            with pytest.raises(NotFound):
                await w.create_work_package(WorkPackage(feature_id=fid + 9, sequence=1, title="x"))
            assert await w.list_wps_by_feature(fid + 9) == []  # an unknown feature has none
            for bad in (
                WorkPackage(feature_id=fid, sequence=-1, title="x"),
                WorkPackage(feature_id=fid, sequence=3, title=""),
                WorkPackage(feature_id=fid, sequence=3, title="x", state="LATER"),  # type: ignore[arg-type]
                WorkPackage(feature_id=fid, sequence=3, title="x", pr_state=""),
                WorkPackage(feature_id=fid, sequence=3, title="x", worktree_path=7),  # type: ignore[arg-type]
                WorkPackage(feature_id=fid, sequence=3, title="x", file_scope="a.py"),  # type: ignore[arg-type]
                WorkPackage(feature_id=0, sequence=3, title="x"),
            ):
                with pytest.raises(ValidationError):
                    await w.create_work_package(bad)
            assert len(await w.list_wps_by_feature(fid)) == 2

    @async_test
    async def test_wp_state_changes_write_their_audit_entry(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            (wp,) = await _wps(w, fid, 1)
            with pytest.raises(InvalidTransition):
                await w.update_wp_state(wp, WpState.DONE, actor="bot")
            await w.create_evidence(Evidence(wp_id=wp, fr_id="FR-1", artifact_url="commit/1"))
            await w.update_wp_state(wp, WpState.DOING, actor="bot", evidence_refs=["commit/1"])
            await w.update_wp_state(wp, WpState.PLANNED, actor="bot")  # given back
            await _finish(w, wp)
            with pytest.raises(InvalidTransition):
                await w.update_wp_state(wp, WpState.DOING, actor="bot")
            with pytest.raises(NotFound):
                await w.update_wp_state(wp + 1, WpState.DOING, actor="bot")
            got = await w.get_work_package(wp)
            assert got is not None and got.state is WpState.DONE
            trail = await w.get_audit_trail(fid)
            assert [e.transition for e in trail] == [
                "WP01: PLANNED -> DOING",
                "WP01: DOING -> PLANNED",
                "WP01: PLANNED -> DOING",
                "WP01: DOING -> FOR_REVIEW",
                "WP01: FOR_REVIEW -> DONE",
            ]
            assert all(e.wp_id == wp and e.wp_sequence == 1 for e in trail)
            assert trail[0].evidence_refs == ("commit/1",) and trail[0].actor == "bot"

    # ------------------------------------------------------------ dependencies

    @async_test
    async def test_dependencies_and_their_errors(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            a, b, c = await _wps(w, fid, 3)
            await w.add_wp_dependency(WpDependency(wp_id=b, depends_on=a))
            await w.add_wp_dependency(
                WpDependency(wp_id=c, depends_on=b, dep_type=DependencyType.FILE_OVERLAP)
            )
            await w.add_wp_dependency(WpDependency(wp_id=c, depends_on=a, dep_type="data"))  # type: ignore[arg-type]
            deps = await w.get_wp_dependencies(c)
            assert [(d.depends_on, d.dep_type) for d in deps] == [
                (b, DependencyType.FILE_OVERLAP),
                (a, DependencyType.DATA),
            ]
            with pytest.raises(DependencyCycle) as cycle:
                await w.add_wp_dependency(WpDependency(wp_id=a, depends_on=c))
            assert cycle.value.cycle[0] == a and cycle.value.cycle[-1] == a
            with pytest.raises(ValidationError, match="itself"):
                await w.add_wp_dependency(WpDependency(wp_id=a, depends_on=a))
            await w.add_wp_dependency(WpDependency(wp_id=b, depends_on=a))  # again: no change
            with pytest.raises(Conflict, match="already depends"):
                await w.add_wp_dependency(WpDependency(wp_id=b, depends_on=a, dep_type="data"))  # type: ignore[arg-type]
            assert len(await w.get_wp_dependencies(b)) == 1
            with pytest.raises(NotFound):
                await w.add_wp_dependency(WpDependency(wp_id=a, depends_on=c + 50))
            assert await w.get_wp_dependencies(c + 50) == []
            with pytest.raises(ValidationError):
                await w.add_wp_dependency(WpDependency(wp_id=b, depends_on=c, dep_type="soft"))  # type: ignore[arg-type]
            other = await _feature(w, "other")
            (x,) = await _wps(w, other, 1)
            with pytest.raises(ValidationError, match="another feature"):
                await w.add_wp_dependency(WpDependency(wp_id=x, depends_on=a))
            assert await w.get_wp_dependencies(a) == []
            assert len(await w.get_wp_dependencies(c)) == 2

    @async_test
    async def test_ready_set_and_execution_order(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            a, b, c, d = await _wps(w, fid, 4)
            for x, y in ((b, a), (c, a), (d, b), (d, c)):
                await w.add_wp_dependency(WpDependency(wp_id=x, depends_on=y))
            assert [p.id for p in await w.get_ready_wps(fid)] == [a]
            order = await w.execution_order(fid)
            assert [[p.id for p in layer] for layer in order] == [[a], [b, c], [d]]
            await w.update_wp_state(a, WpState.DOING, actor="bot")
            assert await w.get_ready_wps(fid) == []
            await w.update_wp_state(a, WpState.FOR_REVIEW, actor="bot")
            await w.update_wp_state(a, WpState.DONE, actor="bot")
            assert [p.id for p in await w.get_ready_wps(fid)] == [b, c]
            await _finish(w, b)
            assert [p.id for p in await w.get_ready_wps(fid)] == [c]
            await _finish(w, c)
            ready = await w.get_ready_wps(fid)
            assert [p.id for p in ready] == [d] and ready[0].title == "WP 4"
            empty = await _feature(w, "empty")
            assert await w.get_ready_wps(empty) == []
            assert await w.get_ready_wps(empty + 1) == []
            assert await w.execution_order(empty + 1) == []

    # ------------------------------------------------------------ audit chain

    @async_test
    async def test_audit_chain_links_and_recomputes_from_the_spec(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            assert await w.get_latest_audit_entry(fid) is None
            await w.update_feature_state(fid, FeatureState.PLAN, actor="ada")
            (wp,) = await _wps(w, fid, 1)
            await w.create_evidence(Evidence(wp_id=wp, fr_id="FR-1", artifact_url="ci/7"))
            eid = await w.append_audit_entry(
                AuditEntry(
                    feature_id=fid, actor="ci", transition="tests passed", evidence_refs=("ci/7",)
                )
            )
            trail = await w.get_audit_trail(fid)
            assert [e.seq for e in trail] == [1, 2] and trail[1].id == eid
            assert trail[0].prev_hash == GENESIS
            assert trail[1].prev_hash == trail[0].hash
            assert await w.get_latest_audit_entry(fid) == trail[1]
            for e in trail:
                assert recompute_audit_hash(e) == e.hash
            result = await w.verify_audit_chain(fid)
            assert result.ok and result.checked == 2 and result.head.hash == trail[1].hash
            assert await w.audit_head(fid) == ChainHead(2, trail[1].hash)

    @async_test
    async def test_append_checks_prev_hash_and_hash(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
            await w.append_audit_entry(
                AuditEntry(feature_id=fid, actor="a", transition="t", prev_hash=GENESIS)
            )
            head = await w.audit_head(fid)
            with pytest.raises(Conflict, match="not the head"):
                await w.append_audit_entry(
                    AuditEntry(feature_id=fid, actor="a", transition="t", prev_hash=GENESIS)
                )
            with pytest.raises(ValidationError, match="hash"):
                await w.append_audit_entry(
                    AuditEntry(
                        feature_id=fid, actor="a", transition="t", timestamp=when, hash=b"\x01" * 32
                    )
                )
            await w.append_audit_entry(
                AuditEntry(
                    feature_id=fid, actor="a", transition="t2", timestamp=when, prev_hash=head.hash
                )
            )
            trail = await w.get_audit_trail(fid)
            assert len(trail) == 2 and trail[1].timestamp == when
            for bad in (
                AuditEntry(feature_id=fid, actor="", transition="t"),
                AuditEntry(feature_id=fid, actor="a", transition=""),
                AuditEntry(feature_id=fid, actor="a", transition="t", prev_hash=b"short"),
                AuditEntry(feature_id=fid, actor="a", transition="t", evidence_refs=(1,)),  # type: ignore[arg-type]
                AuditEntry(feature_id=fid, actor="a", transition="t", wp_sequence=-1),
                AuditEntry(
                    feature_id=fid, actor="a", transition="t", timestamp=datetime(2026, 1, 1)
                ),
            ):
                with pytest.raises(ValidationError):
                    await w.append_audit_entry(bad)
            with pytest.raises(NotFound):
                await w.append_audit_entry(
                    AuditEntry(feature_id=fid + 1, actor="a", transition="t")
                )
            assert await w.get_audit_trail(fid + 1) == []
            assert len(await w.get_audit_trail(fid)) == 2

    @async_test
    async def test_verify_against_an_exported_head(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            empty = await w.audit_head(fid)
            assert empty == ChainHead(0, GENESIS)
            await w.update_feature_state(fid, FeatureState.PLAN, actor="a")
            signed = await w.audit_head(fid)
            await w.update_feature_state(fid, FeatureState.IMPLEMENT, actor="a")
            assert (await w.verify_audit_chain(fid, expected_head=signed)).ok
            assert (await w.verify_audit_chain(fid, expected_head=empty)).ok
            forged = ChainHead(1, b"\x07" * 32)
            result = await w.verify_audit_chain(fid, expected_head=forged)
            assert not result.ok and result.broken is not None and result.broken.seq == 1
            ahead = ChainHead(5, signed.hash)
            assert not (await w.verify_audit_chain(fid, expected_head=ahead)).ok
            assert ChainHead.from_dict(signed.to_dict()) == signed

    # ------------------------------------------------------------ evidence, policies, metrics

    @async_test
    async def test_evidence(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            a, b = await _wps(w, fid, 2)
            e1 = await w.create_evidence(
                Evidence(wp_id=a, fr_id="FR-1", artifact_url="pr/1", confidence=0.5,
                         metadata={"lines": 3})
            )  # fmt: skip
            e2 = await w.create_evidence(Evidence(wp_id=b, fr_id="FR-1", artifact_url="pr/2"))
            await w.create_evidence(Evidence(wp_id=a, fr_id="FR-2", artifact_url="pr/3"))
            assert [e.id for e in await w.get_evidence_by_fr("FR-1")] == [e1, e2]
            by_wp = await w.get_evidence_by_wp(a)
            assert [e.fr_id for e in by_wp] == ["FR-1", "FR-2"]
            assert by_wp[0].metadata == {"lines": 3} and by_wp[0].confidence == 0.5
            assert await w.get_evidence_by_fr("FR-9") == []
            for bad in (
                Evidence(wp_id=a, fr_id="FR-1", artifact_url="x", confidence=1.01),
                Evidence(wp_id=a, fr_id="FR-1", artifact_url="x", confidence=-0.1),
                Evidence(wp_id=a, fr_id="FR-1", artifact_url="x", confidence=math.nan),
                Evidence(wp_id=a, fr_id="", artifact_url="x"),
                Evidence(wp_id=a, fr_id="FR-1", artifact_url="x", metadata={"s": {1, 2}}),
                Evidence(wp_id=a, fr_id="FR-1", artifact_url="x", metadata=[1]),  # type: ignore[arg-type]
            ):
                with pytest.raises(ValidationError):
                    await w.create_evidence(bad)
            with pytest.raises(NotFound):
                await w.create_evidence(Evidence(wp_id=b + 9, fr_id="FR-1", artifact_url="x"))
            assert await w.get_evidence_by_wp(b + 9) == []
            assert len(await w.get_evidence_by_wp(a)) == 2

    @async_test
    async def test_policies_and_metrics(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            p1 = await w.create_policy_rule(PolicyRule(rule_id="FR-REVIEW-001", description="x"))
            await w.create_policy_rule(PolicyRule(rule_id="OLD", description="y", is_active=False))
            assert [p.id for p in await w.list_active_policies()] == [p1]
            with pytest.raises(ValidationError):
                await w.create_policy_rule(PolicyRule(rule_id="", description="x"))
            fid = await _feature(w)
            (wp,) = await _wps(w, fid, 1)
            m = await w.record_metric(
                Metric(
                    feature_id=fid, wp_id=wp, metric_type="lines_changed", value=12, unit="lines"
                )
            )
            await w.record_metric(Metric(feature_id=fid, metric_type="review_time", value=1.5))
            got = await w.get_metrics_by_feature(fid)
            assert [x.metric_type for x in got] == ["lines_changed", "review_time"]
            assert got[0].id == m and got[0].value == 12.0 and got[0].wp_id == wp
            other = await _feature(w, "other")
            with pytest.raises(ValidationError):
                await w.record_metric(Metric(feature_id=other, wp_id=wp, metric_type="x", value=1))
            with pytest.raises(ValidationError):
                await w.record_metric(Metric(feature_id=fid, metric_type="x", value=math.inf))
            with pytest.raises(ValidationError):  # too large for a float
                await w.record_metric(Metric(feature_id=fid, metric_type="x", value=10**400))
            with pytest.raises(NotFound):
                await w.record_metric(Metric(feature_id=other + 5, metric_type="x", value=1))
            assert await w.get_metrics_by_feature(other + 5) == []
            assert await w.get_metrics_by_feature(other) == []

    # ------------------------------------------------------------ governance

    @async_test
    async def test_governance_versions_are_immutable(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            assert await w.get_latest_governance_contract(fid) is None
            rule = PolicyRule(rule_id="FR-1", description="review required")
            await w.create_governance_contract(
                GovernanceContract(feature_id=fid, version=1, rules=(rule,))
            )
            v2 = await w.create_governance_contract(GovernanceContract(feature_id=fid, version=2))
            with pytest.raises(Conflict, match="immutable"):
                await w.create_governance_contract(GovernanceContract(feature_id=fid, version=1))
            one = await w.get_governance_contract(fid, 1)
            assert one is not None and one.rules == (rule,)
            latest = await w.get_latest_governance_contract(fid)
            assert latest is not None and latest.version == 2 and latest.id == v2
            assert await w.get_governance_contract(fid, 3) is None
            with pytest.raises(ValidationError):
                await w.create_governance_contract(GovernanceContract(feature_id=fid, version=0))
            assert await w.get_latest_governance_contract(fid + 1) is None
            with pytest.raises(NotFound):
                await w.create_governance_contract(
                    GovernanceContract(feature_id=fid + 1, version=1)
                )

    # ------------------------------------------------------------ sync mappings

    @async_test
    async def test_sync_mappings(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            old = datetime.now(UTC) - timedelta(hours=2)
            mid = await w.create_sync_mapping(
                SyncMapping(feature_id=fid, platform="plane", external_id="AGILE-1",
                            external_state="Backlog", last_synced_at=old)
            )  # fmt: skip
            got = await w.get_sync_mapping(fid, "plane")
            assert got is not None and got.id == mid and got.external_state == "Backlog"
            assert got.sync_direction is SyncDirection.BIDIRECTIONAL
            assert await w.get_sync_mapping(fid, "github") is None
            with pytest.raises(Conflict):
                await w.create_sync_mapping(
                    SyncMapping(feature_id=fid, platform="plane", external_id="AGILE-2")
                )
            assert [m.id for m in await w.list_stale_sync_mappings(timedelta(hours=1))] == [mid]
            await w.update_sync_mapping_state(mid, "In Progress", datetime.now(UTC))
            assert await w.list_stale_sync_mappings(timedelta(hours=1)) == []
            got = await w.get_sync_mapping(fid, "plane")
            assert got is not None and got.external_state == "In Progress"
            with pytest.raises(NotFound):
                await w.update_sync_mapping_state(mid + 5, "x", datetime.now(UTC))
            with pytest.raises(ValidationError):
                await w.update_sync_mapping_state(mid, "x", datetime(2026, 1, 1))
            with pytest.raises(ValidationError):
                await w.list_stale_sync_mappings(timedelta(seconds=-1))

    # ------------------------------------------------------------ devices and clocks

    @async_test
    async def test_device_nodes_and_clocks(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            laptop = await w.upsert_device_node(
                DeviceNode(device_id="laptop", name="L", clock=VectorClock({"laptop": 3}))
            )
            again = await w.upsert_device_node(
                DeviceNode(device_id="laptop", name="L2", clock=VectorClock({"laptop": 1, "x": 1}))
            )
            assert again == laptop
            node = await w.get_device_node("laptop")
            assert node is not None and node.name == "L2"
            assert node.clock == VectorClock({"laptop": 3, "x": 1})  # merged: never backwards
            await w.upsert_device_node(
                DeviceNode(device_id="old", last_seen=datetime.now(UTC) - timedelta(days=2))
            )
            active = await w.list_active_devices(timedelta(hours=1))
            assert [d.device_id for d in active] == ["laptop"]
            merged = await w.update_device_clock("laptop", VectorClock({"laptop": 2, "y": 4}))
            assert merged == VectorClock({"laptop": 3, "x": 1, "y": 4})
            with pytest.raises(NotFound):
                await w.update_device_clock("nope", VectorClock())
            with pytest.raises(ValidationError):
                await w.update_device_clock("laptop", {"laptop": 1})  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                VectorClock({"a": -1})
            assert VectorClock({"a": 1}).compare(VectorClock({"a": 2})) is ClockOrder.BEFORE
            assert VectorClock({"a": 1}).compare(VectorClock({"b": 1})) is ClockOrder.CONCURRENT

    @async_test
    async def test_concurrent_clock_updates_lose_no_counter(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            await w.upsert_device_node(DeviceNode(device_id="hub"))

            async def tick(worker: int) -> None:
                for i in range(1, 11):
                    await w.update_device_clock("hub", VectorClock({f"n{worker}": i}))

            await asyncio.gather(*(tick(i) for i in range(4)))
            await in_threads(lambda t: tick(4 + t), 3)
            node = await w.get_device_node("hub")
            assert node is not None
            assert node.clock == VectorClock({f"n{i}": 10 for i in range(7)})

    # ------------------------------------------------------------ the source's callers
    # What callers of the source StoragePort rely on (docs/decisions/0019): optional
    # lookups and lists are forgiving, changes to unknown ids are not.

    @async_test
    async def test_optional_lookups_return_none_for_an_unknown_feature(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            unknown = await _feature(w) + 1
            assert await w.get_feature_by_id(unknown) is None
            assert await w.get_governance_contract(unknown, 1) is None
            assert await w.get_latest_governance_contract(unknown) is None
            assert await w.get_sync_mapping(unknown, "plane") is None
            assert await w.get_latest_audit_entry(unknown) is None
            assert await w.get_work_package(99) is None
            assert await w.get_device_node("nowhere") is None

    @async_test
    async def test_lists_under_an_unknown_parent_are_empty(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            unknown = await _feature(w) + 1
            assert await w.list_wps_by_feature(unknown) == []
            assert await w.get_ready_wps(unknown) == []
            assert await w.execution_order(unknown) == []
            assert await w.get_audit_trail(unknown) == []
            assert [e async for e in w.iter_audit_trail(unknown)] == []
            assert await w.get_metrics_by_feature(unknown) == []
            assert await w.get_wp_dependencies(99) == []
            assert await w.get_evidence_by_wp(99) == []
            assert await w.get_evidence_by_fr("FR-unknown") == []

    @async_test
    async def test_changes_to_unknown_ids_raise_not_found_and_write_nothing(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            (wp,) = await _wps(w, fid, 1)
            nf, nw = fid + 1, wp + 1
            calls: list[Any] = [
                lambda: w.update_feature_state(nf, FeatureState.PLAN, actor="a"),
                lambda: w.update_feature(nf, actor="a", spec_hash=b"h"),
                lambda: w.update_wp_state(nw, WpState.DOING, actor="a"),
                lambda: w.update_work_package(nw, actor="a", agent_id="bot"),
                lambda: w.add_wp_dependency(WpDependency(wp_id=nw, depends_on=wp)),
                lambda: w.add_wp_dependency(WpDependency(wp_id=wp, depends_on=nw)),
                lambda: w.create_work_package(WorkPackage(feature_id=nf, sequence=1, title="t")),
                lambda: w.append_audit_entry(AuditEntry(feature_id=nf, actor="a", transition="t")),
                lambda: w.create_evidence(Evidence(wp_id=nw, fr_id="FR-1", artifact_url="x")),
                lambda: w.record_metric(Metric(feature_id=nf, metric_type="m", value=1)),
                lambda: w.record_metric(Metric(feature_id=fid, wp_id=nw, metric_type="m", value=1)),
                lambda: w.create_governance_contract(GovernanceContract(feature_id=nf, version=1)),
                lambda: w.create_sync_mapping(
                    SyncMapping(feature_id=nf, platform="p", external_id="X-1")
                ),
                lambda: w.update_sync_mapping_state(5, "x", datetime.now(UTC)),
                lambda: w.update_device_clock("nowhere", VectorClock({"a": 1})),
                lambda: w.verify_audit_chain(nf),
            ]
            for i, call in enumerate(calls):
                with pytest.raises(NotFound):
                    await call()
                    pytest.fail(f"call {i} did not raise NotFound")
            assert await w.get_audit_trail(fid) == []
            assert [p.id for p in await w.list_wps_by_feature(fid)] == [wp]
            assert await w.get_feature_by_id(nf) is None

    @async_test
    async def test_adding_an_existing_dependency_is_idempotent(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            a, b = await _wps(w, fid, 2)
            dep = WpDependency(wp_id=b, depends_on=a, dep_type=DependencyType.DATA)
            await w.add_wp_dependency(dep)
            before = await w.get_work_package(b)
            await w.add_wp_dependency(dep)  # a retried call: nothing changes
            await in_threads(lambda _: w.add_wp_dependency(dep), 3)
            assert await w.get_wp_dependencies(b) == [dep]
            assert await w.get_work_package(b) == before  # not even its updated_at
            with pytest.raises(Conflict, match="already depends on"):
                await w.add_wp_dependency(WpDependency(wp_id=b, depends_on=a))  # other type
            assert [p.id for p in await w.get_ready_wps(fid)] == [a]

    @async_test
    async def test_metrics_are_ordered_by_time_then_recording_order(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            t0 = datetime(2026, 5, 1, tzinfo=UTC)
            for name, minutes in (("c", 2), ("a", 0), ("d", 2), ("b", 1), ("e", 2)):
                await w.record_metric(
                    Metric(
                        feature_id=fid,
                        metric_type=name,
                        value=1,
                        recorded_at=t0 + timedelta(minutes=minutes),
                    )
                )
            now = await w.record_metric(Metric(feature_id=fid, metric_type="now", value=1))
            got = await w.get_metrics_by_feature(fid)
            assert [m.metric_type for m in got] == ["a", "b", "c", "d", "e", "now"]
            assert got[-1].id == now

    @async_test
    async def test_records_created_in_a_later_state_say_so_in_their_first_entry(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await w.create_feature(
                Feature(slug="late", friendly_name="Late", state=FeatureState.IMPLEMENT),
                actor="importer",
            )
            assert (await w.require_feature(fid)).state is FeatureState.IMPLEMENT
            assert [f.id for f in await w.list_features_by_state("IMPLEMENT")] == [fid]
            a = await w.create_work_package(
                WorkPackage(feature_id=fid, sequence=1, title="done", state=WpState.DONE)
            )
            b = await w.create_work_package(
                WorkPackage(feature_id=fid, sequence=2, title="doing", state=WpState.DOING),
                actor="importer",
            )
            c = await w.create_work_package(WorkPackage(feature_id=fid, sequence=3, title="c"))
            await w.add_wp_dependency(WpDependency(wp_id=c, depends_on=a))
            assert [p.id for p in await w.get_ready_wps(fid)] == [c]  # a counts as DONE
            await w.update_wp_state(b, WpState.FOR_REVIEW, actor="bot")
            await w.update_feature_state(fid, FeatureState.REVIEW, actor="ada")
            trail = await w.get_audit_trail(fid)
            assert [(e.actor, e.transition, e.wp_id) for e in trail] == [
                ("importer", "created in IMPLEMENT (skipped SPECIFY, PLAN)", None),
                ("system", "WP01: created in DONE (skipped PLANNED, DOING, FOR_REVIEW)", a),
                ("importer", "WP02: created in DOING (skipped PLANNED)", b),
                ("bot", "WP02: DOING -> FOR_REVIEW", b),
                ("ada", "IMPLEMENT -> REVIEW", None),
            ]
            assert trail[0].prev_hash == GENESIS
            for e in trail:
                assert recompute_audit_hash(e) == e.hash
            assert (await w.verify_audit_chain(fid)).ok
            with pytest.raises(InvalidTransition):
                await w.update_wp_state(a, WpState.DOING, actor="bot")  # DONE is final
            with pytest.raises(ValidationError):
                await w.create_feature(Feature(slug="x", friendly_name="X"), actor="")
            plain = await _feature(w, "plain")
            assert await w.get_audit_trail(plain) == []  # SPECIFY: nothing to say

    @async_test
    async def test_work_package_fields_are_stored_and_edits_audited(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            wp = await w.create_work_package(
                WorkPackage(
                    feature_id=fid,
                    sequence=1,
                    title="API",
                    agent_id="claude-code",
                    pr_url="https://example.org/pr/1",
                    pr_state="open",
                    file_scope=("api.py",),
                    worktree_path="/work/wt/api",
                )
            )
            got = await w.get_work_package(wp)
            assert got is not None
            assert (got.agent_id, got.pr_url, got.pr_state, got.worktree_path) == (
                "claude-code",
                "https://example.org/pr/1",
                "open",
                "/work/wt/api",
            )
            edited = await w.update_work_package(
                wp, actor="ada", pr_state="merged", file_scope=["api.py", "db.py"], agent_id=None
            )
            assert edited.pr_state == "merged" and edited.agent_id is None
            assert edited.file_scope == ("api.py", "db.py")
            assert edited.pr_url == "https://example.org/pr/1"  # left out: kept
            assert edited == await w.get_work_package(wp)
            same = await w.update_work_package(wp, actor="ada", pr_state="merged")
            assert same == edited  # nothing to change: nothing written
            trail = await w.get_audit_trail(fid)
            assert [(e.actor, e.transition, e.wp_id) for e in trail] == [
                ("ada", 'WP01: set agent_id=null, pr_state="merged", file_scope=["api.py", '
                 '"db.py"]', wp),
            ]  # fmt: skip
            assert (await w.verify_audit_chain(fid)).ok
            for bad in (
                {"pr_state": ""},
                {"file_scope": "a.py"},
                {"worktree_path": 3},
                {"agent_id": "x" * 10_001},
            ):
                with pytest.raises(ValidationError):
                    await w.update_work_package(wp, actor="ada", **bad)
            with pytest.raises(ValidationError):
                await w.update_work_package(wp, actor="", pr_state="closed")
            assert len(await w.get_audit_trail(fid)) == 1

    @async_test
    async def test_edits_and_state_changes_race_without_losing_either(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            (wp,) = await _wps(w, fid, 1)

            async def race(worker: int) -> None:
                if worker == 0:
                    await _finish(w, wp)
                else:
                    for i in range(3):
                        await w.update_work_package(wp, actor="a", worktree_path=f"/w{worker}/{i}")

            await in_threads(race, 3)
            got = await w.get_work_package(wp)
            assert got is not None and got.state is WpState.DONE
            assert got.worktree_path is not None and got.worktree_path.endswith("/2")
            trail = await w.get_audit_trail(fid)
            assert len([e for e in trail if "->" in e.transition]) == 3
            assert (await w.verify_audit_chain(fid)).ok

    @async_test
    async def test_a_feature_spec_hash_is_stored_and_editable(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            digest = hashlib.sha256(b"spec").digest()
            fid = await w.create_feature(Feature(slug="s", friendly_name="S", spec_hash=digest))
            assert (await w.require_feature(fid)).spec_hash == digest
            edited = await w.update_feature(fid, actor="ada", spec_hash=b"\x01" * 32)
            assert edited.spec_hash == b"\x01" * 32
            assert (await w.update_feature(fid, actor="ada", spec_hash=None)).spec_hash is None
            trail = await w.get_audit_trail(fid)
            assert [e.transition for e in trail] == [
                f'set spec_hash="{"01" * 32}"',
                "set spec_hash=null",
            ]

    @async_test
    async def test_evidence_references_must_name_stored_evidence(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            a, b = await _wps(w, fid, 2)
            other = await _feature(w, "other")
            (x,) = await _wps(w, other, 1)
            await w.create_evidence(Evidence(wp_id=x, fr_id="FR-1", artifact_url="pr/9"))
            refused: list[Any] = [
                lambda: w.update_feature_state(fid, "PLAN", actor="a", evidence_refs=["pr/1"]),
                lambda: w.update_wp_state(a, "DOING", actor="a", evidence_refs=["pr/1"]),
                lambda: w.update_work_package(a, actor="a", pr_url="u", evidence_refs=["pr/1"]),
                lambda: w.append_audit_entry(
                    AuditEntry(feature_id=fid, actor="a", transition="t", evidence_refs=("pr/1",))
                ),
                # evidence of another feature does not count
                lambda: w.update_feature_state(fid, "PLAN", actor="a", evidence_refs=["pr/9"]),
            ]
            for call in refused:
                with pytest.raises(NotFound, match="evidence"):
                    await call()
            assert await w.get_audit_trail(fid) == []
            assert (await w.require_feature(fid)).state is FeatureState.SPECIFY
            await w.create_evidence(Evidence(wp_id=b, fr_id="FR-1", artifact_url="pr/1"))
            await w.update_wp_state(a, "DOING", actor="a", evidence_refs=["pr/1", "pr/1"])
            await w.update_feature_state(fid, "PLAN", actor="a", evidence_refs=("pr/1",))
            trail = await w.get_audit_trail(fid)
            assert [e.evidence_refs for e in trail] == [("pr/1", "pr/1"), ("pr/1",)]

    @async_test
    async def test_evidence_stored_before_references_were_checked_still_counts(self) -> None:
        """Evidence written before its artifact URL was indexed (an older version of
        the store) is found the first time a reference to it is not."""
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            (a,) = await _wps(w, fid, 1)
            await w.create_evidence(Evidence(wp_id=a, fr_id="FR-1", artifact_url="pr/old"))
            pk = f"work.evidref#{fid}"
            for item in [i async for i in sp.table.query_all(pk)]:
                await sp.table.delete(pk, item.sk)  # as that older version left it
            await w.update_wp_state(a, "DOING", actor="a", evidence_refs=["pr/old"])
            with pytest.raises(NotFound):
                await w.update_wp_state(a, "FOR_REVIEW", actor="a", evidence_refs=["pr/new"])
            assert len(await w.get_audit_trail(fid)) == 1

    # ------------------------------------------------------------ concurrency

    @async_test
    async def test_racing_transitions_exactly_one_wins_each(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            (wp,) = await _wps(w, fid, 1)
            racers = 4
            # each step starts when every racer has finished the one before; without
            # it a late racer could legally move the state back (IMPLEMENT -> PLAN)
            step = threading.Barrier(racers)

            async def race(worker: int) -> list[str]:
                won = []
                for st in FORWARD:
                    step.wait(timeout=30)
                    try:
                        await w.update_feature_state(fid, st, actor=f"t{worker}")
                    except InvalidTransition:
                        continue
                    won.append(st.value)
                for wst in WP_FORWARD:
                    step.wait(timeout=30)
                    try:
                        await w.update_wp_state(wp, wst, actor=f"t{worker}")
                    except InvalidTransition:
                        continue
                    won.append(wst.value)
                return won

            results = await in_threads(race, racers)
            wins = sorted(s for won in results for s in won)
            expected = sorted([s.value for s in FORWARD] + [s.value for s in WP_FORWARD])
            assert wins == expected  # each transition won exactly once
            trail = await w.get_audit_trail(fid)
            assert len(trail) == len(expected)
            assert (await w.verify_audit_chain(fid)).ok
            assert (await w.require_feature(fid)).state is FeatureState.DONE

    @async_test
    async def test_concurrent_work_on_one_feature_keeps_the_chain(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            wps = await _wps(w, fid, 6)

            async def work_on(i: int) -> None:
                await _finish(w, wps[i])
                await w.append_audit_entry(AuditEntry(feature_id=fid, actor="x", transition="n"))

            await asyncio.gather(*(work_on(i) for i in range(3)))
            await in_threads(lambda t: work_on(3 + t), 3)
            trail = await w.get_audit_trail(fid)
            assert [e.seq for e in trail] == list(range(1, 6 * 4 + 1))
            assert (await w.verify_audit_chain(fid)).ok
            assert [p.state for p in await w.list_wps_by_feature(fid)] == [WpState.DONE] * 6

    @async_test
    async def test_no_cycle_slips_in_between_concurrent_additions(self) -> None:
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            a, b, c = await _wps(w, fid, 3)
            edges = [(a, b), (b, c), (c, a)] * 2

            async def add(i: int) -> str:
                x, y = edges[i]
                try:
                    await w.add_wp_dependency(WpDependency(wp_id=x, depends_on=y))
                except (DependencyCycle, Conflict):
                    return "refused"
                return "added"

            outcomes = await in_threads(add, len(edges))
            # two of the three edges go in (each added twice: the repeat changes nothing);
            # both additions of the third, which would close the cycle, are refused
            assert outcomes.count("refused") == 2
            stored = [d for wp in (a, b, c) for d in await w.get_wp_dependencies(wp)]
            assert len(stored) == 2
            order = await w.execution_order(fid)
            assert sum(len(layer) for layer in order) == 3  # layered whole: acyclic

    @async_test
    async def test_threads_sharing_the_cached_graph_keep_it_consistent(self) -> None:
        """Threads add dependencies to one feature through one store (one cached
        graph), and try edges that would close cycles: what is stored is what
        was accepted, a store with nothing cached agrees, and no cycle got in."""
        async with self.open_store() as sp:
            w = sp.work
            fid = await _feature(w)
            ids = await _wps(w, fid, 12)

            async def add(worker: int) -> list[tuple[int, int]]:
                added = []
                for k in range(8):
                    a, b = ids[(worker * 5 + k * 7) % 12], ids[(worker * 3 + k * 5) % 12]
                    if a == b:
                        continue
                    try:
                        await w.add_wp_dependency(WpDependency(wp_id=a, depends_on=b))
                    except DependencyCycle:
                        continue
                    added.append((a, b))
                return added

            accepted = {e for edges in await in_threads(add, 4) for e in edges}
            stored = {(d.wp_id, d.depends_on) for i in ids for d in await w.get_wp_dependencies(i)}
            assert stored == accepted and stored
            order = await w.execution_order(fid)
            assert sorted(p.id for layer in order for p in layer) == sorted(ids)  # acyclic
            fresh = WorkStore(sp.table)  # nothing cached: reads the graph from the engine
            for a, b in stored:
                with pytest.raises(DependencyCycle):
                    await fresh.add_wp_dependency(WpDependency(wp_id=b, depends_on=a))
                with pytest.raises(DependencyCycle):
                    await w.add_wp_dependency(WpDependency(wp_id=b, depends_on=a))

    @needs(Capability.MULTI_PROCESS)
    def test_processes_race_one_feature_through_its_states(self) -> None:
        url = self.store_url()
        import stateport

        async def create() -> int:
            async with stateport.open(url) as sp:
                return await _feature(sp.work)

        fid = asyncio.run(create())
        ctx = processes()
        out = ctx.Queue()
        step = ctx.Barrier(2)
        procs = [ctx.Process(target=_race_worker, args=(url, fid, i, out, step)) for i in range(2)]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=120)
        assert [p.exitcode for p in procs] == [0, 0]
        wins = sorted(s for _, won in results for s in won)
        assert wins == sorted(s.value for s in FORWARD)

        async def check() -> None:
            async with stateport.open(url) as sp:
                trail = await sp.work.get_audit_trail(fid)
                assert [e.transition.split(" -> ")[1] for e in trail] == [s.value for s in FORWARD]
                assert (await sp.work.verify_audit_chain(fid)).ok

        asyncio.run(check())

    # ------------------------------------------------------------ durability

    @needs(Capability.PERSISTENT)
    def test_data_survives_close_and_reopen(self) -> None:
        url = self.store_url()
        import stateport

        async def write() -> tuple[int, ChainHead]:
            async with stateport.open(url) as sp:
                fid = await _feature(sp.work)
                a, b = await _wps(sp.work, fid, 2)
                await sp.work.add_wp_dependency(WpDependency(wp_id=b, depends_on=a))
                await _finish(sp.work, a)
                return fid, await sp.work.audit_head(fid)

        async def read(fid: int, head: ChainHead) -> None:
            async with stateport.open(url) as sp:
                assert [p.sequence for p in await sp.work.get_ready_wps(fid)] == [2]
                assert (await sp.work.verify_audit_chain(fid, expected_head=head)).ok
                (_, b) = [p.id for p in await sp.work.list_wps_by_feature(fid)]
                deps = await sp.work.get_wp_dependencies(b)
                assert [d.depends_on for d in deps] == [b - 1]
                assert await _feature(sp.work, "second") == fid + 1

        fid, head = asyncio.run(write())
        asyncio.run(read(fid, head))

    @async_test
    async def test_errors_are_stateport_errors(self) -> None:
        async with self.open_store() as sp:
            with pytest.raises(StateportError):
                await sp.work.get_feature_by_slug(None)  # type: ignore[arg-type]
            with pytest.raises(NotFound):
                await sp.work.verify_audit_chain(1)
