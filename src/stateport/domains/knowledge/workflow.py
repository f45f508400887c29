"""Workflow state: operation runs, their steps, input bundles and manifests.

An operation run is a :class:`~stateport.primitives.Ledger` stream: its head
holds the run (status, inputs, timestamps), its entries are the run's steps,
numbered 1, 2, 3, ... by the ledger, without gaps. Runs and steps follow
:data:`~.models.OPERATION_STATES` (pending → running → succeeded | failed |
cancelled), checked inside version-conditioned writes, so the machine holds
under any concurrency. Once a run is final it takes no new steps and its
steps no longer change.

Artifacts created with ``Provenance(run_id=...)`` are linked to the run in the
same transaction (``out#<artifact>`` items in the run's partition), so a run
lists what it produced; a manifest is stored as given.
"""

from __future__ import annotations

from typing import Any

from ... import _time
from ..._retry import moved_on, retrying
from ...errors import Conflict, InvalidTransition, NotFound, ValidationError
from ...ports.table import AttrEquals, Check, Exists, Item, KeyRange, Put, Update, VersionEquals
from ...primitives.ledger import HEAD_SK, Entry, entry_sk
from ...primitives.listing import newest_first, order_key
from ..work.models import check_name, check_text
from . import keys
from .base import Base
from .models import (
    OPERATION_STATES,
    Artifact,
    InputBundle,
    OperationRun,
    OperationStatus,
    RunManifest,
    RunPage,
    WorkflowStep,
    check_actor,
    check_id,
    check_json_value,
    check_limit,
    check_metadata,
    check_refs,
    check_revision,
    check_status,
    new_id,
    optional_time,
    refs_of,
    time_of,
)

__all__ = ["WorkflowOps"]


class WorkflowOps(Base):
    """Operation runs, steps and manifests."""

    async def create_run(
        self,
        operation: str,
        *,
        inputs: InputBundle | None = None,
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
        run_id: str | None = None,
    ) -> OperationRun:
        """A new pending run of ``operation`` reading ``inputs`` (revisions that must
        exist: :class:`NotFound`). ``run_id`` defaults to a new id; an existing one
        is a :class:`Conflict`."""
        op_name = check_name(operation, "operation")
        bundle = inputs if inputs is not None else InputBundle()
        if not isinstance(bundle, InputBundle):
            raise ValidationError(f"inputs must be an InputBundle, got {type(bundle).__name__}")
        refs = check_refs(bundle.artifacts, "inputs.artifacts")
        bundle_meta = check_metadata(bundle.metadata, "inputs.metadata", portable=self._portable)
        meta = check_metadata(metadata, "metadata", portable=self._portable)
        who = check_actor(actor)
        rid = new_id("run") if run_id is None else check_id(run_id, "run_id")
        await self._require_revisions(refs)
        now = self._now()
        order = order_key(now, rid)
        status = OperationStatus.PENDING
        attrs: dict[str, Any] = {
            "status": status.value,
            "operation": op_name,
            "inputs": {"artifacts": refs, "metadata": bundle_meta},
            "metadata": meta,
            "actor": who,
            "created": now,
            "started": None,
            "finished": None,
            "error": None,
            "gsi1pk": keys.ALL_RUNS,
            "gsi1sk": order,
            "gsi2pk": keys.runs_index(status.value),
            "gsi2sk": order,
        }
        await self._runs.create(rid, attrs)
        return _run(rid, attrs)

    async def get_run(self, run_id: str) -> OperationRun:
        """The run; :class:`NotFound` if there is none."""
        rid = check_id(run_id, "run_id")
        head = await self._runs.head(rid)
        if head is None:
            raise NotFound(f"no operation run {rid!r}")
        return _run(rid, head.attrs)

    async def list_runs(
        self,
        *,
        status: OperationStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs (in ``status``), newest first; same-instant runs by id."""
        if status is None:
            index, pk = "gsi1", keys.ALL_RUNS
        else:
            index, pk = "gsi2", keys.runs_index(check_status(status).value)

        def convert(item: Item) -> OperationRun:
            return _run(self._runs.stream_of(item.pk), item.attrs)

        runs, next_cursor = await newest_first(
            self._table, index, pk, convert, limit=check_limit(limit), cursor=cursor
        )
        return RunPage(runs, next_cursor)

    async def set_run_status(
        self, run_id: str, status: OperationStatus | str, *, error: str | None = None
    ) -> OperationRun:
        """Move the run to ``status`` (:class:`InvalidTransition` if the machine
        forbids it); ``error`` may describe a failed or cancelled run."""
        rid = check_id(run_id, "run_id")
        target = check_status(status)
        if error is not None:
            if target not in (OperationStatus.FAILED, OperationStatus.CANCELLED):
                raise ValidationError("an error describes a failed or cancelled run only")
            error = check_text(error, "error")
        applied: dict[str, Any] = {}

        def decide(head: Item) -> dict[str, Any]:
            current = OperationStatus(head.attrs["status"])
            OPERATION_STATES.check(current, target, subject=f"operation run {rid!r}")
            now = self._now()
            change: dict[str, Any] = {
                "status": target.value,
                "gsi2pk": keys.runs_index(target.value),
            }
            if target is OperationStatus.RUNNING:
                change["started"] = now
            if OPERATION_STATES.is_final(target):
                change["finished"] = now
                change["open"] = False
            if error is not None:
                change["error"] = error
            applied.clear()
            applied.update(change)
            return change

        head = await self._runs.update_head(rid, decide)
        return _run(rid, {**head.attrs, **applied})

    # ---- steps --------------------------------------------------------------------

    async def add_step(
        self, run_id: str, name: str, *, metadata: dict[str, Any] | None = None
    ) -> WorkflowStep:
        """Append a pending step to a run that is not final (:class:`InvalidTransition`
        otherwise); steps are numbered 1, 2, 3, ..."""
        rid = check_id(run_id, "run_id")
        attrs: dict[str, Any] = {
            "name": check_name(name, "name"),
            "status": OperationStatus.PENDING.value,
            "metadata": check_metadata(metadata, "metadata", portable=self._portable),
            "output": None,
            "created": self._now(),
            "started": None,
            "finished": None,
        }
        seq = await self._runs.append(rid, [attrs])
        return _step(rid, Entry(seq, attrs))

    async def set_step_status(
        self, run_id: str, seq: int, status: OperationStatus | str, *, output: Any = None
    ) -> WorkflowStep:
        """Move step ``seq`` to ``status`` (the run's machine), storing ``output`` (JSON)
        when given. A final run's steps no longer change (:class:`InvalidTransition`)."""
        rid = check_id(run_id, "run_id")
        number = check_revision(seq, "seq")
        target = check_status(status)
        if output is not None:
            check_json_value(output, "output", portable=self._portable)
        pk = self._runs.pk(rid)

        async def attempt() -> WorkflowStep:
            item = await self._table.get(pk, entry_sk(number))
            if item is None:
                await self.get_run(rid)  # NotFound for an unknown run
                raise NotFound(f"operation run {rid!r} has no step {number}")
            subject = f"step {number} of operation run {rid!r}"
            OPERATION_STATES.check(OperationStatus(item.attrs["status"]), target, subject=subject)
            now = self._now()
            change: dict[str, Any] = {"status": target.value}
            if target is OperationStatus.RUNNING:
                change["started"] = now
            if OPERATION_STATES.is_final(target):
                change["finished"] = now
            if output is not None:
                change["output"] = output
            try:
                with moved_on(keys.STEP_TAG):
                    await self._table.transact(
                        [
                            Update(
                                pk,
                                item.sk,
                                change,
                                condition=VersionEquals(item.version),
                                tag=keys.STEP_TAG,
                            ),
                            Check(pk, HEAD_SK, AttrEquals("open", True), tag=keys.RUN_TAG),
                        ]
                    )
            except Conflict as e:
                if e.tag != keys.RUN_TAG:
                    raise
                run = await self.get_run(rid)
                raise InvalidTransition(
                    f"operation run {rid!r} is {run.status.value}: its steps are final"
                ) from None
            return _step(rid, Entry(number, {**item.attrs, **change}))

        return await retrying(attempt, what=f"step {number} of operation run {rid!r}")

    async def list_steps(self, run_id: str) -> list[WorkflowStep]:
        """The run's steps in order (empty for an unknown run)."""
        rid = check_id(run_id, "run_id")
        return [_step(rid, e) for e in await self._runs.entries(rid)]

    # ---- manifests and outputs ------------------------------------------------------

    async def save_manifest(self, manifest: RunManifest) -> RunManifest:
        """Store (or replace) the run's manifest; its artifact revisions must exist.
        Returns it as stored (timestamps in UTC)."""
        if not isinstance(manifest, RunManifest):
            raise ValidationError(
                f"save_manifest() takes a RunManifest, got {type(manifest).__name__}"
            )
        rid = check_id(manifest.run_id, "manifest.run_id")
        attrs: dict[str, Any] = {
            "inputs": check_refs(manifest.inputs, "manifest.inputs"),
            "outputs": check_refs(manifest.outputs, "manifest.outputs"),
            "diagnostics": check_json_value(
                manifest.diagnostics, "manifest.diagnostics", portable=self._portable
            ),
            "created": optional_time(manifest.created_at, "manifest.created_at"),
            "started": optional_time(manifest.started_at, "manifest.started_at"),
            "finished": optional_time(manifest.finished_at, "manifest.finished_at"),
            "metadata": check_metadata(
                manifest.metadata, "manifest.metadata", portable=self._portable
            ),
        }
        await self._require_revisions([*attrs["inputs"], *attrs["outputs"]])
        pk = self._runs.pk(rid)
        try:
            await self._table.transact(
                [Check(pk, HEAD_SK, Exists(), tag=keys.RUN_TAG), Put(pk, keys.MANIFEST, attrs)]
            )
        except Conflict as e:
            if e.tag == keys.RUN_TAG:
                raise NotFound(f"no operation run {rid!r}") from None
            raise
        return _manifest(rid, attrs)

    async def get_manifest(self, run_id: str) -> RunManifest | None:
        """The run's manifest, or None if it has none; :class:`NotFound` for an unknown run."""
        rid = check_id(run_id, "run_id")
        pk = self._runs.pk(rid)
        head, item = await self._table.batch_get([(pk, HEAD_SK), (pk, keys.MANIFEST)])
        if head is None:
            raise NotFound(f"no operation run {rid!r}")
        return None if item is None else _manifest(rid, item.attrs)

    async def list_run_outputs(self, run_id: str) -> list[Artifact]:
        """The live artifacts the run produced (``Provenance(run_id=...)``), by id."""
        rid = check_id(run_id, "run_id")
        links = [
            i.sk[len(keys.OUTPUT) :]
            async for i in self._table.query_all(self._runs.pk(rid), KeyRange.prefix(keys.OUTPUT))
        ]
        return await self._artifacts_in_order(links)

    async def _require_revisions(self, refs: list[list[Any]]) -> None:
        """:class:`NotFound` unless every ``[artifact id, revision]`` exists."""
        wanted = [(a, r) for a, r in refs]
        found = await self._revisions(wanted)
        for aid, rev in wanted:
            if (aid, rev) not in found:
                raise NotFound(f"artifact {aid!r} has no revision {rev}")


def _run(rid: str, a: dict[str, Any]) -> OperationRun:
    inputs = a["inputs"]
    return OperationRun(
        id=rid,
        operation=a["operation"],
        status=OperationStatus(a["status"]),
        inputs=InputBundle(refs_of(inputs["artifacts"]), inputs["metadata"]),
        metadata=a["metadata"],
        actor=a["actor"],
        created_at=_time.from_text(a["created"]),
        started_at=time_of(a["started"]),
        finished_at=time_of(a["finished"]),
        error=a["error"],
    )


def _step(rid: str, entry: Entry) -> WorkflowStep:
    a = entry.attrs
    return WorkflowStep(
        run_id=rid,
        seq=entry.seq,
        name=a["name"],
        status=OperationStatus(a["status"]),
        metadata=a["metadata"],
        output=a["output"],
        created_at=_time.from_text(a["created"]),
        started_at=time_of(a["started"]),
        finished_at=time_of(a["finished"]),
    )


def _manifest(rid: str, a: dict[str, Any]) -> RunManifest:
    return RunManifest(
        run_id=rid,
        inputs=refs_of(a["inputs"]),
        outputs=refs_of(a["outputs"]),
        diagnostics=a["diagnostics"],
        created_at=time_of(a["created"]),
        started_at=time_of(a["started"]),
        finished_at=time_of(a["finished"]),
        metadata=a["metadata"],
    )
