"""The public surface: exports, the error tree, the item API."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import stateport
import stateport.errors as errors_module
import stateport.ports as ports_module
import stateport.sync as sync_module
import stateport.testing as testing_module
from stateport import errors


def _public_names(module: object) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    } - {"annotations"}


@pytest.mark.parametrize(
    "module", [stateport, errors_module, ports_module, sync_module, testing_module]
)
def test_all_is_exactly_the_public_api(module: object) -> None:
    exported = set(module.__all__)  # type: ignore[attr-defined]
    modules = {"errors", "sync"} if module is stateport else set()
    assert exported == _public_names(module) | modules | (
        {"__version__"} if module is stateport else set()
    )


def test_error_tree() -> None:
    leaves = [
        errors.NotFound,
        errors.Conflict,
        errors.InvalidTransition,
        errors.IntegrityError,
        errors.ValidationError,
        errors.Unsupported,
        errors.Unavailable,
        errors.ConfigError,
        errors.EngineError,
    ]
    for cls in leaves:
        assert issubclass(cls, errors.StateportError)
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} not drawn in the tree"
        assert cls.__doc__
    assert issubclass(errors.ValidationError, ValueError)
    c = errors.Conflict("x", op_index=2, key=("p", "s"), condition="exists")
    assert (c.op_index, c.key, c.condition) == (2, ("p", "s"), "exists")


def test_item_api_validates() -> None:
    async def main() -> None:
        async with stateport.open("memory://") as sp:
            for bad in ({"sk": "x"}, {"pk": "x"}, ["pk", "sk"], {"pk": 1, "sk": "s"}):
                with pytest.raises(stateport.ValidationError):
                    await sp.items.put(bad)  # type: ignore[arg-type]
            with pytest.raises(stateport.ValidationError):
                await sp.items.query("p", None)  # type: ignore[arg-type]
            await sp.items.put({"pk": "p", "sk": "dialogue#1", "title": "t"})
            await sp.items.put({"pk": "p", "sk": "dialogue#2"})
            await sp.items.put({"pk": "p", "sk": "document#1"})
            got = await sp.items.query("p", "dialogue#")
            assert [g["sk"] for g in got] == ["dialogue#1", "dialogue#2"]
            assert got[0] == {"pk": "p", "sk": "dialogue#1", "title": "t"}
            assert len(await sp.items.query("p")) == 3

    asyncio.run(main())


def test_open_is_awaitable_and_a_context_manager() -> None:
    async def main() -> None:
        sp = await stateport.open("memory://")
        assert isinstance(sp, stateport.Stateport)
        await sp.aclose()
        async with stateport.open("memory://") as sp2:
            assert sp2.describe()["engine"] == "memory"

    asyncio.run(main())
