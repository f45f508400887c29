"""Queries over artifacts by type, content digest, metadata and relationship.

Each filter is one sorted stream of artifact ids (which start with their
collection's id; see :mod:`.keys`): the digest and type indexes of
artifact records, the metadata index entries, and an artifact's relationship
copies of one type. A query with several filters intersects their streams by
leapfrogging (each stream seeks the largest position any other one reached),
so it reads about as much as its most selective filter, never the whole
repository. A collection is a prefix of every stream. Results come in
position order, and the cursor is the last position returned.

Every candidate is checked against the artifact's current record before it
is returned, so an index that lags behind (DynamoDB's secondary indexes are
eventually consistent) can delay a result but never return a wrong one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import deque
from typing import Any, Final

from ... import _json
from ...digest import ContentDigest, DigestLike
from ...errors import ValidationError
from ...ports.table import Item, KeyRange, TablePort
from . import keys
from .base import Base, artifact_of
from .models import (
    ArtifactPage,
    Direction,
    check_direction,
    check_id,
    check_limit,
    check_type_name,
)

__all__ = ["QueryOps"]

_FETCH: Final = 100
_NEXT: Final = "\x01"  # appended to a position: the smallest position after it
_TOP: Final = "\U0010ffff"  # after every position (ids never hold it)


class _Stream:
    """The positions of one filter in order, fetched a page at a time."""

    def __init__(
        self, table: TablePort, pk: str, index: str | None, prefix: str, scope: str
    ) -> None:
        self._table = table
        self._pk = pk
        self._index = index
        self._prefix = prefix  # before the position in the sort key (edges: "o#<type>#")
        self._scope = scope  # every position starts with it ("<collection id>." or "")
        self._buffer: deque[str] = deque()
        self._exhausted_from: str | None = None  # positions >= this are all buffered

    def _position(self, item: Item) -> str:
        if self._index is None:
            return item.sk[len(self._prefix) :]
        return str(item.attrs[f"{self._index}sk"])

    async def seek(self, low: str) -> str | None:
        """The first position >= ``low`` (None if there is none). ``low`` never decreases."""
        low = max(low, self._scope)
        buffer = self._buffer
        while buffer and buffer[0] < low:
            buffer.popleft()
        if buffer:
            return buffer[0]
        if self._exhausted_from is not None and low >= self._exhausted_from:
            return None
        start, end = self._prefix + low, self._prefix + self._scope + _TOP
        page = await self._table.query(
            self._pk,
            KeyRange.between(start, end) if start else KeyRange.lte(end),
            index=self._index,
            limit=_FETCH,
        )
        buffer.extend(self._position(i) for i in page.items)
        if page.cursor is None:
            self._exhausted_from = low
        return buffer[0] if buffer else None


async def _intersect(streams: list[_Stream], low: str, want: int) -> tuple[list[str], bool]:
    """Up to ``want`` positions >= ``low`` present in every stream, and whether
    the streams are exhausted."""
    found: list[str] = []
    while len(found) < want:
        position = await streams[0].seek(low)
        if position is None:
            return found, True
        agreed = True
        for stream in streams[1:]:
            other = await stream.seek(position)
            if other is None:
                return found, True
            if other != position:
                low, agreed = other, False
                break
        if agreed:
            found.append(position)
            low = position + _NEXT
    return found, False


class QueryOps(Base):
    """:meth:`query_artifacts`."""

    async def query_artifacts(
        self,
        collection_id: str | None = None,
        *,
        artifact_type: str | None = None,
        digest: DigestLike | None = None,
        metadata: dict[str, Any] | None = None,
        related_to: str | None = None,
        rel_type: str | None = None,
        direction: Direction | str = Direction.OUT,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ArtifactPage:
        """Artifacts matching every filter given (AND), one page at a time.

        * ``artifact_type`` — of this type;
        * ``digest`` — whose current content has this SHA-256 digest;
        * ``metadata`` — whose metadata has each key equal to its value (each
          an indexed key: a string, number, boolean or null at the top level;
          see docs/decisions/0031-knowledge-change-feed-and-queries.md);
        * ``related_to`` with ``rel_type`` — related to that artifact by that
          type: the targets of its relationships (``direction="out"``) or
          their sources (``"in"``);
        * ``collection_id`` — only in this collection (not a filter on its own:
          use :meth:`list_artifacts`).

        Results are ordered by artifact id (so by collection first); a page may hold
        fewer than ``limit`` artifacts only when it is the last. Pass the cursor
        back with the same filters for the next page.
        """
        want = check_limit(limit)
        scope = "" if collection_id is None else check_id(collection_id, "collection_id") + "."
        streams: list[_Stream] = []
        shape: list[Any] = [scope]
        table = self._table
        if related_to is not None:
            other = check_id(related_to, "related_to")
            if rel_type is None:
                raise ValidationError("related_to needs a rel_type")
            kind = check_type_name(rel_type, "rel_type")
            way = check_direction(direction)
            if way is Direction.BOTH:
                raise ValidationError("direction must be 'out' or 'in' in a query")
            side = keys.OUT if way is Direction.OUT else keys.IN
            streams.append(_Stream(table, keys.partition(other), None, f"{side}{kind}#", scope))
            shape += ["related", other, kind, side]
        elif rel_type is not None:
            raise ValidationError("rel_type needs related_to (list_relationships lists by type)")
        if artifact_type is not None:
            kind = check_type_name(artifact_type, "artifact_type")
            streams.append(_Stream(table, keys.type_index(kind), "gsi2", "", scope))
            shape += ["type", kind]
        wanted_digest: str | None = None
        if digest is not None:
            wanted_digest = ContentDigest.of(digest).as_str()
            streams.append(_Stream(table, keys.digest_index(wanted_digest), "gsi1", "", scope))
            shape += ["digest", wanted_digest]
        equal: dict[str, Any] = {}
        if metadata is not None:
            if not isinstance(metadata, dict) or not metadata:
                raise ValidationError("metadata must be a non-empty dict of key: value")
            _json.check_json(metadata, portable=self._portable, where="metadata")
            index = keys.metadata_index(metadata)
            for key in sorted(metadata):
                if key not in index:
                    raise ValidationError(
                        f"metadata key {key!r} cannot be queried with {metadata[key]!r}: only "
                        "top-level strings, numbers, booleans and null are indexed, while "
                        f"[key, value] is at most {keys.MAX_INDEX_BYTES} bytes of JSON"
                    )
                streams.append(_Stream(table, index[key], "gsi1", "", scope))
                shape += ["meta", index[key]]
            equal = metadata
        if not streams:
            raise ValidationError(
                "give at least one filter (artifact_type, digest, metadata, related_to); "
                "list_artifacts lists a collection"
            )
        fingerprint = hashlib.sha256(_json.encode_bytes(shape)).hexdigest()[:16]
        low = scope if cursor is None else _decode(cursor, fingerprint) + _NEXT
        out: list[Any] = []
        last: str | None = None
        done = False
        while len(out) < want and not done:
            positions, done = await _intersect(streams, low, want - len(out))
            if not positions:
                break
            items = await self._live_artifacts(positions)
            for position in positions:
                item = items.get(position)
                if item is not None and _matches(item, artifact_type, wanted_digest, equal):
                    out.append(artifact_of(item))
            last = positions[-1]
            low = last + _NEXT
        next_cursor = None if done or last is None else _encode(last, fingerprint)
        return ArtifactPage(out, next_cursor)


def _matches(
    item: Item, artifact_type: str | None, digest: str | None, equal: dict[str, Any]
) -> bool:
    """Whether the artifact's current record satisfies the filters (an index may lag)."""
    a = item.attrs
    if artifact_type is not None and a["type"] != artifact_type:
        return False
    if digest is not None and a["digest"] != digest:
        return False
    meta = a["metadata"]
    return all(k in meta and _json.json_equal(meta[k], v) for k, v in equal.items())


def _encode(position: str, fingerprint: str) -> str:
    raw = _json.encode_bytes({"f": fingerprint, "p": position})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(cursor: Any, fingerprint: str) -> str:
    bad = ValidationError(
        "the cursor is malformed or belongs to another query: pass back the cursor of the "
        "previous page together with the same filters"
    )
    if type(cursor) is not str:
        raise bad
    try:
        obj = _json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        fp, position = obj["f"], obj["p"]
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise bad from e
    if fp != fingerprint or type(position) is not str or not position:
        raise bad
    return position
