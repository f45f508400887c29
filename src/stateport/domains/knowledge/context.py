"""Context packages: named sets of references to artifacts (optionally pinned to a
revision), relationships, operation runs and records of other systems.

A package is one item. Its internal references must resolve when it is
created (:class:`NotFound` otherwise); after that, deleting what one points
at does not touch the package: reading it reports the reference as dangling,
with the reason, and keeps it. External references are opaque: stored with
their provenance (source system, URI, time) and never dereferenced.
"""

from __future__ import annotations

from typing import Any

from ... import _time
from ...errors import Conflict, NotFound, ValidationError
from ...ports.table import Exists, Item, NotExists
from ...primitives.ledger import HEAD_SK
from ...primitives.listing import newest_first, order_key
from ..work.models import check_enum, check_name, check_text
from . import keys
from .base import Base
from .models import (
    MAX_REFERENCES,
    ContextPackage,
    ContextReference,
    DanglingReference,
    ReferenceKind,
    check_actor,
    check_id,
    check_limit,
    check_metadata,
    check_revision,
    new_id,
    time_of,
)

__all__ = ["ContextOps"]

Key = tuple[str, str]


class ContextOps(Base):
    """Creating, reading, listing and deleting context packages."""

    async def create_context_package(
        self,
        name: str,
        references: list[ContextReference],
        *,
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> ContextPackage:
        """A new package of ``references`` (in the order given)."""
        title = check_name(name, "name")
        if isinstance(references, (str, bytes)) or not isinstance(references, (list, tuple)):
            raise ValidationError("references must be a list of ContextReference")
        if len(references) > MAX_REFERENCES:
            raise ValidationError(f"a package holds at most {MAX_REFERENCES} references")
        stored = [self._check_reference(i, r) for i, r in enumerate(references)]
        meta = check_metadata(metadata, "metadata", portable=self._portable)
        who = check_actor(actor)
        dangling = await self._dangling(stored)
        if dangling:
            first = dangling[0]
            raise NotFound(f"reference {first.index}: {first.reason}")
        pid = new_id("ctx")
        now = self._now()
        attrs: dict[str, Any] = {
            "name": title,
            "references": stored,
            "metadata": meta,
            "actor": who,
            "created": now,
            "gsi1pk": keys.ALL_CONTEXTS,
            "gsi1sk": order_key(now, pid),
        }
        await self._table.put(keys.context_pk(pid), keys.PACKAGE, attrs, condition=NotExists())
        return _package(pid, attrs, ())

    async def get_context_package(self, package_id: str) -> ContextPackage:
        """The package, with the references whose target is gone listed in ``dangling``."""
        pid = check_id(package_id, "package_id")
        item = await self._table.get(keys.context_pk(pid), keys.PACKAGE)
        if item is None:
            raise NotFound(f"no context package {pid!r}")
        return _package(pid, item.attrs, await self._dangling(item.attrs["references"]))

    async def list_context_packages(
        self, *, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[ContextPackage], str | None]:
        """One page of packages, newest first (each with its dangling references), and
        the cursor of the next page."""
        items, next_cursor = await newest_first(
            self._table,
            "gsi1",
            keys.ALL_CONTEXTS,
            lambda item: item,
            limit=check_limit(limit),
            cursor=cursor,
        )
        packages = []
        for item in items:
            pid = item.pk.removeprefix("knowledge.ctx#")
            packages.append(
                _package(pid, item.attrs, await self._dangling(item.attrs["references"]))
            )
        return packages, next_cursor

    async def delete_context_package(self, package_id: str) -> None:
        """Delete the package (never what it refers to); :class:`NotFound` if absent."""
        pid = check_id(package_id, "package_id")
        try:
            await self._table.delete(keys.context_pk(pid), keys.PACKAGE, condition=Exists())
        except Conflict:
            raise NotFound(f"no context package {pid!r}") from None

    # ---- references ------------------------------------------------------------------

    def _check_reference(self, i: int, ref: Any) -> dict[str, Any]:
        where = f"reference {i}"
        if not isinstance(ref, ContextReference):
            raise ValidationError(f"{where} must be a ContextReference, got {type(ref).__name__}")
        kind = check_enum(ReferenceKind, ref.kind, f"{where}.kind")
        if kind is ReferenceKind.EXTERNAL:
            recorded = _time.now() if ref.recorded_at is None else ref.recorded_at
            return {
                "kind": kind.value,
                "target": check_text(ref.target, f"{where}.uri", limit=2048),
                "source": check_name(ref.source_system, f"{where}.source_system"),
                "recorded": _time.to_text(_time.check_datetime(recorded, f"{where}.recorded_at")),
                "metadata": check_metadata(
                    ref.metadata, f"{where}.metadata", portable=self._portable
                ),
            }
        if ref.source_system is not None or ref.recorded_at is not None or ref.metadata:
            raise ValidationError(
                f"{where}: only external references carry a source, time or metadata"
            )
        if ref.revision is not None and kind is not ReferenceKind.ARTIFACT:
            raise ValidationError(f"{where}: only an artifact reference is pinned to a revision")
        out: dict[str, Any] = {
            "kind": kind.value,
            "target": check_id(ref.target, f"{where}.target"),
        }
        if ref.revision is not None:
            out["revision"] = check_revision(ref.revision, f"{where}.revision")
        return out

    async def _dangling(self, refs: list[dict[str, Any]]) -> tuple[DanglingReference, ...]:
        """The references among ``refs`` (stored form) whose target is gone."""
        needed: dict[Key, Item | None] = {}
        for r in refs:
            for key in self._keys_of(r):
                needed[key] = None
        pinned = [
            (r["target"], r["revision"])
            for r in refs
            if r["kind"] == ReferenceKind.ARTIFACT and r.get("revision") is not None
        ]
        if not needed:
            return ()
        wanted = list(needed)
        for key, item in zip(wanted, await self._table.batch_get(wanted), strict=True):
            needed[key] = item
        revisions = await self._revisions(pinned) if pinned else {}
        found: list[DanglingReference] = []
        for i, r in enumerate(refs):
            reason = self._why_dangling(r, [needed[k] for k in self._keys_of(r)], revisions)
            if reason is not None:
                found.append(DanglingReference(i, _reference(r), reason))
        return tuple(found)

    def _keys_of(self, r: dict[str, Any]) -> list[Key]:
        kind, target = r["kind"], r["target"]
        if kind == ReferenceKind.ARTIFACT:
            return [(keys.partition(target), keys.ARTIFACT)]
        if kind == ReferenceKind.RELATIONSHIP:
            where = keys.relationship_key(target)
            return [] if where is None else [where]
        if kind == ReferenceKind.RUN:
            return [(self._runs.pk(target), HEAD_SK)]
        return []

    @staticmethod
    def _why_dangling(
        r: dict[str, Any], items: list[Item | None], revisions: dict[tuple[str, int], Any]
    ) -> str | None:
        kind, target = r["kind"], r["target"]
        if kind == ReferenceKind.ARTIFACT:
            record = items[0]
            if record is None:
                return f"no artifact {target!r}"
            if "deleted" in record.attrs:
                return f"artifact {target!r} was deleted"
            revision = r.get("revision")
            if revision is not None and (target, revision) not in revisions:
                return f"artifact {target!r} has no revision {revision}"
            return None
        if kind == ReferenceKind.RELATIONSHIP and (not items or items[0] is None):
            return f"relationship {target!r} does not exist (deleted, or never created)"
        if kind == ReferenceKind.RUN and items[0] is None:
            return f"no operation run {target!r}"
        return None


def _reference(r: dict[str, Any]) -> ContextReference:
    kind = ReferenceKind(r["kind"])
    if kind is ReferenceKind.EXTERNAL:
        return ContextReference(
            kind, r["target"], None, r["source"], time_of(r["recorded"]), r["metadata"]
        )
    return ContextReference(kind, r["target"], r.get("revision"))


def _package(
    pid: str, a: dict[str, Any], dangling: tuple[DanglingReference, ...]
) -> ContextPackage:
    return ContextPackage(
        id=pid,
        name=a["name"],
        references=tuple(_reference(r) for r in a["references"]),
        metadata=a["metadata"],
        actor=a["actor"],
        created_at=_time.from_text(a["created"]),
        dangling=dangling,
    )
