"""Guarded inserts: the shape of a transaction an SQL engine can run as one statement.

A transaction made of condition checks followed by one put whose only
condition is ``NotExists`` (the shape of a ledger append: the head is open,
the previous entry exists, the new one does not) can run as one
``INSERT ... SELECT ... WHERE <guards>`` statement: no read round trip, no
Python loop over the checks. This module recognises the shape and lays out the
guards; each backend says how a condition reads in its SQL (``Predicate``),
or that it cannot say it exactly (None: the transaction takes the general
path), and builds the statement around the guards.

The compiled SQL is an optimisation that must agree with
:func:`~stateport.ports.table.resolve`: a backend compiles a condition only
where its SQL compares exactly as ``resolve`` does. When the statement inserts
nothing (a guard failed) or the key exists, the backend runs the general path,
which raises the :class:`~stateport.errors.Conflict` naming the operation (or,
if the state changed meanwhile, simply applies the transaction); the fast
path never reports a failure itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..ports.table import Condition, NotExists, WriteOp

__all__ = ["EXACT_INT", "Guard", "Predicate", "guards_of", "inserts"]

EXACT_INT = 2**53
"""Integers below this (in magnitude) compare exactly in SQL as JSON numbers; a
condition on a larger one is not compiled."""

Predicate = Callable[[Condition], "tuple[bool, str, tuple[Any, ...]] | None"]
"""A backend's SQL for one condition on one row: ``(exists, fragment, params)``
— the row must exist (``EXISTS``) or be absent (``NOT EXISTS``), and, when it
exists, satisfy ``fragment`` (``" AND ..."`` or ``""``) with ``params``, in the
order the fragment's placeholders appear — or None when the backend cannot
say the condition exactly."""


Guard = tuple[str, str, bool, str, tuple[Any, ...]]
"""One compiled condition: ``(pk, sk, exists, fragment, params)`` of the row it
tests (a plain tuple: one is built per condition of every append)."""


def inserts(op: WriteOp) -> bool:
    """A put whose one condition is ``NotExists``: an ``INSERT`` the primary key refuses
    when the item exists."""
    return op.kind == "put" and len(op.conditions) == 1 and type(op.conditions[0]) is NotExists


def guards_of(ops: Sequence[WriteOp], predicate: Predicate) -> list[Guard] | None:
    """The guards of ``ops`` if they are checks followed by one inserting put
    (:func:`inserts`) and ``predicate`` compiles every condition; else None.

    The guards come in the order of the operations and of their conditions.
    """
    if not ops or not inserts(ops[-1]):
        return None
    out: list[Guard] = []
    for i in range(len(ops) - 1):
        op = ops[i]
        if op.kind != "check":
            return None
        for cond in op.conditions:
            compiled = predicate(cond)
            if compiled is None:
                return None
            out.append((op.pk, op.sk, *compiled))
    return out
