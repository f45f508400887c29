"""``stateport items``: the generic item API (``sp.items``) from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import Conflict, NotFound, ValidationError
from ..ports.table import Exists
from ._common import (
    DONE,
    Commands,
    command_group,
    counted,
    json_arg,
    json_flag,
    print_listing,
    report,
    store_of,
    subcommand,
)

__all__ = ["register"]

_PK = "the partition key"
_SK = "the sort key"


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "items",
        help="get, put, query and delete items by key (as sp.items)",
        description=(
            "The generic item API: an item is a JSON object stored under a partition "
            "key PK and a sort key SK, and printed with them as 'pk' and 'sk'. For "
            "conditions, transactions and indexes use the Python API (sp.table)."
        ),
    )

    get = subcommand(
        sub,
        common,
        "get",
        _get,
        help="print the item stored under PK and SK",
        description="Print the item stored under PK and SK as JSON; an error if there is none.",
    )
    _key_arguments(get)
    json_flag(get, what="one object on one line")

    put = subcommand(
        sub,
        common,
        "put",
        _put,
        help="create or replace the item under PK and SK",
        description=(
            "Store the JSON object JSON (- reads it from stdin) as the item under PK "
            "and SK, replacing any item there. Its 'pk' and 'sk', if it has them, "
            "must equal PK and SK."
        ),
    )
    _key_arguments(put)
    put.add_argument("attrs", metavar="JSON", help="the item's attributes as a JSON object")
    json_flag(put, what=DONE)

    query = subcommand(
        sub,
        common,
        "query",
        _query,
        help="the items of a partition, by sort key",
        description=(
            "List the items of partition PK whose sort key starts with SK_PREFIX "
            "(all of them without it), in sort-key order, as '<sk>  <attributes>'."
        ),
    )
    query.add_argument("pk", metavar="PK", help=_PK)
    query.add_argument(
        "sk_prefix", nargs="?", default="", metavar="SK_PREFIX", help="how the sort keys start"
    )
    json_flag(query)

    delete = subcommand(
        sub,
        common,
        "delete",
        _delete,
        help="delete the item under PK and SK",
        description=(
            "Delete the item under PK and SK and say whether there was one; deleting "
            "an item that does not exist changes nothing."
        ),
    )
    _key_arguments(delete)
    json_flag(delete, what=DONE)


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pk", metavar="PK", help=_PK)
    parser.add_argument("sk", metavar="SK", help=_SK)


def _key(pk: str, sk: str) -> str:
    return f"pk {pk!r} sk {sk!r}"


async def _get(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        item = await sp.items.get(args.pk, args.sk)
    if item is None:
        raise NotFound(f"no item under {_key(args.pk, args.sk)}")
    print(json.dumps(item) if args.json else json.dumps(item, indent=2))
    return 0


def _item(pk: str, sk: str, attrs: Any) -> dict[str, Any]:
    if not isinstance(attrs, dict):
        raise ValidationError(f"the item must be a JSON object, got {type(attrs).__name__}")
    for name, value in (("pk", pk), ("sk", sk)):
        if name in attrs and attrs[name] != value:
            raise ValidationError(
                f"the item's {name} is {attrs[name]!r} but {name.upper()} is {value!r}"
            )
    return {"pk": pk, "sk": sk, **{k: v for k, v in attrs.items() if k not in ("pk", "sk")}}


async def _put(args: argparse.Namespace) -> int:
    item = _item(args.pk, args.sk, json_arg(args.attrs, "the item"))
    async with store_of(args, create=True) as sp:
        await sp.items.put(item)
    report(
        args,
        f"put the item under {_key(args.pk, args.sk)} ({counted(len(item) - 2, 'attribute')})",
        item,
    )
    return 0


async def _query(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        items = await sp.items.query(args.pk, args.sk_prefix)
    print_listing(items, args.json, _item_line)
    return 0


def _item_line(item: dict[str, Any]) -> str:
    attrs = {k: v for k, v in item.items() if k not in ("pk", "sk")}
    return f"{item['sk']}  {json.dumps(attrs)}"


async def _delete(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        try:
            # conditional, so the report says whether this call deleted it
            await sp.table.delete(args.pk, args.sk, condition=Exists())
            deleted = True
        except Conflict:
            deleted = False
    key = _key(args.pk, args.sk)
    report(
        args,
        f"deleted the item under {key}" if deleted else f"no item under {key}: nothing deleted",
        {"pk": args.pk, "sk": args.sk, "deleted": deleted},
    )
    return 0
