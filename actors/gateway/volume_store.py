"""The gateway's records: volumes and volume types, in memory and in its SQLite file.

The gateway is the only writer of this file. Records live in memory (the
gateway answers show/list and judges status moves from them) and every change
is written through the group-commit ``Database`` before the gateway tells
anyone about it, so what a client was told survives a restart.

Memory per volume, which a million volumes multiply (``docs/performance.md``, "As
the data grows"): a record is one slotted object; the strings many volumes repeat
(project, user, zone, host) are interned, so each is held once; a volume without
metadata shares one empty dict (never changed in place: an edit puts a new dict);
the listing index holds references, not key tuples. A start reads every row in the
database thread in one job, with the cyclic collector paused (a million new objects
would otherwise set off full collections that scan all of them again and again).

Request ids expire, as EC2's client tokens do: a request id names the volume it made
for ``REQUEST_ID_TTL_S`` (a day) after the create, and lives in the row, not in
memory. ``made_by`` asks the file through an index on (project_id, request_id), on a
read-only connection of its own, on the loop: an indexed read is a few microseconds
where a hop to the database thread costs about 160, and in WAL mode it never waits
for the writer. It sees committed rows only, so the records whose row is still being
written are looked up in memory (``_unwritten``) first.

Memory equal to disk after a failed write (a full disk, an I/O error). The store
gives its ``Database`` ``reread``: run in the database thread right after the failed
batch is rolled back, it reads every table of the file (its own, and those of the
others that keep rows here: types, attachments, user messages, added with
``reread_with``) and returns what brings memory back to them, which runs on the loop
before any flow resumes. Records are changed in place, because running flows hold
them: a record whose row exists gets every field the row holds reset (a removal whose
write failed brings its very record back, from ``_removing``); one with no row is
dropped from every map; the listing index and the by-request maps are rebuilt. A start
loads memory with the same code.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cinderblock.actors.gateway.attachment_store import SCHEMA as ATTACHMENT_SCHEMA
from cinderblock.actors.gateway.delete_requests import DELETE_REQUESTS_SCHEMA
from cinderblock.actors.gateway.guards import made_by_row
from cinderblock.actors.gateway.paging import ListingIndex
from cinderblock.actors.gateway.quota_journal import JOURNAL_SCHEMA, QuotaJournal
from cinderblock.actors.gateway.snapshot_store import (
    SNAPSHOT_SCHEMA,
    SnapshotRecord,
    SnapshotStore,
    settled_removal,
)
from cinderblock.actors.runtime.database import Database, Reread
from cinderblock.actors.scheduler.extra_specs import match
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.states import VolumeStatus

# The statuses a volume passes through while a node works on it: the reconciler looks for
# volumes left in one. A partial index holds just those rows (a few among a million), and
# its condition is spelt out in the query too, as SQLite needs to use it.
IN_TRANSITION = (VolumeStatus.CREATING, VolumeStatus.DELETING, VolumeStatus.EXTENDING)
_IN_TRANSITION_SQL = f"status IN ({', '.join(repr(s.value) for s in IN_TRANSITION)})"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS volumes (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, name TEXT, description TEXT,
    size INTEGER NOT NULL, status TEXT NOT NULL, volume_type_id TEXT, availability_zone TEXT,
    host TEXT, metadata TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    reason TEXT, request_id TEXT, request_fp TEXT
);
CREATE INDEX IF NOT EXISTS volumes_project ON volumes (project_id);
CREATE INDEX IF NOT EXISTS volumes_request ON volumes (project_id, request_id);
CREATE INDEX IF NOT EXISTS volumes_in_transition ON volumes (updated_at)
    WHERE {_IN_TRANSITION_SQL};
CREATE TABLE IF NOT EXISTS volume_flags (
    id TEXT PRIMARY KEY, bootable INTEGER NOT NULL, readonly INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS user_messages (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, resource_uuid TEXT NOT NULL,
    action TEXT NOT NULL, event_id TEXT NOT NULL, user_message TEXT NOT NULL,
    request_id TEXT, created_at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS volume_type_access (
    type_id TEXT NOT NULL, project_id TEXT NOT NULL, PRIMARY KEY (type_id, project_id)
);
CREATE TABLE IF NOT EXISTS pending_extends (
    volume_id TEXT PRIMARY KEY, reservation_id TEXT NOT NULL, outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volume_types (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT,
    extra_specs TEXT NOT NULL, is_public INTEGER NOT NULL
);
"""
SCHEMA_VERSION = 3  # PRAGMA user_version of gateway.db (0: a file from before versions)
MIGRATIONS = {
    # 1 -> 2: an extend's quota reservation is kept with its volume, so that the
    # reconciler can roll back the reservation of an extend that was interrupted.
    1: "CREATE TABLE IF NOT EXISTS pending_extends (volume_id TEXT PRIMARY KEY, "
       "reservation_id TEXT NOT NULL, outcome TEXT NOT NULL);",
    # 2 -> 3: the quota journal; what an ended extend still owed moves into it.
    2: JOURNAL_SCHEMA + "INSERT INTO quota_journal (kind, op_id, reservation_id, project, "
       "deltas) SELECT outcome, reservation_id, reservation_id, '', '{}' FROM pending_extends "
       "WHERE outcome != ''; DELETE FROM pending_extends WHERE outcome != '';",
}
_COLUMNS = (
    "id, project_id, user_id, name, description, size, status, volume_type_id, "
    "availability_zone, host, metadata, created_at, updated_at, reason, request_id, request_fp"
)
INSERT_VOLUME = f"INSERT INTO volumes ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"
# what a start reads: every column but the request id and its fingerprint (made_by's)
LOAD_VOLUMES = f"SELECT {_COLUMNS.rsplit(', request_id', 1)[0]} FROM volumes"
UPDATE_STATUS = "UPDATE volumes SET status=?, host=?, reason=?, updated_at=? WHERE id=?"
UPDATE_SIZE = "UPDATE volumes SET size=?, status=?, reason=?, updated_at=? WHERE id=?"
DELETE_VOLUME = "DELETE FROM volumes WHERE id=?"
UPDATE_DETAILS = (
    "UPDATE volumes SET name=?, description=?, metadata=?, updated_at=? WHERE id=?"
)
SAVE_FLAGS = "INSERT OR REPLACE INTO volume_flags VALUES (?, ?, ?)"
DELETE_FLAGS = "DELETE FROM volume_flags WHERE id=?"
INSERT_TYPE = "INSERT INTO volume_types VALUES (?, ?, ?, ?, ?)"
DELETE_TYPE = "DELETE FROM volume_types WHERE id=?"
DELETE_TYPE_ACCESS = "DELETE FROM volume_type_access WHERE type_id=?"
ADD_ACCESS = "INSERT OR IGNORE INTO volume_type_access VALUES (?, ?)"
REMOVE_ACCESS = "DELETE FROM volume_type_access WHERE type_id=? AND project_id=?"
INSERT_EXTEND = "INSERT OR REPLACE INTO pending_extends VALUES (?, ?, '')"
DELETE_EXTEND = "DELETE FROM pending_extends WHERE volume_id=?"
MADE_BY = ("SELECT id, request_fp FROM volumes WHERE project_id=? AND request_id=? "
           "AND created_at>? ORDER BY created_at DESC LIMIT 1")
IN_TRANSITION_SINCE = (f"SELECT id FROM volumes WHERE {_IN_TRANSITION_SQL} AND updated_at<? "
                       "ORDER BY updated_at LIMIT ?")
NO_METADATA: dict[str, str] = {}  # shared by every volume without metadata; never changed
_STATUSES = {s.value: s for s in VolumeStatus}


@dataclass(slots=True)
class VolumeRecord:
    id: str
    project_id: str
    user_id: str
    size: int
    status: VolumeStatus
    volume_type: VolumeType
    availability_zone: str
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    host: str | None = None
    reason: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    request_id: str = ""
    request_fp: str = ""
    snapshot_id: str | None = None  # created from this snapshot
    source_volid: str | None = None  # created as a clone of this volume
    bootable: bool = False
    readonly: bool = False
    extended_from: VolumeStatus | None = None  # in memory: available, or in-use (3.42)

    @property
    def multiattach(self) -> bool:
        """Whether its type lets it be attached more than once (``multiattach='<is> True'``)."""
        spec = self.volume_type.extra_specs.get("multiattach")
        return spec is not None and match(True, spec)

    def view(self) -> Volume:
        return Volume(
            id=self.id, project_id=self.project_id, size=self.size, status=self.status,
            name=self.name, description=self.description, volume_type=self.volume_type.name,
            volume_type_id=self.volume_type.id, availability_zone=self.availability_zone,
            host=self.host, metadata=self.metadata, created_at=self.created_at,
            updated_at=self.updated_at or self.created_at, reason=self.reason,
            user_id=self.user_id, snapshot_id=self.snapshot_id, source_volid=self.source_volid,
            bootable=self.bootable, readonly=self.readonly, multiattach=self.multiattach,
        )

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.project_id, self.user_id, self.name, self.description, self.size,
            self.status.value, self.volume_type.id, self.availability_zone, self.host,
            json.dumps(self.metadata), self.created_at, self.updated_at or self.created_at,
            self.reason, self.request_id, self.request_fp,
        )


class GatewayStore:
    def __init__(self, path: Path, synchronous: str) -> None:
        schema = (SCHEMA + SNAPSHOT_SCHEMA + ATTACHMENT_SCHEMA + JOURNAL_SCHEMA
                  + DELETE_REQUESTS_SCHEMA)
        self.db = Database(path, schema, synchronous, version=SCHEMA_VERSION,
                           migrations=MIGRATIONS, reread=self.reread)
        self._other_rows: tuple[Reread, ...] = ()  # the other owners of rows in this file
        self.journal = QuotaJournal(self.db)  # what the gateway owes the quota actor
        # volume id -> the quota reservation of its extend in progress (pending_extends)
        self.extends: dict[str, str] = {}
        self.snapshots = SnapshotStore(self.db, self.journal, self.read_only)
        self.volumes: dict[str, VolumeRecord] = {}
        self.listing = ListingIndex()  # volumes in listing order, for pages
        # (project, request id) -> a volume whose row is not committed yet
        self._unwritten: dict[tuple[str, str], VolumeRecord] = {}
        # volumes whose removal is being written: a failed one brings the record back
        self._removing: dict[str, VolumeRecord] = {}
        self._reader: sqlite3.Connection | None = None  # made_by's, on the loop
        # One change at a time per volume: the volumes an API flow is changing now
        # (id -> what it is doing), taken and released by ``lifecycle_checks``.
        self.claims: dict[str, str] = {}

    async def open(self) -> list[VolumeType]:
        await self.db.open()
        return [type_from_row(r) for r in await self.db.fetchall(
            "SELECT id, name, description, extra_specs, is_public FROM volume_types")]

    def reread_with(self, *others: Reread) -> None:
        """The others that keep rows in this file (types, attachments, user messages):
        after a failed write their rows are read back too, in this order, before the
        volumes'."""
        self._other_rows = others

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread, after a failed write: every table of the file; what
        it returns brings memory back to them (see the module text)."""
        restores = [other(conn) for other in self._other_rows]
        types = {t.id: t for t in map(type_from_row, conn.execute(
            "SELECT id, name, description, extra_specs, is_public FROM volume_types"))}
        restores.append(self.read_volumes(types, conn))

        def restore() -> None:
            for each in restores:
                each()

        return restore

    async def load_volumes(self, types: dict[str, VolumeType]) -> None:
        """Put every volume and snapshot of the file in memory (a start), and what the
        quota journal still owes."""
        install = await self.db.run(partial(self.read_volumes, types))
        install()
        await self.journal.load()

    def read_volumes(self, types: dict[str, VolumeType], conn: sqlite3.Connection
                     ) -> Callable[[], None]:
        """In the database thread: read the volumes, their flags, sources and pending
        extends, and the snapshots; return what puts them in memory (on the loop), each
        volume kept in memory before updated in place."""
        paused = gc.isenabled()
        gc.disable()
        try:
            records = [_volume_from_row(row, types)
                       for row in conn.execute(LOAD_VOLUMES)]
        finally:
            if paused:
                gc.enable()
        by_id = {rec.id: rec for rec in records}
        for vid, bootable, readonly in conn.execute("SELECT * FROM volume_flags"):
            if (rec := by_id.get(vid)) is not None:
                rec.bootable, rec.readonly = bool(bootable), bool(readonly)
        rows = conn.execute("SELECT volume_id, reservation_id FROM pending_extends").fetchall()
        extends = {vid: rid for vid, rid in rows}
        sources = conn.execute(
            "SELECT volume_id, snapshot_id, source_volid FROM volume_sources").fetchall()
        for volume_id, snapshot_id, source_volid in sources:
            if (rec := by_id.get(volume_id)) is not None:
                rec.snapshot_id, rec.source_volid = snapshot_id, source_volid
        snapshots = self.snapshots.read(conn)
        return partial(self._install, by_id, extends, snapshots)

    def _install(self, volumes: dict[str, VolumeRecord], extends: dict[str, str],
                 snapshots: list[SnapshotRecord]) -> None:
        """On the loop: memory becomes what was read; a volume already in memory (or
        being removed) keeps its record, with the row's fields."""
        for vid, read in volumes.items():
            held = self.volumes.get(vid) or self._removing.get(vid)
            if held is not None:
                _reset(held, read)
                volumes[vid] = held
        self.volumes = volumes
        self.listing = ListingIndex()
        self.listing.add_all(volumes.values())
        self._unwritten = {}
        self.extends = extends
        self.snapshots.install(snapshots, volumes)

    def made_by(self, project: str, request_id: str) -> tuple[VolumeRecord, str] | None:
        """The volume ``request_id`` made in ``project`` within a day, and the fingerprint
        of that request; None if it made none (or the volume is gone)."""
        rec = self._unwritten.get((project, request_id))
        if rec is not None:
            return rec, rec.request_fp
        row = made_by_row(self.read_only(), MADE_BY, project, request_id)
        rec = self.volumes.get(row[0]) if row is not None else None
        return None if rec is None or row is None else (rec, row[1])

    def in_transition_since(self, before: float, limit: int) -> list[VolumeRecord]:
        """Up to `limit` volumes whose row has been in an ``IN_TRANSITION`` status since
        before `before`, oldest first: what the file says, through its partial index,
        without a scan of every record (95 ms at a million); the caller judges each
        record as memory holds it."""
        rows = self.read_only().execute(IN_TRANSITION_SINCE, (before, limit)).fetchall()
        return [rec for (vid,) in rows if (rec := self.volumes.get(vid)) is not None]

    def read_only(self) -> sqlite3.Connection:
        """The file on a read-only connection of the loop's own (committed rows only;
        in WAL mode it never waits for the writer): ``made_by``'s indexed reads."""
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.db.path}?mode=ro", uri=True)
        return self._reader

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await self.db.close()

    def _remember(self, rec: VolumeRecord) -> None:
        _share_strings(rec)
        self.volumes[rec.id] = rec
        self.listing.add(rec)
        if rec.request_id:
            self._unwritten[(rec.project_id, rec.request_id)] = rec

    async def add_volume(self, rec: VolumeRecord, reservation_id: str | None = None) -> None:
        """The new record and, in the same transaction, the commit of its reservation
        it owes the quota actor (``quota_journal``)."""
        self._remember(rec)
        self.snapshots.remember_source(rec)
        writes = [(INSERT_VOLUME, rec.row()), *self.snapshots.source_writes(rec)]
        queued = [self.db.write(sql, params) for sql, params in writes]
        if reservation_id is not None:
            self.journal.owe_commit(reservation_id, rec.project_id)
        try:
            for write in queued:
                await write
        except Exception:
            self.snapshots.forget_source(rec)
            self._forget(rec)
            raise
        if self._unwritten.get((rec.project_id, rec.request_id)) is rec:
            del self._unwritten[(rec.project_id, rec.request_id)]
        rec.request_id = rec.request_fp = ""  # the row has them: made_by reads it there

    def _forget(self, rec: VolumeRecord) -> None:
        if self.volumes.pop(rec.id, None) is not None:
            self.listing.remove(rec)
        if rec.request_id and self._unwritten.get((rec.project_id, rec.request_id)) is rec:
            del self._unwritten[(rec.project_id, rec.request_id)]

    async def remove_volume(self, rec: VolumeRecord) -> None:
        """The row goes and, in the same transaction, the release of its quota is owed
        (``quota_journal``; op id ``release:volume:<id>``: given back once)."""
        self._forget(rec)
        writes = [(DELETE_VOLUME, (rec.id,)), (DELETE_FLAGS, (rec.id,)),
                  *self.snapshots.source_removal_writes(rec)]
        queued = [self.db.write(sql, params) for sql, params in writes]
        self._removing[rec.id] = rec  # until its batch is settled (see _install)
        queued[-1].add_done_callback(partial(settled_removal, self._removing, rec))
        self.journal.owe_release(f"release:volume:{rec.id}", rec.project_id,
                                 {"volumes": 1, "gigabytes": rec.size})
        for write in queued:
            await write

    def queue_status(self, rec: VolumeRecord) -> asyncio.Future[None]:
        """Queue the status row; the future resolves when it is committed."""
        rec.updated_at = time.time()
        if rec.host is not None:
            rec.host = sys.intern(rec.host)  # a node's name, shared by its volumes
        return self.db.write(
            UPDATE_STATUS, (rec.status.value, rec.host, rec.reason, rec.updated_at, rec.id)
        )

    async def save_status(self, rec: VolumeRecord) -> None:
        await self.queue_status(rec)

    async def save_size(self, rec: VolumeRecord) -> None:
        await self.queue_size(rec)

    def queue_size(self, rec: VolumeRecord) -> asyncio.Future[None]:
        rec.updated_at = time.time()
        return self.db.write(
            UPDATE_SIZE, (rec.size, rec.status.value, rec.reason, rec.updated_at, rec.id)
        )

    async def save_details(self, rec: VolumeRecord) -> None:
        """Name, description, metadata and the bootable and read-only flags, together."""
        rec.updated_at = time.time()
        details = self.db.write(UPDATE_DETAILS, (rec.name, rec.description,
                                                 json.dumps(rec.metadata), rec.updated_at,
                                                 rec.id))
        flags = self.db.write(SAVE_FLAGS, (rec.id, int(rec.bootable), int(rec.readonly)))
        await details
        await flags

    async def start_extend(self, rec: VolumeRecord, reservation_id: str) -> None:
        """The volume's status (``extending``) and its reservation, in one transaction:
        the reservation is referenced while the extend runs, so no restart abandons it."""
        self.extends[rec.id] = reservation_id
        kept = self.db.write(INSERT_EXTEND, (rec.id, reservation_id))
        status = self.queue_status(rec)
        await kept
        await status

    async def end_extend(self, rec: VolumeRecord | None, volume_id: str, outcome: str) -> None:
        """The extend's end: the record's size and status (if it is still there) and,
        in the same transaction, the ``commit`` or ``rollback`` of its reservation owed."""
        reservation_id = self.extends.pop(volume_id, None)
        queued = [] if rec is None else [self.queue_size(rec)]
        if reservation_id is not None:
            queued.append(self.db.write(DELETE_EXTEND, (volume_id,)))
            project = rec.project_id if rec is not None else ""
            if outcome == "commit":
                self.journal.owe_commit(reservation_id, project)
            else:
                self.journal.owe_rollback(reservation_id, project)
        for write in queued:
            await write

    async def add_type(self, vtype: VolumeType) -> None:
        await self.db.write(
            INSERT_TYPE,
            (vtype.id, vtype.name, vtype.description, json.dumps(vtype.extra_specs),
             int(vtype.is_public)),
        )


    async def remove_type(self, vtype: VolumeType) -> None:
        gone = self.db.write(DELETE_TYPE, (vtype.id,))
        access = self.db.write(DELETE_TYPE_ACCESS, (vtype.id,))
        await gone
        await access

    async def type_access(self) -> list[tuple[str, str]]:
        rows = await self.db.fetchall("SELECT type_id, project_id FROM volume_type_access")
        return [(str(t), str(p)) for t, p in rows]

    async def save_access(self, type_id: str, project: str, granted: bool) -> None:
        await self.db.write(ADD_ACCESS if granted else REMOVE_ACCESS, (type_id, project))


def type_from_row(row: Any) -> VolumeType:
    tid, name, description, specs, public = row
    return VolumeType(tid, name, description, json.loads(specs), bool(public))


def _volume_from_row(row: Any, types: dict[str, VolumeType]) -> VolumeRecord:
    """A record from a row, the strings volumes repeat interned (called for every row at
    a start: positional, and no JSON parsed for a volume without metadata)."""
    (vid, project, user, name, desc, size, status, type_id, zone, host, metadata,
     created, updated, reason) = row
    vtype = types.get(type_id) or VolumeType(type_id or "", "(deleted type)")
    return VolumeRecord(
        vid, sys.intern(project), sys.intern(user or ""), size, _STATUSES[status], vtype,
        sys.intern(zone), name, desc,
        NO_METADATA if metadata == "{}" else json.loads(metadata),
        None if host is None else sys.intern(host), reason, created, updated,
    )


# what a volume's row (with its flags and source) holds; the rest lives in memory only
_ROW_FIELDS = tuple(name for name in VolumeRecord.__slots__
                    if name not in ("request_id", "request_fp", "extended_from"))


def _reset(held: VolumeRecord, read: VolumeRecord) -> None:
    """A record in memory made what its row says again (in place: flows hold it)."""
    for name in _ROW_FIELDS:
        setattr(held, name, getattr(read, name))
    held.request_id = held.request_fp = ""  # the row has them (see made_by)
    if held.status is not VolumeStatus.EXTENDING:
        held.extended_from = None


def _share_strings(rec: VolumeRecord) -> None:
    """Intern what many volumes repeat; share the empty metadata."""
    rec.project_id = sys.intern(rec.project_id)
    rec.user_id = sys.intern(rec.user_id)
    rec.availability_zone = sys.intern(rec.availability_zone)
    if rec.host is not None:
        rec.host = sys.intern(rec.host)
    if not rec.metadata:
        rec.metadata = NO_METADATA
