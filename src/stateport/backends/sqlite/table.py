"""The table port on SQLite: one row per item in ``sp_items``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ... import _json
from ...errors import ConfigError
from ...ports.table import (
    DEFAULT_INDEXES,
    IndexSpec,
    Item,
    Limits,
    Query,
    TablePort,
    WriteOp,
    resolve,
)
from ._executor import Executor

_PAGE = 4096  # each operation touches at least a page

# SQLite's default SQLITE_MAX_LENGTH: the longest value a row can hold.
SQLITE_LIMITS = Limits(1_000_000_000, None, None, None, None)


class SqliteTablePort(TablePort):
    """Items as rows; conditions checked in the same ``BEGIN IMMEDIATE`` transaction."""

    def __init__(
        self,
        executor: Executor,
        *,
        portable: bool = True,
        indexes: Sequence[IndexSpec] = DEFAULT_INDEXES,
    ) -> None:
        if tuple(indexes) != DEFAULT_INDEXES:
            raise ConfigError(
                "the SQLite backend provides exactly the default indexes "
                f"{[ix.name for ix in DEFAULT_INDEXES]}"
            )
        super().__init__(limits=SQLITE_LIMITS, portable=portable, indexes=indexes)
        self._x = executor
        cols = [c for ix in self.indexes for c in (ix.pk_attr, ix.sk_attr)]
        names = ", ".join(["pk", "sk", "version", "attrs", *cols])
        marks = ", ".join("?" * (4 + len(cols)))
        refresh = ", ".join(f"{c} = excluded.{c}" for c in ["attrs", *cols])
        self._sql_bump = (
            f"INSERT INTO sp_items ({names}) VALUES ({marks}) ON CONFLICT (pk, sk) DO UPDATE "
            f"SET version = sp_items.version + 1, {refresh} RETURNING version"
        )
        self._sql_bump_many = self._sql_bump.removesuffix(" RETURNING version")
        self._sql_store = (
            f"INSERT INTO sp_items ({names}) VALUES ({marks}) ON CONFLICT (pk, sk) DO UPDATE "
            f"SET version = excluded.version, {refresh}"
        )
        self._no_index = (None,) * len(cols)

    def _columns(self, index_keys: tuple[tuple[str, str] | None, ...]) -> tuple[Any, ...]:
        if not any(index_keys):
            return self._no_index
        out: list[Any] = []
        for ik in index_keys:
            out.extend(ik if ik is not None else (None, None))
        return tuple(out)

    @staticmethod
    def _load(conn: sqlite3.Connection, pk: str, sk: str) -> Item | None:
        row = conn.execute(
            "SELECT attrs, version FROM sp_items WHERE pk = ? AND sk = ?", (pk, sk)
        ).fetchone()
        return None if row is None else Item(pk, sk, _json.decode(row[0]), row[1])

    async def _read(self, keys: Sequence[tuple[str, str]]) -> list[Item | None]:
        load = self._load

        def work(conn: sqlite3.Connection) -> list[Item | None]:
            return [load(conn, pk, sk) for pk, sk in keys]

        return await self._x.run(work, write=False, single=len(keys) == 1)

    async def _write(self, ops: Sequence[WriteOp], *, returning: bool) -> list[Item | None]:
        load, columns, store = self._load, self._columns, self._sql_store
        bump, bump_many = self._sql_bump, self._sql_bump_many

        def work(conn: sqlite3.Connection) -> list[Item | None]:
            results: list[Item | None] = []
            blind: list[tuple[Any, ...]] = []  # unconditional puts: no read needed
            for i, op in enumerate(ops):
                if op.kind == "put" and not op.conditions:
                    params = (op.pk, op.sk, 1, op.data, *columns(op.index_keys))
                    if not returning:
                        blind.append(params)  # keys are distinct: order does not matter
                        continue
                    version = conn.execute(bump, params).fetchone()[0]
                    assert op.attrs is not None
                    results.append(Item(op.pk, op.sk, op.attrs, version))
                    continue
                out = resolve(self, i, op, load(conn, op.pk, op.sk))
                if out.write:
                    if out.item is None:
                        conn.execute("DELETE FROM sp_items WHERE pk = ? AND sk = ?", (op.pk, op.sk))
                    else:
                        conn.execute(
                            store,
                            (op.pk, op.sk, out.item.version, out.data, *columns(out.index_keys)),
                        )
                if returning:
                    results.append(out.item)
            if blind:
                conn.executemany(bump_many, blind)
            return results

        single = len(ops) == 1 and ops[0].kind == "put" and not ops[0].conditions
        size = sum(_PAGE + len(op.data or "") for op in ops)
        return await self._x.run(work, write=True, single=single, size=size)

    async def _query(self, query: Query) -> list[Item]:
        ix = query.index
        order = "DESC" if query.descending else "ASC"
        where: list[str] = []
        args: list[Any] = []
        if ix is None:
            key, pos_cols = "sk", "sk"
            where.append("pk = ?")
            select = "SELECT pk, sk, attrs, version FROM sp_items"
            order_by = f"sk {order}"
        else:
            key, pos_cols = ix.sk_attr, f"{ix.sk_attr}, pk, sk"
            where.append(f"{ix.pk_attr} = ?")
            select = f"SELECT pk, sk, attrs, version FROM sp_items INDEXED BY sp_items_{ix.name}"
            order_by = f"{ix.sk_attr} {order}, pk {order}, sk {order}"
        args.append(query.pk)
        if query.low is not None:
            where.append(f"{key} {'>=' if query.low_inclusive else '>'} ?")
            args.append(query.low)
        if query.high is not None:
            where.append(f"{key} {'<=' if query.high_inclusive else '<'} ?")
            args.append(query.high)
        if query.after is not None:
            marks = ", ".join("?" * len(query.after))
            where.append(f"({pos_cols}) {'<' if query.descending else '>'} ({marks})")
            args.extend(query.after)
        sql = f"{select} WHERE {' AND '.join(where)} ORDER BY {order_by}"
        if query.fetch is not None:
            sql += " LIMIT ?"
            args.append(query.fetch)

        def work(conn: sqlite3.Connection) -> list[Item]:
            decode = _json.decode
            return [
                Item(pk, sk, decode(attrs), version)
                for pk, sk, attrs, version in conn.execute(sql, args)
            ]

        return await self._x.run(work, write=False, single=True)

    async def aclose(self) -> None:
        return None  # the executor belongs to the engine
