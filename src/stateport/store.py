"""The opened store: ``async with stateport.open(url) as sp``."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable
from types import TracebackType
from typing import IO, Any

from .backends import open_engine
from .config import resolve_url
from .domains.cas import CasStore
from .domains.council import CouncilRepository
from .domains.items import ItemStore
from .domains.knowledge import KnowledgeRepository
from .domains.registry import Scope
from .domains.releases import ReleaseRegistry
from .domains.runs import RunLedger
from .domains.work import WorkStore
from .errors import ConfigError, ValidationError
from .ports.blob import BlobPort
from .ports.engine import AppliedMigration, Engine, SchemaStatus
from .ports.table import TablePort
from .snapshot import (
    PAGE_SIZE,
    MoveSummary,
    ProgressCallback,
    StoreDigest,
    content_digest,
    copy_store,
    export_store,
    import_store,
)
from .url import redact

__all__ = ["Stateport", "copy", "open"]

Only = Scope | str | Iterable[str] | None
"""What a move or a digest covers: None for everything, domain names
(``["runs", "work"]`` or ``"runs,work"``), or a :class:`Scope`."""


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

    # ---- moving state ----------------------------------------------------

    async def digest(self, only: Only = None) -> StoreDigest:
        """The content digest of the store (of the domains ``only`` names): a SHA-256
        over every item (keys, attributes, version) in key order and every blob's
        digest, equal for equal content whatever the engine. Engine bookkeeping
        (schema tables, staged uploads) is not content. See
        :mod:`stateport.snapshot.records` for the exact definition."""
        return await content_digest(self, Scope.of(only))

    async def export_snapshot(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        only: Only = None,
        progress: ProgressCallback | None = None,
    ) -> MoveSummary:
        """Write the store (the domains ``only`` names) to a snapshot file: a path,
        written under ``<path>.partial`` and renamed when complete, or a binary
        file object. The format is documented in :mod:`stateport.snapshot.fileformat`;
        the same content always gives the same bytes."""
        return await export_store(self, file, Scope.of(only), progress=progress, name=str(self))

    async def import_snapshot(
        self,
        file: str | os.PathLike[str],
        *,
        resume: bool = False,
        progress: ProgressCallback | None = None,
    ) -> MoveSummary:
        """Load a snapshot file into this store.

        The whole file is checked before anything is written (a damaged or altered
        file raises :class:`IntegrityError`, an item the store cannot hold
        :class:`ValidationError`); a store that already holds something in the
        snapshot's scope is refused (:class:`Conflict`) unless ``resume``, which
        writes only what differs (so an interrupted import continues, and a
        repeated one changes nothing). Ends by checking the content digest.
        """
        return await import_store(self, file, resume=resume, progress=progress, name=str(self))

    def __str__(self) -> str:
        return redact(self.url)

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


async def copy(
    source: str | Stateport,
    target: str | Stateport,
    *,
    only: Only = None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    page_size: int = PAGE_SIZE,
) -> MoveSummary:
    """Copy every item and blob (of the domains ``only`` names) from one store to
    another, any engine to any engine, in bounded memory (``page_size`` items at
    a time: more is faster, fewer holds less).

    Items keep their versions, so every store built on them works on the target
    as it did on the source. A target that already holds something in scope is
    refused (:class:`Conflict`) unless ``resume``, which continues an interrupted
    copy by writing only what differs (a repeated copy changes nothing). The
    copy ends by comparing the content digests of both sides and raises
    :class:`IntegrityError` if they differ (e.g. the source was written to
    meanwhile). Stores given as URLs are opened (the source must exist) and
    closed; ``progress`` is called with a :class:`~stateport.snapshot.Progress`
    after each step.
    """
    scope = Scope.of(only)
    if isinstance(source, str) and isinstance(target, str) and source == target:
        raise ValidationError(f"the source and the target are the same store: {redact(source)}")
    if source is target:
        raise ValidationError("the source and the target are the same store")
    opened: list[Stateport] = []
    try:
        src = source if isinstance(source, Stateport) else await _open(source, False, False)
        if src is not source:
            opened.append(src)
        dst = target if isinstance(target, Stateport) else await _open(target, True, True)
        if dst is not target:
            opened.append(dst)
        return await copy_store(
            src,
            dst,
            scope,
            resume=resume,
            progress=progress,
            names=(str(src), str(dst)),
            page_size=page_size,
        )
    finally:
        for store in opened:
            await store.aclose()


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
