"""A council rewind closes the run's log while it deletes: nothing appended meanwhile
is lost, and a rewind cut short is finished by running it again."""

from __future__ import annotations

import asyncio
import threading

import pytest

import stateport
from stateport import (
    CouncilRun,
    CouncilRunEvent,
    CouncilRunStatus,
    InvalidTransition,
)

URLS = ["memory://", "sqlite:///rewind.db"]


@pytest.mark.parametrize("url", URLS)
def test_appends_racing_a_rewind_are_kept_or_refused_never_lost(url: str) -> None:
    async def main() -> None:
        async with stateport.open(url) as sp:
            await sp.council.create_run(CouncilRun("r"))
            for wave in range(3):
                for _ in range(100):
                    await sp.council.append_event(CouncilRunEvent("r", "e", wave_index=wave))
            await sp.council.update_run_status("r", CouncilRunStatus.INTERRUPTED)
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
            assert kept == set(range(1, 301 + len(accepted)))
            assert accepted  # the appender ran during the rewinds (refusals: likely)

    asyncio.run(main())


@pytest.mark.parametrize("url", URLS)
def test_a_rewind_cut_short_is_finished_by_running_it_again(url: str) -> None:
    async def main() -> None:
        async with stateport.open(url) as sp:
            await sp.council.create_run(CouncilRun("r"))
            for wave in (0, 1, 2):
                await sp.council.append_event(CouncilRunEvent("r", "e", wave_index=wave))
            await sp.council.update_run_status("r", CouncilRunStatus.INTERRUPTED)
            # what a crash in the middle of a rewind leaves: the log closed and marked
            await sp.table.update("council#r", "head", set={"open": False, "truncating": True})
            with pytest.raises(InvalidTransition, match="being truncated"):
                await sp.council.append_event(CouncilRunEvent("r", "x"))
            with pytest.raises(InvalidTransition, match="being rewound"):
                await sp.council.update_run_status("r", CouncilRunStatus.RUNNING)
            assert await sp.council.truncate_events_after_wave("r", 0) == 2
            await sp.council.update_run_status("r", CouncilRunStatus.RUNNING)
            again = await sp.council.append_event(CouncilRunEvent("r", "redo", wave_index=1))
            assert again.seq == 2

    asyncio.run(main())
