"""``stateport cas``: content-addressed put, get, contains and delete (as ``sp.cas``)."""

from __future__ import annotations

import argparse

from ..digest import ContentDigest
from . import _blobs
from ._common import DONE, Commands, command_group, json_flag, report, store_of, subcommand

__all__ = ["register"]

_DIGEST = "the content's SHA-256 digest (64 hex digits)"


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "cas",
        help="content-addressed put, get, contains and delete (as sp.cas)",
        description=(
            "Content-addressed storage: 'put' prints the SHA-256 digest of each "
            "file it stores, 'get' writes the verified content of a digest, "
            "'contains' tells whether a digest is stored and 'delete' removes it. "
            "The same store as 'stateport blobs'."
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

    contains = subcommand(
        sub,
        common,
        "contains",
        _contains,
        help="whether a digest is stored (exit status 0 if so, 1 if not)",
        description=(
            "Say whether content is stored under DIGEST, and exit 0 if it is and 1 "
            "if it is not, so a script can ask: if stateport cas contains D; then ..."
        ),
    )
    contains.add_argument("digest", metavar="DIGEST", help=_DIGEST)
    json_flag(contains, what="one object")

    delete = subcommand(
        sub,
        common,
        "delete",
        _delete,
        help="remove the content of a digest",
        description=(
            "Remove the content stored under DIGEST and say whether there was any; "
            "deleting a digest that is not stored changes nothing. Records that name "
            "the digest (runs, releases, ...) are not consulted: delete only content "
            "nothing refers to."
        ),
    )
    delete.add_argument("digest", metavar="DIGEST", help=_DIGEST)
    json_flag(delete, what=DONE)


async def _contains(args: argparse.Namespace) -> int:
    digest = ContentDigest(args.digest)
    async with store_of(args, create=False) as sp:
        stored = await sp.cas.contains(digest)
    report(
        args,
        f"{digest} is {'stored' if stored else 'not stored'}",
        {"digest": digest.as_str(), "stored": stored},
    )
    return 0 if stored else 1


async def _delete(args: argparse.Namespace) -> int:
    digest = ContentDigest(args.digest)
    async with store_of(args, create=False) as sp:
        stored = await sp.cas.contains(digest)
        if stored:
            await sp.cas.delete(digest)
    report(
        args,
        f"deleted {digest}" if stored else f"{digest} is not stored: nothing deleted",
        {"digest": digest.as_str(), "deleted": stored},
    )
    return 0
