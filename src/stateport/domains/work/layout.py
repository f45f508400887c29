"""Where work tracking keeps its records on the table port, and how they are stored.

Every key starts with ``work.`` (see docs/decisions/0015-work-tracking.md)::

    work.ids            / <kind>            id counters: {"last": n} (an IdAllocator)
    work.slug#<slug>    / slug              unique slug -> feature id
    work.feature#<F>    / feature           the feature   (gsi1: by state, gsi2: all)
    work.feature#<F>    / graph             dependency-graph version guard
    work.feature#<F>    / wp#<seq:10>       a work package, with its dependencies
    work.feature#<F>    / g#<seq//128:8>    graph shard: {"<seq>": [dep seqs] if PLANNED,
                                                else "O" DOING, "R" FOR_REVIEW, "D" DONE}
    work.wp#<W>         / wp                where package W lives: {feature_id, sequence}
    work.audit#<F>      / head, e#<seq:20>  the feature's audit chain (a Ledger)
    work.evidence#<E>   / evidence          (gsi1: by work package, gsi2: by requirement)
    work.evidref#<F>    / <sha256(url)>     an artifact URL with evidence in feature F
    work.evidref#<F>    / indexed           the mark that all of F's URLs are indexed
    work.policy#<P>     / policy            (gsi1: active rules)
    work.metrics#<F>    / <id:20>           metrics of a feature
    work.governance#<F> / v#<version:10>    immutable contract versions
    work.sync#<S>       / mapping           (gsi1: by last sync time)
    work.syncmap#<F>    / <platform>[#wp#<W>]   unique mapping per feature/package and platform
    work.device#<D>     / device            (gsi1: by last seen)

The operations of the store's transactions carry the tags below, so a failed
transaction is explained by which check failed, never by its position.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from ... import _time
from ...errors import Conflict, IntegrityError
from ...ports.table import Check, Exists
from .models import (
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
    WpState,
)

SHARD_SIZE: Final = 128
"""Work packages per graph shard (by sequence): 128 nodes of at most
:data:`MAX_DEPENDENCIES` dependencies stay under DynamoDB's 400 KB item limit."""

MAX_DEPENDENCIES: Final = 128
"""Dependencies one work package may have."""

IDS: Final = "work.ids"
FEATURE_SK: Final = "feature"
GRAPH_SK: Final = "graph"
WP_PREFIX: Final = "wp#"
SHARD_PREFIX: Final = "g#"
ALL_FEATURES: Final = "work.features"
ACTIVE_POLICIES: Final = "work.policies.active"
SYNC_INDEX: Final = "work.sync"
DEVICE_INDEX: Final = "work.devices"

# ---- operation tags: what a Conflict carrying each one means

SLUG_TAG: Final = "work.slug"
"""The slug is taken by another feature."""
FEATURE_TAG: Final = "work.feature"
"""The feature changed since it was read (try again)."""
FEATURE_EXISTS_TAG: Final = "work.feature.exists"
"""The feature does not exist."""
WP_TAG: Final = "work.wp"
"""The work package changed since it was read (try again)."""
WP_EXISTS_TAG: Final = "work.wp.exists"
"""The work package does not exist."""
SEQUENCE_TAG: Final = "work.wp.sequence"
"""The feature already has a work package with that sequence."""
SHARD_TAG: Final = "work.shard"
"""The graph shard was created (or is missing) unlike it was read (try again)."""
GRAPH_TAG: Final = "work.graph"
"""The feature's dependencies changed since the graph was read (try again)."""
CONTRACT_TAG: Final = "work.governance.version"
"""That governance contract version exists."""
SYNC_CLAIM_TAG: Final = "work.sync.claim"
"""The feature (or package) already has a mapping for that platform."""
SYNC_TAG: Final = "work.sync"
"""The sync mapping does not exist."""
DEVICE_TAG: Final = "work.device"
"""The device changed (or was registered) since it was read (try again)."""

Explain = Mapping[str, Callable[[Conflict], Exception]]
"""For the tags of a transaction's operations: the error each one's failure means."""


def conflict(message: str) -> Callable[[Conflict], Exception]:
    """For :data:`Explain`: the :class:`Conflict` with ``message`` instead, keeping
    the failed operation's details."""
    return lambda e: Conflict(
        message, op_index=e.op_index, key=e.key, condition=e.condition, tag=e.tag
    )


def explained(e: Conflict, explain: Explain | None) -> Exception:
    """The error ``explain`` maps ``e``'s tag to, or ``e`` itself."""
    make = None if e.tag is None or explain is None else explain.get(e.tag)
    return e if make is None else make(e)


# ---- keys


def id20(n: int) -> str:
    return f"{n:020d}"


def feature_pk(fid: int) -> str:
    return f"work.feature#{fid}"


def slug_pk(slug: str) -> str:
    return f"work.slug#{slug}"


def wp_sk(seq: int) -> str:
    return f"{WP_PREFIX}{seq:010d}"


def shard_of(seq: int) -> int:
    return seq // SHARD_SIZE


def shard_sk(seq: int) -> str:
    return f"{SHARD_PREFIX}{shard_of(seq):08d}"


def wp_ptr(wp_id: int) -> str:
    return f"work.wp#{wp_id}"


def state_gsi(state: str) -> str:
    return f"work.features#{state}"


def metrics_pk(fid: int) -> str:
    return f"work.metrics#{fid}"


def governance_pk(fid: int) -> str:
    return f"work.governance#{fid}"


def version_sk(version: int) -> str:
    return f"v#{version:010d}"


def evidence_pk(eid: int) -> str:
    return f"work.evidence#{eid}"


def evidence_by_wp(wp_id: int) -> str:
    return f"work.evidence.wp#{wp_id}"


def evidence_by_fr(fr_id: str) -> str:
    return f"work.evidence.fr#{fr_id}"


def evidence_ref_pk(fid: int) -> str:
    return f"work.evidref#{fid}"


def evidence_ref_key(fid: int, artifact_url: str) -> tuple[str, str]:
    """The key saying that feature ``fid`` has evidence with this artifact URL
    (hashed: a URL may be longer than a sort key may be)."""
    return evidence_ref_pk(fid), hashlib.sha256(artifact_url.encode()).hexdigest()


EVIDENCE_INDEXED: Final = "indexed"
"""The sort key, beside a feature's evidence references, of the mark that every
artifact URL of its evidence is there (evidence stored before references were
indexed is added the first time a reference is not found)."""


def sync_pk(sid: int) -> str:
    return f"work.sync#{sid}"


def sync_claim_pk(fid: int) -> str:
    return f"work.syncmap#{fid}"


def device_pk(device_id: str) -> str:
    return f"work.device#{device_id}"


def feature_exists(fid: int) -> Check:
    """The check, tagged :data:`FEATURE_EXISTS_TAG`, that feature ``fid`` exists."""
    return Check(feature_pk(fid), FEATURE_SK, Exists(), tag=FEATURE_EXISTS_TAG)


def wp_exists(wp_id: int) -> Check:
    """The check, tagged :data:`WP_EXISTS_TAG`, that work package ``wp_id`` exists."""
    return Check(wp_ptr(wp_id), "wp", Exists(), tag=WP_EXISTS_TAG)


def missing_shard(seq: int) -> Explain:
    """A failed update of the graph shard of sequence ``seq``: the shard is missing."""
    return {
        SHARD_TAG: lambda e: IntegrityError(
            f"the graph shard of work package sequence {seq} is missing: the store is "
            "damaged (restore it from a backup)"
        )
    }


_CODES: Final = {"DOING": "O", "FOR_REVIEW": "R", "DONE": "D"}


def node(state: str, deps: list[list[Any]]) -> list[str] | str:
    """A package's entry in its graph shard: the sequences of its dependencies
    (as strings) while it is PLANNED, else one letter for its state."""
    if state == WpState.PLANNED.value:
        return [str(d[1]) for d in deps]
    return _CODES[state]


# ---- records from their stored attributes

_T = TypeVar("_T")
_FIELDS: dict[type, tuple[str, ...]] = {}


def _record(cls: type[_T], a: dict[str, Any], **convert: Callable[[Any], Any]) -> _T:
    """The record ``cls`` from its stored attributes: every field under its own
    name, through ``convert[name]`` where one is given. A field added after the
    item was written (absent from it) takes its default."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return cls(**{n: convert[n](a[n]) if n in convert else a[n] for n in names if n in a})


_from_text = _time.from_text


def _hash_of(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def feature_of(a: dict[str, Any]) -> Feature:
    return _record(
        Feature,
        a,
        state=FeatureState,
        spec_hash=_hash_of,
        created_at=_from_text,
        updated_at=_from_text,
    )


def wp_of(a: dict[str, Any]) -> WorkPackage:
    return _record(
        WorkPackage,
        a,
        state=WpState,
        file_scope=tuple,
        created_at=_from_text,
        updated_at=_from_text,
    )


def policy_attrs(rule: PolicyRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "rule_id": rule.rule_id,
        "description": rule.description,
        "is_active": rule.is_active,
    }


def policy_of(a: dict[str, Any]) -> PolicyRule:
    return _record(PolicyRule, a)


def evidence_of(a: dict[str, Any]) -> Evidence:
    return _record(Evidence, a, created_at=_from_text)


def metric_of(a: dict[str, Any]) -> Metric:
    return _record(Metric, a, recorded_at=_from_text)


def contract_of(a: dict[str, Any]) -> GovernanceContract:
    return _record(
        GovernanceContract,
        a,
        rules=lambda rules: tuple(policy_of(r) for r in rules),
        created_at=_from_text,
    )


def mapping_of(a: dict[str, Any]) -> SyncMapping:
    return _record(SyncMapping, a, sync_direction=SyncDirection, last_synced_at=_from_text)


def device_of(a: dict[str, Any]) -> DeviceNode:
    return _record(DeviceNode, a, clock=VectorClock, last_seen=_from_text)
