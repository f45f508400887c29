"""Versioned schema migrations, engine-neutral.

A migration has a version (1, 2, ...), a name, and engine-specific steps. Each
is applied in its own transaction together with the row that records it, so a
database is always at exactly one recorded version. Engines supply the steps
and the transaction; the rules live here:

* versions are applied in order, each at most once (re-checked inside the
  transaction, so two processes migrating at once apply each version once);
* ``stop_before`` stops before that version (for upgrade tests and staged rollouts);
* a database recording a version this package does not know was written by a
  newer stateport: opening it is a :class:`ConfigError`, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import ConfigError
from .ports.engine import AppliedMigration, SchemaStatus

__all__ = ["Migration", "check_known", "pending", "schema_status"]

StepT = TypeVar("StepT")


@dataclass(frozen=True, slots=True)
class Migration(Generic[StepT]):
    """One schema step. Never edit a released migration: add a new one."""

    version: int
    name: str
    steps: StepT


def check_known(migrations: Sequence[Migration[StepT]], applied: Sequence[int], where: str) -> None:
    """Raise ConfigError if ``applied`` holds versions this package does not know."""
    latest = migrations[-1].version if migrations else 0
    unknown = sorted(v for v in applied if v > latest)
    if unknown:
        raise ConfigError(
            f"{where} has schema version {unknown[-1]}, newer than this stateport "
            f"(which knows up to {latest}): upgrade stateport to open it"
        )


def schema_status(
    migrations: Sequence[Migration[StepT]], applied: Sequence[AppliedMigration], where: str
) -> SchemaStatus:
    """Where the ``applied`` migrations (in order) stand against ``migrations``;
    ConfigError if they hold a version this package does not know."""
    check_known(migrations, [a.version for a in applied], where)
    current = applied[-1].version if applied else 0
    return SchemaStatus(current, migrations[-1].version, tuple(applied))


def pending(
    migrations: Sequence[Migration[StepT]],
    applied: Sequence[int],
    stop_before: int | None = None,
) -> list[Migration[StepT]]:
    """The migrations still to apply, in order."""
    done = set(applied)
    return [
        m
        for m in migrations
        if m.version not in done and (stop_before is None or m.version < stop_before)
    ]
