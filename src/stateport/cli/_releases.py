"""``stateport releases``: promote, roll back and list releases."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from .. import _time
from ..domains.releases import ReleaseMetadata, ReleaseRecord
from ._common import Commands, command_group, human_time, json_flag, store_of, subcommand

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
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
            f"{r.metadata.promoted_by[:12]:12}  {human_time(r.created_at)}"
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
