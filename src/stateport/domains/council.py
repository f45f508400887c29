"""The council repository (``sp.council``): orchestrator runs, waves and rewind.

The source's ``CouncilRepositoryPort``, on the same
:class:`~stateport.primitives.Ledger` primitive as the run ledger: a council
run is a ledger stream whose head holds the run (status, graph snapshot) and
whose entries are its events, numbered without gaps from 0, as the source's
event type documents ``seq`` (runs stored before this numbering keep theirs,
from 1: their head carries no ``first_seq``; see
docs/decisions/0019-work-store-in-parts.md).

Status machine (enforced by storage; setting the current status again is a
no-op)::

    running ──────────▶ awaiting_approval, interrupted, completed, failed
    awaiting_approval ─▶ running, interrupted, failed
    interrupted ───────▶ running, failed
    failed ────────────▶ running          (re-executed after a rewind)
    completed                             (final: no change, no event; see rewind_run)

:meth:`CouncilRepository.mark_interrupted_runs` (for boot recovery) moves every
``running`` run to ``interrupted``. Runs ``awaiting_approval`` are left as they
are: no process was executing them, they wait for a person, and the approval
can still arrive after the restart.

:meth:`CouncilRepository.truncate_events_after_wave` rewinds the event log to
the end of a wave: it keeps the events before the first event of a later wave
and deletes that event and every one after it. The next event continues the
numbering from the last kept one. (When waves only grow along the log, as an
executor emits them, this deletes exactly the events of later waves.) A
running run cannot be rewound (its executor would race the deletes):
interrupt it first. While a rewind runs, the log is closed (an append is
refused, never accepted and then deleted) and status changes are refused; a
rewind cut short by a crash is finished by calling it again.

:meth:`CouncilRepository.rewind_run` re-runs a *finished* (or stopped) run
from a wave: it truncates the log as above and returns the run to
``running`` in the same step that reopens the log, and records the rewind on
the run (:attr:`CouncilRun.rewinds`). It is the one way out of
``completed``, explicit and recorded; ``update_run_status`` never leaves it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from .. import _json, _time
from .._cache import BoundedCache
from ..errors import Conflict, InvalidTransition, ValidationError
from ..ports.table import Item, TablePort
from ..primitives.ledger import ENTRY_TAG, PREV_TAG, Entry, Ledger
from ..primitives.listing import all_newest_first, order_key
from ..primitives.machine import StateMachine

__all__ = [
    "COUNCIL_STATES",
    "CouncilRepository",
    "CouncilRewind",
    "CouncilRun",
    "CouncilRunEvent",
    "CouncilRunStatus",
]

_ALL: Final = "council-runs"
_BY_STATUS: Final = "council-status#"
_MAX_TYPE: Final = 256
_FIRST_SEQ: Final = 0
"""The number of a run's first event (runs stored before it was 0 count from 1)."""
_LEGACY_FIRST_SEQ: Final = 1
_CACHE_SIZE: Final = 4096


class CouncilRunStatus(StrEnum):
    """Where a council run stands."""

    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    FAILED = "failed"


_S = CouncilRunStatus
COUNCIL_STATES: Final = StateMachine(
    "council run",
    {
        _S.RUNNING: {_S.AWAITING_APPROVAL, _S.INTERRUPTED, _S.COMPLETED, _S.FAILED},
        _S.AWAITING_APPROVAL: {_S.RUNNING, _S.INTERRUPTED, _S.FAILED},
        _S.INTERRUPTED: {_S.RUNNING, _S.FAILED},
        _S.FAILED: {_S.RUNNING},
    },
    stay=True,
)
"""The allowed status changes (see the module docstring); the same status again is a no-op."""

TRANSITIONS: Final[Mapping[CouncilRunStatus, frozenset[CouncilRunStatus]]] = {
    s: COUNCIL_STATES.allowed(s) for s in CouncilRunStatus
}
"""The allowed status changes as a mapping (kept for callers of earlier versions)."""


@dataclass(frozen=True, slots=True)
class CouncilRewind:
    """A recorded :meth:`CouncilRepository.rewind_run`: the run was ``from_status``,
    its events after wave ``wave_index`` were deleted (``kept_seq``: the last one
    kept, None if none was) and it went back to running ``at`` that time."""

    wave_index: int
    from_status: CouncilRunStatus
    kept_seq: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CouncilRun:
    """An orchestrator run. The caller chooses ``id`` (e.g. a UUID v4).

    ``created_at`` and ``updated_at`` are set by the store; ``rewinds`` lists the
    run's rewinds, oldest first.
    """

    id: str
    status: CouncilRunStatus = CouncilRunStatus.RUNNING
    graph_json: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    rewinds: tuple[CouncilRewind, ...] = ()


@dataclass(frozen=True, slots=True)
class CouncilRunEvent:
    """One event of a council run; ``seq`` (the next one when omitted) and
    ``created_at`` (now when omitted) are filled in by the store. A run's events
    are numbered 0, 1, 2, ... (1, 2, ... for runs stored before 0 was first)."""

    run_id: str
    event_type: str
    payload: Any = None
    wave_index: int = 0
    seq: int | None = None
    created_at: datetime | None = None


class CouncilRepository:
    """``sp.council``: persistence for orchestrator runs."""

    def __init__(self, table: TablePort) -> None:
        self._table = table
        self._ledger = Ledger(table, "council", noun="council run")
        self._portable = table.capabilities.portable
        # run id -> the number of its first event (fixed at creation)
        self._first: BoundedCache[str, int] = BoundedCache(_CACHE_SIZE)

    async def _first_seq(self, rid: str) -> int:
        """The number of run ``rid``'s first event; :class:`NotFound` for an unknown run."""
        first = self._first.get(rid)
        if first is None:
            head = await self._ledger.require_head(rid)
            first = int(head.attrs.get("first_seq", _LEGACY_FIRST_SEQ))
            self._first.put(rid, first)
        return first

    async def create_run(self, run: CouncilRun) -> CouncilRun:
        """Store a new run; ``Conflict`` if its id exists. Returns it as stored."""
        if not isinstance(run, CouncilRun):
            raise ValidationError(f"create_run() takes a CouncilRun, got {type(run).__name__}")
        rid = _check_id(run.id)
        status = _status(run.status)
        graph = None if run.graph_json is None else _check_graph(run.graph_json)
        if not isinstance(run.metadata, Mapping):
            raise ValidationError("run.metadata must be a mapping")
        metadata = dict(run.metadata)
        _json.check_json(metadata, portable=self._portable, where="run.metadata")
        created = (
            _time.now()
            if run.created_at is None
            else _time.check_datetime(run.created_at, "run.created_at")
        )
        text = _time.to_text(created)
        order = order_key(text, rid)
        await self._ledger.create(
            rid,
            {
                "status": status.value,
                "graph": graph,
                "meta": metadata,
                "created": text,
                "updated": text,
                "gsi1pk": _ALL,
                "gsi1sk": order,
                "gsi3pk": _BY_STATUS + status.value,
                "gsi3sk": order,
                "first_seq": _FIRST_SEQ,
            },
            open=status is not CouncilRunStatus.COMPLETED,
        )
        self._first.put(rid, _FIRST_SEQ)
        return CouncilRun(rid, status, graph, metadata, created, created)

    async def update_run_status(self, run_id: str, status: CouncilRunStatus | str) -> None:
        """Move the run to ``status``; ``InvalidTransition`` if the machine forbids it."""
        rid = _check_id(run_id)
        target = _status(status)

        def decide(head: Item) -> dict[str, Any]:
            current = CouncilRunStatus(head.attrs["status"])
            if head.attrs.get("truncating") is True:
                raise InvalidTransition(
                    f"council run {rid!r} is being rewound: finish the rewind first "
                    "(run truncate_events_after_wave again if it was cut short)"
                )
            if not COUNCIL_STATES.check(current, target, subject=f"council run {rid!r}"):
                return {}
            return {
                "status": target.value,
                "open": target is not CouncilRunStatus.COMPLETED,
                "updated": _time.to_text(_time.now()),
                "gsi3pk": _BY_STATUS + target.value,
            }

        await self._ledger.update_head(rid, decide)

    async def update_graph(self, run_id: str, graph_json: str) -> None:
        """Replace the run's serialised task graph (a JSON document, as text)."""
        rid = _check_id(run_id)
        graph = _check_graph(graph_json)

        def decide(head: Item) -> dict[str, Any]:
            if head.attrs["status"] == CouncilRunStatus.COMPLETED.value:
                raise InvalidTransition(f"council run {rid!r} is completed: its graph is final")
            return {"graph": graph, "updated": _time.to_text(_time.now())}

        await self._ledger.update_head(rid, decide)

    async def append_event(self, event: CouncilRunEvent) -> CouncilRunEvent:
        """Append ``event`` to its run; return it with its seq and time.

        A given ``seq`` must be exactly the next number (``Conflict`` for a
        duplicate or a gap); the first event of a run is number 0. A completed
        run takes no events (``InvalidTransition``); ``NotFound`` for an unknown
        run.
        """
        if not isinstance(event, CouncilRunEvent):
            raise ValidationError(
                f"append_event() takes a CouncilRunEvent, got {type(event).__name__}"
            )
        rid = _check_id(event.run_id)
        if type(event.event_type) is not str or not event.event_type:
            raise ValidationError("event_type must be a non-empty str")
        if len(event.event_type) > _MAX_TYPE:
            raise ValidationError(f"event_type is longer than {_MAX_TYPE} characters")
        if type(event.wave_index) is not int or event.wave_index < 0:
            raise ValidationError(f"wave_index must be an int >= 0, got {event.wave_index!r}")
        if event.seq is not None and (type(event.seq) is not int or event.seq < 0):
            raise ValidationError(f"seq must be an int >= 0, got {event.seq!r}")
        _json.check_json(event.payload, portable=self._portable, where="event payload")
        created = (
            _time.now()
            if event.created_at is None
            else _time.check_datetime(event.created_at, "created_at")
        )
        first = await self._first_seq(rid)
        if event.seq is not None and event.seq < first:
            raise ValidationError(f"council run {rid!r} numbers its events from {first}")
        shift = 1 - first  # the ledger numbers entries from 1
        attrs = {
            "type": event.event_type,
            "payload": event.payload,
            "wave": event.wave_index,
            "ts": _time.to_text(created),
        }
        try:
            seq = await self._ledger.append(
                rid, [attrs], first_seq=None if event.seq is None else event.seq + shift
            )
        except Conflict as e:
            if e.tag not in (ENTRY_TAG, PREV_TAG) or event.seq is None:
                raise
            raise await self._misnumbered(rid, event.seq, first, e) from None
        return CouncilRunEvent(
            rid, event.event_type, event.payload, event.wave_index, seq - shift, created
        )

    async def _misnumbered(self, rid: str, seq: int, first: int, e: Conflict) -> Conflict:
        """The Conflict of appending event ``seq`` where it is not the next number."""
        latest = await self._ledger.latest(rid)
        last = first - 1 if latest is None else latest.seq - (1 - first)
        what = "already exists" if seq <= last else "would leave a gap"
        return Conflict(
            f"council run {rid!r}: seq {seq} {what}; the next is {last + 1}",
            op_index=e.op_index,
            key=e.key,
            condition=e.condition,
            tag=e.tag,
        )

    async def get_run(self, run_id: str) -> CouncilRun | None:
        """The run, or None if there is none with that id."""
        head = await self._ledger.head(_check_id(run_id))
        return None if head is None else self._run(head)

    async def list_runs(
        self, status_filter: CouncilRunStatus | str | None = None
    ) -> list[CouncilRun]:
        """Runs (in ``status_filter``), most recent first; same-instant runs by id."""
        if status_filter is None:
            pk, index = _ALL, "gsi1"
        else:
            pk, index = _BY_STATUS + _status(status_filter).value, "gsi3"
        return await all_newest_first(self._table, index, pk, self._run)

    async def list_events(self, run_id: str) -> list[CouncilRunEvent]:
        """Every event of the run, in seq order; ``NotFound`` for an unknown run."""
        rid = _check_id(run_id)
        shift = 1 - await self._first_seq(rid)
        return [_event(rid, e, shift) for e in await self._ledger.entries(rid)]

    async def mark_interrupted_runs(self) -> int:
        """Move every ``running`` run to ``interrupted``; return how many moved."""
        moved = 0
        for run in await self.list_runs(CouncilRunStatus.RUNNING):
            try:
                await self._interrupt_if_running(run.id)
            except _NotRunning:
                continue  # it moved on by itself meanwhile
            moved += 1
        return moved

    async def _interrupt_if_running(self, rid: str) -> None:
        def decide(head: Item) -> dict[str, Any]:
            if head.attrs["status"] != CouncilRunStatus.RUNNING.value:
                raise _NotRunning
            return {
                "status": CouncilRunStatus.INTERRUPTED.value,
                "updated": _time.to_text(_time.now()),
                "gsi3pk": _BY_STATUS + CouncilRunStatus.INTERRUPTED.value,
            }

        await self._ledger.update_head(rid, decide)

    async def truncate_events_after_wave(self, run_id: str, wave_index: int) -> int:
        """Rewind the log to the end of wave ``wave_index``; return how many events went.

        See the module docstring; ``InvalidTransition`` for a running or
        completed run, ``NotFound`` for an unknown one.
        """
        rid = _check_id(run_id)
        if type(wave_index) is not int or wave_index < 0:
            raise ValidationError(f"wave_index must be an int >= 0, got {wave_index!r}")

        def allow(head: Item) -> None:
            status = CouncilRunStatus(head.attrs["status"])
            if status in (CouncilRunStatus.RUNNING, CouncilRunStatus.COMPLETED):
                raise InvalidTransition(
                    f"council run {rid!r} is {status.value}: "
                    + (
                        "interrupt it before rewinding"
                        if status is _S.RUNNING
                        else "it is final (re-run it from a wave with rewind_run)"
                    )
                )

        return await self._ledger.truncate_before_first(
            rid, lambda entry: entry.attrs["wave"] > wave_index, allow=allow
        )

    async def rewind_run(self, run_id: str, wave_index: int) -> int:
        """Re-run a run from the end of wave ``wave_index``; return how many events went.

        The events after that wave are deleted (as by
        :meth:`truncate_events_after_wave`) and the run returns to ``running``
        in the same step that reopens its log, so no reader sees it running
        with a partly deleted log; the rewind is recorded in
        :attr:`CouncilRun.rewinds`. This is how a *completed* run is re-run:
        :meth:`update_run_status` never leaves ``completed``. Raises
        ``InvalidTransition`` for a running run (its executor would race the
        deletes: interrupt it first), ``NotFound`` for an unknown run; a rewind
        cut short is finished by calling it again.
        """
        rid = _check_id(run_id)
        if type(wave_index) is not int or wave_index < 0:
            raise ValidationError(f"wave_index must be an int >= 0, got {wave_index!r}")
        first = await self._first_seq(rid)

        def allow(head: Item) -> None:
            if head.attrs["status"] == CouncilRunStatus.RUNNING.value:
                raise InvalidTransition(
                    f"council run {rid!r} is running: interrupt it before rewinding"
                )

        def then(head: Item, kept: int) -> dict[str, Any]:
            now = _time.to_text(_time.now())
            record = {
                "wave": wave_index,
                "from": head.attrs["status"],
                "kept": None if kept == 0 else kept - (1 - first),
                "at": now,
            }
            return {
                "status": CouncilRunStatus.RUNNING.value,
                "updated": now,
                "gsi3pk": _BY_STATUS + CouncilRunStatus.RUNNING.value,
                "rewinds": [*head.attrs.get("rewinds", ()), record],
            }

        return await self._ledger.truncate_before_first(
            rid, lambda entry: entry.attrs["wave"] > wave_index, allow=allow, then=then
        )

    def _run(self, head: Item) -> CouncilRun:
        a = head.attrs
        return CouncilRun(
            id=self._ledger.stream_of(head.pk),
            status=CouncilRunStatus(a["status"]),
            graph_json=a.get("graph"),
            metadata=a.get("meta", {}),
            created_at=_time.from_text(a["created"]),
            updated_at=_time.from_text(a["updated"]),
            rewinds=tuple(
                CouncilRewind(
                    r["wave"], CouncilRunStatus(r["from"]), r["kept"], _time.from_text(r["at"])
                )
                for r in a.get("rewinds", ())
            ),
        )


class _NotRunning(Exception):
    """Internal: the run left ``running`` before it could be interrupted."""


def _check_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError(f"a council run id is a non-empty str, got {run_id!r}")
    return str(run_id)


def _status(value: Any) -> CouncilRunStatus:
    try:
        return CouncilRunStatus(value)
    except ValueError:
        raise ValidationError(
            f"unknown council run status {value!r}: one of "
            + ", ".join(s.value for s in CouncilRunStatus)
        ) from None


def _check_graph(graph_json: Any) -> str:
    if type(graph_json) is not str:
        raise ValidationError(f"graph_json must be a str, got {type(graph_json).__name__}")
    try:
        json.loads(graph_json)
    except ValueError as e:
        raise ValidationError(f"graph_json is not JSON: {e}") from None
    return graph_json


def _event(rid: str, entry: Entry, shift: int) -> CouncilRunEvent:
    a = entry.attrs
    return CouncilRunEvent(
        rid, a["type"], a["payload"], a["wave"], entry.seq - shift, _time.from_text(a["ts"])
    )
