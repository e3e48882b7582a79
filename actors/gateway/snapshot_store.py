"""The gateway's snapshot records, and where each volume was copied from.

Both tables live in the gateway's own file (``GatewayStore.db``; one writer,
the gateway) and all their SQL is here. As for volumes, every change is written
through the group-commit ``Database`` before anyone is told about it, and a
record is read from its row when asked for (``SnapshotStore``): by id, by volume,
by project, a page at a time through listing indexes; memory holds the ones in use.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from cinderblock.actors.gateway.create_routes import CreateRoutes
from cinderblock.actors.gateway.group_store import GroupSnapshotRecord, GroupSnapshotStore
from cinderblock.actors.gateway.guards import made_by_row
from cinderblock.actors.gateway.paging import BoundedScan, Key
from cinderblock.actors.gateway.quota_journal import QuotaJournal
from cinderblock.actors.gateway.row_records import (
    Condition,
    RowRecords,
    SortedRead,
    count_sql,
    named_sql,
    newest_first_sql,
)
from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.quota import snapshot_amounts
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus, check_snapshot_move

IN_TRANSITION = (SnapshotStatus.CREATING, SnapshotStatus.DELETING,  # as volume_store's
                 SnapshotStatus.UNMANAGING)
_IN_TRANSITION_SQL = f"status IN ({', '.join(repr(s.value) for s in IN_TRANSITION)})"
SNAPSHOT_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, volume_id TEXT NOT NULL,
    name TEXT, description TEXT, size INTEGER NOT NULL, status TEXT NOT NULL, host TEXT,
    volume_type_id TEXT, metadata TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, reason TEXT, request_id TEXT, request_fp TEXT
);
CREATE INDEX IF NOT EXISTS snapshots_volume ON snapshots (volume_id);
CREATE INDEX IF NOT EXISTS snapshots_listing ON snapshots (created_at, id);
CREATE INDEX IF NOT EXISTS snapshots_project_listing ON snapshots (project_id, created_at, id);
CREATE INDEX IF NOT EXISTS snapshots_status_listing ON snapshots (status, created_at, id);
CREATE INDEX IF NOT EXISTS snapshots_project_status_listing
    ON snapshots (project_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS snapshots_request ON snapshots (project_id, request_id);
CREATE INDEX IF NOT EXISTS snapshots_in_transition ON snapshots (updated_at)
    WHERE {_IN_TRANSITION_SQL};
CREATE TABLE IF NOT EXISTS volume_sources (
    volume_id TEXT PRIMARY KEY, snapshot_id TEXT, source_volid TEXT
);
CREATE TABLE IF NOT EXISTS snapshot_image_metadata (
    id TEXT PRIMARY KEY, metadata TEXT NOT NULL
);
"""
_LOADED = (  # what a record holds; its request id and fingerprint stay in the row
    "id, project_id, user_id, volume_id, name, description, size, status, host, "
    "volume_type_id, metadata, created_at, updated_at, reason"
)
_COLUMNS = f"{_LOADED}, request_id, request_fp"
INSERT_SNAPSHOT = f"INSERT INTO snapshots ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"
SELECT_SNAPSHOTS = f"SELECT {_LOADED} FROM snapshots"
SELECT_SNAPSHOT = f"{SELECT_SNAPSHOTS} WHERE id=?"
SELECT_LISTING_KEYS = "SELECT id, created_at FROM snapshots"  # where a bounded scan ends
SELECT_OF_VOLUME = f"{SELECT_SNAPSHOTS} WHERE volume_id=?"
SELECT_OF_VOLUME_IDS = "SELECT id FROM snapshots WHERE volume_id=?"
COUNT_SNAPSHOTS = "SELECT count(*) FROM snapshots"  # what a listing's count reads
RECENT = 16_384  # records kept in memory after their last read (a few hundred bytes each)
_STATUSES = {s.value: s for s in SnapshotStatus}
UPDATE_SNAPSHOT = "UPDATE snapshots SET status=?, reason=?, updated_at=? WHERE id=?"
UPDATE_SNAPSHOT_TYPE = "UPDATE snapshots SET volume_type_id=?, updated_at=? WHERE id=?"
UPDATE_SNAPSHOT_OWNER = ("UPDATE snapshots SET project_id=?, user_id=?, request_id=NULL, "
                         "request_fp=NULL, updated_at=? WHERE id=?")
UPDATE_SNAPSHOT_DETAILS = (
    "UPDATE snapshots SET name=?, description=?, metadata=?, updated_at=? WHERE id=?"
)
DELETE_SNAPSHOT = "DELETE FROM snapshots WHERE id=?"
# A snapshot's copy of its volume's image metadata (Cinder's glance metadata of a
# snapshot): a row only for a snapshot of a volume that had some.
INSERT_IMAGE_METADATA = "INSERT INTO snapshot_image_metadata VALUES (?, ?)"
# A snapshot create's route (a manage's name: ``create_routes.py``) and its request id
SELECT_CREATE_LEFT = ("SELECT s.request_id, r.route FROM snapshots s "
                      "LEFT JOIN create_routes r ON r.id = s.id WHERE s.id=?")
DELETE_IMAGE_METADATA = "DELETE FROM snapshot_image_metadata WHERE id=?"
SELECT_IMAGE_METADATA = "SELECT metadata FROM snapshot_image_metadata WHERE id=?"
MADE_BY = ("SELECT id, request_fp FROM snapshots WHERE project_id=? AND request_id=? "
           "AND created_at>? ORDER BY created_at DESC LIMIT 1")
# INDEXED BY: the status listing index would serve the condition too, and SQLite took
# it (then sorted every snapshot in transition) over the partial index in updated_at order
IN_TRANSITION_SINCE = (f"SELECT id FROM snapshots INDEXED BY snapshots_in_transition "
                       f"WHERE {_IN_TRANSITION_SQL} AND updated_at<? ORDER BY updated_at LIMIT ?")
INSERT_SOURCE = "INSERT OR REPLACE INTO volume_sources VALUES (?, ?, ?)"
DELETE_SOURCE = "DELETE FROM volume_sources WHERE volume_id=?"


class Copied(Protocol):
    """What the store needs of a volume record (``VolumeRecord``)."""

    id: str
    status: VolumeStatus
    snapshot_id: str | None
    source_volid: str | None


@dataclass(slots=True, weakref_slot=True)
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
    group_snapshot_id: str | None = None  # its group snapshot's (``group_store``), not a column

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
            group_snapshot_id=self.group_snapshot_id,
        )

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.project_id, self.user_id, self.volume_id, self.name, self.description,
            self.size, self.status.value, self.host, self.volume_type_id,
            json.dumps(self.metadata), self.created_at, self.updated_at or self.created_at,
            self.reason, self.request_id, self.request_fp,
        )


class SnapshotStore(RowRecords[SnapshotRecord]):
    """Every snapshot of the gateway's file, read when asked for and held while in use
    (``row_records``); volume sources and clones. A request id names the snapshot it made
    for ``REQUEST_ID_TTL_S`` (a day) and lives in the row, not in memory, as a volume's
    does (``volume_store``): ``made_by`` reads it through an index, records not yet
    committed first."""

    def __init__(self, db: Database, journal: QuotaJournal,
                 read_only: Callable[[], sqlite3.Connection],
                 group_snapshots: GroupSnapshotStore, routes: CreateRoutes) -> None:
        super().__init__(read_only, SELECT_SNAPSHOT, "snapshots", RECENT)
        self.journal = journal
        self.db = db
        self.routes = routes
        self.clones: dict[str, set[str]] = {}  # source (snapshot or volume) id -> volume ids
        self.group_snapshots = group_snapshots
        # told the group snapshot of a snapshot whose row went (its delete may be done)
        self.on_group_member_gone: Callable[[str], None] | None = None

    def from_row(self, row: Any) -> SnapshotRecord:
        rec = _snapshot_from_row(row)
        rec.group_snapshot_id = self.group_snapshots.group_snapshot_of(rec.id)
        return rec

    def reset(self, held: SnapshotRecord, read: SnapshotRecord) -> None:
        for name in _ROW_FIELDS:
            setattr(held, name, getattr(read, name))
        held.request_id = held.request_fp = ""  # the row has them (see made_by)

    def install(self, sources: list[tuple[str, str | None, str | None]]) -> None:
        """On the loop, at a start and after a failed write: the clones follow the sources
        read (volume id, snapshot id, source volume id), and the snapshots memory holds
        their rows (``read_back``)."""
        self.clones = {}
        for volume_id, snapshot_id, source_volid in sources:
            self._add_clone(volume_id, snapshot_id or source_volid)
        self.read_back()

    # ---- snapshots -------------------------------------------------------
    def _where(self, where: str, params: tuple[Any, ...]) -> Iterator[SnapshotRecord]:
        return self.rows(f"{SELECT_SNAPSHOTS} WHERE {where}", params)

    def of_volume(self, volume_id: str) -> list[SnapshotRecord]:
        """The volume's snapshots, new ones included, by id, as memory holds them."""
        found = {rec.id: rec for rec in self._where("volume_id=?", (volume_id,))}
        found.update((rec.id, rec) for rec in self.new.values() if rec.volume_id == volume_id)
        return [found[sid] for sid in sorted(found)]

    def newest_first(self, project: str | None, below: Key | None,
                     volume_id: str | None = None, status: str | None = None,
                     name: str | None = None, metadata: dict[str, str] | None = None,
                     availability_zone: str | None = None,
                     ) -> Iterator[SnapshotRecord] | BoundedScan[SnapshotRecord]:
        """``project``'s snapshots (every project's for None; only ``volume_id``'s when
        given; only those whose row has ``status``, ``name`` and the ``metadata`` items
        when given, and whose volume is in ``availability_zone``) in listing order,
        newest first, below ``below`` (a marker's key) when given, through the listing
        indexes (with a status, those that hold it; a volume's few through the volume's
        index). A name, metadata items or a zone have no index: SQLite matches them in no
        more than ``SCAN_ROWS`` rows a page (``listed_rows``), as ``Volumes.listing``
        does. One whose row is not committed yet is not listed, as it is not told yet,
        nor is one under a status it has not committed yet."""
        matched = _matched(name, metadata, availability_zone)
        if volume_id is None:
            indexed: tuple[Condition, ...] = () if status is None else (
                ("status=?", (status,)),)
            listed = partial(newest_first_sql, project=project, below=below)
            return self.listed_rows(listed, SELECT_SNAPSHOTS, SELECT_LISTING_KEYS, indexed,
                                    matched)
        # with a volume, "+" keeps SQLite off the listing indexes, whose order it would
        # otherwise take over the volume's few rows (a scan of the project)
        mine: tuple[Condition, ...] = () if project is None else (("+project_id=?", (project,)),)
        wanted = () if status is None else (("+status=?", (status,)),)
        return self.rows(*newest_first_sql(SELECT_SNAPSHOTS, None, below, more=(
            ("volume_id=?", (volume_id,)), *mine, *wanted, *matched)))

    def sorted_listing(self, project: str | None, sort: str, after: SnapshotRecord | None,
                       volume_id: str | None, status: str | None, name: str | None,
                       metadata: dict[str, str] | None, rows: int,
                       availability_zone: str | None = None) -> SortedRead:
        """``RowRecords.sorted_sql`` of the snapshots, with the same filters as
        ``newest_first``; the rows it looks at are at most the volume's snapshots (of
        every project: ``snapshots_volume``) when a volume is given, else those of the
        listing with its status."""
        indexed: tuple[Condition, ...] = () if status is None else (("status=?", (status,)),)
        more: tuple[Condition, ...] = (
            *(() if volume_id is None else (("volume_id=?", (volume_id,)),)),
            *indexed, *_matched(name, metadata, availability_zone))
        looked_at = (newest_first_sql(SELECT_LISTING_KEYS, project, None, more=indexed)
                     if volume_id is None else (SELECT_OF_VOLUME_IDS, [volume_id]))
        return self.sorted_sql(SELECT_SNAPSHOTS, "", project, sort, after, more, rows,
                               looked_at)

    async def count(self, project: str | None, volume_id: str | None, status: str | None,
                    name: str | None, metadata: dict[str, str] | None, asker: str,
                    availability_zone: str | None = None) -> int:
        """How many snapshots a listing with these filters lists in all (Cinder's
        ``with_count``): the committed rows, counted aside (``Database.read_aside``)
        with every filter (``row_records.count_sql``)."""
        more: tuple[Condition, ...] = (
            *(() if volume_id is None else (("volume_id=?", (volume_id,)),)),
            *(() if status is None else (("status=?", (status,)),)),
            *_matched(None, None, availability_zone))
        sql, params = count_sql(COUNT_SNAPSHOTS, "", project, more, name, metadata,
                                "snapshots")
        ((counted,),) = await self.db.read_aside(sql, params, whose=asker)
        return int(counted)

    def create_left(self, snapshot_id: str) -> tuple[str, str | None] | None:
        """The request id of the create of a snapshot and its route's row (None: it
        named no route), as the file holds them; None if the snapshot has no row."""
        row = self._read_only().execute(SELECT_CREATE_LEFT, (snapshot_id,)).fetchone()
        return None if row is None else (row[0] or "", row[1])

    def made_by(self, project: str, request_id: str) -> tuple[SnapshotRecord, str] | None:
        """The snapshot ``request_id`` made in ``project`` within a day, and the
        fingerprint of that request; None if it made none (or the snapshot is gone)."""
        for new in self.new.values():
            if new.request_id == request_id and new.project_id == project:
                return new, new.request_fp
        row = made_by_row(self._read_only(), MADE_BY, project, request_id)
        rec = self.get(row[0]) if row is not None else None
        return None if rec is None or row is None else (rec, row[1])

    def image_metadata(self, snapshot_id: str) -> dict[str, str]:
        """The snapshot's copy of its volume's image metadata, as committed (empty for
        none)."""
        row = self._read_only().execute(SELECT_IMAGE_METADATA, (snapshot_id,)).fetchone()
        found: dict[str, str] = {} if row is None else json.loads(row[0])
        return found

    def in_transition_since(self, before: float, limit: int) -> list[SnapshotRecord]:
        """As ``GatewayStore.in_transition_since``, for snapshots."""
        rows = self._read_only().execute(IN_TRANSITION_SINCE, (before, limit)).fetchall()
        return [rec for (sid,) in rows if (rec := self.get(sid)) is not None]

    async def add(self, rec: SnapshotRecord, reservation_id: str | None = None,
                  image_metadata: dict[str, str] | None = None,
                  route: str | None = None) -> None:
        """The new record and, in the same transaction, the commit of its
        reservation it owes the quota actor (``quota_journal``), its copy of its
        volume's ``image_metadata`` (as Cinder's snapshot keeps its volume's image
        metadata, which a volume made from it gets) and its create's route, if it has
        one (a manage's: ``lost_casts.CreateRoute.to_row``)."""
        self.added(rec)
        written = [self.db.write(INSERT_SNAPSHOT, rec.row())]
        if image_metadata:
            written.append(self.db.write(INSERT_IMAGE_METADATA,
                                         (rec.id, json.dumps(image_metadata))))
        if route is not None:
            written.append(self.routes.queue_save(rec.id, route))
        if reservation_id is not None:
            self.journal.owe_commit(reservation_id, rec.project_id)
        try:
            for write in written:
                await write
        except Exception:
            self.forget(rec)
            raise
        self.written(rec)
        rec.request_id = rec.request_fp = ""  # the row has them: made_by reads it there

    async def add_group(self, recs: list[SnapshotRecord], group: GroupSnapshotRecord,
                        reservation_id: str, image_metadata: dict[str, dict[str, str]]
                        ) -> None:
        """A group snapshot's row and its snapshots' (``image_metadata``: each one's copy
        of its volume's, by snapshot id), their member rows and, in the same transaction,
        the commit of the reservation they owe."""
        for rec in recs:
            self.added(rec)
        written = [self.group_snapshots.queue_save(group)]
        for rec in recs:
            written.append(self.db.write(INSERT_SNAPSHOT, rec.row()))
            written.append(self.group_snapshots.queue_join(group.id, rec.id))
            if image_metadata.get(rec.id):
                written.append(self.db.write(INSERT_IMAGE_METADATA,
                                             (rec.id, json.dumps(image_metadata[rec.id]))))
        self.journal.owe_commit(reservation_id, group.project_id)
        try:
            for write in written:
                await write
        except Exception:
            for rec in recs:
                self.group_snapshots.forget_member(rec.id)
                self.forget(rec)
            self.group_snapshots.by_id.pop(group.id, None)
            raise
        for rec in recs:
            self.written(rec)

    async def remove_group(self, recs: list[SnapshotRecord], group: GroupSnapshotRecord
                           ) -> None:
        """A group snapshot no node was told to take (its create failed before its cast):
        its row, its snapshots' and their member rows go and, in the same transaction,
        the release of each snapshot's quota is owed (as ``remove``'s)."""
        written = []
        for rec in recs:
            written.append(self.db.write(DELETE_IMAGE_METADATA, (rec.id,)))
            row = self.db.write(DELETE_SNAPSHOT, (rec.id,))
            written.append(row)
            left = self.group_snapshots.queue_leave(rec.id)
            if left is not None:
                written.append(left[0])
            self.removed(rec, row)
            self.journal.owe_release(f"release:snapshot:{rec.id}", rec.project_id,
                                     snapshot_amounts(rec.size, rec.volume_type_id))
        written.append(self.group_snapshots.queue_remove(group))
        for write in written:
            await write

    async def remove(self, rec: SnapshotRecord) -> None:
        """The row goes and, in the same transaction, the release of its quota is owed
        (``quota_journal``; op id ``release:snapshot:<id>``: given back once) and its
        group snapshot's member row goes."""
        image = self.db.write(DELETE_IMAGE_METADATA, (rec.id,))
        written = self.db.write(DELETE_SNAPSHOT, (rec.id,))
        self.routes.queue_drop(rec.id)  # one removed while creating
        left = self.group_snapshots.queue_leave(rec.id)
        self.removed(rec, written)  # not found, unless the write fails (read_back)
        self.journal.owe_release(f"release:snapshot:{rec.id}", rec.project_id,
                                 snapshot_amounts(rec.size, rec.volume_type_id))
        await image
        await written
        if left is not None:
            await left[0]
            if self.on_group_member_gone is not None:
                self.on_group_member_gone(left[1])

    # A save is awaited by its caller, whose coroutine holds ``rec`` in memory until the
    # write is settled (a callback on the write's future would add nothing: cancelling
    # the caller cancels that future too).
    async def save_details(self, rec: SnapshotRecord) -> None:
        rec.updated_at = time.time()
        await self.db.write(UPDATE_SNAPSHOT_DETAILS, (
            rec.name, rec.description, json.dumps(rec.metadata), rec.updated_at, rec.id))

    async def save_status(self, rec: SnapshotRecord) -> None:
        await self.queue_status(rec)

    def queue_status(self, rec: SnapshotRecord) -> asyncio.Future[None]:
        """Queue the status row (with whatever else this loop turn queues: one
        transaction); the future resolves when it is committed."""
        if rec.status is not SnapshotStatus.CREATING:
            self.routes.queue_drop(rec.id)
        return self.db.write(
            UPDATE_SNAPSHOT, (rec.status.value, rec.reason, rec.updated_at, rec.id))

    def queue_owner(self, rec: SnapshotRecord) -> asyncio.Future[None]:
        """Queue the snapshot's project and user (its volume's transfer accepted); its
        request id is forgotten, a request of the project it left."""
        rec.updated_at = time.time()
        return self.writing(rec, self.db.write(
            UPDATE_SNAPSHOT_OWNER, (rec.project_id, rec.user_id, rec.updated_at, rec.id)))

    def queue_type(self, rec: SnapshotRecord) -> asyncio.Future[None]:
        """Queue the snapshot's volume type (its volume retyped)."""
        rec.updated_at = time.time()
        return self.writing(rec, self.db.write(
            UPDATE_SNAPSHOT_TYPE, (rec.volume_type_id, rec.updated_at, rec.id)))

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


# A snapshot's zone is its volume's (as Cinder's filter joins them): looked up by the
# volume's key for each row a page looks at, never a scan of the volumes.
_IN_ZONE = ("(SELECT availability_zone FROM volumes WHERE volumes.id=snapshots.volume_id)"
            "=?")


def _matched(name: str | None, metadata: dict[str, str] | None,
             availability_zone: str | None) -> tuple[Condition, ...]:
    """Conditions no index of the snapshots serves: the name, metadata items, the zone."""
    zone: tuple[Condition, ...] = () if availability_zone is None else (
        (_IN_ZONE, (availability_zone,)),)
    return (*named_sql("", name, metadata), *zone)


_ROW_FIELDS = tuple(name for name in SnapshotRecord.__slots__
                    if name not in ("request_id", "request_fp", "__weakref__"))


def _snapshot_from_row(row: Any) -> SnapshotRecord:
    (sid, project, user, volume_id, name, desc, size, status, host, type_id, metadata,
     created, updated, reason) = row
    return SnapshotRecord(
        id=sid, project_id=project, user_id=user or "", volume_id=volume_id, size=size,
        status=_STATUSES[status], host=host, volume_type_id=type_id, name=name,
        description=desc, metadata=json.loads(metadata), reason=reason, created_at=created,
        updated_at=updated,  # its request id and fingerprint stay in the row (made_by)
    )
