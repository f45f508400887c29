"""What every part of the repository shares: the ports, the change feed, the run
ledger, and turning stored items into records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from ... import _time
from ...digest import ContentDigest
from ...errors import Conflict, NotFound
from ...ports.blob import BlobPort
from ...ports.table import Item, TablePort
from ...primitives.ledger import Ledger
from . import keys
from .changes import ChangeFeed
from .models import (
    Artifact,
    ArtifactRevision,
    Collection,
    Relationship,
    check_id,
    provenance_of,
)

__all__ = ["Base", "artifact_of", "collection_of", "relationship_of", "revision_of"]

DELETING: Final = "deleting"


class Base:
    """The state of one repository; the parts (collections, artifacts, ...) extend it."""

    def __init__(self, table: TablePort, blobs: BlobPort) -> None:
        self._table = table
        self._blobs = blobs
        self._portable = table.capabilities.portable
        self._feed = ChangeFeed(table)
        self._runs = Ledger(table, keys.RUN_KIND, noun="operation run")

    @staticmethod
    def _now() -> str:
        return _time.to_text(_time.now())

    # ---- collections ----------------------------------------------------------

    async def _collection_item(self, cid: str) -> Item:
        """The collection's stored item; :class:`NotFound` if there is none."""
        item = await self._table.get(keys.partition(cid), keys.COLLECTION)
        if item is None:
            raise NotFound(f"no collection {cid!r}")
        return item

    @staticmethod
    def _require_open(cid: str, item: Item) -> None:
        if item.attrs.get("state") == DELETING:
            raise Conflict(
                f"collection {cid!r} is being deleted: it takes no new artifacts "
                "(run delete_collection(..., cascade=True) again if it was cut short)",
                tag=keys.COLLECTION_TAG,
            )

    # ---- artifacts -------------------------------------------------------------

    async def _artifact_item(self, aid: str) -> Item:
        """The artifact's stored item; :class:`NotFound` if absent or deleted."""
        item = await self._table.get(keys.partition(check_id(aid, "artifact_id")), keys.ARTIFACT)
        if item is None or "deleted" in item.attrs:
            raise NotFound(f"no artifact {aid!r}")
        return item

    async def _live_artifacts(self, aids: Iterable[str]) -> dict[str, Item]:
        """The stored items of those of ``aids`` that exist and are not deleted."""
        wanted = list(dict.fromkeys(aids))
        items = await self._table.batch_get([(keys.partition(a), keys.ARTIFACT) for a in wanted])
        return {
            a: i
            for a, i in zip(wanted, items, strict=True)
            if i is not None and "deleted" not in i.attrs
        }

    async def _artifacts_in_order(self, aids: list[str]) -> list[Artifact]:
        """The artifacts of ``aids`` in that order, leaving out any that are gone."""
        found = await self._live_artifacts(aids)
        return [artifact_of(found[a]) for a in aids if a in found]

    async def _revisions(
        self, refs: list[tuple[str, int]]
    ) -> dict[tuple[str, int], dict[str, Any]]:
        """The stored attributes of those revisions ``(artifact id, n)`` that exist:
        a revision item, or the artifact record for its current revision."""
        wanted = list(dict.fromkeys(refs))
        needed = [
            key
            for a, r in wanted
            for key in (
                (keys.partition(a), keys.ARTIFACT),
                (keys.partition(a), keys.revision_sk(r)),
            )
        ]
        items = await self._table.batch_get(list(dict.fromkeys(needed)))
        by_key = {(i.pk, i.sk): i.attrs for i in items if i is not None}
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for a, r in wanted:
            pk = keys.partition(a)
            old = by_key.get((pk, keys.revision_sk(r)))
            record = by_key.get((pk, keys.ARTIFACT))
            if old is not None:
                out[(a, r)] = old
            elif record is not None and record["revision"] == r:
                out[(a, r)] = record
        return out


# --------------------------------------------------------------------------- records


def collection_of(item: Item) -> Collection:
    a = item.attrs
    return Collection(
        id=keys.id_of(item.pk),
        name=a["name"],
        description=a["description"],
        metadata=a["metadata"],
        created_at=_time.from_text(a["created"]),
        updated_at=_time.from_text(a["updated"]),
    )


def artifact_of(item: Item) -> Artifact:
    a = item.attrs
    return Artifact(
        id=keys.id_of(item.pk),
        collection_id=a["collection"],
        name=a["name"],
        artifact_type=a["type"],
        revision=a["revision"],
        digest=ContentDigest._trusted(a["digest"]),
        size=a["size"],
        media_type=a["media_type"],
        metadata=a["metadata"],
        provenance=provenance_of(a["provenance"]),
        created_at=_time.from_text(a["created"]),
        updated_at=_time.from_text(a["updated"]),
    )


def revision_of(aid: str, a: dict[str, Any]) -> ArtifactRevision:
    """A revision from a revision item, or from the artifact record (its current one)."""
    old = a["old"]
    return ArtifactRevision(
        artifact_id=aid,
        revision=a["revision"],
        digest=ContentDigest._trusted(a["digest"]),
        old_digest=None if old is None else ContentDigest._trusted(old),
        size=a["size"],
        media_type=a["media_type"],
        metadata=a["metadata"],
        created_at=_time.from_text(a["updated"]),
        actor=a["actor"],
    )


def relationship_of(a: dict[str, Any]) -> Relationship:
    return Relationship(
        id=a["id"],
        source_id=a["source"],
        rel_type=a["type"],
        target_id=a["target"],
        metadata=a["metadata"],
        created_at=_time.from_text(a["created"]),
        actor=a["actor"],
    )
