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
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from cinderblock.actors.gateway.guards import made_by_row
from cinderblock.actors.gateway.paging import Key
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
CREATE INDEX IF NOT EXISTS snapshots_listing ON snapshots (created_at, id);
CREATE INDEX IF NOT EXISTS snapshots_project_listing ON snapshots (project_id, created_at, id);
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
SELECT_SNAPSHOT = f"{SELECT_SNAPSHOTS} WHERE id=?"
SELECT_OF_VOLUME = f"{SELECT_SNAPSHOTS} WHERE volume_id=?"
NEWEST_FIRST = " ORDER BY created_at DESC, id DESC"
RECENT = 16_384  # records kept in memory after their last read (a few hundred bytes each)
_STATUSES = {s.value: s for s in SnapshotStatus}
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
    """Every snapshot of the gateway's file, read when asked for; volume sources and
    clones.

    As ``volume_store.Volumes``: a record is read from its row (on the store's read-only
    connection, on the loop: an indexed read) when it is asked for, and stays in memory
    while anything holds it (a flow, a page being answered), while a write of it is not
    yet committed, and for the next ``RECENT`` reads after its own. So a snapshot has one
    record at a time, which flows change in place, and memory that is ahead of its row is
    never dropped. A new one is kept from its create until its row is committed (``new``);
    one being removed, until its removal is (``removing``: a failed removal brings it
    back), and meanwhile it is not found. A request id names the snapshot it made for
    ``REQUEST_ID_TTL_S`` (a day) and lives in the row, not in memory, as a volume's does
    (``volume_store``): ``made_by`` reads it through an index, records not yet committed
    first."""

    def __init__(self, db: Database, journal: QuotaJournal,
                 read_only: Callable[[], sqlite3.Connection]) -> None:
        self.journal = journal
        self.db = db
        self._read_only = read_only
        self._live: weakref.WeakValueDictionary[str, SnapshotRecord] = (
            weakref.WeakValueDictionary())
        self._recent: deque[SnapshotRecord] = deque(maxlen=RECENT)
        self.new: dict[str, SnapshotRecord] = {}  # added, row not committed yet
        self.removing: dict[str, SnapshotRecord] = {}  # forgotten, removal not settled
        self.clones: dict[str, set[str]] = {}  # source (snapshot or volume) id -> volume ids

    def install(self, sources: list[tuple[str, str | None, str | None]]) -> None:
        """On the loop, at a start and after a failed write: the clones follow the sources
        read (volume id, snapshot id, source volume id), and every snapshot record memory
        holds (and every one being removed) is made what its row says, in place (flows
        hold them); one with no row is dropped."""
        self.clones = {}
        for volume_id, snapshot_id, source_volid in sources:
            self._add_clone(volume_id, snapshot_id or source_volid)
        held = {**self.removing, **dict(self._live.items())}
        self.removing, self.new = {}, {}
        for sid, rec in held.items():
            row = self._read_only().execute(SELECT_SNAPSHOT, (sid,)).fetchone()
            if row is None:
                if self._live.get(sid) is rec:
                    del self._live[sid]
                continue
            read = _snapshot_from_row(row)
            for name in _ROW_FIELDS:
                setattr(rec, name, getattr(read, name))
            rec.request_id = rec.request_fp = ""  # the row has them (see made_by)
            self.keep(rec)

    # ---- snapshots -------------------------------------------------------
    def get(self, snapshot_id: str) -> SnapshotRecord | None:
        rec = self._live.get(snapshot_id)
        if rec is not None or snapshot_id in self.removing:
            return rec
        row = self._read_only().execute(SELECT_SNAPSHOT, (snapshot_id,)).fetchone()
        return None if row is None else self.keep(_snapshot_from_row(row))

    def __getitem__(self, snapshot_id: str) -> SnapshotRecord:
        rec = self.get(snapshot_id)
        if rec is None:
            raise KeyError(snapshot_id)
        return rec

    def keep(self, rec: SnapshotRecord) -> SnapshotRecord:
        self._live[rec.id] = rec
        self._recent.append(rec)
        return rec

    def _rows(self, where: str, params: tuple[Any, ...], order: str = ""
              ) -> Iterator[SnapshotRecord]:
        """The snapshots whose rows match, each as memory holds it (a record memory does
        not hold is read from its row, not kept); those being removed left out."""
        rows = self._read_only().execute(f"{SELECT_SNAPSHOTS} WHERE {where}{order}", params)
        try:
            for row in rows:  # a row at a time: a page reads one past its end, no more
                rec = self._live.get(row[0])
                if rec is None and row[0] not in self.removing:
                    rec = _snapshot_from_row(row)
                if rec is not None:
                    yield rec
        finally:
            rows.close()

    def of_volume(self, volume_id: str) -> list[SnapshotRecord]:
        """The volume's snapshots, new ones included, by id, as memory holds them."""
        found = {rec.id: rec for rec in self._rows("volume_id=?", (volume_id,))}
        found.update((rec.id, rec) for rec in self.new.values() if rec.volume_id == volume_id)
        return [found[sid] for sid in sorted(found)]

    def of_project(self, project: str) -> list[SnapshotRecord]:
        """Every snapshot of ``project``, as memory holds it, new ones included."""
        found = {rec.id: rec for rec in self._rows("project_id=?", (project,))}
        found.update((rec.id, rec) for rec in self.new.values() if rec.project_id == project)
        return list(found.values())

    def newest_first(self, project: str | None, below: Key | None,
                     volume_id: str | None = None) -> Iterator[SnapshotRecord]:
        """``project``'s snapshots (every project's for None; only ``volume_id``'s when
        given) in listing order, newest first, below ``below`` (a marker's key) when given,
        through the listing indexes (a volume's few through the volume's index). One whose
        row is not committed yet is not listed, as it is not told yet."""
        where: list[str] = []
        params: list[Any] = []
        if project is not None:
            # with a volume, "+" keeps SQLite off the project's listing index, whose order
            # it would otherwise take over the volume's few rows (a scan of the project)
            where.append("project_id=?" if volume_id is None else "+project_id=?")
            params.append(project)
        if volume_id is not None:
            where.append("volume_id=?")
            params.append(volume_id)
        if below is not None:
            where.append("(created_at, id) < (?, ?)")
            params.extend(below)
        return self._rows(" AND ".join(where) or "1", tuple(params), NEWEST_FIRST)

    def made_by(self, project: str, request_id: str) -> tuple[SnapshotRecord, str] | None:
        """The snapshot ``request_id`` made in ``project`` within a day, and the
        fingerprint of that request; None if it made none (or the snapshot is gone)."""
        for new in self.new.values():
            if new.request_id == request_id and new.project_id == project:
                return new, new.request_fp
        row = made_by_row(self._read_only(), MADE_BY, project, request_id)
        rec = self.get(row[0]) if row is not None else None
        return None if rec is None or row is None else (rec, row[1])

    def in_transition_since(self, before: float, limit: int) -> list[SnapshotRecord]:
        """As ``GatewayStore.in_transition_since``, for snapshots."""
        rows = self._read_only().execute(IN_TRANSITION_SINCE, (before, limit)).fetchall()
        return [rec for (sid,) in rows if (rec := self.get(sid)) is not None]

    def _forget(self, rec: SnapshotRecord) -> None:
        """No longer found (its create failed, or it is being removed)."""
        if self.new.get(rec.id) is rec:
            del self.new[rec.id]
        if self._live.get(rec.id) is rec:
            del self._live[rec.id]

    async def add(self, rec: SnapshotRecord, reservation_id: str | None = None) -> None:
        """The new record and, in the same transaction, the commit of its
        reservation it owes the quota actor (``quota_journal``)."""
        self.keep(rec)
        self.new[rec.id] = rec
        written = self.db.write(INSERT_SNAPSHOT, rec.row())
        if reservation_id is not None:
            self.journal.owe_commit(reservation_id, rec.project_id)
        try:
            await written
        except Exception:
            self._forget(rec)
            raise
        if self.new.get(rec.id) is rec:
            del self.new[rec.id]
        rec.request_id = rec.request_fp = ""  # the row has them: made_by reads it there

    async def remove(self, rec: SnapshotRecord) -> None:
        """The row goes and, in the same transaction, the release of its quota is owed
        (``quota_journal``; op id ``release:snapshot:<id>``: given back once)."""
        self._forget(rec)
        written = self.db.write(DELETE_SNAPSHOT, (rec.id,))
        self.removing[rec.id] = rec  # until its batch is settled (see install)
        written.add_done_callback(partial(settled_removal, self.removing, rec))
        self.journal.owe_release(f"release:snapshot:{rec.id}", rec.project_id,
                                 {"snapshots": 1, "gigabytes": rec.size})
        await written

    async def save_details(self, rec: SnapshotRecord) -> None:
        rec.updated_at = time.time()
        await self._held(rec, self.db.write(UPDATE_SNAPSHOT_DETAILS, (
            rec.name, rec.description, json.dumps(rec.metadata), rec.updated_at, rec.id)))

    async def save_status(self, rec: SnapshotRecord) -> None:
        await self._held(rec, self.db.write(
            UPDATE_SNAPSHOT, (rec.status.value, rec.reason, rec.updated_at, rec.id)))

    @staticmethod
    def _held(rec: SnapshotRecord, written: asyncio.Future[None]) -> asyncio.Future[None]:
        """``written``, which holds ``rec`` in memory until it is settled (memory is
        ahead of the row until then)."""
        written.add_done_callback(partial(_held_until_settled, rec))
        return written

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


def _held_until_settled(rec: SnapshotRecord, written: asyncio.Future[None]) -> None:
    """Nothing to do: the callback holds ``rec`` in memory until its write is settled."""


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
