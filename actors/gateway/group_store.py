"""The groups the gateway keeps in gateway.db: group types (table ``group_types``),
groups (``groups``) and which volumes each holds (``group_volumes``, a row a member).

Group types and groups are few, and a group's volumes are listed with it, so memory
holds them all: read at start and, after a failed write, read back with the rest of
the file. A member's row is written in the transaction that makes its volume (a create
into the group) or that adds it, and removed in the one that removes the volume's row
or takes it out of the group.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from cinderblock.actors.gateway.guards import REQUEST_ID_TTL_S
from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.groups import Group, GroupType
from cinderblock.protocol.states import GroupStatus


class MadeByRequest(Protocol):
    project_id: str
    created_at: float
    request_id: str
    request_fp: str


R = TypeVar("R", bound=MadeByRequest)
T = TypeVar("T")


def told_once_committed(written: asyncio.Future[None],
                        on_change: Callable[[T, bool], None] | None, rec: T, deleted: bool
                        ) -> asyncio.Future[None]:
    """``written``, with ``on_change(rec, deleted)`` called once it has committed."""
    def committed(done: asyncio.Future[None]) -> None:
        if on_change is not None and not done.cancelled() and done.exception() is None:
            on_change(rec, deleted)

    written.add_done_callback(committed)
    return written


def made_by_record(records: Iterable[R], project: str, request_id: str
                   ) -> tuple[R, str] | None:
    """The record ``request_id`` made in ``project`` within ``REQUEST_ID_TTL_S``, and
    that request's fingerprint (groups and group snapshots are few: memory holds them)."""
    if not request_id:
        return None
    since = time.time() - REQUEST_ID_TTL_S
    found = next((r for r in records if r.request_id == request_id
                  and r.project_id == project and r.created_at >= since), None)
    return (found, found.request_fp) if found is not None else None


def add_request_columns(conn: sqlite3.Connection) -> None:
    """gateway.db 20 -> 21: a group's and a group snapshot's create keep their request
    id and its fingerprint (the columns each table lacks)."""
    for table in ("groups", "group_snapshots"):
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in ("request_id", "request_fp"):
            if column not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")


GROUP_TYPE_SCHEMA = """
CREATE TABLE IF NOT EXISTS group_types (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT,
    is_public INTEGER NOT NULL, group_specs TEXT NOT NULL, created_at REAL NOT NULL
);
"""
_COLUMNS = "id, name, description, is_public, group_specs, created_at"
SAVE_GROUP_TYPE = f"INSERT OR REPLACE INTO group_types ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
DELETE_GROUP_TYPE = "DELETE FROM group_types WHERE id=?"


class GroupTypeStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_id: dict[str, GroupType] = {}
        self.created: dict[str, float] = {}  # id -> when (the listing's order)

    async def load(self) -> None:
        (await self.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: every group type (at start, and after a failed
        write); what it returns makes them the ones memory holds."""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM group_types").fetchall()
        return partial(self._install, [
            (GroupType(tid, name, description, bool(public), json.loads(specs)), created)
            for tid, name, description, public, specs, created in rows])

    def _install(self, rows: Iterable[tuple[GroupType, float]]) -> None:
        self.by_id, self.created = {}, {}
        for gtype, created in rows:
            self.by_id[gtype.id], self.created[gtype.id] = gtype, created

    def named(self, name: str) -> GroupType | None:
        return next((t for t in self.by_id.values() if t.name == name), None)

    def queue_save(self, gtype: GroupType) -> asyncio.Future[None]:
        created = self.created.setdefault(gtype.id, time.time())
        self.by_id[gtype.id] = gtype
        return self.db.write(SAVE_GROUP_TYPE, (gtype.id, gtype.name, gtype.description,
                                               int(gtype.is_public),
                                               json.dumps(gtype.group_specs), created))

    def queue_remove(self, gtype: GroupType) -> asyncio.Future[None]:
        self.by_id.pop(gtype.id, None)
        self.created.pop(gtype.id, None)
        return self.db.write(DELETE_GROUP_TYPE, (gtype.id,))


GROUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT,
    description TEXT, status TEXT NOT NULL, group_type_id TEXT NOT NULL,
    volume_type_ids TEXT NOT NULL, availability_zone TEXT NOT NULL, host TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, reason TEXT,
    group_snapshot_id TEXT, source_group_id TEXT, request_id TEXT, request_fp TEXT
);
CREATE TABLE IF NOT EXISTS group_volumes (
    volume_id TEXT PRIMARY KEY, group_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS group_volumes_group ON group_volumes (group_id);
"""
_GROUP_COLUMNS = ("id, project_id, user_id, name, description, status, group_type_id, "
                  "volume_type_ids, availability_zone, host, created_at, updated_at, reason, "
                  "group_snapshot_id, source_group_id, request_id, request_fp")
SAVE_GROUP = f"INSERT OR REPLACE INTO groups ({_GROUP_COLUMNS}) VALUES ({', '.join('?' * 17)})"
DELETE_GROUP = "DELETE FROM groups WHERE id=?"
JOIN_GROUP = "INSERT OR REPLACE INTO group_volumes (volume_id, group_id) VALUES (?, ?)"
LEAVE_GROUP = "DELETE FROM group_volumes WHERE volume_id=?"


@dataclass(slots=True)
class GroupRecord:
    id: str
    project_id: str
    user_id: str
    name: str | None
    description: str | None
    status: GroupStatus
    group_type_id: str
    volume_type_ids: tuple[str, ...]
    availability_zone: str
    host: str  # the backend its volumes live on
    created_at: float
    updated_at: float
    reason: str | None = None
    group_snapshot_id: str | None = None  # made from this group snapshot
    source_group_id: str | None = None  # made as a copy of this group
    request_id: str = ""  # the create's (a retry under it answers this group)
    request_fp: str = ""  # and what it asked for (``guards.fingerprint``)

    def row(self) -> tuple[Any, ...]:
        return (self.id, self.project_id, self.user_id, self.name, self.description,
                self.status.value, self.group_type_id, json.dumps(self.volume_type_ids),
                self.availability_zone, self.host, self.created_at, self.updated_at,
                self.reason, self.group_snapshot_id, self.source_group_id,
                self.request_id or None, self.request_fp or None)

    def view(self, volumes: Iterable[str]) -> Group:
        return Group(self.id, self.project_id, self.status, self.group_type_id,
                     self.volume_type_ids, self.name, self.description,
                     self.availability_zone, self.host, self.created_at,
                     tuple(sorted(volumes)), self.user_id, self.reason,
                     self.group_snapshot_id, self.source_group_id, self.updated_at)


def _group(row: tuple[Any, ...]) -> GroupRecord:
    (gid, project, user, name, description, status, type_id, volume_types, zone, host,
     created, updated, reason, group_snapshot_id, source_group_id, request_id, request_fp
     ) = row
    return GroupRecord(gid, project, user, name, description, GroupStatus(status), type_id,
                       tuple(json.loads(volume_types)), zone, host, created, updated, reason,
                       group_snapshot_id, source_group_id, request_id or "", request_fp or "")


class Membership:
    """Which owner (a group; a group snapshot) each member (a volume; a snapshot) is in,
    both ways, as memory holds the member rows; the rows' writes are the store's."""

    def __init__(self) -> None:
        self.owner_of: dict[str, str] = {}  # member id -> its owner's id
        self.members: dict[str, set[str]] = {}  # owner id -> its members' ids

    def install(self, owners: Iterable[str], rows: Iterable[tuple[str, str]]) -> None:
        """Every owner, and the (member, owner) rows, as read from the file."""
        self.owner_of, self.members = {}, {owner: set() for owner in owners}
        for member, owner in rows:
            self.join(owner, member)

    def join(self, owner: str, member: str) -> None:
        self.owner_of[member] = owner
        self.members.setdefault(owner, set()).add(member)

    def leave(self, member: str) -> str | None:
        """The member out of its owner; its owner's id (None if it had none)."""
        owner = self.owner_of.pop(member, None)
        if owner is not None:
            self.members.get(owner, set()).discard(member)
        return owner

    def drop(self, owner: str) -> None:
        """An owner gone, and with it what memory knew of its members."""
        for member in self.members.pop(owner, set()):
            self.owner_of.pop(member, None)


class GroupStore:
    """The groups and their members, as memory holds them (the rows' mirror)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_id: dict[str, GroupRecord] = {}
        self.membership = Membership()  # the volumes in each group
        # the ``creating`` groups whose create-from-src is making their volumes now (memory
        # only: after a restart none is, and the reconciler ends any left ``creating``)
        self.filling: set[str] = set()
        # told of each group whose row or volumes a write changed (``deleted``: removed),
        # once that write is committed: the gateway's event for dashboards
        self.on_change: Callable[[GroupRecord, bool], None] | None = None

    async def load(self) -> None:
        (await self.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: every group and member (at start, and after a failed
        write); what it returns makes them the ones memory holds."""
        groups = [_group(row) for row in
                  conn.execute(f"SELECT {_GROUP_COLUMNS} FROM groups").fetchall()]
        members = conn.execute("SELECT volume_id, group_id FROM group_volumes").fetchall()
        return partial(self._install, groups, members)

    def _install(self, groups: Iterable[GroupRecord], members: Iterable[tuple[str, str]]
                 ) -> None:
        self.by_id = {g.id: g for g in groups}
        self.membership.install(self.by_id, members)

    @property
    def members(self) -> dict[str, set[str]]:
        """Group id -> its volumes' ids."""
        return self.membership.members

    def group_of_volume(self, volume_id: str) -> str | None:
        return self.membership.owner_of.get(volume_id)

    def of_type(self, group_type_id: str) -> int:
        return sum(1 for g in self.by_id.values() if g.group_type_id == group_type_id)

    def made_by(self, project: str, request_id: str) -> tuple[GroupRecord, str] | None:
        return made_by_record(self.by_id.values(), project, request_id)

    def of_volume_type(self, volume_type_id: str) -> int:
        return sum(1 for g in self.by_id.values() if volume_type_id in g.volume_type_ids)

    def queue_save(self, group: GroupRecord) -> asyncio.Future[None]:
        group.updated_at = time.time()
        self.by_id[group.id] = group
        self.members.setdefault(group.id, set())
        return told_once_committed(self.db.write(SAVE_GROUP, group.row()), self.on_change,
                                   group, False)

    def queue_remove(self, group: GroupRecord) -> asyncio.Future[None]:
        self.by_id.pop(group.id, None)
        self.membership.drop(group.id)
        return told_once_committed(self.db.write(DELETE_GROUP, (group.id,)), self.on_change,
                                   group, True)

    def queue_join(self, group_id: str, volume_id: str) -> asyncio.Future[None]:
        self.membership.join(group_id, volume_id)
        return self._member_moved(self.db.write(JOIN_GROUP, (volume_id, group_id)), group_id)

    def forget_member(self, volume_id: str) -> None:
        """Memory only: a member whose row was not written after all."""
        self.membership.leave(volume_id)

    def queue_leave(self, volume_id: str) -> tuple[asyncio.Future[None], str] | None:
        """The volume out of its group (its row written away); None if in none."""
        group_id = self.membership.leave(volume_id)
        if group_id is None:
            return None
        return self._member_moved(self.db.write(LEAVE_GROUP, (volume_id,)), group_id), group_id

    def _member_moved(self, written: asyncio.Future[None], group_id: str
                      ) -> asyncio.Future[None]:
        """A volume joined or left ``group_id``: its count changed (an event says so)."""
        group = self.by_id.get(group_id)
        return written if group is None \
            else told_once_committed(written, self.on_change, group, False)


GROUP_SNAPSHOT_SCHEMA = """
CREATE TABLE IF NOT EXISTS group_snapshots (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
    group_id TEXT NOT NULL, group_type_id TEXT NOT NULL, name TEXT, description TEXT,
    deleting INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    request_id TEXT, request_fp TEXT
);
CREATE TABLE IF NOT EXISTS group_snapshot_members (
    snapshot_id TEXT PRIMARY KEY, group_snapshot_id TEXT NOT NULL
);
"""
_GS_COLUMNS = ("id, project_id, user_id, group_id, group_type_id, name, description, deleting, "
               "created_at, updated_at, request_id, request_fp")
SAVE_GROUP_SNAPSHOT = (f"INSERT OR REPLACE INTO group_snapshots ({_GS_COLUMNS}) "
                       f"VALUES ({', '.join('?' * 12)})")
DELETE_GROUP_SNAPSHOT = "DELETE FROM group_snapshots WHERE id=?"
JOIN_GROUP_SNAPSHOT = ("INSERT OR REPLACE INTO group_snapshot_members (snapshot_id, "
                       "group_snapshot_id) VALUES (?, ?)")
LEAVE_GROUP_SNAPSHOT = "DELETE FROM group_snapshot_members WHERE snapshot_id=?"


@dataclass(slots=True)
class GroupSnapshotRecord:
    """A group snapshot; its status is its snapshots' (``group_snapshots.status_of``),
    but for ``deleting``, which its delete writes."""

    id: str
    project_id: str
    user_id: str
    group_id: str
    group_type_id: str
    name: str | None
    description: str | None
    deleting: bool
    created_at: float
    updated_at: float
    request_id: str = ""  # the create's (a retry under it answers this group snapshot)
    request_fp: str = ""  # and what it asked for (``guards.fingerprint``)

    def row(self) -> tuple[Any, ...]:
        return (self.id, self.project_id, self.user_id, self.group_id, self.group_type_id,
                self.name, self.description, int(self.deleting), self.created_at,
                self.updated_at, self.request_id or None, self.request_fp or None)


class GroupSnapshotStore:
    """The group snapshots and their snapshots, as memory holds them. ``on_change``
    hears of each change once committed (``deleted``: the row is gone), and of each
    change of a member snapshot's status (``member_changed``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_id: dict[str, GroupSnapshotRecord] = {}
        self.membership = Membership()  # the snapshots of each group snapshot
        self.on_change: Callable[[GroupSnapshotRecord, bool], None] | None = None

    async def load(self) -> None:
        (await self.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        rows = conn.execute(f"SELECT {_GS_COLUMNS} FROM group_snapshots").fetchall()
        records = [GroupSnapshotRecord(gid, project, user, group, gtype, name, description,
                                       bool(deleting), created, updated, rid or "", fp or "")
                   for gid, project, user, group, gtype, name, description, deleting, created,
                   updated, rid, fp in rows]
        members = conn.execute(
            "SELECT snapshot_id, group_snapshot_id FROM group_snapshot_members").fetchall()
        return partial(self._install, records, members)

    def _install(self, records: Iterable[GroupSnapshotRecord],
                 members: Iterable[tuple[str, str]]) -> None:
        self.by_id = {r.id: r for r in records}
        self.membership.install(self.by_id, members)

    @property
    def members(self) -> dict[str, set[str]]:
        """Group snapshot id -> its snapshots' ids."""
        return self.membership.members

    def group_snapshot_of(self, snapshot_id: str) -> str | None:
        return self.membership.owner_of.get(snapshot_id)

    def of_group(self, group_id: str) -> list[GroupSnapshotRecord]:
        return [r for r in self.by_id.values() if r.group_id == group_id]

    def made_by(self, project: str, request_id: str
                ) -> tuple[GroupSnapshotRecord, str] | None:
        return made_by_record(self.by_id.values(), project, request_id)

    def queue_save(self, rec: GroupSnapshotRecord) -> asyncio.Future[None]:
        rec.updated_at = time.time()
        self.by_id[rec.id] = rec
        self.members.setdefault(rec.id, set())
        return told_once_committed(self.db.write(SAVE_GROUP_SNAPSHOT, rec.row()),
                                   self.on_change, rec, False)

    def queue_remove(self, rec: GroupSnapshotRecord) -> asyncio.Future[None]:
        self.by_id.pop(rec.id, None)
        self.membership.drop(rec.id)
        return told_once_committed(self.db.write(DELETE_GROUP_SNAPSHOT, (rec.id,)),
                                   self.on_change, rec, True)

    def member_changed(self, group_snapshot_id: str) -> None:
        """A snapshot of this group snapshot changed status (published as it was)."""
        rec = self.by_id.get(group_snapshot_id)
        if rec is not None and self.on_change is not None:
            self.on_change(rec, False)


    def queue_join(self, group_snapshot_id: str, snapshot_id: str) -> asyncio.Future[None]:
        self.membership.join(group_snapshot_id, snapshot_id)
        return self.db.write(JOIN_GROUP_SNAPSHOT, (snapshot_id, group_snapshot_id))

    def forget_member(self, snapshot_id: str) -> None:
        self.membership.leave(snapshot_id)

    def queue_leave(self, snapshot_id: str) -> tuple[asyncio.Future[None], str] | None:
        group_snapshot_id = self.membership.leave(snapshot_id)
        return None if group_snapshot_id is None else (
            self.db.write(LEAVE_GROUP_SNAPSHOT, (snapshot_id,)), group_snapshot_id)
