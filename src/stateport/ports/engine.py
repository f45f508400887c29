"""The engine: one opened backend, owning a table port and a blob port.

An engine also answers for its schema: :meth:`Engine.migrate` applies the
pending migrations, :meth:`Engine.schema_version` reports where it stands.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from .blob import BlobPort
from .table import TablePort

__all__ = ["AppliedMigration", "Engine", "SchemaStatus"]


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
