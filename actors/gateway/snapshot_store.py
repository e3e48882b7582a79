"""The gateway's snapshot records, and where each volume was copied from.

Both tables live in the gateway's own file (``GatewayStore.db``; one writer,
the gateway) and all their SQL is here. As for volumes, records are kept in
memory and every change is written through the group-commit ``Database``
before anyone is told about it.

Source locks. While a volume is being created from a snapshot or a source
volume (status ``creating``), that source must not be deleted: Cinder holds
``<snapshot>-delete_snapshot`` / ``<volume>-delete_volume`` for the copy.
Here the lock is derived, not stored: ``clones`` maps a source id to the
volumes made from it (those made since the start, and those a start found still
``creating``), and a source is locked while one of them is still ``creating``. So a
lock can never be left behind by a crash or a lost message: it ends when the new
volume's status does.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from cinderblock.actors.gateway.guards import made_by_row
from cinderblock.actors.gateway.paging import ListingIndex
from cinderblock.actors.gateway.quota_journal import QuotaJournal
from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus, check_snapshot_move

IN_TRANSITION = (SnapshotStatus.CREATING, SnapshotStatus.DELETING)  # as volume_store's
_IN_TRANSITION_SQL = f"status IN ({', '.join(repr(s.value) for s in IN_TRANSITION)})"
SNAPSHOT_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, volume_id TEXT NOT NULL,
    name TEXT, description TEXT, size INTEGER NOT NULL, status TEXT NOT NULL, host TEXT,
    volume_type_id TEXT, metadata TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, reason TEXT, request_id TEXT, request_fp TEXT
);
CREATE INDEX IF NOT EXISTS snapshots_volume ON snapshots (volume_id);
CREATE INDEX IF NOT EXISTS snapshots_request ON snapshots (project_id, request_id);
CREATE INDEX IF NOT EXISTS snapshots_in_transition ON snapshots (updated_at)
    WHERE {_IN_TRANSITION_SQL};
CREATE TABLE IF NOT EXISTS volume_sources (
    volume_id TEXT PRIMARY KEY, snapshot_id TEXT, source_volid TEXT
);
"""
_LOADED = (  # what a record holds; its request id and fingerprint stay in the row
    "id, project_id, user_id, volume_id, name, description, size, status, host, "
    "volume_type_id, metadata, created_at, updated_at, reason"
)
_COLUMNS = f"{_LOADED}, request_id, request_fp"
INSERT_SNAPSHOT = f"INSERT INTO snapshots ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"
SELECT_SNAPSHOTS = f"SELECT {_LOADED} FROM snapshots"
UPDATE_SNAPSHOT = "UPDATE snapshots SET status=?, reason=?, updated_at=? WHERE id=?"
UPDATE_SNAPSHOT_DETAILS = (
    "UPDATE snapshots SET name=?, description=?, metadata=?, updated_at=? WHERE id=?"
)
DELETE_SNAPSHOT = "DELETE FROM snapshots WHERE id=?"
MADE_BY = ("SELECT id, request_fp FROM snapshots WHERE project_id=? AND request_id=? "
           "AND created_at>? ORDER BY created_at DESC LIMIT 1")
IN_TRANSITION_SINCE = (f"SELECT id FROM snapshots WHERE {_IN_TRANSITION_SQL} AND updated_at<? "
                       "ORDER BY updated_at LIMIT ?")
INSERT_SOURCE = "INSERT OR REPLACE INTO volume_sources VALUES (?, ?, ?)"
DELETE_SOURCE = "DELETE FROM volume_sources WHERE volume_id=?"


class Copied(Protocol):
    """What the store needs of a volume record (``VolumeRecord``)."""

    id: str
    status: VolumeStatus
    snapshot_id: str | None
    source_volid: str | None


@dataclass(slots=True)
class SnapshotRecord:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    size: int
    status: SnapshotStatus
    host: str | None = None  # the node backend that holds it: its volume's
    volume_type_id: str | None = None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    request_id: str = ""
    request_fp: str = ""

    def move(self, new: SnapshotStatus, reason: str | None = None) -> None:
        """Change status in memory, judged by the transition table (raises InvalidState)."""
        check_snapshot_move(self.status, new)
        self.status, self.reason = new, reason
        self.updated_at = time.time()

    def view(self) -> Snapshot:
        return Snapshot(
            id=self.id, project_id=self.project_id, volume_id=self.volume_id, size=self.size,
            status=self.status, name=self.name, description=self.description,
            metadata=self.metadata, created_at=self.created_at,
            updated_at=self.updated_at or self.created_at, reason=self.reason,
            user_id=self.user_id, volume_type_id=self.volume_type_id,
        )

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.project_id, self.user_id, self.volume_id, self.name, self.description,
            self.size, self.status.value, self.host, self.volume_type_id,
            json.dumps(self.metadata), self.created_at, self.updated_at or self.created_at,
            self.reason, self.request_id, self.request_fp,
        )


class SnapshotStore:
    """Snapshots by id and by volume; volume sources and clones. A request id names the
    snapshot it made for ``REQUEST_ID_TTL_S`` (a day) and lives in the row, not in
    memory, as a volume's does (``volume_store``): ``made_by`` reads it through an index
    on the read-only connection `read_only` gives, records not yet committed first."""

    def __init__(self, db: Database, journal: QuotaJournal,
                 read_only: Callable[[], sqlite3.Connection]) -> None:
        self.journal = journal
        self.db = db
        self._read_only = read_only
        self.snapshots: dict[str, SnapshotRecord] = {}
        self.listing = ListingIndex()  # snapshots in listing order, for pages
        self.by_volume: dict[str, set[str]] = {}
        # (project, request id) -> a snapshot whose row is not committed yet
        self._unwritten: dict[tuple[str, str], SnapshotRecord] = {}
        self.clones: dict[str, set[str]] = {}  # source (snapshot or volume) id -> volume ids
        # snapshots whose removal is being written: a failed one brings the record back
        self._removing: dict[str, SnapshotRecord] = {}

    @staticmethod
    def read(conn: sqlite3.Connection) -> list[SnapshotRecord]:
        """In the database thread: every snapshot row (the volumes' sources are read
        with the volumes)."""
        return [_snapshot_from_row(row)
                for row in conn.execute(SELECT_SNAPSHOTS)]

    def install(self, read: list[SnapshotRecord],
                sources: list[tuple[str, str | None, str | None]]) -> None:
        """On the loop: the snapshots become what was read (a snapshot already in memory,
        or being removed, keeps its record, reset in place: flows hold it), and the
        clones follow the volumes' sources (volume id, snapshot id, source volume id)."""
        held = {**self._removing, **self.snapshots}
        self.snapshots, self.listing = {}, ListingIndex()
        self.by_volume, self._unwritten, self.clones = {}, {}, {}
        records = []
        for rec in read:
            if (mine := held.get(rec.id)) is not None:
                for name in SnapshotRecord.__slots__:
                    setattr(mine, name, getattr(rec, name))
                rec = mine
            records.append(rec)
            self.snapshots[rec.id] = rec
            self.by_volume.setdefault(rec.volume_id, set()).add(rec.id)
        self.listing.add_all(records)
        for volume_id, snapshot_id, source_volid in sources:
            self._add_clone(volume_id, snapshot_id or source_volid)

    # ---- snapshots -------------------------------------------------------
    def _remember(self, rec: SnapshotRecord) -> None:
        self.snapshots[rec.id] = rec
        self.listing.add(rec)
        self.by_volume.setdefault(rec.volume_id, set()).add(rec.id)
        if rec.request_id:
            self._unwritten[(rec.project_id, rec.request_id)] = rec

    def made_by(self, project: str, request_id: str) -> tuple[SnapshotRecord, str] | None:
        """The snapshot ``request_id`` made in ``project`` within a day, and the
        fingerprint of that request; None if it made none (or the snapshot is gone)."""
        rec = self._unwritten.get((project, request_id))
        if rec is not None:
            return rec, rec.request_fp
        row = made_by_row(self._read_only(), MADE_BY, project, request_id)
        rec = self.snapshots.get(row[0]) if row is not None else None
        return None if rec is None or row is None else (rec, row[1])

    def in_transition_since(self, before: float, limit: int) -> list[SnapshotRecord]:
        """As ``GatewayStore.in_transition_since``, for snapshots."""
        rows = self._read_only().execute(IN_TRANSITION_SINCE, (before, limit)).fetchall()
        return [rec for (sid,) in rows if (rec := self.snapshots.get(sid)) is not None]

    def _forget(self, rec: SnapshotRecord) -> None:
        if self.snapshots.pop(rec.id, None) is not None:
            self.listing.remove(rec)
        ids = self.by_volume.get(rec.volume_id)
        if ids is not None:
            ids.discard(rec.id)
            if not ids:
                del self.by_volume[rec.volume_id]
        key = (rec.project_id, rec.request_id)
        if rec.request_id and self._unwritten.get(key) is rec:
            del self._unwritten[key]

    def of_volume(self, volume_id: str) -> list[SnapshotRecord]:
        return [self.snapshots[i] for i in sorted(self.by_volume.get(volume_id, ()))]

    async def add(self, rec: SnapshotRecord, reservation_id: str | None = None) -> None:
        """The new record and, in the same transaction, the commit of its
        reservation it owes the quota actor (``quota_journal``)."""
        self._remember(rec)
        written = self.db.write(INSERT_SNAPSHOT, rec.row())
        if reservation_id is not None:
            self.journal.owe_commit(reservation_id, rec.project_id)
        try:
            await written
        except Exception:
            self._forget(rec)
            raise
        if self._unwritten.get((rec.project_id, rec.request_id)) is rec:
            del self._unwritten[(rec.project_id, rec.request_id)]
        rec.request_id = rec.request_fp = ""  # the row has them: made_by reads it there

    async def remove(self, rec: SnapshotRecord) -> None:
        """The row goes and, in the same transaction, the release of its quota is owed
        (``quota_journal``; op id ``release:snapshot:<id>``: given back once)."""
        self._forget(rec)
        written = self.db.write(DELETE_SNAPSHOT, (rec.id,))
        self._removing[rec.id] = rec  # until its batch is settled (see install)
        written.add_done_callback(partial(settled_removal, self._removing, rec))
        self.journal.owe_release(f"release:snapshot:{rec.id}", rec.project_id,
                                 {"snapshots": 1, "gigabytes": rec.size})
        await written

    async def save_details(self, rec: SnapshotRecord) -> None:
        rec.updated_at = time.time()
        await self.db.write(UPDATE_SNAPSHOT_DETAILS, (rec.name, rec.description,
                                                      json.dumps(rec.metadata),
                                                      rec.updated_at, rec.id))

    async def save_status(self, rec: SnapshotRecord) -> None:
        await self.db.write(UPDATE_SNAPSHOT, (rec.status.value, rec.reason, rec.updated_at, rec.id))

    # ---- volume sources and locks -----------------------------------------
    def remember_source(self, rec: Copied) -> None:
        self._add_clone(rec.id, rec.snapshot_id or rec.source_volid)

    def _add_clone(self, volume_id: str, source: str | None) -> None:
        if source:
            self.clones.setdefault(source, set()).add(volume_id)

    def forget_source(self, rec: Copied) -> None:
        source = rec.snapshot_id or rec.source_volid
        clones = self.clones.get(source) if source else None
        if clones is not None and source:
            clones.discard(rec.id)
            if not clones:
                del self.clones[source]

    def source_writes(self, rec: Copied) -> list[tuple[str, tuple[Any, ...]]]:
        """The rows to write with a new volume record (none for a plain create)."""
        if not (rec.snapshot_id or rec.source_volid):
            return []
        return [(INSERT_SOURCE, (rec.id, rec.snapshot_id, rec.source_volid))]

    def source_removal_writes(self, rec: Copied) -> list[tuple[str, tuple[Any, ...]]]:
        self.forget_source(rec)
        if not (rec.snapshot_id or rec.source_volid):
            return []
        return [(DELETE_SOURCE, (rec.id,))]

    def copying_from(self, source_id: str, find: Callable[[str], Copied | None]) -> list[str]:
        """The volumes still being created from ``source_id`` (its lock holders), each
        found by ``find``."""
        holders = []
        for volume_id in sorted(self.clones.get(source_id, ())):
            rec = find(volume_id)
            if rec is not None and rec.status is VolumeStatus.CREATING:
                holders.append(volume_id)
        return holders


class Identified(Protocol):
    @property
    def id(self) -> str: ...


Rec = TypeVar("Rec", bound=Identified)


def settled_removal(removing: dict[str, Rec], rec: Rec, written: asyncio.Future[None]) -> None:
    """A removal's batch ended (committed, or failed and memory reread from the file):
    the record no longer needs bringing back."""
    if removing.get(rec.id) is rec:
        del removing[rec.id]


def _snapshot_from_row(row: Any) -> SnapshotRecord:
    (sid, project, user, volume_id, name, desc, size, status, host, type_id, metadata,
     created, updated, reason) = row
    return SnapshotRecord(
        id=sid, project_id=project, user_id=user or "", volume_id=volume_id, size=size,
        status=SnapshotStatus(status), host=host, volume_type_id=type_id, name=name,
        description=desc, metadata=json.loads(metadata), reason=reason, created_at=created,
        updated_at=updated,  # its request id and fingerprint stay in the row (made_by)
    )
