"""Conformance tests for the run ledger (``sp.runs``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..digest import ContentDigest
from ..domains.runs import (
    RunEvent,
    RunLedger,
    RunMetadata,
    RunRecord,
    RunStatus,
    RunSummary,
)
from ..errors import Conflict, InvalidTransition, NotFound, ValidationError
from ..ports.engine import Capability
from ._support import async_test, in_processes, in_threads, needs
from .store import StoreConformance

__all__ = ["RunLedgerConformance"]

SPEC = ContentDigest.from_bytes(b"spec one")
OTHER_SPEC = ContentDigest.from_bytes(b"spec two")
META = RunMetadata("planner", git_sha="abc123", tags={"env": "test", "n": [1, 2]})
SUMMARY = RunSummary(total_events=3, duration_ms=1500, success=True)


def _append_worker(url: str, run_id: str, worker: int, times: int) -> None:
    import stateport

    async def main() -> None:
        async with stateport.open(url) as sp:
            for i in range(times):
                await sp.runs.append_event(run_id, RunEvent("tick", {"w": worker, "i": i}))

    asyncio.run(main())


async def _seqs(runs: RunLedger, run_id: str) -> list[int]:
    return [e.seq or 0 for e in await runs.get_events(run_id)]


class RunLedgerConformance(StoreConformance):
    """What every engine must show for ``sp.runs``."""

    # ------------------------------------------------------------ records

    @async_test
    async def test_create_and_get(self) -> None:
        async with self.open_store() as sp:
            before = datetime.now(UTC)
            run_id = await sp.runs.create_run(SPEC, META)
            record = await sp.runs.get_run(run_id)
            assert record.run_id == run_id
            assert record.spec_digest == SPEC
            assert record.metadata == META
            assert record.status is RunStatus.RUNNING
            assert record.summary is None and record.completed_at is None
            assert before - timedelta(seconds=1) <= record.created_at <= datetime.now(UTC)
            assert await sp.runs.get_events(run_id) == []

    @async_test
    async def test_spec_digest_may_be_hex_in_either_case(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC.as_str().upper(), META)
            assert (await sp.runs.get_run(run_id)).spec_digest == SPEC

    @async_test
    async def test_unknown_run_is_not_found(self) -> None:
        async with self.open_store() as sp:
            with pytest.raises(NotFound):
                await sp.runs.get_run("no-such-run")
            with pytest.raises(NotFound):
                await sp.runs.get_events("no-such-run")
            with pytest.raises(NotFound):
                await sp.runs.append_event("no-such-run", RunEvent("x"))
            with pytest.raises(NotFound):
                await sp.runs.append_event("no-such-run", RunEvent("x", seq=1))
            with pytest.raises(NotFound):
                await sp.runs.complete_run("no-such-run", SUMMARY)
            with pytest.raises(NotFound):
                await sp.runs.latest_event("no-such-run")

    @async_test
    async def test_duplicate_run_id_is_a_conflict(self) -> None:
        async with self.open_store() as sp:
            await sp.runs.create_run(SPEC, META, run_id="fixed")
            with pytest.raises(Conflict):
                await sp.runs.create_run(OTHER_SPEC, META, run_id="fixed")
            assert (await sp.runs.get_run("fixed")).spec_digest == SPEC

    # ------------------------------------------------------------ sequence numbers

    @async_test
    async def test_events_are_numbered_from_one(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            stored = [
                await sp.runs.append_event(run_id, RunEvent("step", {"i": i})) for i in range(5)
            ]
            assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
            events = await sp.runs.get_events(run_id)
            assert events == stored
            assert [e.payload for e in events] == [{"i": i} for i in range(5)]
            assert await sp.runs.latest_event(run_id) == stored[-1]
            assert await sp.runs.get_events_after(run_id, 3) == stored[3:]
            assert await sp.runs.get_events_after(run_id, 1, limit=2) == stored[1:3]

    @async_test
    async def test_given_seq_must_be_the_next(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            with pytest.raises(Conflict, match="gap"):
                await sp.runs.append_event(run_id, RunEvent("first", seq=2))
            await sp.runs.append_event(run_id, RunEvent("a", seq=1))
            await sp.runs.append_event(run_id, RunEvent("b", seq=2))
            with pytest.raises(Conflict, match="already exists"):
                await sp.runs.append_event(run_id, RunEvent("again", seq=2))
            with pytest.raises(Conflict, match="already exists"):
                await sp.runs.append_event(run_id, RunEvent("again", seq=1))
            with pytest.raises(Conflict, match="gap"):
                await sp.runs.append_event(run_id, RunEvent("skip", seq=4))
            events = await sp.runs.get_events(run_id)
            assert [(e.seq, e.kind) for e in events] == [(1, "a"), (2, "b")]
            assert (await sp.runs.append_event(run_id, RunEvent("c"))).seq == 3

    @async_test
    async def test_a_batch_is_all_or_nothing(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            batch = await sp.runs.append_events(run_id, [RunEvent("e", i) for i in range(10)])
            assert [e.seq for e in batch] == list(range(1, 11))
            with pytest.raises(Conflict):  # 10 exists: the batch 10..12 writes nothing
                await sp.runs.append_events(
                    run_id, [RunEvent("late", seq=10), RunEvent("x", seq=11), RunEvent("y", seq=12)]
                )
            assert await _seqs(sp.runs, run_id) == list(range(1, 11))
            more = await sp.runs.append_events(
                run_id, [RunEvent("x", seq=11), RunEvent("y", seq=12)]
            )
            assert [e.seq for e in more] == [11, 12]

    @async_test
    async def test_batch_seqs_are_all_given_and_consecutive_or_all_omitted(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            for bad in (
                [RunEvent("a", seq=1), RunEvent("b")],
                [RunEvent("a"), RunEvent("b", seq=2)],
                [RunEvent("a", seq=1), RunEvent("b", seq=3)],
                [],
            ):
                with pytest.raises(ValidationError):
                    await sp.runs.append_events(run_id, bad)
            assert await sp.runs.get_events(run_id) == []

    # ------------------------------------------------------------ status machine

    @async_test
    async def test_every_terminal_state_stores_its_summary_and_is_final(self) -> None:
        async with self.open_store() as sp:
            digest = ContentDigest.from_bytes(b"final state")
            enders = {
                RunStatus.COMPLETED: sp.runs.complete_run,
                RunStatus.FAILED: sp.runs.fail_run,
                RunStatus.CANCELLED: sp.runs.cancel_run,
            }
            for status, end in enders.items():
                run_id = await sp.runs.create_run(SPEC, META)
                await sp.runs.append_event(run_id, RunEvent("work"))
                summary = RunSummary(1, 42, status is RunStatus.COMPLETED, digest)
                await end(run_id, summary)
                record = await sp.runs.get_run(run_id)
                assert record.status is status
                assert record.summary == summary
                assert record.completed_at is not None
                assert record.completed_at >= record.created_at
                with pytest.raises(InvalidTransition):
                    await sp.runs.append_event(run_id, RunEvent("late"))
                with pytest.raises(InvalidTransition):
                    await sp.runs.append_event(run_id, RunEvent("late", seq=2))
                for other in enders.values():
                    with pytest.raises(InvalidTransition):
                        await other(run_id, SUMMARY)
                assert await sp.runs.get_run(run_id) == record
                assert await _seqs(sp.runs, run_id) == [1]

    @async_test
    async def test_summary_without_digest(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            summary = RunSummary(0, 0, False)
            await sp.runs.fail_run(run_id, summary)
            assert (await sp.runs.get_run(run_id)).summary == summary

    # ------------------------------------------------------------ listing

    @async_test
    async def test_list_runs_newest_first_with_filters(self) -> None:
        async with self.open_store() as sp:
            t0 = datetime(2026, 1, 1, tzinfo=UTC)
            ids = []
            for i in range(6):
                spec = SPEC if i % 2 == 0 else OTHER_SPEC
                ids.append(
                    await sp.runs.create_run(spec, META, created_at=t0 + timedelta(seconds=i))
                )
            await sp.runs.complete_run(ids[4], SUMMARY)
            await sp.runs.fail_run(ids[1], SUMMARY)
            assert [r.run_id for r in await sp.runs.list_runs()] == ids[::-1]
            assert [r.run_id for r in await sp.runs.list_runs(SPEC)] == [ids[4], ids[2], ids[0]]
            assert [r.run_id for r in await sp.runs.list_runs(OTHER_SPEC.as_str())] == [
                ids[5],
                ids[3],
                ids[1],
            ]
            running = await sp.runs.list_runs(status=RunStatus.RUNNING)
            assert [r.run_id for r in running] == [ids[5], ids[3], ids[2], ids[0]]
            assert [r.run_id for r in await sp.runs.list_runs(SPEC, status="COMPLETED")] == [ids[4]]
            assert await sp.runs.list_runs(OTHER_SPEC, status=RunStatus.CANCELLED) == []

    @async_test
    async def test_runs_created_at_the_same_instant_keep_a_fixed_order(self) -> None:
        async with self.open_store() as sp:
            when = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)
            ids = [
                await sp.runs.create_run(SPEC, META, run_id=f"tie-{c}", created_at=when)
                for c in "cabd"
            ]
            listed = [r.run_id for r in await sp.runs.list_runs()]
            assert listed == sorted(ids, reverse=True)
            assert [r.run_id for r in await sp.runs.list_runs()] == listed

    @async_test
    async def test_paging_visits_every_run_once(self) -> None:
        async with self.open_store() as sp:
            t0 = datetime(2026, 1, 1, tzinfo=UTC)
            ids = [
                await sp.runs.create_run(
                    SPEC if i % 3 else OTHER_SPEC, META, created_at=t0 + timedelta(minutes=i % 4)
                )
                for i in range(23)
            ]
            for spec, status in ((None, None), (SPEC, None), (SPEC, RunStatus.RUNNING)):
                seen: list[RunRecord] = []
                cursor: str | None = None
                while True:
                    page = await sp.runs.list_runs_page(spec, status=status, limit=4, cursor=cursor)
                    assert len(page.runs) <= 4
                    seen.extend(page.runs)
                    if page.cursor is None:
                        break
                    cursor = page.cursor
                assert seen == await sp.runs.list_runs(spec, status=status)
            assert len(await sp.runs.list_runs()) == len(ids)

    # ------------------------------------------------------------ watching

    @async_test
    async def test_watch_events_follows_until_the_run_ends(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            await sp.runs.append_event(run_id, RunEvent("before"))

            async def produce() -> None:
                for i in range(5):
                    await asyncio.sleep(0.01)
                    await sp.runs.append_event(run_id, RunEvent("live", {"i": i}))
                await sp.runs.complete_run(run_id, SUMMARY)

            async def follow(after: int) -> list[int]:
                return [
                    e.seq or 0
                    async for e in sp.runs.watch_events(run_id, after, poll_interval=0.05)
                ]

            producer = asyncio.create_task(produce())
            everything, tail = await asyncio.wait_for(
                asyncio.gather(follow(0), follow(3)), timeout=30
            )
            await producer
            assert everything == [1, 2, 3, 4, 5, 6]
            assert tail == [4, 5, 6]
            # a finished run: the watch yields what is there and ends
            done = [e.seq async for e in sp.runs.watch_events(run_id, 4)]
            assert done == [5, 6]

    # ------------------------------------------------------------ concurrency

    @async_test
    async def test_concurrent_tasks_and_threads_lose_no_event(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            workers, times = 4, 15

            async def append(worker: int) -> None:
                for i in range(times):
                    await sp.runs.append_event(run_id, RunEvent("tick", {"w": worker, "i": i}))

            await asyncio.gather(*(append(w) for w in range(workers)))
            await in_threads(lambda t: append(workers + t), 3)
            events = await sp.runs.get_events(run_id)
            total = (workers + 3) * times
            assert [e.seq for e in events] == list(range(1, total + 1))
            assert sorted((e.payload["w"], e.payload["i"]) for e in events) == [
                (w, i) for w in range(workers + 3) for i in range(times)
            ]

    @async_test
    async def test_racing_for_one_seq_exactly_one_wins(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            rounds, racers = 8, 4

            async def race(worker: int) -> list[int]:
                won = []
                for seq in range(1, rounds + 1):
                    try:
                        await sp.runs.append_event(run_id, RunEvent("r", {"w": worker}, seq=seq))
                    except Conflict:
                        continue
                    won.append(seq)
                return won

            results = await in_threads(race, racers)
            wins = sorted(seq for won in results for seq in won)
            events = await sp.runs.get_events(run_id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert wins == [e.seq for e in events]  # each stored seq won by exactly one
            for e in events:
                assert e.seq in results[e.payload["w"]]

    @async_test
    async def test_ending_a_run_races_appends_cleanly(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            accepted: list[int] = []

            async def append() -> None:
                for _ in range(200):
                    try:
                        event = await sp.runs.append_event(run_id, RunEvent("x"))
                    except InvalidTransition:
                        return
                    accepted.append(event.seq or 0)
                    await asyncio.sleep(0)

            async def end() -> None:
                await asyncio.sleep(0.005)
                await sp.runs.cancel_run(run_id, SUMMARY)

            await asyncio.gather(append(), append(), end())
            events = await sp.runs.get_events(run_id)
            assert sorted(accepted) == [e.seq for e in events]
            assert (await sp.runs.get_run(run_id)).status is RunStatus.CANCELLED

    @async_test
    async def test_a_writer_that_appended_before_sees_the_run_end(self) -> None:
        # two RunLedger objects on one table stand for two processes: each keeps
        # its own view of the run, and neither view may let a late append in
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            other = RunLedger(sp.table)
            await sp.runs.append_event(run_id, RunEvent("mine"))
            await other.append_event(run_id, RunEvent("theirs"))
            await sp.runs.append_event(run_id, RunEvent("mine again"))
            await other.complete_run(run_id, SUMMARY)
            with pytest.raises(InvalidTransition, match="COMPLETED"):
                await sp.runs.append_event(run_id, RunEvent("late"))
            with pytest.raises(InvalidTransition, match="COMPLETED"):
                await sp.runs.append_events(run_id, [RunEvent("late"), RunEvent("later")])
            assert await _seqs(sp.runs, run_id) == [1, 2, 3]

    @needs(Capability.MULTI_PROCESS)
    def test_processes_appending_to_one_run_lose_nothing(self) -> None:
        url = self.store_url()
        import stateport

        async def create() -> str:
            async with stateport.open(url) as sp:
                return await sp.runs.create_run(SPEC, META)

        run_id = asyncio.run(create())
        processes, times = 3, 30
        in_processes(_append_worker, [(url, run_id, w, times) for w in range(processes)])

        async def check() -> None:
            async with stateport.open(url) as sp:
                events = await sp.runs.get_events(run_id)
                assert [e.seq for e in events] == list(range(1, processes * times + 1))
                assert sorted((e.payload["w"], e.payload["i"]) for e in events) == [
                    (w, i) for w in range(processes) for i in range(times)
                ]

        asyncio.run(check())

    # ------------------------------------------------------------ durability

    @needs(Capability.PERSISTENT)
    def test_data_survives_close_and_reopen(self) -> None:
        url = self.store_url()
        import stateport

        async def write() -> tuple[str, RunRecord, list[RunEvent]]:
            async with stateport.open(url) as sp:
                run_id = await sp.runs.create_run(SPEC, META)
                await sp.runs.append_events(run_id, [RunEvent("a", {"x": 1}), RunEvent("b")])
                await sp.runs.complete_run(run_id, SUMMARY)
                return run_id, await sp.runs.get_run(run_id), await sp.runs.get_events(run_id)

        async def read(run_id: str) -> tuple[RunRecord, list[RunEvent]]:
            async with stateport.open(url) as sp:
                return await sp.runs.get_run(run_id), await sp.runs.get_events(run_id)

        run_id, record, events = asyncio.run(write())
        assert asyncio.run(read(run_id)) == (record, events)

    # ------------------------------------------------------------ bad input

    @async_test
    async def test_bad_input_is_rejected_and_writes_nothing(self) -> None:
        async with self.open_store() as sp:
            run_id = await sp.runs.create_run(SPEC, META)
            runs: Any = sp.runs  # the calls below break the types on purpose
            wrong: Any = "wrong"
            bad_calls: list[Any] = [
                lambda: runs.create_run("not-a-digest", META),
                lambda: runs.create_run(SPEC, {"agent_name": "x"}),
                lambda: runs.create_run(SPEC, RunMetadata("")),
                lambda: runs.create_run(SPEC, RunMetadata("a", tags={"s": {1, 2}})),
                lambda: runs.create_run(SPEC, META, run_id=""),
                lambda: runs.create_run(SPEC, META, created_at=datetime(2026, 1, 1)),
                lambda: runs.append_event(run_id, RunEvent("")),
                lambda: runs.append_event(run_id, RunEvent("k", payload=object())),
                lambda: runs.append_event(run_id, RunEvent("k", payload=float("nan"))),
                lambda: runs.append_event(run_id, RunEvent("k", seq=0)),
                lambda: runs.append_event(run_id, RunEvent("k", seq=-1)),
                lambda: runs.append_event(run_id, RunEvent("k", seq=True)),
                lambda: runs.append_event(run_id, {"kind": "k"}),
                lambda: runs.append_event(run_id, RunEvent("k", timestamp=wrong)),
                lambda: runs.append_event(12, RunEvent("k")),
                lambda: runs.complete_run(run_id, RunSummary(-1, 0, True)),
                lambda: runs.complete_run(run_id, RunSummary(1, 0, wrong)),
                lambda: runs.complete_run(run_id, RunSummary(1, 0, True, wrong)),
                lambda: runs.complete_run(run_id, None),
                lambda: runs.list_runs(status="DONE"),
                lambda: runs.list_runs("zz"),
                lambda: runs.list_runs_page(limit=0),
                lambda: runs.list_runs_page(cursor="garbage"),
                lambda: runs.get_events_after(run_id, -1),
            ]
            for i, call in enumerate(bad_calls):
                with pytest.raises(ValidationError):
                    await call()
                    pytest.fail(f"bad call {i} was accepted")
            assert [r.run_id for r in await sp.runs.list_runs()] == [run_id]
            assert await sp.runs.get_events(run_id) == []
            assert (await sp.runs.get_run(run_id)).status is RunStatus.RUNNING
