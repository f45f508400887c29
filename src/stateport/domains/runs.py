"""The run ledger (``sp.runs``): execution runs and their ordered events.

The source's ``RunLedger`` port, on the :class:`~stateport.primitives.Ledger`
primitive. A run is a ledger stream: its head holds the run record, its entries
the events. The status machine is enforced by the engine, not by this code::

    RUNNING ──complete_run──▶ COMPLETED
        ├─────fail_run──────▶ FAILED
        └────cancel_run─────▶ CANCELLED        (terminal states are final)

Appending to, or ending, a run that is not RUNNING raises
:class:`~stateport.errors.InvalidTransition`. Event numbers start at 1 and grow
by one; a duplicate or a gap raises :class:`~stateport.errors.Conflict`, and an
event without a number gets the next one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from .. import _json, _time
from ..digest import ContentDigest, DigestLike
from ..errors import ValidationError
from ..ports.table import Item, TablePort
from ..primitives.ledger import Entry, Ledger
from ..primitives.listing import all_newest_first, newest_first, order_key
from ..primitives.machine import StateMachine

__all__ = [
    "RUN_STATES",
    "RunEvent",
    "RunId",
    "RunLedger",
    "RunMetadata",
    "RunPage",
    "RunRecord",
    "RunStatus",
    "RunSummary",
]

_ALL: Final = "runs"
_BY_SPEC: Final = "runs-spec#"
_BY_STATUS: Final = "runs-status#"
_MAX_KIND: Final = 256


class RunId(str):
    """The identifier of a run (a UUID by default; any non-empty string is accepted)."""

    __slots__ = ()

    @classmethod
    def new(cls) -> RunId:
        """A new random run id."""
        return cls(uuid.uuid4())


class RunStatus(StrEnum):
    """Where a run stands. Every status but RUNNING is terminal."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return RUN_STATES.is_final(self)


RUN_STATES: Final = StateMachine(
    "run",
    {RunStatus.RUNNING: {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}},
)
"""The run status machine (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class RunMetadata:
    """What is known about a run when it starts."""

    agent_name: str
    git_sha: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)

    def _to_json(self) -> dict[str, Any]:
        return {"agent_name": self.agent_name, "git_sha": self.git_sha, "tags": dict(self.tags)}

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> RunMetadata:
        return cls(data["agent_name"], data.get("git_sha"), data.get("tags", {}))


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run. ``seq`` and ``timestamp`` are filled in when omitted."""

    kind: str
    payload: Any = None
    seq: int | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run reports when it ends; stored exactly as given."""

    total_events: int
    duration_ms: int
    success: bool
    final_state_digest: ContentDigest | None = None

    def _to_json(self) -> dict[str, Any]:
        digest = self.final_state_digest
        return {
            "total_events": self.total_events,
            "duration_ms": self.duration_ms,
            "success": self.success,
            "final_state_digest": None if digest is None else digest.as_str(),
        }

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> RunSummary:
        digest = data.get("final_state_digest")
        return cls(
            data["total_events"],
            data["duration_ms"],
            data["success"],
            None if digest is None else ContentDigest(digest),
        )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored."""

    run_id: RunId
    spec_digest: ContentDigest
    metadata: RunMetadata
    status: RunStatus
    summary: RunSummary | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of :meth:`RunLedger.list_runs_page`; pass ``cursor`` back for the next."""

    runs: list[RunRecord]
    cursor: str | None


class RunLedger:
    """``sp.runs``: runs, their events and their status machine."""

    def __init__(self, table: TablePort) -> None:
        self._table = table
        self._ledger = Ledger(table, "run", noun="run")
        self._portable = table.capabilities.portable

    # ---- writes -------------------------------------------------------------

    async def create_run(
        self,
        spec_digest: DigestLike,
        metadata: RunMetadata,
        *,
        run_id: str | None = None,
        created_at: datetime | None = None,
    ) -> RunId:
        """Start a RUNNING run of the spec ``spec_digest``; return its new id.

        ``run_id`` (default: a random UUID) and ``created_at`` (default: now)
        may be given, e.g. when importing; an existing id raises ``Conflict``.
        """
        spec = ContentDigest.of(spec_digest)
        meta = self._check_metadata(metadata)
        rid = RunId.new() if run_id is None else RunId(run_id)
        created = (
            _time.now() if created_at is None else _time.check_datetime(created_at, "created_at")
        )
        order = order_key(_time.to_text(created), rid)
        status = RunStatus.RUNNING
        await self._ledger.create(
            rid,
            {
                "status": status.value,
                "spec": spec.as_str(),
                "meta": meta,
                "created": _time.to_text(created),
                "gsi1pk": _ALL,
                "gsi1sk": order,
                "gsi2pk": _BY_SPEC + spec.as_str(),
                "gsi2sk": order,
                "gsi3pk": _BY_STATUS + status.value,
                "gsi3sk": order,
            },
        )
        return rid

    async def append_event(self, run_id: str, event: RunEvent) -> RunEvent:
        """Append ``event`` to a RUNNING run; return it with its seq and timestamp."""
        if not isinstance(event, RunEvent):
            raise ValidationError(f"event is a {type(event).__name__}, not a RunEvent")
        now = _time.now()
        ts, entry = self._event_attrs(event, 0, now, _time.to_text(now))
        rid = self._ledger_id(run_id)
        seq = await self._ledger.append(rid, [entry], first_seq=event.seq)
        return RunEvent(event.kind, event.payload, seq, ts)

    async def append_events(self, run_id: str, events: Sequence[RunEvent]) -> list[RunEvent]:
        """Append ``events`` in one transaction: all of them or none.

        Their seqs, where given, must continue the run's numbering without a
        gap; events without one are numbered after the previous event.
        """
        if isinstance(events, (str, bytes)) or not isinstance(events, Sequence):
            raise ValidationError("append_events() takes a list of RunEvent")
        if not events:
            raise ValidationError("no events to append")
        now = _time.now()  # the time of every event of the batch that has none
        now_text = _time.to_text(now)
        stamps: list[datetime] = []
        entries: list[dict[str, Any]] = []
        first: int | None = None
        for i, event in enumerate(events):
            if not isinstance(event, RunEvent):
                raise ValidationError(f"event {i} is a {type(event).__name__}, not a RunEvent")
            if event.seq is not None:
                if i == 0:
                    first = event.seq
                if first is None or event.seq != first + i:
                    raise ValidationError(
                        "the seqs of one batch are all given, consecutive, or all omitted; "
                        f"event {i} has seq {event.seq!r}"
                    )
            elif first is not None:
                raise ValidationError(f"event {i} has no seq but the batch's first one does")
            ts, entry = self._event_attrs(event, i, now, now_text)
            stamps.append(ts)
            entries.append(entry)
        start = await self._ledger.append(self._ledger_id(run_id), entries, first_seq=first)
        return [
            RunEvent(e.kind, e.payload, start + i, ts)
            for i, (e, ts) in enumerate(zip(events, stamps, strict=True))
        ]

    async def complete_run(self, run_id: str, summary: RunSummary) -> None:
        """RUNNING → COMPLETED, storing ``summary``."""
        await self._finish(run_id, RunStatus.COMPLETED, summary)

    async def fail_run(self, run_id: str, summary: RunSummary) -> None:
        """RUNNING → FAILED, storing ``summary``."""
        await self._finish(run_id, RunStatus.FAILED, summary)

    async def cancel_run(self, run_id: str, summary: RunSummary) -> None:
        """RUNNING → CANCELLED, storing ``summary``."""
        await self._finish(run_id, RunStatus.CANCELLED, summary)

    async def _finish(self, run_id: str, status: RunStatus, summary: RunSummary) -> None:
        data = self._check_summary(summary)
        completed = _time.to_text(_time.now())

        def decide(head: Item) -> dict[str, Any]:
            RUN_STATES.check(RunStatus(head.attrs["status"]), status, subject=f"run {run_id!r}")
            return {
                "status": status.value,
                "open": False,
                "summary": data,
                "completed": completed,
                "gsi3pk": _BY_STATUS + status.value,
            }

        await self._ledger.update_head(self._ledger_id(run_id), decide)

    # ---- reads --------------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRecord:
        """The run's record; ``NotFound`` for an unknown id."""
        return _record(await self._ledger.require_head(self._ledger_id(run_id)), self._ledger)

    async def get_events(self, run_id: str) -> list[RunEvent]:
        """Every event of the run, in seq order; ``NotFound`` for an unknown run."""
        rid = self._ledger_id(run_id)
        events = [_event(e) for e in await self._ledger.entries(rid)]
        if not events:
            await self._ledger.require_head(rid)
        return events

    async def get_events_after(
        self, run_id: str, after_seq: int = 0, *, limit: int | None = None
    ) -> list[RunEvent]:
        """Events with ``seq > after_seq``, in order, at most ``limit`` (for tailing)."""
        rid = self._ledger_id(run_id)
        events = [_event(e) for e in await self._ledger.entries(rid, after=after_seq, limit=limit)]
        if not events:
            await self._ledger.require_head(rid)
        return events

    async def latest_event(self, run_id: str) -> RunEvent | None:
        """The run's last event, or None if it has none yet."""
        rid = self._ledger_id(run_id)
        latest = await self._ledger.latest(rid)
        if latest is None:
            await self._ledger.require_head(rid)
            return None
        return _event(latest)

    async def list_runs(
        self, spec_digest: DigestLike | None = None, *, status: RunStatus | str | None = None
    ) -> list[RunRecord]:
        """Every run (of ``spec_digest``, in ``status``), newest first.

        Runs created at the same instant come in a fixed order (by id, descending).
        """
        return await all_newest_first(self._table, *self._listing(spec_digest, status))

    async def list_runs_page(
        self,
        spec_digest: DigestLike | None = None,
        *,
        status: RunStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of :meth:`list_runs`: at most ``limit`` runs, and a cursor if more follow."""
        runs, next_cursor = await newest_first(
            self._table, *self._listing(spec_digest, status), limit=limit, cursor=cursor
        )
        return RunPage(runs, next_cursor)

    def _listing(
        self, spec_digest: DigestLike | None, status: RunStatus | str | None
    ) -> tuple[str, str, Callable[[Item], RunRecord | None]]:
        """The index, its partition and the converter that list runs of a spec, a status."""
        wanted = None if status is None else _status(status)
        if spec_digest is not None:
            index, pk = "gsi2", _BY_SPEC + ContentDigest.of(spec_digest).as_str()
        elif wanted is not None:
            index, pk = "gsi3", _BY_STATUS + wanted.value
        else:
            index, pk = "gsi1", _ALL
        filter_status = wanted if spec_digest is not None else None

        def convert(item: Item) -> RunRecord | None:
            record = _record(item, self._ledger)
            if filter_status is None or record.status is filter_status:
                return record
            return None

        return index, pk, convert

    async def watch_events(
        self, run_id: str, after_seq: int = 0, *, poll_interval: float = 0.5
    ) -> AsyncIterator[RunEvent]:
        """Yield the run's events after ``after_seq`` as they are appended.

        Ends once the run is in a terminal state and every event is yielded.
        Appends through this store wake it at once; appends by other processes
        are seen within ``poll_interval`` seconds (at once on engines that
        push changes, such as PostgreSQL).
        """
        if type(after_seq) is not int or after_seq < 0:
            raise ValidationError(f"after_seq must be an int >= 0, got {after_seq!r}")
        if not isinstance(poll_interval, (int, float)) or not poll_interval > 0:
            raise ValidationError(f"poll_interval must be > 0, got {poll_interval!r}")
        rid = self._ledger_id(run_id)
        last = after_seq
        async with self._table.watch(self._ledger.pk(rid)) as watch:
            while True:
                # the head first: if it is terminal, no event can follow the ones read next
                head = await self._ledger.require_head(rid)
                while True:
                    batch = await self._ledger.entries(rid, after=last, limit=1000)
                    for entry in batch:
                        yield _event(entry)
                        last = entry.seq
                    if len(batch) < 1000:
                        break
                if RunStatus(head.attrs["status"]).terminal:
                    return
                await watch.wait(poll_interval)

    # ---- validation -------------------------------------------------------

    def _ledger_id(self, run_id: Any) -> str:
        if not isinstance(run_id, str):
            raise ValidationError(f"a run id is a str, got {type(run_id).__name__}")
        if not run_id:
            raise ValidationError("a run id must not be empty")
        return str(run_id)

    def _check_metadata(self, metadata: Any) -> dict[str, Any]:
        if not isinstance(metadata, RunMetadata):
            raise ValidationError(f"metadata must be a RunMetadata, got {type(metadata).__name__}")
        if type(metadata.agent_name) is not str or not metadata.agent_name:
            raise ValidationError("metadata.agent_name must be a non-empty str")
        if metadata.git_sha is not None and type(metadata.git_sha) is not str:
            raise ValidationError("metadata.git_sha must be a str or None")
        if not isinstance(metadata.tags, Mapping):
            raise ValidationError("metadata.tags must be a mapping")
        data = metadata._to_json()
        _json.check_json(data, portable=self._portable, where="metadata")
        return data

    def _event_attrs(
        self, event: RunEvent, i: int, now: datetime, now_text: str
    ) -> tuple[datetime, dict[str, Any]]:
        if type(event.kind) is not str or not event.kind or len(event.kind) > _MAX_KIND:
            raise ValidationError(
                f"event {i}: kind must be a non-empty str of at most {_MAX_KIND} characters"
            )
        if event.seq is not None and (type(event.seq) is not int or event.seq < 1):
            raise ValidationError(f"event {i}: seq must be an int >= 1, got {event.seq!r}")
        # the payload is validated (JSON, nesting, size) as the entry is stored
        if event.timestamp is None:
            return now, {"kind": event.kind, "payload": event.payload, "ts": now_text}
        ts = _time.check_datetime(event.timestamp, f"event {i} timestamp")
        return ts, {"kind": event.kind, "payload": event.payload, "ts": _time.to_text(ts)}

    def _check_summary(self, summary: Any) -> dict[str, Any]:
        if not isinstance(summary, RunSummary):
            raise ValidationError(f"summary must be a RunSummary, got {type(summary).__name__}")
        for name in ("total_events", "duration_ms"):
            value = getattr(summary, name)
            if type(value) is not int or value < 0:
                raise ValidationError(f"summary.{name} must be an int >= 0, got {value!r}")
        if type(summary.success) is not bool:
            raise ValidationError(f"summary.success must be a bool, got {summary.success!r}")
        digest = summary.final_state_digest
        if digest is not None and not isinstance(digest, ContentDigest):
            summary = RunSummary(
                summary.total_events,
                summary.duration_ms,
                summary.success,
                ContentDigest.of(digest),
            )
        return summary._to_json()


def _status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        raise ValidationError(
            f"unknown run status {value!r}: one of {', '.join(s.value for s in RunStatus)}"
        ) from None


def _record(item: Item, ledger: Ledger) -> RunRecord:
    a = item.attrs
    summary = a.get("summary")
    completed = a.get("completed")
    return RunRecord(
        run_id=RunId(ledger.stream_of(item.pk)),
        spec_digest=ContentDigest(a["spec"]),
        metadata=RunMetadata._from_json(a["meta"]),
        status=RunStatus(a["status"]),
        summary=None if summary is None else RunSummary._from_json(summary),
        created_at=_time.from_text(a["created"]),
        completed_at=None if completed is None else _time.from_text(completed),
    )


def _event(entry: Entry) -> RunEvent:
    a = entry.attrs
    return RunEvent(a["kind"], a["payload"], entry.seq, _time.from_text(a["ts"]))
