"""Conformance tests for moving state: the content digest, copy, export and import.

:class:`SnapshotConformance` copies and snapshots a store of the engine under
test (``open_store``) to and from a second engine (:meth:`other_url`, the
memory engine by default). Its fillers, :data:`FILLERS` and
:func:`fill_every_domain`, write something of every domain through the
stores' public API, and :func:`check_domains_work` proves that the domain
operations continue on a copy as they would have on the source. A new domain
store adds a filler here and its prefixes to :mod:`stateport.domains.registry`.
"""

from __future__ import annotations

import hashlib
import io
import random
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..digest import ContentDigest
from ..domains.council import CouncilRun, CouncilRunEvent, CouncilRunStatus
from ..domains.knowledge import ContextReference, Provenance
from ..domains.registry import DOMAINS, Scope, domain_of
from ..domains.releases import ReleaseMetadata
from ..domains.runs import RunEvent, RunMetadata, RunStatus, RunSummary
from ..domains.work import (
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
from ..errors import Conflict, IntegrityError, InvalidTransition, ValidationError
from ..ports.table import Item
from ._support import async_test
from .store import StoreConformance

if TYPE_CHECKING:
    from ..store import Stateport

__all__ = [
    "EMPTY_DIGEST",
    "FILLERS",
    "SnapshotConformance",
    "check_domains_work",
    "fill_every_domain",
]

EMPTY_DIGEST = hashlib.sha256(
    b"stateport-content-v1\x00" + hashlib.sha256().digest() + hashlib.sha256().digest()
).hexdigest()
"""The content digest of a store with nothing in scope, from its definition."""

Facts = dict[str, Any]
Filler = Callable[["Stateport", Facts], Awaitable[None]]


# --------------------------------------------------------------------------- fillers


async def _fill_runs(sp: Stateport, facts: Facts) -> None:
    spec = await sp.cas.put(b'{"agent": "researcher"}')
    done = await sp.runs.create_run(spec, RunMetadata("researcher", tags={"team": "a"}))
    await sp.runs.append_events(done, [RunEvent("step", {"i": i}) for i in range(3)])
    await sp.runs.complete_run(done, RunSummary(total_events=3, duration_ms=5, success=True))
    failed = await sp.runs.create_run(spec, RunMetadata("critic"))
    await sp.runs.fail_run(failed, RunSummary(total_events=0, duration_ms=1, success=False))
    live = await sp.runs.create_run(spec, RunMetadata("researcher", git_sha="abc123"))
    for i in range(4):
        await sp.runs.append_event(live, RunEvent("tool_called", {"tool": "search", "n": i}))
    facts["runs"] = {"done": done, "live": live, "live_seq": 4, "count": 3}


async def _fill_releases(sp: Stateport, facts: Facts) -> None:
    specs = [await sp.cas.put(f"spec {i}".encode()) for i in range(3)]
    for s in specs:
        await sp.releases.promote("researcher", s, ReleaseMetadata(promoted_by="ci"))
    await sp.releases.promote("critic", specs[0], ReleaseMetadata(promoted_by="ada"))
    await sp.releases.rollback("researcher")  # back to specs[1]
    facts["releases"] = {"specs": [s.as_str() for s in specs]}


async def _fill_cas(sp: Stateport, facts: Facts) -> None:
    big = random.Random(7).randbytes(2 * 1024 * 1024 + 123)  # three chunks
    blobs = [b"", b"small", big]
    facts["cas"] = {"digests": [(await sp.cas.put(b)).as_str() for b in blobs]}


async def _fill_council(sp: Stateport, facts: Facts) -> None:
    await sp.council.create_run(CouncilRun("c-1", graph_json='{"n": 1}', metadata={"q": "é?"}))
    for wave in range(3):
        for kind in ("start", "node"):
            await sp.council.append_event(CouncilRunEvent("c-1", kind, {"w": wave}, wave))
    await sp.council.update_run_status("c-1", CouncilRunStatus.INTERRUPTED)
    await sp.council.truncate_events_after_wave("c-1", 1)
    await sp.council.update_run_status("c-1", CouncilRunStatus.RUNNING)
    await sp.council.create_run(CouncilRun("c-2"))
    await sp.council.update_run_status("c-2", CouncilRunStatus.AWAITING_APPROVAL)
    last = (await sp.council.list_events("c-1"))[-1].seq
    assert last is not None  # the store numbers every event it keeps
    facts["council"] = {"next_seq": last + 1}


async def _fill_work(sp: Stateport, facts: Facts) -> None:
    w = sp.work
    fid = await w.create_feature(Feature(slug="001-login", friendly_name="Login"))
    ids = [
        await w.create_work_package(WorkPackage(feature_id=fid, sequence=n, title=f"WP{n}"))
        for n in (1, 2, 3)
    ]
    await w.add_wp_dependency(WpDependency(wp_id=ids[1], depends_on=ids[0]))
    await w.add_wp_dependency(WpDependency(wp_id=ids[2], depends_on=ids[1]))
    for state in (FeatureState.PLAN, FeatureState.IMPLEMENT):
        await w.update_feature_state(fid, state, actor="ada")
    await w.update_wp_state(ids[0], WpState.DOING, actor="agent-1")
    await w.create_evidence(Evidence(wp_id=ids[0], fr_id="FR-1", artifact_url="s3://x"))
    await w.create_policy_rule(PolicyRule(rule_id="no-friday", description="no deploys"))
    await w.record_metric(Metric(feature_id=fid, metric_type="tokens", value=12.5))
    await w.create_governance_contract(GovernanceContract(feature_id=fid, version=1))
    await w.create_sync_mapping(SyncMapping(feature_id=fid, platform="jira", external_id="J-1"))
    await w.upsert_device_node(DeviceNode(device_id="laptop", clock=VectorClock({"laptop": 2})))
    trail = await w.get_audit_trail(fid)
    facts["work"] = {"feature": fid, "wps": ids, "audit": len(trail)}


async def _fill_items(sp: Stateport, facts: Facts) -> None:
    items: list[dict[str, Any]] = [
        {"pk": "dialogue#1", "sk": "meta", "title": "Design review", "n": 10**37 - 1},
        {"pk": "dialogue#1", "sk": "turn#0001", "text": "héllo ✓ 😀", "f": -0.5e-300},
        {"pk": "note#ü", "sk": "x", "nested": {"a": [1, 2.5, None, True, {"b": []}]}},
    ]
    for item in items:
        await sp.items.put(item)
    await sp.items.put(items[0])  # version 2
    facts["items"] = {"items": items}


async def _fill_knowledge(sp: Stateport, facts: Facts) -> None:
    k = sp.knowledge
    papers = await k.create_collection("papers")
    notes = await k.create_collection("notes")
    run = await k.create_run("summarise")
    a = await k.create_artifact(
        papers.id, "a", b"first draft", artifact_type="paper", metadata={"topic": "dbs"}
    )
    b = await k.create_artifact(
        notes.id, "b", b"a note", artifact_type="note", provenance=Provenance(run_id=run.id)
    )
    await k.update_artifact(a.id, content=b"second draft", metadata={"topic": "storage"})
    await k.create_relationship(b.id, "cites", a.id)
    await k.create_context_package("ctx", [ContextReference.artifact(a.id)])
    facts["knowledge"] = {
        "collection": papers.id,
        "a": a.id,
        "b": b.id,
        "last_change": await k.last_change(),
    }


FILLERS: dict[str, Filler] = {
    "runs": _fill_runs,
    "releases": _fill_releases,
    "cas": _fill_cas,
    "council": _fill_council,
    "work": _fill_work,
    "knowledge": _fill_knowledge,
    "items": _fill_items,
}
"""Something of every registered domain, written through its public API."""


async def fill_every_domain(sp: Stateport) -> Facts:
    """Write something of every domain to ``sp``; return what
    :func:`check_domains_work` needs to know about it."""
    facts: Facts = {}
    for fill in FILLERS.values():
        await fill(sp, facts)
    return facts


async def check_domains_work(sp: Stateport, facts: Facts) -> None:
    """Assert that a store holding a copy of what :func:`fill_every_domain` wrote
    behaves as the source would have: sequences continue, state machines hold,
    audit chains verify, rollbacks walk the same history, ids do not collide."""
    runs = facts["runs"]
    assert len(await sp.runs.list_runs()) == runs["count"]
    appended = await sp.runs.append_event(runs["live"], RunEvent("resumed"))
    assert appended.seq == runs["live_seq"] + 1
    with pytest.raises(InvalidTransition):
        await sp.runs.append_event(runs["done"], RunEvent("late"))
    assert (await sp.runs.get_run(runs["done"])).status is RunStatus.COMPLETED

    specs = facts["releases"]["specs"]
    live = await sp.releases.current("researcher")
    assert live is not None and live.spec_digest.as_str() == specs[1]
    assert len(await sp.releases.history("researcher")) == 4
    back = await sp.releases.rollback("researcher")
    assert back.spec_digest.as_str() == specs[0]

    for d in facts["cas"]["digests"]:
        assert ContentDigest(d) == ContentDigest.from_bytes(await sp.cas.get(d))

    event = await sp.council.append_event(CouncilRunEvent("c-1", "resumed", wave_index=2))
    assert event.seq == facts["council"]["next_seq"]
    await sp.council.update_run_status("c-2", CouncilRunStatus.RUNNING)
    assert await sp.council.mark_interrupted_runs() == 2

    work = facts["work"]
    fid = work["feature"]
    assert (await sp.work.verify_audit_chain(fid)).ok
    await sp.work.update_wp_state(work["wps"][0], WpState.FOR_REVIEW, actor="agent-1")
    trail = await sp.work.get_audit_trail(fid)
    assert len(trail) == work["audit"] + 1
    assert (await sp.work.verify_audit_chain(fid)).ok
    assert [wp.title for wp in await sp.work.get_ready_wps(fid)] == []
    new = await sp.work.create_feature(Feature(slug="002-next", friendly_name="Next"))
    assert new != fid
    with pytest.raises(Conflict):
        await sp.work.create_feature(Feature(slug="001-login", friendly_name="again"))
    assert len(await sp.work.list_active_devices(timedelta(days=1))) == 1

    knowledge = facts["knowledge"]
    k = sp.knowledge
    assert await k.read_content(knowledge["a"]) == b"second draft"
    assert len(await k.list_revisions(knowledge["a"])) == 2
    assert [r.source_id for r in await k.list_relationships(knowledge["a"])] == [knowledge["b"]]
    with pytest.raises(Conflict):  # names stay unique in their collection
        await k.create_artifact(knowledge["collection"], "a", b"x", artifact_type="paper")
    c = await k.create_artifact(knowledge["collection"], "c", b"new", artifact_type="paper")
    assert c.id not in (knowledge["a"], knowledge["b"])
    assert await k.last_change() == knowledge["last_change"] + 1  # the feed continues

    for item in facts["items"]["items"]:
        assert await sp.items.get(item["pk"], item["sk"]) == item


async def _is_empty(sp: Stateport) -> bool:
    page = await sp.table.scan(limit=1)
    blobs = [d async for d in sp.blobs.digests(page_size=1)]
    return not page.items and not blobs and (await sp.digest()).digest == EMPTY_DIGEST


# --------------------------------------------------------------------------- the suite


class SnapshotConformance(StoreConformance):
    """What every engine must show for the digest, copy, export and import."""

    def other_url(self) -> str:
        """A second store to copy to and from (each call: a fresh, empty one)."""
        return "memory://"

    def other_store(self) -> AbstractAsyncContextManager[Stateport]:
        from ..store import open as open_store

        return open_store(self.other_url())

    @async_test
    async def test_every_domain_writes_only_under_its_prefixes(self) -> None:
        registered = {d.name for d in DOMAINS}
        assert set(FILLERS) == registered, "every registered domain needs a filler here"
        for name, fill in FILLERS.items():
            async with self.open_store() as sp:
                await fill(sp, {})
                items = [i async for page in sp.table.scan_pages() for i in page]
                blobs = [d async for d in sp.blobs.digests()]
                if name == "cas":
                    assert items == [] and blobs
                    continue
                assert items, name
                wrong = sorted({i.pk for i in items if domain_of(i.pk) != name})
                assert not wrong, f"{name} wrote partitions of another domain: {wrong}"
                digest = await sp.digest(name)
                assert digest.items == len(items) and digest.by_domain[name] == len(items)

    @async_test
    async def test_copy_there_and_back_keeps_every_domain_working(self) -> None:
        from ..store import copy

        async with self.open_store() as src, self.other_store() as mid:
            facts = await fill_every_domain(src)
            before = await src.digest()
            assert before.items > 0 and before.blobs >= 3
            summary = await copy(src, mid)
            assert summary.digest == before and summary.items_written == before.items
            assert await mid.digest() == before
            async with self.open_store() as back:
                await copy(mid, back)
                assert await back.digest() == before
                await check_domains_work(back, facts)
            assert await src.digest() == before  # a copy reads its source only

    @async_test
    async def test_digest_covers_keys_attributes_versions_and_blobs(self) -> None:
        async with self.open_store() as sp:
            assert (await sp.digest()).digest == EMPTY_DIGEST
            await sp.table.put("p", "s", {"a": 1})
            one = await sp.digest()
            assert (one.items, one.blobs, one.by_domain["items"]) == (1, 0, 1)
            seen = {EMPTY_DIGEST, one.digest}
            changes: list[Callable[[], Awaitable[Any]]] = [
                lambda: sp.table.restore([Item("p", "s", {"a": 1}, 2)]),  # the version
                lambda: sp.table.restore([Item("p", "s", {"a": 1.0}, 2)]),  # 1 vs 1.0
                lambda: sp.table.restore([Item("p", "s", {"a": 1, "b": None}, 2)]),
                lambda: sp.table.put("p", "t", {}),
                lambda: sp.blobs.put(b"x"),
                lambda: sp.table.delete("p", "s"),
            ]
            for change in changes:
                await change()
                digest = (await sp.digest()).digest
                assert digest not in seen
                seen.add(digest)
            async with self.other_store() as other:
                await other.table.restore([Item("p", "t", {}, 1)])
                await other.blobs.put(b"x")
                assert (await other.digest()).digest == digest  # the same content
            assert (await sp.digest("runs")).digest == EMPTY_DIGEST
            cas = await sp.digest("cas")
            assert (cas.items, cas.blobs, cas.by_domain) == (0, 1, {"cas": 1})
            with pytest.raises(ValidationError):
                await sp.digest("nonsense")

    @async_test
    async def test_export_import_round_trip_is_byte_identical(self) -> None:
        async with self.open_store() as src, self.other_store() as mid:
            facts = await fill_every_domain(src)
            first, second = io.BytesIO(), io.BytesIO()
            summary = await src.export_snapshot(first)
            assert summary.digest == await src.digest()
            assert summary.bytes_written == len(first.getvalue())
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "snap.bin"
                path.write_bytes(first.getvalue())
                loaded = await mid.import_snapshot(path)
                assert loaded.digest == summary.digest == await mid.digest()
                await mid.export_snapshot(second)
                assert first.getvalue() == second.getvalue()  # deterministic
                async with self.open_store() as back:
                    await back.import_snapshot(path)
                    assert await back.digest() == summary.digest
                    again = await back.import_snapshot(path, resume=True)  # nothing left
                    assert again.items_written == 0 and again.blobs_written == 0
                    await check_domains_work(back, facts)

    @async_test
    async def test_import_refuses_a_damaged_file_and_writes_nothing(self) -> None:
        async with self.other_store() as src:
            await fill_every_domain(src)
            buffer = io.BytesIO()
            await src.export_snapshot(buffer)
        data = buffer.getvalue()
        rng = random.Random(15)
        positions = sorted({0, len(data) - 1, *(rng.randrange(len(data)) for _ in range(10))})
        cuts = sorted({1, len(data) - 1, *(rng.randrange(len(data)) for _ in range(4))})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "snap.bin"
            async with self.open_store() as sp:
                for at in positions:
                    damaged = bytearray(data)
                    damaged[at] ^= 1 << rng.randrange(8)
                    path.write_bytes(bytes(damaged))
                    with pytest.raises(IntegrityError):
                        await sp.import_snapshot(path)
                    assert await _is_empty(sp), f"byte {at} damaged, yet something was written"
                for cut in cuts:
                    path.write_bytes(data[:cut])
                    with pytest.raises(IntegrityError):
                        await sp.import_snapshot(path)
                    assert await _is_empty(sp), f"cut at {cut}, yet something was written"
                path.write_bytes(data + b"\0")
                with pytest.raises(IntegrityError):
                    await sp.import_snapshot(path)
                assert await _is_empty(sp)

    @async_test
    async def test_import_refuses_items_the_store_cannot_hold(self) -> None:
        from ..store import open as open_store

        async with open_store("memory://?portable=false") as src:
            await src.items.put({"pk": "a", "sk": "1", "v": 1})
            await src.items.put({"pk": "z", "sk": "big", "n": 10**40})  # over 38 digits
            buffer = io.BytesIO()
            await src.export_snapshot(buffer)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "snap.bin"
            path.write_bytes(buffer.getvalue())
            async with self.open_store() as sp:
                assert sp.table.capabilities.portable
                with pytest.raises(ValidationError):
                    await sp.import_snapshot(path)
                assert await _is_empty(sp)

    @async_test
    async def test_a_target_holding_something_in_scope_is_refused(self) -> None:
        from ..store import copy

        async with self.open_store() as src, self.open_store() as dst:
            await fill_every_domain(src)
            await dst.items.put({"pk": "mine", "sk": "1"})
            before = await dst.digest()
            with pytest.raises(Conflict):
                await copy(src, dst)
            with pytest.raises(Conflict):
                await copy(src, dst, only=["items"])
            assert await dst.digest() == before
            # the item is outside these domains: the copy goes ahead
            done = await copy(src, dst, only="runs,cas")
            assert done.digest == await src.digest(Scope.of(["runs", "cas"]))
            assert await dst.digest("runs,cas") == done.digest
            assert (await dst.digest("work")).items == 0
            with pytest.raises(Conflict):
                await copy(src, dst, only=["cas"])

    @async_test
    async def test_an_interrupted_copy_resumes_and_a_repeated_one_changes_nothing(self) -> None:
        from ..snapshot import Progress
        from ..store import copy

        class Stop(Exception):
            pass

        async with self.open_store() as src, self.other_store() as dst:
            await fill_every_domain(src)
            page = 500  # items a copy moves at a time here: a few pages
            await src.table.restore(
                [Item(f"bulk#{i % 7}", f"{i:05d}", {"i": i}, 1 + i % 3) for i in range(4 * page)]
            )
            expected = await src.digest()

            def stop_after_two_pages(state: Progress) -> None:
                if state.items >= 2 * page:
                    raise Stop

            with pytest.raises(Stop):
                await copy(src, dst, progress=stop_after_two_pages, page_size=page)
            partial = await dst.digest()
            assert 0 < partial.items < expected.items
            with pytest.raises(Conflict):
                await copy(src, dst)
            resumed = await copy(src, dst, resume=True, page_size=page)
            assert resumed.digest == expected == await dst.digest()
            assert 0 < resumed.items_written < expected.items
            repeated = await copy(src, dst, resume=True)
            assert repeated.items_written == 0 and repeated.blobs_written == 0
            assert await dst.digest() == expected

    @async_test
    async def test_a_copy_fails_loudly_when_the_target_holds_more(self) -> None:
        from ..store import copy

        async with self.open_store() as src, self.other_store() as dst:
            await src.items.put({"pk": "a", "sk": "1"})
            await dst.items.put({"pk": "b", "sk": "extra"})
            with pytest.raises(IntegrityError, match="digests differ"):
                await copy(src, dst, resume=True)
