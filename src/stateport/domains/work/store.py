"""``sp.work``: the work-tracking port (the source ``StoragePort``) on the table port.

Layout (every key starts with ``work.``; see docs/decisions/0015-work-tracking.md)::

    work.ids            / <kind>            id counters: {"last": n}
    work.slug#<slug>    / slug              unique slug -> feature id
    work.feature#<F>    / feature           the feature   (gsi1: by state, gsi2: all)
    work.feature#<F>    / graph             dependency-graph version guard
    work.feature#<F>    / wp#<seq:10>       a work package, with its dependencies
    work.feature#<F>    / g#<seq//128:8>    graph shard: {"<seq>": [dep seqs] if PLANNED,
                                                else "O" DOING, "R" FOR_REVIEW, "D" DONE}
    work.wp#<W>         / wp                where package W lives: {feature_id, sequence}
    work.audit#<F>      / head, e#<seq:20>  the feature's audit chain (a Ledger)
    work.evidence#<E>   / evidence          (gsi1: by work package, gsi2: by requirement)
    work.policy#<P>     / policy            (gsi1: active rules)
    work.metrics#<F>    / <id:20>           metrics of a feature
    work.governance#<F> / v#<version:10>    immutable contract versions
    work.sync#<S>       / mapping           (gsi1: by last sync time)
    work.syncmap#<F>    / <platform>[#wp#<W>]   unique mapping per feature/package and platform
    work.device#<D>     / device            (gsi1: by last seen)

Every state change is one transaction that appends the audit entry, moves the
chain head and updates the feature or package (conditioned on its version).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from ... import _json, _time
from ...errors import Conflict, IntegrityError, InvalidTransition, NotFound, ValidationError
from ...ports.table import (
    Check,
    Exists,
    Item,
    KeyRange,
    NotExists,
    Op,
    Put,
    TablePort,
    Update,
    VersionEquals,
)
from ...primitives.chain import GENESIS, HASH_SIZE, ChainHead, ChainVerification
from ...primitives.ledger import Ledger
from ...primitives.listing import order_key
from . import audit as _audit
from .graph import Graph, find_cycle, layers, ready
from .models import (
    FEATURE_TRANSITIONS,
    MAX_NAME,
    MAX_SEQUENCE,
    WP_TRANSITIONS,
    AuditEntry,
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
    WpDependency,
    WpState,
    check_enum,
    check_id,
    check_name,
    check_number,
    check_optional_text,
    check_strings,
    check_text,
)

__all__ = ["MAX_DEPENDENCIES", "SHARD_SIZE", "DependencyCycle", "WorkStore"]

SHARD_SIZE: Final = 128
"""Work packages per graph shard (by sequence): 128 nodes of at most
:data:`MAX_DEPENDENCIES` dependencies stay under DynamoDB's 400 KB item limit."""

MAX_DEPENDENCIES: Final = 128
"""Dependencies one work package may have."""

_IDS: Final = "work.ids"
_FEATURE_SK: Final = "feature"
_GRAPH_SK: Final = "graph"
_WP_PREFIX: Final = "wp#"
_SHARD_PREFIX: Final = "g#"
_MAX_RETRIES: Final = 1000
_TITLE: Final = 1000
_CACHE: Final = 65536
_GRAPH_CACHE: Final = 16
_VERIFY_PAGE: Final = 5000
_ENTRIES: Final = KeyRange.prefix("e#")
_SHARDS: Final = KeyRange.prefix(_SHARD_PREFIX)


class DependencyCycle(ValidationError):
    """Adding the dependency would close a cycle; ``cycle`` lists the package ids."""

    def __init__(self, message: str, cycle: list[int]) -> None:
        super().__init__(message)
        self.cycle = cycle


# --------------------------------------------------------------------------- keys


def _id20(n: int) -> str:
    return f"{n:020d}"


def _feature_pk(fid: int) -> str:
    return f"work.feature#{fid}"


def _wp_sk(seq: int) -> str:
    return f"{_WP_PREFIX}{seq:010d}"


def _shard_sk(seq: int) -> str:
    return f"{_SHARD_PREFIX}{seq // SHARD_SIZE:08d}"


_CODES: Final = {"DOING": "O", "FOR_REVIEW": "R", "DONE": "D"}


def _node(state: str, deps: list[list[Any]]) -> list[str] | str:
    """A package's entry in its graph shard: the sequences of its dependencies
    (as strings) while it is PLANNED, else one letter for its state."""
    if state == "PLANNED":
        return [str(d[1]) for d in deps]
    return _CODES[state]


def _wp_ptr(wp_id: int) -> str:
    return f"work.wp#{wp_id}"


def _state_gsi(state: str) -> str:
    return f"work.features#{state}"


_ALL_FEATURES: Final = "work.features"
_ACTIVE_POLICIES: Final = "work.policies.active"
_SYNC_INDEX: Final = "work.sync"
_DEVICE_INDEX: Final = "work.devices"


# --------------------------------------------------------------------------- records


_T = TypeVar("_T")
_FIELDS: dict[type, tuple[str, ...]] = {}


def _record(cls: type[_T], a: dict[str, Any], **convert: Callable[[Any], Any]) -> _T:
    """The record ``cls`` from its stored attributes: every field under its own
    name, through ``convert[name]`` where one is given."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return cls(**{n: convert[n](a[n]) if n in convert else a[n] for n in names})


_from_text = _time.from_text


def _feature_of(a: dict[str, Any]) -> Feature:
    return _record(Feature, a, state=FeatureState, created_at=_from_text, updated_at=_from_text)


def _wp_of(a: dict[str, Any]) -> WorkPackage:
    return _record(
        WorkPackage,
        a,
        state=WpState,
        file_scope=tuple,
        created_at=_from_text,
        updated_at=_from_text,
    )


def _policy_attrs(rule: PolicyRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "rule_id": rule.rule_id,
        "description": rule.description,
        "is_active": rule.is_active,
    }


def _policy_of(a: dict[str, Any]) -> PolicyRule:
    return _record(PolicyRule, a)


def _evidence_of(a: dict[str, Any]) -> Evidence:
    return _record(Evidence, a, created_at=_from_text)


def _metric_of(a: dict[str, Any]) -> Metric:
    return _record(Metric, a, recorded_at=_from_text)


def _contract_of(a: dict[str, Any]) -> GovernanceContract:
    return _record(
        GovernanceContract,
        a,
        rules=lambda rules: tuple(_policy_of(r) for r in rules),
        created_at=_from_text,
    )


def _mapping_of(a: dict[str, Any]) -> SyncMapping:
    return _record(SyncMapping, a, sync_direction=SyncDirection, last_synced_at=_from_text)


def _device_of(a: dict[str, Any]) -> DeviceNode:
    return _record(DeviceNode, a, clock=VectorClock, last_seen=_from_text)


def _check_type(value: Any, cls: type, what: str) -> None:
    if not isinstance(value, cls):
        raise ValidationError(f"{what} must be a {cls.__name__}, got {type(value).__name__}")


def _check_sequence(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SEQUENCE:
        raise ValidationError(f"sequence must be an int from 0 to 2**32 - 1, got {value!r}")
    return value


def _check_when(value: Any, what: str) -> datetime | None:
    return None if value is None else _time.check_datetime(value, what)


def _check_age(value: Any, what: str) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValidationError(f"{what} must be a timedelta >= 0, got {value!r}")
    return value


# --------------------------------------------------------------------------- the store


class WorkStore:
    """Features, work packages, dependencies, the audit chain, evidence, policies,
    metrics, governance contracts, sync mappings and device nodes.

    Method names and types follow the source ``StoragePort``. State changes take
    a keyword ``actor`` (required) and write their audit entry in the same
    transaction. Lookups by id return None for an unknown id; operations on an
    unknown id, and lists under an unknown parent, raise :class:`NotFound`.
    """

    def __init__(self, table: TablePort) -> None:
        self.table = table
        self._ledger = Ledger(table, "work.audit", noun="audit chain")
        self._where: OrderedDict[int, tuple[int, int]] = OrderedDict()  # wp -> (feature, seq)
        self._graphs: OrderedDict[int, tuple[int, Graph]] = OrderedDict()
        self._lock = threading.Lock()

    # ---- shared machinery ---------------------------------------------------

    async def _counter_op(self, kind: str) -> tuple[int, Op]:
        item = await self.table.get(_IDS, kind)
        if item is None:
            return 1, Put(_IDS, kind, {"last": 1}, NotExists())
        n = int(item.attrs["last"]) + 1
        return n, Update(_IDS, kind, {"last": n}, condition=VersionEquals(item.version))

    async def _create(
        self,
        kind: str,
        build: Callable[[int], Awaitable[list[Op]] | list[Op]],
        explain: Callable[[Conflict, int], Exception | None] = lambda e, n: e,
    ) -> int:
        """Allocate the next id of ``kind`` and write ``build(id)`` with it, atomically."""
        for _ in range(_MAX_RETRIES):
            ident, counter = await self._counter_op(kind)
            built = build(ident)
            ops = built if isinstance(built, list) else await built
            try:
                await self.table.transact([counter, *ops])
            except Conflict as e:
                if e.op_index == 0:
                    continue  # another writer took this id: take the next
                err = explain(e, ident)
                if err is None:
                    continue
                raise err from None
            return ident
        raise Conflict(f"could not allocate a {kind} id: too many concurrent writers")

    async def _feature_item(self, fid: int) -> Item:
        item = await self.table.get(_feature_pk(fid), _FEATURE_SK)
        if item is None:
            raise NotFound(f"no feature {fid}")
        return item

    async def _locate(self, wp_id: int) -> tuple[int, int]:
        """(feature id, sequence) of a work package; NotFound if there is none."""
        with self._lock:
            hit = self._where.get(wp_id)
        if hit is not None:
            return hit
        item = await self.table.get(_wp_ptr(wp_id), "wp")
        if item is None:
            raise NotFound(f"no work package {wp_id}")
        where = (int(item.attrs["feature_id"]), int(item.attrs["sequence"]))
        self._remember(wp_id, where)
        return where

    def _remember(self, wp_id: int, where: tuple[int, int]) -> None:
        with self._lock:  # the pointer never changes: safe to keep
            self._where[wp_id] = where
            if len(self._where) > _CACHE:
                self._where.popitem(last=False)

    async def _wp_item(self, wp_id: int) -> Item:
        fid, seq = await self._locate(wp_id)
        item = await self.table.get(_feature_pk(fid), _wp_sk(seq))
        if item is None:
            raise IntegrityError(f"work package {wp_id} is indexed but its record is missing")
        return item

    # ---- the audit chain: one transaction per state change -----------------

    async def _audited(
        self,
        fid: int,
        prepare: Callable[[], Awaitable[tuple[dict[str, Any], Sequence[Op]]]],
        *,
        prev_hash: bytes | None = None,
        expect_hash: bytes | None = None,
    ) -> dict[str, Any]:
        """Append one audit entry to feature ``fid``'s chain, with ``prepare``'s ops.

        ``prepare()`` reads what it needs and returns the entry's fields and the
        extra operations (conditioned on versions); it runs again after every
        conflict, so the state machine it checks holds under concurrency. With
        ``prev_hash`` the append is refused (Conflict) unless it is the head.
        """
        stream = str(fid)
        for _ in range(_MAX_RETRIES):
            head_item = await self._ledger.head(stream)
            if head_item is None:
                await self._feature_item(fid)  # NotFound for an unknown feature
                raise IntegrityError(f"the audit chain head of feature {fid} is missing")
            head = _audit.head_of(head_item.attrs)
            if head is None:
                raise IntegrityError(f"the audit chain head of feature {fid} is malformed")
            if prev_hash is not None and prev_hash != head.hash:
                raise Conflict(
                    f"prev_hash {prev_hash.hex()[:16]}... is not the head of feature {fid}'s "
                    f"audit chain ({head.hash.hex()[:16]}..., {head.count} entries)",
                    key=(self._ledger.pk(stream), "head"),
                    condition="prev_hash == head",
                )
            fields, extra = await prepare()
            seq = head.count + 1
            attrs = _audit.entry_attrs(feature_id=fid, seq=seq, prev_hash=head.hash, **fields)
            if expect_hash is not None and expect_hash.hex() != attrs["hash"]:
                raise ValidationError(
                    "the entry's hash does not match its fields: leave hash empty and the "
                    "store computes it (see docs/decisions/0016-audit-chain.md)"
                )
            try:
                await self._ledger.append(
                    stream,
                    [attrs],
                    first_seq=seq,
                    expect_prev={"hash": head.hash.hex()} if seq > 1 else None,
                    head_set={"count": seq, "hash": attrs["hash"]},
                    extra_ops=extra,
                )
            except Conflict:
                await self._check_position(fid, head.count)
                continue  # re-read: with prev_hash, a moved head is then a Conflict
            return {**attrs, "seq": seq}
        raise Conflict(f"feature {fid} kept changing; gave up after {_MAX_RETRIES} tries")

    async def _check_position(self, fid: int, count: int) -> None:
        """After a failed append: IntegrityError if the head and entries disagree."""
        stream = str(fid)
        head = _audit.head_of((await self._ledger.require_head(stream)).attrs)
        if head is None or head.count != count:
            return  # the chain moved: try again
        latest = await self._ledger.latest(stream)
        if (0 if latest is None else latest.seq) != count:
            raise IntegrityError(
                f"the audit chain of feature {fid} is damaged: its head records {count} "
                "entries but the stored entries end elsewhere; run  stateport audit verify"
            )

    # ==================================================================== features

    async def create_feature(self, feature: Feature) -> int:
        """Create a feature in state SPECIFY; return its id. Conflict on a taken slug."""
        _check_type(feature, Feature, "feature")
        slug = check_name(feature.slug, "slug")
        name = check_text(feature.friendly_name, "friendly_name", limit=_TITLE)
        branch = check_name(feature.target_branch, "target_branch")
        state = check_enum(FeatureState, feature.state, "state")
        if state is not FeatureState.SPECIFY:
            raise ValidationError(f"a feature starts in SPECIFY, not {state}")
        now = _time.to_text(_time.now())

        def build(fid: int) -> list[Op]:
            attrs = {
                "id": fid,
                "slug": slug,
                "friendly_name": name,
                "state": state.value,
                "target_branch": branch,
                "created_at": now,
                "updated_at": now,
                "gsi1pk": _state_gsi(state.value),
                "gsi1sk": _id20(fid),
                "gsi2pk": _ALL_FEATURES,
                "gsi2sk": _id20(fid),
            }
            pk = _feature_pk(fid)
            return [
                Put(f"work.slug#{slug}", "slug", {"feature_id": fid}, NotExists()),
                Put(pk, _FEATURE_SK, attrs, NotExists()),
                Put(pk, _GRAPH_SK, {"edges": 0}, NotExists()),
                self._ledger.create_op(
                    str(fid), {"feature_id": fid, "count": 0, "hash": GENESIS.hex()}
                ),
            ]

        def explain(e: Conflict, fid: int) -> Exception | None:
            if e.op_index == 1:
                return Conflict(
                    f"a feature with slug {slug!r} already exists",
                    op_index=e.op_index,
                    key=e.key,
                    condition=e.condition,
                )
            return e

        return await self._create("feature", build, explain)

    async def get_feature_by_slug(self, slug: str) -> Feature | None:
        check_name(slug, "slug")
        claim = await self.table.get(f"work.slug#{slug}", "slug")
        if claim is None:
            return None
        return await self.get_feature_by_id(int(claim.attrs["feature_id"]))

    async def get_feature_by_id(self, id: int) -> Feature | None:
        check_id(id, "feature id")
        item = await self.table.get(_feature_pk(id), _FEATURE_SK)
        return None if item is None else _feature_of(item.attrs)

    async def require_feature(self, ref: int | str) -> Feature:
        """The feature with this id or slug; NotFound if there is none."""
        found = (
            await self.get_feature_by_slug(ref)
            if isinstance(ref, str)
            else await self.get_feature_by_id(ref)
        )
        if found is None:
            raise NotFound(f"no feature {ref!r}")
        return found

    async def update_feature_state(
        self,
        id: int,
        state: FeatureState | str,
        *,
        actor: str,
        evidence_refs: Sequence[str] = (),
    ) -> None:
        """Move a feature to ``state``, writing its audit entry in the same transaction.

        Raises :class:`InvalidTransition` unless the move is allowed (see
        :data:`FEATURE_TRANSITIONS`), :class:`NotFound` for an unknown id.
        """
        fid = check_id(id, "feature id")
        target = check_enum(FeatureState, state, "state")
        who = check_name(actor, "actor")
        refs = check_strings(evidence_refs, "evidence_refs")
        pk = _feature_pk(fid)

        async def prepare() -> tuple[dict[str, Any], Sequence[Op]]:
            item = await self._feature_item(fid)
            current = FeatureState(item.attrs["state"])
            allowed = FEATURE_TRANSITIONS[current]
            if target not in allowed:
                options = ", ".join(sorted(allowed)) or "nothing (DONE is final)"
                raise InvalidTransition(
                    f"feature {item.attrs['slug']!r} is {current}: it cannot move to "
                    f"{target}; from {current} it may move to {options}"
                )
            now = _time.to_text(_time.now())
            update = Update(
                pk,
                _FEATURE_SK,
                {"state": target.value, "updated_at": now, "gsi1pk": _state_gsi(target.value)},
                condition=VersionEquals(item.version),
            )
            fields = {
                "wp_id": None,
                "wp_sequence": None,
                "timestamp": now,
                "actor": who,
                "transition": f"{current} -> {target}",
                "evidence_refs": refs,
            }
            return fields, [update]

        await self._audited(fid, prepare)

    async def list_features_by_state(self, state: FeatureState | str) -> list[Feature]:
        """Features in ``state``, by id."""
        st = check_enum(FeatureState, state, "state")
        return [
            _feature_of(i.attrs)
            async for i in self.table.query_all(_state_gsi(st.value), index="gsi1")
        ]

    async def list_all_features(self) -> list[Feature]:
        """Every feature, by id."""
        return [
            _feature_of(i.attrs) async for i in self.table.query_all(_ALL_FEATURES, index="gsi2")
        ]

    # ==================================================================== work packages

    async def create_work_package(self, wp: WorkPackage) -> int:
        """Create a PLANNED work package; return its id. Sequences are unique per feature."""
        _check_type(wp, WorkPackage, "work package")
        fid = check_id(wp.feature_id, "feature_id")
        seq = _check_sequence(wp.sequence)
        title = check_text(wp.title, "title", limit=_TITLE)
        state = check_enum(WpState, wp.state, "state")
        if state is not WpState.PLANNED:
            raise ValidationError(f"a work package starts in PLANNED, not {state}")
        agent = check_optional_text(wp.agent_id, "agent_id")
        pr_url = check_optional_text(wp.pr_url, "pr_url")
        scope = check_strings(wp.file_scope, "file_scope")
        criteria = check_text(wp.acceptance_criteria, "acceptance_criteria", empty=True)
        await self._feature_item(fid)
        pk = _feature_pk(fid)
        now = _time.to_text(_time.now())
        shard_exists = [True]

        def build(wid: int) -> list[Op]:
            attrs = {
                "id": wid,
                "feature_id": fid,
                "sequence": seq,
                "title": title,
                "state": state.value,
                "agent_id": agent,
                "pr_url": pr_url,
                "file_scope": list(scope),
                "acceptance_criteria": criteria,
                "created_at": now,
                "updated_at": now,
                "deps": [],
            }
            node = {str(seq): _node(state.value, [])}
            shard: Op = (
                Update(pk, _shard_sk(seq), node)
                if shard_exists[0]
                else Put(pk, _shard_sk(seq), node, NotExists())
            )
            return [
                Put(pk, _wp_sk(seq), attrs, NotExists()),
                Put(_wp_ptr(wid), "wp", {"feature_id": fid, "sequence": seq}, NotExists()),
                shard,
                Check(pk, _FEATURE_SK, Exists()),
            ]

        def explain(e: Conflict, wid: int) -> Exception | None:
            if e.op_index == 1:
                return Conflict(
                    f"feature {fid} already has a work package with sequence {seq}",
                    op_index=e.op_index,
                    key=e.key,
                    condition=e.condition,
                )
            if e.op_index == 3:
                shard_exists[0] = not shard_exists[0]  # created or missing: the other op
                return None
            if e.op_index == 4:
                return NotFound(f"no feature {fid}")
            return e

        wid = await self._create("wp", build, explain)
        self._remember(wid, (fid, seq))
        return wid

    async def get_work_package(self, id: int) -> WorkPackage | None:
        check_id(id, "work package id")
        try:
            item = await self._wp_item(id)
        except NotFound:
            return None
        return _wp_of(item.attrs)

    async def update_wp_state(
        self,
        id: int,
        state: WpState | str,
        *,
        actor: str,
        evidence_refs: Sequence[str] = (),
    ) -> None:
        """Move a work package to ``state``, writing its audit entry (on its feature's
        chain) in the same transaction. :class:`InvalidTransition` unless allowed
        (see :data:`WP_TRANSITIONS`); :class:`NotFound` for an unknown id."""
        wid = check_id(id, "work package id")
        target = check_enum(WpState, state, "state")
        who = check_name(actor, "actor")
        refs = check_strings(evidence_refs, "evidence_refs")
        fid, seq = await self._locate(wid)
        pk = _feature_pk(fid)

        async def prepare() -> tuple[dict[str, Any], Sequence[Op]]:
            item = await self._wp_item(wid)
            current = WpState(item.attrs["state"])
            allowed = WP_TRANSITIONS[current]
            if target not in allowed:
                options = ", ".join(sorted(allowed)) or "nothing (DONE is final)"
                raise InvalidTransition(
                    f"work package {wid} (WP{seq:02d}) is {current}: it cannot move to "
                    f"{target}; from {current} it may move to {options}"
                )
            now = _time.to_text(_time.now())
            ops: list[Op] = [
                Update(
                    pk,
                    _wp_sk(seq),
                    {"state": target.value, "updated_at": now},
                    condition=VersionEquals(item.version),
                ),
                Update(pk, _shard_sk(seq), {str(seq): _node(target.value, item.attrs["deps"])}),
            ]
            fields = {
                "wp_id": wid,
                "wp_sequence": seq,
                "timestamp": now,
                "actor": who,
                "transition": f"WP{seq:02d}: {current} -> {target}",
                "evidence_refs": refs,
            }
            return fields, ops

        await self._audited(fid, prepare)

    async def list_wps_by_feature(self, feature_id: int) -> list[WorkPackage]:
        """The feature's work packages, by sequence."""
        fid = check_id(feature_id, "feature_id")
        await self._feature_item(fid)
        return [
            _wp_of(i.attrs)
            async for i in self.table.query_all(_feature_pk(fid), KeyRange.prefix(_WP_PREFIX))
        ]

    # ---- dependencies ------------------------------------------------------------

    async def _graph(self, fid: int, version: int) -> Graph:
        """The feature's dependency graph as of graph version ``version``."""
        with self._lock:
            hit = self._graphs.get(fid)
        if hit is not None and hit[0] == version:
            return hit[1]
        graph = Graph()
        async for item in self.table.query_all(_feature_pk(fid), KeyRange.prefix(_WP_PREFIX)):
            a = item.attrs
            for d in a["deps"]:
                graph.add(a["id"], d[0])
        after = await self.table.get(_feature_pk(fid), _GRAPH_SK)
        if after is None or after.version != version:
            raise _GraphMoved
        with self._lock:
            self._graphs[fid] = (version, graph)
            self._graphs.move_to_end(fid)
            if len(self._graphs) > _GRAPH_CACHE:
                self._graphs.popitem(last=False)
        return graph

    def _graph_added(self, fid: int, version: int, a: int, b: int) -> None:
        with self._lock:
            hit = self._graphs.get(fid)
            if hit is not None and hit[0] == version:
                hit[1].add(a, b)
                self._graphs[fid] = (version + 1, hit[1])

    async def add_wp_dependency(self, dep: WpDependency) -> None:
        """Record that ``dep.wp_id`` depends on ``dep.depends_on``.

        Both must exist (:class:`NotFound`) in the same feature; a package
        cannot depend on itself, nor twice on the same one (:class:`Conflict`),
        nor close a cycle (:class:`DependencyCycle`, a ValidationError naming it).
        Dependency changes of a feature are serialized by its graph version, so
        no cycle can slip in between concurrent additions.
        """
        _check_type(dep, WpDependency, "dependency")
        wid = check_id(dep.wp_id, "wp_id")
        on = check_id(dep.depends_on, "depends_on")
        kind = check_enum(DependencyType, dep.dep_type, "dep_type")
        if wid == on:
            raise ValidationError(f"work package {wid} cannot depend on itself")
        fid, seq = await self._locate(wid)
        other_fid, on_seq = await self._locate(on)
        if other_fid != fid:
            raise ValidationError(
                f"work package {wid} (feature {fid}) cannot depend on work package {on} "
                f"of another feature ({other_fid})"
            )
        pk = _feature_pk(fid)
        for _ in range(_MAX_RETRIES):
            guard = await self.table.get(pk, _GRAPH_SK)
            if guard is None:
                raise IntegrityError(f"the dependency graph record of feature {fid} is missing")
            item = await self._wp_item(wid)
            deps: list[list[Any]] = item.attrs["deps"]
            if any(d[0] == on for d in deps):
                raise Conflict(f"work package {wid} already depends on {on}")
            if len(deps) >= MAX_DEPENDENCIES:
                raise ValidationError(
                    f"work package {wid} has {len(deps)} dependencies; the limit is "
                    f"{MAX_DEPENDENCIES}"
                )
            try:
                graph = await self._graph(fid, guard.version)
            except _GraphMoved:
                continue
            cycle = find_cycle(graph, wid, on)
            if cycle is not None:
                shown = " -> ".join(str(i) for i in cycle)
                raise DependencyCycle(
                    f"work package {wid} cannot depend on {on}: that would close the "
                    f"cycle {shown} (each depends on the next)",
                    cycle,
                )
            new_deps = [*deps, [on, on_seq, kind.value]]
            now = _time.to_text(_time.now())
            ops: list[Op] = [
                Update(
                    pk,
                    _GRAPH_SK,
                    {"edges": int(guard.attrs.get("edges", 0)) + 1},
                    condition=VersionEquals(guard.version),
                ),
                Update(
                    pk,
                    _wp_sk(seq),
                    {"deps": new_deps, "updated_at": now},
                    condition=VersionEquals(item.version),
                ),
                Update(
                    pk,
                    _shard_sk(seq),
                    {str(seq): _node(item.attrs["state"], new_deps)},
                ),
            ]
            try:
                await self.table.transact(ops)
            except Conflict as e:
                if e.op_index in (0, 1):
                    continue
                raise
            self._graph_added(fid, guard.version, wid, on)
            return
        raise Conflict(f"the dependencies of feature {fid} kept changing; gave up")

    async def get_wp_dependencies(self, wp_id: int) -> list[WpDependency]:
        """What ``wp_id`` depends on, in the order the dependencies were added."""
        wid = check_id(wp_id, "wp_id")
        item = await self._wp_item(wid)
        return [
            WpDependency(wp_id=wid, depends_on=d[0], dep_type=DependencyType(d[2]))
            for d in item.attrs["deps"]
        ]

    async def _wps_by_seq(self, fid: int, seqs: Sequence[int]) -> list[WorkPackage]:
        pk = _feature_pk(fid)
        out: list[WorkPackage] = []
        for it in await self.table.batch_get([(pk, _wp_sk(s)) for s in seqs]):
            if it is None:
                raise IntegrityError(f"feature {fid}: a work package record is missing")
            out.append(_wp_of(it.attrs))
        return out

    async def get_ready_wps(self, feature_id: int) -> list[WorkPackage]:
        """PLANNED packages of the feature whose dependencies are all DONE, by sequence."""
        fid = check_id(feature_id, "feature_id")
        nodes: dict[str, list[str] | str] = {}
        pk = _feature_pk(fid)
        # a few large items: the whole graph in one or two round trips
        async for items in self.table.query_pages(pk, _SHARDS, page_size=64):
            for item in items:
                nodes.update(item.attrs)
        if not nodes:
            await self._feature_item(fid)
            return []
        return await self._wps_by_seq(fid, ready(nodes))

    async def execution_order(self, feature_id: int) -> list[list[WorkPackage]]:
        """The packages in layers: layer 0 depends on nothing, each later layer only
        on earlier ones; within a layer by sequence. For planning parallel work."""
        wps = {}
        deps: dict[int, tuple[int, list[int]]] = {}
        fid = check_id(feature_id, "feature_id")
        await self._feature_item(fid)
        async for i in self.table.query_all(_feature_pk(fid), KeyRange.prefix(_WP_PREFIX)):
            wp = _wp_of(i.attrs)
            wps[wp.id] = wp
            deps[wp.id] = (wp.sequence, [d[0] for d in i.attrs["deps"]])
        return [[wps[i] for i in layer] for layer in layers(deps)]

    # ==================================================================== audit

    async def append_audit_entry(self, entry: AuditEntry) -> int:
        """Append an entry to its feature's chain; return its id.

        ``prev_hash``, when given, must be the chain's head (else
        :class:`Conflict`); when empty the store links to the head itself.
        ``hash``, when given, must equal the hash the store computes.
        ``timestamp`` defaults to now. ``wp_id``, when given, must belong to the
        feature; ``wp_sequence`` is then filled in.
        """
        _check_type(entry, AuditEntry, "audit entry")
        fid = check_id(entry.feature_id, "feature_id")
        who = check_name(entry.actor, "actor")
        what = check_text(entry.transition, "transition", limit=_TITLE)
        refs = check_strings(entry.evidence_refs, "evidence_refs")
        when = _check_when(entry.timestamp, "timestamp")
        wp_seq = entry.wp_sequence
        if wp_seq is not None:
            _check_sequence(wp_seq)
        prev = _check_hash(entry.prev_hash, "prev_hash")
        expect = _check_hash(entry.hash, "hash")
        wp_id = entry.wp_id
        if wp_id is not None:
            check_id(wp_id, "wp_id")
            owner, seq = await self._locate(wp_id)
            if owner != fid:
                raise ValidationError(f"work package {wp_id} belongs to feature {owner}, not {fid}")
            if wp_seq is not None and wp_seq != seq:
                raise ValidationError(f"work package {wp_id} has sequence {seq}, not {wp_seq}")
            wp_seq = seq
        # an unknown feature is NotFound inside _audited, which reads the chain head anyway

        async def prepare() -> tuple[dict[str, Any], Sequence[Op]]:
            fields = {
                "wp_id": wp_id,
                "wp_sequence": wp_seq,
                "timestamp": _time.to_text(when or _time.now()),
                "actor": who,
                "transition": what,
                "evidence_refs": refs,
            }
            return fields, [Check(_feature_pk(fid), _FEATURE_SK, Exists())]

        attrs = await self._audited(fid, prepare, prev_hash=prev, expect_hash=expect)
        return _audit.audit_id(fid, attrs["seq"])

    async def get_audit_trail(self, feature_id: int) -> list[AuditEntry]:
        """Every entry of the feature's chain, in chain order."""
        fid = check_id(feature_id, "feature_id")
        await self._feature_item(fid)
        return [_audit.entry_of(fid, e.seq, e.attrs) for e in await self._ledger.entries(str(fid))]

    async def get_latest_audit_entry(self, feature_id: int) -> AuditEntry | None:
        fid = check_id(feature_id, "feature_id")
        await self._feature_item(fid)
        latest = await self._ledger.latest(str(fid))
        return None if latest is None else _audit.entry_of(fid, latest.seq, latest.attrs)

    async def verify_audit_chain(
        self, feature_id: int, *, expected_head: ChainHead | None = None
    ) -> ChainVerification:
        """Recompute the feature's chain end to end; return success or the first break.

        Detects a change to any stored field of any entry, a deleted, inserted
        or reordered entry, and a truncated tail (the head is stored apart from
        the entries). With ``expected_head`` (an :meth:`audit_head` exported
        earlier) it also detects a chain rewritten or truncated together with
        its stored head.
        """
        fid = check_id(feature_id, "feature_id")
        if expected_head is not None:
            _check_type(expected_head, ChainHead, "expected_head")
        await self._feature_item(fid)
        stream = str(fid)
        head_item = await self._ledger.head(stream)
        stored = None if head_item is None else _audit.head_of(head_item.attrs)
        pages = self.table.query_pages(self._ledger.pk(stream), _ENTRIES, page_size=_VERIFY_PAGE)
        return await _audit.verify_pages(fid, pages, stored, expected_head)

    async def audit_head(self, feature_id: int) -> ChainHead:
        """The verified head of the feature's chain, to export and sign off.

        Raises :class:`IntegrityError` if the chain does not verify.
        """
        result = await self.verify_audit_chain(feature_id)
        if not result.ok:
            raise IntegrityError(f"feature {feature_id}: audit chain {result.describe()}")
        return result.head

    # ==================================================================== evidence

    async def _wp_check(self, wp_id: int, fid: int | None = None) -> tuple[int, Op]:
        """(feature id, an op checking the package exists) for ``wp_id``."""
        owner, _ = await self._locate(wp_id)
        if fid is not None and owner != fid:
            raise ValidationError(f"work package {wp_id} belongs to feature {owner}, not {fid}")
        return owner, Check(_wp_ptr(wp_id), "wp", Exists())

    async def create_evidence(self, evidence: Evidence) -> int:
        """Store evidence for a work package; return its id. Confidence is 0..1."""
        _check_type(evidence, Evidence, "evidence")
        wid = check_id(evidence.wp_id, "wp_id")
        fr = check_name(evidence.fr_id, "fr_id")
        url = check_text(evidence.artifact_url, "artifact_url")
        confidence = check_number(evidence.confidence, "confidence")
        if not 0.0 <= confidence <= 1.0:
            raise ValidationError(f"confidence must be from 0.0 to 1.0, got {confidence!r}")
        etype = check_text(evidence.evidence_type, "evidence_type", limit=MAX_NAME, empty=True)
        meta = evidence.metadata
        if meta is not None:
            _json.as_mapping(meta, "metadata")
            _json.check_json(meta, portable=self.table.capabilities.portable, where="metadata")
        _, check = await self._wp_check(wid)
        now = _time.to_text(_time.now())

        def build(eid: int) -> list[Op]:
            attrs = {
                "id": eid,
                "wp_id": wid,
                "fr_id": fr,
                "artifact_url": url,
                "confidence": confidence,
                "evidence_type": etype,
                "metadata": meta,
                "created_at": now,
                "gsi1pk": f"work.evidence.wp#{wid}",
                "gsi1sk": _id20(eid),
                "gsi2pk": f"work.evidence.fr#{fr}",
                "gsi2sk": _id20(eid),
            }
            return [Put(f"work.evidence#{eid}", "evidence", attrs, NotExists()), check]

        return await self._create("evidence", build, _explain_missing_wp(wid))

    async def get_evidence_by_wp(self, wp_id: int) -> list[Evidence]:
        wid = check_id(wp_id, "wp_id")
        await self._locate(wid)
        return [
            _evidence_of(i.attrs)
            async for i in self.table.query_all(f"work.evidence.wp#{wid}", index="gsi1")
        ]

    async def get_evidence_by_fr(self, fr_id: str) -> list[Evidence]:
        fr = check_name(fr_id, "fr_id")
        return [
            _evidence_of(i.attrs)
            async for i in self.table.query_all(f"work.evidence.fr#{fr}", index="gsi2")
        ]

    # ==================================================================== policies

    async def create_policy_rule(self, rule: PolicyRule) -> int:
        _check_type(rule, PolicyRule, "policy rule")
        rid = check_name(rule.rule_id, "rule_id")
        desc = check_text(rule.description, "description")
        if type(rule.is_active) is not bool:
            raise ValidationError(f"is_active must be a bool, got {rule.is_active!r}")

        def build(pid: int) -> list[Op]:
            attrs: dict[str, Any] = {
                "id": pid,
                "rule_id": rid,
                "description": desc,
                "is_active": rule.is_active,
            }
            if rule.is_active:
                attrs.update(gsi1pk=_ACTIVE_POLICIES, gsi1sk=_id20(pid))
            return [Put(f"work.policy#{pid}", "policy", attrs, NotExists())]

        return await self._create("policy", build)

    async def list_active_policies(self) -> list[PolicyRule]:
        """Active policy rules, by id."""
        return [
            _policy_of(i.attrs) async for i in self.table.query_all(_ACTIVE_POLICIES, index="gsi1")
        ]

    # ==================================================================== metrics

    async def record_metric(self, metric: Metric) -> int:
        _check_type(metric, Metric, "metric")
        fid = check_id(metric.feature_id, "feature_id")
        mtype = check_name(metric.metric_type, "metric_type")
        value = check_number(metric.value, "value")
        unit = check_text(metric.unit, "unit", limit=MAX_NAME, empty=True)
        when = _check_when(metric.recorded_at, "recorded_at")
        ops: list[Op] = [Check(_feature_pk(fid), _FEATURE_SK, Exists())]
        wid = metric.wp_id
        if wid is not None:
            check_id(wid, "wp_id")
        await self._feature_item(fid)
        if wid is not None:
            _, check = await self._wp_check(wid, fid)
            ops.append(check)
        stamp = _time.to_text(when or _time.now())

        def build(mid: int) -> list[Op]:
            attrs = {
                "id": mid,
                "feature_id": fid,
                "wp_id": wid,
                "metric_type": mtype,
                "value": value,
                "unit": unit,
                "recorded_at": stamp,
            }
            return [Put(f"work.metrics#{fid}", _id20(mid), attrs, NotExists()), *ops]

        def explain(e: Conflict, mid: int) -> Exception | None:
            if e.op_index == 2:
                return NotFound(f"no feature {fid}")
            return NotFound(f"no work package {wid}") if e.op_index == 3 else e

        return await self._create("metric", build, explain)

    async def get_metrics_by_feature(self, feature_id: int) -> list[Metric]:
        """The feature's metrics, in the order they were recorded."""
        fid = check_id(feature_id, "feature_id")
        await self._feature_item(fid)
        return [_metric_of(i.attrs) async for i in self.table.query_all(f"work.metrics#{fid}")]

    # ==================================================================== governance

    async def create_governance_contract(self, contract: GovernanceContract) -> int:
        """Store version ``contract.version`` of a feature's contract; return its id.

        Versions are immutable: storing an existing version is a :class:`Conflict`.
        """
        _check_type(contract, GovernanceContract, "governance contract")
        fid = check_id(contract.feature_id, "feature_id")
        version = contract.version
        if type(version) is not int or not 1 <= version <= 2**31 - 1:
            raise ValidationError(f"version must be an int from 1 to 2**31 - 1, got {version!r}")
        if isinstance(contract.rules, (str, bytes)) or not isinstance(
            contract.rules, (list, tuple)
        ):
            raise ValidationError("rules must be a list of PolicyRule")
        rules = []
        for r in contract.rules:
            _check_type(r, PolicyRule, "each rule")
            check_name(r.rule_id, "rule_id")
            check_text(r.description, "description")
            if type(r.is_active) is not bool or type(r.id) is not int:
                raise ValidationError("a rule's is_active is a bool and its id an int")
            rules.append(_policy_attrs(r))
        await self._feature_item(fid)
        now = _time.to_text(_time.now())
        pk, sk = f"work.governance#{fid}", f"v#{version:010d}"

        def build(cid: int) -> list[Op]:
            attrs = {
                "id": cid,
                "feature_id": fid,
                "version": version,
                "rules": rules,
                "created_at": now,
            }
            return [Put(pk, sk, attrs, NotExists()), Check(_feature_pk(fid), _FEATURE_SK, Exists())]

        def explain(e: Conflict, cid: int) -> Exception | None:
            if e.op_index == 1:
                return Conflict(
                    f"feature {fid} already has governance contract version {version}; "
                    "versions are immutable: store a new version",
                    op_index=1,
                    key=e.key,
                    condition=e.condition,
                )
            return NotFound(f"no feature {fid}") if e.op_index == 2 else e

        return await self._create("governance", build, explain)

    async def get_governance_contract(
        self, feature_id: int, version: int
    ) -> GovernanceContract | None:
        fid = check_id(feature_id, "feature_id")
        if type(version) is not int or not 1 <= version <= 2**31 - 1:
            raise ValidationError(f"version must be an int from 1 to 2**31 - 1, got {version!r}")
        await self._feature_item(fid)
        item = await self.table.get(f"work.governance#{fid}", f"v#{version:010d}")
        return None if item is None else _contract_of(item.attrs)

    async def get_latest_governance_contract(self, feature_id: int) -> GovernanceContract | None:
        fid = check_id(feature_id, "feature_id")
        await self._feature_item(fid)
        page = await self.table.query(
            f"work.governance#{fid}", KeyRange.prefix("v#"), descending=True, limit=1
        )
        return _contract_of(page.items[0].attrs) if page.items else None

    # ==================================================================== sync mappings

    async def create_sync_mapping(self, mapping: SyncMapping) -> int:
        """Map a feature (or one of its packages) to an issue on an external platform.

        One mapping per feature (or package) and platform: a second is a Conflict.
        """
        _check_type(mapping, SyncMapping, "sync mapping")
        fid = check_id(mapping.feature_id, "feature_id")
        platform = check_name(mapping.platform, "platform")
        ext_id = check_text(mapping.external_id, "external_id", limit=_TITLE)
        url = check_text(mapping.external_url, "external_url", empty=True)
        state = check_text(mapping.external_state, "external_state", limit=MAX_NAME, empty=True)
        direction = check_enum(SyncDirection, mapping.sync_direction, "sync_direction")
        when = _check_when(mapping.last_synced_at, "last_synced_at")
        wid = mapping.wp_id
        await self._feature_item(fid)
        ops: list[Op] = [Check(_feature_pk(fid), _FEATURE_SK, Exists())]
        claim_sk = platform
        if wid is not None:
            check_id(wid, "wp_id")
            _, check = await self._wp_check(wid, fid)
            ops.append(check)
            claim_sk = f"{platform}#wp#{wid}"
        stamp = _time.to_text(when or _time.now())

        def build(sid: int) -> list[Op]:
            attrs = {
                "id": sid,
                "feature_id": fid,
                "wp_id": wid,
                "platform": platform,
                "external_id": ext_id,
                "external_url": url,
                "external_state": state,
                "sync_direction": direction.value,
                "last_synced_at": stamp,
                "gsi1pk": _SYNC_INDEX,
                "gsi1sk": order_key(stamp, _id20(sid)),
            }
            return [
                Put(f"work.syncmap#{fid}", claim_sk, {"mapping_id": sid}, NotExists()),
                Put(f"work.sync#{sid}", "mapping", attrs, NotExists()),
                *ops,
            ]

        def explain(e: Conflict, sid: int) -> Exception | None:
            if e.op_index == 1:
                target = f"work package {wid}" if wid is not None else f"feature {fid}"
                return Conflict(
                    f"{target} already has a sync mapping for platform {platform!r}",
                    op_index=1,
                    key=e.key,
                    condition=e.condition,
                )
            if e.op_index is not None and e.op_index >= 3:
                return NotFound(f"no feature {fid} or work package {wid}")
            return e

        return await self._create("sync", build, explain)

    async def get_sync_mapping(self, feature_id: int, platform: str) -> SyncMapping | None:
        """The feature-level mapping of ``feature_id`` on ``platform``, or None."""
        fid = check_id(feature_id, "feature_id")
        name = check_name(platform, "platform")
        await self._feature_item(fid)
        claim = await self.table.get(f"work.syncmap#{fid}", name)
        if claim is None:
            return None
        item = await self.table.get(f"work.sync#{claim.attrs['mapping_id']}", "mapping")
        return None if item is None else _mapping_of(item.attrs)

    async def update_sync_mapping_state(
        self, mapping_id: int, external_state: str, last_synced_at: datetime
    ) -> None:
        sid = check_id(mapping_id, "mapping_id")
        state = check_text(external_state, "external_state", limit=MAX_NAME, empty=True)
        when = _time.check_datetime(last_synced_at, "last_synced_at")
        stamp = _time.to_text(when)
        try:
            await self.table.update(
                f"work.sync#{sid}",
                "mapping",
                set={
                    "external_state": state,
                    "last_synced_at": stamp,
                    "gsi1sk": order_key(stamp, _id20(sid)),
                },
                condition=Exists(),
            )
        except Conflict:
            raise NotFound(f"no sync mapping {sid}") from None

    async def list_stale_sync_mappings(self, older_than: timedelta) -> list[SyncMapping]:
        """Mappings last synced more than ``older_than`` ago, oldest first."""
        age = _check_age(older_than, "older_than")
        cutoff = _time.to_text(_time.now() - age)
        return [
            _mapping_of(i.attrs)
            async for i in self.table.query_all(_SYNC_INDEX, KeyRange.lt(cutoff), index="gsi1")
        ]

    # ==================================================================== devices

    async def upsert_device_node(self, node: DeviceNode) -> int:
        """Register a device or update it; return its id (kept across updates).

        The stored clock becomes the merge of the stored and the given clock, so
        it never moves backwards; ``last_seen`` defaults to now.
        """
        _check_type(node, DeviceNode, "device node")
        did = check_name(node.device_id, "device_id")
        name = check_text(node.name, "name", limit=MAX_NAME, empty=True)
        _check_type(node.clock, VectorClock, "clock")
        seen = _time.to_text(_check_when(node.last_seen, "last_seen") or _time.now())
        pk = f"work.device#{did}"
        for _ in range(_MAX_RETRIES):
            item = await self.table.get(pk, "device")
            if item is None:

                def build(ident: int) -> list[Op]:
                    attrs = {
                        "id": ident,
                        "device_id": did,
                        "name": name,
                        "clock": node.clock.to_dict(),
                        "last_seen": seen,
                        "gsi1pk": _DEVICE_INDEX,
                        "gsi1sk": order_key(seen, did),
                    }
                    return [Put(pk, "device", attrs, NotExists())]

                try:
                    return await self._create("device", build, lambda e, n: e)
                except Conflict as e:
                    if e.key == (pk, "device"):
                        continue  # registered concurrently: update it instead
                    raise
            merged = VectorClock(item.attrs["clock"]).merge(node.clock)
            try:
                await self.table.update(
                    pk,
                    "device",
                    set={
                        "name": name,
                        "clock": merged.to_dict(),
                        "last_seen": seen,
                        "gsi1sk": order_key(seen, did),
                    },
                    condition=VersionEquals(item.version),
                )
            except Conflict:
                continue
            return int(item.attrs["id"])
        raise Conflict(f"device {did!r} kept changing; gave up")

    async def list_active_devices(self, active_within: timedelta) -> list[DeviceNode]:
        """Devices seen within ``active_within`` of now, least recently seen first."""
        age = _check_age(active_within, "active_within")
        cutoff = _time.to_text(_time.now() - age)
        return [
            _device_of(i.attrs)
            async for i in self.table.query_all(_DEVICE_INDEX, KeyRange.gte(cutoff), index="gsi1")
        ]

    async def get_device_node(self, device_id: str) -> DeviceNode | None:
        did = check_name(device_id, "device_id")
        item = await self.table.get(f"work.device#{did}", "device")
        return None if item is None else _device_of(item.attrs)

    async def update_device_clock(self, device_id: str, clock: VectorClock) -> VectorClock:
        """Merge ``clock`` into the device's clock; return the stored result.

        The update is version-guarded and retried, so under concurrent writers
        every counter only grows and no writer's counters are lost.
        """
        did = check_name(device_id, "device_id")
        _check_type(clock, VectorClock, "clock")
        pk = f"work.device#{did}"
        for _ in range(_MAX_RETRIES):
            item = await self.table.get(pk, "device")
            if item is None:
                raise NotFound(f"no device {did!r}")
            merged = VectorClock(item.attrs["clock"]).merge(clock)
            if merged == VectorClock(item.attrs["clock"]):
                return merged
            try:
                await self.table.update(
                    pk,
                    "device",
                    set={"clock": merged.to_dict()},
                    condition=VersionEquals(item.version),
                )
            except Conflict:
                continue
            return merged
        raise Conflict(f"device {did!r} kept changing; gave up")

    # ==================================================================== iteration helpers

    async def iter_audit_trail(self, feature_id: int) -> AsyncIterator[AuditEntry]:
        """The feature's chain entry by entry, page by page (for long chains)."""
        fid = check_id(feature_id, "feature_id")
        await self._feature_item(fid)
        async for e in self._ledger.iter_entries(str(fid)):
            yield _audit.entry_of(fid, e.seq, e.attrs)


class _GraphMoved(Exception):
    """Internal: the graph changed while it was being read."""


def _check_hash(value: Any, what: str) -> bytes | None:
    if type(value) is not bytes:
        raise ValidationError(f"{what} must be bytes, got {type(value).__name__}")
    if not value:
        return None
    if len(value) != HASH_SIZE:
        raise ValidationError(
            f"{what} must be {HASH_SIZE} bytes (SHA-256) or empty, got {len(value)}"
        )
    return value


def _explain_missing_wp(wid: int) -> Callable[[Conflict, int], Exception | None]:
    def explain(e: Conflict, ident: int) -> Exception | None:
        return NotFound(f"no work package {wid}") if e.op_index == 2 else e

    return explain
