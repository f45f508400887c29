"""``stateport runs``, ``stateport releases`` and ``stateport cas``."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from .. import _time
from ..domains.releases import ReleaseMetadata, ReleaseRecord
from ..domains.runs import RunEvent, RunRecord, RunStatus
from . import _blobs
from ._common import CommandError, Commands, command_group, json_flag, store_of, subcommand

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    _register_runs(commands, common)
    _register_releases(commands, common)
    _register_cas(commands, common)


# --------------------------------------------------------------------------- runs


def _register_runs(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "runs",
        help="list runs and show their events",
        description="Execution runs recorded through sp.runs, and their ordered events.",
    )

    ls = subcommand(
        sub,
        common,
        "list",
        _runs_list,
        help="runs, newest first",
        description="List runs newest first, optionally of one spec digest and in one status.",
    )
    ls.add_argument("--spec", metavar="DIGEST", help="only runs of this spec digest")
    ls.add_argument(
        "--status", choices=[s.value for s in RunStatus], help="only runs in this status"
    )
    ls.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N runs (default 20; 0: all)"
    )
    json_flag(ls)

    show = subcommand(
        sub,
        common,
        "show",
        _runs_show,
        help="one run's record and summary",
        description="Show a run: status, spec, metadata, summary and its last event.",
    )
    show.add_argument("run_id", metavar="RUN_ID")
    json_flag(show)

    events = subcommand(
        sub,
        common,
        "events",
        _runs_events,
        help="a run's events in order (--follow to tail it)",
        description=(
            "Print a run's events in sequence order as '<seq>  <time>  <kind>  "
            "<payload>'. With --follow, keep printing new events as they are "
            "appended, until the run ends (or Ctrl-C)."
        ),
    )
    events.add_argument("run_id", metavar="RUN_ID")
    events.add_argument("--after", type=int, default=0, metavar="SEQ", help="only events after SEQ")
    events.add_argument(
        "-f", "--follow", action="store_true", help="wait for new events until the run ends"
    )
    json_flag(events)


def _run_json(r: RunRecord) -> dict[str, Any]:
    summary = r.summary
    return {
        "run_id": str(r.run_id),
        "status": r.status.value,
        "spec_digest": r.spec_digest.as_str(),
        "agent_name": r.metadata.agent_name,
        "git_sha": r.metadata.git_sha,
        "tags": dict(r.metadata.tags),
        "created_at": _time.to_text(r.created_at),
        "completed_at": None if r.completed_at is None else _time.to_text(r.completed_at),
        "summary": None
        if summary is None
        else {
            "total_events": summary.total_events,
            "duration_ms": summary.duration_ms,
            "success": summary.success,
            "final_state_digest": None
            if summary.final_state_digest is None
            else summary.final_state_digest.as_str(),
        },
    }


def _event_json(e: RunEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "kind": e.kind,
        "timestamp": None if e.timestamp is None else _time.to_text(e.timestamp),
        "payload": e.payload,
    }


def _when(text: str | None) -> str:
    return "-" if text is None else text[:19].replace("T", " ")


async def _runs_list(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise CommandError("--limit must be >= 0")
    async with store_of(args, create=False) as sp:
        if args.limit == 0:
            runs = await sp.runs.list_runs(args.spec, status=args.status)
            more = False
        else:
            page = await sp.runs.list_runs_page(args.spec, status=args.status, limit=args.limit)
            runs, more = page.runs, page.cursor is not None
    if args.json:
        for r in runs:
            print(json.dumps(_run_json(r)))
        return 0
    if not runs:
        print("no runs")
        return 0
    print(f"{'RUN ID':36}  {'STATUS':9}  {'SPEC':12}  {'AGENT':16}  CREATED (UTC)")
    for r in runs:
        created = _when(_time.to_text(r.created_at))
        print(
            f"{r.run_id:36}  {r.status.value:9}  {r.spec_digest.short()}  "
            f"{r.metadata.agent_name[:16]:16}  {created}"
        )
    if more:
        print(f"(first {len(runs)} shown; --limit 0 for all)")
    return 0


async def _runs_show(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        record = await sp.runs.get_run(args.run_id)
        last = await sp.runs.latest_event(args.run_id)
    data = _run_json(record)
    data["last_event"] = None if last is None else _event_json(last)
    if args.json:
        print(json.dumps(data))
        return 0
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = value if isinstance(value, str) or value is None else json.dumps(value)
        print(f"{key:{width}}  {'-' if shown is None else shown}")
    return 0


def _print_event(e: RunEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_event_json(e)), flush=True)
        return
    when = _when(None if e.timestamp is None else _time.to_text(e.timestamp))
    print(f"{e.seq:>6}  {when}  {e.kind}  {json.dumps(e.payload)}", flush=True)


async def _runs_events(args: argparse.Namespace) -> int:
    if args.after < 0:
        raise CommandError("--after must be >= 0")
    async with store_of(args, create=False) as sp:
        if args.follow:
            async for event in sp.runs.watch_events(args.run_id, args.after):
                _print_event(event, args.json)
            if not args.json:
                status = (await sp.runs.get_run(args.run_id)).status.value
                print(f"run {args.run_id} is {status}", file=sys.stderr)
        else:
            for event in await sp.runs.get_events_after(args.run_id, args.after):
                _print_event(event, args.json)
    return 0


# --------------------------------------------------------------------------- releases


def _register_releases(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "releases",
        help="promote, roll back and list releases",
        description=(
            "Releases map a name to the spec digest that is live under it. Every "
            "promote and rollback is recorded; rollback returns to the release "
            "that was live before the current one, further back each time."
        ),
    )

    ls = subcommand(
        sub,
        common,
        "list",
        _releases_list,
        help="every name and its live release",
        description="List every release name with its live release.",
    )
    json_flag(ls)

    history = subcommand(
        sub,
        common,
        "history",
        _releases_history,
        help="a name's releases, newest first",
        description="Every promote and rollback of NAME, newest first.",
    )
    history.add_argument("name", metavar="NAME")
    json_flag(history)

    promote = subcommand(
        sub,
        common,
        "promote",
        _releases_promote,
        help="make a spec digest the live release of a name",
        description="Make DIGEST the live release of NAME and record who did it.",
    )
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("digest", metavar="DIGEST", help="the spec's SHA-256 digest")
    promote.add_argument("--by", metavar="WHO", help="who promotes it (default: your user name)")
    promote.add_argument("--label", metavar="LABEL", help="a version label, e.g. v1.2.0")
    promote.add_argument("--notes", metavar="TEXT", help="release notes")
    json_flag(promote)

    rollback = subcommand(
        sub,
        common,
        "rollback",
        _releases_rollback,
        help="go back to the release live before the current one",
        description=(
            "Make the release that was live before the current one live again. "
            "Repeating it walks further back; it fails when nothing is further back."
        ),
    )
    rollback.add_argument("name", metavar="NAME")
    json_flag(rollback)


def _release_json(r: ReleaseRecord) -> dict[str, Any]:
    return {
        "name": r.name,
        "seq": r.seq,
        "action": r.action,
        "restores": r.restores,
        "spec_digest": r.spec_digest.as_str(),
        "promoted_by": r.metadata.promoted_by,
        "version_label": r.metadata.version_label,
        "notes": r.metadata.notes,
        "created_at": _time.to_text(r.created_at),
    }


def _print_releases(records: list[ReleaseRecord], as_json: bool, *, with_name: bool) -> None:
    if as_json:
        for r in records:
            print(json.dumps(_release_json(r)))
        return
    head = f"{'NAME':20}  " if with_name else ""
    print(f"{head}{'#':>4}  {'ACTION':8}  {'SPEC':12}  {'LABEL':10}  {'BY':12}  CREATED (UTC)")
    for r in records:
        name = f"{r.name[:20]:20}  " if with_name else ""
        label = r.metadata.version_label or "-"
        print(
            f"{name}{r.seq:>4}  {r.action:8}  {r.spec_digest.short()}  {label[:10]:10}  "
            f"{r.metadata.promoted_by[:12]:12}  {_when(_time.to_text(r.created_at))}"
            + ("" if r.restores is None else f"  (restores #{r.restores})")
        )


async def _releases_list(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        records = await sp.releases.list_releases()
    if not records and not args.json:
        print("no releases")
        return 0
    _print_releases(records, args.json, with_name=True)
    return 0


async def _releases_history(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        records = await sp.releases.history(args.name)
    if not records:
        print(f"error: no release named {args.name!r}", file=sys.stderr)
        return 1
    _print_releases(records, args.json, with_name=False)
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


async def _releases_promote(args: argparse.Namespace) -> int:
    metadata = ReleaseMetadata(args.by or _user(), args.label, args.notes)
    async with store_of(args, create=True) as sp:
        record = await sp.releases.promote(args.name, args.digest, metadata)
    _print_releases([record], args.json, with_name=True)
    return 0


async def _releases_rollback(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        record = await sp.releases.rollback(args.name)
    _print_releases([record], args.json, with_name=True)
    return 0


# --------------------------------------------------------------------------- cas


def _register_cas(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "cas",
        help="content-addressed put and get (as sp.cas)",
        description=(
            "Content-addressed storage: 'put' prints the SHA-256 digest of each "
            "file it stores, 'get' writes the verified content of a digest. The "
            "same store as 'stateport blobs'."
        ),
    )
    _blobs.add_put(
        sub,
        common,
        help="store files and print their digests",
        description="Store each FILE (- for stdin) and print '<digest>  <file>'.",
    )
    _blobs.add_get(
        sub,
        common,
        help="write the content of a digest to stdout or a file",
        description=(
            "Write the content of DIGEST to stdout, or to FILE with -o, verified "
            "against the digest as it streams."
        ),
    )
