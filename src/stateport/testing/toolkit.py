"""Conformance tests for the concurrency toolkit (``stateport.primitives``).

The toolkit's correctness rests on the engine's conditions, so it is proven on
every engine: operation tags reach the :class:`~stateport.errors.Conflict`,
ids from :class:`~stateport.primitives.IdAllocator` stay unique and increasing
under writers in tasks and in threads with their own event loops, and one
store shared by several event loops in threads loses nothing.
"""

from __future__ import annotations

import asyncio

import pytest

from ..domains.runs import RunEvent, RunMetadata
from ..errors import Conflict
from ..ports.table import Check, NotExists, Put, Update, VersionEquals
from ..primitives import ID_TAG, IdAllocator, moved_on, retrying
from ._support import async_test, in_threads
from .store import StoreConformance

__all__ = ["ToolkitConformance"]


class ToolkitConformance(StoreConformance):
    """What every engine must show for the primitives' concurrency toolkit."""

    @async_test
    async def test_a_conflict_carries_the_failing_operations_tag(self) -> None:
        async with self.open_store() as sp:
            t = sp.table
            await t.put("p", "a", {"v": 1})
            with pytest.raises(Conflict) as info:
                await t.transact(
                    [
                        Put("p", "b", {}, NotExists(), tag="fresh"),
                        Check("p", "a", VersionEquals(7), tag="guard"),
                    ]
                )
            assert info.value.tag == "guard" and info.value.op_index == 1
            assert "guard" in str(info.value)
            with pytest.raises(Conflict) as info:
                await t.update("p", "missing", set={"v": 2}, tag="target")
            assert info.value.tag == "target"
            with pytest.raises(Conflict) as info:
                await t.transact([Update("p", "a", {"v": 2}, condition=NotExists())])
            assert info.value.tag is None
            assert await t.get("p", "b") is None

    @async_test
    async def test_retrying_resolves_a_race_on_the_engine(self) -> None:
        async with self.open_store() as sp:
            t = sp.table
            await t.put("c", "n", {"n": 0})

            async def bump() -> int:
                async def attempt() -> int:
                    item = await t.get("c", "n")
                    assert item is not None
                    with moved_on("counter"):
                        new = await t.update(
                            "c",
                            "n",
                            set={"n": item.attrs["n"] + 1},
                            condition=VersionEquals(item.version),
                            tag="counter",
                        )
                    return int(new.attrs["n"])

                return await retrying(attempt, what="the counter")

            seen = await asyncio.gather(*(bump() for _ in range(40)))
            assert sorted(seen) == list(range(1, 41))

    @async_test
    async def test_ids_are_unique_and_increasing_under_concurrent_tasks(self) -> None:
        async with self.open_store() as sp:
            ids = IdAllocator(sp.table, "ids")
            a, b = IdAllocator(sp.table, "ids"), IdAllocator(sp.table, "ids")  # two "processes"

            async def make(alloc: IdAllocator, i: int) -> int:
                return await alloc.create(
                    "doc", lambda n: [Put("docs", f"{n:08d}", {"i": i}, NotExists())]
                )

            got = await asyncio.gather(*(make((a, b, ids)[i % 3], i) for i in range(60)))
            assert sorted(got) == list(range(1, 61))
            assert await ids.last("doc") == 60
            assert len([i async for i in sp.table.query_all("docs")]) == 60
            assert await make(ids, 99) == 61  # the cache of `ids` is stale: one retry

    @async_test
    async def test_a_failed_write_takes_no_id(self) -> None:
        async with self.open_store() as sp:
            ids = IdAllocator(sp.table, "ids")
            await sp.table.put("x", "taken", {})
            assert await ids.create("k", lambda n: [Put("x", f"n{n}", {})]) == 1
            with pytest.raises(Conflict) as info:
                await ids.create("k", lambda n: [Put("x", "taken", {}, NotExists(), tag="x")])
            assert info.value.tag == "x"
            assert await ids.last("k") == 1
            assert await ids.create("k", lambda n: [Put("x", f"n{n}", {})]) == 2

    @async_test
    async def test_an_id_taken_elsewhere_is_a_tagged_conflict(self) -> None:
        async with self.open_store() as sp:
            ids = IdAllocator(sp.table, "ids")
            n, op = await ids.take("k")
            await IdAllocator(sp.table, "ids").create("k", lambda n: [])
            with pytest.raises(Conflict) as info:
                await sp.table.transact([op])
            assert info.value.tag == ID_TAG and n == 1

    @async_test
    async def test_one_store_shared_by_event_loops_in_threads(self) -> None:
        """Tasks on several threads, each with its own event loop, share one store:
        every append is kept once, numbered without gaps, and every id is unique."""
        async with self.open_store() as sp:
            spec = await sp.cas.put(b"spec")
            run_id = await sp.runs.create_run(spec, RunMetadata("shared"))
            ids = IdAllocator(sp.table, "ids")

            async def work(worker: int) -> list[int]:
                async def one(i: int) -> int:
                    await sp.runs.append_event(run_id, RunEvent("tick", {"w": worker, "i": i}))
                    return await ids.create("n", lambda n: [Put("n", f"{n:06d}", {"w": worker})])

                return list(await asyncio.gather(*(one(i) for i in range(15))))

            per_thread = await in_threads(work, 4)
            events = await sp.runs.get_events(run_id)
            assert [e.seq for e in events] == list(range(1, 61))
            assert sorted((e.payload["w"], e.payload["i"]) for e in events) == sorted(
                (w, i) for w in range(4) for i in range(15)
            )
            assert sorted(n for ns in per_thread for n in ns) == list(range(1, 61))
