"""One valid call of every public method of a :class:`~stateport.Stateport` and its stores.

The engine suite makes each call on a closed store and expects
:class:`~stateport.errors.Unavailable` from the engine: the arguments are valid,
so no call stops at validation before reaching it. :func:`missing_calls` lists
the methods without a call here, so a method added to a store (or a store
declared on ``Stateport``) fails the suite until it has one.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import tempfile
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..digest import ContentDigest
from ..domains.council import CouncilRun, CouncilRunEvent, CouncilRunStatus
from ..domains.knowledge import ContextReference, OperationStatus, RunManifest
from ..domains.releases import ReleaseMetadata
from ..domains.runs import RunEvent, RunMetadata, RunSummary
from ..domains.work import (
    AuditEntry,
    DeviceNode,
    Evidence,
    Feature,
    FeatureState,
    GovernanceContract,
    Metric,
    PolicyRule,
    SyncMapping,
    VectorClock,
    WorkPackage,
    WpDependency,
    WpState,
)
from ..ports.table import Item, KeyRange, Put, StoredItem
from ..store import Stateport

__all__ = ["CALLS", "WITHOUT_ENGINE", "missing_calls", "stores"]

WITHOUT_ENGINE = frozenset(
    {
        "aclose",
        "describe",
        "engine.aclose",
        "engine.describe",
        "table.aclose",
        "table.check_restore",
        "table.check_restore_stored",
        "table.encode_attrs",
        "blobs.aclose",
        "blobs.location",
    }
)
"""Methods that never reach the engine: closing again, and pure computations."""


def stores() -> dict[str, type]:
    """The stores declared on :class:`~stateport.Stateport`: each annotated attribute
    whose class has an async API, by name."""
    return {
        name: cls
        for name, cls in typing.get_type_hints(Stateport).items()
        if isinstance(cls, type)
        and any(inspect.iscoroutinefunction(f) for _, f in inspect.getmembers(cls))
    }


D = ContentDigest.from_bytes(b"closed store")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SUMMARY = RunSummary(total_events=0, duration_ms=0, success=True)


async def drain(source: AsyncIterator[Any]) -> None:
    """Iterate ``source`` to its end."""
    async for _ in source:
        pass


async def _import_empty(sp: Stateport) -> None:
    """Import a sound snapshot of nothing (the import reaches the engine after the header)."""
    from ..domains.registry import Scope
    from ..snapshot.fileformat import SnapshotWriter

    writer = SnapshotWriter(Scope())
    head = writer.start()
    tail, _ = writer.finish()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "empty.spsnap"
        await asyncio.to_thread(path.write_bytes, head + tail)
        await sp.import_snapshot(path)


async def enter(manager: AbstractAsyncContextManager[Any]) -> None:
    """Enter and leave ``manager``."""
    async with manager:
        pass


Call = Callable[["Stateport"], Awaitable[Any]]

CALLS: dict[str, Call] = {
    # the store itself, and its engine
    "migrate": lambda sp: sp.migrate(),
    "schema_version": lambda sp: sp.schema_version(),
    "digest": lambda sp: sp.digest(),
    "export_snapshot": lambda sp: sp.export_snapshot(io.BytesIO()),
    "import_snapshot": lambda sp: _import_empty(sp),
    "engine.migrate": lambda sp: sp.engine.migrate(),
    "engine.schema_version": lambda sp: sp.engine.schema_version(),
    # the table port
    "table.batch_get": lambda sp: sp.table.batch_get([("p", "s")]),
    "table.delete": lambda sp: sp.table.delete("p", "s"),
    "table.get": lambda sp: sp.table.get("p", "s"),
    "table.put": lambda sp: sp.table.put("p", "s", {"v": 1}),
    "table.query": lambda sp: sp.table.query("p", KeyRange.prefix("s")),
    "table.query_all": lambda sp: drain(sp.table.query_all("p")),
    "table.query_pages": lambda sp: drain(sp.table.query_pages("p")),
    "table.transact": lambda sp: sp.table.transact([Put("p", "s", {}), Put("p", "t", {})]),
    "table.update": lambda sp: sp.table.update("p", "s", set={"v": 2}),
    "table.scan": lambda sp: sp.table.scan(),
    "table.scan_pages": lambda sp: drain(sp.table.scan_pages()),
    "table.scan_stored": lambda sp: sp.table.scan_stored("p"),
    "table.scan_stored_pages": lambda sp: drain(sp.table.scan_stored_pages()),
    "table.estimate_count": lambda sp: sp.table.estimate_count(),
    "table.restore": lambda sp: sp.table.restore([Item("p", "s", {}, 3)]),
    "table.restore_stored": lambda sp: sp.table.restore_stored([StoredItem("p", "s", 3, "{}")]),
    "table.watch": lambda sp: enter(sp.table.watch("p")),
    # the generic item API
    "items.delete": lambda sp: sp.items.delete("p", "s"),
    "items.get": lambda sp: sp.items.get("p", "s"),
    "items.put": lambda sp: sp.items.put({"pk": "p", "sk": "s"}),
    "items.query": lambda sp: sp.items.query("p", "s"),
    # the blob port
    "blobs.contains": lambda sp: sp.blobs.contains(D),
    "blobs.delete": lambda sp: sp.blobs.delete(D),
    "blobs.digests": lambda sp: drain(sp.blobs.digests()),
    "blobs.get": lambda sp: sp.blobs.get(D),
    "blobs.open": lambda sp: enter(sp.blobs.open(D)),
    "blobs.put": lambda sp: sp.blobs.put(b"x"),
    "blobs.put_many": lambda sp: sp.blobs.put_many([b"x", b"y"]),
    "blobs.size": lambda sp: sp.blobs.size(D),
    "blobs.verify": lambda sp: sp.blobs.verify(D),
    # content addressing
    "cas.contains": lambda sp: sp.cas.contains(D),
    "cas.delete": lambda sp: sp.cas.delete(D),
    "cas.get": lambda sp: sp.cas.get(D),
    "cas.open": lambda sp: enter(sp.cas.open(D)),
    "cas.put": lambda sp: sp.cas.put(b"x"),
    # runs
    "runs.append_event": lambda sp: sp.runs.append_event("r", RunEvent("k")),
    "runs.append_events": lambda sp: sp.runs.append_events("r", [RunEvent("k")]),
    "runs.cancel_run": lambda sp: sp.runs.cancel_run("r", SUMMARY),
    "runs.complete_run": lambda sp: sp.runs.complete_run("r", SUMMARY),
    "runs.create_run": lambda sp: sp.runs.create_run(D, RunMetadata("agent")),
    "runs.fail_run": lambda sp: sp.runs.fail_run("r", SUMMARY),
    "runs.get_events": lambda sp: sp.runs.get_events("r"),
    "runs.get_events_after": lambda sp: sp.runs.get_events_after("r", 1),
    "runs.get_run": lambda sp: sp.runs.get_run("r"),
    "runs.latest_event": lambda sp: sp.runs.latest_event("r"),
    "runs.list_runs": lambda sp: sp.runs.list_runs(),
    "runs.list_runs_page": lambda sp: sp.runs.list_runs_page(limit=5),
    "runs.watch_events": lambda sp: drain(sp.runs.watch_events("r")),
    # releases
    "releases.current": lambda sp: sp.releases.current("agent"),
    "releases.history": lambda sp: sp.releases.history("agent"),
    "releases.list_releases": lambda sp: sp.releases.list_releases(),
    "releases.promote": lambda sp: sp.releases.promote("agent", D, ReleaseMetadata("ci")),
    "releases.rollback": lambda sp: sp.releases.rollback("agent"),
    # council runs
    "council.append_event": lambda sp: sp.council.append_event(CouncilRunEvent("r", "k")),
    "council.create_run": lambda sp: sp.council.create_run(CouncilRun("r")),
    "council.get_run": lambda sp: sp.council.get_run("r"),
    "council.list_events": lambda sp: sp.council.list_events("r"),
    "council.list_runs": lambda sp: sp.council.list_runs(),
    "council.mark_interrupted_runs": lambda sp: sp.council.mark_interrupted_runs(),
    "council.rewind_run": lambda sp: sp.council.rewind_run("r", 0),
    "council.truncate_events_after_wave": lambda sp: sp.council.truncate_events_after_wave("r", 0),
    "council.update_graph": lambda sp: sp.council.update_graph("r", "{}"),
    "council.update_run_status": lambda sp: sp.council.update_run_status(
        "r", CouncilRunStatus.FAILED
    ),
    # work tracking
    "work.add_wp_dependency": lambda sp: sp.work.add_wp_dependency(
        WpDependency(wp_id=2, depends_on=1)
    ),
    "work.append_audit_entry": lambda sp: sp.work.append_audit_entry(
        AuditEntry(feature_id=1, actor="ada", transition="note")
    ),
    "work.audit_head": lambda sp: sp.work.audit_head(1),
    "work.create_evidence": lambda sp: sp.work.create_evidence(
        Evidence(wp_id=1, fr_id="FR-1", artifact_url="https://e")
    ),
    "work.create_feature": lambda sp: sp.work.create_feature(
        Feature(slug="001-x", friendly_name="X")
    ),
    "work.create_governance_contract": lambda sp: sp.work.create_governance_contract(
        GovernanceContract(feature_id=1, version=1)
    ),
    "work.create_policy_rule": lambda sp: sp.work.create_policy_rule(
        PolicyRule(rule_id="r1", description="rule")
    ),
    "work.create_sync_mapping": lambda sp: sp.work.create_sync_mapping(
        SyncMapping(feature_id=1, platform="github", external_id="42")
    ),
    "work.create_work_package": lambda sp: sp.work.create_work_package(
        WorkPackage(feature_id=1, sequence=1, title="t")
    ),
    "work.execution_order": lambda sp: sp.work.execution_order(1),
    "work.get_audit_trail": lambda sp: sp.work.get_audit_trail(1),
    "work.get_device_node": lambda sp: sp.work.get_device_node("d1"),
    "work.get_evidence_by_fr": lambda sp: sp.work.get_evidence_by_fr("FR-1"),
    "work.get_evidence_by_wp": lambda sp: sp.work.get_evidence_by_wp(1),
    "work.get_feature_by_id": lambda sp: sp.work.get_feature_by_id(1),
    "work.get_feature_by_slug": lambda sp: sp.work.get_feature_by_slug("001-x"),
    "work.get_governance_contract": lambda sp: sp.work.get_governance_contract(1, 1),
    "work.get_latest_audit_entry": lambda sp: sp.work.get_latest_audit_entry(1),
    "work.get_latest_governance_contract": lambda sp: sp.work.get_latest_governance_contract(1),
    "work.get_metrics_by_feature": lambda sp: sp.work.get_metrics_by_feature(1),
    "work.get_ready_wps": lambda sp: sp.work.get_ready_wps(1),
    "work.get_sync_mapping": lambda sp: sp.work.get_sync_mapping(1, "github"),
    "work.get_work_package": lambda sp: sp.work.get_work_package(1),
    "work.get_wp_dependencies": lambda sp: sp.work.get_wp_dependencies(1),
    "work.iter_audit_trail": lambda sp: drain(sp.work.iter_audit_trail(1)),
    "work.list_active_devices": lambda sp: sp.work.list_active_devices(timedelta(hours=1)),
    "work.list_active_policies": lambda sp: sp.work.list_active_policies(),
    "work.list_all_features": lambda sp: sp.work.list_all_features(),
    "work.list_features_by_state": lambda sp: sp.work.list_features_by_state(FeatureState.PLAN),
    "work.list_stale_sync_mappings": lambda sp: sp.work.list_stale_sync_mappings(
        timedelta(hours=1)
    ),
    "work.list_wps_by_feature": lambda sp: sp.work.list_wps_by_feature(1),
    "work.record_metric": lambda sp: sp.work.record_metric(
        Metric(feature_id=1, metric_type="lead_time", value=1.5)
    ),
    "work.require_feature": lambda sp: sp.work.require_feature(1),
    "work.update_device_clock": lambda sp: sp.work.update_device_clock(
        "d1", VectorClock({"d1": 1})
    ),
    "work.update_feature": lambda sp: sp.work.update_feature(1, actor="ada", spec_hash=b"h"),
    "work.update_feature_state": lambda sp: sp.work.update_feature_state(
        1, FeatureState.PLAN, actor="ada"
    ),
    "work.update_sync_mapping_state": lambda sp: sp.work.update_sync_mapping_state(1, "open", T0),
    "work.update_work_package": lambda sp: sp.work.update_work_package(
        1, actor="ada", pr_state="open"
    ),
    "work.update_wp_state": lambda sp: sp.work.update_wp_state(1, WpState.DOING, actor="ada"),
    "work.upsert_device_node": lambda sp: sp.work.upsert_device_node(DeviceNode(device_id="d1")),
    "work.verify_audit_chain": lambda sp: sp.work.verify_audit_chain(1),
    # the knowledge repository
    "knowledge.add_step": lambda sp: sp.knowledge.add_step("r1", "fetch"),
    "knowledge.create_artifact": lambda sp: sp.knowledge.create_artifact(
        "c1", "notes", b"x", artifact_type="text"
    ),
    "knowledge.create_collection": lambda sp: sp.knowledge.create_collection("papers"),
    "knowledge.create_context_package": lambda sp: sp.knowledge.create_context_package(
        "ctx", [ContextReference.artifact("a1")]
    ),
    "knowledge.create_relationship": lambda sp: sp.knowledge.create_relationship(
        "a1", "cites", "a2"
    ),
    "knowledge.create_run": lambda sp: sp.knowledge.create_run("summarise"),
    "knowledge.delete_artifact": lambda sp: sp.knowledge.delete_artifact("a1"),
    "knowledge.delete_collection": lambda sp: sp.knowledge.delete_collection("c1"),
    "knowledge.delete_context_package": lambda sp: sp.knowledge.delete_context_package("p1"),
    "knowledge.delete_relationship": lambda sp: sp.knowledge.delete_relationship("c1.a1.rel_1"),
    "knowledge.entity_changes": lambda sp: sp.knowledge.entity_changes("a1"),
    "knowledge.find_artifact": lambda sp: sp.knowledge.find_artifact("c1", "notes"),
    "knowledge.find_collection": lambda sp: sp.knowledge.find_collection("papers"),
    "knowledge.get_artifact": lambda sp: sp.knowledge.get_artifact("a1"),
    "knowledge.get_collection": lambda sp: sp.knowledge.get_collection("c1"),
    "knowledge.get_context_package": lambda sp: sp.knowledge.get_context_package("p1"),
    "knowledge.get_manifest": lambda sp: sp.knowledge.get_manifest("r1"),
    "knowledge.get_relationship": lambda sp: sp.knowledge.get_relationship("c1.a1.rel_1"),
    "knowledge.get_revision": lambda sp: sp.knowledge.get_revision("a1", 1),
    "knowledge.get_run": lambda sp: sp.knowledge.get_run("r1"),
    "knowledge.last_change": lambda sp: sp.knowledge.last_change(),
    "knowledge.list_artifacts": lambda sp: sp.knowledge.list_artifacts("c1"),
    "knowledge.list_changes": lambda sp: sp.knowledge.list_changes(),
    "knowledge.list_collections": lambda sp: sp.knowledge.list_collections(),
    "knowledge.list_context_packages": lambda sp: sp.knowledge.list_context_packages(),
    "knowledge.list_relationships": lambda sp: sp.knowledge.list_relationships("a1"),
    "knowledge.list_revisions": lambda sp: sp.knowledge.list_revisions("a1"),
    "knowledge.list_run_outputs": lambda sp: sp.knowledge.list_run_outputs("r1"),
    "knowledge.list_runs": lambda sp: sp.knowledge.list_runs(),
    "knowledge.list_steps": lambda sp: sp.knowledge.list_steps("r1"),
    "knowledge.open_content": lambda sp: enter(sp.knowledge.open_content("a1")),
    "knowledge.query_artifacts": lambda sp: sp.knowledge.query_artifacts(artifact_type="text"),
    "knowledge.read_content": lambda sp: sp.knowledge.read_content("a1"),
    "knowledge.rename_collection": lambda sp: sp.knowledge.rename_collection("c1", "books"),
    "knowledge.save_manifest": lambda sp: sp.knowledge.save_manifest(RunManifest("r1")),
    "knowledge.set_run_status": lambda sp: sp.knowledge.set_run_status(
        "r1", OperationStatus.FAILED
    ),
    "knowledge.set_step_status": lambda sp: sp.knowledge.set_step_status(
        "r1", 1, OperationStatus.FAILED
    ),
    "knowledge.traverse": lambda sp: sp.knowledge.traverse("a1"),
    "knowledge.update_artifact": lambda sp: sp.knowledge.update_artifact("a1", content=b"y"),
    "knowledge.watch_changes": lambda sp: drain(sp.knowledge.watch_changes()),
}


def _public(cls: type) -> list[str]:
    return [n for n, _ in inspect.getmembers(cls, callable) if not n.startswith("_")]


def public_methods() -> list[str]:
    """``method`` and ``store.method`` for every public method of ``Stateport`` and of
    the class each store is declared with (a backend's extras are its own business)."""
    return _public(Stateport) + [
        f"{store}.{name}" for store, cls in stores().items() for name in _public(cls)
    ]


def missing_calls() -> list[str]:
    """The public methods of ``Stateport`` and its stores without a call in :data:`CALLS`."""
    return [m for m in public_methods() if m not in CALLS and m not in WITHOUT_ENGINE]
