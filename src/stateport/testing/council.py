"""Conformance tests for the council repository (``sp.council``)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..domains.council import (
    TRANSITIONS,
    CouncilRepository,
    CouncilRun,
    CouncilRunEvent,
    CouncilRunStatus,
)
from ..errors import Conflict, InvalidTransition, NotFound, ValidationError
from ..ports.engine import Capability
from ._support import async_test, in_threads, needs
from .store import StoreConformance

__all__ = ["CouncilRepositoryConformance"]

S = CouncilRunStatus
GRAPH = json.dumps({"nodes": [{"id": "a"}, {"id": "b"}], "edges": [["a", "b"]]})

# how to reach each status from ``running``
_PATH = {
    S.RUNNING: [],
    S.AWAITING_APPROVAL: [S.AWAITING_APPROVAL],
    S.INTERRUPTED: [S.INTERRUPTED],
    S.FAILED: [S.FAILED],
    S.COMPLETED: [S.COMPLETED],
}


class CouncilRepositoryConformance(StoreConformance):
    """What every engine must show for ``sp.council``."""

    @async_test
    async def test_create_get_and_duplicate(self) -> None:
        async with self.open_store() as sp:
            created = await sp.council.create_run(
                CouncilRun("r1", graph_json=GRAPH, metadata={"q": "why?"})
            )
            got = await sp.council.get_run("r1")
            assert got == created
            assert got is not None and got.status is S.RUNNING and got.graph_json == GRAPH
            assert got.created_at is not None and got.created_at == got.updated_at
            with pytest.raises(Conflict):
                await sp.council.create_run(CouncilRun("r1"))
            assert await sp.council.get_run("r1") == created
            assert await sp.council.get_run("nobody") is None

    @async_test
    async def test_every_status_change_follows_the_machine(self) -> None:
        async with self.open_store() as sp:
            n = 0
            for source, path in _PATH.items():
                for target in S:
                    n += 1
                    rid = f"m{n}"
                    await sp.council.create_run(CouncilRun(rid))
                    for step in path:
                        await sp.council.update_run_status(rid, step)
                    allowed = target is source or target in TRANSITIONS[source]
                    if allowed:
                        await sp.council.update_run_status(rid, target)
                        expected = target
                    else:
                        with pytest.raises(InvalidTransition):
                            await sp.council.update_run_status(rid, target.value)
                        expected = source
                    run = await sp.council.get_run(rid)
                    assert run is not None and run.status is expected, (source, target)
            with pytest.raises(NotFound):
                await sp.council.update_run_status("nobody", S.FAILED)

    @async_test
    async def test_graph_is_replaced_until_the_run_completes(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("g"))
            await sp.council.update_graph("g", GRAPH)
            run = await sp.council.get_run("g")
            assert run is not None and run.graph_json == GRAPH
            assert run.updated_at is not None and run.created_at is not None
            assert run.updated_at >= run.created_at
            await sp.council.update_graph("g", "[]")
            assert (await sp.council.get_run("g")).graph_json == "[]"  # type: ignore[union-attr]
            with pytest.raises(ValidationError):
                await sp.council.update_graph("g", "{not json")
            with pytest.raises(NotFound):
                await sp.council.update_graph("nobody", GRAPH)
            await sp.council.update_run_status("g", S.COMPLETED)
            with pytest.raises(InvalidTransition):
                await sp.council.update_graph("g", GRAPH)

    @async_test
    async def test_events_are_numbered_without_gaps(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("e"))
            first = await sp.council.append_event(CouncilRunEvent("e", "start", {"x": 1}))
            assert first.seq == 0 and first.created_at is not None  # 0-based, as the source
            second = await sp.council.append_event(
                CouncilRunEvent("e", "node", wave_index=1, seq=1)
            )
            assert second.seq == 1
            with pytest.raises(Conflict, match="seq 1 already exists; the next is 2"):
                await sp.council.append_event(CouncilRunEvent("e", "dup", seq=1))
            with pytest.raises(Conflict, match="seq 5 would leave a gap; the next is 2"):
                await sp.council.append_event(CouncilRunEvent("e", "gap", seq=5))
            events = await sp.council.list_events("e")
            assert events == [first, second]
            with pytest.raises(NotFound):
                await sp.council.append_event(CouncilRunEvent("nobody", "x"))
            with pytest.raises(NotFound):
                await sp.council.list_events("nobody")

    @async_test
    async def test_appends_follow_changes_made_by_another_writer(self) -> None:
        # a second repository object on the same table stands for another process
        async with self.open_store() as sp:
            other = CouncilRepository(sp.table)
            await sp.council.create_run(CouncilRun("w"))
            await sp.council.append_event(CouncilRunEvent("w", "first"))
            await other.update_graph("w", GRAPH)  # the run changes and stays open
            await other.update_run_status("w", S.AWAITING_APPROVAL)
            second = await sp.council.append_event(CouncilRunEvent("w", "second"))
            assert second.seq == 1
            await other.update_run_status("w", S.RUNNING)
            await other.update_run_status("w", S.COMPLETED)
            with pytest.raises(InvalidTransition):
                await sp.council.append_event(CouncilRunEvent("w", "late"))
            assert [e.seq for e in await other.list_events("w")] == [0, 1]

    @async_test
    async def test_a_completed_run_takes_no_events(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("c"))
            await sp.council.append_event(CouncilRunEvent("c", "only"))
            await sp.council.update_run_status("c", S.FAILED)
            await sp.council.append_event(CouncilRunEvent("c", "failure details"))
            await sp.council.update_run_status("c", S.RUNNING)
            await sp.council.update_run_status("c", S.COMPLETED)
            with pytest.raises(InvalidTransition):
                await sp.council.append_event(CouncilRunEvent("c", "late"))
            assert len(await sp.council.list_events("c")) == 2

    @async_test
    async def test_list_runs_newest_first_by_status(self) -> None:
        async with self.open_store() as sp:
            t0 = datetime(2026, 3, 1, tzinfo=UTC)
            for i in range(5):
                await sp.council.create_run(
                    CouncilRun(f"r{i}", created_at=t0 + timedelta(seconds=i))
                )
            await sp.council.create_run(CouncilRun("tie-a", created_at=t0))
            await sp.council.update_run_status("r1", S.FAILED)
            await sp.council.update_run_status("r3", S.AWAITING_APPROVAL)
            assert [r.id for r in await sp.council.list_runs()] == [
                "r4",
                "r3",
                "r2",
                "r1",
                "tie-a",
                "r0",
            ]
            assert [r.id for r in await sp.council.list_runs(S.RUNNING)] == [
                "r4",
                "r2",
                "tie-a",
                "r0",
            ]
            assert [r.id for r in await sp.council.list_runs("failed")] == ["r1"]
            assert await sp.council.list_runs(S.COMPLETED) == []

    @async_test
    async def test_mark_interrupted_runs_at_boot(self) -> None:
        async with self.open_store() as sp:
            for rid, status in (
                ("a", S.RUNNING),
                ("b", S.RUNNING),
                ("c", S.AWAITING_APPROVAL),
                ("d", S.COMPLETED),
                ("e", S.FAILED),
            ):
                await sp.council.create_run(CouncilRun(rid))
                if status is not S.RUNNING:
                    await sp.council.update_run_status(rid, status)
            assert await sp.council.mark_interrupted_runs() == 2
            statuses = {r.id: r.status for r in await sp.council.list_runs()}
            assert statuses == {
                "a": S.INTERRUPTED,
                "b": S.INTERRUPTED,
                "c": S.AWAITING_APPROVAL,
                "d": S.COMPLETED,
                "e": S.FAILED,
            }
            assert await sp.council.mark_interrupted_runs() == 0

    @async_test
    async def test_truncate_after_wave_and_continue_numbering(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("w"))
            for wave in (0, 0, 1, 1, 2, 3, 3):
                await sp.council.append_event(CouncilRunEvent("w", f"wave{wave}", wave_index=wave))
            with pytest.raises(InvalidTransition):  # running: interrupt first
                await sp.council.truncate_events_after_wave("w", 1)
            await sp.council.update_run_status("w", S.INTERRUPTED)
            assert await sp.council.truncate_events_after_wave("w", 1) == 3
            events = await sp.council.list_events("w")
            assert [(e.seq, e.wave_index) for e in events] == [(0, 0), (1, 0), (2, 1), (3, 1)]
            assert await sp.council.truncate_events_after_wave("w", 9) == 0
            await sp.council.update_run_status("w", S.RUNNING)
            again = await sp.council.append_event(CouncilRunEvent("w", "redo", wave_index=2))
            assert again.seq == 4
            with pytest.raises(Conflict):
                await sp.council.append_event(CouncilRunEvent("w", "old number", seq=6))
            await sp.council.update_run_status("w", S.INTERRUPTED)
            assert await sp.council.truncate_events_after_wave("w", 0) == 3
            assert [e.seq for e in await sp.council.list_events("w")] == [0, 1]
            with pytest.raises(NotFound):
                await sp.council.truncate_events_after_wave("nobody", 0)
            await sp.council.update_run_status("w", S.RUNNING)
            await sp.council.update_run_status("w", S.COMPLETED)
            with pytest.raises(InvalidTransition, match="rewind_run"):
                await sp.council.truncate_events_after_wave("w", 0)

    @async_test
    async def test_truncating_a_long_log(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("long"))
            for i in range(250):
                await sp.council.append_event(CouncilRunEvent("long", "e", wave_index=i // 10))
            await sp.council.update_run_status("long", S.INTERRUPTED)
            assert await sp.council.truncate_events_after_wave("long", 2) == 220
            assert [e.seq for e in await sp.council.list_events("long")] == list(range(30))

    @async_test
    async def test_concurrent_appenders_and_status_changes(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("busy"))

            async def append(worker: int) -> int:
                for i in range(15):
                    await sp.council.append_event(
                        CouncilRunEvent("busy", "tick", {"w": worker, "i": i}, wave_index=worker)
                    )
                return worker

            async def flip(_: int) -> int:
                wins = 0
                for _round in range(10):
                    try:
                        await sp.council.update_run_status("busy", S.AWAITING_APPROVAL)
                        wins += 1
                    except InvalidTransition:
                        pass
                    await sp.council.update_run_status("busy", S.RUNNING)
                return wins

            await asyncio.gather(in_threads(append, 3), in_threads(flip, 2))
            events = await sp.council.list_events("busy")
            assert [e.seq for e in events] == list(range(45))
            assert sorted((e.payload["w"], e.payload["i"]) for e in events) == [
                (w, i) for w in range(3) for i in range(15)
            ]

    @async_test
    async def test_appends_racing_a_rewind_are_kept_or_refused_never_lost(self) -> None:
        """A rewind closes the run's log while it deletes: an append made meanwhile
        is refused or kept, never acknowledged and then deleted."""
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("r"))
            for wave in range(3):
                for _ in range(100):
                    await sp.council.append_event(CouncilRunEvent("r", "e", wave_index=wave))
            await sp.council.update_run_status("r", S.INTERRUPTED)
            accepted: list[int] = []
            refused = 0
            stop = threading.Event()

            async def append() -> None:
                nonlocal refused
                while not stop.is_set():
                    try:
                        event = await sp.council.append_event(
                            CouncilRunEvent("r", "late", wave_index=0)
                        )
                    except InvalidTransition:
                        refused += 1
                    else:
                        accepted.append(event.seq or 0)

            appender = threading.Thread(target=lambda: asyncio.run(append()))
            appender.start()
            try:
                await asyncio.sleep(0.01)
                # wave 9 is beyond every event: the rewind must delete nothing
                deleted = []
                for _ in range(40):
                    deleted.append(await sp.council.truncate_events_after_wave("r", 9))
                    await asyncio.sleep(0.001)
            finally:
                stop.set()
                await asyncio.to_thread(appender.join)
            assert deleted == [0] * 40
            kept = {e.seq for e in await sp.council.list_events("r")}
            assert set(accepted) <= kept, "an append that succeeded was deleted"
            assert kept == set(range(300 + len(accepted)))  # numbered from 0
            assert accepted  # the appender ran during the rewinds (refusals: likely)

    @async_test
    async def test_a_rewind_cut_short_is_finished_by_running_it_again(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("r"))
            for wave in (0, 1, 2):
                await sp.council.append_event(CouncilRunEvent("r", "e", wave_index=wave))
            await sp.council.update_run_status("r", S.INTERRUPTED)
            # what a crash in the middle of a rewind leaves: the log closed and marked
            await sp.table.update("council#r", "head", set={"open": False, "truncating": True})
            with pytest.raises(InvalidTransition, match="being truncated"):
                await sp.council.append_event(CouncilRunEvent("r", "x"))
            with pytest.raises(InvalidTransition, match="being rewound"):
                await sp.council.update_run_status("r", S.RUNNING)
            assert await sp.council.truncate_events_after_wave("r", 0) == 2
            await sp.council.update_run_status("r", S.RUNNING)
            again = await sp.council.append_event(CouncilRunEvent("r", "redo", wave_index=1))
            assert again.seq == 1

    @needs(Capability.PERSISTENT)
    def test_runs_and_events_survive_close_and_reopen(self) -> None:
        url = self.store_url()
        import stateport

        async def write() -> tuple[Any, list[CouncilRunEvent]]:
            async with stateport.open(url) as sp:
                await sp.council.create_run(CouncilRun("kept", graph_json=GRAPH))
                for wave in (0, 1, 2):
                    await sp.council.append_event(CouncilRunEvent("kept", "e", {"w": wave}, wave))
                await sp.council.update_run_status("kept", S.INTERRUPTED)
                return await sp.council.get_run("kept"), await sp.council.list_events("kept")

        async def boot() -> tuple[Any, list[CouncilRunEvent], int]:
            async with stateport.open(url) as sp:
                run = await sp.council.get_run("kept")
                events = await sp.council.list_events("kept")
                await sp.council.truncate_events_after_wave("kept", 0)
                await sp.council.update_run_status("kept", S.RUNNING)
                nxt = await sp.council.append_event(CouncilRunEvent("kept", "redo", None, 1))
                return run, events, nxt.seq or 0

        run, events = asyncio.run(write())
        assert asyncio.run(boot()) == (run, events, 1)

    @async_test
    async def test_bad_input(self) -> None:
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("ok"))
            council: Any = sp.council  # the calls below break the types on purpose
            paused: Any = "paused"
            bad: list[Any] = [
                lambda: council.create_run(CouncilRun("")),
                lambda: council.create_run(CouncilRun("x", status=paused)),
                lambda: council.create_run(CouncilRun("x", graph_json="{")),
                lambda: council.create_run(CouncilRun("x", metadata={"s": {1}})),
                lambda: council.create_run({"id": "x"}),
                lambda: council.update_run_status("ok", "done"),
                lambda: council.update_graph("ok", {"nodes": []}),
                lambda: council.append_event(CouncilRunEvent("ok", "")),
                lambda: council.append_event(CouncilRunEvent("ok", "t", wave_index=-1)),
                lambda: council.append_event(CouncilRunEvent("ok", "t", seq=-1)),
                lambda: council.rewind_run("ok", -1),
                lambda: council.append_event(CouncilRunEvent("ok", "t", payload={1, 2})),
                lambda: council.truncate_events_after_wave("ok", -1),
                lambda: council.list_runs("unknown"),
                lambda: council.get_run(""),
            ]
            for i, call in enumerate(bad):
                with pytest.raises(ValidationError):
                    await call()
                    pytest.fail(f"bad call {i} was accepted")
            assert [r.id for r in await sp.council.list_runs()] == ["ok"]
            assert await sp.council.list_events("ok") == []

    # ------------------------------------------------------------ the source's callers

    @async_test
    async def test_runs_stored_before_zero_based_numbering_keep_theirs(self) -> None:
        """A run whose head has no ``first_seq`` (written by an earlier version)
        keeps numbering its events from 1, through any repository object."""
        async with self.open_store() as sp:
            await sp.council.create_run(CouncilRun("old"))
            await sp.table.update("council#old", "head", remove=["first_seq"])
            council = CouncilRepository(sp.table)  # a fresh process: nothing cached
            first = await council.append_event(CouncilRunEvent("old", "a", wave_index=0))
            assert first.seq == 1
            second = await council.append_event(CouncilRunEvent("old", "b", wave_index=1, seq=2))
            assert second.seq == 2
            with pytest.raises(ValidationError, match="from 1"):
                await council.append_event(CouncilRunEvent("old", "c", seq=0))
            with pytest.raises(Conflict, match="seq 2 already exists; the next is 3"):
                await council.append_event(CouncilRunEvent("old", "c", seq=2))
            await council.update_run_status("old", S.COMPLETED)
            assert await council.rewind_run("old", 0) == 1
            run = await council.get_run("old")
            assert run is not None and run.rewinds[0].kept_seq == 1
            assert [e.seq for e in await council.list_events("old")] == [1]
            again = await council.append_event(CouncilRunEvent("old", "redo", wave_index=1))
            assert again.seq == 2

    @async_test
    async def test_rewind_run_reruns_a_finished_run_from_a_wave(self) -> None:
        async with self.open_store() as sp:
            c = sp.council
            await c.create_run(CouncilRun("f", graph_json=GRAPH))
            for wave in (0, 0, 1, 2):
                await c.append_event(CouncilRunEvent("f", f"wave{wave}", wave_index=wave))
            with pytest.raises(InvalidTransition, match="interrupt it"):
                await c.rewind_run("f", 0)  # running: its executor would race the deletes
            await c.update_run_status("f", S.COMPLETED)
            for status in S:
                if status is not S.COMPLETED:
                    with pytest.raises(InvalidTransition):
                        await c.update_run_status("f", status)  # no other way out
            before = datetime.now(UTC)
            assert await c.rewind_run("f", 0) == 2
            run = await c.get_run("f")
            assert run is not None and run.status is S.RUNNING and run.graph_json == GRAPH
            (rewind,) = run.rewinds
            assert (rewind.wave_index, rewind.from_status, rewind.kept_seq) == (0, S.COMPLETED, 1)
            assert rewind.at >= before
            assert [r.id for r in await c.list_runs(S.RUNNING)] == ["f"]
            assert await c.list_runs(S.COMPLETED) == []
            redo = await c.append_event(CouncilRunEvent("f", "redo", wave_index=1))
            assert redo.seq == 2  # numbering continues after the kept events
            await c.update_run_status("f", S.FAILED)
            assert await c.rewind_run("f", 5) == 0  # nothing after wave 5: just re-run
            run = await c.get_run("f")
            assert run is not None and run.status is S.RUNNING
            assert [(r.wave_index, r.from_status, r.kept_seq) for r in run.rewinds] == [
                (0, S.COMPLETED, 1),
                (5, S.FAILED, 2),
            ]
            await c.update_run_status("f", S.INTERRUPTED)
            await c.create_run(CouncilRun("empty", status=S.COMPLETED))
            assert await c.rewind_run("empty", 0) == 0
            empty = await c.get_run("empty")
            assert empty is not None and empty.rewinds[0].kept_seq is None
            assert (await c.append_event(CouncilRunEvent("empty", "first"))).seq == 0
            with pytest.raises(NotFound):
                await c.rewind_run("nobody", 0)

    @async_test
    async def test_a_rewound_run_is_never_seen_running_with_its_old_log(self) -> None:
        """The rewind returns the run to running in the step that reopens its log:
        a reader that sees it running sees the truncated log."""
        async with self.open_store() as sp:
            c = sp.council
            await c.create_run(CouncilRun("r"))
            for i in range(140):  # 120 events to delete: more than one transaction
                await c.append_event(CouncilRunEvent("r", "e", wave_index=(i + 40) // 60))
            await c.update_run_status("r", S.COMPLETED)
            seen: list[tuple[S, int]] = []
            reading, done = threading.Event(), threading.Event()

            async def read(_: int) -> None:
                while not done.is_set():
                    run = await c.get_run("r")
                    events = await c.list_events("r")
                    assert run is not None
                    seen.append((run.status, max(e.wave_index for e in events)))
                    reading.set()

            async def rewind(_: int) -> None:
                try:
                    assert await asyncio.to_thread(reading.wait, 30)
                    assert await c.rewind_run("r", 0) == 120
                finally:
                    done.set()

            await asyncio.gather(in_threads(read, 2), in_threads(rewind, 1))
            assert seen, "the readers read nothing"
            assert all(wave == 0 for status, wave in seen if status is S.RUNNING), seen

    @async_test
    async def test_a_rewind_run_cut_short_is_finished_by_calling_it_again(self) -> None:
        async with self.open_store() as sp:
            c = sp.council
            await c.create_run(CouncilRun("r"))
            for wave in (0, 1, 2):
                await c.append_event(CouncilRunEvent("r", "e", wave_index=wave))
            await c.update_run_status("r", S.COMPLETED)
            # what a crash in the middle of a rewind leaves: the log closed and marked
            await sp.table.update("council#r", "head", set={"open": False, "truncating": True})
            with pytest.raises(InvalidTransition):
                await c.update_run_status("r", S.RUNNING)
            with pytest.raises(InvalidTransition, match="rewind_run"):
                await c.truncate_events_after_wave("r", 0)
            assert await c.rewind_run("r", 0) == 2
            run = await c.get_run("r")
            assert run is not None and run.status is S.RUNNING and len(run.rewinds) == 1
            assert (await c.append_event(CouncilRunEvent("r", "redo", wave_index=1))).seq == 1
