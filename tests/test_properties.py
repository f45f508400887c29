"""Property-based checks: any JSON value round-trips and the table matches a model."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stateport
from stateport import KeyRange
from stateport._json import json_equal

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**37), max_value=10**37)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
# pk/sk are the key; index key attributes (gsi1pk, ...) must be strings: both tested elsewhere
attr_names = st.text(min_size=1, max_size=6).filter(
    lambda s: s not in ("pk", "sk") and not s.startswith("gsi")
)
keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)
URLS = ("memory://", "sqlite://:memory:")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=st.dictionaries(attr_names, json_values, max_size=5))
def test_any_json_attributes_round_trip(attrs: dict[str, Any]) -> None:
    async def main() -> None:
        for url in URLS:
            async with stateport.open(url) as sp:
                await sp.table.put("p", "s", attrs)
                got = await sp.table.get("p", "s")
                assert got is not None and json_equal(got.attrs, attrs)

    asyncio.run(main())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    writes=st.lists(st.tuples(st.sampled_from(["a", "b"]), keys, st.booleans()), max_size=25),
    prefix=st.text(max_size=2),
    limit=st.integers(min_value=1, max_value=6),
    descending=st.booleans(),
)
def test_queries_match_a_reference_model(
    writes: list[tuple[str, str, bool]], prefix: str, limit: int, descending: bool
) -> None:
    model: dict[tuple[str, str], int] = {}
    for n, (pk, sk, delete) in enumerate(writes):
        if delete:
            model.pop((pk, sk), None)
        else:
            model[(pk, sk)] = n
    expected = sorted(
        (sk for (pk, sk) in model if pk == "a" and sk.startswith(prefix)), reverse=descending
    )

    async def main() -> None:
        for url in URLS:
            async with stateport.open(url) as sp:
                for n, (pk, sk, delete) in enumerate(writes):
                    if delete:
                        await sp.table.delete(pk, sk)
                    else:
                        await sp.table.put(pk, sk, {"n": n})
                seen: list[str] = []
                cursor = None
                while True:
                    page = await sp.table.query(
                        "a",
                        KeyRange.prefix(prefix),
                        limit=limit,
                        descending=descending,
                        cursor=cursor,
                    )
                    assert len(page.items) <= limit
                    for item in page:
                        assert item.attrs["n"] == model[("a", item.sk)]
                    seen.extend(i.sk for i in page)
                    if page.cursor is None:
                        break
                    cursor = page.cursor
                assert seen == expected, url

    asyncio.run(main())


# ---------------------------------------------------------------- differential

# values that JSON, SQL and Python each compare in their own way: 1 == 1.0 but
# True is not 1, "1" is not 1, None is not absent, containers compare by value
VALUES = [0, 1, 1.0, 2.5, True, False, None, "1", "x", [1], {"k": 1}]
values = st.sampled_from(VALUES)
real_conditions = st.one_of(
    st.sampled_from(
        [
            stateport.Exists(),
            stateport.NotExists(),
            stateport.VersionEquals(1),
            stateport.VersionEquals(2),
        ]
    ),
    st.builds(stateport.AttrEquals, st.sampled_from(["v", "w"]), values),
)
conditions = st.one_of(st.none(), real_conditions)
small_keys = st.sampled_from(["a", "b"])
operations = st.one_of(
    st.builds(
        stateport.Put,
        small_keys,
        small_keys,
        st.fixed_dictionaries({"v": values}),
        conditions,
    ),
    st.builds(
        stateport.Update,
        small_keys,
        small_keys,
        st.fixed_dictionaries({"v": values}),
        st.just(()),
        conditions,
    ),
    st.builds(stateport.Delete, small_keys, small_keys, conditions),
    st.builds(stateport.Check, small_keys, small_keys, real_conditions),
)


async def _apply(sp: stateport.Stateport, batches: list[list[Any]]) -> list[object]:
    outcomes: list[object] = []
    for ops in batches:
        try:
            if len(ops) == 1 and not isinstance(ops[0], stateport.Check):
                op = ops[0]
                if isinstance(op, stateport.Put):
                    got: object = await sp.table.put(op.pk, op.sk, op.attrs, condition=op.condition)
                elif isinstance(op, stateport.Update):
                    got = await sp.table.update(op.pk, op.sk, set=op.set, condition=op.condition)
                else:
                    got = await sp.table.delete(op.pk, op.sk, condition=op.condition)
            else:
                got = await sp.table.transact(ops)
            outcomes.append(got)
        except stateport.StateportError as e:
            outcomes.append((type(e).__name__, getattr(e, "op_index", None), str(e)))
    state = [(i.pk, i.sk, i.attrs, i.version) for pk in "ab" async for i in sp.table.query_all(pk)]
    outcomes.append(state)
    return outcomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(operations, min_size=1, max_size=3), max_size=12))
def test_every_engine_gives_the_same_answers(batches: list[list[Any]]) -> None:
    """The memory backend behaves exactly as SQLite: results, errors, final state."""

    async def run(url: str) -> list[object]:
        async with stateport.open(url) as sp:
            return await _apply(sp, batches)

    assert asyncio.run(run("memory://")) == asyncio.run(run("sqlite://:memory:"))


def test_guarded_inserts_compare_values_as_every_engine_does() -> None:
    """Every stored value against every condition value, on the shape SQLite runs
    as one statement (checks, then one put on NotExists): memory and SQLite agree."""

    async def run(url: str) -> list[object]:
        outcomes: list[object] = []
        async with stateport.open(url) as sp:
            for i, stored in enumerate([*VALUES, "absent"]):
                pk = f"p{i}"
                attrs = {} if stored == "absent" else {"v": stored}
                await sp.table.put(pk, "a", attrs)
                for j, wanted in enumerate(VALUES):
                    for cond in (
                        stateport.AttrEquals("v", wanted),
                        [stateport.Exists(), stateport.AttrEquals("v", wanted)],
                    ):
                        ops = [
                            stateport.Check(pk, "a", cond),
                            stateport.Put(pk, f"new{j}", {"n": j}, stateport.NotExists()),
                        ]
                        try:
                            await sp.table.transact(ops)
                            outcomes.append((i, j, "ok"))
                            await sp.table.delete(pk, f"new{j}")
                        except stateport.Conflict as e:
                            outcomes.append((i, j, e.op_index))
        return outcomes

    memory, sqlite = asyncio.run(run("memory://")), asyncio.run(run("sqlite://:memory:"))
    assert memory == sqlite
    assert ("ok" in {o[2] for o in memory}) and (0 in {o[2] for o in memory})


mostly_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(max_size=3)
    | st.sampled_from([(1, 2), {1}, b"x", object()]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 2)), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(value=mostly_json, portable=st.booleans())
def test_the_fast_json_check_agrees_with_the_explaining_one(value: Any, portable: bool) -> None:
    from stateport import _json

    def outcome(check: Any) -> str | None:
        try:
            check(value, portable=portable, where="v")
        except stateport.ValidationError as e:
            return str(e)
        return None

    # the explaining walk raises a ValidationError exactly when the value is
    # invalid; on a valid value it finds nothing to explain and says so
    fast = outcome(_json.check_json)
    try:
        slow = outcome(_json._explain)
    except AssertionError:
        slow = None
    assert fast == slow
