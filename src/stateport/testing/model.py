"""The table port against a reference model, by property-based tests.

:class:`Model` is the table port's semantics written out plainly (a dict of
items, conditions checked one by one), independently of
:func:`stateport.ports.table.resolve`; every engine must answer every
generated sequence of operations as the model does — results, errors and the
final state — and compare stored values with condition values as it does.
The SQL engines evaluate some conditions in SQL (the one-statement appends),
and JSON, SQL and Python each compare values in their own way: these tests
are where a difference would show.

They use ``hypothesis`` (a development dependency); without it they skip.
Each test opens one store and gives every example its own partitions, so an
engine's cost of creating a store is paid once, not per example.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest

from ..errors import Conflict, StateportError
from ..ports.table import (
    AttrEquals,
    Check,
    Condition,
    Delete,
    Exists,
    Item,
    KeyRange,
    NotExists,
    Op,
    Put,
    Update,
    VersionEquals,
)
from .store import StoreConformance

if TYPE_CHECKING:
    from ..store import Stateport

__all__ = ["GUARD_VALUES", "Model", "TableModelConformance", "same"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., None])

# Values that JSON text, SQL, jsonb and Python each compare in their own way:
# 1 == 1.0 but True is not 1 and "1" is not 1; None is not absent; containers
# compare by value; an integer and a float of 2**53 or more are equal in Python
# when the float's binary value is the integer, but their JSON texts differ.
GUARD_VALUES: list[Any] = [
    0,
    1,
    1.0,
    -0.0,
    2.5,
    0.1,
    1e-7,
    True,
    False,
    None,
    "",
    "1",
    "x",
    "é\u2603",
    2**53 - 1,
    float(2**53 - 1),
    2**53,
    float(2**53),
    2**60,
    float(2**60),
    1e300,
    10**30,
    [],
    {},
    [1],
    [1.0],
    [True],
    [2**60],
    [float(2**60)],
    {"k": 1},
    {"k": 1.0},
    {"k": [None]},
]
"""Stored and compared against each other by the condition tests (PostgreSQL's
own tests add text with NUL, which only it refuses)."""

_ABSENT = object()


def same(a: Any, b: Any) -> bool:
    """Two JSON values are equal: numbers by value, a boolean is no number, a string
    no number, containers element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _conditions(op: Op) -> list[Condition]:
    c = op.condition
    if c is None:
        return []
    if isinstance(c, (Exists, NotExists, VersionEquals, AttrEquals)):
        return [c]
    return list(c)


def _holds(cond: Condition, item: tuple[dict[str, Any], int] | None) -> bool:
    if isinstance(cond, NotExists):
        return item is None
    if item is None:
        return False
    if isinstance(cond, Exists):
        return True
    if isinstance(cond, VersionEquals):
        return item[1] == cond.version
    assert isinstance(cond, AttrEquals)
    return cond.name in item[0] and same(item[0][cond.name], cond.value)


class Model:
    """The table port's semantics over a dict: ``(pk, sk) -> (attrs, version)``."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}

    def apply(self, ops: Sequence[Op], *, single: bool) -> object:
        """What a write answers: the item (a single put or update), None, or the
        error as ``(class name, op_index, key, condition)``."""
        keys = [(op.pk, op.sk) for op in ops]
        if not single and len(set(keys)) != len(keys):
            return ("ValidationError", None, None, None)
        for i, op in enumerate(ops):
            key, current = keys[i], self.items.get(keys[i])
            for cond in _conditions(op):
                if not _holds(cond, current):
                    return ("Conflict", i, key, cond.describe())
            if isinstance(op, Update) and current is None:
                return ("Conflict", i, key, "exists")
        result: object = None
        for op, key in zip(ops, keys, strict=True):
            current = self.items.get(key)
            version = 1 if current is None else current[1] + 1
            if isinstance(op, Put):
                self.items[key] = (dict(op.attrs), version)
            elif isinstance(op, Update):
                assert current is not None
                attrs = {**current[0], **(op.set or {})}
                for name in op.remove:
                    attrs.pop(name, None)
                self.items[key] = (attrs, version)
            elif isinstance(op, Delete):
                self.items.pop(key, None)
            if single and isinstance(op, (Put, Update)):
                result = Item(op.pk, op.sk, *self.items[key])
        return result

    def state(self, pks: Sequence[str]) -> list[tuple[str, str, dict[str, Any], int]]:
        """Every item of partitions ``pks``, in key order."""
        return [
            (p, sk, *self.items[(p, sk)]) for pk in pks for (p, sk) in sorted(self.items) if p == pk
        ]


def _agree(got: object, expected: object) -> bool:
    if isinstance(got, Item) and isinstance(expected, Item):
        return (got.pk, got.sk, got.version) == (expected.pk, expected.sk, expected.version) and (
            same(got.attrs, expected.attrs)
        )
    return got == expected


Run = Callable[[Coroutine[Any, Any, T]], T]


@contextlib.contextmanager
def _one_store(url: str) -> Iterator[tuple[Run[Any], Stateport]]:
    """A store opened on a loop kept for the whole test, and ``run(coro)``, which runs
    a coroutine on that loop (the store's home, which some engines need)."""
    import stateport

    with asyncio.Runner() as runner:
        sp = runner.run(_open(stateport.open(url)))
        try:
            yield runner.run, sp
        finally:
            runner.run(sp.aclose())


async def _open(opening: Awaitable[Stateport]) -> Stateport:
    return await opening


def _hypothesis() -> Any:
    """The hypothesis package, or a skip saying it is missing."""
    return pytest.importorskip("hypothesis", reason="the property tests need hypothesis")


def _strategies(st: Any) -> SimpleNamespace:
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
    # pk and sk are the key; index key attributes (gsi1pk, ...) must be strings
    attr_names = st.text(min_size=1, max_size=6).filter(
        lambda s: s not in ("pk", "sk") and not s.startswith("gsi")
    )
    # keys: any text but NUL, which PostgreSQL refuses in keys (its own test covers it)
    keys = st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=6,
    )
    # values that JSON, SQL and Python each compare in their own way
    values = st.sampled_from([0, 1, 1.0, 2.5, True, False, None, "1", "x", [1], {"k": 1}])
    real_conditions = st.one_of(
        st.sampled_from([Exists(), NotExists(), VersionEquals(1), VersionEquals(2)]),
        st.builds(AttrEquals, st.sampled_from(["v", "w"]), values),
    )
    conditions = st.one_of(st.none(), real_conditions)
    small = st.sampled_from(["a", "b"])
    operations = st.one_of(
        st.builds(Put, small, small, st.fixed_dictionaries({"v": values}), conditions),
        st.builds(
            Update, small, small, st.fixed_dictionaries({"v": values}), st.just(()), conditions
        ),
        st.builds(Delete, small, small, conditions),
        st.builds(Check, small, small, real_conditions),
    )
    return SimpleNamespace(
        attrs=st.dictionaries(attr_names, json_values, max_size=5),
        keys=keys,
        batches=st.lists(st.lists(operations, min_size=1, max_size=3), max_size=12),
    )


def _given(hp: Any, settings: Any, **strategies: Any) -> Callable[[F], Callable[[], None]]:
    """``@settings @given(**strategies)``, typed: the test to call with no arguments."""

    def wrap(fn: F) -> Callable[[], None]:
        test: Callable[[], None] = settings(hp.given(**strategies)(fn))
        return test

    return wrap


def _within(prefix: str, op: Op) -> Op:
    """``op`` on partition ``prefix + op.pk``."""
    return dataclasses.replace(op, pk=prefix + op.pk)


async def _write(sp: Stateport, ops: Sequence[Op]) -> object:
    """Apply ``ops`` as a single call when there is one (not a check), else as a
    transaction; what it answers, or its error as the model states errors."""
    try:
        if len(ops) == 1 and not isinstance(ops[0], Check):
            op = ops[0]
            if isinstance(op, Put):
                return await sp.table.put(op.pk, op.sk, op.attrs, condition=op.condition)
            if isinstance(op, Update):
                return await sp.table.update(op.pk, op.sk, set=op.set, condition=op.condition)
            assert isinstance(op, Delete)
            await sp.table.delete(op.pk, op.sk, condition=op.condition)
        else:
            await sp.table.transact(ops)
        return None
    except Conflict as e:
        return ("Conflict", e.op_index, e.key, e.condition)
    except StateportError as e:
        return (type(e).__name__, None, None, None)


class TableModelConformance(StoreConformance):
    """Every engine answers as :class:`Model` does."""

    examples: ClassVar[dict[str, int]] = {"round_trip": 60, "queries": 40, "batches": 60}
    """Examples per property, on each engine (fixed budgets keep the run's time fixed)."""

    def _settings(self, hp: Any, name: str) -> Any:
        """hypothesis settings for property ``name``."""
        return hp.settings(
            max_examples=self.examples[name],
            deadline=None,
            suppress_health_check=[hp.HealthCheck.too_slow],
        )

    def test_any_json_attributes_round_trip(self) -> None:
        hp = _hypothesis()
        strategies = _strategies(hp.strategies)
        with _one_store(self.store_url()) as (run, sp):
            n = itertools.count()

            @_given(hp, self._settings(hp, "round_trip"), attrs=strategies.attrs)
            def check(attrs: dict[str, Any]) -> None:
                sk = f"s{next(n)}"

                async def body() -> None:
                    await sp.table.put("p", sk, attrs)
                    got = await sp.table.get("p", sk)
                    assert got is not None and same(got.attrs, attrs), (got, attrs)

                run(body())

            check()

    def test_queries_match_the_model(self) -> None:
        hp = _hypothesis()
        st = hp.strategies
        strategies = _strategies(st)
        with _one_store(self.store_url()) as (run, sp):
            n = itertools.count()

            @_given(
                hp,
                self._settings(hp, "queries"),
                writes=st.lists(
                    st.tuples(st.sampled_from(["a", "b"]), strategies.keys, st.booleans()),
                    max_size=25,
                ),
                prefix=st.text(max_size=2),
                limit=st.integers(min_value=1, max_value=6),
                descending=st.booleans(),
            )
            def check(
                writes: list[tuple[str, str, bool]], prefix: str, limit: int, descending: bool
            ) -> None:
                space = f"{next(n)}:"
                model: dict[tuple[str, str], int] = {}
                for i, (pk, sk, delete) in enumerate(writes):
                    if delete:
                        model.pop((pk, sk), None)
                    else:
                        model[(pk, sk)] = i
                expected = sorted(
                    (sk for (pk, sk) in model if pk == "a" and sk.startswith(prefix)),
                    reverse=descending,
                )

                async def body() -> None:
                    for i, (pk, sk, delete) in enumerate(writes):
                        if delete:
                            await sp.table.delete(space + pk, sk)
                        else:
                            await sp.table.put(space + pk, sk, {"n": i})
                    seen: list[str] = []
                    cursor = None
                    while True:
                        page = await sp.table.query(
                            space + "a",
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
                    assert seen == expected

                run(body())

            check()

    def test_every_batch_of_writes_answers_as_the_model(self) -> None:
        """Results, errors (which operation, which condition) and the final state."""
        hp = _hypothesis()
        strategies = _strategies(hp.strategies)
        with _one_store(self.store_url()) as (run, sp):
            n = itertools.count()

            @_given(hp, self._settings(hp, "batches"), batches=strategies.batches)
            def check(batches: list[list[Op]]) -> None:
                space = f"{next(n)}:"
                model = Model()
                pks = [space + "a", space + "b"]

                async def body() -> None:
                    for batch in batches:
                        ops = [_within(space, op) for op in batch]
                        single = len(ops) == 1 and not isinstance(ops[0], Check)
                        got = await _write(sp, ops)
                        expected = model.apply(ops, single=single)
                        assert _agree(got, expected), (ops, got, expected)
                    state = [
                        (i.pk, i.sk, i.attrs, i.version)
                        for pk in pks
                        async for i in sp.table.query_all(pk)
                    ]
                    expected_state = model.state(pks)
                    assert len(state) == len(expected_state), (state, expected_state)
                    for got_item, want in zip(state, expected_state, strict=True):
                        assert got_item[:2] == want[:2] and got_item[3] == want[3]
                        assert same(got_item[2], want[2]), (got_item, want)

                run(body())

            check()

    def test_conditions_compare_values_as_the_model_does(self) -> None:
        """Every stored value against every condition value, in the shape SQL engines
        run as one statement (checks, then one put on NotExists); the condition is on
        a plain attribute name or one that needs quoting in SQL, alone or after
        ``Exists``, in turn."""

        async def main() -> None:
            import stateport

            names = ["v", "n'a\"me"]
            async with stateport.open(self.store_url()) as sp:
                wrong: list[object] = []
                outcomes: set[object] = set()
                for i, stored in enumerate([*GUARD_VALUES, _ABSENT]):
                    pk = f"p{i}"
                    attrs = {} if stored is _ABSENT else dict.fromkeys(names, stored)
                    await sp.table.put(pk, "a", attrs)
                    await sp.table.put(pk, "b", {})
                    for j, wanted in enumerate(GUARD_VALUES):
                        name = names[(i + j) % 2]
                        attr = AttrEquals(name, wanted)
                        cond: Condition | list[Condition] = (
                            attr if (i // 2 + j) % 2 else [Exists(), attr]
                        )
                        ops: list[Op] = [
                            Check(pk, "a", cond),
                            Check(pk, "b", Exists()),
                            Put(pk, f"new{j}", {"n": j}, NotExists()),
                        ]
                        try:
                            await sp.table.transact(ops)
                            got: object = "applied"
                        except Conflict as e:
                            got = e.op_index
                        outcomes.add(got)
                        equal = stored is not _ABSENT and same(stored, wanted)
                        if got != ("applied" if equal else 0):
                            wrong.append((stored, wanted, name, got))
                assert wrong == []
                assert outcomes == {"applied", 0}

        asyncio.run(main())
