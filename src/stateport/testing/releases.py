"""Conformance tests for the release registry (``sp.releases``) and CAS (``sp.cas``)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from ..digest import ContentDigest
from ..domains.releases import ReleaseMetadata
from ..errors import NoPreviousRelease, NotFound, ValidationError
from ..ports.engine import Capability
from ._support import async_test, in_processes, in_threads, needs
from .store import StoreConformance

__all__ = ["CasStoreConformance", "ReleaseRegistryConformance"]

D = [ContentDigest.from_bytes(f"spec {i}".encode()) for i in range(8)]
BY = ReleaseMetadata("ci", version_label="v1", notes="first")


def _promote_worker(url: str, worker: int, times: int) -> None:
    import stateport

    async def main() -> None:
        async with stateport.open(url) as sp:
            for i in range(times):
                await sp.releases.promote(
                    "shared", D[i % len(D)], ReleaseMetadata(f"p{worker}-{i}")
                )

    asyncio.run(main())


class ReleaseRegistryConformance(StoreConformance):
    """What every engine must show for ``sp.releases``."""

    @async_test
    async def test_promote_current_and_history(self) -> None:
        async with self.open_store() as sp:
            assert await sp.releases.current("agent") is None
            assert await sp.releases.history("agent") == []
            records = [
                await sp.releases.promote("agent", D[i], ReleaseMetadata(f"user{i}"))
                for i in range(3)
            ]
            assert [r.seq for r in records] == [1, 2, 3]
            assert all(r.action == "promote" and r.restores is None for r in records)
            assert await sp.releases.current("agent") == records[2]
            assert await sp.releases.history("agent") == records[::-1]
            assert records[0].metadata == ReleaseMetadata("user0")
            await sp.releases.promote("other", D[5], BY)
            assert (await sp.releases.current("other")).metadata == BY  # type: ignore[union-attr]
            assert await sp.releases.history("agent") == records[::-1]

    @async_test
    async def test_repeated_rollback_walks_back_then_stops(self) -> None:
        async with self.open_store() as sp:
            for i in range(3):
                await sp.releases.promote("agent", D[i], BY)
            first = await sp.releases.rollback("agent")
            assert (first.spec_digest, first.action, first.seq, first.restores) == (
                D[1],
                "rollback",
                4,
                2,
            )
            second = await sp.releases.rollback("agent")
            assert (second.spec_digest, second.seq, second.restores) == (D[0], 5, 1)
            with pytest.raises(NoPreviousRelease):
                await sp.releases.rollback("agent")
            assert await sp.releases.current("agent") == second
            history = await sp.releases.history("agent")
            assert [(r.seq, r.action, r.spec_digest) for r in history] == [
                (5, "rollback", D[0]),
                (4, "rollback", D[1]),
                (3, "promote", D[2]),
                (2, "promote", D[1]),
                (1, "promote", D[0]),
            ]

    @async_test
    async def test_rollback_after_a_new_promote_returns_to_what_was_live_before(self) -> None:
        async with self.open_store() as sp:
            for i in range(3):
                await sp.releases.promote("agent", D[i], BY)
            await sp.releases.rollback("agent")  # live: D1
            await sp.releases.promote("agent", D[3], BY)  # live: D3
            back = await sp.releases.rollback("agent")
            assert back.spec_digest == D[1]  # not D2, which had been rolled back
            assert (await sp.releases.rollback("agent")).spec_digest == D[0]
            with pytest.raises(NoPreviousRelease):
                await sp.releases.rollback("agent")

    @async_test
    async def test_rollback_of_a_single_or_unknown_release(self) -> None:
        async with self.open_store() as sp:
            with pytest.raises(NotFound):
                await sp.releases.rollback("ghost")
            await sp.releases.promote("solo", D[0], BY)
            with pytest.raises(NoPreviousRelease):
                await sp.releases.rollback("solo")
            assert len(await sp.releases.history("solo")) == 1

    @async_test
    async def test_list_releases_by_name(self) -> None:
        async with self.open_store() as sp:
            await sp.releases.promote("b", D[0], BY)
            await sp.releases.promote("a", D[1], BY)
            await sp.releases.promote("b", D[2], BY)
            listed = await sp.releases.list_releases()
            assert [(r.name, r.spec_digest, r.seq) for r in listed] == [
                ("a", D[1], 1),
                ("b", D[2], 2),
            ]

    @async_test
    async def test_concurrent_promotes_lose_no_entry(self) -> None:
        async with self.open_store() as sp:
            tasks, per_task = 4, 6

            async def promote(worker: int) -> None:
                for i in range(per_task):
                    await sp.releases.promote(
                        "hot", D[(worker + i) % len(D)], ReleaseMetadata(f"w{worker}-{i}")
                    )

            await asyncio.gather(*(promote(w) for w in range(tasks)))
            await in_threads(lambda t: promote(tasks + t), 3)
            history = await sp.releases.history("hot")
            total = (tasks + 3) * per_task
            assert [r.seq for r in history] == list(range(total, 0, -1))
            assert sorted(r.metadata.promoted_by for r in history) == sorted(
                f"w{w}-{i}" for w in range(tasks + 3) for i in range(per_task)
            )
            assert await sp.releases.current("hot") == history[0]

    @async_test
    async def test_concurrent_rollbacks_each_step_back_once(self) -> None:
        async with self.open_store() as sp:
            for i in range(6):
                await sp.releases.promote("agent", D[i], BY)

            async def rollback(_: int) -> str:
                try:
                    return (await sp.releases.rollback("agent")).spec_digest.as_str()
                except NoPreviousRelease:
                    return "none"

            results = await in_threads(rollback, 4)
            assert sorted(results) == sorted(d.as_str() for d in D[1:5])
            assert (await sp.releases.current("agent")).spec_digest == D[1]  # type: ignore[union-attr]

    @needs(Capability.MULTI_PROCESS)
    def test_processes_promoting_one_name_lose_nothing(self) -> None:
        url = self.store_url()
        import stateport

        processes, times = 3, 15
        in_processes(_promote_worker, [(url, w, times) for w in range(processes)])

        async def history() -> list[Any]:
            async with stateport.open(url) as sp:
                return await sp.releases.history("shared")

        records = asyncio.run(history())
        assert [r.seq for r in records] == list(range(processes * times, 0, -1))
        assert sorted(r.metadata.promoted_by for r in records) == sorted(
            f"p{w}-{i}" for w in range(processes) for i in range(times)
        )

    @needs(Capability.PERSISTENT)
    def test_history_survives_close_and_reopen(self) -> None:
        url = self.store_url()
        import stateport

        async def write() -> list[Any]:
            async with stateport.open(url) as sp:
                for i in range(3):
                    await sp.releases.promote("agent", D[i], BY)
                await sp.releases.rollback("agent")
                return await sp.releases.history("agent")

        async def read_and_roll_back() -> tuple[list[Any], Any]:
            async with stateport.open(url) as sp:
                history = await sp.releases.history("agent")
                return history, await sp.releases.rollback("agent")

        written = asyncio.run(write())
        history, again = asyncio.run(read_and_roll_back())
        assert history == written
        assert (again.seq, again.spec_digest) == (5, D[0])  # the walk continues after reopening

    @async_test
    async def test_bad_input(self) -> None:
        async with self.open_store() as sp:
            releases: Any = sp.releases  # the calls below break the types on purpose
            wrong: Any = 3
            bad: list[Any] = [
                lambda: releases.promote("", D[0], BY),
                lambda: releases.promote("  ", D[0], BY),
                lambda: releases.promote("a\nb", D[0], BY),
                lambda: releases.promote("x" * 300, D[0], BY),
                lambda: releases.promote(7, D[0], BY),
                lambda: releases.promote("a", "nope", BY),
                lambda: releases.promote("a", D[0], {"promoted_by": "x"}),
                lambda: releases.promote("a", D[0], ReleaseMetadata("")),
                lambda: releases.promote("a", D[0], ReleaseMetadata("x", notes=wrong)),
                lambda: releases.rollback(""),
                lambda: releases.current(None),
                lambda: releases.history(""),
            ]
            for i, call in enumerate(bad):
                with pytest.raises(ValidationError):
                    await call()
                    pytest.fail(f"bad call {i} was accepted")
            assert await sp.releases.list_releases() == []


class CasStoreConformance(StoreConformance):
    """What every engine must show for ``sp.cas``."""

    @async_test
    async def test_put_get_contains_delete(self) -> None:
        async with self.open_store() as sp:
            data = b"some content \x00\xff"
            digest = await sp.cas.put(data)
            assert digest.as_str() == hashlib.sha256(data).hexdigest()
            assert await sp.cas.put(data) == digest  # same content, same digest
            assert await sp.cas.get(digest) == data
            assert await sp.cas.get(digest.as_str().upper()) == data
            assert await sp.cas.contains(digest)
            await sp.cas.delete(digest)
            assert not await sp.cas.contains(digest)
            await sp.cas.delete(digest)  # absent: a no-op
            with pytest.raises(NotFound):
                await sp.cas.get(digest)

    @async_test
    async def test_streams_in_and_out(self) -> None:
        async with self.open_store() as sp:
            chunks = [bytes([i]) * 100_000 for i in range(5)]
            digest = await sp.cas.put(iter(chunks))
            assert digest == ContentDigest.from_bytes(b"".join(chunks))
            async with sp.cas.open(digest) as reader:
                got = b"".join([c async for c in reader])
            assert got == b"".join(chunks)

    @needs(Capability.PERSISTENT)
    def test_content_survives_close_and_reopen(self) -> None:
        url = self.store_url()
        import stateport

        async def put() -> ContentDigest:
            async with stateport.open(url) as sp:
                return await sp.cas.put(b"kept")

        async def get(digest: ContentDigest) -> bytes:
            async with stateport.open(url) as sp:
                return await sp.cas.get(digest)

        assert asyncio.run(get(asyncio.run(put()))) == b"kept"

    @async_test
    async def test_digests_are_validated(self) -> None:
        async with self.open_store() as sp:
            for bad in ("", "abc", "g" * 64, "a" * 63, 42):
                with pytest.raises(ValidationError):
                    await sp.cas.get(bad)  # type: ignore[arg-type]
                with pytest.raises(ValidationError):
                    await sp.cas.contains(bad)  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await sp.cas.put("text is not bytes")  # type: ignore[arg-type]
            missing = ContentDigest.from_bytes(b"never stored")
            with pytest.raises(NotFound):
                await sp.cas.get(missing)
            assert missing.short() == missing.as_str()[:12]
