"""Newest-first listings of records through a secondary index.

Records that should list newest first carry, in one of the table's indexes, a
sort key ``"<created as stored text>#<id>"``: descending order is then newest
first, and records created at the same instant keep a fixed order (by id,
descending). A page's cursor is the sort key of its last record, so paging
keeps working when a filter drops records in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from .. import _time
from ..errors import ValidationError
from ..ports.table import Item, KeyRange, TablePort

__all__ = ["all_newest_first", "newest_first", "order_key"]

T = TypeVar("T")
_FETCH: Final = 200


def order_key(created_text: str, ident: str) -> str:
    """The index sort key of a record created at ``created_text`` (see :mod:`stateport._time`)."""
    return f"{created_text}#{ident}"


async def newest_first(
    table: TablePort,
    index: str,
    pk: str,
    convert: Callable[[Item], T | None],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """Up to ``limit`` records of index partition ``pk``, newest first, and the next cursor.

    ``convert`` turns an item into a record, or None to leave it out.
    """
    if type(limit) is not int or limit < 1:
        raise ValidationError(f"limit must be an int >= 1, got {limit!r}")
    if cursor is not None and (type(cursor) is not str or "#" not in cursor):
        raise ValidationError(f"not a cursor of this listing: {cursor!r}")
    if cursor is not None:
        try:
            _time.from_text(cursor.partition("#")[0])
        except ValueError:
            raise ValidationError(f"not a cursor of this listing: {cursor!r}") from None
    sk_attr = f"{index}sk"
    out: list[T] = []
    after = cursor
    while True:
        page = await table.query(
            pk,
            None if after is None else KeyRange.lt(after),
            index=index,
            descending=True,
            limit=min(limit + 1, _FETCH),
        )
        for item in page.items:
            record = convert(item)
            if record is not None:
                if len(out) == limit:
                    return out, after
                out.append(record)
            after = item.attrs[sk_attr]
        if page.cursor is None:
            return out, None


async def all_newest_first(
    table: TablePort, index: str, pk: str, convert: Callable[[Item], T | None]
) -> list[T]:
    """Every record of :func:`newest_first`, fetched page by page."""
    out: list[T] = []
    cursor: str | None = None
    while True:
        page, cursor = await newest_first(table, index, pk, convert, limit=500, cursor=cursor)
        out.extend(page)
        if cursor is None:
            return out
