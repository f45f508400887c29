"""``stateport knowledge``: look at the knowledge repository (``sp.knowledge``)."""

from __future__ import annotations

import argparse
import json
import sys

from ..domains.knowledge import (
    MAX_DEPTH,
    Artifact,
    ArtifactRevision,
    ChangeRecord,
    Collection,
    Direction,
    KnowledgeRepository,
    Relationship,
)
from ..errors import NotFound, ValidationError
from ._common import (
    CommandError,
    Commands,
    command_group,
    human_size,
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
        description="List every collection by name: name, id, last update and description.",
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


def _artifact_line(a: Artifact) -> str:
    size = human_size(a.size)
    return f"{a.name}  {a.id}  {a.artifact_type}  rev {a.revision}  {size}  {a.digest.short()}"


def _revision_line(r: ArtifactRevision) -> str:
    before = "-" if r.old_digest is None else r.old_digest.short()
    return (
        f"{r.revision:>4}  {r.digest.short()}  (was {before})  {human_size(r.size)}  "
        f"{r.media_type}  by {r.actor or '-'}  {human_time(r.created_at)}"
    )


def _change_line(c: ChangeRecord) -> str:
    details = json.dumps(c.details, ensure_ascii=False, sort_keys=True)
    return f"{c.seq:>8}  {human_time(c.at)}  {c.kind.value:<20}  {c.entity_id}  {details}"


async def _collection(k: KnowledgeRepository, ref: str) -> Collection:
    """The collection named ``ref``, else the one whose id it is."""
    found = await k.find_collection(ref)
    if found is not None:
        return found
    try:
        return await k.get_collection(ref)
    except NotFound:
        raise NotFound(f"no collection named {ref!r} (nor with that id)") from None
    except ValidationError:  # not an id either
        raise NotFound(f"no collection named {ref!r}") from None


# --------------------------------------------------------------------------- commands


async def _collections(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        found = await sp.knowledge.list_collections()
    if not found and not args.json:
        print("no collections")
        return 0
    print_listing(
        found,
        args.json,
        lambda c: f"{c.name}  {c.id}  updated {human_time(c.updated_at)}  {c.description}",
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
    if not artifacts and not args.json:
        print(f"collection {col.name} holds no artifacts")
        return 0
    print_listing(artifacts, args.json, _artifact_line)
    if more and not args.json:
        print(f"(first {len(artifacts)} shown; --limit 0 for all)")
    return 0


async def _show(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        art = await sp.knowledge.get_artifact(args.artifact_id)
        col = await sp.knowledge.get_collection(art.collection_id)
    data = record_json(art)
    if not args.json:
        data["collection_id"] = f"{col.id} ({col.name})"
    print_record(data, args.json)
    return 0


async def _history(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        k = sp.knowledge
        if args.changes:
            changes = await k.entity_changes(args.artifact_id)
            revisions = []
        else:
            revisions = await k.list_revisions(args.artifact_id)
            changes = []
    if not changes and not revisions:
        raise NotFound(f"no artifact {args.artifact_id!r}")
    if args.changes:
        print_listing(changes, args.json, _change_line)
    else:
        print_listing(revisions, args.json, _revision_line)
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
            if not found and not args.json:
                print("no related artifacts")
            print_listing(
                found,
                args.json,
                lambda n: (
                    f"{n.depth:>3}  {n.artifact_id}  via {n.via.source_id} "
                    f"-{n.via.rel_type}-> {n.via.target_id}"
                ),
            )
            return 0
        rels = await k.list_relationships(
            args.artifact_id, direction=args.direction, rel_type=args.rel_type
        )
    if not rels and not args.json:
        print("no relationships")

    def line(r: Relationship) -> str:
        if r.source_id == args.artifact_id:
            return f"->  {r.rel_type}  {r.target_id}  {r.id}"
        return f"<-  {r.rel_type}  {r.source_id}  {r.id}"

    print_listing(rels, args.json, line)
    return 0


async def _changes(args: argparse.Namespace) -> int:
    if args.after < 0 or args.limit < 0:
        raise CommandError("--after and --limit must be >= 0")

    def show(records: list[ChangeRecord]) -> None:
        print_listing(records, args.json, _change_line)
        sys.stdout.flush()

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
