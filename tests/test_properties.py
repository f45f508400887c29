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
attr_names = st.text(min_size=1, max_size=6).filter(lambda s: s not in ("pk", "sk"))
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
