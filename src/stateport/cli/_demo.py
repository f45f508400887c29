"""``stateport demo``: the guided tour of :mod:`stateport.demo`."""

from __future__ import annotations

import argparse
import sys

from ..demo import run_demo
from ..store import open as open_store
from ..url import redact
from ._common import Commands, store_url, subcommand

__all__ = ["register"]


def register(
    commands: Commands,
    common: argparse.ArgumentParser,
) -> None:
    subcommand(
        commands,
        common,
        "demo",
        _demo,
        help="write example data to a store and show each step",
        description=(
            "Walk through the store's API on real data: put and query items, a "
            "conditional transaction that commits and one that fails with "
            "Conflict, a paged query, a secondary-index query, a blob round "
            "trip and the schema version. It writes to the store (by default "
            "the default SQLite store) under keys unique to each run, so it "
            "can be run again."
        ),
    )


async def _demo(args: argparse.Namespace) -> int:
    url, source = store_url(args)
    print(f"store: {redact(url)} (from {source})")
    async with open_store(url) as sp:
        await run_demo(sp, sys.stdout)
    return 0
