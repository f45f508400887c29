"""Running the ``stateport`` command in-process, and reading back what it wrote."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import stateport
from stateport.cli import main

T = TypeVar("T")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``stateport ARGV``: the exit status, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_json(out: str) -> Any:
    """The one JSON object a write command printed with ``--json``."""
    lines = out.splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


def json_lines(out: str) -> list[Any]:
    """What a listing printed with ``--json``: one object per line."""
    return [json.loads(line) for line in out.splitlines()]


def using(
    url: str, use: Callable[[stateport.Stateport], Awaitable[T]], *, create: bool = False
) -> T:
    """``use(sp)`` on the store at ``url`` through the Python API: to fill it before a
    command runs, or to read back what a command wrote."""

    async def go() -> T:
        async with stateport.open(url, create=create) as sp:
            return await use(sp)

    return asyncio.run(go())
