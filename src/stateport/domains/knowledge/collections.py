"""Collections: named groups of artifacts, unique by name.

A collection is its record plus an entry in the repository's name partition
(whose key makes the name unique and lists collections by name). Deleting a
collection that holds artifacts is refused unless asked to cascade; the
delete commits only if no mutation committed since it saw the collection
empty (:meth:`~.changes.ChangeFeed.commit`), so an artifact created meanwhile
is never orphaned.

A cascading delete first marks the collection as being deleted (artifact
creation checks the collection's version, so it takes no new artifacts from
then on), deletes its artifacts one transaction each (each recorded, with its
relationships), then the collection. If it is cut short, the collection stays
marked, and deleting it again with ``cascade=True`` finishes the work.
"""

from __future__ import annotations

from typing import Any, Final

from ..._retry import moved_on, retrying
from ...errors import Conflict, NotFound, ValidationError
from ...ports.table import (
    AttrEquals,
    Delete,
    Item,
    KeyRange,
    NotExists,
    Op,
    Put,
    Update,
    VersionEquals,
)
from ..work.models import check_name, check_text
from . import keys
from .artifacts import ArtifactOps
from .base import DELETING, collection_of
from .changes import change
from .models import ChangeKind, Collection, check_actor, check_id, check_metadata, new_id

__all__ = ["CollectionOps"]

_PAGE: Final = 100


class CollectionOps(ArtifactOps):
    """Creating, renaming, listing and deleting collections."""

    async def create_collection(
        self,
        name: str,
        *,
        description: str = "",
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> Collection:
        """A new, empty collection; :class:`Conflict` if the name is taken."""
        title = check_name(name, "name")
        text = check_text(description, "description", empty=True)
        meta = check_metadata(metadata, "metadata", portable=self._portable)
        who = check_actor(actor)
        cid = new_id("col")
        now = self._now()
        attrs: dict[str, Any] = {
            "name": title,
            "description": text,
            "metadata": meta,
            "created": now,
            "updated": now,
            "gsi1pk": keys.ALL_COLLECTIONS,
            "gsi1sk": title,
        }
        ops: list[Op] = [
            _name_entry(title, cid),
            Put(keys.partition(cid), keys.COLLECTION, attrs, NotExists()),
        ]
        record = change(
            ChangeKind.COLLECTION_CREATED,
            cid,
            at=now,
            actor=who,
            collection_id=cid,
            details={"name": title},
        )
        await self._feed.commit(
            [record], ops, refuse={keys.COLLECTION_NAME_TAG: lambda: _taken(title)}
        )
        return collection_of(Item(keys.partition(cid), keys.COLLECTION, attrs, 1))

    async def get_collection(self, collection_id: str) -> Collection:
        """The collection; :class:`NotFound` if there is none."""
        return collection_of(await self._collection_item(check_id(collection_id, "collection_id")))

    async def find_collection(self, name: str) -> Collection | None:
        """The collection named ``name``, or None."""
        entry = await self._table.get(keys.name_pk(check_name(name, "name")), keys.NAME_ENTRY)
        if entry is None:
            return None
        item = await self._table.get(keys.partition(entry.attrs["id"]), keys.COLLECTION)
        return None if item is None else collection_of(item)

    async def list_collections(self) -> list[Collection]:
        """Every collection, by name."""
        return [
            collection_of(i)
            async for i in self._table.query_all(keys.ALL_COLLECTIONS, index="gsi1")
        ]

    async def rename_collection(
        self, collection_id: str, name: str, *, actor: str | None = None
    ) -> Collection:
        """Give the collection a new name; :class:`Conflict` if that name is taken."""
        cid = check_id(collection_id, "collection_id")
        title = check_name(name, "name")
        who = check_actor(actor)

        async def attempt() -> Collection:
            item = await self._collection_item(cid)
            old = item.attrs["name"]
            if old == title:
                return collection_of(item)
            self._require_open(cid, item)
            now = self._now()
            ops: list[Op] = [
                Delete(keys.name_pk(old), keys.NAME_ENTRY, AttrEquals("id", cid)),
                _name_entry(title, cid),
                Update(
                    item.pk,
                    keys.COLLECTION,
                    {"name": title, "updated": now, "gsi1sk": title},
                    condition=VersionEquals(item.version),
                    tag=keys.COLLECTION_TAG,
                ),
            ]
            record = change(
                ChangeKind.COLLECTION_RENAMED,
                cid,
                at=now,
                actor=who,
                collection_id=cid,
                details={"old_name": old, "name": title},
            )
            await self._feed.commit(
                [record],
                ops,
                retry=(keys.COLLECTION_TAG,),
                refuse={keys.COLLECTION_NAME_TAG: lambda: _taken(title)},
            )
            renamed = {**item.attrs, "name": title, "updated": now, "gsi1sk": title}
            return collection_of(Item(item.pk, keys.COLLECTION, renamed, item.version + 1))

        return await retrying(attempt, what=f"collection {cid!r}")

    async def delete_collection(
        self, collection_id: str, *, cascade: bool = False, actor: str | None = None
    ) -> int:
        """Delete the collection; return how many artifacts were deleted with it.

        A collection that holds artifacts is refused (:class:`Conflict`) unless
        ``cascade``, which deletes them (and their relationships) first, every
        deletion recorded; see the module docstring.
        """
        cid = check_id(collection_id, "collection_id")
        if type(cascade) is not bool:
            raise ValidationError(f"cascade must be a bool, got {cascade!r}")
        who = check_actor(actor)
        deleted = 0
        if cascade:
            await self._mark_deleting(cid)
            pk = keys.partition(cid)
            while True:
                page = await self._table.query(pk, KeyRange.prefix(keys.NAME), limit=_PAGE)
                if not page.items:
                    break
                for entry in page.items:
                    try:
                        await self.delete_artifact(entry.attrs["id"], cascade=True, actor=who)
                    except NotFound:
                        continue  # deleted meanwhile by someone else
                    deleted += 1

        async def attempt() -> None:
            seen = await self._feed.last_seq()
            item = await self._collection_item(cid)
            held = await self._table.query(item.pk, KeyRange.prefix(keys.NAME), limit=1)
            if held.items:
                raise Conflict(
                    f"collection {cid!r} holds artifacts (the first by name: "
                    f"{held.items[0].sk.removeprefix(keys.NAME)!r}): delete them first, "
                    "or delete with cascade=True",
                    key=(item.pk, item.sk),
                    tag=keys.COLLECTION_TAG,
                )
            ops: list[Op] = [
                Delete(
                    item.pk, keys.COLLECTION, VersionEquals(item.version), tag=keys.COLLECTION_TAG
                ),
                Delete(keys.name_pk(item.attrs["name"]), keys.NAME_ENTRY, AttrEquals("id", cid)),
            ]
            record = change(
                ChangeKind.COLLECTION_DELETED,
                cid,
                at=self._now(),
                actor=who,
                collection_id=cid,
                details={"name": item.attrs["name"]},
            )
            await self._feed.commit([record], ops, after=seen, retry=(keys.COLLECTION_TAG,))

        await retrying(attempt, what=f"collection {cid!r}")
        return deleted

    async def _mark_deleting(self, cid: str) -> None:
        async def attempt() -> None:
            item = await self._collection_item(cid)
            if item.attrs.get("state") == DELETING:
                return
            with moved_on(keys.COLLECTION_TAG):
                await self._table.update(
                    item.pk,
                    keys.COLLECTION,
                    set={"state": DELETING},
                    condition=VersionEquals(item.version),
                    tag=keys.COLLECTION_TAG,
                )

        await retrying(attempt, what=f"collection {cid!r}")


def _taken(name: str) -> Conflict:
    return Conflict(
        f"a collection named {name!r} already exists",
        key=(keys.name_pk(name), keys.NAME_ENTRY),
        tag=keys.COLLECTION_NAME_TAG,
    )


def _name_entry(name: str, cid: str) -> Put:
    """The put that claims ``name`` for collection ``cid`` (refused if it is taken)."""
    return Put(
        keys.name_pk(name),
        keys.NAME_ENTRY,
        {"id": cid, "name": name},
        NotExists(),
        tag=keys.COLLECTION_NAME_TAG,
    )
