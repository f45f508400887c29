"""The types of the work-tracking port: features, work packages, audit entries, ...

Field names follow the source ``StoragePort``. Every dataclass is frozen and
keyword-only; ids are ``0`` until the store assigns one, and timestamps the
store sets are ``None`` until then. :class:`VectorClock` is an immutable value.

The records are plain values: the store checks them when they are written and
raises :class:`~stateport.errors.ValidationError` (before writing anything) for
a field of the wrong type, an empty required text, a text over its limit or a
value out of range; each record's docstring gives its rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, TypeVar

from ...errors import ValidationError
from ...primitives.machine import StateMachine

__all__ = [
    "FEATURE_ORDER",
    "FEATURE_STATES",
    "FEATURE_TRANSITIONS",
    "WP_ORDER",
    "WP_STATES",
    "WP_TRANSITIONS",
    "AuditEntry",
    "ClockOrder",
    "DependencyType",
    "DeviceNode",
    "Evidence",
    "Feature",
    "FeatureState",
    "GovernanceContract",
    "Metric",
    "PolicyRule",
    "SyncDirection",
    "SyncMapping",
    "VectorClock",
    "WorkPackage",
    "WpDependency",
    "WpState",
]

E = TypeVar("E", bound=StrEnum)


class FeatureState(StrEnum):
    """Where a feature stands, in forward order (see :data:`FEATURE_STATES`)."""

    SPECIFY = "SPECIFY"
    PLAN = "PLAN"
    IMPLEMENT = "IMPLEMENT"
    REVIEW = "REVIEW"
    DONE = "DONE"


class WpState(StrEnum):
    """Where a work package stands, in forward order (see :data:`WP_STATES`)."""

    PLANNED = "PLANNED"
    DOING = "DOING"
    FOR_REVIEW = "FOR_REVIEW"
    DONE = "DONE"


class DependencyType(StrEnum):
    """Why one work package waits for another."""

    EXPLICIT = "explicit"
    FILE_OVERLAP = "file_overlap"
    DATA = "data"


class SyncDirection(StrEnum):
    """Which way a sync mapping carries changes."""

    PUSH = "push"
    PULL = "pull"
    BIDIRECTIONAL = "bidirectional"


FEATURE_ORDER: Final[tuple[FeatureState, ...]] = tuple(FeatureState)
"""Feature states in their forward order."""

WP_ORDER: Final[tuple[WpState, ...]] = tuple(WpState)
"""Work-package states in their forward order."""


def _forward_and_one_back(order: Sequence[E], *, skip: bool) -> dict[E, set[E]]:
    moves: dict[E, set[E]] = {}
    last = len(order) - 1
    for i, state in enumerate(order[:-1]):
        ahead = order[i + 1 :] if skip else order[i + 1 : i + 2]
        moves[state] = {*ahead, *(order[i - 1 : i] if 0 < i < last else ())}
    return moves


FEATURE_STATES: Final = StateMachine("feature", _forward_and_one_back(FEATURE_ORDER, skip=True))
"""The feature machine: any forward move (the states skipped are named in its audit
entry), or back one step before DONE; DONE is final."""

WP_STATES: Final = StateMachine("work package", _forward_and_one_back(WP_ORDER, skip=False))
"""The work-package machine: start, hand in, accept; give back (DOING -> PLANNED)
and request changes (FOR_REVIEW -> DOING); DONE is final."""

FEATURE_TRANSITIONS: Final[Mapping[FeatureState, frozenset[FeatureState]]] = {
    s: FEATURE_STATES.allowed(s) for s in FeatureState
}
""":data:`FEATURE_STATES` as a mapping: the states each state may move to."""

WP_TRANSITIONS: Final[Mapping[WpState, frozenset[WpState]]] = {
    s: WP_STATES.allowed(s) for s in WpState
}
""":data:`WP_STATES` as a mapping: the states each state may move to."""


def move_text(order: Sequence[E], current: E | None, target: E) -> str:
    """How an audit entry names a move: ``"PLAN -> REVIEW (skipped IMPLEMENT)"``, or for
    a record created in a later state ``"created in PLAN (skipped SPECIFY)"``."""
    to = order.index(target)
    start = 0 if current is None else order.index(current) + 1
    jumped = order[start:to]
    text = f"created in {target}" if current is None else f"{current} -> {target}"
    return f"{text} (skipped {', '.join(jumped)})" if jumped else text


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True, kw_only=True)
class Feature:
    """A feature: a unit of work with a unique ``slug`` and a state.

    ``slug`` and ``target_branch`` are names (printable, no surrounding
    spaces, at most 200 characters); ``friendly_name`` is text of at most
    1,000. A feature may be created in any state (the first entry of its audit
    trail then says which states it skipped). ``spec_hash`` is the hash of its
    specification (bytes, at most 64), if the caller records one.
    """

    slug: str
    friendly_name: str
    state: FeatureState = FeatureState.SPECIFY
    target_branch: str = "main"
    spec_hash: bytes | None = None
    id: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkPackage:
    """A work package of a feature, numbered by ``sequence`` (unique in its feature,
    0 to 2**32 - 1).

    ``title`` is text of at most 1,000 characters; ``file_scope`` lists the
    files it may touch. ``agent_id``, ``pr_url``, ``pr_state`` and
    ``worktree_path`` say who works on it, where, and how its pull request
    stands; they and ``file_scope`` are changed with
    :meth:`~stateport.domains.work.WorkStore.update_work_package` (audited). A
    package may be created in any state (its first audit entry then says so).
    """

    feature_id: int
    sequence: int
    title: str
    state: WpState = WpState.PLANNED
    agent_id: str | None = None
    pr_url: str | None = None
    pr_state: str | None = None
    file_scope: tuple[str, ...] = ()
    worktree_path: str | None = None
    acceptance_criteria: str = ""
    id: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WpDependency:
    """``wp_id`` waits for ``depends_on`` (both of the same feature) to be DONE."""

    wp_id: int
    depends_on: int
    dep_type: DependencyType = DependencyType.EXPLICIT


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One link of a feature's audit chain.

    ``seq`` is its position in the chain (1, 2, ...); ``id`` is
    ``feature_id * 2**32 + seq``. ``prev_hash`` and ``hash`` are 32 bytes; see
    docs/decisions/0016-audit-chain.md for how ``hash`` is computed. Each of
    ``evidence_refs`` must be the ``artifact_url`` of evidence stored for a
    work package of the same feature.
    """

    feature_id: int
    actor: str
    transition: str
    wp_sequence: int | None = None
    wp_id: int | None = None
    evidence_refs: tuple[str, ...] = ()
    timestamp: datetime | None = None
    prev_hash: bytes = b""
    hash: bytes = b""
    id: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Evidence that work package ``wp_id`` satisfies requirement ``fr_id``.

    ``artifact_url`` (a PR, a commit, a test report) is what audit entries cite
    in their ``evidence_refs``. ``confidence`` is a finite number from 0 to 1;
    ``metadata`` a JSON object.
    """

    wp_id: int
    fr_id: str
    artifact_url: str
    confidence: float = 1.0
    evidence_type: str = ""
    metadata: dict[str, Any] | None = None
    id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyRule:
    """A policy rule (``rule_id`` such as ``"FR-REVIEW-001"``); inactive rules are kept
    but not listed by ``list_active_policies``."""

    rule_id: str
    description: str
    is_active: bool = True
    id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """A measurement of a feature (or one of its work packages): ``value`` (finite)
    in ``unit``, taken at ``recorded_at`` (now when omitted)."""

    feature_id: int
    metric_type: str
    value: float
    unit: str = ""
    wp_id: int | None = None
    id: int = 0
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceContract:
    """Version ``version`` (1 to 2**31 - 1) of a feature's rules; immutable once stored."""

    feature_id: int
    version: int
    rules: tuple[PolicyRule, ...] = ()
    id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncMapping:
    """A feature (or, with ``wp_id``, one of its packages) mirrored as issue
    ``external_id`` on an external ``platform``; one per platform."""

    feature_id: int
    platform: str
    external_id: str
    external_url: str = ""
    external_state: str = ""
    wp_id: int | None = None
    sync_direction: SyncDirection = SyncDirection.BIDIRECTIONAL
    last_synced_at: datetime | None = None
    id: int = 0


# --------------------------------------------------------------------------- vector clocks


class ClockOrder(StrEnum):
    """How two vector clocks relate."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


class VectorClock(Mapping[str, int]):
    """An immutable vector clock: a counter per node; absent nodes count 0.

    ``a.compare(b)`` is BEFORE when every counter of ``a`` is <= ``b``'s and
    one is smaller, AFTER for the reverse, EQUAL, or CONCURRENT. ``merge`` takes
    the larger counter of each node (commutative, associative, idempotent).
    Zero counters are dropped, so ``VectorClock({"a": 0}) == VectorClock()``.
    """

    __slots__ = ("_c", "_hash")

    def __init__(self, counters: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        items = counters.items() if isinstance(counters, Mapping) else counters
        clean: dict[str, int] = {}
        try:
            pairs = list(items)
        except TypeError as e:
            raise ValidationError("a vector clock is a mapping of node id to counter") from e
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValidationError("a vector clock is a mapping of node id to counter")
            node, n = pair
            if type(node) is not str or not node:
                raise ValidationError(f"a clock's node id is a non-empty str, got {node!r}")
            if type(n) is not int or n < 0:
                raise ValidationError(f"clock counter of {node!r} must be an int >= 0, got {n!r}")
            if node in clean:
                raise ValidationError(f"node {node!r} appears twice in the clock")
            if n:
                clean[node] = n
        self._c: dict[str, int] = dict(sorted(clean.items()))
        self._hash: int | None = None

    def __getitem__(self, node: str) -> int:
        return self._c[node]

    def get(self, node: str, default: Any = 0) -> Any:
        return self._c.get(node, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._c)

    def __len__(self) -> int:
        return len(self._c)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VectorClock):
            return self._c == other._c
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._c.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"VectorClock({self._c!r})"

    def to_dict(self) -> dict[str, int]:
        return dict(self._c)

    def increment(self, node: str, by: int = 1) -> VectorClock:
        """This clock with ``node``'s counter raised by ``by`` (>= 1)."""
        if type(by) is not int or by < 1:
            raise ValidationError(f"increment by an int >= 1, got {by!r}")
        return VectorClock({**self._c, node: self._c.get(node, 0) + by})

    def merge(self, other: VectorClock) -> VectorClock:
        """The least clock that is at or after both: the larger counter per node."""
        if not isinstance(other, VectorClock):
            raise ValidationError(f"merge takes a VectorClock, got {type(other).__name__}")
        merged = dict(self._c)
        for node, n in other._c.items():
            if n > merged.get(node, 0):
                merged[node] = n
        return VectorClock(merged)

    def compare(self, other: VectorClock) -> ClockOrder:
        if not isinstance(other, VectorClock):
            raise ValidationError(f"compare takes a VectorClock, got {type(other).__name__}")
        less = greater = False
        for node in self._c.keys() | other._c.keys():
            a, b = self._c.get(node, 0), other._c.get(node, 0)
            if a < b:
                less = True
            elif a > b:
                greater = True
        if less and greater:
            return ClockOrder.CONCURRENT
        if less:
            return ClockOrder.BEFORE
        if greater:
            return ClockOrder.AFTER
        return ClockOrder.EQUAL

    def dominates(self, other: VectorClock) -> bool:
        """True when this clock is at or after ``other`` (AFTER or EQUAL)."""
        return self.compare(other) in (ClockOrder.AFTER, ClockOrder.EQUAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceNode:
    """A device of a multi-device setup and its vector clock; ``last_seen`` is now
    when omitted."""

    device_id: str
    name: str = ""
    clock: VectorClock = field(default_factory=VectorClock)
    last_seen: datetime | None = None
    id: int = 0


# --------------------------------------------------------------------------- validation

MAX_ID: Final = 2**63 - 1
MAX_SEQUENCE: Final = 2**32 - 1
MAX_TEXT: Final = 10_000
MAX_NAME: Final = 200


def check_id(value: Any, what: str) -> int:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise ValidationError(f"{what} must be an int from 1 to 2**63 - 1, got {value!r}")
    return value


def check_text(value: Any, what: str, *, limit: int = MAX_TEXT, empty: bool = False) -> str:
    if type(value) is not str:
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}")
    if not empty and not value.strip():
        raise ValidationError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValidationError(f"{what} is {len(value)} characters; the limit is {limit}")
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    return value


def check_optional_text(value: Any, what: str) -> str | None:
    return None if value is None else check_text(value, what)


def check_name(value: Any, what: str) -> str:
    """A short identifier used in keys: non-empty, printable, at most 200 characters."""
    text = check_text(value, what, limit=MAX_NAME)
    if text != text.strip() or not text.isprintable():
        raise ValidationError(f"{what} must be printable with no surrounding spaces: {text!r}")
    return text


def check_enum(cls: type[E], value: Any, what: str) -> E:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except (ValueError, TypeError):
        choices = ", ".join(m.value for m in cls)
        raise ValidationError(f"{what} must be one of {choices}; got {value!r}") from None


def check_strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValidationError(f"{what} must be a list of str, got {type(value).__name__}")
    for s in value:
        check_text(s, f"each of {what}", limit=MAX_NAME * 10)
    return tuple(value)


def check_number(value: Any, what: str) -> float:
    try:
        finite = type(value) in (int, float) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        raise ValidationError(f"{what} must be a finite number, got {value!r}")
    return float(value)
