"""``stateport demo``: the guided tour of :mod:`stateport.demo`."""

from __future__ import annotations

import argparse
import sys

from ..demo import STEPS, run_demo
from ..store import open as open_store
from ..url import redact
from ._common import Commands, store_url, subcommand

__all__ = ["register"]


def register(
    commands: Commands,
    common: argparse.ArgumentParser,
) -> None:
    demo = subcommand(
        commands,
        common,
        "demo",
        _demo,
        help="write example data to a store and show each step",
        description=_description(),
    )
    demo.formatter_class = argparse.RawDescriptionHelpFormatter


def _description() -> str:
    """What the demo does: its steps, from the list it runs."""
    steps = "\n".join(f"  {i:>2}. {s.title}" for i, s in enumerate(STEPS, 1))
    return (
        "A guided tour of the store's API on real data, printing what each step\n"
        "does and what came back:\n\n"
        f"{steps}\n\n"
        "It writes to the store (by default the default SQLite store) under keys\n"
        "unique to each run, so it can be run again on the same store."
    )


async def _demo(args: argparse.Namespace) -> int:
    url, source = store_url(args)
    print(f"store: {redact(url)} (from {source})")
    async with open_store(url) as sp:
        await run_demo(sp, sys.stdout)
    return 0
