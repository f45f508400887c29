"""Guarded inserts compiled to one SQL statement.

A transaction made of condition checks and one put on ``NotExists`` (the shape
of a ledger append: the head is open, the previous entry exists, the new one
does not) can run as a single ``INSERT ... SELECT ... WHERE <checks>``
statement. SQLite runs one statement as its own transaction, so it needs no
``BEGIN``/``COMMIT``, no read round trip and no Python loop over the checks.

The shape is recognised by :mod:`stateport.backends._guarded` (shared with the
PostgreSQL backend); this module gives SQLite's predicates and statement.
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
from .._guarded import EXACT_INT, guards_of

__all__ = ["Plan", "compile_guarded_insert"]

_ROW: Final = "SELECT 1 FROM sp_items WHERE pk = ? AND sk = ?"

Plan = tuple[str, tuple[Any, ...]]
"""The SQL text and its parameters."""

_sql_cache: dict[tuple[Any, ...], str] = {}


def _json_path(name: str) -> str | None:
    if '"' in name or "\\" in name:
        return None
    return f'$."{name}"'


def _condition(cond: Condition) -> tuple[bool, str, tuple[Any, ...]] | None:
    """The SQLite predicate of ``cond`` on one row of sp_items (a :data:`~.._guarded.Predicate`)."""
    if type(cond) is NotExists:
        return False, "", ()
    if type(cond) is Exists:
        return True, "", ()
    if type(cond) is VersionEquals:
        return True, " AND version = ?", (cond.version,)
    if type(cond) is not AttrEquals:
        return None
    path = _json_path(cond.name)
    if path is None:
        return None
    v = cond.value
    if v is True:
        return True, " AND json_type(attrs, ?) = 'true'", (path,)
    if v is False:
        return True, " AND json_type(attrs, ?) = 'false'", (path,)
    if v is None:
        return True, " AND json_type(attrs, ?) = 'null'", (path,)
    if type(v) is str:
        return (
            True,
            " AND json_type(attrs, ?) = 'text' AND json_extract(attrs, ?) = ?",
            (path, path, v),
        )
    if (type(v) is int and -EXACT_INT < v < EXACT_INT) or type(v) is float:
        return (
            True,
            " AND json_type(attrs, ?) IN ('integer', 'real') AND json_extract(attrs, ?) = ?",
            (path, path, v),
        )
    return None


def compile_guarded_insert(
    ops: Sequence[WriteOp], insert_head: str, row: tuple[Any, ...]
) -> Plan | None:
    """The one-statement form of ``ops``, or None if they do not have its shape.

    ``ops`` must be checks followed by exactly one put whose only condition is
    ``NotExists``, as the last operation (:func:`~.._guarded.guards_of`);
    ``insert_head`` is ``INSERT INTO sp_items (columns)`` and ``row`` the put's
    column values.
    """
    guards = guards_of(ops, _condition)
    if guards is None:
        return None
    params: list[Any] = list(row)
    shape: list[Any] = [insert_head, len(row)]
    for pk, sk, exists, fragment, extra in guards:
        params.append(pk)
        params.append(sk)
        params.extend(extra)
        shape.append(exists)
        shape.append(fragment)
    key = tuple(shape)
    sql = _sql_cache.get(key)
    if sql is None:
        where = " AND ".join(
            f"EXISTS ({_ROW}{fragment})" if exists else f"NOT EXISTS ({_ROW})"
            for _, _, exists, fragment, _ in guards
        )
        marks = ", ".join("?" * len(row))
        sql = f"{insert_head} SELECT {marks}{f' WHERE {where}' if where else ''}"
        if len(_sql_cache) < 256:
            _sql_cache[key] = sql
    return sql, tuple(params)
