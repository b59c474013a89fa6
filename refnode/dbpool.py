"""The node's database connections: psycopg's pool, which replaces broken connections, or the
planted bug ``REFNODE_DB_RECONNECT=0``: a fixed set opened at start and never reopened, so a
database restart leaves the node failing every read and write until the node restarts.

    pool = await open_pool(dsn, max_size=8, reconnect=True)
    async with pool.connection() as conn: ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool


class FixedPool:
    """``size`` connections handed out in turn; a broken one goes back in as it is."""

    def __init__(self, dsn: str, size: int):
        self.dsn, self.size = dsn, size
        self._idle: asyncio.Queue[psycopg.AsyncConnection] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection] = []

    async def open(self) -> None:
        for _ in range(self.size):
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            self._all.append(conn)
            self._idle.put_nowait(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        conn = await self._idle.get()
        try:
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()


Pool = AsyncConnectionPool | FixedPool


async def open_pool(dsn: str, max_size: int, reconnect: bool) -> Pool:
    """psycopg's pool (``reconnect``), else the fixed set of the planted bug."""
    if not reconnect:
        fixed = FixedPool(dsn, max_size)
        await fixed.open()
        return fixed
    pool = AsyncConnectionPool(dsn, min_size=2, max_size=max_size, open=False,
                               kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=30)
    return pool
