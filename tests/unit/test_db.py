"""The group-commit database: batches, failures, and one owner per file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from cinderblock.actors.runtime.database import Database, NotTheOwner
from tests.conftest import eventually

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER);"


async def test_writes_queued_together_are_committed_in_one_batch(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", SCHEMA)
    await db.open()
    flusher = asyncio.create_task(db.flusher())
    try:
        futures = [db.write("INSERT INTO t VALUES (?, ?)", (f"k{i}", i)) for i in range(50)]
        await asyncio.gather(*futures)
        assert db.statistics() == {"batches": 1, "rows": 50, "largest_batch": 50}
        assert await db.fetchall("SELECT count(*) FROM t") == [(50,)]
    finally:
        flusher.cancel()
        await db.close()


async def test_a_failing_batch_fails_every_write_in_it_and_writes_nothing(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "a.db", SCHEMA)
    await db.open()
    try:
        ok = db.write("INSERT INTO t VALUES (?, ?)", ("k", 1))
        dup = db.write("INSERT INTO t VALUES (?, ?)", ("k", 2))  # primary key clash
        await db.flush()
        for fut in (ok, dup):
            with pytest.raises(Exception, match="UNIQUE"):
                await fut
        assert await db.fetchall("SELECT count(*) FROM t") == [(0,)]
    finally:
        await db.close()


async def test_a_second_owner_of_the_same_file_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    first = Database(tmp_path / "a.db", SCHEMA)
    await first.open()
    second = Database(tmp_path / "a.db", SCHEMA)
    with pytest.raises(NotTheOwner, match="owned by another running process"):
        await second.open()
    await first.close()
    await second.open()  # the lock went with the first owner
    await second.close()


async def test_a_flusher_cancelled_mid_batch_still_answers_its_writers_and_close_waits(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "a.db", SCHEMA)
    await db.open()
    flusher = asyncio.create_task(db.flusher())
    written = db.write("INSERT INTO t VALUES (?, ?)", ("k", 1))
    await eventually(lambda: not db._pending)  # the flusher took the batch to the thread
    flusher.cancel()  # as an actor stopping does
    await db.close()
    await written  # committed, and its writer told so
    reopened = Database(tmp_path / "a.db", SCHEMA)
    await reopened.open()
    try:
        assert await reopened.fetchall("SELECT k, v FROM t") == [("k", 1)]
    finally:
        await reopened.close()


async def test_the_aiosqlite_internals_a_batch_relies_on_are_there(tmp_path: Path) -> None:
    """A whole batch goes through aiosqlite's queue as one job, which needs its private
    ``Connection._execute`` and ``Connection._conn``: pyproject pins aiosqlite below the
    release that may change them, and this fails first if one does."""
    import aiosqlite

    conn = await aiosqlite.connect(tmp_path / "b.db")
    try:
        raw = conn._conn
        assert isinstance(raw, sqlite3.Connection)
        answer = await conn._execute(  # type: ignore[no-untyped-call]
            lambda c: c.execute("SELECT 41 + 1").fetchone(), raw)
        assert answer == (42,)
    finally:
        await conn.close()
