"""``stateport audit``: verify audit chains, export a chain head to sign off."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .. import _time
from ..domains.work import Feature
from ..errors import ValidationError
from ..primitives.chain import ChainHead
from ._common import CommandError, Commands, command_group, store_of, subcommand

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "audit",
        help="verify audit chains; export a chain head",
        description=(
            "Each feature's audit trail is a hash chain (SHA256; the encoding is in "
            "docs/decisions, record 0016). Verify recomputes it end to end."
        ),
    )

    verify = subcommand(
        sub,
        common,
        "verify",
        _verify,
        help="recompute audit chains; exit 1 on any tampering",
        description=(
            "Recompute the audit chain of one feature (--feature) or of every feature "
            "and print one line each. Exits 1 if any chain is broken: a changed field, "
            "a deleted, inserted or reordered entry, or a truncated tail. With --head, "
            "also check the chain against a head exported earlier by 'stateport audit "
            "head', which detects a chain rewritten together with its stored head."
        ),
    )
    verify.add_argument("--feature", metavar="SLUG", help="only this feature")
    verify.add_argument(
        "--head", metavar="FILE", help="a head exported by 'stateport audit head' (- for stdin)"
    )

    head = subcommand(
        sub,
        common,
        "head",
        _head,
        help="export a feature's verified chain head as JSON",
        description=(
            "Verify a feature's audit chain and print its head (entry count and last "
            "hash) as JSON, to sign off and keep elsewhere; a later 'stateport audit "
            "verify --head FILE' checks that the chain still holds that entry."
        ),
    )
    head.add_argument("--feature", metavar="SLUG", required=True, help="the feature")
    head.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


def _read_head(name: str) -> tuple[ChainHead, str | None]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as e:
        raise CommandError(f"cannot read {name}: {e.strerror or e}") from e
    try:
        data = json.loads(text)
    except ValueError as e:
        raise CommandError(f"{name} is not a head exported by 'stateport audit head'") from e
    try:
        head = ChainHead.from_dict(data)
    except ValidationError as e:
        raise CommandError(f"{name}: {e}") from e
    slug = data.get("feature")
    return head, slug if isinstance(slug, str) else None


async def _verify(args: argparse.Namespace) -> int:
    expected: ChainHead | None = None
    slug: str | None = args.feature
    if args.head is not None:
        expected, from_file = _read_head(args.head)
        if slug is None:
            slug = from_file
        elif from_file is not None and from_file != slug:
            raise CommandError(f"{args.head} is the head of feature {from_file!r}, not {slug!r}")
        if slug is None:
            raise CommandError("--head needs --feature (the file names no feature)")
    broken = checked = 0
    async with store_of(args, create=False) as sp:
        features: list[Feature] = (
            [await sp.work.require_feature(slug)]
            if slug is not None
            else await sp.work.list_all_features()
        )
        for f in features:
            result = await sp.work.verify_audit_chain(f.id, expected_head=expected)
            checked += 1
            if result.ok:
                print(f"ok      {f.slug}  {result.checked} entries, head {result.head.hash.hex()}")
            else:
                broken += 1
                print(f"BROKEN  {f.slug}  {result.describe()}", flush=True)
    noun = "chain" if checked == 1 else "chains"
    if broken:
        print(f"{checked} {noun} checked, {broken} broken", file=sys.stderr)
        return 1
    print(f"{checked} {noun} checked, all intact", file=sys.stderr)
    return 0


async def _head(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        head = await sp.work.audit_head(feature.id)
    doc = {
        "feature": feature.slug,
        "feature_id": feature.id,
        **head.to_dict(),
        "exported_at": _time.to_text(_time.now()),
    }
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if args.output and args.output != "-":
        try:
            await asyncio.to_thread(Path(args.output).write_text, text)
        except OSError as e:
            raise CommandError(f"cannot write {args.output}: {e.strerror or e}") from e
    else:
        sys.stdout.write(text)
    return 0
