"""Artifacts and their revisions.

An artifact's content goes to the blob store first (by SHA-256, so equal
content is stored once); then one transaction writes the artifact record, its
name and metadata index entries and the change record. Content stored by a
write that then fails stays in the blob store unreferenced, which costs space,
never correctness.

The artifact record holds the current revision; updating writes the revision
it replaces as a revision item (``r#<n>``) and the new one into the record,
conditioned on the record's version, so concurrent updates never lose one;
``expected_revision`` turns an update into a compare-and-set. Deleting leaves
the record as a tombstone and keeps the revision items (the history and every
revision's content stay readable), and removes the artifact from every name,
listing and query; reads of it answer :class:`NotFound`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ..._retry import retrying
from ...digest import ContentDigest
from ...errors import Conflict, NotFound, ValidationError
from ...ports.blob import BlobReader, BlobSource
from ...ports.table import (
    AttrEquals,
    Check,
    Delete,
    Exists,
    Item,
    KeyRange,
    NotExists,
    Op,
    Put,
    Update,
    VersionEquals,
)
from ...primitives.ledger import HEAD_SK
from ..work.models import check_name
from . import keys
from .base import artifact_of, revision_of
from .changes import change
from .models import (
    DEFAULT_MEDIA_TYPE,
    Artifact,
    ArtifactPage,
    ArtifactRevision,
    ChangeKind,
    Provenance,
    check_actor,
    check_id,
    check_limit,
    check_media_type,
    check_metadata,
    check_provenance,
    check_revision,
    check_type_name,
    new_id,
)
from .relationships import RelationshipOps

__all__ = ["ArtifactOps"]

_INDEX_ATTRS = ("gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
_NEW = NotExists()  # a fresh key: inserted without reading it first


def _check_content(content: Any) -> None:
    if isinstance(content, (bytes, bytearray, memoryview)):
        return
    if isinstance(content, str):
        raise ValidationError("content is bytes: encode the str first (e.g. text.encode())")
    if isinstance(content, Mapping) or not (
        hasattr(content, "read") or hasattr(content, "__iter__") or hasattr(content, "__aiter__")
    ):
        raise ValidationError(
            f"content must be bytes, a binary file or an iterable of bytes, "
            f"got {type(content).__name__}"
        )


class ArtifactOps(RelationshipOps):
    """Creating, reading, updating and deleting artifacts; their revisions and content."""

    async def create_artifact(
        self,
        collection_id: str,
        name: str,
        content: BlobSource,
        *,
        artifact_type: str,
        media_type: str = DEFAULT_MEDIA_TYPE,
        metadata: dict[str, Any] | None = None,
        provenance: Provenance | None = None,
        actor: str | None = None,
    ) -> Artifact:
        """Store ``content`` as a new artifact named ``name`` in the collection (revision 1).

        ``content`` is bytes, a binary file or an (async) iterable of bytes
        chunks (streamed in bounded memory). A name already used in the
        collection is a :class:`Conflict`; an unknown collection, or an unknown
        ``provenance.run_id``, is :class:`NotFound`. ``actor`` is recorded in the
        change record and, unless ``provenance`` names one, as its actor.
        """
        cid = check_id(collection_id, "collection_id")
        title = check_name(name, "name")
        kind = check_type_name(artifact_type, "artifact_type")
        media = check_media_type(media_type)
        meta = check_metadata(metadata, "metadata", portable=self._portable)
        index = _index_of(meta)
        who = check_actor(actor)
        prov = check_provenance(provenance, who)
        _check_content(content)
        col_pk = keys.partition(cid)
        prefetched, taken = await self._table.batch_get(
            [(col_pk, keys.COLLECTION), (col_pk, keys.name_sk(title))]
        )
        if prefetched is None:
            raise NotFound(f"no collection {cid!r}")
        self._require_open(cid, prefetched)
        if taken is not None:
            raise _duplicate(cid, title)
        run = prov["run"]
        if run is not None and await self._runs.head(run) is None:
            raise NotFound(f"no operation run {run!r}")
        digest, size = await self._store(content)
        aid = keys.artifact_id(cid, new_id("art"))
        pk = keys.partition(aid)
        first: Item | None = prefetched

        async def attempt() -> Artifact:
            nonlocal first
            col = first if first is not None else await self._collection_item(cid)
            first = None
            self._require_open(cid, col)
            now = self._now()
            attrs: dict[str, Any] = {
                "collection": cid,
                "name": title,
                "type": kind,
                "provenance": prov,
                "created": now,
                **_revision(1, digest, None, size, media, meta, now, who),
                "gsi1pk": keys.digest_index(digest),
                "gsi1sk": aid,
                "gsi2pk": keys.type_index(kind),
                "gsi2sk": aid,
            }
            ops: list[Op] = [
                # the collection is as seen (not renamed, not being deleted)
                Check(col_pk, keys.COLLECTION, VersionEquals(col.version), tag=keys.COLLECTION_TAG),
                Put(pk, keys.ARTIFACT, attrs, _NEW, tag=keys.ARTIFACT_TAG),
                Put(col_pk, keys.name_sk(title), {"id": aid}, _NEW, tag=keys.ARTIFACT_NAME_TAG),
                *_index_ops(pk, aid, {}, index),
            ]
            if run is not None:
                run_pk = self._runs.pk(run)
                ops.append(Check(run_pk, HEAD_SK, Exists(), tag=keys.RUN_TAG))
                ops.append(Put(run_pk, keys.OUTPUT + aid, {"collection": cid}, _NEW))
            record = change(
                ChangeKind.ARTIFACT_CREATED,
                aid,
                at=now,
                actor=who,
                collection_id=cid,
                artifact_id=aid,
                revision=1,
                new_digest=digest,
                details={"name": title, "type": kind},
            )
            await self._feed.commit(
                [record],
                ops,
                retry=(keys.COLLECTION_TAG,),
                refuse={
                    keys.ARTIFACT_NAME_TAG: lambda: _duplicate(cid, title),
                    keys.RUN_TAG: lambda: NotFound(f"no operation run {run!r}"),
                },
            )
            return artifact_of(Item(pk, keys.ARTIFACT, attrs, 1))

        return await retrying(attempt, what=f"collection {cid!r}")

    async def get_artifact(self, artifact_id: str) -> Artifact:
        """The artifact at its current revision; :class:`NotFound` if absent or deleted."""
        return artifact_of(await self._artifact_item(artifact_id))

    async def find_artifact(self, collection_id: str, name: str) -> Artifact | None:
        """The artifact named ``name`` in the collection, or None."""
        cid = check_id(collection_id, "collection_id")
        title = check_name(name, "name")
        entry = await self._table.get(keys.partition(cid), keys.name_sk(title))
        if entry is None:
            return None
        found = await self._artifacts_in_order([entry.attrs["id"]])
        return found[0] if found else None

    async def list_artifacts(
        self, collection_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ArtifactPage:
        """One page of the collection's artifacts, by name (empty for an unknown collection)."""
        cid = check_id(collection_id, "collection_id")
        page = await self._table.query(
            keys.partition(cid),
            KeyRange.prefix(keys.NAME),
            limit=check_limit(limit),
            cursor=cursor,
        )
        found = await self._artifacts_in_order([i.attrs["id"] for i in page.items])
        return ArtifactPage(found, page.cursor)

    async def update_artifact(
        self,
        artifact_id: str,
        *,
        content: BlobSource | None = None,
        metadata: dict[str, Any] | None = None,
        media_type: str | None = None,
        expected_revision: int | None = None,
        actor: str | None = None,
    ) -> Artifact:
        """Write the next revision: new ``content``, ``metadata`` (replacing the old
        as a whole) and/or ``media_type``; what is not given carries over.

        With ``expected_revision`` the update applies only if the artifact is
        still at that revision (:class:`Conflict` otherwise): a compare-and-set.
        """
        aid = check_id(artifact_id, "artifact_id")
        if content is None and metadata is None and media_type is None:
            raise ValidationError("nothing to update: give content, metadata or media_type")
        meta = (
            None
            if metadata is None
            else check_metadata(metadata, "metadata", portable=self._portable)
        )
        if meta is not None:
            _index_of(meta)
        media = None if media_type is None else check_media_type(media_type)
        expected = (
            None
            if expected_revision is None
            else check_revision(expected_revision, "expected_revision")
        )
        who = check_actor(actor)
        if content is not None:
            _check_content(content)
        current = await self._artifact_item(aid)
        _check_expected(aid, current, expected)  # before storing content that would be refused
        first: Item | None = current
        stored = None if content is None else await self._store(content)

        async def attempt() -> Artifact:
            nonlocal first
            item = first if first is not None else await self._artifact_item(aid)
            first = None
            _check_expected(aid, item, expected)
            a = item.attrs
            revision = a["revision"] + 1
            digest, size = stored if stored is not None else (a["digest"], a["size"])
            new_meta = a["metadata"] if meta is None else meta
            new_media = a["media_type"] if media is None else media
            now = self._now()
            changed = {
                **_revision(revision, digest, a["digest"], size, new_media, new_meta, now, who),
                "gsi1pk": keys.digest_index(digest),
            }
            ops: list[Op] = [
                Update(
                    item.pk,
                    keys.ARTIFACT,
                    changed,
                    condition=VersionEquals(item.version),
                    tag=keys.ARTIFACT_TAG,
                ),
                # the revision replaced, as it was (the record held it until now)
                Put(
                    item.pk,
                    keys.revision_sk(a["revision"]),
                    {k: a[k] for k in _REVISION_ATTRS},
                    _NEW,
                    tag=keys.ARTIFACT_TAG,
                ),
                *_index_ops(
                    item.pk,
                    aid,
                    keys.metadata_index(a["metadata"]),
                    keys.metadata_index(new_meta),
                ),
            ]
            record = change(
                ChangeKind.ARTIFACT_UPDATED,
                aid,
                at=now,
                actor=who,
                collection_id=a["collection"],
                artifact_id=aid,
                revision=revision,
                old_digest=a["digest"],
                new_digest=digest,
                details={"name": a["name"]},
            )
            await self._feed.commit([record], ops, retry=(keys.ARTIFACT_TAG,))
            return artifact_of(Item(item.pk, keys.ARTIFACT, {**a, **changed}, item.version + 1))

        return await retrying(attempt, what=f"artifact {aid!r}")

    async def delete_artifact(
        self, artifact_id: str, *, cascade: bool = False, actor: str | None = None
    ) -> None:
        """Delete the artifact (recorded as a change); :class:`NotFound` if absent.

        While relationships point from or to it the delete is refused
        (:class:`Conflict`) unless ``cascade``, which deletes them first, each
        recorded, in as few transactions as the engine allows. Its revisions
        stay readable through :meth:`list_revisions` and :meth:`read_content`.
        """
        aid = check_id(artifact_id, "artifact_id")
        if type(cascade) is not bool:
            raise ValidationError(f"cascade must be a bool, got {cascade!r}")
        who = check_actor(actor)
        while not await retrying(
            lambda: self._delete_once(aid, cascade, who), what=f"artifact {aid!r}"
        ):
            pass

    async def _delete_once(self, aid: str, cascade: bool, who: str | None) -> bool:
        """Delete the artifact, or (cascading) a batch of its relationships: True when
        the artifact is gone. The delete commits only if no mutation committed
        since the relationships were seen to be none (see :meth:`ChangeFeed.commit`)."""
        seen = await self._feed.last_seq()
        item = await self._artifact_item(aid)
        a = item.attrs
        related = await self._has_relationships(aid)
        if related:
            if not cascade:
                raise Conflict(
                    f"artifact {aid!r} has relationships (from or to it): delete them "
                    "first, or delete with cascade=True",
                    key=(item.pk, item.sk),
                    tag=keys.ARTIFACT_TAG,
                )
            await self._unlink_some(aid, who)
            return False
        cid = a["collection"]
        now = self._now()
        ops: list[Op] = [
            Update(
                item.pk,
                keys.ARTIFACT,
                {"deleted": now},
                remove=_INDEX_ATTRS,
                condition=VersionEquals(item.version),
                tag=keys.ARTIFACT_TAG,
            ),
            Delete(keys.partition(cid), keys.name_sk(a["name"]), AttrEquals("id", aid)),
            *_index_ops(item.pk, "", keys.metadata_index(a["metadata"]), {}),
        ]
        run = a["provenance"]["run"]
        if run is not None:
            ops.append(Delete(self._runs.pk(run), keys.OUTPUT + aid))
        record = change(
            ChangeKind.ARTIFACT_DELETED,
            aid,
            at=now,
            actor=who,
            collection_id=cid,
            artifact_id=aid,
            revision=a["revision"],
            old_digest=a["digest"],
            details={"name": a["name"], "type": a["type"]},
        )
        await self._feed.commit([record], ops, after=seen, retry=(keys.ARTIFACT_TAG,))
        return True

    # ---- revisions and content ---------------------------------------------------

    async def list_revisions(self, artifact_id: str) -> list[ArtifactRevision]:
        """Every revision of the artifact, oldest first (kept after it is deleted;
        empty for an unknown id)."""
        aid = check_id(artifact_id, "artifact_id")
        pk = keys.partition(aid)
        found = [
            revision_of(aid, i.attrs)
            async for i in self._table.query_all(pk, KeyRange.prefix(keys.REVISION))
        ]
        record = await self._table.get(pk, keys.ARTIFACT)
        if record is not None:
            found.append(revision_of(aid, record.attrs))  # the current one
        return found

    async def get_revision(self, artifact_id: str, revision: int) -> ArtifactRevision:
        """One revision; :class:`NotFound` if the artifact never had it."""
        aid = check_id(artifact_id, "artifact_id")
        rev = check_revision(revision, "revision")
        found = await self._revisions([(aid, rev)])
        if (aid, rev) not in found:
            raise NotFound(f"artifact {aid!r} has no revision {rev}")
        return revision_of(aid, found[(aid, rev)])

    async def read_content(self, artifact_id: str, revision: int | None = None) -> bytes:
        """The content of the current revision (or of ``revision``), verified."""
        return await self._blobs.get(await self._content_digest(artifact_id, revision))

    @asynccontextmanager
    async def open_content(
        self, artifact_id: str, revision: int | None = None
    ) -> AsyncIterator[BlobReader]:
        """Stream the content: ``async with repo.open_content(id) as r: async for chunk in r``."""
        digest = await self._content_digest(artifact_id, revision)
        async with self._blobs.open(digest) as reader:
            yield reader

    async def _content_digest(self, artifact_id: str, revision: int | None) -> ContentDigest:
        if revision is None:
            return artifact_of(await self._artifact_item(artifact_id)).digest
        return (await self.get_revision(artifact_id, revision)).digest

    async def _store(self, content: BlobSource) -> tuple[str, int]:
        """Put ``content`` in the blob store; its digest and size."""
        digest = await self._blobs.put(content)
        if isinstance(content, (bytes, bytearray, memoryview)):
            size = len(content) if not isinstance(content, memoryview) else content.nbytes
        else:
            size = await self._blobs.size(digest)
        return digest.as_str(), size


def _duplicate(cid: str, name: str) -> Conflict:
    return Conflict(
        f"collection {cid!r} already has an artifact named {name!r}",
        key=(keys.partition(cid), keys.name_sk(name)),
        tag=keys.ARTIFACT_NAME_TAG,
    )


def _check_expected(aid: str, item: Item, expected: int | None) -> None:
    current = item.attrs["revision"]
    if expected is not None and current != expected:
        raise Conflict(
            f"artifact {aid!r} is at revision {current}, not {expected}: "
            "read it again and decide on the newer revision",
            key=(item.pk, item.sk),
            condition=f"revision == {expected}",
            tag=keys.ARTIFACT_TAG,
        )


def _index_of(metadata: dict[str, Any]) -> dict[str, str]:
    index = keys.metadata_index(metadata)
    if len(index) > keys.MAX_INDEXED_KEYS:
        raise ValidationError(
            f"metadata has {len(index)} indexable keys; at most {keys.MAX_INDEXED_KEYS} are "
            "indexed per artifact: nest the rest under one key (nested values are stored, "
            "not indexed)"
        )
    return index


def _index_ops(pk: str, aid: str, old: dict[str, str], new: dict[str, str]) -> list[Op]:
    """The writes that move an artifact's metadata index entries from ``old`` to ``new``."""
    ops: list[Op] = [Delete(pk, keys.INDEXED + k) for k in old if k not in new]
    ops.extend(  # a key new to the artifact is inserted (no read), a changed one replaced
        Put(pk, keys.INDEXED + k, {"gsi1pk": ipk, "gsi1sk": aid}, None if k in old else _NEW)
        for k, ipk in new.items()
        if old.get(k) != ipk
    )
    return ops


_REVISION_ATTRS = (
    "revision",
    "digest",
    "old",
    "size",
    "media_type",
    "metadata",
    "updated",
    "actor",
)
"""What describes a revision: kept in the artifact record for the current one, and
in a revision item for each one it replaced."""


def _revision(
    revision: int,
    digest: str,
    old: str | None,
    size: int,
    media: str,
    metadata: dict[str, Any],
    now: str,
    actor: str | None,
) -> dict[str, Any]:
    return {
        "revision": revision,
        "digest": digest,
        "old": old,
        "size": size,
        "media_type": media,
        "metadata": metadata,
        "updated": now,
        "actor": actor,
    }
