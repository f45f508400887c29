"""SQL that both SQL backends share, written once with the backend's placeholders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ports.table import Query, prefix_upper_bound

__all__ = ["count_scan", "select_items", "select_scan"]


def select_items(query: Query, source: str, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The ``SELECT pk, sk, version, attrs`` of ``query`` and its parameters.

    ``source`` is what to select from (the items table, with an index hint if the
    engine wants one); ``mark(n)`` is the placeholder of the n-th parameter
    (``?`` or ``$n``). Rows come in the port's order: by sort key, or by index
    sort key then ``pk`` and ``sk``, reversed when descending.
    """
    ix = query.index
    order = "DESC" if query.descending else "ASC"
    args, arg = _args(mark)

    if ix is None:
        key, position = "sk", "sk"
        where = [f"pk = {arg(query.pk)}"]
        order_by = f"sk {order}"
    else:
        key, position = ix.sk_attr, f"{ix.sk_attr}, pk, sk"
        where = [f"{ix.pk_attr} = {arg(query.pk)}"]
        order_by = f"{ix.sk_attr} {order}, pk {order}, sk {order}"
    if query.low is not None:
        where.append(f"{key} {'>=' if query.low_inclusive else '>'} {arg(query.low)}")
    if query.high is not None:
        where.append(f"{key} {'<=' if query.high_inclusive else '<'} {arg(query.high)}")
    if query.after is not None:
        marks = ", ".join(arg(v) for v in query.after)
        where.append(f"({position}) {'<' if query.descending else '>'} ({marks})")
    sql = f"SELECT pk, sk, version, attrs FROM {source} WHERE {' AND '.join(where)} "
    sql += f"ORDER BY {order_by}"
    if query.fetch is not None:
        sql += f" LIMIT {arg(query.fetch)}"
    return sql, args


def _scan_where(
    prefix: str, after: tuple[str, str] | None, arg: Callable[[Any], str]
) -> list[str]:
    where = []
    if after is not None:  # the lower bound: a position past the prefix's start
        where.append(f"(pk, sk) > ({arg(after[0])}, {arg(after[1])})")
    elif prefix:
        where.append(f"pk >= {arg(prefix)}")
    if prefix:
        # (SQLite uses the primary key for a row value and an upper bound, but for a
        # row value beside "pk >= ?" only for the latter: it would read each page
        # from the start of the prefix)
        high = prefix_upper_bound(prefix)
        if high is not None:
            where.append(f"pk < {arg(high)}")
    return where


def _args(mark: Callable[[int], str]) -> tuple[list[Any], Callable[[Any], str]]:
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return mark(len(args))

    return args, arg


def select_scan(
    prefix: str, after: tuple[str, str] | None, fetch: int, table: str, mark: Callable[[int], str]
) -> tuple[str, list[Any]]:
    """The ``SELECT pk, sk, version, attrs`` of one page of a scan, in ``(pk, sk)``
    order: partitions starting with ``prefix``, strictly after ``after``."""
    args, arg = _args(mark)
    where = _scan_where(prefix, after, arg)
    sql = f"SELECT pk, sk, version, attrs FROM {table}"
    if where:
        sql += f" WHERE {' AND '.join(where)}"
    return f"{sql} ORDER BY pk, sk LIMIT {arg(fetch)}", args


def count_scan(prefix: str, table: str, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The ``SELECT count(*)`` of the items a scan of ``prefix`` returns."""
    args, arg = _args(mark)
    where = _scan_where(prefix, None, arg)
    sql = f"SELECT count(*) FROM {table}"
    return (f"{sql} WHERE {' AND '.join(where)}" if where else sql), args
