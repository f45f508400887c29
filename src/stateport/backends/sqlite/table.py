"""The table port on SQLite: one row per item in ``sp_items``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ... import _json
from ...errors import ConfigError, Conflict
from ...ports.table import (
    DEFAULT_INDEXES,
    IndexKeys,
    IndexSpec,
    Item,
    Limits,
    Query,
    StoredItem,
    TablePort,
    WriteOp,
    resolve,
)
from .._guarded import inserts as _inserts
from .._sql import count_scan, select_items, select_scan
from ._compiled import compile_guarded_insert
from ._executor import Executor

_PAGE = 4096  # each operation touches at least a page
_QUARTER = _PAGE // 4


def _mark(n: int) -> str:
    return "?"


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
        super().__init__(
            limits=SQLITE_LIMITS, portable=portable, indexes=indexes, ordered_scan=True
        )
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
        self._sql_insert_head = f"INSERT INTO sp_items ({names})"
        self._sql_insert = f"{self._sql_insert_head} VALUES ({marks})"
        # the common row, in no index: its index columns are NULL in the text, not bound
        nulls = ", ".join(["NULL"] * len(cols))
        self._sql_insert_plain = f"{self._sql_insert_head} VALUES (?, ?, 1, ?, {nulls})"
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

    @staticmethod
    def _load_many(conn: sqlite3.Connection, ops: Sequence[WriteOp]) -> dict[tuple[str, str], Item]:
        """The current items of the ops that read one, in one statement; attributes
        are decoded only for the ops whose conditions look at them."""
        wanted = [op for op in ops if (op.kind != "put" or op.conditions) and not _inserts(op)]
        if not wanted:
            return {}
        decode = {(op.pk, op.sk) for op in wanted if op.needs_attrs()}
        one = "SELECT pk, sk, attrs, version FROM sp_items WHERE pk = ? AND sk = ?"
        args = [part for op in wanted for part in (op.pk, op.sk)]
        rows = conn.execute(" UNION ALL ".join([one] * len(wanted)), args).fetchall()
        return {
            (pk, sk): Item(pk, sk, _json.decode(attrs) if (pk, sk) in decode else {}, version)
            for pk, sk, attrs, version in rows
        }

    async def _read(self, keys: Sequence[tuple[str, str]]) -> list[Item | None]:
        load = self._load

        def work(conn: sqlite3.Connection) -> list[Item | None]:
            return [load(conn, pk, sk) for pk, sk in keys]

        return await self._x.run(work, write=False, single=len(keys) == 1)

    async def _write(self, ops: Sequence[WriteOp], *, returning: bool) -> list[Item | None]:
        last = ops[-1]
        if not returning and _inserts(last):
            plan = compile_guarded_insert(
                ops, self._sql_insert_head, self._columns(last.index_keys)
            )
            if plan is not None:
                sql, params = plan

                def guarded(conn: sqlite3.Connection) -> bool:
                    try:
                        conn.execute(sql, params)
                    except sqlite3.IntegrityError:  # a check failed, or the key exists
                        return False
                    return True

                # a row adds a page of log at least (it paces checkpoints)
                size = max(_PAGE, len(last.data or "") + 64)
                if await self._x.run(guarded, write=True, single=True, size=size):
                    return []
                # a condition failed: the general path below raises the Conflict
        load, load_many, columns, store = (
            self._load,
            self._load_many,
            self._columns,
            self._sql_store,
        )
        bump, bump_many = self._sql_bump, self._sql_bump_many
        insert, insert_plain = self._sql_insert, self._sql_insert_plain
        no_index = self._no_index_keys
        # log pages the commit adds, estimated: a page at least; rows of one
        # transaction share pages (a quarter page each at least: rows written
        # together are usually neighbours, but may each land on their own page)
        size = max(
            _PAGE,
            sum([max(len(op.data or "") + 64, _QUARTER) for op in ops if op.kind != "check"]),
        )

        def work(conn: sqlite3.Connection) -> list[Item | None]:
            results: list[Item | None] = []
            blind: list[tuple[Any, ...]] = []  # unconditional puts: no read needed
            # puts on the condition NotExists alone are inserted without a read: the
            # primary key refuses an existing item, and that is the failed condition
            fresh: list[tuple[Any, ...]] = []  # rows in some index
            plain: list[tuple[Any, ...]] = []  # rows in no index
            fresh_ops: list[int] = []
            current = load_many(conn, ops) if len(ops) > 1 else None
            try:
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
                    if _inserts(op) and not returning:
                        # what resolve() gives for an absent item: version 1, the op's
                        # data; if the item exists, the INSERT fails and resolve explains
                        if op.index_keys is no_index:
                            plain.append((op.pk, op.sk, op.data))
                        else:
                            fresh.append((op.pk, op.sk, 1, op.data, *columns(op.index_keys)))
                        fresh_ops.append(i)
                        continue
                    found = (
                        load(conn, op.pk, op.sk) if current is None else current.get((op.pk, op.sk))
                    )
                    out = resolve(self, i, op, found)
                    if out.write:
                        if out.item is None:
                            conn.execute(
                                "DELETE FROM sp_items WHERE pk = ? AND sk = ?", (op.pk, op.sk)
                            )
                        else:
                            conn.execute(
                                store,
                                (
                                    op.pk,
                                    op.sk,
                                    out.item.version,
                                    out.data,
                                    *columns(out.index_keys),
                                ),
                            )
                    if returning:
                        results.append(out.item)
                if len(fresh_ops) == 1:
                    try:
                        if plain:
                            conn.execute(insert_plain, plain[0])
                        else:
                            conn.execute(insert, fresh[0])
                    except sqlite3.IntegrityError:
                        self._explain_insert(conn, ops, fresh_ops, len(ops))
                        raise
                elif fresh_ops:
                    # a savepoint, so that a refused row leaves the table as it was
                    # and the explanation sees only what existed before
                    conn.execute("SAVEPOINT sp_fresh")
                    try:
                        if plain:
                            conn.executemany(insert_plain, plain)
                        if fresh:
                            conn.executemany(insert, fresh)
                    except sqlite3.IntegrityError:
                        conn.execute("ROLLBACK TO sp_fresh")
                        self._explain_insert(conn, ops, fresh_ops, len(ops))
                        raise
                    conn.execute("RELEASE sp_fresh")
            except Conflict as e:
                # an earlier insert may also have failed: the first failure is reported
                if fresh_ops and e.op_index is not None and fresh_ops[0] < e.op_index:
                    self._explain_insert(conn, ops, fresh_ops, e.op_index)
                raise
            if blind:
                conn.executemany(bump_many, blind)
            return results

        single = len(ops) == 1 and ops[0].kind == "put" and not ops[0].conditions
        return await self._x.run(work, write=True, single=single, size=size)

    def _explain_insert(
        self, conn: sqlite3.Connection, ops: Sequence[WriteOp], fresh_ops: list[int], before: int
    ) -> None:
        """Raise the Conflict of the first insert (before op ``before``) whose item exists."""
        for i in fresh_ops:
            if i >= before:
                return
            op = ops[i]
            found = self._load(conn, op.pk, op.sk)
            if found is not None:
                resolve(self, i, op, found)  # raises: the item exists

    async def _query(self, query: Query) -> list[Item]:
        ix = query.index
        source = "sp_items" if ix is None else f"sp_items INDEXED BY sp_items_{ix.name}"
        sql, args = select_items(query, source, _mark)

        def work(conn: sqlite3.Connection) -> list[Item]:
            decode = _json.decode
            return [
                Item(pk, sk, decode(attrs), version)
                for pk, sk, version, attrs in conn.execute(sql, args)
            ]

        return await self._x.run(work, write=False, single=True)

    async def _watch_started(self, pk: str) -> None:
        self._x.ensure_open()  # writes wake watches in this process: nothing to start

    async def _scan(
        self, prefix: str, after: tuple[str, str] | None, fetch: int
    ) -> list[StoredItem]:
        sql, args = select_scan(prefix, after, fetch, "sp_items", _mark)

        def work(conn: sqlite3.Connection) -> list[StoredItem]:
            return [StoredItem(*row) for row in conn.execute(sql, args)]

        return await self._x.run(work, write=False, single=True)

    async def _estimate_count(self, prefix: str) -> int | None:
        sql, args = count_scan(prefix, "sp_items", _mark)

        def work(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql, args).fetchone()[0])

        return await self._x.run(work, write=False, single=True)

    async def _restore(self, rows: Sequence[tuple[StoredItem, IndexKeys]], *, new: bool) -> None:
        columns = self._columns
        sql = self._sql_insert if new else self._sql_store
        params = []
        size = 0
        for item, index_keys in rows:
            params.append((item.pk, item.sk, item.version, item.data, *columns(index_keys)))
            size += max(len(item.data) + 64, _QUARTER)

        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.executemany(sql, params)
            except sqlite3.IntegrityError as e:  # new: a key is stored already
                raise Conflict(
                    f"restore of new items: one of them is stored already ({e})",
                    condition="not exists",
                ) from e

        await self._x.run(work, write=True, size=max(size, _PAGE))

    async def aclose(self) -> None:
        return None  # the executor belongs to the engine
