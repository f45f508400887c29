"""``stateport knowledge``: look at the knowledge repository (``sp.knowledge``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from .. import _time
from ..digest import ContentDigest
from ..domains.knowledge import MAX_DEPTH, Artifact, Collection, Direction, KnowledgeRepository
from ..errors import NotFound
from ._common import CommandError, Commands, command_group, json_flag, store_of, subcommand

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "knowledge",
        help="collections, artifacts, relationships and the change feed",
        description=(
            "The knowledge repository (sp.knowledge): list collections and their "
            "artifacts, show an artifact, its revisions and relationships, and read "
            "or follow the change feed."
        ),
    )

    collections = subcommand(
        sub,
        common,
        "collections",
        _collections,
        help="every collection, by name",
        description="List every collection by name: name, id, artifacts held, last change.",
    )
    json_flag(collections)

    ls = subcommand(
        sub,
        common,
        "ls",
        _ls,
        help="the artifacts of a collection, by name",
        description=(
            "List the artifacts of COLLECTION (a name or an id) by name: name, id, type, "
            "revision, size and the first digits of the content digest."
        ),
    )
    ls.add_argument("collection", metavar="COLLECTION", help="a collection name or id")
    ls.add_argument(
        "--limit",
        type=int,
        default=100,
        metavar="N",
        help="at most N artifacts (default 100; 0: all)",
    )
    json_flag(ls)

    show = subcommand(
        sub,
        common,
        "show",
        _show,
        help="one artifact at its current revision",
        description=(
            "Show an artifact: collection, name, type, revision, digest, size, media "
            "type, metadata, provenance and timestamps."
        ),
    )
    show.add_argument("artifact_id", metavar="ID", help="the artifact's id")
    json_flag(show)

    history = subcommand(
        sub,
        common,
        "history",
        _history,
        help="an artifact's revisions, oldest first",
        description=(
            "List every revision of an artifact, oldest first, with its digest and the "
            "digest before it; kept after the artifact is deleted. With --changes, list "
            "its change records instead (relationships from and to it included)."
        ),
    )
    history.add_argument("artifact_id", metavar="ID", help="the artifact's id")
    history.add_argument("--changes", action="store_true", help="its change records instead")
    json_flag(history)

    related = subcommand(
        sub,
        common,
        "related",
        _related,
        help="an artifact's relationships (or its neighbours to a depth)",
        description=(
            "List the relationships from and to an artifact: direction, type, the "
            "artifact at the other end, and the relationship id. With --depth N, list "
            "the artifacts within N hops instead, breadth first."
        ),
    )
    related.add_argument("artifact_id", metavar="ID", help="the artifact's id")
    related.add_argument("--type", dest="rel_type", metavar="TYPE", help="only this type")
    related.add_argument(
        "--direction",
        choices=[d.value for d in Direction],
        default=Direction.BOTH.value,
        help="from the artifact (out), to it (in) or both (default)",
    )
    related.add_argument(
        "--depth", type=int, metavar="N", help=f"neighbours within N hops (1 to {MAX_DEPTH})"
    )
    json_flag(related)

    changes = subcommand(
        sub,
        common,
        "changes",
        _changes,
        help="the change feed, in commit order (--follow to tail it)",
        description=(
            "Print change records in commit order as '<seq>  <time>  <kind>  <id>  "
            "<details>'. With --follow, keep printing new records as they commit, "
            "until Ctrl-C; resume later with --after <last seq>."
        ),
    )
    changes.add_argument(
        "--after", type=int, default=0, metavar="SEQ", help="only records after SEQ"
    )
    changes.add_argument(
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="at most N records (default: all; with --follow, stop after N)",
    )
    changes.add_argument(
        "-f", "--follow", action="store_true", help="wait for new records (until Ctrl-C)"
    )
    json_flag(changes)


# --------------------------------------------------------------------------- output


def plain(value: Any) -> Any:
    """A record as JSON-ready data: datetimes as stored text, digests as hex, enums
    as their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return _time.to_text(value)
    if isinstance(value, ContentDigest):
        return value.as_str()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _print_json(records: list[Any]) -> None:
    for r in records:
        print(json.dumps(plain(r), ensure_ascii=False), flush=True)


def _when(value: datetime | None) -> str:
    return "-" if value is None else _time.to_text(value)[:19].replace("T", " ")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


async def _collection(k: KnowledgeRepository, ref: str) -> Collection:
    """The collection named ``ref``, else the one whose id it is."""
    found = await k.find_collection(ref)
    if found is not None:
        return found
    try:
        return await k.get_collection(ref)
    except NotFound:
        raise NotFound(f"no collection named {ref!r} (nor with that id)") from None
    except ValueError:  # not an id either
        raise NotFound(f"no collection named {ref!r}") from None


# --------------------------------------------------------------------------- commands


async def _collections(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        found = await sp.knowledge.list_collections()
    if args.json:
        _print_json(found)
    elif not found:
        print("no collections")
    else:
        _table(
            ("NAME", "ID", "ARTIFACTS", "UPDATED (UTC)"),
            [(c.name, c.id, str(c.artifact_count), _when(c.updated_at)) for c in found],
        )
    return 0


async def _ls(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise CommandError("--limit must be >= 0")
    async with store_of(args, create=False) as sp:
        k = sp.knowledge
        col = await _collection(k, args.collection)
        artifacts: list[Artifact] = []
        cursor: str | None = None
        more = False
        while True:
            room = 1000 if args.limit == 0 else min(1000, args.limit - len(artifacts))
            page = await k.list_artifacts(col.id, limit=room, cursor=cursor)
            artifacts.extend(page.artifacts)
            cursor = page.cursor
            if cursor is None:
                break
            if args.limit and len(artifacts) >= args.limit:
                more = True
                break
    if args.json:
        _print_json(artifacts)
        return 0
    if not artifacts:
        print(f"collection {col.name} holds no artifacts")
        return 0
    _table(
        ("NAME", "ID", "TYPE", "REV", "SIZE", "DIGEST"),
        [
            (a.name, a.id, a.artifact_type, str(a.revision), str(a.size), a.digest.short())
            for a in artifacts
        ],
    )
    if more:
        print(f"(first {len(artifacts)} shown; --limit 0 for all)")
    return 0


async def _show(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        art = await sp.knowledge.get_artifact(args.artifact_id)
        col = await sp.knowledge.get_collection(art.collection_id)
    data = plain(art)
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
        return 0
    data["collection"] = f"{col.name} ({col.id})"
    width = max(len(key) for key in data)
    for key, value in data.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        print(f"{key:{width}}  {shown}")
    return 0


async def _history(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        k = sp.knowledge
        if args.changes:
            records: list[Any] = await k.entity_changes(args.artifact_id)
        else:
            records = await k.list_revisions(args.artifact_id)
    if not records:
        raise NotFound(f"no artifact {args.artifact_id!r}")
    if args.json:
        _print_json(records)
    elif args.changes:
        _print_changes(records)
    else:
        _table(
            ("REV", "DIGEST", "BEFORE", "SIZE", "MEDIA TYPE", "BY", "CREATED (UTC)"),
            [
                (
                    str(r.revision),
                    r.digest.short(),
                    "-" if r.old_digest is None else r.old_digest.short(),
                    str(r.size),
                    r.media_type,
                    r.actor or "-",
                    _when(r.created_at),
                )
                for r in records
            ],
        )
    return 0


async def _related(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        k = sp.knowledge
        await k.get_artifact(args.artifact_id)  # NotFound for a wrong id, not "nothing"
        if args.depth is not None:
            types = None if args.rel_type is None else [args.rel_type]
            found = await k.traverse(
                args.artifact_id, depth=args.depth, rel_types=types, direction=args.direction
            )
            if args.json:
                _print_json(found)
            elif not found:
                print("no related artifacts")
            else:
                _table(
                    ("DEPTH", "ARTIFACT", "VIA", "FROM", "TO"),
                    [
                        (
                            str(n.depth),
                            n.artifact_id,
                            n.via.rel_type,
                            n.via.source_id,
                            n.via.target_id,
                        )
                        for n in found
                    ],
                )
            return 0
        rels = await k.list_relationships(
            args.artifact_id, direction=args.direction, rel_type=args.rel_type
        )
    if args.json:
        _print_json(rels)
    elif not rels:
        print("no relationships")
    else:
        rows = []
        for r in rels:
            out = r.source_id == args.artifact_id
            rows.append(
                ("->" if out else "<-", r.rel_type, r.target_id if out else r.source_id, r.id)
            )
        _table(("DIR", "TYPE", "ARTIFACT", "RELATIONSHIP"), rows)
    return 0


def _print_changes(records: list[Any]) -> None:
    for c in records:
        details = json.dumps(c.details, ensure_ascii=False, sort_keys=True)
        print(
            f"{c.seq:>8}  {_when(c.at)}  {c.kind.value:<20}  {c.entity_id}  {details}", flush=True
        )


async def _changes(args: argparse.Namespace) -> int:
    if args.after < 0 or args.limit < 0:
        raise CommandError("--after and --limit must be >= 0")
    show = _print_json if args.json else _print_changes
    async with store_of(args, create=False) as sp:
        k = sp.knowledge
        if args.follow:
            shown = 0
            async for record in k.watch_changes(after=args.after):
                show([record])
                shown += 1
                if args.limit and shown == args.limit:
                    break
            return 0
        after = args.after
        left = args.limit
        while True:
            batch = await k.list_changes(after=after, limit=min(1000, left) if left else 1000)
            show(batch)
            if left:
                left -= len(batch)
            if len(batch) < 1000 or (args.limit and not left):
                break
            after = batch[-1].seq
    return 0
