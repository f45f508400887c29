"""The generic item API: ``get / put / delete / query`` by key and sort-key prefix.

Items are plain dicts carrying their key as ``"pk"`` and ``"sk"`` beside their
attributes. This is a thin layer on the table port; use ``sp.table`` for
conditions, transactions, indexes and paging.
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..ports.table import KeyRange, TablePort

__all__ = ["ItemStore"]


class ItemStore:
    """``sp.items``: dict items addressed by their ``pk`` and ``sk`` fields."""

    def __init__(self, table: TablePort) -> None:
        self._table = table

    async def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item stored under ``(pk, sk)``, or None."""
        item = await self._table.get(pk, sk)
        return None if item is None else item.to_dict()

    async def put(self, item: dict[str, Any]) -> None:
        """Create or replace ``item``; it must carry ``"pk"`` and ``"sk"`` strings."""
        if not isinstance(item, dict):
            raise ValidationError(
                f"an item is a dict with 'pk' and 'sk', got {type(item).__name__}"
            )
        missing = [k for k in ("pk", "sk") if k not in item]
        if missing:
            raise ValidationError(f"the item has no {' and '.join(missing)}: {sorted(item)[:8]}")
        attrs = {k: v for k, v in item.items() if k not in ("pk", "sk")}
        await self._table.put(item["pk"], item["sk"], attrs)

    async def delete(self, pk: str, sk: str) -> None:
        """Delete the item; a no-op if it does not exist."""
        await self._table.delete(pk, sk)

    async def query(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]:
        """Every item of partition ``pk`` whose ``sk`` starts with ``sk_prefix``, by ``sk``."""
        if type(sk_prefix) is not str:
            raise ValidationError(f"sk_prefix must be a str, got {type(sk_prefix).__name__}")
        return [
            item.to_dict() async for item in self._table.query_all(pk, KeyRange.prefix(sk_prefix))
        ]
