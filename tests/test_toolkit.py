"""The concurrency toolkit's engine-free parts: the cache, the state machine,
the retry loop's bounds. (What depends on an engine is in
stateport.testing.toolkit, run on every engine.)"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from enum import StrEnum

import pytest

from stateport.errors import Conflict, InvalidTransition, NotFound
from stateport.primitives import Backoff, BoundedCache, Retry, StateMachine, moved_on, retrying


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Make threads switch every microsecond, so races show in a short run."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _hammer(
    put: Callable[[str, int], None], threads: int = 4, each: int = 3000
) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(t: int) -> None:
        barrier.wait()
        try:
            for i in range(each):
                put(f"{t}-{i}", i)
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


@pytest.mark.usefixtures("tiny_switch_interval")
def test_cache_evicts_safely_from_many_threads() -> None:
    """Four threads filling a small cache at once: no error, never over size.

    The helper this cache replaced (evict ``next(iter(d))`` from a plain dict,
    unlocked) fails this test with a KeyError or a RuntimeError; see
    test_the_unlocked_helper_fails_the_same_test."""
    cache: BoundedCache[str, int] = BoundedCache(8)
    sizes: list[int] = []

    def put(key: str, value: int) -> None:
        cache.put(key, value)
        sizes.append(len(cache))

    assert _hammer(put) == []
    assert max(sizes) <= 8 and len(cache) == 8


@pytest.mark.usefixtures("tiny_switch_interval")
def test_the_unlocked_helper_fails_the_same_test() -> None:
    """The cache test can fail: the unlocked eviction the ledger used before
    breaks under it (proof that the test exercises the race)."""
    data: dict[str, int] = {}

    def keep(key: str, value: int) -> None:  # the ledger's former _keep, verbatim in shape
        if len(data) >= 8 and key not in data:
            del data[next(iter(data))]
        data[key] = value

    for _ in range(20):  # the race needs a few rounds at most
        data.clear()
        errors = _hammer(keep)
        if errors:
            assert all(isinstance(e, (KeyError, RuntimeError)) for e in errors)
            return
    pytest.fail("the unlocked helper survived 20 rounds: the race is not exercised")


def test_cache_basics() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)  # a moves to the end
    cache.put("c", 4)  # evicts b, the oldest write
    assert cache.get("b") is None and cache.get("a") == 3 and cache.get("c") == 4
    assert cache.get("x", 9) == 9
    assert "a" in cache and len(cache) == 2
    cache.discard("a")
    cache.discard("a")
    assert "a" not in cache
    value = cache.get("c")
    assert value is not None
    assert cache.replace("c", value, 5) and cache.get("c") == 5
    assert not cache.replace("c", value, 6) and cache.get("c") == 5
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        BoundedCache(0)


class Light(StrEnum):
    RED = "red"
    GREEN = "green"
    AMBER = "amber"
    OFF = "off"


LIGHTS = StateMachine(
    "light",
    {Light.RED: {Light.GREEN, Light.OFF}, Light.GREEN: {Light.AMBER}, Light.AMBER: {Light.RED}},
)


def test_state_machine_allows_declared_moves_only() -> None:
    assert LIGHTS.check(Light.RED, Light.GREEN) is True
    assert LIGHTS.can(Light.GREEN, Light.AMBER) and not LIGHTS.can(Light.GREEN, Light.RED)
    with pytest.raises(InvalidTransition) as info:
        LIGHTS.check(Light.GREEN, Light.RED, subject="light 7")
    assert str(info.value) == "light 7 is green: it cannot become red (allowed: amber)"
    with pytest.raises(InvalidTransition) as info:
        LIGHTS.check(Light.OFF, Light.RED)
    assert str(info.value) == "light is off: it cannot become red (off is final)"
    with pytest.raises(InvalidTransition):
        LIGHTS.check(Light.RED, Light.RED)  # no stay: the same state is refused
    assert LIGHTS.is_final(Light.OFF) and not LIGHTS.is_final(Light.RED)
    assert LIGHTS.describe().splitlines()[0] == "red -> green, off"


def test_state_machine_stay_is_a_no_op() -> None:
    machine = StateMachine("light", {Light.RED: {Light.GREEN}}, stay=True)
    assert machine.check(Light.RED, Light.RED) is False
    assert machine.check(Light.OFF, Light.OFF) is False
    with pytest.raises(ValueError):
        StateMachine("light", {Light.RED: {Light.RED}})


def test_backoff_is_bounded_and_starts_immediate() -> None:
    b = Backoff(tries=10, immediate=2, base=0.001, cap=0.004)
    assert b.delay(1) == 0.0 and b.delay(2) == 0.0
    delays = [b.delay(n) for n in range(3, 200) for _ in range(5)]
    assert all(0.0 <= d < 0.004 for d in delays)
    assert max(delays) > 0.002  # the bound doubles up to the cap
    assert all(b.delay(3) < 0.001 for _ in range(50))
    with pytest.raises(ValueError):
        Backoff(tries=0)


def test_retrying_retries_only_retry_and_stops_at_the_bound() -> None:
    async def main() -> None:
        tries = 0

        async def twice() -> str:
            nonlocal tries
            tries += 1
            if tries < 3:
                raise Retry("moved")
            return "done"

        assert await retrying(twice, what="x", backoff=Backoff(tries=3, immediate=3)) == "done"

        async def missing() -> None:
            raise NotFound("gone")

        with pytest.raises(NotFound):
            await retrying(missing, what="x")

        async def always() -> None:
            raise Retry("still")

        with pytest.raises(InvalidTransition, match=r"x kept changing .* 4 tries"):
            await retrying(
                always, what="x", backoff=Backoff(tries=4, base=0), exhausted=InvalidTransition
            )

    asyncio.run(main())


def test_moved_on_converts_only_the_named_conflicts() -> None:
    with pytest.raises(Retry), moved_on("head"):
        raise Conflict("x", tag="head")
    with pytest.raises(Conflict), moved_on("head"):
        raise Conflict("x", tag="other")
    with pytest.raises(Conflict), moved_on("head"):
        raise Conflict("x")
