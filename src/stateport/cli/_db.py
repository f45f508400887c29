"""``stateport db``: the schema and the engine behind a store URL."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import StateportError
from ..ports.engine import SchemaStatus
from ..ports.table import TablePort
from ..url import redact
from ._common import Commands, command_group, engine_at, store_url, subcommand

__all__ = ["register"]


def register(
    commands: Commands,
    common: argparse.ArgumentParser,
) -> None:
    sub = command_group(
        commands,
        common,
        "db",
        help="schema migrations and facts about the store",
        description=(
            "Inspect and migrate the store a URL names: apply pending schema "
            "migrations, show the schema version, describe the engine."
        ),
    )

    migrate = subcommand(
        sub,
        common,
        "migrate",
        _migrate,
        help="apply pending schema migrations",
        description=(
            "Apply the pending schema migrations in order, each in its own "
            "transaction, and print each one applied (or 'up to date')."
        ),
    )
    migrate.add_argument(
        "--stop-before",
        type=_version_number,
        metavar="N",
        help="stop before migration N (apply only the versions below it)",
    )

    subcommand(
        sub,
        common,
        "version",
        _version,
        help="show the schema version and the applied migrations",
        description=(
            "Show the schema version of the database against the latest this "
            "stateport knows, and the applied migrations with their timestamps. "
            "Applies nothing."
        ),
    )

    subcommand(
        sub,
        common,
        "info",
        _info,
        help="describe the store: URL, engine, capabilities, schema, table limits",
        description=(
            "Describe the store: its URL and where the URL came from, the engine, "
            "its settings and capabilities, the schema version, and the limits "
            "and indexes of the table. Applies nothing."
        ),
    )


def _version_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a migration version >= 1, got {text!r}")
    return value


def _status_line(status: SchemaStatus) -> str:
    line = f"schema version {status.current} of {status.latest}"
    if status.pending:
        return f"{line} ({status.pending} pending: run  stateport db migrate)"
    return f"{line} (up to date)"


async def _migrate(args: argparse.Namespace) -> int:
    url, _ = store_url(args)
    stop_before: int | None = args.stop_before
    async with engine_at(url) as engine:
        applied = await engine.migrate(stop_before=stop_before)
        status = await engine.schema_version()
    for m in applied:
        print(f"applied migration {m.version}: {m.name}  ({m.applied_at})")
    if applied:
        print(_status_line(status))
    elif not status.pending:
        print(f"up to date (schema version {status.current})")
    else:
        print(
            f"nothing to apply before version {stop_before}: "
            f"schema version {status.current} of {status.latest}"
        )
    return 0


async def _version(args: argparse.Namespace) -> int:
    url, _ = store_url(args)
    async with engine_at(url, create=False) as engine:
        status = await engine.schema_version()
    print(_status_line(status))
    if not status.applied:
        print("no migrations applied")
    for m in status.applied:
        print(f"  {m.version:>3}  {m.name:<16}  {m.applied_at}")
    return 0


def _limit(value: int | None) -> str:
    return "no limit" if value is None else str(value)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _table_facts(table: TablePort) -> list[tuple[str, str]]:
    caps = table.capabilities
    limits = caps.limits
    portable = "yes (DynamoDB's limits enforced)" if caps.portable else "no"
    return [
        ("portable", portable),
        ("max item bytes", _limit(limits.max_item_bytes)),
        ("max transaction ops", _limit(limits.max_transaction_ops)),
        ("max transaction bytes", _limit(limits.max_transaction_bytes)),
        ("max pk bytes", _limit(limits.max_pk_bytes)),
        ("max sk bytes", _limit(limits.max_sk_bytes)),
        ("indexes", ", ".join(f"{ix.name} ({ix.pk_attr}, {ix.sk_attr})" for ix in table.indexes)),
    ]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return _yes_no(value)
    return str(value)


def _print_pairs(pairs: list[tuple[str, str]], indent: str = "") -> None:
    width = max(len(k) for k, _ in pairs) + 1
    for key, value in pairs:
        print(f"{indent}{key + ':':<{width}} {value}")


async def _info(args: argparse.Namespace) -> int:
    url, source = store_url(args)
    store = [("url", redact(url)), ("from", source)]
    try:
        async with engine_at(url, create=False) as engine:
            facts = engine.describe()
            offers = sorted(c.label for c in engine.capabilities)
            status = await engine.schema_version()
            table = _table_facts(engine.table)
    except StateportError:
        _print_pairs(store)  # where the store would be, then the error
        raise
    store += [(k.replace("_", " "), _show(v)) for k, v in facts.items() if k != "url"]
    store.append(("capabilities", ", ".join(offers) or "none"))
    store.append(("schema", _status_line(status).removeprefix("schema ")))
    _print_pairs(store)
    print("table:")
    _print_pairs(table, indent="  ")
    return 0
