"""Connections to PostgreSQL: a small pool, the home event loop, error translation.

asyncpg connections belong to the event loop that opened them. An engine is
opened on one loop (its *home*); a call made on another loop (another thread,
or the sync facade's) is handed to the home loop and awaited from the caller's
loop, so one store can be shared by several threads as the conformance suite
requires. A call on the home loop runs directly.

The pool is deliberately small: a stack of idle connections and a queue of
waiters. Taking and returning a connection costs a few list operations, where
asyncpg's own pool costs about as much as a statement (see
docs/decisions/0012-postgresql-backend.md). A connection the server closed is
noticed by the driver (its socket reports end of file) and is dropped when next
taken; a connection returned after an error, or in the middle of a
transaction, is closed instead of being reused.

Client-side timeouts: pooled connections have no ``command_timeout`` of their
own, because asyncpg arms and cancels an event-loop timer for every statement
that has one, which costs about as much as the rest of the client's work on a
one-row write. Work handed a connection (:meth:`Database.run`,
:meth:`Database.transaction`) gets it wrapped in :class:`Timed`, whose
statements pass the timeout explicitly, as before; the single-statement path
(:meth:`Database.fetchrow`) registers a deadline instead, and one watchdog task
per pool, awake only while such statements run, terminates a connection whose
statement outlives it (an ``Unavailable`` for the caller, as a timeout was).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped, import-not-found, unused-ignore]

from ..._retry import Backoff, Retry, retrying
from ...errors import (
    ConfigError,
    Conflict,
    StateportError,
    Unavailable,
    ValidationError,
)
from .._errors import ErrorMap, Rule

T = TypeVar("T")

Connection = Any  # asyncpg.Connection (asyncpg ships no type information)

RETRYABLE = frozenset({"40001", "40P01"})  # serialization failure, deadlock


COLLISIONS = Backoff(tries=10, immediate=1, base=0.002, cap=0.128)
"""How a transaction that lost a race on the server (serialization failure,
deadlock, a concurrent insert of the same key) is run again."""


def sqlstate(e: BaseException) -> str:
    return str(getattr(e, "sqlstate", "") or "")


def is_connection_error(e: BaseException) -> bool:
    """The connection or the server went away (as opposed to a statement failing)."""
    if isinstance(e, (OSError, ConnectionError, asyncio.TimeoutError, TimeoutError)):
        return True
    if isinstance(
        e,
        (
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.InternalClientError,  # protocol out of step after a drop
        ),
    ):
        return True
    if isinstance(e, asyncpg.exceptions.InterfaceError) and "closed" in str(e):
        return True
    state = sqlstate(e)
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _states(*states: str, prefix: str | None = None) -> Callable[[BaseException], bool]:
    """A matcher of server errors by SQLSTATE (exact codes, or a class prefix)."""

    def matches(e: BaseException) -> bool:
        state = sqlstate(e)
        return state in states or (prefix is not None and state.startswith(prefix))

    return matches


ERRORS = ErrorMap(
    "asyncpg",
    [
        Rule(
            "credentials",
            _states(prefix="28"),
            ConfigError,
            "{where}: the server refused the credentials ({detail}): "
            "check the user and password in the URL (or PGPASSWORD / ~/.pgpass)",
        ),
        Rule(
            "no-database",
            _states("3D000"),
            ConfigError,
            "{where}: {detail}: create the database (createdb) or fix its name in the URL",
        ),
        Rule(
            "cancelled",
            _states("57014"),
            Unavailable,
            "{where}: the statement was cancelled ({detail}): it ran past the "
            "statement_timeout set in the URL, or was cancelled by an administrator",
        ),
        Rule(
            "no-connection-to-spare",
            _states("53300", "53400"),
            Unavailable,
            "{where}: the server has no connection to spare ({detail}): lower pool_max "
            "of the stores sharing it, or raise the server's max_connections",
        ),
        Rule(
            "lock-timeout",
            _states("55P03"),
            Unavailable,
            "{where}: a lock could not be taken in time ({detail})",
        ),
        Rule(
            "connection",
            is_connection_error,
            Unavailable,
            "{where} is unreachable or dropped the connection: {detail}",
        ),
        Rule(
            "nul-character",
            _states("22021", "22P05"),
            ValidationError,
            "PostgreSQL cannot store this text ({detail}): "
            "keys and attribute values must not contain NUL characters",
        ),
        Rule(
            "schema-missing",
            _states("42P01", "3F000"),
            ConfigError,
            "{where}: the stateport schema is missing or incomplete ({detail}): "
            "run  stateport db migrate --url <url>",
        ),
        Rule(
            "collision",
            _states(*RETRYABLE),
            Conflict,
            "{where}: the transaction kept colliding with concurrent ones ({detail})",
        ),
    ],
)
"""How every driver error reaches a caller (tested row by row by the engine suite)."""


def translate(e: BaseException, where: str) -> StateportError:
    """The stateport error for a driver error (to be raised ``from e``)."""
    return ERRORS.translate(e, where)


class Home:
    """The event loop an engine's connections belong to."""

    def __init__(self, where: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.where = where

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the home loop and await it from whichever loop is running."""
        if asyncio.get_running_loop() is self.loop:
            return await coro
        if self.loop.is_closed() or not self.loop.is_running():
            coro.close()
            raise Unavailable(
                f"{self.where}: the event loop this store was opened on is no longer "
                "running: open the store on the loop (or with the sync facade) that uses it"
            )
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)


class Timed:
    """A pooled connection whose statements carry the client-side timeout."""

    __slots__ = ("conn", "timeout")

    def __init__(self, conn: Connection, timeout: float | None) -> None:
        self.conn = conn
        self.timeout = timeout

    async def execute(self, query: str, *args: Any) -> Any:
        return await self.conn.execute(query, *args, timeout=self.timeout)

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self.conn.fetch(query, *args, timeout=self.timeout)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self.conn.fetchrow(query, *args, timeout=self.timeout)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.conn.fetchval(query, *args, timeout=self.timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


class Pool:
    """Up to ``max_size`` connections, at least ``min_size`` kept open."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Connection]],
        *,
        min_size: int,
        max_size: int,
        acquire_timeout: float,
        where: str,
        command_timeout: float | None = None,
    ) -> None:
        self._connect = connect
        self.min_size = min_size
        self.max_size = max_size
        self._acquire_timeout = acquire_timeout
        self._where = where
        self.command_timeout = command_timeout
        """Seconds a statement may wait for its answer (None: no limit)."""
        self._deadlines: dict[Connection, float] = {}
        self._stuck: set[Connection] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._idle: list[Connection] = []
        self._size = 0  # open or opening
        self._waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()
        self.closed = False

    async def open(self) -> None:
        """Open ``min_size`` connections (at least one, so bad settings fail here)."""
        for _ in range(max(self.min_size, 1)):
            conn = await self._new()
            self._put_back(conn)

    async def _new(self) -> Connection:
        self._size += 1
        try:
            return await self._connect()
        except BaseException:
            self._size -= 1
            self._hand_over(None)  # a waiter may now open one itself
            raise

    def take(self) -> Connection | None:
        """An idle open connection, without waiting (None if there is none)."""
        if self.closed:
            return None
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.is_closed():
                return conn
            self._size -= 1
        return None

    async def acquire(self) -> Connection:
        conn = self.take()
        if conn is not None:
            return conn
        if self.closed:
            raise Unavailable(f"{self._where}: the store is closed")
        if self._size < self.max_size:
            return await self._new()
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._acquire_timeout):
                conn = await waiter
        except TimeoutError:
            raise Unavailable(
                f"{self._where}: all {self.max_size} connections of the pool stayed busy "
                f"for {self._acquire_timeout:g} s: raise pool_max or pool_timeout in the URL"
            ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self.release(waiter.result())
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        if conn is None:  # a slot was freed: open a connection in it
            if self.closed:
                raise Unavailable(f"{self._where}: the store is closed")
            return await self._new()
        return conn

    def _hand_over(self, conn: Connection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _put_back(self, conn: Connection) -> None:
        if not self._hand_over(conn):
            self._idle.append(conn)

    def release(self, conn: Connection, *, discard: bool = False) -> None:
        """Return ``conn``; close it instead if it is broken, mid-transaction or unwanted."""
        if discard or self.closed or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
            self._size -= 1
            self._hand_over(None)
            return
        self._put_back(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        conn = await self.acquire()
        try:
            yield conn
        except Exception as e:
            # closed instead when broken, out of step or mid-transaction
            self.release(conn, discard=is_connection_error(e))
            raise
        except BaseException:  # cancelled mid-statement: the protocol state is unknown
            self.release(conn, discard=True)
            raise
        self.release(conn)

    def arm(self, conn: Connection) -> None:
        """``conn`` starts a statement (without a timer of its own): watch it."""
        limit = self.command_timeout
        if limit is None:
            return
        loop = asyncio.get_running_loop()
        self._deadlines[conn] = loop.time() + limit
        if self._watchdog is None:
            self._watchdog = loop.create_task(self._watch(limit))

    def disarm(self, conn: Connection) -> bool:
        """``conn``'s statement ended; True if the watchdog had to terminate it."""
        self._deadlines.pop(conn, None)
        if conn in self._stuck:
            self._stuck.discard(conn)
            return True
        return False

    async def _watch(self, limit: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._deadlines:
                await asyncio.sleep(min(1.0, limit / 4))
                now = loop.time()
                for conn, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[conn]
                        self._stuck.add(conn)
                        conn.terminate()  # the statement fails: the connection is closed
        finally:
            self._watchdog = None

    def expire(self) -> None:
        """Drop every idle connection (after the server was seen to go away)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()
            self._size -= 1

    async def aclose(self) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        idle, self._idle = self._idle, []
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        for conn in idle:
            self._size -= 1
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()


class Database:
    """One store's connections: the pool, the home loop, and how work runs on them."""

    def __init__(
        self,
        home: Home,
        pool: Pool,
        connect: Callable[[], Awaitable[Connection]],
        schema: str,
        where: str,
    ) -> None:
        self.home = home
        self.pool = pool
        self.connect = connect
        """Open a connection outside the pool (translated errors), e.g. to LISTEN."""
        self.schema = schema
        self.where = where

    def failed(self, e: BaseException) -> StateportError:
        """Translate ``e``; after a lost connection, drop the idle ones too."""
        if is_connection_error(e):
            self.pool.expire()
        return translate(e, self.where)

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection (autocommit), on the home loop."""
        try:
            async with self.pool.connection() as conn:
                return await work(Timed(conn, self.pool.command_timeout))
        except StateportError:
            raise
        except Exception as e:
            raise self.failed(e) from e

    async def call(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """:meth:`run` from any event loop."""
        return await self.home.call(self.run(work))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        """Run one statement (autocommit) from any event loop; its first row, or None.

        The lean path of single statements: no closure, no context manager, an
        idle connection taken without awaiting, no timer (the pool's watchdog
        bounds the statement). A failure is translated, with the driver's
        exception as ``__cause__``.
        """
        if asyncio.get_running_loop() is not self.home.loop:
            return await self.home.call(self._statement(sql, args, True))
        return await self._statement(sql, args, True)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """As :meth:`fetchrow`, returning every row."""
        if asyncio.get_running_loop() is not self.home.loop:
            rows = await self.home.call(self._statement(sql, args, False))
        else:
            rows = await self._statement(sql, args, False)
        return list(rows)

    async def _statement(self, sql: str, args: tuple[Any, ...], one: bool) -> Any:
        pool = self.pool
        conn = pool.take()
        if conn is None:
            conn = await pool.acquire()  # raises translated errors only
        pool.arm(conn)
        try:
            if one:
                result = await conn.fetchrow(sql, *args)
            else:
                result = await conn.fetch(sql, *args)
        except Exception as e:
            stuck = pool.disarm(conn)
            pool.release(conn, discard=is_connection_error(e))
            if stuck:
                raise Unavailable(
                    f"{self.where}: no answer within {pool.command_timeout:g} s (the "
                    "statement_timeout set in the URL, plus 5 s): the server or the "
                    "network is not responding"
                ) from e
            raise self.failed(e) from e
        except BaseException:  # cancelled mid-statement: the protocol state is unknown
            pool.disarm(conn)
            pool.release(conn, discard=True)
            raise
        pool.disarm(conn)
        pool.release(conn)
        return result

    async def transaction(
        self,
        work: Callable[[Connection], Awaitable[T]],
        *,
        begin: str = "BEGIN",
        attempts: int = 10,
    ) -> T:
        """Run ``work`` in a transaction, again after a serialization failure, a
        deadlock or a lost insert race (``work`` raises :class:`Retry`), up to
        ``attempts`` times in all; then :class:`Conflict`."""

        async def attempt() -> T:
            try:
                async with self.pool.connection() as raw:
                    conn = Timed(raw, self.pool.command_timeout)
                    await conn.execute(begin)
                    try:
                        result = await work(conn)
                    except BaseException:
                        if not conn.is_closed():
                            with contextlib.suppress(Exception):
                                await conn.execute("ROLLBACK")
                        raise
                    await conn.execute("COMMIT")
                    return result
            except (StateportError, Retry):
                raise
            except Exception as e:
                if sqlstate(e) in RETRYABLE:
                    raise Retry(str(e)) from e
                raise self.failed(e) from e

        return await retrying(
            attempt,
            what=f"{self.where}: the transaction",
            backoff=dataclasses.replace(COLLISIONS, tries=attempts),
        )
