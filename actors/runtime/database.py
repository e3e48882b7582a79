"""One SQLite file, one owner, group commit.

Writes are queued with ``write(sql, params)``, which returns a future. The
flusher takes everything queued since its last turn, runs runs of the same
statement with one ``executemany`` each (order is kept), commits once, and
then resolves every future of the batch. So N requests that arrive together
cost one transaction, not N: this is what lets a create stay far from one
fsync per request. A failed batch is rolled back and every write in it fails.

Memory equal to disk after a failed write (a full disk, an I/O error). An actor
that keeps its records in memory and writes them through here may give
``reread``: a function run in the database thread right after the rollback of a
failed batch, which reads the file's rows and returns what puts them back in
memory. Then every write queued since that batch fails too (it was made on the
memory the failed batch had changed), and the returned function runs on the
loop before anything else can: memory is again exactly what the file holds. The
next batch tries the file again, so once space returns everything works without
a restart. If even the rereading (or putting it in memory) fails,
``MemoryNotRestored`` ends the flusher (and with it the actor: a restart loads
memory from the file).

A failed write fails with ``WriteFailed`` (an ``internal`` error on the wire) that
says what failed and why, in words: "database write failed: disk full (gateway.db:
database or disk is full)"; the writes that built on it say they were not saved
because of it.

Where a batch is applied. With ``synchronous=FULL`` a commit waits for fsync, so a
batch goes to the database thread (aiosqlite), one hop there and one back, and the
loop goes on meanwhile. With ``NORMAL`` (the default) in WAL mode a commit appends
to the WAL and does not wait for the disk: it takes tens of microseconds, less than
the two hops (each a queue, a thread wake-up, a GIL hand-over and a wake-up of the
loop through its self-pipe), so the batch is applied on the loop itself, on a
connection of the loop's own (``inline``). What NORMAL does fsync is the checkpoint
that copies the WAL back into the file; the loop's connection never checkpoints
(``wal_autocheckpoint=0``) and the database thread does it, passively, every
``CHECKPOINT_BATCHES`` commits (a few pages each: about SQLite's own 1,000 pages).
Reads (a start's, ``fetchall``) and the rereading after a failed batch stay in the
thread either way.

Only the actor that owns the file creates a ``Database`` for it, and the
file's owner lock (``<file>.owner``, flock) makes that so: a second process
opening the same file fails with ``NotTheOwner`` instead of writing beside it.

Files checked at start. A database carries its schema version in ``PRAGMA
user_version`` (``version``); the tables it may hold are those its schema makes.
``open`` refuses, with ``DatabaseFileError`` naming the file and the problem:

* a file that is missing or empty (0 bytes) while ``<file>.created`` says it
  was made and held data: never start empty over a file that held data;
* a foreign file: not SQLite, or holding tables this schema does not make;
* a damaged file (``PRAGMA quick_check`` is not ``ok``, or SQLite cannot read it);
* a newer file (its version is above ``version``).

The damage check reads the whole file (about a second a gigabyte here), so a start
waits for it only where it is cheap or needed: a file of at most
``check_before_start_bytes`` (the cluster file's ``check_before_start_mb``), one
that is about to be migrated, or one marked damaged. A larger file is checked right
after the start, while the actor answers (``watch``), and every file is checked again
every ``check_every_s`` while its actor runs (the cluster file's ``check_every_hours``),
so that damage in pages nobody reads is found while the backups still hold them whole.
These checks run on a read-only connection and a thread of their own, as one read
transaction (they see the file as it was when they began, and writes go on meanwhile);
they hold up no other read, and a stop interrupts them. Whatever finds the file damaged
(a check, or SQLite while the actor reads or writes it: ``note_damage``) writes
``<file>.damaged`` and stops the actor with
``DatabaseDamaged``, which its process exits on as on a refused start: the
supervisor does not start it again. The next start checks the file before answering
whatever its size, refuses it while it is damaged, and removes the marker once the
file (repaired, or restored from a backup) is whole.

Migrations: ``migrations[v]`` (SQL, or a function given the connection: a step SQL
cannot say idempotently, such as adding a column) takes a file from version v to v + 1. A file
of version 0 that has our tables is from before versions were kept, and has
version 1's layout; a new file (no tables) gets the schema as it is now. Then the
schema (all ``IF NOT EXISTS``) adds any table the file lacks, and the version is set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite

from cinderblock.actors.runtime.fair_line import FairLine
from cinderblock.protocol.wire.errors import InternalError

# a schema step: SQL, or a function that makes the change on the connection
Migration = str | Callable[[sqlite3.Connection], None]
log = logging.getLogger(__name__)
Params = Sequence[Any]
Reread = Callable[[sqlite3.Connection], Callable[[], None]]
Failure = tuple[BaseException, Callable[[], None] | None]  # an error, what restores memory


SQLITE_HEADER = b"SQLite format 3\x00"
CHECK_BEFORE_START_BYTES = 256 * 2**20  # checked before the start (a fraction of a second)
CHECK_EVERY_S = 24 * 3600.0  # checked again while its actor runs (0: never)
WHOLE = "whole"  # how ``integrity`` begins once PRAGMA quick_check found the file whole
INLINE_SYNCHRONOUS = frozenset({"OFF", "NORMAL"})  # commits that do not wait for fsync
CHECKPOINT_BATCHES = 250  # commits on the loop between checkpoints in the thread


class Database:
    def __init__(self, path: Path, schema: str, synchronous: str = "NORMAL", *,
                 version: int = 1, migrations: Mapping[int, Migration] | None = None,
                 reread: Reread | None = None,
                 check_before_start_bytes: int = CHECK_BEFORE_START_BYTES,
                 check_every_s: float = CHECK_EVERY_S) -> None:
        self.path = path
        self._check_before_start_bytes = check_before_start_bytes
        self._check_every_s = check_every_s
        self.integrity = "not checked"  # what PRAGMA quick_check found (health shows it)
        self._damage: asyncio.Future[DatabaseDamaged] | None = None  # what found it damaged
        self._reread = reread
        self._not_restored: MemoryNotRestored | None = None
        self.failed_batches = 0
        self._schema = schema
        self.version = version
        self._migrations = migrations or {}
        self._synchronous = synchronous
        self._conn: aiosqlite.Connection | None = None
        # batches are applied on the loop, on a connection of its own (see the module text)
        self.inline = synchronous.upper() in INLINE_SYNCHRONOUS
        self._loop_conn: sqlite3.Connection | None = None
        self._unchecked = 0  # commits on the loop since the last checkpoint
        self._checkpointing: asyncio.Future[Any] | None = None
        self._pending: list[tuple[str, Params]] = []
        self._committed: asyncio.Future[None] | None = None  # shared by the queued batch
        self._wake = asyncio.Event()
        self._applying: asyncio.Future[None] | None = None  # the batch in the thread now
        self.batches = 0
        self.rows = 0
        self.largest_batch = 0
        self._owner = -1
        self._aside: _ReaderAside | None = None  # long reads (read_aside), made when first asked
        self._checker: _ReaderAside | None = None  # the check running while the actor does

    @property
    def created_marker(self) -> Path:
        """Written once the file exists with its tables: from then on it holds data."""
        return self.path.with_name(self.path.name + ".created")

    @property
    def checked(self) -> bool:
        """PRAGMA quick_check found the file whole (before the start or after)."""
        return self.integrity.startswith(WHOLE)

    @property
    def damaged_marker(self) -> Path:
        """Written when the file is found damaged: the next start checks it first."""
        return self.path.with_name(self.path.name + ".damaged")

    async def open(self) -> None:
        """Own the file, check it (see the module text), migrate it, and connect."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._owner = _own(self.path)
        self._damage = asyncio.get_running_loop().create_future()
        try:
            self._check_file()
            check_now = self._check_now()
            conn = await aiosqlite.connect(self.path)
        except BaseException:
            os.close(self._owner)
            raise
        try:
            await conn._execute(  # type: ignore[no-untyped-call]
                self._prepare, conn._conn, check_now)
        except BaseException:
            await conn.close()
            os.close(self._owner)
            raise
        self._conn = conn
        if self.inline:
            self._loop_conn = sqlite3.connect(self.path)
            self._loop_conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._loop_conn.execute("PRAGMA wal_autocheckpoint=0")  # the thread does it
        if not self.created_marker.exists():
            _write_durably(self.created_marker, f"schema version {self.version}\n")

    def _check_file(self) -> None:
        """What can be told before SQLite opens it: missing or empty where data was, or
        not SQLite at all."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            header = None
        if not header and self.created_marker.exists():
            what = "missing" if header is None else "empty (0 bytes)"
            raise DatabaseFileError(
                f"{self.path} is {what}, but it held data ({self.created_marker} exists); "
                f"restore it from a backup, or remove {self.created_marker} to start "
                "with an empty database")
        if header and header != SQLITE_HEADER:
            raise DatabaseFileError(f"{self.path} is not an SQLite database (foreign file)")

    def _check_now(self) -> bool:
        """Whether the start waits for the damage check (see the module text): the file
        (and its WAL) is small, or was found damaged before."""
        if self.damaged_marker.exists():
            return True
        size = 0
        for each in (self.path, Path(f"{self.path}-wal")):
            with contextlib.suppress(FileNotFoundError):
                size += each.stat().st_size
        return size <= self._check_before_start_bytes

    def _prepare(self, conn: sqlite3.Connection, check_now: bool) -> None:
        """In the database thread: check, migrate, and set the file up."""
        try:
            if check_now or _version(conn) != self.version:  # never migrate a damaged file
                _check_integrity(self.path, conn)
                self.integrity = f"{WHOLE} (checked before the start)"
                if self.damaged_marker.exists():
                    log.warning("%s was found damaged before; PRAGMA quick_check now finds "
                                "it whole (removing %s)", self.path, self.damaged_marker)
                    self.damaged_marker.unlink()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            found = _tables(conn)
            _migrate(self.path, conn, found, self._schema, self.version, self._migrations)
        except sqlite3.DatabaseError as exc:
            raise DatabaseFileError(f"{self.path} is damaged: {exc}") from exc

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

    async def settled(self) -> None:
        """Wait until every write queued before this call has been committed or has
        failed (and memory was read back from the file): what memory holds then is what
        the file holds, for a reader that shows state. Writes queued meanwhile are not
        waited for, so a steady stream of them cannot hold the reader up for ever."""
        waiting = [f for f in (self._applying, self._committed) if f is not None and not f.done()]
        if waiting:
            await asyncio.wait(waiting)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        try:
            rows = await self.conn.execute_fetchall(sql, params)
        except sqlite3.DatabaseError as exc:
            self._raise_if_damaged(exc)
            raise
        return list(rows)

    async def read_aside(self, sql: str, params: Params = (), whose: str = "") -> list[Any]:
        """A long read (a sorted page orders every row of a listing) on a read-only
        connection in a thread of its own, one at a time: it never waits for, nor holds
        up, what the database thread does (the start's reads, checkpoints, and with
        ``FULL`` every commit), however many are asked for at once. Reads waiting their
        turn are served by turns of ``whose`` they are (``FairLine``): one asker's many
        reads do not hold another's behind all of them."""
        try:
            return await self._reader_aside().fetchall(sql, params, whose)
        except sqlite3.DatabaseError as exc:
            self._raise_if_damaged(exc)
            raise

    def _reader_aside(self) -> _ReaderAside:
        if self._aside is None:
            self._aside = _ReaderAside(self.path)
        return self._aside

    async def watch(self) -> None:
        """Run while the actor runs (the actor shell does: ``Actor._watch``): check a
        file the start did not wait to check, then again every ``check_every_s``; raise
        ``DatabaseDamaged`` once anything finds the file damaged (module text), which
        stops the actor."""
        assert self._damage is not None, "database is not open"
        if not self.checked:
            await self._check_aside("after the start")
        while self._check_every_s > 0 and self._open_and_whole():
            await asyncio.wait([self._damage], timeout=self._check_every_s)
            if self._open_and_whole():
                await self._check_aside("again")
        raise await self._damage

    def _open_and_whole(self) -> bool:
        return self._conn is not None and self._damage is not None and not self._damage.done()

    async def _check_aside(self, when: str) -> None:
        """``PRAGMA quick_check`` on a read-only connection and thread of its own: it holds
        up no write, read or sorted page, and a stop interrupts it (``close``)."""
        started, wall = time.monotonic(), time.time()
        if not self.checked:
            self.integrity = f"being checked ({when})"
        checker = self._checker = _ReaderAside(self.path)
        try:
            problems = [row[0] for row in await checker.fetchall("PRAGMA quick_check", ())]
        except sqlite3.DatabaseError as exc:
            if checker.closed:
                return  # the actor stops: closing interrupted the check
            if self.note_damage(exc, f"by the check {when}") is None:  # could not even walk it
                self.integrity = f"not checked ({when}): {exc}"
                log.warning("%s could not be checked %s: %s", self.path, when, exc)
            return
        finally:
            self._checker = None
            await checker.close()
        if problems != ["ok"]:
            self._found_damaged(f"{_damage_text(problems)}, found by the check {when}")
            return
        took = time.monotonic() - started
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
        self.integrity = f"{WHOLE} (checked {when} in {took:.1f} s, at {at})"
        log.info("%s checked %s: whole (%.1f s)", self.path, when, took)

    def _raise_if_damaged(self, exc: sqlite3.DatabaseError) -> None:
        """A read failed: ``DatabaseDamaged`` instead if SQLite said the file is."""
        damaged = self.note_damage(exc, "while reading it")
        if damaged is not None:
            raise damaged from exc

    def note_damage(self, exc: BaseException, when: str) -> DatabaseDamaged | None:
        """If ``exc`` is SQLite saying the file is damaged (met on any connection to it):
        the file is marked and the actor stops (``_found_damaged``), and this says so."""
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
            return self._found_damaged(f"{exc}, found {when}")
        return None

    def _found_damaged(self, what: str) -> DatabaseDamaged:
        """Mark the file damaged (the next start checks it first) and stop the actor;
        the error that says so (the first one, if it was found before)."""
        if self._damage is not None and self._damage.done():
            return self._damage.result()
        text = f"{self.path} is damaged ({what})"
        self.integrity = f"damaged ({what})"
        log.error("%s; stopping (%s says so until a start finds the file whole)", text,
                  self.damaged_marker.name)
        try:
            _write_durably(self.damaged_marker, text + "\n")
        except OSError as exc:
            log.error("cannot write %s: %s", self.damaged_marker, exc)
        damaged = DatabaseDamaged(f"{text}; {self.damaged_marker.name} is left for the next "
                                  "start, which checks the whole file first")
        if self._damage is not None:
            self._damage.set_result(damaged)
        return damaged

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
        if self._loop_conn is not None:
            await self._apply_inline(self._loop_conn, batch, committed)
            return
        # The batch is its own task, settled by a callback: a flusher cancelled while
        # it waits (its actor stopping) leaves the batch to finish and its writers
        # answered, and close() waits for it before closing the connection.
        applying = asyncio.ensure_future(
            self._in_thread(_apply, list(_runs(batch)), self._reread))
        applying.add_done_callback(partial(self._applied, committed, len(batch)))
        self._applying = applying
        await asyncio.wait([applying])
        if self._not_restored is not None:
            raise self._not_restored  # memory may differ from the file: stop the actor

    async def _apply_inline(self, conn: sqlite3.Connection, batch: list[tuple[str, Params]],
                            committed: asyncio.Future[None]) -> None:
        """The batch on the loop: committed before anything else runs. A failed one is
        rolled back at once; the file is read back in the thread by a task of its own
        (as a threaded batch is), so that a flusher cancelled meanwhile still leaves
        its writers answered, and ``close`` waits for it."""
        failure = _apply(conn, list(_runs(batch)), None)
        if failure is None:
            self._settled(committed, len(batch))
            self._unchecked += 1
            if self._unchecked >= CHECKPOINT_BATCHES and self._checkpointing is None:
                self._unchecked = 0
                self._checkpointing = asyncio.ensure_future(self._in_thread(_checkpoint))
                self._checkpointing.add_done_callback(self._checkpointed)
            return
        handling = asyncio.ensure_future(self._after_failure(len(batch), committed, failure[0]))
        self._applying = handling
        await asyncio.wait([handling])
        if self._not_restored is not None:
            raise self._not_restored  # memory may differ from the file: stop the actor

    async def _after_failure(self, writes: int, committed: asyncio.Future[None],
                             exc: BaseException) -> None:
        restore = None
        if self._reread is not None:
            try:
                restore = await self._in_thread(self._reread)
            except sqlite3.Error:
                log.exception("reading %s back after a failed write failed", self.path)
        try:
            self._failed(writes, committed, exc, restore)
        except MemoryNotRestored as lost:
            self._not_restored = lost

    def _checkpointed(self, done: asyncio.Future[Any]) -> None:
        self._checkpointing = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("checkpoint of %s failed: %s", self.path, done.exception())

    def _applied(self, committed: asyncio.Future[None], rows: int,
                 applying: asyncio.Future[Failure | None]) -> None:
        if applying.cancelled():
            failure: Failure | None = (asyncio.CancelledError(), None)
        elif (exc := applying.exception()) is not None:
            failure = (exc, None)
        else:
            failure = applying.result()
        if failure is not None:
            try:
                self._failed(rows, committed, *failure)
            except MemoryNotRestored as lost:
                self._not_restored = lost
            return
        self._settled(committed, rows)

    def _settled(self, committed: asyncio.Future[None], rows: int) -> None:
        self.batches += 1
        self.rows += rows
        self.largest_batch = max(self.largest_batch, rows)
        committed.set_result(None)

    def _failed(self, writes: int, committed: asyncio.Future[None], exc: BaseException,
                restore: Callable[[], None] | None) -> None:
        self.failed_batches += 1
        self.note_damage(exc, "by a write")
        log.error("group commit of %d writes to %s failed: %s", writes, self.path, exc)
        why = failure_reason(exc)
        failed = WriteFailed(f"database write failed: {why} ({self.path.name}: {exc})",
                             {"database": self.path.name, "reason": why})
        failed.__cause__ = exc
        _fail(committed, failed)
        if self._reread is None:
            return
        if restore is None:
            raise MemoryNotRestored(f"{self.path}: a write failed ({exc}) and the file could "
                                    "not be read back; stopping so that a start reloads it")
        later, self._committed, self._pending = self._committed, None, []
        if later is not None:
            _fail(later, WriteFailed(
                f"database write failed: not saved, an earlier write to {self.path.name} "
                f"failed ({why})", {"database": self.path.name, "reason": why}))
        try:
            restore()
        except Exception as lost:
            log.exception("putting %s back in memory after a failed write failed", self.path)
            raise MemoryNotRestored(f"{self.path}: a write failed ({exc}) and memory could not "
                                    "be made equal to the file; stopping so that a start "
                                    "reloads it") from lost

    async def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(connection)`` in the database thread (reads at start)."""
        try:
            return await self._in_thread(fn)
        except sqlite3.DatabaseError as exc:
            self._raise_if_damaged(exc)
            raise

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
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])
        await self._close_connections()

    async def abandon(self) -> None:
        """Let go of the file without writing what is queued, as its actor stops on an
        error (the file found damaged, memory not restored): the queued writes fail, a
        batch already in the thread ends, the connections close (aiosqlite's thread
        with them, which the process would otherwise wait for) and the lock goes.
        It does nothing once ``close`` has run."""
        if self._conn is None:
            return
        queued, self._committed, self._pending = self._committed, None, []
        if queued is not None:
            _fail(queued, WriteFailed(f"database write failed: not saved, {self.path.name} "
                                      "was let go as its actor stopped",
                                      {"database": self.path.name, "reason": "stopped"}))
        for running in (self._applying, self._checkpointing):
            if running is not None:
                await asyncio.wait([running])
        await self._close_connections()

    async def _close_connections(self) -> None:
        for reader in (self._aside, self._checker):
            if reader is not None:
                await reader.close()
        self._aside = self._checker = None
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        assert self._conn is not None
        await self._conn.close()
        self._conn = None
        os.close(self._owner)  # releases the lock

    def statistics(self) -> dict[str, int]:
        return {"batches": self.batches, "rows": self.rows, "largest_batch": self.largest_batch,
                "failed_batches": self.failed_batches}

    async def health(self, timeout: float = 1.0) -> dict[str, Any]:
        """Whether the file answers a query now, and the writes waiting for a commit."""
        state = "closed"
        if self._conn is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self.fetchall("SELECT 1")
                state = "ok"
            except (TimeoutError, sqlite3.Error, DatabaseDamaged) as exc:
                state = f"error: {exc or 'no answer in time'}"
        return {"state": state, "path": str(self.path), "integrity": self.integrity,
                "synchronous": self._synchronous.upper(), "pending_writes": len(self._pending),
                **self.statistics()}


class NotTheOwner(RuntimeError):
    """Another process already owns this database file."""


class WriteFailed(InternalError):
    """A write was not saved: its batch failed (a full disk, an I/O error), or an
    earlier one that it built on did. The message says which, and why."""


async def all_committed(*writes: Awaitable[None]) -> None:
    """Await writes queued in one loop turn (one transaction), every one of them."""
    for write in writes:
        await write


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``. It is opened by URI (``mode=ro``), so the path
    is quoted: a data directory may be named with ``#``, ``?`` or ``%``, which a URI
    would otherwise take for its own (and open some other file)."""
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)


def failure_reason(exc: BaseException) -> str:
    """Why a write failed, in a few words ("disk full", "I/O error", ...)."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_FULL" or "disk is full" in str(exc):
        return "disk full"
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in str(exc):
        return "I/O error"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class MemoryNotRestored(RuntimeError):
    """A write failed and the file could not be read back into memory."""


class DatabaseFileError(RuntimeError):
    """The file is not one to start over (empty where data was, foreign, damaged,
    newer); the text names the file and the problem."""


class DatabaseDamaged(DatabaseFileError):
    """The file was found damaged while its actor ran: it stops, and is not started
    again until a start finds the file whole."""


def _check_integrity(path: Path, conn: sqlite3.Connection) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise DatabaseFileError(f"{path} is damaged ({_damage_text(problems)})")


def _damage_text(problems: list[Any]) -> str:
    """``PRAGMA quick_check``'s findings on one line: the first three, and how many
    more (SQLite may put several in one row, under a "*** in database main ***" line)."""
    found = [line.strip() for p in problems for line in str(p).splitlines()
             if line.strip() and not line.startswith("***")]
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f"PRAGMA quick_check: {'; '.join(found[:3])}{more}"


def _version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


_Read = tuple[str, Params, "asyncio.Future[list[Any]]"]  # a read waiting, and its answer


class _ReaderAside:
    """A read-only connection to a file and the one thread that uses it (``Database.
    read_aside``, the checks while the actor runs): its reads go one at a time, those
    waiting are served by turns of whose they are, and ``close`` ends them at once (the
    running one interrupted, the waiting ones refused)."""

    INTERRUPT_EVERY_S = 0.01  # a read may not have begun when first interrupted

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"read-aside-{path.name}")
        self._conn: sqlite3.Connection | None = None  # made and used in that thread only
        self._line: FairLine[_Read] = FairLine()
        self._running: asyncio.Future[list[Any]] | None = None  # the read in the thread
        self.closed = False

    def _fetchall(self, sql: str, params: Params) -> list[Any]:
        if self._conn is None:
            self._conn = open_read_only(self._path)
        return self._conn.execute(sql, params).fetchall()

    async def fetchall(self, sql: str, params: Params, whose: str = "") -> list[Any]:
        if self.closed:
            raise sqlite3.OperationalError("interrupted")
        answer: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._line.add(whose, (sql, params, answer))
        self._serve()
        return await answer

    def _serve(self) -> None:
        """Start the next read whose asker still waits, unless one runs."""
        while self._running is None and not self.closed:
            read = self._line.next()
            if read is None:
                return
            sql, params, answer = read
            if answer.done():  # its asker stopped waiting (cancelled)
                continue
            self._running = asyncio.wrap_future(self._thread.submit(self._fetchall, sql, params))
            self._running.add_done_callback(partial(self._ran, answer))

    def _ran(self, answer: asyncio.Future[list[Any]], ran: asyncio.Future[list[Any]]) -> None:
        self._running = None
        error = None if ran.cancelled() else ran.exception()  # heard, even if not passed on
        if answer.done():  # its asker stopped waiting
            pass
        elif ran.cancelled():
            answer.cancel()
        elif error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(ran.result())
        self._serve()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    async def close(self) -> None:
        """Refuse the reads waiting, interrupt the one running (SQLite's interrupt is lost
        on a statement that has not begun, so it is sent until the read has ended), then
        close the connection and the thread. Closing again does nothing."""
        if self.closed:
            return
        self.closed = True
        for _sql, _params, answer in self._line.clear():
            if not answer.done():
                answer.set_exception(sqlite3.OperationalError("interrupted"))
        running = self._running
        while running is not None and not running.done():
            if self._conn is not None:
                self._conn.interrupt()  # the thread closes it only after this read
            await asyncio.wait([running], timeout=self.INTERRUPT_EVERY_S)
        await asyncio.wrap_future(self._thread.submit(self._close))
        self._thread.shutdown()


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                        "AND name NOT LIKE 'sqlite_%'").fetchall()
    return {row[0] for row in rows}


def schema_tables(schema: str) -> set[str]:
    """The tables a schema makes (run on an empty database in memory)."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(schema)
        return _tables(mem)
    finally:
        mem.close()


def _migrate(path: Path, conn: sqlite3.Connection, found: set[str], schema: str,
             version: int, migrations: Mapping[int, Migration]) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > version:
        raise DatabaseFileError(
            f"{path} is newer than this cinderblock (schema version {current}; this one "
            f"knows up to {version})")
    expected = schema_tables(schema)
    unknown = found - expected
    if unknown:
        raise DatabaseFileError(
            f"{path} is a foreign database (tables this actor does not know: "
            f"{', '.join(sorted(unknown))})")
    start = current or (1 if found else version)
    for step in range(start, version):
        migration = migrations[step]  # each from version ``step`` to ``step + 1``
        if isinstance(migration, str):
            conn.executescript(migration)
        else:
            migration(conn)
    conn.executescript(schema)  # what the file lacks (all of it, for a new file)
    conn.execute(f"PRAGMA user_version={version}")
    conn.commit()


def _write_durably(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


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


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    fut.set_exception(exc)
    fut.exception()  # retrieved here: every writer also sees it


def _checkpoint(conn: sqlite3.Connection) -> None:
    """In the database thread: copy what the WAL holds back into the file (PASSIVE:
    it never waits for, nor holds up, the loop's writes)."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _apply(conn: sqlite3.Connection, runs: list[tuple[str, list[Params]]],
           reread: Reread | None) -> tuple[BaseException, Callable[[], None] | None] | None:
    """The whole batch in one transaction, in the database thread (or on the loop, on
    its own connection: ``Database.inline``). None if it was committed; else the error
    and (with ``reread``) what puts the file back in memory."""
    try:
        for sql, params in runs:
            conn.executemany(sql, params)
        conn.commit()
    except Exception as exc:
        conn.rollback()
        if reread is None:
            return exc, None
        try:
            return exc, reread(conn)
        except sqlite3.Error:
            log.exception("reading %s back after a failed write failed", "the database")
            return exc, None
    except BaseException:
        conn.rollback()
        raise
    return None
