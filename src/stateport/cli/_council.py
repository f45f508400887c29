"""``stateport council``: orchestrator runs (``sp.council``) and their event logs."""

from __future__ import annotations

import argparse
import json

from ..domains.council import CouncilRun, CouncilRunEvent, CouncilRunStatus
from ..errors import NotFound
from ._common import (
    Commands,
    command_group,
    human_time,
    json_flag,
    print_listing,
    print_record,
    record_json,
    store_of,
    subcommand,
)

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "council",
        help="list orchestrator runs and their events",
        description=(
            "Orchestrator runs recorded through sp.council: their status, graph "
            "snapshot and event log, numbered in waves."
        ),
    )

    ls = subcommand(
        sub,
        common,
        "ls",
        _ls,
        help="council runs, most recent first",
        description="List council runs most recent first, optionally in one status.",
    )
    ls.add_argument(
        "--status",
        choices=[s.value for s in CouncilRunStatus],
        help="only runs in this status",
    )
    json_flag(ls)

    show = subcommand(
        sub,
        common,
        "show",
        _show,
        help="one council run's record",
        description="Show a council run: status, times, metadata and its graph snapshot.",
    )
    show.add_argument("run_id", metavar="ID", help="the run's id")
    json_flag(show, what="one object")

    events = subcommand(
        sub,
        common,
        "events",
        _events,
        help="a council run's events in order",
        description=(
            "Print a council run's events in sequence order as '<seq>  <time>  "
            "wave <n>  <type>  <payload>'."
        ),
    )
    events.add_argument("run_id", metavar="ID", help="the run's id")
    json_flag(events)


async def _ls(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        runs = await sp.council.list_runs(args.status)
    if not runs and not args.json:
        print("no council runs")
        return 0
    if not args.json:
        print(f"{'ID':36}  {'STATUS':17}  {'CREATED (UTC)':19}  UPDATED (UTC)")
    print_listing(runs, args.json, _run_line)
    return 0


def _run_line(r: CouncilRun) -> str:
    return f"{r.id:36}  {r.status.value:17}  {human_time(r.created_at)}  {human_time(r.updated_at)}"


async def _show(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        run = await sp.council.get_run(args.run_id)
    if run is None:
        raise NotFound(f"no council run {args.run_id!r}")
    print_record(record_json(run), args.json)
    return 0


async def _events(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        events = await sp.council.list_events(args.run_id)
    print_listing(events, args.json, _event_line)
    return 0


def _event_line(e: CouncilRunEvent) -> str:
    return (
        f"{e.seq:>6}  {human_time(e.created_at)}  wave {e.wave_index}  "
        f"{e.event_type}  {json.dumps(e.payload)}"
    )
