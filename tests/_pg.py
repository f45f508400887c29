"""Helpers of the PostgreSQL tests: finding the server, fresh schemas, raw SQL.

The server is ``STATEPORT_TEST_POSTGRES_URL`` or, by default,
``postgresql://postgres@127.0.0.1:5432/postgres``. Every schema a test run
creates starts with :data:`RUN` and is dropped at the end of the run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

BASE_URL = os.environ.get(
    "STATEPORT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RUN = f"sp_test_{os.getpid()}_{secrets.token_hex(3)}"
_counter = itertools.count(1)
_problem: list[str | None] = []


def dsn() -> str:
    """The server's URL without stateport's parameters, for a raw driver connection."""
    parts = urlsplit(BASE_URL)
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


def server_problem() -> str | None:
    """Why no server answers at :data:`BASE_URL` (None when one does). Cached."""
    if not _problem:
        try:
            import asyncpg  # noqa: F401
        except ImportError:
            _problem.append("asyncpg is not installed: pip install -e '.[dev,postgres]'")
            return _problem[0]

        async def ping() -> None:
            conn = await raw_connect(connect_timeout=3)
            await conn.close()

        try:
            asyncio.run(ping())
            _problem.append(None)
        except Exception as e:
            _problem.append(f"no PostgreSQL server answers at {BASE_URL}: {e!r}")
    return _problem[0]


async def raw_connect(connect_timeout: float = 10) -> Any:
    import asyncpg

    return await asyncpg.connect(dsn(), timeout=connect_timeout)


def fresh_schema() -> str:
    return f"{RUN}_{next(_counter)}"


def url(schema: str | None = None, **params: Any) -> str:
    """A store URL on the test server for ``schema`` (a fresh one by default)."""
    parts = urlsplit(BASE_URL)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if p)
    query["schema"] = schema or fresh_schema()
    query.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def schema_of(store_url: str) -> str:
    for pair in urlsplit(store_url).query.split("&"):
        if pair.startswith("schema="):
            return pair.split("=", 1)[1]
    raise ValueError(store_url)


async def drop_run_schemas() -> None:
    conn = await raw_connect()
    try:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", RUN + "%"
        )
        for (name,) in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def sql(query: str, *args: Any) -> list[Any]:
    """Run one statement on a raw connection; return its rows."""
    conn = await raw_connect()
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()
