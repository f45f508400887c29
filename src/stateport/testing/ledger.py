"""Conformance tests of the ledger's write pattern on the table port.

The ledger (``stateport/primitives/ledger.py``) appends entry ``n`` of a stream
with one transaction: check the head is open, check entry ``n - 1`` exists, put
entry ``n`` where nothing is. Its guarantees (no gap, no duplicate, nothing after
the head closes, a reader following the stream never skips an entry) hold on
an engine exactly when that transaction is atomic and isolated there, so they
are proven here on the table port itself, with writers in tasks and processes,
in the shape the engines' fast paths for it recognise (SQLite and PostgreSQL
run it as one guarded statement).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import Conflict
from ..ports.engine import Capability
from ..ports.table import AttrEquals, Check, Exists, KeyRange, NotExists, Put, TablePort
from ..primitives import moved_on, retrying
from ..primitives.ledger import entry_sk
from ._support import async_test, in_processes, needs
from .store import StoreConformance

__all__ = ["LedgerPatternConformance", "append", "ledger_ops"]


def ledger_ops(pk: str, seq: int, attrs: dict[str, Any]) -> list[Any]:
    """The transaction appending entry ``seq`` to the stream at ``pk``."""
    ops: list[Any] = [Check(pk, "head", AttrEquals("open", True), tag="head")]
    if seq > 1:
        ops.append(Check(pk, entry_sk(seq - 1), Exists(), tag="previous"))
    ops.append(Put(pk, entry_sk(seq), attrs, NotExists(), tag="entry"))
    return ops


async def append(table: TablePort, stream: str, attrs: dict[str, Any]) -> int:
    """Append one entry to ``stream`` as the ledger does, retrying a lost race; its seq.

    Raises :class:`~stateport.errors.Conflict` (tag ``head``) once the head is closed.
    """
    pk = f"log#{stream}"

    async def attempt() -> int:
        last = (await table.query(pk, KeyRange.prefix("e#"), descending=True, limit=1)).items
        seq = 1 if not last else int(last[0].sk[2:]) + 1
        with moved_on("previous", "entry"):
            await table.transact(ledger_ops(pk, seq, attrs))
        return seq

    return await retrying(attempt, what=f"stream {stream!r}")


def _ledger_worker(url: str, stream: str, worker: int, times: int) -> None:
    """A child process: append ``times`` entries to ``stream``."""
    import stateport

    async def main() -> None:
        async with stateport.open(url) as sp:
            for i in range(times):
                await append(sp.table, stream, {"worker": worker, "i": i})

    asyncio.run(main())


class LedgerPatternConformance(StoreConformance):
    """What every engine must show for the ledger's transaction."""

    @needs(Capability.MULTI_PROCESS)
    def test_appends_from_several_processes_lose_and_duplicate_nothing(self) -> None:
        import stateport

        url = self.store_url()
        processes, times = 4, 25

        async def create() -> None:
            async with stateport.open(url) as sp:
                await sp.table.put("log#s", "head", {"open": True})

        asyncio.run(create())
        in_processes(_ledger_worker, [(url, "s", w, times) for w in range(processes)])

        async def check() -> None:
            async with stateport.open(url) as sp:
                rows = [i async for i in sp.table.query_all("log#s", KeyRange.prefix("e#"))]
                assert [r.sk for r in rows] == [
                    entry_sk(n) for n in range(1, processes * times + 1)
                ]
                assert sorted((r.attrs["worker"], r.attrs["i"]) for r in rows) == sorted(
                    (w, i) for w in range(processes) for i in range(times)
                )

        asyncio.run(check())

    @async_test
    async def test_concurrent_writers_of_one_entry_exactly_one_wins(self) -> None:
        async with self.open_store() as sp:
            await sp.table.put("log#s", "head", {"open": True})
            await sp.table.put("log#s", entry_sk(1), {})

            async def attempt(i: int) -> bool:
                try:
                    await sp.table.transact(ledger_ops("log#s", 2, {"by": i}))
                except Conflict as e:
                    assert e.tag == "entry" and e.op_index == 2
                    assert e.key == ("log#s", entry_sk(2))
                    return False
                return True

            wins = await asyncio.gather(*(attempt(i) for i in range(12)))
            assert sum(wins) == 1
            entry = await sp.table.get("log#s", entry_sk(2))
            assert entry is not None and entry.attrs == {"by": wins.index(True)}

    @async_test
    async def test_no_entry_commits_after_the_head_is_closed(self) -> None:
        async with self.open_store() as sp:
            for stream in range(8):
                await self._close_while_appending(sp.table, f"s{stream}")

    async def _close_while_appending(self, table: TablePort, stream: str) -> None:
        from ..ports.table import VersionEquals

        pk = f"log#{stream}"
        await table.put(pk, "head", {"open": True})

        appended = [0] * 6
        all_appending = asyncio.Event()  # the appenders are in full flight

        async def appender(w: int) -> int:
            while True:
                try:
                    await append(table, stream, {"w": w})
                except Conflict as e:
                    assert e.tag == "head"
                    return appended[w]
                appended[w] += 1
                if sum(appended) >= 12:
                    all_appending.set()
                await asyncio.sleep(0)  # engines that answer without waiting let others in

        tasks = [asyncio.create_task(appender(w)) for w in range(6)]
        await asyncio.wait_for(all_appending.wait(), 60)

        async def close() -> None:  # with a version guard, as the run ledger does
            head = await table.get(pk, "head")
            assert head is not None
            with moved_on("head"):
                await table.update(
                    pk,
                    "head",
                    set={"open": False},
                    condition=VersionEquals(head.version),
                    tag="head",
                )

        await retrying(close, what=f"the head of {stream}")
        after_close = len((await table.query(pk, KeyRange.prefix("e#"))).items)
        acknowledged = sum(await asyncio.gather(*tasks))
        final = (await table.query(pk, KeyRange.prefix("e#"))).items
        assert len(final) == after_close == acknowledged > 0
        assert [i.sk for i in final] == [entry_sk(n) for n in range(1, len(final) + 1)]

    @async_test
    async def test_a_tailing_reader_never_skips_an_entry(self) -> None:
        async with self.open_store() as sp:
            await sp.table.put("log#s", "head", {"open": True})
            total = 120

            async def writer(w: int) -> None:
                for _ in range(total // 4):
                    await append(sp.table, "s", {"w": w})
                    await asyncio.sleep(0)

            seen: list[int] = []

            async def reader() -> None:
                cursor = entry_sk(0)
                while len(seen) < total:
                    page = await sp.table.query("log#s", KeyRange.between(cursor + "\x01", "e#~"))
                    for item in page.items:
                        seen.append(int(item.sk[2:]))
                        cursor = item.sk
                    await asyncio.sleep(0)

            await asyncio.wait_for(
                asyncio.gather(reader(), *(writer(w) for w in range(4))), timeout=120
            )
            assert seen == list(range(1, total + 1))
