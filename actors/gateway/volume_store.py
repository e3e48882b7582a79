"""The gateway's records: volumes and volume types, in memory and in its SQLite file.

The gateway is the only writer of this file. Records live in memory (the
gateway answers show/list and judges status moves from them) and every change
is written through the group-commit ``Database`` before the gateway tells
anyone about it, so what a client was told survives a restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinderblock.actors.gateway.attachment_store import SCHEMA as ATTACHMENT_SCHEMA
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
        self.db = Database(path, SCHEMA + SNAPSHOT_SCHEMA + ATTACHMENT_SCHEMA, synchronous,
                           version=SCHEMA_VERSION, migrations=MIGRATIONS)
        # volume id -> its extend's quota reservation and what is owed to it ("" while
        # the extend runs, then "commit" or "rollback" until the quota actor has it)
        self.extends: dict[str, PendingExtend] = {}
        self.snapshots = SnapshotStore(self.db)
        self.volumes: dict[str, VolumeRecord] = {}
        self.listing = ListingIndex()  # volumes in listing order, for pages
        self.by_request: dict[tuple[str, str], VolumeRecord] = {}
        # One change at a time per volume: the volumes an API flow is changing now
        # (id -> what it is doing), taken and released by ``lifecycle_checks``.
        self.claims: dict[str, str] = {}

    async def open(self) -> list[VolumeType]:
        await self.db.open()
        return [_type_from_row(r) for r in await self.db.fetchall("SELECT * FROM volume_types")]

    async def load_volumes(self, types: dict[str, VolumeType]) -> None:
        for row in await self.db.fetchall(f"SELECT {_COLUMNS} FROM volumes"):
            self._remember(_volume_from_row(row, types))
        for vid, bootable, readonly in await self.db.fetchall("SELECT * FROM volume_flags"):
            if (rec := self.volumes.get(vid)) is not None:
                rec.bootable, rec.readonly = bool(bootable), bool(readonly)
        rows = await self.db.fetchall(
            "SELECT volume_id, reservation_id, outcome FROM pending_extends")
        self.extends = {vid: PendingExtend(rid, outcome) for vid, rid, outcome in rows}
        await self.snapshots.load(self.volumes)

    def _remember(self, rec: VolumeRecord) -> None:
        self.volumes[rec.id] = rec
        self.listing.add(rec)
        if rec.request_id:
            self.by_request[(rec.project_id, rec.request_id)] = rec

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

    def _forget(self, rec: VolumeRecord) -> None:
        if self.volumes.pop(rec.id, None) is not None:
            self.listing.remove(rec)
        if rec.request_id:
            self.by_request.pop((rec.project_id, rec.request_id), None)

    async def remove_volume(self, rec: VolumeRecord) -> None:
        self._forget(rec)
        writes = [(DELETE_VOLUME, (rec.id,)), (DELETE_FLAGS, (rec.id,)),
                  *self.snapshots.source_removal_writes(rec)]
        for write in [self.db.write(sql, params) for sql, params in writes]:
            await write

    def queue_status(self, rec: VolumeRecord) -> asyncio.Future[None]:
        """Queue the status row; the future resolves when it is committed."""
        rec.updated_at = time.time()
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
    (vid, project, user, name, desc, size, status, type_id, zone, host, metadata,
     created, updated, reason, request_id, request_fp) = row
    vtype = types.get(type_id) or VolumeType(type_id or "", "(deleted type)")
    return VolumeRecord(
        id=vid, project_id=project, user_id=user or "", size=size, status=VolumeStatus(status),
        volume_type=vtype, availability_zone=zone, name=name, description=desc,
        metadata=json.loads(metadata), host=host, reason=reason, created_at=created,
        updated_at=updated, request_id=request_id or "", request_fp=request_fp or "",
    )
