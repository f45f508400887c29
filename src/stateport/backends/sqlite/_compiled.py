"""Guarded inserts compiled to one SQL statement.

A transaction made of condition checks and one put on ``NotExists`` (the shape
of a ledger append: the head is open, the previous entry exists, the new one
does not) can run as a single ``INSERT ... SELECT ... WHERE <checks>``
statement. SQLite runs one statement as its own transaction, so it needs no
``BEGIN``/``COMMIT``, no read round trip and no Python loop over the checks.

The checks are compiled only where SQL says exactly what :func:`resolve` says:
``Exists``, ``NotExists``, ``VersionEquals``, and ``AttrEquals`` on a bool,
``None``, a string, or a number that SQLite compares exactly. Anything else
returns no plan and takes the general path. When the statement inserts
nothing (a check failed) or the key exists, the caller runs the general path,
which raises the :class:`~stateport.errors.Conflict` naming the operation
(or, if the state changed meanwhile, simply applies the transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ...ports.table import AttrEquals, Condition, Exists, NotExists, VersionEquals, WriteOp

__all__ = ["Plan", "compile_guarded_insert"]

_EXACT_INT: Final = 2**53  # integers SQLite's JSON functions and comparisons keep exact
_ROW: Final = "SELECT 1 FROM sp_items WHERE pk = ? AND sk = ?"

Plan = tuple[str, tuple[Any, ...]]
"""The SQL text and its parameters."""

_sql_cache: dict[tuple[Any, ...], str] = {}


def _json_path(name: str) -> str | None:
    if '"' in name or "\\" in name:
        return None
    return f'$."{name}"'


def _condition(cond: Condition) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL predicate (on one row of sp_items) and its parameters, or None."""
    if type(cond) is Exists:
        return "", ()
    if type(cond) is VersionEquals:
        return " AND version = ?", (cond.version,)
    if type(cond) is not AttrEquals:
        return None
    path = _json_path(cond.name)
    if path is None:
        return None
    v = cond.value
    if v is True:
        return " AND json_type(attrs, ?) = 'true'", (path,)
    if v is False:
        return " AND json_type(attrs, ?) = 'false'", (path,)
    if v is None:
        return " AND json_type(attrs, ?) = 'null'", (path,)
    if type(v) is str:
        return " AND json_type(attrs, ?) = 'text' AND json_extract(attrs, ?) = ?", (path, path, v)
    if (type(v) is int and -_EXACT_INT < v < _EXACT_INT) or type(v) is float:
        return (
            " AND json_type(attrs, ?) IN ('integer', 'real') AND json_extract(attrs, ?) = ?",
            (path, path, v),
        )
    return None


def compile_guarded_insert(
    ops: Sequence[WriteOp], insert_head: str, row: tuple[Any, ...]
) -> Plan | None:
    """The one-statement form of ``ops``, or None if they do not have its shape.

    ``ops`` must be checks followed by exactly one put whose only condition is
    ``NotExists``, as the last operation; ``insert_head`` is ``INSERT INTO
    sp_items (columns)`` and ``row`` the put's column values.
    """
    *checks, put = ops
    if put.kind != "put" or len(put.conditions) != 1 or type(put.conditions[0]) is not NotExists:
        return None
    shape: list[Any] = []
    params: list[Any] = list(row)
    for op in checks:
        if op.kind != "check":
            return None
        for cond in op.conditions:
            if type(cond) is NotExists:
                shape.append("absent")
                params.extend((op.pk, op.sk))
                continue
            compiled = _condition(cond)
            if compiled is None:
                return None
            predicate, extra = compiled
            shape.append(predicate)
            params.extend((op.pk, op.sk, *extra))
    key = (insert_head, len(row), *shape)
    sql = _sql_cache.get(key)
    if sql is None:
        guards = [f"NOT EXISTS ({_ROW})" if s == "absent" else f"EXISTS ({_ROW}{s})" for s in shape]
        marks = ", ".join("?" * len(row))
        where = f" WHERE {' AND '.join(guards)}" if guards else ""
        sql = f"{insert_head} SELECT {marks}{where}"
        if len(_sql_cache) < 256:
            _sql_cache[key] = sql
    return sql, tuple(params)
