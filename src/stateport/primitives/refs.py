"""Ref registries: named pointers with an append-only history.

Each name is a :class:`~stateport.primitives.ledger.Ledger` stream: every move
of the pointer appends an entry, numbered by the ledger's counter (so history
order never depends on clocks, which tie), and the head keeps the current
entry and its number so ``current`` is one read and names list from one index
query. Moves are optimistic: read the head, let the owner decide the next
entry, append it as exactly the next number; if another writer moved first,
decide again. No move is ever lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._retry import moved_on, retrying
from ..ports.table import TablePort
from .ledger import ENTRY_TAG, HEAD_TAG, PREV_TAG, Entry, Ledger

__all__ = ["Ref", "RefRegistry"]

Ref = Entry
"""One entry of a ref's history: its number (``seq``) and attributes."""


class RefRegistry:
    """The refs of one kind (``"release"``, ...) on a table port."""

    def __init__(self, table: TablePort, kind: str, *, noun: str = "ref") -> None:
        self.ledger = Ledger(table, kind, noun=noun)
        self.table = table
        self._names_pk = f"{kind}#names"

    async def current(self, name: str) -> Ref | None:
        """The entry the pointer is at, or None for an unknown name."""
        head = await self.ledger.head(name)
        if head is None:
            return None
        return Entry(head.attrs["seq"], head.attrs["current"])

    async def history(self, name: str, *, newest_first: bool = True) -> list[Ref]:
        """Every entry of the name's history (empty for an unknown name)."""
        entries = await self.ledger.entries(name)
        return entries[::-1] if newest_first else entries

    async def entry(self, name: str, seq: int) -> Ref | None:
        """Entry ``seq`` of the name's history."""
        return await self.ledger.entry(name, seq)

    async def names(self) -> list[tuple[str, Ref]]:
        """Every name with its current entry, in name order."""
        return [
            (item.attrs["name"], Entry(item.attrs["seq"], item.attrs["current"]))
            async for item in self.table.query_all(self._names_pk, index="gsi1")
        ]

    async def move(
        self, name: str, decide: Callable[[Ref | None], Awaitable[Mapping[str, Any]]]
    ) -> Ref:
        """Append the entry ``await decide(current)`` returns; return it.

        ``decide`` may raise to refuse the move; it runs again if another
        writer moved the pointer in the meantime.
        """
        ledger = self.ledger
        ledger.pk(name)  # validates the name

        async def attempt() -> Ref:
            current = await self.current(name)
            attrs = dict(await decide(current))
            seq = 1 if current is None else current.seq + 1
            head = {"current": attrs, "seq": seq}
            with moved_on(HEAD_TAG, PREV_TAG, ENTRY_TAG):  # someone moved it first
                if current is None:
                    index = {"name": name, "gsi1pk": self._names_pk, "gsi1sk": name}
                    await self.table.transact(
                        [
                            ledger.create_op(name, {**head, **index}),
                            ledger.entry_op(name, 1, attrs),
                        ]
                    )
                else:
                    await ledger.append(name, [attrs], first_seq=seq, head_set=head)
            return Entry(seq, attrs)

        return await retrying(attempt, what=f"{ledger.noun} {name!r}")
