"""One SQLite file, one owner, group commit.

Writes are queued with ``write(sql, params)``, which returns a future. The
flusher takes everything queued since its last turn, runs runs of the same
statement with one ``executemany`` each (order is kept), commits once, and
then resolves every future of the batch. So N requests that arrive together
cost one transaction, not N: this is what lets a create stay far from one
fsync per request. A failed batch is rolled back and every write in it fails.

Only the actor that owns the file creates a ``Database`` for it, and the
file's owner lock (``<file>.owner``, flock) makes that so: a second process
opening the same file fails with ``NotTheOwner`` instead of writing beside it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)
Params = Sequence[Any]


class Database:
    def __init__(self, path: Path, schema: str, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._schema = schema
        self._synchronous = synchronous
        self._conn: aiosqlite.Connection | None = None
        self._pending: list[tuple[str, Params]] = []
        self._committed: asyncio.Future[None] | None = None  # shared by the queued batch
        self._wake = asyncio.Event()
        self._applying: asyncio.Future[None] | None = None  # the batch in the thread now
        self.batches = 0
        self.rows = 0
        self.largest_batch = 0
        self._owner = -1

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._owner = _own(self.path)
        conn = await aiosqlite.connect(self.path)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={self._synchronous}")
        await conn.executescript(self._schema)
        await conn.commit()
        self._conn = conn

    @property
    def conn(self) -> aiosqlite.Connection:
        assert self._conn is not None, "database is not open"
        return self._conn

    def write(self, sql: str, params: Params = ()) -> asyncio.Future[None]:
        """Queue one statement; the future (shared by every write of the same
        batch) resolves when the batch is committed, or fails with it."""
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
            self._wake.set()
        self._pending.append((sql, params))
        return self._committed

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        rows = await self.conn.execute_fetchall(sql, params)
        return list(rows)

    async def flusher(self) -> None:
        """Run forever (owned by the actor), committing what was queued together."""
        while True:
            await self._wake.wait()
            await self.flush()

    async def flush(self) -> None:
        self._wake.clear()
        batch, self._pending = self._pending, []
        committed, self._committed = self._committed, None
        if committed is None:
            return
        # The batch is its own task, settled by a callback: a flusher cancelled while
        # it waits (its actor stopping) leaves the batch to finish and its writers
        # answered, and close() waits for it before closing the connection.
        applying = asyncio.ensure_future(self._in_thread(_apply, list(_runs(batch))))
        applying.add_done_callback(partial(self._applied, committed, len(batch)))
        self._applying = applying
        await asyncio.wait([applying])

    def _applied(self, committed: asyncio.Future[None], rows: int,
                 applying: asyncio.Future[None]) -> None:
        exc = applying.exception() if not applying.cancelled() else asyncio.CancelledError()
        if exc is not None:
            log.error("group commit of %d writes failed", rows, exc_info=exc)
            committed.set_exception(exc)
            committed.exception()  # retrieved here: every writer also sees it
            return
        self.batches += 1
        self.rows += rows
        self.largest_batch = max(self.largest_batch, rows)
        committed.set_result(None)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        # aiosqlite is an actor: one thread, one queue. Its public calls are one
        # thread hop each; a whole batch (every executemany and the commit) is
        # sent as one job through the same queue, so a batch costs one hop.
        return await self.conn._execute(fn, self.conn._conn, *args)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._conn is None:
            return
        if self._applying is not None:
            await asyncio.wait([self._applying])
        await self.flush()
        await self._conn.close()
        self._conn = None
        os.close(self._owner)  # releases the lock

    def statistics(self) -> dict[str, int]:
        return {"batches": self.batches, "rows": self.rows, "largest_batch": self.largest_batch}


class NotTheOwner(RuntimeError):
    """Another process already owns this database file."""


class DatabaseFileError(RuntimeError):
    """The file is not one to start over (empty where data was, foreign, damaged,
    newer); the text names the file and the problem."""


def _own(path: Path) -> int:
    """Take the file's owner lock (held until the process ends or ``close``): a
    second actor pointed at the same file fails here instead of writing beside it."""
    fd = os.open(f"{path}.owner", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise NotTheOwner(f"{path} is owned by another running process (pid {holder})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _runs(batch: list[tuple[str, Params]]) -> Iterable[tuple[str, list[Params]]]:
    """Group consecutive writes of the same statement, keeping their order."""
    current_sql: str | None = None
    group: list[Params] = []
    for sql, params in batch:
        if sql != current_sql and group:
            yield current_sql or "", group
            group = []
        current_sql = sql
        group.append(params)
    if group:
        yield current_sql or "", group


def _apply(conn: sqlite3.Connection, runs: list[tuple[str, list[Params]]]) -> None:
    """Runs in the database thread: the whole batch in one transaction."""
    try:
        for sql, params in runs:
            conn.executemany(sql, params)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
