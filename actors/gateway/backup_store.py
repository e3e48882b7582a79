"""The gateway's backup records: one table in its own file (``GatewayStore.db``; one
writer, the gateway), all its SQL here.

As for volumes and snapshots (``row_records``), every change is written through the
group-commit ``Database`` before anyone is told of it, and a record is read from its
row when asked for: by id, by volume, a page at a time through the listing indexes;
memory holds the ones in use. A backup's quota (``backups``, ``backup_gigabytes``) is
committed with its row (Cinder commits it when the backup is recorded) and released
with the row's removal, each owed to the quota actor in the same transaction
(``quota_journal``): a failed backup counts until it is deleted, as Cinder's does.

A backup is its node's (``host``, the volume's backend when it was made): that node
wrote it into its backup repository and deletes it from there. A restore is done by
the node of the volume written, which reads the repository it has (shared, or its own).

What the volume was besides its bytes when the backup was made (its name, description,
metadata and image metadata: what Cinder's backup drivers keep as the backup's
"volume_meta") is a row of ``backup_volume_meta``, written and removed with the
backup's; a restore's end gives it back to the volume it wrote
(``backups.restored_details``). Backups made before the table (schema version 15) have
none: a restore of one gives the volume its bytes only.

An incremental backup's parent is a row of ``backup_parents`` (version 17), written and
removed with the backup's; a backup's dependents are the rows that name it, counted
with its row (``dependents``), so that its delete is refused while it has some.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cinderblock.actors.gateway.guards import made_by_row
from cinderblock.actors.gateway.paging import BoundedScan, Key
from cinderblock.actors.gateway.quota_journal import QuotaJournal
from cinderblock.actors.gateway.row_records import (
    Condition,
    RowRecords,
    count_sql,
    named_sql,
    newest_first_sql,
)
from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.quota import backup_amounts
from cinderblock.protocol.states import BackupStatus, check_backup_move

B = BackupStatus
IN_TRANSITION = (B.CREATING, B.DELETING, B.RESTORING)
_IN_TRANSITION_SQL = f"status IN ({', '.join(repr(s.value) for s in IN_TRANSITION)})"
BACKUP_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, volume_id TEXT NOT NULL,
    snapshot_id TEXT, name TEXT, description TEXT, size INTEGER NOT NULL,
    status TEXT NOT NULL, host TEXT, container TEXT, availability_zone TEXT,
    object_count INTEGER NOT NULL, metadata TEXT NOT NULL, fail_reason TEXT,
    restore_volume_id TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    data_timestamp REAL NOT NULL, request_id TEXT, request_fp TEXT
);
CREATE INDEX IF NOT EXISTS backups_volume ON backups (volume_id);
CREATE INDEX IF NOT EXISTS backups_listing ON backups (created_at, id);
CREATE INDEX IF NOT EXISTS backups_project_listing ON backups (project_id, created_at, id);
CREATE INDEX IF NOT EXISTS backups_status_listing ON backups (status, created_at, id);
CREATE INDEX IF NOT EXISTS backups_request ON backups (project_id, request_id, created_at);
CREATE INDEX IF NOT EXISTS backups_in_transition ON backups (updated_at)
    WHERE {_IN_TRANSITION_SQL};
CREATE TABLE IF NOT EXISTS backup_volume_meta (backup_id TEXT PRIMARY KEY, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS backup_parents (backup_id TEXT PRIMARY KEY, parent_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS backup_parents_parent ON backup_parents (parent_id);
"""
_COLUMNS = (
    "id, project_id, user_id, volume_id, snapshot_id, name, description, size, status, "
    "host, container, availability_zone, object_count, metadata, fail_reason, "
    "restore_volume_id, created_at, updated_at, data_timestamp"
)
INSERT_BACKUP = (f"INSERT INTO backups ({_COLUMNS}, request_id, request_fp) "
                 f"VALUES ({', '.join('?' * 21)})")
# a row, its parent (an incremental backup's) and how many backups name it their parent
SELECT_BACKUPS = (
    f"SELECT {_COLUMNS}, "
    "(SELECT parent_id FROM backup_parents WHERE backup_id = backups.id), "
    "(SELECT count(*) FROM backup_parents WHERE parent_id = backups.id) FROM backups"
)
SELECT_BACKUP = f"{SELECT_BACKUPS} WHERE id=?"
SELECT_LISTING_KEYS = "SELECT id, created_at FROM backups"
COUNT_BACKUPS = "SELECT count(*) FROM backups"
UPDATE_BACKUP = ("UPDATE backups SET status=?, fail_reason=?, object_count=?, "
                 "restore_volume_id=?, updated_at=? WHERE id=?")
UPDATE_BACKUP_DETAILS = (
    "UPDATE backups SET name=?, description=?, metadata=?, updated_at=? WHERE id=?"
)
DELETE_BACKUP = "DELETE FROM backups WHERE id=?"
INSERT_VOLUME_META = "INSERT INTO backup_volume_meta (backup_id, meta) VALUES (?, ?)"
SELECT_VOLUME_META = "SELECT meta FROM backup_volume_meta WHERE backup_id=?"
DELETE_VOLUME_META = "DELETE FROM backup_volume_meta WHERE backup_id=?"
INSERT_PARENT = "INSERT INTO backup_parents (backup_id, parent_id) VALUES (?, ?)"
DELETE_PARENT = "DELETE FROM backup_parents WHERE backup_id=?"
IN_TRANSITION_SINCE = (f"SELECT id FROM backups INDEXED BY backups_in_transition "
                       f"WHERE {_IN_TRANSITION_SQL} AND updated_at<? ORDER BY updated_at LIMIT ?")
SELECT_RESTORING = ("SELECT restore_volume_id, id FROM backups WHERE status='restoring' "
                    "AND restore_volume_id IS NOT NULL")
MADE_BY = ("SELECT id, request_fp FROM backups WHERE project_id=? AND request_id=? "
           "AND created_at>? ORDER BY created_at DESC LIMIT 1")
USAGE = ("SELECT count(*), total(size) FROM backups WHERE project_id=? "
         "AND id NOT IN (SELECT value FROM json_each(?))")
RECENT = 4_096  # records kept in memory after their last read
_STATUSES = {s.value: s for s in BackupStatus}


@dataclass(frozen=True, slots=True)
class VolumeMeta:
    """What a volume was besides its bytes when a backup of it was made."""

    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    image_metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "description": self.description,
                           "metadata": self.metadata, "image_metadata": self.image_metadata})

    @classmethod
    def from_json(cls, raw: str) -> VolumeMeta:
        doc = json.loads(raw)
        return cls(doc["name"], doc["description"], dict(doc["metadata"]),
                   dict(doc["image_metadata"]))


@dataclass(slots=True, weakref_slot=True)
class BackupRecord:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    size: int
    status: BackupStatus
    host: str | None = None  # the node backend that made it (and deletes it)
    snapshot_id: str | None = None
    name: str | None = None
    description: str | None = None
    container: str | None = None
    availability_zone: str | None = None
    object_count: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    fail_reason: str | None = None
    restore_volume_id: str | None = None  # the volume a restore writes, while it does
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    data_timestamp: float = 0.0
    request_id: str = ""  # the create's, until its row holds it (``made_by`` reads it there)
    request_fp: str = ""
    parent_id: str | None = None  # an incremental backup's parent
    dependents: int = 0  # the backups that name this one their parent

    def move(self, new: BackupStatus, fail_reason: str | None = None) -> None:
        """Change status in memory, judged by the transition table (raises InvalidState)."""
        check_backup_move(self.status, new)
        self.status, self.fail_reason = new, fail_reason
        self.updated_at = time.time()

    @property
    def reason(self) -> str | None:
        """What a page measures a record by (``paging.Listed``)."""
        return self.fail_reason

    def view(self) -> Backup:
        return Backup(
            id=self.id, project_id=self.project_id, user_id=self.user_id,
            volume_id=self.volume_id, status=self.status, size=self.size,
            object_count=self.object_count, name=self.name, description=self.description,
            snapshot_id=self.snapshot_id, container=self.container,
            availability_zone=self.availability_zone, fail_reason=self.fail_reason,
            metadata=self.metadata, created_at=self.created_at,
            updated_at=self.updated_at or self.created_at,
            data_timestamp=self.data_timestamp or self.created_at,
            restore_volume_id=self.restore_volume_id, is_incremental=self.parent_id is not None,
            has_dependent_backups=self.dependents > 0,
        )

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.project_id, self.user_id, self.volume_id, self.snapshot_id,
            self.name, self.description, self.size, self.status.value, self.host,
            self.container, self.availability_zone, self.object_count,
            json.dumps(self.metadata), self.fail_reason, self.restore_volume_id,
            self.created_at, self.updated_at or self.created_at,
            self.data_timestamp or self.created_at, self.request_id or None,
            self.request_fp or None,
        )


class BackupStore(RowRecords[BackupRecord]):
    """Every backup of the gateway's file, read when asked for and held while in use."""

    def __init__(self, db: Database, journal: QuotaJournal,
                 read_only: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(read_only, SELECT_BACKUP, "backups", RECENT)
        self.db = db
        self.journal = journal
        # volume id -> the backup a restore is writing into it (a volume created from
        # one too): a volume's report looks here, a dict, not at the file
        self.restoring: dict[str, str] = {}

    def from_row(self, row: Any) -> BackupRecord:
        (bid, project, user, volume_id, snapshot_id, name, desc, size, status, host,
         container, zone, objects, metadata, fail_reason, restoring, created, updated,
         data_timestamp, parent_id, dependents) = row
        return BackupRecord(
            id=bid, project_id=project, user_id=user or "", volume_id=volume_id,
            snapshot_id=snapshot_id, name=name, description=desc, size=size,
            status=_STATUSES[status], host=host, container=container,
            availability_zone=zone, object_count=objects, metadata=json.loads(metadata),
            fail_reason=fail_reason, restore_volume_id=restoring, created_at=created,
            updated_at=updated, data_timestamp=data_timestamp, parent_id=parent_id,
            dependents=dependents,
        )

    def reset(self, held: BackupRecord, read: BackupRecord) -> None:
        for name in _ROW_FIELDS:
            setattr(held, name, getattr(read, name))
        held.request_id = held.request_fp = ""  # the row has them (see made_by)

    def install(self, restoring: list[tuple[str, str]]) -> None:
        """On the loop, at a start and after a failed write: the restores in progress
        (volume id, backup id) as the file holds them, and the backups memory holds
        made their rows (``read_back``)."""
        self.restoring = dict(restoring)
        self.read_back()

    # ---- reads ---------------------------------------------------------------
    def of_volume(self, volume_id: str) -> list[BackupRecord]:
        """The volume's backups, new ones included, by id, as memory holds them."""
        found = {rec.id: rec for rec in self.rows(f"{SELECT_BACKUPS} WHERE volume_id=?",
                                                  (volume_id,))}
        found.update((rec.id, rec) for rec in self.new.values() if rec.volume_id == volume_id)
        return [found[bid] for bid in sorted(found)]

    def restoring_into(self, volume_id: str) -> BackupRecord | None:
        """The backup a restore is writing into ``volume_id`` now, if any."""
        backup_id = self.restoring.get(volume_id)
        return None if backup_id is None else self.get(backup_id)

    def newest_first(self, project: str | None, below: Key | None,
                     volume_id: str | None = None, status: str | None = None,
                     name: str | None = None
                     ) -> Iterator[BackupRecord] | BoundedScan[BackupRecord]:
        """``project``'s backups (every project's for None) in listing order, newest
        first, below ``below`` when given, through the listing indexes (a volume's few
        through the volume's index); a name has no index: matched in no more than
        ``SCAN_ROWS`` rows a page, as ``SnapshotStore.newest_first`` does."""
        matched = named_sql("", name, None)
        if volume_id is None:
            indexed: tuple[Condition, ...] = () if status is None else (
                ("status=?", (status,)),)
            listed = partial(newest_first_sql, project=project, below=below)
            return self.listed_rows(listed, SELECT_BACKUPS, SELECT_LISTING_KEYS, indexed,
                                    matched)
        mine: tuple[Condition, ...] = () if project is None else (("+project_id=?", (project,)),)
        wanted: tuple[Condition, ...] = () if status is None else (("+status=?", (status,)),)
        return self.rows(*newest_first_sql(SELECT_BACKUPS, None, below, more=(
            ("volume_id=?", (volume_id,)), *mine, *wanted, *matched)))

    async def count(self, project: str | None, volume_id: str | None, status: str | None,
                    name: str | None, asker: str) -> int:
        """How many backups a listing with these filters lists in all (``with_count``),
        counted aside from the loop."""
        more: tuple[Condition, ...] = (
            *(() if volume_id is None else (("volume_id=?", (volume_id,)),)),
            *(() if status is None else (("status=?", (status,)),)))
        sql, params = count_sql(COUNT_BACKUPS, "", project, more, name, None, "backups")
        ((counted,),) = await self.db.read_aside(sql, params, whose=asker)
        return int(counted)

    def made_by(self, project: str, request_id: str) -> tuple[BackupRecord, str] | None:
        """The backup ``request_id`` made in ``project`` within a day, and the fingerprint
        of that request; None if it made none (or the backup is gone)."""
        for new in self.new.values():
            if new.request_id == request_id and new.project_id == project:
                return new, new.request_fp
        row = made_by_row(self._read_only(), MADE_BY, project, request_id)
        rec = self.get(row[0]) if row is not None else None
        return None if rec is None or row is None else (rec, row[1])

    def usage(self, project: str) -> tuple[int, int]:
        """``project``'s backups and their GiB at this instant (a quota sync's count):
        the committed rows but those being removed, and those not committed yet."""
        new = [rec for rec in self.new.values() if rec.project_id == project]
        skipped = [rec.id for rec in new]
        skipped += [rid for rid, rec in self.removing.items() if rec.project_id == project]
        count, size = self._read_only().execute(USAGE, (project, json.dumps(skipped))
                                                ).fetchone()
        return count + len(new), int(size) + sum(rec.size for rec in new)

    def volume_meta(self, backup_id: str) -> VolumeMeta | None:
        """What the backup's volume was when it was made (None: a backup from before
        they were kept)."""
        row = self._read_only().execute(SELECT_VOLUME_META, (backup_id,)).fetchone()
        return None if row is None else VolumeMeta.from_json(row[0])

    def in_transition_since(self, before: float, limit: int) -> list[BackupRecord]:
        """Up to ``limit`` backups whose row has been creating, deleting or restoring
        since before ``before``, oldest first, through the partial index."""
        rows = self._read_only().execute(IN_TRANSITION_SINCE, (before, limit)).fetchall()
        return [rec for (bid,) in rows if (rec := self.get(bid)) is not None]

    # ---- changes ---------------------------------------------------------------
    def queue_add(self, rec: BackupRecord, reservation_id: str | None,
                  volume_meta: VolumeMeta) -> asyncio.Future[None]:
        """Queue the new row, what its volume was (``volume_meta``) and, in the same
        transaction, the commit of its reservation owed to the quota actor; the caller
        queues what else goes with it (its volume's or snapshot's status) in the same
        loop turn and awaits ``settle_add``."""
        self.added(rec)
        self.db.write(INSERT_VOLUME_META, (rec.id, volume_meta.to_json()))  # with the row's
        if rec.parent_id is not None:
            self.db.write(INSERT_PARENT, (rec.id, rec.parent_id))
            self._count_dependent(rec.parent_id, +1)
        written = self.db.write(INSERT_BACKUP, rec.row())
        if reservation_id is not None:
            self.journal.owe_commit(reservation_id, rec.project_id)
        return written

    async def settle_add(self, rec: BackupRecord, written: asyncio.Future[None]) -> None:
        try:
            await written
        except Exception:
            self.forget(rec)
            raise
        self.written(rec)
        rec.request_id = rec.request_fp = ""  # the row has them: made_by reads it there

    def queue_remove(self, rec: BackupRecord) -> asyncio.Future[None]:
        """Queue the row's removal and, in the same transaction, the release of its
        quota owed (op id ``release:backup:<id>``: given back once)."""
        self.db.write(DELETE_VOLUME_META, (rec.id,))  # in the row's transaction
        if rec.parent_id is not None:
            self.db.write(DELETE_PARENT, (rec.id,))
            self._count_dependent(rec.parent_id, -1)
        written = self.db.write(DELETE_BACKUP, (rec.id,))
        self.removed(rec, written)
        self.journal.owe_release(f"release:backup:{rec.id}", rec.project_id,
                                 backup_amounts(rec.size))
        return written

    def _count_dependent(self, parent_id: str, change: int) -> None:
        """The parent memory holds counts one dependent more or fewer (a failed write reads
        it back from the file, as every record it holds)."""
        parent = self.get(parent_id)
        if parent is not None:
            parent.dependents += change

    def latest_available(self, volume_id: str, before: float | None = None
                         ) -> BackupRecord | None:
        """The volume's available backup whose data is the newest (``data_timestamp``;
        only of data older than ``before`` when given): an incremental backup's parent,
        as Cinder chooses it."""
        candidates = [rec for rec in self.of_volume(volume_id) if rec.status is B.AVAILABLE
                      and (before is None or rec.data_timestamp < before)]
        return max(candidates, key=lambda rec: (rec.data_timestamp, rec.created_at),
                   default=None)

    def queue_status(self, rec: BackupRecord) -> asyncio.Future[None]:
        """Queue the status row (with whatever else this loop turn queues: one
        transaction); it resolves when committed, and holds ``rec`` in memory till then.
        A restore's volume is noted (``restoring``) while the row says it restores."""
        self.restoring = {vid: bid for vid, bid in self.restoring.items() if bid != rec.id}
        if rec.status is B.RESTORING and rec.restore_volume_id is not None:
            self.restoring[rec.restore_volume_id] = rec.id
        return self.writing(rec, self.db.write(UPDATE_BACKUP, (
            rec.status.value, rec.fail_reason, rec.object_count, rec.restore_volume_id,
            rec.updated_at, rec.id)))

    async def save_details(self, rec: BackupRecord) -> None:
        rec.updated_at = time.time()
        await self.db.write(UPDATE_BACKUP_DETAILS, (
            rec.name, rec.description, json.dumps(rec.metadata), rec.updated_at, rec.id))


_ROW_FIELDS = tuple(name for name in BackupRecord.__slots__
                    if name not in ("request_id", "request_fp", "__weakref__"))
