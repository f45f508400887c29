"""The engine: one opened backend, owning a table port and a blob port.

An engine also answers for its schema: :meth:`Engine.migrate` applies the
pending migrations, :meth:`Engine.schema_version` reports where it stands.
What it offers beyond the ports' guarantees, it declares as
:class:`Capability` values in :attr:`Engine.capabilities`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from .blob import BlobPort
from .table import TablePort

__all__ = ["AppliedMigration", "Capability", "Engine", "SchemaStatus"]


class Capability(enum.Enum):
    """What an engine may offer beyond the guarantees every engine keeps.

    An engine lists the ones it has in :attr:`Engine.capabilities`; the
    conformance suite runs the tests of a capability only on engines that
    declare it, and skips them elsewhere with the capability's description as
    the reason. Every member is declared by some engine and read by some test
    or command: a flag nobody reads is not added here.
    """

    PERSISTENT = "what is written survives closing the store: its URL opens the same data again"
    MULTI_PROCESS = "several processes can open the same store at once"
    MIGRATIONS = "the schema is versioned and migrated in recorded steps"

    @property
    def label(self) -> str:
        """The name as ``stateport db info`` shows it (``multi-process``)."""
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A migration recorded in the database."""

    version: int
    name: str
    applied_at: str


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema stands against what this package knows."""

    current: int
    latest: int
    applied: tuple[AppliedMigration, ...]

    @property
    def pending(self) -> int:
        return max(self.latest - self.current, 0)


class Engine(ABC):
    """An opened backend. Use :func:`stateport.open` rather than this directly."""

    table: TablePort
    blobs: BlobPort

    @property
    @abstractmethod
    def capabilities(self) -> frozenset[Capability]:
        """What this engine offers beyond the ports' guarantees (see :class:`Capability`).

        Declared by every engine, even when empty, so none is left out by mistake.
        """

    @abstractmethod
    async def migrate(self, *, stop_before: int | None = None) -> list[AppliedMigration]:
        """Apply pending migrations in order, each in its own transaction, up to
        but excluding ``stop_before``; return those applied now."""

    @abstractmethod
    async def schema_version(self) -> SchemaStatus:
        """The schema version recorded in the database."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Facts for ``stateport db info``: engine, location, settings."""

    async def aclose(self) -> None:
        """Close the blob port and the table port."""
        try:
            await self.blobs.aclose()
        finally:
            await self.table.aclose()
