"""Property-based tests of work tracking: state machines, the dependency graph,
the ready set, vector clocks and the chain encoding, against reference models
written here independently of the store."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import stateport
from stateport.domains.work import (
    DependencyCycle,
    Feature,
    FeatureState,
    VectorClock,
    WorkPackage,
    WpDependency,
    WpState,
)
from stateport.domains.work.models import ClockOrder
from stateport.errors import InvalidTransition
from stateport.primitives.chain import ChainCodec, encode_fields

SETTINGS = settings(max_examples=40, deadline=None)

# the machines as documented in docs/decisions/0015-work-tracking.md: a feature moves
# any number of steps forward (the audit entry names the states skipped) or one
# back before DONE
FEATURE_ORDER = ["SPECIFY", "PLAN", "IMPLEMENT", "REVIEW", "DONE"]


def feature_move(state: str, target: str) -> str | None:
    """The audit transition of an allowed feature move, or None if it is refused."""
    i, j = FEATURE_ORDER.index(state), FEATURE_ORDER.index(target)
    if j > i:
        jumped = FEATURE_ORDER[i + 1 : j]
        return f"{state} -> {target}" + (f" (skipped {', '.join(jumped)})" if jumped else "")
    if j == i - 1 and state != "DONE":
        return f"{state} -> {target}"
    return None


WP_EDGES = {
    ("PLANNED", "DOING"),
    ("DOING", "FOR_REVIEW"),
    ("DOING", "PLANNED"),
    ("FOR_REVIEW", "DONE"),
    ("FOR_REVIEW", "DOING"),
}
WP_PATH = {
    "PLANNED": [],
    "DOING": ["DOING"],
    "FOR_REVIEW": ["DOING", "FOR_REVIEW"],
    "DONE": ["DOING", "FOR_REVIEW", "DONE"],
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@SETTINGS
@given(st.lists(st.sampled_from(list(FeatureState)), max_size=14))
def test_feature_machine_matches_the_model(moves: list[FeatureState]) -> None:
    async def main() -> None:
        async with stateport.open("memory://") as sp:
            fid = await sp.work.create_feature(Feature(slug="f", friendly_name="F"))
            state, accepted = "SPECIFY", []
            for target in moves:
                move = feature_move(state, target.value)
                try:
                    await sp.work.update_feature_state(fid, target, actor="p")
                except InvalidTransition:
                    assert move is None
                else:
                    assert move is not None
                    accepted.append(move)
                    state = target.value
            assert (await sp.work.require_feature(fid)).state.value == state
            trail = await sp.work.get_audit_trail(fid)
            assert [e.transition for e in trail] == accepted
            assert (await sp.work.verify_audit_chain(fid)).ok

    run(main())


@SETTINGS
@given(st.lists(st.sampled_from(list(WpState)), max_size=14))
def test_wp_machine_matches_the_model(moves: list[WpState]) -> None:
    async def main() -> None:
        async with stateport.open("memory://") as sp:
            fid = await sp.work.create_feature(Feature(slug="f", friendly_name="F"))
            wp = await sp.work.create_work_package(
                WorkPackage(feature_id=fid, sequence=3, title="t")
            )
            state, accepted = "PLANNED", 0
            for target in moves:
                allowed = (state, target.value) in WP_EDGES
                try:
                    await sp.work.update_wp_state(wp, target, actor="p")
                except InvalidTransition:
                    assert not allowed
                else:
                    assert allowed
                    accepted += 1
                    state = target.value
            got = await sp.work.get_work_package(wp)
            assert got is not None and got.state.value == state
            assert len(await sp.work.get_audit_trail(fid)) == accepted
            assert (await sp.work.verify_audit_chain(fid)).ok

    run(main())


def reaches(edges: set[tuple[int, int]], start: int, goal: int) -> bool:
    seen, todo = {start}, [start]
    while todo:
        n = todo.pop()
        if n == goal:
            return True
        for a, b in edges:
            if a == n and b not in seen:
                seen.add(b)
                todo.append(b)
    return False


@SETTINGS
@given(
    st.integers(2, 7).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=18),
            st.lists(st.sampled_from(list(WP_PATH)), min_size=n, max_size=n),
        )
    )
)
def test_graph_never_accepts_a_cycle_and_ready_matches_the_model(
    case: tuple[int, list[tuple[int, int]], list[str]],
) -> None:
    n, proposed, states = case

    async def main() -> None:
        async with stateport.open("memory://") as sp:
            w = sp.work
            fid = await w.create_feature(Feature(slug="g", friendly_name="G"))
            ids = [
                await w.create_work_package(WorkPackage(feature_id=fid, sequence=i, title="t"))
                for i in range(n)
            ]
            edges: set[tuple[int, int]] = set()
            for a, b in proposed:
                expect = (
                    "self" if a == b
                    else "dup" if (a, b) in edges
                    else "cycle" if reaches(edges, b, a)
                    else "ok"
                )  # fmt: skip
                try:
                    await w.add_wp_dependency(WpDependency(wp_id=ids[a], depends_on=ids[b]))
                except DependencyCycle:
                    assert expect == "cycle"
                except stateport.ValidationError:
                    assert expect == "self"
                else:
                    assert expect in ("ok", "dup")  # a repeated addition changes nothing
                    edges.add((a, b))
            for i, target in enumerate(states):
                for step in WP_PATH[target]:
                    await w.update_wp_state(ids[i], step, actor="p")
            model = [
                i
                for i in range(n)
                if states[i] == "PLANNED" and all(states[b] == "DONE" for a, b in edges if a == i)
            ]
            assert [p.id for p in await w.get_ready_wps(fid)] == [ids[i] for i in model]
            for i in range(n):
                deps = await w.get_wp_dependencies(ids[i])
                assert {d.depends_on for d in deps} == {ids[b] for a, b in edges if a == i}
            layers = await w.execution_order(fid)
            assert sorted(p.id for layer in layers for p in layer) == sorted(ids)
            where = {p.id: k for k, layer in enumerate(layers) for p in layer}
            for a, b in edges:
                assert where[ids[b]] < where[ids[a]]

    run(main())


clocks = st.dictionaries(st.sampled_from("abcde"), st.integers(0, 5), max_size=5).map(VectorClock)


@given(clocks, clocks)
def test_merge_is_commutative_and_an_upper_bound(a: VectorClock, b: VectorClock) -> None:
    m = a.merge(b)
    assert m == b.merge(a)
    assert m.dominates(a) and m.dominates(b)


@given(clocks, clocks, clocks)
def test_merge_is_associative(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(clocks)
def test_merge_is_idempotent(a: VectorClock) -> None:
    assert a.merge(a) == a
    assert a.compare(a) is ClockOrder.EQUAL


@given(clocks, clocks)
def test_compare_is_antisymmetric_and_agrees_with_merge(a: VectorClock, b: VectorClock) -> None:
    flip = {
        ClockOrder.BEFORE: ClockOrder.AFTER,
        ClockOrder.AFTER: ClockOrder.BEFORE,
        ClockOrder.EQUAL: ClockOrder.EQUAL,
        ClockOrder.CONCURRENT: ClockOrder.CONCURRENT,
    }
    assert b.compare(a) is flip[a.compare(b)]
    assert (a.compare(b) is ClockOrder.EQUAL) == (a == b)
    assert (a.merge(b) == b) == (a.compare(b) in (ClockOrder.BEFORE, ClockOrder.EQUAL))


values = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=8),
    st.lists(st.text(max_size=4), max_size=3),
)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=4), values), max_size=5),
       st.lists(st.tuples(st.text(min_size=1, max_size=4), values), max_size=5))  # fmt: skip
def test_distinct_field_lists_encode_differently(
    x: list[tuple[str, Any]], y: list[tuple[str, Any]]
) -> None:
    def norm(fields: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        return [(k, v if not isinstance(v, list) else tuple(v)) for k, v in fields]

    if norm(x) != norm(y):
        assert encode_fields(x) != encode_fields(y)
    names = [k for k, _ in x]
    if names:
        assert ChainCodec(names).encode([v for _, v in x]) == encode_fields(x)
