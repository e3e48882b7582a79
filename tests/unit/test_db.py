"""The group-commit database: batches, failures, and one owner per file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cinderblock.actors.runtime import database
from cinderblock.actors.runtime.database import (
    Database,
    DatabaseDamaged,
    DatabaseFileError,
    NotTheOwner,
    WriteFailed,
)
from tests.conftest import SLOW_COUNT, eventually

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER);"
# A batch is applied on the loop (NORMAL, the default) or in the database thread (FULL):
# what a batch does is the same either way.
APPLIED = pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])


@APPLIED
async def test_writes_queued_together_are_committed_in_one_batch(
    tmp_path: Path, synchronous: str,
) -> None:
    db = Database(tmp_path / "a.db", SCHEMA, synchronous)
    assert db.inline is (synchronous == "NORMAL")
    await db.open()
    flusher = asyncio.create_task(db.flusher())
    try:
        futures = [db.write("INSERT INTO t VALUES (?, ?)", (f"k{i}", i)) for i in range(50)]
        await asyncio.gather(*futures)
        assert db.statistics() == {"batches": 1, "rows": 50, "largest_batch": 50,
                                   "failed_batches": 0}
        assert await db.fetchall("SELECT count(*) FROM t") == [(50,)]
    finally:
        flusher.cancel()
        await db.close()


@APPLIED
async def test_a_failing_batch_fails_every_write_in_it_and_writes_nothing(
    tmp_path: Path, synchronous: str,
) -> None:
    db = Database(tmp_path / "a.db", SCHEMA, synchronous)
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


@APPLIED
async def test_a_flusher_cancelled_mid_batch_still_answers_its_writers_and_close_waits(
    tmp_path: Path, synchronous: str,
) -> None:
    db = Database(tmp_path / "a.db", SCHEMA, synchronous)
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


async def test_batches_on_the_loop_are_checkpointed_into_the_file_by_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop's connection never checkpoints; every CHECKPOINT_BATCHES commits the
    thread copies the WAL into the file (the file alone, without its WAL, then holds
    the rows)."""
    monkeypatch.setattr(database, "CHECKPOINT_BATCHES", 3)
    path = tmp_path / "a.db"
    db = Database(path, SCHEMA)
    await db.open()

    def rows_in_the_file_alone() -> int:
        alone = tmp_path / "alone.db"
        alone.write_bytes(path.read_bytes())
        conn = sqlite3.connect(alone)
        try:
            found: int = conn.execute("SELECT count(*) FROM t").fetchone()[0]
            return found
        except sqlite3.OperationalError:  # not even the table yet: all in the WAL
            return 0
        finally:
            conn.close()

    try:
        for i in range(2):
            await asyncio.gather(db.write("INSERT INTO t VALUES (?, ?)", (f"k{i}", i)),
                                 db.flush())
        assert rows_in_the_file_alone() == 0  # in the WAL only
        await asyncio.gather(db.write("INSERT INTO t VALUES (?, ?)", ("k2", 2)), db.flush())
        await eventually(lambda: db._checkpointing is None)
        assert rows_in_the_file_alone() == 3
    finally:
        await db.close()


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


# ---- files checked at start ----------------------------------------------------------
async def _made_with_rows(path: Path, rows: int = 2000) -> None:
    db = Database(path, SCHEMA)
    await db.open()
    for i in range(rows):
        db.write("INSERT INTO t VALUES (?, ?)", (f"key-{i:06d}-{'x' * 40}", i))
    await db.flush()
    await db.close()


async def _refused(path: Path, match: str) -> str:
    db = Database(path, SCHEMA)
    with pytest.raises(DatabaseFileError, match=match) as caught:
        await db.open()
    again = Database(path, SCHEMA)  # the refusal let go of the file's owner lock
    with pytest.raises(DatabaseFileError):
        await again.open()
    return str(caught.value)


async def test_a_new_file_gets_the_schema_version_and_a_created_marker(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", SCHEMA, version=1)
    await db.open()
    try:
        assert await db.fetchall("PRAGMA user_version") == [(1,)]
    finally:
        await db.close()
    assert db.created_marker.exists()


async def test_a_file_from_before_versions_with_its_tables_and_rows_is_migrated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    old.execute("INSERT INTO t VALUES ('kept', 7)")
    old.commit()
    old.close()
    db = Database(path, SCHEMA + "CREATE TABLE IF NOT EXISTS u (x INTEGER);", version=1)
    await db.open()
    try:
        assert await db.fetchall("PRAGMA user_version") == [(1,)]
        assert await db.fetchall("SELECT k, v FROM t") == [("kept", 7)]
        assert await db.fetchall("SELECT count(*) FROM u") == [(0,)]
    finally:
        await db.close()


async def test_an_emptied_file_that_held_data_is_refused_not_started_empty(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path, rows=3)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"")
    message = await _refused(path, "is empty")
    assert str(path) in message and "a.db.created" in message
    assert path.stat().st_size == 0  # nothing was written over it
    path.unlink()
    await _refused(path, "is missing")


async def test_a_file_that_is_not_sqlite_is_refused_as_foreign(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    path.write_text("volumes:\n  - id: 1\n" * 100)
    message = await _refused(path, "not an SQLite database")
    assert str(path) in message
    assert path.read_text().startswith("volumes:")


async def test_an_sqlite_file_with_other_tables_is_refused_as_foreign(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE invoices (id INTEGER)")
    other.commit()
    other.close()
    assert "invoices" in await _refused(path, "foreign database")


async def test_a_damaged_file_is_refused_naming_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path)
    size = path.stat().st_size
    assert size > 8 * 4096
    with open(path, "r+b") as f:  # the header stays; pages after the first are garbage
        f.seek(2 * 4096)
        f.write(bytes((i * 97 + 13) % 251 for i in range(4 * 4096)))
    message = await _refused(path, "is damaged")
    assert str(path) in message


def _damage_rows(path: Path) -> None:
    """Garbage over pages 3-6 of a file ``_made_with_rows`` made (its header and schema
    page stay, so the file opens; SQLite cannot even walk the table)."""
    with open(path, "r+b") as f:
        f.seek(2 * 4096)
        f.write(bytes((i * 97 + 13) % 251 for i in range(4 * 4096)))


def _zero_a_page(path: Path) -> None:
    """Zeros over page 11 of a file ``_made_with_rows`` made: ``PRAGMA quick_check``
    names it."""
    with open(path, "r+b") as f:
        f.seek(10 * 4096)
        f.write(bytes(4096))


async def _opened_damaged(path: Path) -> Database:
    """A file ``_made_with_rows`` made, with garbage over its table (``_damage_rows``),
    opened as a large file (not checked before the start)."""
    await _made_with_rows(path)
    _damage_rows(path)
    db = Database(path, SCHEMA, check_before_start_bytes=0)
    await db.open()
    return db


async def test_a_large_file_is_checked_after_the_start_and_damage_stops_its_actor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path)
    whole = path.read_bytes()
    _zero_a_page(path)
    db = Database(path, SCHEMA, check_before_start_bytes=0)  # every file is "large"
    await db.open()  # the start did not wait for the check
    try:
        assert not db.checked and not db.damaged_marker.exists()
        assert (await db.health())["integrity"] == "not checked"
        with pytest.raises(DatabaseDamaged, match="found by the check after the start") as found:
            await asyncio.wait_for(db.watch(), 30)
        assert str(found.value).startswith(f"{path} is damaged (PRAGMA quick_check: ")
        assert "Page 11: btreeInitPage()" in str(found.value)
        assert db.damaged_marker.read_text().startswith(f"{path} is damaged (PRAGMA quick_check")
        assert (await db.health())["integrity"].startswith("damaged (PRAGMA quick_check: ")
    finally:
        await db.close()
    # The next start checks the file first, small or large, and refuses it while damaged
    again = Database(path, SCHEMA, check_before_start_bytes=0)
    with pytest.raises(DatabaseFileError, match="is damaged"):
        await again.open()
    assert again.damaged_marker.exists()
    # Restored whole (a backup): it starts, checked before it answers, and the mark goes
    path.write_bytes(whole)
    restored = Database(path, SCHEMA, check_before_start_bytes=0)
    await restored.open()
    try:
        assert restored.checked and not restored.damaged_marker.exists()
        assert await restored.fetchall("SELECT count(*) FROM t") == [(2000,)]
    finally:
        await restored.close()


async def test_a_whole_large_file_checked_after_the_start_serves_on(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path)
    db = Database(path, SCHEMA, check_before_start_bytes=0)
    await db.open()
    flusher = asyncio.create_task(db.flusher())
    watch = asyncio.create_task(db.watch())
    try:
        assert not db.checked
        await db.write("INSERT INTO t VALUES ('during', 1)")  # writes go on meanwhile
        await eventually(lambda: db.checked, timeout=30)
        assert not watch.done() and not db.damaged_marker.exists()
        assert (await db.health())["integrity"].startswith("whole (checked after the start in ")
    finally:
        for task in (watch, flusher):
            task.cancel()
        await asyncio.gather(watch, flusher, return_exceptions=True)
        await db.close()


async def test_a_file_is_checked_again_while_its_actor_runs_and_damage_then_stops_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path)
    db = Database(path, SCHEMA, check_every_s=0.2)  # small: checked before the start too
    await db.open()
    flusher = asyncio.create_task(db.flusher())
    watch = asyncio.create_task(db.watch())
    try:
        assert db.integrity == "whole (checked before the start)"
        await eventually(lambda: db.integrity.startswith("whole (checked again in "),
                         timeout=30)
        await db.write("INSERT INTO t VALUES ('during', 1)")  # it serves on
        assert not watch.done() and not db.damaged_marker.exists()
        _zero_a_page(path)  # damage in a page nobody reads, found by the next check
        with pytest.raises(DatabaseDamaged, match="found by the check again") as found:
            await asyncio.wait_for(watch, 30)
        assert "Page 11: btreeInitPage()" in str(found.value)
        assert db.damaged_marker.exists()
        assert db.integrity.startswith("damaged (PRAGMA quick_check: ")
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        await db.close()


async def test_a_stop_interrupts_a_check_while_the_actor_runs_and_no_other_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path)
    checkers: list[object] = []
    began = threading.Event()

    class SlowChecks(database._ReaderAside):
        """Counted; a check runs a read of seconds instead (had it ended, its answer
        would not be "ok": the file would be marked damaged)."""

        def __init__(self, path: Path) -> None:
            super().__init__(path)
            checkers.append(self)

        def _fetchall(self, sql: str, params: database.Params) -> list[Any]:
            began.set()
            return super()._fetchall(SLOW_COUNT if sql == "PRAGMA quick_check" else sql, params)

    monkeypatch.setattr(database, "_ReaderAside", SlowChecks)
    db = Database(path, SCHEMA, check_every_s=0.05)
    await db.open()
    watch = asyncio.create_task(db.watch())
    try:
        assert await asyncio.get_running_loop().run_in_executor(None, began.wait, 30)
    finally:
        started = time.monotonic()
        await asyncio.wait_for(db.close(), 10)
    assert time.monotonic() - started < 1.0  # interrupted, not waited for
    await asyncio.sleep(0.3)
    assert len(checkers) == 1  # closed: no other check begins
    assert not watch.done()  # an interrupted check found nothing
    assert not db.damaged_marker.exists() and not db.integrity.startswith("damaged")
    watch.cancel()
    await asyncio.gather(watch, return_exceptions=True)


async def test_a_small_file_is_checked_before_the_start(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path, rows=10)
    db = Database(path, SCHEMA)  # far below 256 MiB
    await db.open()
    try:
        assert db.checked
    finally:
        await db.close()


async def test_damage_sqlite_meets_in_a_read_marks_the_file_and_stops_its_actor(
    tmp_path: Path,
) -> None:
    db = await _opened_damaged(tmp_path / "a.db")
    try:
        with pytest.raises(DatabaseDamaged, match="found while reading it") as read:
            await db.fetchall("SELECT sum(v) FROM t")
        assert db.damaged_marker.exists()
        with pytest.raises(DatabaseDamaged) as stopped:  # the actor's watch ends it
            await asyncio.wait_for(db.watch(), 30)
        assert stopped.value is read.value
    finally:
        await db.close()


async def test_a_file_sqlite_cannot_walk_is_damaged_by_the_check_after_the_start(
    tmp_path: Path,
) -> None:
    db = await _opened_damaged(tmp_path / "a.db")
    try:
        with pytest.raises(DatabaseDamaged, match="malformed, found by the check after the"):
            await asyncio.wait_for(db.watch(), 30)
        assert db.damaged_marker.exists()
    finally:
        await db.close()


async def test_a_file_about_to_be_migrated_is_checked_first_whatever_its_size(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path)
    _damage_rows(path)
    db = Database(path, SCHEMA, version=2, migrations={1: "SELECT 1;"},
                  check_before_start_bytes=0)
    with pytest.raises(DatabaseFileError, match="is damaged"):
        await db.open()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)  # not migrated
    conn.close()


# ---- long reads aside -------------------------------------------------------------------
async def test_a_long_read_aside_holds_up_no_commit_of_the_database_thread(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "a.db", SCHEMA, "FULL")  # every commit in the database thread
    await db.open()
    flusher = asyncio.create_task(db.flusher())
    try:
        # In the database thread, the same read holds a commit up until it ends ...
        slow = asyncio.create_task(db.fetchall(SLOW_COUNT))
        await asyncio.sleep(0.05)
        await db.write("INSERT INTO t VALUES ('behind', 1)")
        assert slow.done()
        # ... aside, the commit goes while it runs
        slow = asyncio.create_task(db.read_aside(SLOW_COUNT))
        await asyncio.sleep(0.05)
        await db.write("INSERT INTO t VALUES ('beside', 2)")
        assert not slow.done()
        assert await slow == [(10000000,)]
        assert await db.read_aside("SELECT k FROM t ORDER BY v") == [("behind",), ("beside",)]
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        await db.close()


async def test_closing_interrupts_a_long_read_aside(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", SCHEMA)
    await db.open()
    slow = asyncio.create_task(db.read_aside(SLOW_COUNT))
    await asyncio.sleep(0.05)
    await db.close()
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        await slow


async def test_reads_aside_waiting_are_served_by_turns_of_whose_they_are(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "a.db", SCHEMA)
    await db.open()
    order: list[str] = []

    async def read(whose: str, name: str) -> None:
        rows = await db.read_aside("SELECT ?", (name,), whose=whose)
        order.append(rows[0][0])

    try:
        # one project asks for four pages at once, another for one after them
        await asyncio.gather(*(read("flooder", f"f{i}") for i in range(1, 5)),
                             read("other", "o1"))
        assert order == ["f1", "o1", "f2", "f3", "f4"]  # in the order asked, o1 would be last
    finally:
        await db.close()


async def test_a_read_aside_whose_asker_stopped_waiting_is_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []
    fetchall = database._ReaderAside._fetchall

    def noted(reader: database._ReaderAside, sql: str, params: database.Params) -> list[Any]:
        ran.append(sql)
        return fetchall(reader, sql, params)

    monkeypatch.setattr(database._ReaderAside, "_fetchall", noted)
    db = Database(tmp_path / "a.db", SCHEMA)
    await db.open()
    try:
        running = asyncio.create_task(db.read_aside(SLOW_COUNT))
        await asyncio.sleep(0.05)
        given_up = asyncio.create_task(db.read_aside("SELECT 'given up'"))
        waiting = asyncio.create_task(db.read_aside("SELECT 'waited'"))
        await asyncio.sleep(0)
        given_up.cancel()
        assert await waiting == [("waited",)]
        assert running.done() and given_up.cancelled()
        assert ran == [SLOW_COUNT, "SELECT 'waited'"]
    finally:
        await db.close()


async def test_closing_refuses_the_reads_aside_still_waiting(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", SCHEMA)
    await db.open()
    running = asyncio.create_task(db.read_aside(SLOW_COUNT))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(db.read_aside("SELECT 1", whose="other"))
    await asyncio.sleep(0)
    await asyncio.wait_for(db.close(), 5)
    for read in (running, waiting):
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            await read


async def test_a_file_of_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path, rows=1)
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version=9")
    newer.commit()
    newer.close()
    assert "schema version 9; this one knows up to 1" in await _refused(path, "is newer")


# ---- memory equal to disk after a failed write ------------------------------------------
class Remembered:
    """An actor's memory of table t, written through the database, reread after a failure."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.rereads = 0

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        rows = dict(conn.execute("SELECT k, v FROM t").fetchall())

        def restore() -> None:
            self.rereads += 1
            self.rows = rows

        return restore


@APPLIED
async def test_settled_waits_for_what_was_queued_before_it_whether_committed_or_failed(
    tmp_path: Path, synchronous: str,
) -> None:
    memory = Remembered()
    db = Database(tmp_path / "a.db", SCHEMA, synchronous, reread=memory.reread)
    await db.open()
    try:
        await db.settled()  # nothing queued: at once
        memory.rows["kept"] = 1
        kept = db.write("INSERT INTO t VALUES (?, ?)", ("kept", 1))
        settled = asyncio.ensure_future(db.settled())
        await asyncio.sleep(0.05)
        assert not settled.done()  # the write is queued, not on disk
        await db.flush()
        await settled
        assert kept.done() and await db.fetchall("SELECT k, v FROM t") == [("kept", 1)]
        memory.rows["lost"] = 2
        failing = db.write("INSERT INTO t VALUES (?, ?)", ("kept", 9))  # primary key clash
        settled = asyncio.ensure_future(db.settled())
        await asyncio.sleep(0.05)
        assert not settled.done()
        await db.flush()
        await settled  # a failed batch settles too, without raising: memory was read back
        assert isinstance(failing.exception(), WriteFailed) and memory.rows == {"kept": 1}
    finally:
        await db.close()


@APPLIED
async def test_a_failed_batch_puts_memory_back_to_the_file_and_fails_writes_built_on_it(
    tmp_path: Path, synchronous: str,
) -> None:
    memory = Remembered()
    db = Database(tmp_path / "a.db", SCHEMA, synchronous, reread=memory.reread)
    await db.open()
    try:
        memory.rows["kept"] = 1
        await asyncio.gather(db.write("INSERT INTO t VALUES (?, ?)", ("kept", 1)), db.flush())
        memory.rows["lost"] = 2  # in memory first, as the actors do
        failing = db.write("INSERT INTO t VALUES (?, ?)", ("kept", 9))  # primary key clash
        flushing = asyncio.ensure_future(db.flush())
        await asyncio.sleep(0)  # the batch is in the thread, or failed and being reread
        memory.rows["later"] = 3  # made on top of the failing change, queued meanwhile
        later = db.write("INSERT INTO t VALUES (?, ?)", ("later", 3))
        await flushing
        with pytest.raises(WriteFailed, match=r"^database write failed: UNIQUE") as first:
            await failing
        assert isinstance(first.value.__cause__, sqlite3.IntegrityError)
        assert first.value.code == "internal" and first.value.details["database"] == "a.db"
        with pytest.raises(WriteFailed, match=r"not saved, an earlier write to a\.db failed"):
            await later
        assert memory.rows == {"kept": 1} and memory.rereads == 1
        assert await db.fetchall("SELECT k, v FROM t") == [("kept", 1)]
        await asyncio.gather(db.write("INSERT INTO t VALUES (?, ?)", ("next", 4)), db.flush())
        assert await db.fetchall("SELECT count(*) FROM t") == [(2,)]  # the file works on
        assert db.statistics()["failed_batches"] == 1
    finally:
        await db.close()


async def test_migrations_take_a_file_of_an_older_version_to_the_current_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    await _made_with_rows(path, rows=2)  # version 1
    grown = SCHEMA + "CREATE TABLE IF NOT EXISTS u (x INTEGER NOT NULL);"
    migrations = {1: "CREATE TABLE u (x INTEGER NOT NULL); INSERT INTO u VALUES (42);"}
    db = Database(path, grown, version=2, migrations=migrations)
    await db.open()
    try:
        assert await db.fetchall("PRAGMA user_version") == [(2,)]
        assert await db.fetchall("SELECT x FROM u") == [(42,)]  # the migration ran, once
        assert await db.fetchall("SELECT count(*) FROM t") == [(2,)]
    finally:
        await db.close()
    fresh = Database(tmp_path / "b.db", grown, version=2, migrations=migrations)
    await fresh.open()  # a new file gets the schema as it is now, no migration
    try:
        assert await fresh.fetchall("SELECT count(*) FROM u") == [(0,)]
    finally:
        await fresh.close()


async def test_a_failed_batch_on_the_loop_is_answered_even_if_the_flusher_is_cancelled(
    tmp_path: Path,
) -> None:
    """The rereading of a failed inline batch runs in the thread as a task of its own:
    an actor stopping (its flusher cancelled) meanwhile still answers the writers, with
    memory put back first, and close waits for it."""
    memory = Remembered()

    def slow_reread(conn: sqlite3.Connection) -> Callable[[], None]:
        time.sleep(0.2)  # in the database thread, while the flusher is cancelled
        return memory.reread(conn)

    db = Database(tmp_path / "a.db", SCHEMA, reread=slow_reread)
    assert db.inline
    await db.open()
    flusher = asyncio.create_task(db.flusher())
    await asyncio.gather(db.write("INSERT INTO t VALUES (?, ?)", ("kept", 1)))
    memory.rows["lost"] = 2
    failing = db.write("INSERT INTO t VALUES (?, ?)", ("kept", 9))  # primary key clash
    await eventually(lambda: db._applying is not None and not db._applying.done())
    flusher.cancel()
    async with asyncio.timeout(5.0):
        await db.close()
        with pytest.raises(WriteFailed, match="UNIQUE"):
            await failing
    assert memory.rows == {"kept": 1} and memory.rereads == 1
