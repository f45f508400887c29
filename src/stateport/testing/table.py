"""Conformance tests for the table port (``sp.table``).

Subclass :class:`TablePortConformance` in a test module and implement
:meth:`~stateport.testing.StoreConformance.store_url`; every test then runs
against your engine as an ordinary pytest item.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from .. import _json
from ..errors import Conflict, ValidationError
from ..ports.engine import Capability
from ..ports.table import (
    AttrEquals,
    Check,
    Delete,
    Exists,
    Item,
    KeyRange,
    NotExists,
    Op,
    Put,
    StoredItem,
    TablePort,
    Update,
    VersionEquals,
)
from ._support import async_test, in_processes, needs, with_params
from .store import StoreConformance

__all__ = ["TablePortConformance", "increment"]


async def increment(table: TablePort, pk: str, sk: str, times: int) -> int:
    """Add 1 to ``n`` of an item ``times`` times, by version-guarded read-modify-write.

    Returns how many conflicts were retried. Used by the concurrency tests (and
    importable by child processes).
    """
    retries = 0
    done = 0
    while done < times:
        item = await table.get(pk, sk)
        try:
            if item is None:
                await table.put(pk, sk, {"n": 1}, condition=NotExists())
            else:
                await table.update(
                    pk,
                    sk,
                    set={"n": item.attrs["n"] + 1},
                    condition=VersionEquals(item.version),
                )
        except Conflict:
            retries += 1
            continue
        done += 1
    return retries


def _process_worker(url: str, pk: str, worker: int, times: int) -> None:
    import stateport

    async def main() -> None:
        async with stateport.open(url) as sp:
            await increment(sp.table, pk, "counter", times)
            for i in range(times):
                await sp.table.put(pk, f"w{worker:02d}#{i:04d}", {"worker": worker, "i": i})

    asyncio.run(main())


def _transfer_worker(url: str, seed: int, transfers: int) -> None:
    """A child process: move random amounts between five accounts, two-item
    transactions guarded by versions, and store a receipt blob for each."""
    import random

    import stateport

    from ..primitives import moved_on, retrying

    rng = random.Random(seed)

    async def main() -> None:
        async with stateport.open(url) as sp:
            for done in range(1, transfers + 1):
                a, b = rng.sample(range(5), 2)
                amount = rng.randint(1, 5)

                async def attempt(a: int = a, b: int = b, amount: int = amount) -> None:
                    src, dst = await sp.table.batch_get(
                        [("bank", f"acct{a}"), ("bank", f"acct{b}")]
                    )
                    assert src is not None and dst is not None
                    take = {"balance": src.attrs["balance"] - amount}
                    give = {"balance": dst.attrs["balance"] + amount}
                    with moved_on("account"):
                        await sp.table.transact(
                            [
                                Update(
                                    "bank", src.sk, take, (), VersionEquals(src.version), "account"
                                ),
                                Update(
                                    "bank", dst.sk, give, (), VersionEquals(dst.version), "account"
                                ),
                            ]
                        )

                await retrying(attempt, what="the accounts")
                await sp.blobs.put(f"receipt {seed} {done}".encode())

    asyncio.run(main())


class TablePortConformance(StoreConformance):
    """The behaviour every table engine must show."""

    def open_table(self, *, portable: bool = True) -> AbstractAsyncContextManager[TablePort]:
        """The table port of a fresh store, with DynamoDB's limits enforced or not."""
        return table_of(with_params(self.store_url(), portable=str(portable).lower()))

    # ------------------------------------------------------------------ basics

    @async_test
    async def test_put_get_roundtrip(self) -> None:
        async with self.open_table() as t:
            attrs = {"s": "x", "i": 7, "f": 1.5, "b": True, "z": None, "l": [1, {"a": []}]}
            created = await t.put("p", "s", attrs)
            assert created == Item("p", "s", attrs, 1)
            assert await t.get("p", "s") == Item("p", "s", attrs, 1)
            assert await t.get("p", "missing") is None
            assert await t.get("other", "s") is None

    @async_test
    async def test_version_increments_on_every_write(self) -> None:
        async with self.open_table() as t:
            assert (await t.put("p", "s", {"a": 1})).version == 1
            assert (await t.put("p", "s", {"a": 2})).version == 2
            assert (await t.update("p", "s", set={"b": 3})).version == 3
            item = await t.get("p", "s")
            assert item == Item("p", "s", {"a": 2, "b": 3}, 3)

    @async_test
    async def test_stored_values_are_copies(self) -> None:
        async with self.open_table() as t:
            attrs: dict[str, Any] = {"l": [1, 2], "d": {"k": "v"}}
            await t.put("p", "s", attrs)
            attrs["l"].append(3)
            attrs["d"]["k"] = "changed"
            got = await t.get("p", "s")
            assert got is not None and got.attrs == {"l": [1, 2], "d": {"k": "v"}}
            got.attrs["l"].append(99)
            again = await t.get("p", "s")
            assert again is not None and again.attrs["l"] == [1, 2]

    @async_test
    async def test_unicode_and_numbers_roundtrip(self) -> None:
        async with self.open_table() as t:
            attrs = {"text": "héllo ✓ 😀 \u0000 end", "big": 10**37, "neg": -3, "tiny": 1e-300}
            await t.put("p#ü", "s#😀", attrs)
            got = await t.get("p#ü", "s#😀")
            assert got is not None and got.attrs == attrs

    @async_test
    async def test_batch_get_keeps_order(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "a", {"v": 1})
            await t.put("q", "b", {"v": 2})
            got = await t.batch_get([("q", "b"), ("p", "zz"), ("p", "a")])
            assert [g.attrs["v"] if g else None for g in got] == [2, None, 1]
            assert await t.batch_get([]) == []
            for bad in (["pk"], [("p", "a", "x")], [("p",)], [5]):
                with pytest.raises(ValidationError):
                    await t.batch_get(bad)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ conditions

    @async_test
    async def test_not_exists_condition(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "s", {"v": 1}, condition=NotExists())
            with pytest.raises(Conflict) as info:
                await t.put("p", "s", {"v": 2}, condition=NotExists())
            assert info.value.op_index == 0
            assert info.value.key == ("p", "s")
            assert info.value.condition == "not exists"
            assert (await t.get("p", "s")) == Item("p", "s", {"v": 1}, 1)

    @async_test
    async def test_exists_condition(self) -> None:
        async with self.open_table() as t:
            with pytest.raises(Conflict):
                await t.put("p", "s", {"v": 1}, condition=Exists())
            assert await t.get("p", "s") is None
            await t.put("p", "s", {"v": 1})
            await t.put("p", "s", {"v": 2}, condition=Exists())
            assert (await t.get("p", "s")) == Item("p", "s", {"v": 2}, 2)

    @async_test
    async def test_version_condition(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "s", {"v": 1})
            await t.put("p", "s", {"v": 2}, condition=VersionEquals(1))
            with pytest.raises(Conflict) as info:
                await t.put("p", "s", {"v": 3}, condition=VersionEquals(1))
            assert "version" in str(info.value)
            with pytest.raises(Conflict):
                await t.put("p", "new", {"v": 1}, condition=VersionEquals(1))
            assert (await t.get("p", "s")) == Item("p", "s", {"v": 2}, 2)
            assert await t.get("p", "new") is None

    @async_test
    async def test_attr_equals_condition(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "s", {"state": "open", "n": 1, "flag": True, "obj": {"a": [1]}})
            await t.update("p", "s", set={"x": 1}, condition=AttrEquals("state", "open"))
            await t.update("p", "s", set={"x": 2}, condition=AttrEquals("n", 1.0))
            await t.update("p", "s", set={"x": 3}, condition=AttrEquals("obj", {"a": [1]}))
            for cond in (
                AttrEquals("state", "closed"),
                AttrEquals("flag", 1),  # a boolean is not a number
                AttrEquals("n", True),
                AttrEquals("absent", None),
            ):
                with pytest.raises(Conflict):
                    await t.update("p", "s", set={"x": 99}, condition=cond)
            item = await t.get("p", "s")
            assert item is not None and item.attrs["x"] == 3 and item.version == 4

    @async_test
    async def test_several_conditions_all_must_hold(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "s", {"state": "a"})
            with pytest.raises(Conflict) as info:
                await t.put(
                    "p",
                    "s",
                    {"state": "b"},
                    condition=[VersionEquals(1), AttrEquals("state", "z")],
                )
            assert info.value.condition == 'state == "z"'
            await t.put("p", "s", {"state": "b"}, condition=[VersionEquals(1), Exists()])
            assert (await t.get("p", "s")) == Item("p", "s", {"state": "b"}, 2)

    # ------------------------------------------------------------------ update / delete

    @async_test
    async def test_update_sets_and_removes(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "s", {"a": 1, "b": 2, "c": 3})
            item = await t.update("p", "s", set={"a": 10, "d": 4}, remove=["b", "never"])
            assert item == Item("p", "s", {"a": 10, "c": 3, "d": 4}, 2)
            assert await t.get("p", "s") == item

    @async_test
    async def test_update_of_missing_item_is_a_conflict(self) -> None:
        async with self.open_table() as t:
            with pytest.raises(Conflict) as info:
                await t.update("p", "missing", set={"a": 1})
            assert info.value.condition == "exists"
            assert await t.get("p", "missing") is None

    @async_test
    async def test_delete(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "s", {"a": 1})
            await t.delete("p", "s")
            assert await t.get("p", "s") is None
            await t.delete("p", "s")  # absent: a no-op
            with pytest.raises(Conflict):
                await t.delete("p", "s", condition=Exists())
            await t.put("p", "s", {"a": 1})
            with pytest.raises(Conflict):
                await t.delete("p", "s", condition=VersionEquals(7))
            assert await t.get("p", "s") is not None

    # ------------------------------------------------------------------ transactions

    @async_test
    async def test_transaction_applies_all(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "old", {"v": 0})
            await t.put("p", "upd", {"v": 0})
            await t.transact(
                [
                    Put("p", "new", {"v": 1}, NotExists()),
                    Update("p", "upd", {"v": 2}, condition=VersionEquals(1)),
                    Delete("p", "old", Exists()),
                ]
            )
            assert (await t.get("p", "new")) == Item("p", "new", {"v": 1}, 1)
            assert (await t.get("p", "upd")) == Item("p", "upd", {"v": 2}, 2)
            assert await t.get("p", "old") is None

    @async_test
    async def test_transaction_is_all_or_nothing(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "guard", {"state": "locked"})
            await t.put("p", "victim", {"v": 1})
            ops: list[Op] = [
                Put("p", "a", {"v": 1}),
                Delete("p", "victim"),
                Update("p", "guard", {"state": "x"}),
                Check("p", "guard", AttrEquals("state", "open")),
            ]
            # the last two address one key: first prove duplicates are refused
            with pytest.raises(ValidationError):
                await t.transact(ops)
            with pytest.raises(Conflict) as info:
                await t.transact([*ops[:2], ops[3]])
            assert info.value.op_index == 2
            assert info.value.key == ("p", "guard")
            assert await t.get("p", "a") is None
            assert (await t.get("p", "victim")) == Item("p", "victim", {"v": 1}, 1)
            assert (await t.get("p", "guard")) == Item("p", "guard", {"state": "locked"}, 1)

    @async_test
    async def test_transaction_conflict_names_the_failing_operation(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "b", {"v": 1})
            with pytest.raises(Conflict) as info:
                await t.transact([Put("p", "a", {"v": 1}), Put("p", "b", {"v": 2}, NotExists())])
            assert info.value.op_index == 1
            assert "operation 1" in str(info.value)
            assert await t.get("p", "a") is None

    @async_test
    async def test_the_first_failing_operation_is_named(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "taken", {"v": 1})
            await t.put("p", "other", {"v": 1})
            cases: list[tuple[list[Op], int]] = [
                # a create of an existing item, then a failing check
                ([Put("p", "n1", {}, NotExists()), Put("p", "taken", {}, NotExists()),
                  Check("p", "other", VersionEquals(9))], 1),
                # a failing check, then a create of an existing item
                ([Check("p", "other", VersionEquals(9)), Put("p", "taken", {}, NotExists())], 0),
                # many creates, the last one of an existing item
                ([*(Put("p", f"new{i}", {}, NotExists()) for i in range(20)),
                  Put("p", "taken", {}, NotExists())], 20),
            ]  # fmt: skip
            for ops, first in cases:
                with pytest.raises(Conflict) as info:
                    await t.transact(ops)
                assert info.value.op_index == first
                assert await t.get("p", "n1") is None and await t.get("p", "new0") is None
            taken = await t.get("p", "taken")
            assert taken is not None and taken.version == 1

    @async_test
    async def test_transaction_check_only(self) -> None:
        async with self.open_table() as t:
            await t.put("p", "s", {"v": 1})
            await t.transact([Check("p", "s", VersionEquals(1))])
            with pytest.raises(Conflict):
                await t.transact([Check("p", "s", NotExists())])
            with pytest.raises(ValidationError):
                await t.transact([Check("p", "s", [])])

    @async_test
    async def test_transaction_bad_shapes(self) -> None:
        async with self.open_table() as t:
            with pytest.raises(ValidationError):
                await t.transact([])
            with pytest.raises(ValidationError):
                await t.transact([Put("p", "a", {"v": 1}), "not an op"])  # type: ignore[list-item]
            with pytest.raises(ValidationError):
                await t.transact([Put("p", "a", {"v": 1}), Put("p", "a", {"v": 2})])
            assert await t.get("p", "a") is None

    @async_test
    async def test_update_that_grows_too_large_applies_nothing(self) -> None:
        async with self.open_table() as t:
            limit = t.capabilities.max_item_bytes
            if limit is None or limit > 50_000_000:
                pytest.skip("the engine sets no practical item size limit")
            await t.put("p", "big", {"a": "x" * (limit // 2)})
            await t.put("p", "other", {"v": 1})
            with pytest.raises(ValidationError):
                await t.transact(
                    [
                        Update("p", "other", {"v": 2}),
                        Update("p", "big", {"b": "y" * (limit // 2 + 10)}),
                    ]
                )
            assert (await t.get("p", "other")) == Item("p", "other", {"v": 1}, 1)

    # ------------------------------------------------------------------ queries

    async def _fill(self, t: TablePort, keys: list[str]) -> None:
        for i, sk in enumerate(keys):
            await t.put("p", sk, {"i": i})

    @async_test
    async def test_query_orders_by_sort_key(self) -> None:
        async with self.open_table() as t:
            keys = ["b", "a", "c#2", "c#1", "c#10", "d"]
            await self._fill(t, keys)
            await t.put("other", "a", {"i": -1})
            page = await t.query("p")
            assert [i.sk for i in page] == sorted(keys)
            assert page.cursor is None
            desc = await t.query("p", descending=True)
            assert [i.sk for i in desc] == sorted(keys, reverse=True)

    @async_test
    async def test_query_key_ranges(self) -> None:
        async with self.open_table() as t:
            await self._fill(t, ["a", "b#1", "b#2", "b#3", "bb", "c"])

            async def sks(r: KeyRange, **kw: Any) -> list[str]:
                return [i.sk for i in await t.query("p", r, **kw)]

            assert await sks(KeyRange.prefix("b#")) == ["b#1", "b#2", "b#3"]
            assert await sks(KeyRange.prefix("b")) == ["b#1", "b#2", "b#3", "bb"]
            assert await sks(KeyRange.prefix("")) == ["a", "b#1", "b#2", "b#3", "bb", "c"]
            assert await sks(KeyRange.between("b#2", "bb")) == ["b#2", "b#3", "bb"]
            assert await sks(KeyRange.eq("bb")) == ["bb"]
            assert await sks(KeyRange.lt("b#2")) == ["a", "b#1"]
            assert await sks(KeyRange.lte("b#2")) == ["a", "b#1", "b#2"]
            assert await sks(KeyRange.gt("b#3")) == ["bb", "c"]
            assert await sks(KeyRange.gte("b#3")) == ["b#3", "bb", "c"]
            assert await sks(KeyRange.prefix("b#"), descending=True) == ["b#3", "b#2", "b#1"]
            assert await sks(KeyRange.prefix("zz")) == []

    @async_test
    async def test_sort_order_is_code_point_order(self) -> None:
        async with self.open_table() as t:
            # UTF-16 would put U+1F600 before U+FFFF; UTF-8 bytes and code points agree
            keys = ["a", "B", "é", "\uffff", "😀", "z", "\u00ff", "\U0010fffd"]
            await self._fill(t, keys)
            assert [i.sk for i in await t.query("p")] == sorted(keys)
            assert [i.sk for i in await t.query("p", KeyRange.gt("\uffff"))] == [
                "😀",
                "\U0010fffd",
            ]

    @async_test
    async def test_paging_visits_every_item_once(self) -> None:
        async with self.open_table() as t:
            keys = [f"k{i:03d}" for i in range(23)]
            await self._fill(t, keys)
            for descending in (False, True):
                seen: list[str] = []
                cursor = None
                pages = 0
                while True:
                    page = await t.query(
                        "p", KeyRange.prefix("k"), limit=5, cursor=cursor, descending=descending
                    )
                    pages += 1
                    seen.extend(i.sk for i in page)
                    cursor = page.cursor
                    if cursor is None:
                        break
                assert seen == sorted(keys, reverse=descending)
                assert pages == 5

    @async_test
    async def test_cursor_is_none_on_an_exact_last_page(self) -> None:
        async with self.open_table() as t:
            await self._fill(t, ["a", "b", "c", "d"])
            first = await t.query("p", limit=2)
            assert first.cursor is not None
            second = await t.query("p", limit=2, cursor=first.cursor)
            assert [i.sk for i in second] == ["c", "d"] and second.cursor is None

    @async_test
    async def test_query_all_follows_cursors(self) -> None:
        async with self.open_table() as t:
            keys = [f"k{i:03d}" for i in range(12)]
            await self._fill(t, keys)
            got = [i.sk async for i in t.query_all("p", page_size=5)]
            assert got == keys
            pages = [[i.sk for i in page] async for page in t.query_pages("p", page_size=5)]
            assert pages == [keys[:5], keys[5:10], keys[10:]]

    @async_test
    async def test_foreign_or_malformed_cursor_is_rejected(self) -> None:
        async with self.open_table() as t:
            await self._fill(t, ["a", "b", "c"])
            await t.put("q", "a", {})
            await t.put("q", "b", {})
            cursor = (await t.query("p", limit=1)).cursor
            assert cursor is not None
            for kwargs in (
                {"pk": "q"},
                {"pk": "p", "descending": True},
                {"pk": "p", "key_range": KeyRange.prefix("a")},
                {"pk": "p", "index": "gsi1"},
            ):
                with pytest.raises(ValidationError):
                    await t.query(**kwargs, limit=1, cursor=cursor)
            for bad in ("", "!!!", "e30", cursor[:-3] + "xyz"):
                with pytest.raises(ValidationError):
                    await t.query("p", limit=1, cursor=bad)

    @async_test
    async def test_secondary_index(self) -> None:
        async with self.open_table() as t:
            ix = t.indexes[0]
            await t.put("u#1", "profile", {ix.pk_attr: "team#x", ix.sk_attr: "b", "n": 1})
            await t.put("u#2", "profile", {ix.pk_attr: "team#x", ix.sk_attr: "a", "n": 2})
            await t.put("u#3", "profile", {ix.pk_attr: "team#y", ix.sk_attr: "a", "n": 3})
            await t.put("u#4", "profile", {ix.pk_attr: "team#x", "n": 4})  # no sort key: absent
            got = await t.query("team#x", index=ix.name)
            assert [(i.pk, i.attrs["n"]) for i in got] == [("u#2", 2), ("u#1", 1)]
            got = await t.query("team#x", KeyRange.gte("b"), index=ix.name)
            assert [i.pk for i in got] == ["u#1"]
            # moving an item in the index, and out of it
            await t.update("u#2", "profile", set={ix.pk_attr: "team#y"})
            await t.update("u#1", "profile", remove=[ix.sk_attr])
            assert [i.pk for i in await t.query("team#x", index=ix.name)] == []
            assert [i.pk for i in await t.query("team#y", index=ix.name)] == ["u#2", "u#3"]
            await t.delete("u#3", "profile")
            assert [i.pk for i in await t.query("team#y", index=ix.name)] == ["u#2"]

    @async_test
    async def test_index_ties_are_ordered_by_key_and_paged_stably(self) -> None:
        async with self.open_table() as t:
            ix = t.indexes[1]
            keys = [(f"p{i % 4}", f"s{i:02d}") for i in range(14)]
            for pk, sk in reversed(keys):
                await t.put(pk, sk, {ix.pk_attr: "all", ix.sk_attr: "same"})
            expected = sorted(keys)
            for descending in (False, True):
                seen: list[tuple[str, str]] = []
                cursor = None
                while True:
                    page = await t.query(
                        "all", index=ix.name, limit=3, cursor=cursor, descending=descending
                    )
                    seen.extend((i.pk, i.sk) for i in page)
                    if page.cursor is None:
                        break
                    cursor = page.cursor
                assert seen == (sorted(expected, reverse=True) if descending else expected)

    @async_test
    async def test_index_key_attributes_must_be_strings(self) -> None:
        async with self.open_table() as t:
            ix = t.indexes[0]
            with pytest.raises(ValidationError):
                await t.put("p", "s", {ix.pk_attr: 5, ix.sk_attr: "x"})
            with pytest.raises(ValidationError):
                await t.put("p", "s", {ix.pk_attr: "a", ix.sk_attr: ""})
            with pytest.raises(ValidationError):
                await t.query("x", index="no-such-index")
            assert await t.get("p", "s") is None

    # ------------------------------------------------------------------ bad input

    @async_test
    async def test_non_json_values_are_rejected_and_nothing_written(self) -> None:
        async with self.open_table() as t:
            for bad in (
                {"v": {1, 2}},
                {"v": (1, 2)},
                {"v": b"bytes"},
                {"v": float("nan")},
                {"v": float("inf")},
                {"v": {1: "int key"}},
                {"v": object()},
                {"v": "\ud800"},
                {"pk": "reserved"},
                {"": "empty name"},
            ):
                with pytest.raises(ValidationError):
                    await t.put("p", "s", bad)
                with pytest.raises(ValidationError):
                    await t.transact([Put("p", "ok", {"v": 1}), Put("p", "s", bad)])
            with pytest.raises(ValidationError):
                await t.put("p", "s", ["not", "a", "dict"])  # type: ignore[arg-type]
            cyclic: list[Any] = []
            cyclic.append(cyclic)
            deep: Any = "leaf"
            for _ in range(40):
                deep = [deep]
            for bad_value in (cyclic, deep):
                with pytest.raises(ValidationError, match="levels deep"):
                    await t.put("p", "s", {"v": bad_value})
            assert (await t.query("p")).items == []

    @async_test
    async def test_bad_keys_are_rejected(self) -> None:
        async with self.open_table() as t:
            for pk, sk in (("", "s"), ("p", ""), (1, "s"), ("p", None), ("p", "\udc00")):
                with pytest.raises(ValidationError):
                    await t.put(pk, sk, {})  # type: ignore[arg-type]
                with pytest.raises(ValidationError):
                    await t.get(pk, sk)  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await t.query("")
            with pytest.raises(ValidationError):
                await t.query("p", limit=0)
            with pytest.raises(ValidationError):
                await t.query("p", "prefix")  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await t.update("p", "s", set={"a": 1}, remove=["a"])
            with pytest.raises(ValidationError):
                await t.put("p", "s", {}, condition=VersionEquals(0))
            with pytest.raises(ValidationError):
                await t.put("p", "s", {}, condition="exists")  # type: ignore[arg-type]

    # ------------------------------------------------------------------ scan and restore

    async def _fill_for_scan(self, t: TablePort) -> list[Item]:
        """Items in partitions whose keys share prefixes, with several versions."""
        pks = ["a", "a#", "a#1", "a#2", "ab", "b\U0010ffff", "b\U0010ffff#x", "p#ü", "z"]
        for n, pk in enumerate(pks):
            for s in range(n % 4 + 1):
                await t.put(pk, f"s{s}", {"n": n, "s": s, "gsi1pk": "all", "gsi1sk": f"{n:03d}{s}"})
        await t.update("a#1", "s0", set={"again": True})
        await t.put("ab", "s0", {"replaced": 1})
        found = []
        for pk in pks:
            found.extend((await t.query(pk)).items)
        return found

    @async_test
    async def test_scan_returns_every_item_once_with_its_version(self) -> None:
        async with self.open_table() as t:
            empty = await t.scan()
            assert empty.items == [] and empty.cursor is None
            expected = await self._fill_for_scan(t)
            key = self._scan_key
            for size in (1, 2, 3, 1000):
                got = [i for page in [p async for p in t.scan_pages(page_size=size)] for i in page]
                assert sorted(got, key=key) == sorted(expected, key=key), size
                if t.capabilities.ordered_scan:
                    assert got == sorted(expected, key=key)
            first = await t.scan(limit=len(expected))
            assert len(first.items) == len(expected) and first.cursor is None
            count = await t.estimate_count()
            assert count is None or (type(count) is int and count >= 0)

    @staticmethod
    def _scan_key(item: Item | StoredItem) -> tuple[bytes, bytes]:
        return item.pk.encode("utf-8"), item.sk.encode("utf-8")

    @async_test
    async def test_scan_by_partition_key_prefix(self) -> None:
        async with self.open_table() as t:
            expected = await self._fill_for_scan(t)
            for prefix in ("a", "a#", "a#1", "b\U0010ffff", "p#", "q", "z"):
                got = [i async for page in t.scan_pages(prefix, page_size=2) for i in page]
                want = [i for i in expected if i.pk.startswith(prefix)]
                assert sorted(got, key=self._scan_key) == sorted(want, key=self._scan_key), prefix
                count = await t.estimate_count(prefix)
                assert count is None or (type(count) is int and count >= 0)

    @async_test
    async def test_scan_validates_its_arguments(self) -> None:
        async with self.open_table() as t:
            await self._fill_for_scan(t)
            page = await t.scan("a", limit=1)
            assert page.cursor is not None
            query_page = await t.query("a#2", limit=1)
            assert query_page.cursor is not None
            for bad in (
                lambda: t.scan(limit=0),
                lambda: t.scan(limit="2"),  # type: ignore[arg-type]
                lambda: t.scan(5),  # type: ignore[arg-type]
                lambda: t.scan("a\ud800"),
                lambda: t.scan("b", limit=1, cursor=page.cursor),  # another prefix's cursor
                lambda: t.scan("a", limit=1, cursor=query_page.cursor),  # a query's cursor
                lambda: t.scan("a", limit=1, cursor="not a cursor"),
                lambda: t.query("a", limit=1, cursor=page.cursor),  # a scan's cursor
                lambda: t.estimate_count(7),  # type: ignore[arg-type]
            ):
                with pytest.raises(ValidationError):
                    await bad()

    @async_test
    async def test_scan_returns_unchanged_items_once_while_others_write(self) -> None:
        async with self.open_table() as t:
            for p in range(12):
                for s in range(3):
                    await t.put(f"p{p:02d}", f"s{s}", {"v": 0})
            seen: list[tuple[str, str]] = []
            cursor: str | None = None
            step = 0
            while True:
                page = await t.scan(limit=4, cursor=cursor)
                seen.extend((i.pk, i.sk) for i in page)
                # meanwhile: new partitions and items, deletes, rewrites of partition p11
                step += 1
                await t.put(f"new{step:02d}", "s", {"v": step})
                await t.put(f"p{step % 12:02d}", f"x{step}", {"v": step})
                await t.delete("p11", "s2")
                await t.put("p11", "s0", {"v": step})
                if page.cursor is None:
                    break
                cursor = page.cursor
            assert len(seen) == len(set(seen)), "an item came twice"
            untouched = {(f"p{p:02d}", f"s{s}") for p in range(11) for s in range(3)}
            untouched.add(("p11", "s1"))
            assert untouched <= set(seen)

    @async_test
    async def test_restore_writes_items_with_their_versions(self) -> None:
        async with self.open_table() as t:
            await t.put("r", "old", {"gsi1pk": "ix", "gsi1sk": "1", "v": "before"})
            await t.restore(
                [
                    Item("r", "old", {"gsi1pk": "ix", "gsi1sk": "2", "v": "after"}, 7),
                    Item("r", "new", {"v": [1, {"x": None}]}, 42),
                    Item("r#ü", "😀", {}, 2**62),
                ]
            )
            assert await t.get("r", "old") == Item(
                "r", "old", {"gsi1pk": "ix", "gsi1sk": "2", "v": "after"}, 7
            )
            assert await t.get("r", "new") == Item("r", "new", {"v": [1, {"x": None}]}, 42)
            assert await t.get("r#ü", "😀") == Item("r#ü", "😀", {}, 2**62)
            # the index follows the restored attributes
            in_index = (await t.query("ix", index="gsi1")).items
            assert [(i.sk, i.attrs["gsi1sk"]) for i in in_index] == [("old", "2")]
            # conditions compare the restored versions, and writes continue from them
            with pytest.raises(Conflict):
                await t.update("r", "new", set={"v": 0}, condition=VersionEquals(1))
            updated = await t.update("r", "new", set={"v": 0}, condition=VersionEquals(42))
            assert updated.version == 43
            # restoring the same items again changes nothing but what they name
            await t.restore([Item("r", "old", {"gsi1pk": "ix", "gsi1sk": "2", "v": "after"}, 7)])
            await t.restore([Item("r", "old", {"gsi1pk": "ix", "gsi1sk": "2", "v": "after"}, 7)])
            assert (await t.get("r", "old")) == Item(
                "r", "old", {"gsi1pk": "ix", "gsi1sk": "2", "v": "after"}, 7
            )
            await t.restore([])

    @async_test
    async def test_restore_validates_every_item_before_writing(self) -> None:
        async with self.open_table(portable=True) as t:
            good = Item("v", "good", {"ok": True}, 3)
            bad_items: list[Any] = [
                Item("v", "bad", {"a": 1}, 0),
                Item("v", "bad", {"a": 1}, True),
                Item("v", "bad", {"a": 1}, 2**63),
                Item("v", "bad", {"a": 1}, "1"),  # type: ignore[arg-type]
                Item("", "bad", {}, 1),
                Item("v", "bad", {"pk": "x"}, 1),
                Item("v", "bad", {"s": {1, 2}}, 1),
                Item("v", "bad", {"gsi1pk": 5, "gsi1sk": "x"}, 1),
                Item("v", "bad", {"big": "x" * (400 * 1024)}, 1),
                Item("v", "bad", ["not", "a", "dict"], 1),  # type: ignore[arg-type]
                Item("v", "good", {"twice": True}, 4),  # the same key twice
                {"pk": "v", "sk": "bad", "version": 1},
            ]
            for bad in bad_items:
                with pytest.raises(ValidationError):
                    await t.restore([good, bad])
                assert await t.get("v", "good") is None, bad
                assert await t.get("v", "bad") is None, bad

    @async_test
    async def test_scan_stored_gives_the_canonical_json_and_restore_stored_takes_it(
        self,
    ) -> None:
        async with self.open_table() as t:
            expected = await self._fill_for_scan(t)
            stored = [s async for page in t.scan_stored_pages(page_size=3) for s in page]
            assert sorted((s.to_item() for s in stored), key=self._scan_key) == sorted(
                expected, key=self._scan_key
            )
            for s in stored:
                assert s.data == _json.encode(s.to_item().attrs)
            await t.restore_stored(
                [
                    StoredItem("moved", "a", 9, '{"gsi1pk":"all","gsi1sk":"zzz","x":1}'),
                    StoredItem("moved", "b", 3, '{"text":"héllo"}'),
                ]
            )
            assert await t.get("moved", "a") == Item(
                "moved", "a", {"gsi1pk": "all", "gsi1sk": "zzz", "x": 1}, 9
            )
            assert await t.get("moved", "b") == Item("moved", "b", {"text": "héllo"}, 3)
            last = (await t.query("all", index="gsi1", descending=True, limit=1)).items
            assert [(i.pk, i.sk) for i in last] == [("moved", "a")]  # its index key restored
            # and a restore of what was scanned changes nothing
            before = [s async for page in t.scan_stored_pages() for s in page]
            await t.restore_stored(before)
            after = [s async for page in t.scan_stored_pages() for s in page]
            assert sorted(after, key=self._scan_key) == sorted(before, key=self._scan_key)

    @async_test
    async def test_restore_stored_validates_before_writing(self) -> None:
        async with self.open_table(portable=True) as t:
            good = StoredItem("v", "good", 1, "{}")
            bad_items: list[Any] = [
                StoredItem("v", "bad", 0, "{}"),
                StoredItem("", "bad", 1, "{}"),
                StoredItem("v", "bad", 1, "[]"),
                StoredItem("v", "bad", 1, 5),  # type: ignore[arg-type]
                StoredItem("v", "bad", 1, '{"n":' + "9" * 39 + "}"),  # over 38 digits
                StoredItem("v", "bad", 1, '{"gsi1pk":5,"gsi1sk":"x"}'),  # an index key
                StoredItem("v", "bad", 1, '{"gsi1pk":"x",'),  # not JSON
                StoredItem("v", "bad", 1, '{"s":"\ud800"}'),  # a lone surrogate
                StoredItem("v", "bad", 1, '{"big":"' + "x" * (400 * 1024) + '"}'),
                StoredItem("v", "good", 2, "{}"),  # the same key twice
                Item("v", "bad", {}, 1),
            ]
            for bad in bad_items:
                with pytest.raises(ValidationError):
                    await t.restore_stored([good, bad])
                assert await t.get("v", "good") is None, bad
                assert await t.get("v", "bad") is None, bad
            # a long run of digits inside a string is no number: it is checked, and kept
            await t.restore_stored([StoredItem("v", "digits", 1, '{"s":"' + "9" * 60 + '"}')])
            assert await t.get("v", "digits") == Item("v", "digits", {"s": "9" * 60}, 1)

    @async_test
    async def test_restore_stored_of_new_items_refuses_a_stored_key(self) -> None:
        async with self.open_table() as t:
            await t.put("n", "taken", {"v": 1})
            fresh = [StoredItem("n", f"k{i}", 1, f'{{"i":{i}}}') for i in range(5)]
            with pytest.raises(Conflict):
                await t.restore_stored([*fresh, StoredItem("n", "taken", 7, "{}")], new=True)
            assert (await t.get("n", "taken")) == Item("n", "taken", {"v": 1}, 1)
            assert [i.sk for i in (await t.query("n")).items] == ["taken"]
            await t.restore_stored(fresh, new=True)
            assert len((await t.query("n")).items) == 6

    @async_test
    async def test_restore_wakes_watches_of_its_partitions(self) -> None:
        async with self.open_table() as t, t.watch("w") as watch:
            await t.restore([Item("other", "s", {}, 1)])
            assert not await watch.wait(0.01)
            await t.restore([Item("w", "s", {}, 5)])
            assert await asyncio.wait_for(watch.wait(5), 10)

    # ------------------------------------------------------------------ portable limits

    @async_test
    async def test_portable_limits(self) -> None:
        async with self.open_table(portable=True) as t:
            caps = t.capabilities
            assert caps.portable
            assert caps.max_item_bytes == 400 * 1024
            assert caps.max_transaction_ops == 100
            with pytest.raises(ValidationError, match="limit"):
                await t.put("p", "big", {"blob": "x" * (400 * 1024)})
            await t.put("p", "fits", {"blob": "x" * (390 * 1024)})
            with pytest.raises(ValidationError, match="101 operations"):
                await t.transact([Put("p", f"k{i}", {}) for i in range(101)])
            await t.transact([Put("p", f"k{i}", {}) for i in range(100)])
            with pytest.raises(ValidationError, match="38 digits"):
                await t.put("p", "num", {"n": 10**38})
            with pytest.raises(ValidationError):
                await t.put("p" * 2049, "s", {})
            with pytest.raises(ValidationError):
                await t.put("p", "s" * 1025, {})
            assert await t.get("p", "big") is None and await t.get("p", "num") is None
            assert len((await t.query("p", KeyRange.prefix("k"))).items) == 100

    @async_test
    async def test_non_portable_mode_lifts_dynamodb_limits(self) -> None:
        async with self.open_table(portable=False) as t:
            caps = t.capabilities
            assert not caps.portable
            if caps.max_transaction_ops is None or caps.max_transaction_ops > 100:
                await t.transact([Put("p", f"k{i}", {}) for i in range(150)])
                assert len((await t.query("p")).items) == 150
            if caps.max_item_bytes is None or caps.max_item_bytes > 500 * 1024:
                await t.put("p", "big", {"blob": "x" * (500 * 1024)})
            await t.put("p", "num", {"n": 10**40})
            got = await t.get("p", "num")
            assert got is not None and got.attrs["n"] == 10**40

    # ------------------------------------------------------------------ concurrency

    @async_test
    async def test_concurrent_tasks_lose_no_update(self) -> None:
        async with self.open_table() as t:
            tasks, times = 20, 15
            await asyncio.gather(*(increment(t, "c", "counter", times) for _ in range(tasks)))
            item = await t.get("c", "counter")
            assert item is not None
            assert item.attrs["n"] == tasks * times
            assert item.version == tasks * times

    @async_test
    async def test_concurrent_creates_exactly_one_wins(self) -> None:
        async with self.open_table() as t:

            async def create(i: int) -> bool:
                try:
                    await t.put("c", "once", {"by": i}, condition=NotExists())
                except Conflict:
                    return False
                return True

            wins = await asyncio.gather(*(create(i) for i in range(25)))
            assert sum(wins) == 1
            item = await t.get("c", "once")
            assert item is not None and item.version == 1 and item.attrs["by"] == wins.index(True)

    @async_test
    async def test_concurrent_threads_lose_no_update(self) -> None:
        async with self.open_table() as t:
            threads, times = 4, 40
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    asyncio.run(increment(t, "c", "counter", times))
                except BaseException as e:  # surfaced below
                    errors.append(e)

            def start_and_join() -> None:
                workers = [threading.Thread(target=run) for _ in range(threads)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()

            await asyncio.to_thread(start_and_join)
            assert errors == []
            item = await t.get("c", "counter")
            assert item is not None and item.attrs["n"] == threads * times

    @async_test
    async def test_watch_wakes_on_writes_to_its_partition(self) -> None:
        async with self.open_table() as t, t.watch("w") as watch:
            assert not await watch.wait(0.01)  # nothing written yet
            await t.put("other", "s", {"v": 1})
            assert not await watch.wait(0.01)  # another partition
            for write in (
                lambda: t.put("w", "a", {"v": 1}),
                lambda: t.update("w", "a", set={"v": 2}),
                lambda: t.transact([Put("w", "b", {}), Put("other", "t", {})]),
                lambda: t.delete("w", "b"),
            ):
                await write()
                assert await asyncio.wait_for(watch.wait(5), 10)
                assert not await watch.wait(0.01)  # one wake-up per write
            with pytest.raises(Conflict):
                await t.put("w", "a", {}, condition=NotExists())
            assert not await watch.wait(0.01)  # a failed write changes nothing

            def write_from_a_thread() -> None:
                asyncio.run(t.put("w", "c", {"v": 3}))

            await asyncio.to_thread(write_from_a_thread)
            assert await asyncio.wait_for(watch.wait(5), 10)

    @needs(Capability.MULTI_PROCESS)
    def test_concurrent_processes_lose_no_update(self) -> None:
        url = self.store_url()
        processes, times = 3, 40
        in_processes(_process_worker, [(url, "mp", w, times) for w in range(processes)])

        async def check() -> None:
            import stateport

            async with stateport.open(url) as sp:
                item = await sp.table.get("mp", "counter")
                assert item is not None and item.attrs["n"] == processes * times
                rows = [i async for i in sp.table.query_all("mp", KeyRange.prefix("w"))]
                assert len(rows) == processes * times
                assert {(r.attrs["worker"], r.attrs["i"]) for r in rows} == {
                    (w, i) for w in range(processes) for i in range(times)
                }

        asyncio.run(check())

    @needs(Capability.MULTI_PROCESS)
    def test_transfers_from_several_processes_keep_the_total(self) -> None:
        """Two-item transactions from 4 processes: money is neither made nor lost."""
        import stateport

        url = self.store_url()
        processes, transfers = 4, 60

        async def setup() -> None:
            async with stateport.open(url) as sp:
                for i in range(5):
                    await sp.table.put("bank", f"acct{i}", {"balance": 1000})

        asyncio.run(setup())
        in_processes(_transfer_worker, [(url, seed, transfers) for seed in range(processes)])

        async def check() -> None:
            async with stateport.open(url) as sp:
                accounts = [i async for i in sp.table.query_all("bank")]
                assert sum(a.attrs["balance"] for a in accounts) == 5000
                # every transfer counted, once on each side
                assert sum(a.version - 1 for a in accounts) == 2 * processes * transfers
                assert len([d async for d in sp.blobs]) == processes * transfers

        asyncio.run(check())


@asynccontextmanager
async def table_of(url: str) -> AsyncIterator[TablePort]:
    """The table port of the store at ``url``, for :meth:`open_table` implementations."""
    import stateport

    async with stateport.open(url) as sp:
        yield sp.table
