"""The table port on PostgreSQL: one row per item in ``<schema>.sp_items``.

Writes take one of three paths:

* **Blind puts** (puts without conditions, the common case): one statement,
  ``INSERT ... ON CONFLICT DO UPDATE``, for one item or (with ``unnest``) for a
  whole batch; a single statement is atomic on its own.
* **Guarded inserts** (checks, then one put on ``NotExists``: a ledger append):
  one ``INSERT ... SELECT ... WHERE EXISTS (... FOR SHARE)`` statement that
  takes the general path's advisory locks first; if it inserts nothing, hits
  the key, or collides, the general path runs and explains (see
  :meth:`PostgresTablePort._guarded_insert`).
* **Everything else** (conditions, updates, deletes, checks): one transaction
  that locks the rows it reads (``SELECT ... ORDER BY pk, sk FOR UPDATE``, so
  concurrent transactions lock in the same order), passes each operation and
  the locked row to :func:`resolve`, then inserts, updates and deletes.
  A transaction of several operations first takes a transaction-scoped advisory
  lock on each of its keys (in sorted order), which also serializes
  transactions that read the same *absent* keys (no row to lock) — without it,
  two transactions each checking that the other's key is absent could both
  commit. Rows read as absent are inserted with a plain ``INSERT``: losing the
  race to a concurrent insert is a unique violation, and the transaction runs
  again, where :func:`resolve` sees the winner's row and reports the
  :class:`Conflict` of that operation. Serialization failures and deadlocks
  are retried the same bounded number of times.

Watches: ``sp_watches`` lists the partitions a listener LISTENs to. Every write
statement notifies the channels of the partitions it touched that are listed
there (inside the transaction, so the notification is delivered at commit, and
only then); an unwatched write pays one index probe of an empty table instead of
NOTIFY's commit-time lock. Registering a watch takes an ``EXCLUSIVE`` lock on
``sp_items`` (writers wait for a moment; readers do not), so every write either
committed before the registration (and the watcher's next read sees it) or
looks the registration up after it (and notifies).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ... import _json
from ..._retry import Retry
from ...errors import ConfigError, Conflict, StateportError
from ...ports.table import (
    DEFAULT_INDEXES,
    AttrEquals,
    Condition,
    Exists,
    IndexKeys,
    IndexSpec,
    Item,
    Limits,
    Query,
    StoredItem,
    TablePort,
    VersionEquals,
    WriteOp,
    resolve,
)
from .._guarded import EXACT_INT, guards_of
from .._sql import count_scan, select_items, select_scan
from ._conn import Connection, Database, is_connection_error, sqlstate

# PostgreSQL keeps a value of up to 1 GB in a row
POSTGRES_LIMITS = Limits(1_000_000_000, None, None, None, None)

_NO_INDEX = (None,) * 6
_RESTORE_BATCH = 5000  # rows per restore statement


def _mark(n: int) -> str:
    return f"${n}"


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for ``parts``."""
    raw = "\0".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


_BIGINT = 2**63


def _exact(value: Any) -> bool:
    """Whether jsonb's ``=`` between ``value`` and any stored JSON value is
    :func:`~stateport._json.json_equal`.

    jsonb compares numbers as decimals (``1 = 1.0``), bools, strings and
    ``null`` by type and value, arrays element by element and objects by keys
    and values, as ``json_equal`` does. Where they part: an integer and a float
    are equal in Python when the float's *binary* value is the integer, in jsonb
    when its *shortest decimal* form is (what the canonical JSON holds), and
    the two differ only for integral values of 2**53 and beyond; and text with
    a NUL character, which jsonb refuses. Such values take the general path.
    """
    t = type(value)
    if value is None or t is bool:
        return True
    if t is str:
        return "\0" not in value
    if t is int:
        return bool(-EXACT_INT < value < EXACT_INT)
    if t is float:
        return not (value.is_integer() and abs(value) >= EXACT_INT)
    if t is list:
        return all(_exact(v) for v in value)
    if t is dict:
        return all("\0" not in k and _exact(v) for k, v in value.items())
    return False


def _predicate(cond: Condition) -> tuple[bool, str, tuple[Any, ...]] | None:
    """The PostgreSQL guard of ``cond`` on the row ``i`` (a :data:`~.._guarded.Predicate`).

    ``NotExists`` is not compiled: an absent row cannot be locked, and the
    statement's snapshot predates the advisory locks it may wait for, so only
    the general path (locks first, then a fresh read) decides it exactly.
    """
    if type(cond) is Exists:
        return True, "", ()
    if type(cond) is VersionEquals:
        if -_BIGINT <= cond.version < _BIGINT:
            return True, " AND i.version = ?", (cond.version,)
        return None
    if type(cond) is AttrEquals and _exact(cond.value):
        # attrs is canonical JSON text: ``json ->`` finds the attribute without
        # building the whole document (NULL when absent: the guard fails), and
        # the one value is compared as jsonb
        return (
            True,
            " AND (i.attrs::json -> ?::text)::jsonb = ?::jsonb",
            (cond.name, _json.encode(cond.value)),
        )
    return None


def _columns(index_keys: tuple[tuple[str, str] | None, ...]) -> tuple[Any, ...]:
    if not any(index_keys):
        return _NO_INDEX
    out: list[Any] = []
    for ik in index_keys:
        out.extend(ik if ik is not None else (None, None))
    return tuple(out)


class PostgresTablePort(TablePort):
    """Items as rows of ``sp_items``; see the module documentation."""

    def __init__(
        self,
        db: Database,
        *,
        portable: bool = True,
        indexes: Sequence[IndexSpec] = DEFAULT_INDEXES,
    ) -> None:
        if tuple(indexes) != DEFAULT_INDEXES:
            raise ConfigError(
                "the PostgreSQL backend provides exactly the default indexes "
                f"{[ix.name for ix in DEFAULT_INDEXES]}"
            )
        super().__init__(
            limits=POSTGRES_LIMITS, portable=portable, indexes=indexes, ordered_scan=True
        )
        self._db = db
        s = db.schema
        t = f"{s}.sp_items"
        self._t = t
        cols = [c for ix in self.indexes for c in (ix.pk_attr, ix.sk_attr)]
        names = ", ".join(["pk", "sk", "version", "attrs", *cols])
        refresh = ", ".join(f"{c} = excluded.{c}" for c in ["attrs", *cols])
        notify_one = (
            f"(SELECT count(pg_notify(x.channel, $10)) FROM {s}.sp_watches x WHERE x.pk = $1)"
        )
        notify_many = (
            "(SELECT count(pg_notify(c.channel, ${t})) FROM (SELECT DISTINCT x.channel FROM "
            f"{s}.sp_watches x WHERE x.pk = ANY(${{n}}::text[])) c)"
        )
        # RETURNING with the notification as a scalar subquery (evaluated once):
        # a CTE around the INSERT costs the server about a third more
        self._sql_put_one = (
            f"INSERT INTO {t} AS i ({names}) VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9) "
            f"ON CONFLICT (pk, sk) DO UPDATE SET version = i.version + 1, {refresh} "
            f"RETURNING i.version, {notify_one}"
        )
        self._names = names
        self._columns_list = ["pk", "sk", "version", "attrs", *cols]
        self._sql_notify = f"SELECT {notify_many.format(n=1, t=2)}"
        self._notify_one = notify_one
        self._guarded_sql: dict[tuple[Any, ...], str] = {}
        unnest = (
            "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
            "$7::text[], $8::text[], $9::text[])"
        )
        shape = "u(pk, sk, attrs, g1p, g1s, g2p, g2s, g3p, g3s)"
        self._sql_put_many = (
            f"WITH w AS (INSERT INTO {t} AS i ({names}) SELECT u.pk, u.sk, 1, u.attrs, u.g1p, "
            f"u.g1s, u.g2p, u.g2s, u.g3p, u.g3s FROM {unnest} AS {shape} ORDER BY u.pk, u.sk "
            f"ON CONFLICT (pk, sk) DO UPDATE SET version = i.version + 1, {refresh}) "
            f"SELECT {notify_many.format(n=10, t=11)}"
        )
        self._sql_lock_rows = (
            f"WITH n AS MATERIALIZED (SELECT {notify_many.format(n=3, t=4)} AS c) "
            f"SELECT i.pk, i.sk, i.version, i.attrs FROM {t} i, n "
            "WHERE (i.pk, i.sk) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
            "ORDER BY i.pk, i.sk FOR UPDATE OF i"
        )
        stored = "u(pk, sk, version, attrs, g1p, g1s, g2p, g2s, g3p, g3s)"
        unnest10 = (
            "unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], "
            "$7::text[], $8::text[], $9::text[], $10::text[])"
        )
        self._sql_insert = f"INSERT INTO {t} ({names}) SELECT * FROM {unnest10} ORDER BY 1, 2"
        self._sql_update = (
            f"UPDATE {t} AS i SET version = u.version, attrs = u.attrs, gsi1pk = u.g1p, "
            "gsi1sk = u.g1s, gsi2pk = u.g2p, gsi2sk = u.g2s, gsi3pk = u.g3p, gsi3sk = u.g3s "
            f"FROM {unnest10} AS {stored} WHERE i.pk = u.pk AND i.sk = u.sk"
        )
        # restore: rows with their own versions, in place of what is stored
        self._sql_restore = (
            f"WITH w AS (INSERT INTO {t} AS i ({names}) SELECT * FROM {unnest10} "
            f"ORDER BY 1, 2 ON CONFLICT (pk, sk) DO UPDATE SET version = excluded.version, "
            f"{refresh}) SELECT {notify_many.format(n=11, t=12)}"
        )
        self._sql_delete = (
            f"DELETE FROM {t} AS i USING unnest($1::text[], $2::text[]) AS d(pk, sk) "
            "WHERE i.pk = d.pk AND i.sk = d.sk"
        )
        self._sql_get = f"SELECT version, attrs FROM {t} WHERE pk = $1 AND sk = $2"
        self._sql_get_many = (
            f"SELECT i.pk, i.sk, i.version, i.attrs FROM {t} i "
            "WHERE (i.pk, i.sk) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        )
        # watches: the payload of our notifications, so we skip our own (the
        # port wakes local watches itself after each write)
        self._token = secrets.token_hex(8)
        self._listener: Connection | None = None
        self._listener_pid = 0
        self._channels: dict[str, str] = {}  # channel -> pk
        self._listen_lock: asyncio.Lock | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False

    # ---- reads -----------------------------------------------------------

    async def _read(self, keys: Sequence[tuple[str, str]]) -> list[Item | None]:
        decode = _json.decode
        if len(keys) == 1:
            pk, sk = keys[0]
            row = await self._db.fetchrow(self._sql_get, pk, sk)
            return [None if row is None else Item(pk, sk, decode(row[1]), row[0])]
        rows = await self._db.fetch(self._sql_get_many, [k[0] for k in keys], [k[1] for k in keys])
        found = {(r[0], r[1]): Item(r[0], r[1], decode(r[3]), r[2]) for r in rows}
        return [found.get((pk, sk)) for pk, sk in keys]

    async def _query(self, query: Query) -> list[Item]:
        sql, args = select_items(query, self._t, _mark)
        decode = _json.decode
        return [Item(r[0], r[1], decode(r[3]), r[2]) for r in await self._db.fetch(sql, *args)]

    async def _scan(
        self, prefix: str, after: tuple[str, str] | None, fetch: int
    ) -> list[StoredItem]:
        sql, args = select_scan(prefix, after, fetch, self._t, _mark)
        return [StoredItem(*row) for row in await self._db.fetch(sql, *args)]

    async def _estimate_count(self, prefix: str) -> int | None:
        sql, args = count_scan(prefix, self._t, _mark)
        row = await self._db.fetchrow(sql, *args)
        return int(row[0])

    # ---- writes ----------------------------------------------------------

    async def _restore(self, rows: Sequence[tuple[StoredItem, IndexKeys]], *, new: bool) -> None:
        for start in range(0, len(rows), _RESTORE_BATCH):  # each statement is atomic
            batch = rows[start : start + _RESTORE_BATCH]
            if new:
                await self._db.call(self._append(batch))
                continue
            cols: list[list[Any]] = [
                [r[0].pk for r in batch],
                [r[0].sk for r in batch],
                [r[0].version for r in batch],
                [r[0].data for r in batch],
            ]
            if any(any(r[1]) for r in batch):
                keys = [_columns(r[1]) for r in batch]
                cols.extend([k[c] for k in keys] for c in range(6))
            else:
                cols.extend([[None] * len(batch)] * 6)
            partitions = sorted(set(cols[0]))
            await self._db.fetchrow(self._sql_restore, *cols, partitions, self._token)

    def _append(
        self, batch: Sequence[tuple[StoredItem, IndexKeys]]
    ) -> Callable[[Connection], Awaitable[None]]:
        """Work that appends new rows with one ``COPY`` (a statement: all or nothing),
        then notifies the watchers of their partitions."""
        columns = self._columns_list
        if any(map(any, {keys for _, keys in batch})):  # (few distinct: usually one)
            records = [
                (item.pk, item.sk, item.version, item.data, *_columns(keys))
                for item, keys in batch
            ]
        else:  # in no index: the index columns are left NULL
            columns = columns[:4]
            records = [(item.pk, item.sk, item.version, item.data) for item, _ in batch]
        partitions = sorted({item.pk for item, _ in batch})
        schema, timeout = self._db.schema.strip('"'), self._db.pool.command_timeout

        async def work(conn: Connection) -> None:
            try:
                await conn.copy_records_to_table(
                    "sp_items",
                    schema_name=schema,
                    records=records,
                    columns=columns,
                    timeout=timeout,
                )
            except Exception as e:
                if sqlstate(e) == "23505":
                    raise Conflict(
                        f"restore of new items: one of them is stored already ({e})",
                        condition="not exists",
                    ) from e
                raise
            await conn.execute(self._sql_notify, partitions, self._token)

        return work

    async def _write(self, ops: Sequence[WriteOp], *, returning: bool) -> list[Item | None]:
        if len(ops) == 1 and ops[0].kind == "put" and not ops[0].conditions:
            op = ops[0]
            row = await self._db.fetchrow(
                self._sql_put_one, op.pk, op.sk, op.data, *_columns(op.index_keys), self._token
            )
            if not returning:
                return []
            assert op.attrs is not None
            return [Item(op.pk, op.sk, op.attrs, row[0])]
        if all(op.kind == "put" and not op.conditions for op in ops):
            await self._db.fetchrow(self._sql_put_many, *self._batch(ops), self._token)
            return []
        if not returning and ops[-1].kind == "put" and await self._guarded_insert(ops):
            return []
        begin = "BEGIN"
        if len(ops) > 1:
            keys = sorted({lock_key(self._db.schema, op.pk, op.sk) for op in ops})
            begin = (
                "BEGIN; SELECT pg_advisory_xact_lock(k) FROM unnest('{"
                + ",".join(map(str, keys))
                + "}'::bigint[]) AS k ORDER BY k"
            )

        async def work(conn: Connection) -> list[Item | None]:
            return await self._conditional(conn, ops, returning)

        return await self._db.home.call(self._db.transaction(work, begin=begin))

    @staticmethod
    def _batch(ops: Sequence[WriteOp]) -> list[Any]:
        """The parameters of :attr:`_sql_put_many` but the last: a list per column,
        and the partitions written."""
        pks = [op.pk for op in ops]
        cols: list[Any] = [pks, [op.sk for op in ops], [op.data for op in ops]]
        if any(any(op.index_keys) for op in ops):
            rows = [_columns(op.index_keys) for op in ops]
            cols.extend([row[c] for row in rows] for c in range(6))
        else:
            cols.extend([[None] * len(ops)] * 6)
        cols.append(sorted(set(pks)))
        return cols

    # ---- guarded inserts: checks + one create in one statement -----------

    async def _guarded_insert(self, ops: Sequence[WriteOp]) -> bool:
        """Apply checks + one ``NotExists`` put as one statement (see :mod:`.._guarded`).

        True when it applied; False when ``ops`` do not have that shape, or the
        statement inserted nothing, hit the primary key, or collided with a
        concurrent transaction: then the general path runs (and explains).

        The statement takes the advisory locks of the general path first (a
        ``MATERIALIZED`` CTE that each guard refers to, so it runs before them),
        then locks each checked row ``FOR SHARE`` while testing it: an update,
        delete or locking read of that row by another transaction waits for this
        statement, or this statement waits for it and, as ``READ COMMITTED``
        does for a locked row, tests the version that transaction committed.
        A row that appeared after the statement's snapshot fails its guard, and
        the general path looks again.
        """
        guards = guards_of(ops, _predicate)
        if guards is None:
            return False
        put = ops[-1]
        params: list[Any] = [put.pk, put.sk, put.data, *_columns(put.index_keys), self._token]
        locked = len(ops) > 1
        if locked:
            keys = sorted({lock_key(self._db.schema, op.pk, op.sk) for op in ops})
            params.append(keys)
            guards.sort(key=lambda g: (g[0], g[1]))  # rows locked in key order, as elsewhere
        for pk, sk, _, _, extra in guards:
            params.extend((pk, sk, *extra))
        fragments = [fragment for _, _, _, fragment, _ in guards]
        shape = (locked, *fragments)
        sql = self._guarded_sql.get(shape)
        if sql is None:
            sql = self._compile_guarded(locked, fragments)
            if len(self._guarded_sql) < 256:
                self._guarded_sql[shape] = sql
        try:
            row = await self._db.fetchrow(sql, *params)
        except StateportError as e:
            # a failed check on a value the SQL could not read, the key taken, a
            # deadlock or serialization failure: the general path decides
            if sqlstate(e.__cause__ or e)[:2] in ("22", "23", "40"):
                return False
            raise
        return row is not None

    def _compile_guarded(self, locked: bool, fragments: list[str]) -> str:
        """The statement of :meth:`_guarded_insert` for guards with these fragments
        (all existence checks): ``$1``..``$9`` the row, ``$10`` the notification
        payload, ``$11`` the advisory lock keys (when ``locked``), then the guards'."""
        t = self._t
        values = "$1::text, $2::text, 1, $3::text, " + ", ".join(
            f"${n}::text" for n in range(4, 10)
        )
        number = itertools.count(12 if locked else 11)
        where: list[str] = []
        for fragment in fragments:
            pk, sk = next(number), next(number)
            pieces = fragment.split("?")
            text = pieces[0] + "".join(f"${next(number)}{p}" for p in pieces[1:])
            # ``l.n >= 0`` makes the guard depend on the locks' CTE: it runs after it
            where.append(
                f"EXISTS (SELECT 1 FROM {t} i WHERE i.pk = ${pk} AND i.sk = ${sk} "
                f"AND l.n >= 0{text} FOR SHARE)"
            )
        source = ""
        if locked:
            source = " FROM l" + (f" WHERE {' AND '.join(where)}" if where else "")
        cte = (
            "WITH l AS MATERIALIZED (SELECT count(pg_advisory_xact_lock(k)) AS n "
            "FROM unnest($11::bigint[]) AS k), "
            if locked
            else "WITH "
        )
        return (
            f"{cte}w AS (INSERT INTO {t} ({self._names}) SELECT {values}{source} RETURNING pk) "
            f"SELECT {self._notify_one} FROM w"
        )

    async def _conditional(
        self, conn: Connection, ops: Sequence[WriteOp], returning: bool
    ) -> list[Item | None]:
        decode = _json.decode
        written = sorted({op.pk for op in ops if op.kind != "check"})
        rows = await conn.fetch(
            self._sql_lock_rows, [op.pk for op in ops], [op.sk for op in ops], written, self._token
        )
        current = {(r[0], r[1]): Item(r[0], r[1], decode(r[3]), r[2]) for r in rows}
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        deletes: list[tuple[str, str]] = []
        results: list[Item | None] = []
        for i, op in enumerate(ops):
            before = current.get((op.pk, op.sk))
            out = resolve(self, i, op, before)
            if returning:
                results.append(out.item)
            if not out.write:
                continue
            if out.item is None:
                deletes.append((op.pk, op.sk))
                continue
            row = (op.pk, op.sk, out.item.version, out.data, *_columns(out.index_keys))
            (inserts if before is None else updates).append(row)
        try:
            for sql, batch in ((self._sql_insert, inserts), (self._sql_update, updates)):
                if batch:
                    await conn.execute(sql, *(list(col) for col in zip(*batch, strict=True)))
            if deletes:
                await conn.execute(
                    self._sql_delete, [d[0] for d in deletes], [d[1] for d in deletes]
                )
        except Exception as e:
            if getattr(e, "sqlstate", None) == "23505":
                raise Retry(str(e)) from e  # a concurrent insert won: resolve again
            raise
        return results

    # ---- watches ---------------------------------------------------------

    def channel(self, pk: str) -> str:
        """The NOTIFY channel of partition ``pk`` in this store."""
        raw = f"{self._db.schema}\0{pk}".encode("utf-8", "surrogatepass")
        return "sp_" + hashlib.blake2b(raw, digest_size=16).hexdigest()

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        pk = self._channels.get(channel)
        if pk is not None and payload != self._token:  # our own writes woke us already
            self._written((pk,))

    def _on_listener_lost(self, conn: Any) -> None:
        if conn is not self._listener:
            return
        self._listener = None
        self._wake_all()  # notifications may have been missed: read again
        if not self._closed and self._channels and self._reconnect is None:
            self._reconnect = asyncio.get_running_loop().create_task(self._relisten())

    def _wake_all(self) -> None:
        self._written(list(self._channels.values()))

    async def _relisten(self) -> None:
        attempt = 0
        try:
            while not self._closed and self._channels and self._listener is None:
                try:
                    await self._ensure_listener()
                    for pk in list(self._channels.values()):
                        await self._register(pk)
                    self._wake_all()
                    return
                except (StateportError, OSError) as e:
                    if self._listener is not None and not is_connection_error(e):
                        return
                    attempt += 1
                    await asyncio.sleep(min(0.2 * attempt, 5.0))
        finally:
            self._reconnect = None

    async def _ensure_listener(self) -> Connection:
        if self._listener is not None and not self._listener.is_closed():
            return self._listener
        conn = await self._db.connect()
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            for channel in self._channels:
                await conn.add_listener(channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_listener_lost)
        self._listener, self._listener_pid = conn, pid
        return conn

    async def _register(self, pk: str) -> None:
        s, pid, channel = self._db.schema, self._listener_pid, self.channel(pk)

        async def work(conn: Connection) -> None:
            # wait for writes in flight; later ones see the row and notify
            await conn.execute(f"LOCK TABLE {s}.sp_items IN EXCLUSIVE MODE")
            await conn.execute(
                f"DELETE FROM {s}.sp_watches w WHERE w.pk = $1 AND NOT EXISTS "
                "(SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.listener)",
                pk,
            )
            await conn.execute(
                f"INSERT INTO {s}.sp_watches (pk, listener, channel) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                pk,
                pid,
                channel,
            )

        await self._db.transaction(work)

    async def _start(self, pk: str) -> None:
        if self._listen_lock is None:
            self._listen_lock = asyncio.Lock()
        async with self._listen_lock:
            channel = self.channel(pk)
            try:
                listener = await self._ensure_listener()
                self._channels[channel] = pk
                await listener.add_listener(channel, self._on_notify)
            except StateportError:
                self._channels.pop(channel, None)
                raise
            except Exception as e:
                self._channels.pop(channel, None)
                raise self._db.failed(e) from e
            await self._register(pk)

    async def _stop(self, pk: str) -> None:
        if self._listen_lock is None:
            self._listen_lock = asyncio.Lock()
        async with self._listen_lock:
            channel = self.channel(pk)
            self._channels.pop(channel, None)
            listener, pid, s = self._listener, self._listener_pid, self._db.schema
            # best effort: a row left behind only costs its partition's writers a NOTIFY
            with contextlib.suppress(Exception):
                if listener is not None and not listener.is_closed():
                    await listener.remove_listener(channel, self._on_notify)
                await self._db.run(
                    lambda conn: conn.execute(
                        f"DELETE FROM {s}.sp_watches WHERE pk = $1 AND listener = $2", pk, pid
                    )
                )

    async def _watch_started(self, pk: str) -> None:
        await self._db.home.call(self._start(pk))

    async def _watch_stopped(self, pk: str) -> None:
        with contextlib.suppress(StateportError):
            await self._db.home.call(self._stop(pk))

    async def aclose(self) -> None:
        """Close the listening connection (the pool belongs to the engine)."""
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), 2)
            except Exception:
                listener.terminate()
