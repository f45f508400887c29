"""Guarded inserts compiled to one SQL statement.

A transaction made of condition checks and one put on ``NotExists`` (the shape
of a ledger append: the head is open, the previous entry exists, the new one
does not) can run as a single statement::

    INSERT INTO sp_items (pk, sk, version, attrs, ...)
    VALUES (?, ?, CASE WHEN <checks> THEN 1 END, ?, ...)

The version column is ``NOT NULL``: when a check fails, the ``CASE`` gives
NULL and the engine refuses the row, as it refuses a row whose key exists.
SQLite runs one statement as its own transaction, so it needs no
``BEGIN``/``COMMIT``, no read round trip and no Python loop over the checks.
(The form ``INSERT ... SELECT ... WHERE <checks>`` says the same, but because
its ``SELECT`` reads the table it inserts into, SQLite first copies the
result to a temporary table: that costs more than the checks themselves.)

The shape is recognised by :mod:`stateport.backends._guarded` (shared with the
PostgreSQL backend); this module gives SQLite's predicates and statement.
The checks are compiled only where SQL says exactly what :func:`resolve` says:
``Exists``, ``NotExists``, ``VersionEquals``, and ``AttrEquals`` on a bool,
``None``, a string, or a number that SQLite compares exactly. Anything else
returns no plan and takes the general path. When the statement is refused (a
check failed, or the key exists), the caller runs the general path, which
raises the :class:`~stateport.errors.Conflict` naming the operation (or, if
the state changed meanwhile, simply applies the transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ...ports.table import AttrEquals, Condition, Exists, NotExists, VersionEquals, WriteOp
from .._guarded import EXACT_INT, guards_of

__all__ = ["Plan", "compile_guarded_insert"]

_ROW: Final = "SELECT 1 FROM sp_items WHERE pk = ? AND sk = ?"

Plan = tuple[str, list[Any]]
"""The SQL text and its parameters."""

_sql_cache: dict[tuple[Any, ...], str] = {}


_paths: dict[str, str | None] = {}  # attribute name -> its JSON path (a bounded cache)
_EXISTS_SQL: Final = (True, "", ())
_ABSENT_SQL: Final = (False, "", ())
_IS_TRUE: Final = " AND json_type(attrs, ?) = 'true'"
_IS_FALSE: Final = " AND json_type(attrs, ?) = 'false'"
_IS_NULL: Final = " AND json_type(attrs, ?) = 'null'"
_TEXT: Final = " AND json_type(attrs, ?) = 'text' AND json_extract(attrs, ?) = ?"
_NUMBER: Final = " AND json_type(attrs, ?) IN ('integer', 'real') AND json_extract(attrs, ?) = ?"


def _json_path(name: str) -> str | None:
    path = _paths.get(name)
    if path is None and name not in _paths:
        path = None if '"' in name or "\\" in name else f'$."{name}"'
        if len(_paths) < 1024:
            _paths[name] = path
    return path


def _condition(cond: Condition) -> tuple[bool, str, tuple[Any, ...]] | None:
    """The SQLite predicate of ``cond`` on one row of sp_items (a :data:`~.._guarded.Predicate`)."""
    if type(cond) is Exists:
        return _EXISTS_SQL
    if type(cond) is NotExists:
        return _ABSENT_SQL
    if type(cond) is VersionEquals:
        return True, " AND version = ?", (cond.version,)
    if type(cond) is not AttrEquals:
        return None
    path = _json_path(cond.name)
    if path is None:
        return None
    v = cond.value
    if v is True:
        return True, _IS_TRUE, (path,)
    if v is False:
        return True, _IS_FALSE, (path,)
    if v is None:
        return True, _IS_NULL, (path,)
    if type(v) is str:
        return True, _TEXT, (path, path, v)
    if (type(v) is int and -EXACT_INT < v < EXACT_INT) or type(v) is float:
        return True, _NUMBER, (path, path, v)
    return None


def compile_guarded_insert(
    ops: Sequence[WriteOp], insert_head: str, index_values: tuple[Any, ...]
) -> Plan | None:
    """The one-statement form of ``ops``, or None if they do not have its shape.

    ``ops`` must be checks followed by exactly one put whose only condition is
    ``NotExists``, as the last operation (:func:`~.._guarded.guards_of`);
    ``insert_head`` is ``INSERT INTO sp_items (pk, sk, version, attrs, <index
    columns>)`` and ``index_values`` the put's index column values. Absent
    index values are written as ``NULL`` in the SQL text rather than bound.
    """
    guards = guards_of(ops, _condition)
    if guards is None:
        return None
    put = ops[-1]
    params: list[Any] = [put.pk, put.sk]
    shape: list[Any] = [insert_head]
    for pk, sk, exists, fragment, extra in guards:
        params += (pk, sk, *extra)
        shape += (exists, fragment)
    params.append(put.data)
    present: tuple[bool, ...] | int = len(index_values)  # the common case: no index keys
    if any(index_values):
        present = tuple(v is not None for v in index_values)
        params.extend(v for v in index_values if v is not None)
    shape.append(present)
    key = tuple(shape)
    sql = _sql_cache.get(key)
    if sql is None:
        checks = " AND ".join(
            f"EXISTS ({_ROW}{fragment})" if exists else f"NOT EXISTS ({_ROW})"
            for _, _, exists, fragment, _ in guards
        )
        version = f"CASE WHEN {checks} THEN 1 END" if checks else "1"
        flags = (False,) * present if isinstance(present, int) else present
        values = ", ".join(["?", "?", version, "?", *("?" if p else "NULL" for p in flags)])
        sql = f"{insert_head} VALUES ({values})"
        if len(_sql_cache) < 256:
            _sql_cache[key] = sql
    return sql, params
