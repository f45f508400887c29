"""Relationships: typed, directed links between two live artifacts.

A relationship is three items written in one transaction: its record (by id)
and a copy in each endpoint's partition (``o#<type>#...`` at the source,
``i#<type>#...`` at the target), so listing an artifact's relationships, in
either direction, is one strongly consistent range read, and the source copy's
key makes ``(source, type, target)`` unique. The transaction checks that both
endpoints are unchanged since they were read (so neither was deleted), and an
artifact's deletion commits only if no mutation, a new relationship included,
committed since it saw none (:meth:`~.changes.ChangeFeed.commit`): no
relationship is ever left pointing at nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ..._retry import retrying
from ...errors import Conflict, NotFound, ValidationError
from ...ports.table import Check, Delete, Exists, KeyRange, NotExists, Op, Put, VersionEquals
from . import keys
from .base import Base, relationship_of
from .changes import change
from .models import (
    ChangeKind,
    Direction,
    Neighbour,
    Relationship,
    check_actor,
    check_direction,
    check_id,
    check_metadata,
    check_type_name,
    new_id,
)

__all__ = ["MAX_DEPTH", "RelationshipOps"]

MAX_DEPTH: Final = 16
"""How many hops :meth:`RelationshipOps.traverse` may go."""
_UNBOUNDED_BATCH: Final = 500
_PER_RELATIONSHIP: Final = 4  # ops to delete one: its record, its two copies, its change


def _edge_sk(direction: str, a: dict[str, Any]) -> str:
    """The key of a relationship's copy at its source (``o#``) or target (``i#``)."""
    if direction == keys.OUT:
        return keys.edge_sk(keys.OUT, a["type"], a["target"])
    return keys.edge_sk(keys.IN, a["type"], a["source"])


def _record_key(rid: str) -> tuple[str, str]:
    """Where relationship ``rid`` is kept; :class:`NotFound` if it cannot be an id of one."""
    key = keys.relationship_key(rid)
    if key is None:
        raise NotFound(f"no relationship {rid!r}")
    return key


class RelationshipOps(Base):
    """Creating, deleting, listing and following relationships."""

    async def create_relationship(
        self,
        source_id: str,
        rel_type: str,
        target_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> Relationship:
        """Relate ``source_id`` to ``target_id`` by ``rel_type``; return the relationship.

        Both artifacts must exist (:class:`NotFound`); a second relationship of
        the same source, type and target is a :class:`Conflict`. An artifact may
        be related to itself.
        """
        src = check_id(source_id, "source_id")
        tgt = check_id(target_id, "target_id")
        kind = check_type_name(rel_type, "rel_type")
        meta = check_metadata(metadata, "metadata", portable=self._portable)
        who = check_actor(actor)
        rid = keys.artifact_id(src, new_id("rel"))  # kept in its source's partition
        record_pk, record_sk = _record_key(rid)

        async def attempt() -> Relationship:
            found = await self._live_artifacts([src, tgt])
            for aid in (src, tgt):
                if aid not in found:
                    raise NotFound(f"no artifact {aid!r}: both ends of a relationship must exist")
            now = self._now()
            attrs = {
                "id": rid,
                "source": src,
                "source_collection": found[src].attrs["collection"],
                "target": tgt,
                "type": kind,
                "metadata": meta,
                "created": now,
                "actor": who,
            }
            record = {
                **attrs,
                "gsi1pk": keys.rel_type_index(kind),
                "gsi1sk": f"{src}#{tgt}",
            }
            ops: list[Op] = [
                Put(
                    keys.partition(src),
                    _edge_sk(keys.OUT, attrs),
                    attrs,
                    NotExists(),
                    tag=keys.EDGE_TAG,
                ),
                Put(keys.partition(tgt), _edge_sk(keys.IN, attrs), attrs, NotExists()),
                Put(record_pk, record_sk, record, NotExists()),
                *(
                    Check(
                        found[a].pk,
                        keys.ARTIFACT,
                        VersionEquals(found[a].version),
                        tag=keys.ARTIFACT_TAG,
                    )
                    for a in dict.fromkeys((src, tgt))
                ),
            ]
            entry = change(
                ChangeKind.RELATIONSHIP_CREATED,
                rid,
                at=now,
                actor=who,
                collection_id=attrs["source_collection"],
                artifact_id=src,
                details={"source": src, "type": kind, "target": tgt},
                also=(src, tgt),
            )
            await self._feed.commit(
                [entry],
                ops,
                retry=(keys.ARTIFACT_TAG,),
                refuse={
                    keys.EDGE_TAG: lambda: Conflict(
                        f"artifact {src!r} is already related to {tgt!r} by {kind!r}",
                        tag=keys.EDGE_TAG,
                    )
                },
            )
            return relationship_of(attrs)

        return await retrying(attempt, what=f"the relationship {src!r} -{kind}-> {tgt!r}")

    async def get_relationship(self, relationship_id: str) -> Relationship:
        """The relationship; :class:`NotFound` if there is none (or it was deleted)."""
        rid = check_id(relationship_id, "relationship_id")
        item = await self._table.get(*_record_key(rid))
        if item is None:
            raise NotFound(f"no relationship {rid!r}")
        return relationship_of(item.attrs)

    async def delete_relationship(self, relationship_id: str, *, actor: str | None = None) -> None:
        """Delete the relationship (recorded as a change); :class:`NotFound` if there is none."""
        rid = check_id(relationship_id, "relationship_id")
        who = check_actor(actor)

        async def attempt() -> None:
            item = await self._table.get(*_record_key(rid))
            if item is None:
                raise NotFound(f"no relationship {rid!r}")
            await self._unlink([item.attrs], who)

        await retrying(attempt, what=f"relationship {rid!r}")

    async def list_relationships(
        self,
        artifact_id: str | None = None,
        *,
        direction: Direction | str = Direction.BOTH,
        rel_type: str | None = None,
    ) -> list[Relationship]:
        """Relationships of ``artifact_id`` (from it, to it, or both), or with no
        artifact, every relationship of ``rel_type``.

        Order: from the artifact by (type, target), then to it by (type,
        source); by type alone, by (source, target). An unknown artifact has none.
        """
        way = check_direction(direction)
        kind = None if rel_type is None else check_type_name(rel_type, "rel_type")
        if artifact_id is None:
            if kind is None:
                raise ValidationError("give an artifact_id, a rel_type, or both")
            return [
                relationship_of(i.attrs)
                async for i in self._table.query_all(keys.rel_type_index(kind), index="gsi1")
            ]
        aid = check_id(artifact_id, "artifact_id")
        return [rel for rel, _ in await self._edges(aid, way, None if kind is None else [kind])]

    async def traverse(
        self,
        artifact_id: str,
        *,
        depth: int = 1,
        rel_types: Sequence[str] | None = None,
        direction: Direction | str = Direction.OUT,
        limit: int = 1000,
    ) -> list[Neighbour]:
        """The artifacts within ``depth`` hops of ``artifact_id``, breadth first.

        Follows relationships of ``rel_types`` (all when None) in ``direction``;
        each artifact is reported once, at its smallest depth, with the
        relationship it was first reached through, so cycles end the walk. At
        most ``limit`` artifacts; the order is deterministic (by depth, then in
        the order of each artifact's relationships).
        """
        start = check_id(artifact_id, "artifact_id")
        if type(depth) is not int or not 1 <= depth <= MAX_DEPTH:
            raise ValidationError(f"depth must be an int from 1 to {MAX_DEPTH}, got {depth!r}")
        if type(limit) is not int or not 1 <= limit <= 10_000:
            raise ValidationError(f"limit must be an int from 1 to 10000, got {limit!r}")
        way = check_direction(direction)
        types: list[str] | None = None
        if rel_types is not None:
            if isinstance(rel_types, str) or not isinstance(rel_types, Sequence):
                raise ValidationError("rel_types must be a list of relationship types")
            types = sorted({check_type_name(t, "each of rel_types") for t in rel_types})
        seen = {start}
        frontier = [start]
        found: list[Neighbour] = []
        for level in range(1, depth + 1):
            reached: list[str] = []
            for node in frontier:
                for rel, other in await self._edges(node, way, types):
                    if other in seen:
                        continue
                    seen.add(other)
                    found.append(Neighbour(other, level, rel))
                    if len(found) == limit:
                        return found
                    reached.append(other)
            if not reached:
                break
            frontier = reached
        return found

    # ---- shared with artifact deletion ------------------------------------------

    async def _edges(
        self, aid: str, way: Direction, types: list[str] | None
    ) -> list[tuple[Relationship, str]]:
        """``aid``'s relationships in ``way`` (of ``types``) and the artifact at the other end."""
        out: list[tuple[Relationship, str]] = []
        seen: set[str] = set()
        sides = [(keys.OUT, "target"), (keys.IN, "source")]
        if way is Direction.OUT:
            sides = sides[:1]
        elif way is Direction.IN:
            sides = sides[1:]
        for prefix, other in sides:
            for start in [prefix] if types is None else [f"{prefix}{t}#" for t in types]:
                key_range = KeyRange.prefix(start)
                async for item in self._table.query_all(keys.partition(aid), key_range):
                    if item.attrs["id"] not in seen:  # a self-relationship is on both sides
                        seen.add(item.attrs["id"])
                        out.append((relationship_of(item.attrs), item.attrs[other]))
        return out

    def _unlink_batch(self) -> int:
        """How many relationships one transaction may delete (with their records)."""
        room = self._feed.room
        return _UNBOUNDED_BATCH if room is None else room // _PER_RELATIONSHIP

    async def _unlink_some(self, aid: str, actor: str | None) -> int:
        """Delete a batch of ``aid``'s relationships (both directions); return how many."""
        batch = self._unlink_batch()

        async def attempt() -> int:
            rels: dict[str, dict[str, Any]] = {}
            for prefix in (keys.OUT, keys.IN):
                page = await self._table.query(
                    keys.partition(aid), KeyRange.prefix(prefix), limit=batch
                )
                for item in page.items:
                    if len(rels) < batch:
                        rels.setdefault(item.attrs["id"], item.attrs)
            if rels:
                await self._unlink(list(rels.values()), actor)
            return len(rels)

        return await retrying(attempt, what=f"the relationships of artifact {aid!r}")

    async def _unlink(self, rels: list[dict[str, Any]], actor: str | None) -> None:
        """Delete ``rels`` and record it, in one transaction (one attempt: a
        concurrent change raises :class:`~stateport.primitives.Retry`)."""
        ops: list[Op] = []
        records: list[dict[str, Any]] = []
        now = self._now()
        for r in rels:
            src, tgt = r["source"], r["target"]
            ops.append(Delete(*_record_key(r["id"]), Exists(), tag=keys.EDGE_TAG))
            ops.append(
                Delete(keys.partition(src), _edge_sk(keys.OUT, r), Exists(), tag=keys.EDGE_TAG)
            )
            ops.append(
                Delete(keys.partition(tgt), _edge_sk(keys.IN, r), Exists(), tag=keys.EDGE_TAG)
            )
            records.append(
                change(
                    ChangeKind.RELATIONSHIP_DELETED,
                    r["id"],
                    at=now,
                    actor=actor,
                    collection_id=r["source_collection"],
                    artifact_id=src,
                    details={"source": src, "type": r["type"], "target": tgt},
                    also=(src, tgt),
                )
            )
        await self._feed.commit(records, ops, retry=(keys.EDGE_TAG,))

    async def _has_relationships(self, aid: str) -> bool:
        """Whether relationships point from or to ``aid``."""
        pk = keys.partition(aid)
        for prefix in (keys.OUT, keys.IN):
            if (await self._table.query(pk, KeyRange.prefix(prefix), limit=1)).items:
                return True
        return False
