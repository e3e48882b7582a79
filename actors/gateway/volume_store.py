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
from cinderblock.actors.gateway.delete_requests import SCHEMA as DELETE_REQUESTS_SCHEMA
from cinderblock.actors.gateway.guards import stored_fingerprint
from cinderblock.actors.gateway.paging import ListingIndex
from cinderblock.actors.gateway.snapshot_store import SNAPSHOT_SCHEMA, SnapshotStore
from cinderblock.actors.runtime.database import Database
from cinderblock.actors.scheduler.extra_specs import match
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.states import VolumeStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, name TEXT, description TEXT,
    size INTEGER NOT NULL, status TEXT NOT NULL, volume_type_id TEXT, availability_zone TEXT,
    host TEXT, metadata TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    reason TEXT, request_id TEXT, request_fp TEXT
);
CREATE INDEX IF NOT EXISTS volumes_project ON volumes (project_id);
CREATE INDEX IF NOT EXISTS volumes_request ON volumes (project_id, request_id);
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
SCHEMA_VERSION = 2  # PRAGMA user_version of gateway.db (0: a file from before versions)
MIGRATIONS = {
    # 1 -> 2: an extend's quota reservation is kept with its volume, so that the
    # reconciler can roll back the reservation of an extend that was interrupted.
    1: "CREATE TABLE IF NOT EXISTS pending_extends (volume_id TEXT PRIMARY KEY, "
       "reservation_id TEXT NOT NULL, outcome TEXT NOT NULL);",
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
INSERT_EXTEND = "INSERT OR REPLACE INTO pending_extends VALUES (?, ?, ?)"
DELETE_EXTEND = "DELETE FROM pending_extends WHERE volume_id=?"
MADE_BY = ("SELECT id, request_fp FROM volumes WHERE project_id=? AND request_id=? "
           "AND created_at>? ORDER BY created_at DESC LIMIT 1")
REQUEST_ID_TTL_S = 24 * 3600.0  # a request id names its volume for a day (EC2's client tokens)
NO_METADATA: dict[str, str] = {}  # shared by every volume without metadata; never changed
_STATUSES = {s.value: s for s in VolumeStatus}


@dataclass(frozen=True, slots=True)
class PendingExtend:
    reservation_id: str
    outcome: str  # "": the extend runs; "commit" / "rollback": owed to the quota actor


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
        self.db = Database(path, SCHEMA + SNAPSHOT_SCHEMA + ATTACHMENT_SCHEMA
                           + DELETE_REQUESTS_SCHEMA, synchronous,
                           version=SCHEMA_VERSION, migrations=MIGRATIONS)
        # volume id -> its extend's quota reservation and what is owed to it ("" while
        # the extend runs, then "commit" or "rollback" until the quota actor has it)
        self.extends: dict[str, PendingExtend] = {}
        self.snapshots = SnapshotStore(self.db)
        self.volumes: dict[str, VolumeRecord] = {}
        self.listing = ListingIndex()  # volumes in listing order, for pages
        # (project, request id) -> a volume whose row is not committed yet
        self._unwritten: dict[tuple[str, str], VolumeRecord] = {}
        self._reader: sqlite3.Connection | None = None  # made_by's, on the loop
        # One change at a time per volume: the volumes an API flow is changing now
        # (id -> what it is doing), taken and released by ``lifecycle_checks``.
        self.claims: dict[str, str] = {}

    async def open(self) -> list[VolumeType]:
        await self.db.open()
        return [_type_from_row(r) for r in await self.db.fetchall("SELECT * FROM volume_types")]

    async def load_volumes(self, types: dict[str, VolumeType]) -> None:
        """Put every volume of the file in memory (a start)."""
        install = await self.db.run(partial(self.read_volumes, types))
        install()
        await self.snapshots.load(self.volumes)

    def read_volumes(self, types: dict[str, VolumeType], conn: sqlite3.Connection
                     ) -> Callable[[], None]:
        """In the database thread: read the volumes, their flags and pending extends;
        return what puts them in memory, in place of what was there (on the loop)."""
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
        rows = conn.execute(
            "SELECT volume_id, reservation_id, outcome FROM pending_extends").fetchall()
        extends = {vid: PendingExtend(rid, outcome) for vid, rid, outcome in rows}
        return partial(self._install, by_id, extends)

    def _install(self, volumes: dict[str, VolumeRecord],
                 extends: dict[str, PendingExtend]) -> None:
        self.volumes = volumes
        self.listing = ListingIndex()
        self.listing.add_all(volumes.values())
        self._unwritten = {}
        self.extends = extends

    def made_by(self, project: str, request_id: str) -> tuple[VolumeRecord, str] | None:
        """The volume ``request_id`` made in ``project`` within a day, and the fingerprint
        of that request; None if it made none (or the volume is gone)."""
        rec = self._unwritten.get((project, request_id))
        if rec is not None:
            return rec, rec.request_fp
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.db.path}?mode=ro", uri=True)
        rows = self._reader.execute(
            MADE_BY, (project, request_id, time.time() - REQUEST_ID_TTL_S)).fetchall()
        rec = self.volumes.get(rows[0][0]) if rows else None
        return None if rec is None else (rec, stored_fingerprint(rows[0][1] or ""))

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

    async def add_volume(self, rec: VolumeRecord) -> None:
        self._remember(rec)
        self.snapshots.remember_source(rec)
        writes = [(INSERT_VOLUME, rec.row()), *self.snapshots.source_writes(rec)]
        try:
            for write in [self.db.write(sql, params) for sql, params in writes]:
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
        self._forget(rec)
        writes = [(DELETE_VOLUME, (rec.id,)), (DELETE_FLAGS, (rec.id,)),
                  *self.snapshots.source_removal_writes(rec)]
        for write in [self.db.write(sql, params) for sql, params in writes]:
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
        rec.updated_at = time.time()
        await self.db.write(
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

    def queue_extend(self, volume_id: str, reservation_id: str, outcome: str = ""
                     ) -> asyncio.Future[None]:
        """Remember an extend's reservation and what it is owed (queued: committed with
        the status it goes with)."""
        self.extends[volume_id] = PendingExtend(reservation_id, outcome)
        return self.db.write(INSERT_EXTEND, (volume_id, reservation_id, outcome))

    def queue_extend_done(self, volume_id: str) -> asyncio.Future[None] | None:
        """Forget it: the reservation was committed or rolled back."""
        if self.extends.pop(volume_id, None) is None:
            return None
        return self.db.write(DELETE_EXTEND, (volume_id,))

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


def _type_from_row(row: Any) -> VolumeType:
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


def _share_strings(rec: VolumeRecord) -> None:
    """Intern what many volumes repeat; share the empty metadata."""
    rec.project_id = sys.intern(rec.project_id)
    rec.user_id = sys.intern(rec.user_id)
    rec.availability_zone = sys.intern(rec.availability_zone)
    if rec.host is not None:
        rec.host = sys.intern(rec.host)
    if not rec.metadata:
        rec.metadata = NO_METADATA
