"""A guided tour of a store: ``stateport demo``.

:func:`run_demo` runs :data:`STEPS` in order against an opened store and prints
what each does. A step is a small ``async`` function taking the :class:`DemoRun`;
register more with :func:`step` (they run in the order they are defined).

Everything a run writes lives under keys that carry its run id, so the demo
can be run again and again on the same store; the blob it stores has fixed
content, so a second run shows deduplication.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .digest import ContentDigest
from .domains.knowledge import ArtifactRef, InputBundle, Provenance
from .domains.releases import ReleaseMetadata
from .domains.runs import RunEvent, RunMetadata, RunSummary
from .domains.work import (
    DependencyCycle,
    Feature,
    FeatureState,
    WorkPackage,
    WpDependency,
    WpState,
)
from .errors import Conflict, InvalidTransition, NoPreviousRelease
from .ports.table import KeyRange, NotExists, Put
from .store import Stateport
from .url import redact

__all__ = ["STEPS", "DemoRun", "Step", "new_run_id", "run_demo", "step"]


@dataclass
class DemoRun:
    """What a step works with: the store, the output, and this run's keys."""

    sp: Stateport
    out: TextIO
    run_id: str
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def pk(self) -> str:
        """The partition holding this run's items."""
        return f"demo#{self.run_id}"

    def say(self, line: str = "") -> None:
        """Print one line of the current step."""
        print(f"      {line}" if line else "", file=self.out)


StepFunction = Callable[[DemoRun], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the demo: a title and the function that does it."""

    title: str
    run: StepFunction


STEPS: list[Step] = []
"""The steps of the demo, in order."""


def step(title: str) -> Callable[[StepFunction], StepFunction]:
    """Decorator: append the function to :data:`STEPS` under ``title``."""

    def register(fn: StepFunction) -> StepFunction:
        STEPS.append(Step(title, fn))
        return fn

    return register


def new_run_id() -> str:
    """A run id that sorts by time and does not repeat: ``20240601-120000-1a2b3c``."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def _attrs(item: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in item.items() if k not in ("pk", "sk")}, sort_keys=True)


# --------------------------------------------------------------------------- steps


@step("Put items with sp.items.put")
async def put_items(run: DemoRun) -> None:
    items = [
        {"pk": run.pk, "sk": "profile", "name": "Ada", "plan": "free"},
        {"pk": run.pk, "sk": "note#001", "text": "Buy tea"},
        {"pk": run.pk, "sk": "note#002", "text": "Call Grace"},
        {"pk": run.pk, "sk": "note#003", "text": "Water the plants"},
    ]
    for item in items:
        await run.sp.items.put(item)
        run.say(f"put ({item['pk']}, {item['sk']})  {_attrs(item)}")


@step("Query items back by sort-key prefix")
async def query_by_prefix(run: DemoRun) -> None:
    found = await run.sp.items.query(run.pk, "note#")
    run.say(f"items.query({run.pk!r}, 'note#') -> {len(found)} items, in sort-key order:")
    for item in found:
        run.say(f"  {item['sk']}  {item['text']}")


@step("Transaction with NotExists conditions (succeeds)")
async def transact_ok(run: DemoRun) -> None:
    ops = [
        Put(run.pk, "order#1", {"status": "placed", "total": 42}, condition=NotExists()),
        Put(run.pk, "order#1#line#1", {"sku": "tea", "qty": 2}, condition=NotExists()),
    ]
    await run.sp.table.transact(ops)
    run.say("transact: put order#1 and order#1#line#1, each only if it does not exist yet")
    order = await run.sp.table.get(run.pk, "order#1")
    version = "?" if order is None else order.version
    run.say(f"committed both: order#1 is stored at version {version}")


@step("Transaction that fails with Conflict (applies nothing)")
async def transact_conflict(run: DemoRun) -> None:
    ops = [
        Put(run.pk, "order#2", {"status": "placed", "total": 7}, condition=NotExists()),
        Put(run.pk, "order#1", {"status": "replaced"}, condition=NotExists()),
    ]
    run.say("transact: put order#2 (new) and order#1 (exists), each only if absent")
    try:
        await run.sp.table.transact(ops)
    except Conflict as e:
        run.say(f"Conflict: {e}")
        run.say(f"  op_index={e.op_index}  key={e.key}  condition={e.condition!r}")
    else:
        raise RuntimeError("the transaction should have failed with Conflict")
    order2 = await run.sp.items.get(run.pk, "order#2")
    order1 = await run.sp.items.get(run.pk, "order#1")
    status = None if order1 is None else order1.get("status")
    if order2 is not None or status != "placed":
        raise RuntimeError("part of the failed transaction was applied")
    run.say(f"nothing was applied: order#2 does not exist, order#1 is still {status!r}")


@step("Paged query with a cursor")
async def paged_query(run: DemoRun) -> None:
    pk = f"{run.pk}#events"
    await run.sp.table.transact([Put(pk, f"event#{i:03d}", {"n": i}) for i in range(1, 8)])
    run.say(f"put 7 items event#001..event#007 in partition {pk}")
    cursor: str | None = None
    number = 0
    while True:
        page = await run.sp.table.query(pk, KeyRange.prefix("event#"), limit=3, cursor=cursor)
        number += 1
        keys = ", ".join(item.sk for item in page)
        more = f"next cursor ...{page.cursor[-12:]}" if page.cursor else "no cursor: last page"
        run.say(f"page {number} (limit 3): {keys}  [{more}]")
        if page.cursor is None:
            break
        cursor = page.cursor


@step("Query a secondary index (gsi1)")
async def index_query(run: DemoRun) -> None:
    assignee = f"assignee#ada#{run.run_id}"
    tasks = [
        ("task#1", "2024-07-01", "Write the report"),
        ("task#2", "2024-06-15", "Review the design"),
        ("task#3", "2024-06-20", "Plan the release"),
    ]
    for sk, due, title in tasks:
        attrs = {"title": title, "gsi1pk": assignee, "gsi1sk": f"due#{due}"}
        await run.sp.table.put(run.pk, sk, attrs)
        run.say(f"put ({run.pk}, {sk})  gsi1pk={assignee!r} gsi1sk='due#{due}'")
    page = await run.sp.table.query(assignee, KeyRange.prefix("due#"), index="gsi1")
    run.say(f"query index gsi1 for {assignee!r} -> {len(page)} tasks, by due date:")
    for item in page:
        run.say(f"  {item.attrs['gsi1sk']}  {item.sk}  {item.attrs['title']}")


@step("Store and read back a blob")
async def blob_round_trip(run: DemoRun) -> None:
    data = b"stateport keeps large values as content-addressed blobs.\n" * 100
    already = await run.sp.blobs.contains(ContentDigest.from_bytes(data))
    digest = await run.sp.blobs.put(data)
    how = "already stored: deduplicated" if already else "new"
    run.say(f"blobs.put({len(data)} bytes) -> {digest.short()} ({how})")
    back = await run.sp.blobs.get(digest)
    if back != data:
        raise RuntimeError("the blob read back differs from the one stored")
    run.say(f"blobs.get({digest.short()}) -> {len(back)} bytes, verified against the digest")
    await run.sp.items.put({"pk": run.pk, "sk": "attachment#1", "blob": digest.as_str()})
    run.say(f"put ({run.pk}, attachment#1) referring to the blob by its digest")


@step("Record an agent run: events, then completion (sp.runs)")
async def agent_run(run: DemoRun) -> None:
    spec = await run.sp.cas.put(b'{"agent": "researcher", "model": "small", "tools": ["search"]}')
    run.say(f"cas.put(agent spec) -> {spec.short()}")
    meta = RunMetadata("researcher", git_sha="0a1b2c3", tags={"demo": run.run_id})
    run_id = await run.sp.runs.create_run(spec, meta)
    run.state["run_id"] = run_id
    run.state["spec"] = spec
    run.say(f"runs.create_run -> {run_id} (RUNNING)")
    started = time.monotonic()
    steps = [
        ("graph_started", {"nodes": 3}),
        ("tool_called", {"tool": "search", "query": "durable state"}),
        ("node_exited", {"node": "summarise", "tokens": 412}),
    ]
    for kind, payload in steps:
        event = await run.sp.runs.append_event(run_id, RunEvent(kind, payload))
        run.say(f"append_event -> seq {event.seq}  {kind}  {json.dumps(payload)}")
    try:
        await run.sp.runs.append_event(run_id, RunEvent("duplicate", seq=2))
    except Conflict as e:
        run.say(f"append_event(seq=2) again -> Conflict: {e}")
    final = await run.sp.cas.put(b'{"answer": "use a ledger"}')
    elapsed = int((time.monotonic() - started) * 1000)
    await run.sp.runs.complete_run(run_id, RunSummary(len(steps), elapsed, True, final))
    record = await run.sp.runs.get_run(run_id)
    run.say(f"complete_run -> {record.status.value}, final state {final.short()}")
    try:
        await run.sp.runs.append_event(run_id, RunEvent("too_late"))
    except InvalidTransition as e:
        run.say(f"append_event after completion -> InvalidTransition: {e}")
    events = await run.sp.runs.get_events(run_id)
    run.say(f"get_events -> seqs {[e.seq for e in events]}")
    run.say(f"see it again with: stateport runs show {run_id}  (or: runs events {run_id})")


@step("Promote releases and roll back (sp.releases)")
async def releases(run: DemoRun) -> None:
    name = f"researcher-{run.run_id}"
    first = await run.sp.cas.put(b'{"agent": "researcher", "model": "tiny"}')
    second = run.state.get("spec") or await run.sp.cas.put(b"spec v2")
    for digest, label in ((first, "v1"), (second, "v2")):
        record = await run.sp.releases.promote(name, digest, ReleaseMetadata("demo", label))
        run.say(f"promote {name} {label} -> #{record.seq} {digest.short()}")
    back = await run.sp.releases.rollback(name)
    run.say(f"rollback -> #{back.seq} restores #{back.restores} ({back.spec_digest.short()})")
    try:
        await run.sp.releases.rollback(name)
    except NoPreviousRelease as e:
        run.say(f"rollback again -> NoPreviousRelease: {e}")
    run.say("history, newest first:")
    for r in await run.sp.releases.history(name):
        run.say(f"  #{r.seq} {r.action:8} {r.spec_digest.short()} {r.metadata.version_label}")


@step("Carry a feature through its states, with work packages (sp.work)")
async def work_feature(run: DemoRun) -> None:
    work = run.sp.work
    slug = f"demo-{run.run_id}"
    fid = await work.create_feature(Feature(slug=slug, friendly_name="Demo: user login"))
    run.say(f"create_feature({slug!r}) -> id {fid}, state SPECIFY")
    ids = []
    for seq, title in enumerate(("Schema", "API", "UI"), 1):
        ids.append(
            await work.create_work_package(WorkPackage(feature_id=fid, sequence=seq, title=title))
        )
    await work.add_wp_dependency(WpDependency(wp_id=ids[1], depends_on=ids[0]))
    await work.add_wp_dependency(WpDependency(wp_id=ids[2], depends_on=ids[1]))
    run.say("3 work packages: API depends on Schema, UI on API")
    try:
        await work.add_wp_dependency(WpDependency(wp_id=ids[0], depends_on=ids[2]))
    except DependencyCycle as e:
        run.say(f"Schema -> UI refused: {e}")
    else:
        raise RuntimeError("a dependency cycle was accepted")
    for st in (FeatureState.PLAN, FeatureState.IMPLEMENT):
        await work.update_feature_state(fid, st, actor="demo")
    ready = [wp.title for wp in await work.get_ready_wps(fid)]
    run.say(f"feature at IMPLEMENT; ready to start: {ready}")
    for wp in ids:
        for wp_state in (WpState.DOING, WpState.FOR_REVIEW, WpState.DONE):
            await work.update_wp_state(wp, wp_state, actor="demo-agent")
    try:
        await work.update_feature_state(fid, FeatureState.SPECIFY, actor="demo")
    except InvalidTransition as e:
        run.say(f"IMPLEMENT -> SPECIFY refused (two steps back): {e}")
    else:
        raise RuntimeError("a feature moved two steps back")
    await work.update_feature_state(fid, FeatureState.DONE, actor="demo")
    latest = await work.get_latest_audit_entry(fid)
    run.say(f"every package DONE; audited: {latest.transition if latest else '?'}")


@step("Verify the feature's hash-chained audit trail (sp.work)")
async def work_audit(run: DemoRun) -> None:
    work = run.sp.work
    feature = await work.require_feature(f"demo-{run.run_id}")
    trail = await work.get_audit_trail(feature.id)
    for e in trail[:3]:
        run.say(f"#{e.seq} {e.transition:<28} {e.hash.hex()[:12]} <- {e.prev_hash.hex()[:12]}")
    run.say(f"... {len(trail)} entries in all, each written with its state change")
    result = await work.verify_audit_chain(feature.id)
    if not result.ok:
        raise RuntimeError(f"the audit chain does not verify: {result.describe()}")
    run.say(f"verify_audit_chain -> {result.describe()}")
    run.say(f"export it with: stateport audit head --feature {feature.slug}")


@step("Keep knowledge: artifacts, revisions, relationships, queries (sp.knowledge)")
async def knowledge_graph(run: DemoRun) -> None:
    k = run.sp.knowledge
    name = f"demo-{run.run_id}"
    col = await k.create_collection(name, description="the demo's notes", actor="demo")
    run.state["knowledge_first"] = await k.last_change()  # the collection's record
    run.say(f"create_collection({name!r}) -> {col.id}")
    design = await k.create_artifact(
        col.id,
        "design.md",
        b"# Design\nOne ledger per stream.\n",
        artifact_type="note",
        media_type="text/markdown",
        metadata={"topic": "storage", "status": "draft"},
        actor="demo",
    )
    summary = await k.create_artifact(
        col.id,
        "summary.txt",
        b"Ledgers make appends gap-free.\n",
        artifact_type="summary",
        media_type="text/plain",
        metadata={"topic": "storage", "status": "final"},
        actor="demo",
    )
    run.state["knowledge_artifact"] = design.id
    run.say(f"create_artifact design.md -> {design.id} rev 1, content {design.digest.short()}")
    v2 = await k.update_artifact(
        design.id, content=b"# Design\nOne ledger per stream, gap-free.\n", expected_revision=1
    )
    run.say(
        f"update_artifact(expected_revision=1) -> rev {v2.revision}, content {v2.digest.short()}"
    )
    try:
        await k.update_artifact(design.id, metadata={"status": "stale"}, expected_revision=1)
    except Conflict as e:
        run.say(f"update_artifact(expected_revision=1) again -> Conflict: {e}")
    else:
        raise RuntimeError("a stale compare-and-set was accepted")
    rel = await k.create_relationship(summary.id, "summarizes", design.id, actor="demo")
    run.say(f"create_relationship(summary.txt -summarizes-> design.md) -> {rel.id}")
    drafts = await k.query_artifacts(col.id, metadata={"topic": "storage", "status": "draft"})
    run.say(f"query_artifacts(metadata: storage, draft) -> {[a.name for a in drafts.artifacts]}")
    about = await k.query_artifacts(related_to=summary.id, rel_type="summarizes")
    run.say(f"query_artifacts(summary.txt -summarizes->) -> {[a.name for a in about.artifacts]}")
    revs = [(r.revision, r.digest.short()) for r in await k.list_revisions(design.id)]
    run.say(f"list_revisions(design.md) -> {revs}")
    run.say(f"look at it with: stateport knowledge ls {name}  (or: knowledge show {design.id})")


@step("Record a workflow run and read the change feed (sp.knowledge)")
async def knowledge_workflow(run: DemoRun) -> None:
    k = run.sp.knowledge
    col = await k.find_collection(f"demo-{run.run_id}")
    if col is None:
        raise RuntimeError("the demo's collection is missing")
    source = await k.get_artifact(run.state["knowledge_artifact"])
    op = await k.create_run(
        "summarize",
        inputs=InputBundle((ArtifactRef(source.id, source.revision),)),
        actor="demo",
    )
    await k.set_run_status(op.id, "running")
    step_record = await k.add_step(op.id, "read inputs")
    await k.set_step_status(op.id, step_record.seq, "running")
    await k.set_step_status(op.id, step_record.seq, "succeeded", output={"read": 1})
    out = await k.create_artifact(
        col.id,
        "digest.txt",
        b"Gap-free ledgers.\n",
        artifact_type="summary",
        provenance=Provenance(actor="demo", run_id=op.id),
    )
    done = await k.set_run_status(op.id, "succeeded")
    produced = [a.name for a in await k.list_run_outputs(op.id)]
    run.say(
        f"operation run {op.id}: pending -> running -> {done.status.value}; produced {produced}"
    )
    try:
        await k.add_step(op.id, "too late")
    except InvalidTransition as e:
        run.say(f"add_step after it ended -> InvalidTransition: {e}")
    first = run.state["knowledge_first"]
    changes = await k.list_changes(after=first - 1, limit=100)
    run.say(f"change feed from seq {first}, in commit order:")
    for c in changes:
        if c.collection_id == col.id:
            run.say(f"  {c.seq:>4}  {c.kind.value:<22} {c.details}")
    run.say(f"{out.name} links to its run; follow the feed: stateport knowledge changes --follow")


@step("Schema version")
async def schema_version(run: DemoRun) -> None:
    status = await run.sp.schema_version()
    applied = ", ".join(f"{m.version} {m.name}" for m in status.applied) or "none"
    run.say(f"schema version {status.current} of {status.latest} (applied: {applied})")


# --------------------------------------------------------------------------- running


async def run_demo(
    sp: Stateport,
    out: TextIO,
    *,
    run_id: str | None = None,
    steps: Sequence[Step] | None = None,
) -> None:
    """Run the demo ``steps`` (default :data:`STEPS`) on ``sp``, printing to ``out``."""
    run = DemoRun(sp, out, run_id or new_run_id())
    chosen = list(STEPS if steps is None else steps)
    print(f"demo run {run.run_id} on {redact(sp.url)}", file=out)
    for number, item in enumerate(chosen, 1):
        print(f"\n[{number}/{len(chosen)}] {item.title}", file=out)
        await item.run(run)
    print(f"\ndone: {len(chosen)} steps; this run's items are in partition {run.pk}", file=out)
