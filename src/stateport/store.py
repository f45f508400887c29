"""The opened store: ``async with stateport.open(url) as sp``."""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any

from .backends import open_engine
from .config import resolve_url
from .domains.cas import CasStore
from .domains.council import CouncilRepository
from .domains.items import ItemStore
from .domains.knowledge import KnowledgeRepository
from .domains.releases import ReleaseRegistry
from .domains.runs import RunLedger
from .domains.work import WorkStore
from .errors import ConfigError
from .ports.blob import BlobPort
from .ports.engine import AppliedMigration, Engine, SchemaStatus
from .ports.table import TablePort
from .url import redact

__all__ = ["Stateport", "open"]


class Stateport:
    """One opened store: the ports of one engine, and the stores built on them.

    * ``sp.table`` — the table port (conditions, transactions, indexes, paging);
    * ``sp.items`` — the generic ``get / put / delete / query`` item API;
    * ``sp.blobs`` — the content-addressed blob port;
    * ``sp.cas`` — content-addressed storage (the ``CasStore`` port);
    * ``sp.runs`` — runs and their ordered events (the ``RunLedger`` port);
    * ``sp.releases`` — promote and roll back releases (the ``ReleaseRegistry`` port);
    * ``sp.council`` — orchestrator runs, waves and rewind (the ``CouncilRepository`` port);
    * ``sp.work`` — features, work packages and their hash-chained audit trail (the
      ``StoragePort``);
    * ``sp.knowledge`` — collections, artifacts and revisions, relationships, change
      records, queries, workflow runs and context references (the
      ``KnowledgeRepository``).

    Safe to share between tasks, threads and event loops. Close it with
    ``await sp.aclose()`` or by leaving ``async with``.
    """

    # Every store is declared here, by name and class: stateport.sync gives each
    # a blocking twin, and the conformance kit calls each of its methods.
    url: str
    engine: Engine
    table: TablePort
    blobs: BlobPort
    items: ItemStore
    cas: CasStore
    runs: RunLedger
    releases: ReleaseRegistry
    council: CouncilRepository
    work: WorkStore
    knowledge: KnowledgeRepository

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self.table = engine.table
        self.blobs = engine.blobs
        self.items = ItemStore(engine.table)
        self.cas = CasStore(engine.blobs)
        self.runs = RunLedger(engine.table)
        self.releases = ReleaseRegistry(engine.table)
        self.council = CouncilRepository(engine.table)
        self.work = WorkStore(engine.table)
        self.knowledge = KnowledgeRepository(engine.table, engine.blobs)

    async def migrate(self, *, stop_before: int | None = None) -> list[AppliedMigration]:
        """Apply pending schema migrations (see ``stateport db migrate``)."""
        return await self.engine.migrate(stop_before=stop_before)

    async def schema_version(self) -> SchemaStatus:
        """Where the schema stands."""
        return await self.engine.schema_version()

    def describe(self) -> dict[str, Any]:
        """Facts about the engine, for display."""
        return {"url": redact(self.url), **self.engine.describe()}

    async def aclose(self) -> None:
        """Close the engine. Idempotent."""
        await self.engine.aclose()

    async def __aenter__(self) -> Stateport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<Stateport {redact(self.url)}>"


async def _open(url: str | None, migrate: bool, create: bool) -> Stateport:
    resolved, _ = resolve_url(url)
    engine = await open_engine(resolved, create=create)
    try:
        if migrate:
            await engine.migrate()
        else:
            status = await engine.schema_version()
            if status.pending:
                raise ConfigError(
                    f"{redact(resolved)}: the schema is at version {status.current} of "
                    f"{status.latest}: run  stateport db migrate --url '{redact(resolved)}'"
                )
    except BaseException:
        await engine.aclose()
        raise
    return Stateport(resolved, engine)


class _Opening:
    """What :func:`open` returns: ``async with`` it, or ``await`` it."""

    def __init__(self, url: str | None, migrate: bool, create: bool) -> None:
        self._url = url
        self._migrate = migrate
        self._create = create
        self._store: Stateport | None = None

    def __await__(self) -> Generator[Any, None, Stateport]:
        return _open(self._url, self._migrate, self._create).__await__()

    async def __aenter__(self) -> Stateport:
        self._store = await _open(self._url, self._migrate, self._create)
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.aclose()


def open(url: str | None = None, *, migrate: bool = True, create: bool = True) -> _Opening:
    """Open the store at ``url`` (default: see :mod:`stateport.config`).

    ``async with stateport.open("sqlite:///state.db") as sp: ...`` or
    ``sp = await stateport.open(...)`` then ``await sp.aclose()``. Pending schema
    migrations are applied unless ``migrate=False``, in which case a database
    that needs them raises :class:`ConfigError`. Bad URLs and missing driver
    extras raise :class:`ConfigError` before anything is created. With
    ``create=False`` a store that does not exist yet is a :class:`ConfigError`
    instead of being created (for tools that only look).
    """
    return _Opening(url, migrate, create)
