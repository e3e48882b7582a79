"""The gateway's records: volumes and volume types, in its SQLite file and in memory.

The gateway is the only writer of this file. Every change is written through the
group-commit ``Database`` before the gateway tells anyone about it, so what a client
was told survives a restart.

Volumes are not all held in memory (``docs/performance.md``, "As the data grows"): a
million records took 8 s of CPU to read at a start. ``Volumes`` reads a volume's row
when it is asked for, on a read-only connection of the store's own, on the loop (an
indexed read of one row costs microseconds, a hop to the database thread about 160, and
in WAL mode a reader never waits for the writer), and keeps the record while it is in
use, so a volume has one record at a time and flows change it in place: what volumes,
snapshots and attachments share, ``row_records.RowRecords``. Pages read rows in listing
order through the indexes on (project_id, created_at, id) and (created_at, id), each
volume as memory holds it. A start reads only what is small: the pending extends and
reverts and the sources of the volumes being created (the source locks).

Request ids expire, as EC2's client tokens do: a request id names the volume it made
for ``REQUEST_ID_TTL_S`` (a day) after the create, and lives in the row, not in
memory. ``made_by`` asks the file through an index on (project_id, request_id). It sees
committed rows only, so the records whose row is still being written are looked up in
memory (``_unwritten``) first.

Memory equal to disk after a failed write (a full disk, an I/O error). The store
gives its ``Database`` ``reread``: run in the database thread right after the failed
batch is rolled back, it reads the tables the others keep here (types, attachments,
user messages, added with ``reread_with``) and the sources of the volumes being created,
and returns what brings memory back to them, which runs on the loop before any flow
resumes; there every volume, snapshot and attachment record memory holds gets every
field its row holds, in place (a removal whose write failed brings its very record
back), and one with no row is dropped (``RowRecords.read_back``). A start loads memory
with the same code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from cinderblock.actors.gateway.attachment_store import MIGRATION as ATTACHMENT_MIGRATION
from cinderblock.actors.gateway.attachment_store import SCHEMA as ATTACHMENT_SCHEMA
from cinderblock.actors.gateway.attachment_store import UNLIKE_ITS_ATTACHMENTS
from cinderblock.actors.gateway.backup_store import BACKUP_SCHEMA, SELECT_RESTORING, BackupStore
from cinderblock.actors.gateway.create_routes import (
    DROP_SETTLED_ROUTES,
    SELECT_ROUTES_LEFT,
    CreateRoutes,
)
from cinderblock.actors.gateway.create_routes import SCHEMA as CREATE_ROUTES_SCHEMA
from cinderblock.actors.gateway.delete_requests import DELETE_REQUESTS_SCHEMA
from cinderblock.actors.gateway.group_store import (
    GROUP_SCHEMA,
    GROUP_SNAPSHOT_SCHEMA,
    GROUP_TYPE_SCHEMA,
    GroupSnapshotStore,
    GroupStore,
    GroupTypeStore,
    add_request_columns,
)
from cinderblock.actors.gateway.guards import made_by_row
from cinderblock.actors.gateway.migration_store import (
    MIGRATION_SCHEMA,
    MIGRATION_TABLE_V18,
    MigrationStore,
    add_retype_columns,
)
from cinderblock.actors.gateway.paging import BoundedScan, Key
from cinderblock.actors.gateway.qos_store import QOS_SCHEMA, QosStore
from cinderblock.actors.gateway.quota_journal import JOURNAL_SCHEMA, QuotaJournal
from cinderblock.actors.gateway.row_records import (
    Condition,
    Identified,
    RowRecords,
    SortedRead,
    count_sql,
    named_sql,
    newest_first_sql,
)
from cinderblock.actors.gateway.snapshot_store import (
    SNAPSHOT_SCHEMA,
    SnapshotRecord,
    SnapshotStore,
)
from cinderblock.actors.gateway.transfer_store import TRANSFER_SCHEMA, TransferStore
from cinderblock.actors.runtime.database import (
    CHECK_BEFORE_START_BYTES,
    CHECK_EVERY_S,
    Database,
    Migration,
    Reread,
    all_committed,
    open_read_only,
)
from cinderblock.actors.scheduler.extra_specs import match
from cinderblock.protocol.messages.health import StatusCounts
from cinderblock.protocol.messages.quota import volume_amounts
from cinderblock.protocol.messages.volumes import (
    TIME_COMPARISONS,
    Volume,
    VolumeSummary,
    VolumeType,
)
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import InvalidInput

log = logging.getLogger(__name__)

# The statuses a volume passes through while a node works on it: the reconciler looks for
# volumes left in one.
IN_TRANSITION = (VolumeStatus.CREATING, VolumeStatus.DELETING, VolumeStatus.EXTENDING,
                 VolumeStatus.REVERTING, VolumeStatus.UNMANAGING)
# The statuses of a volume attached or on its way to or from it: a start checks each such
# volume against its attachments.
ATTACHED = (VolumeStatus.RESERVED, VolumeStatus.ATTACHING, VolumeStatus.IN_USE,
            VolumeStatus.DETACHING)


def _status_in(statuses: tuple[VolumeStatus, ...]) -> str:
    return f"status IN ({', '.join(repr(s.value) for s in statuses)})"


# Both are found through one partial index that holds only the rows in one of them (two
# partial indexes cost a create ~15 µs more of SQLite's CPU than one). SQLite uses a
# partial index only for a query that spells out the index's own condition, so each query
# states it before its own. Within a status the index is in id order, as the
# attachments' (volume_id, status) index is: the start's check of every attached volume
# against its attachments walks both in step (at a million in use, 1.0 s; 5.1 s in
# (status, updated_at) order, each attachment looked for at random in a 2.5 GB file).
_UNSETTLED_SQL = _status_in(IN_TRANSITION + ATTACHED)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS volumes (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT, name TEXT, description TEXT,
    size INTEGER NOT NULL, status TEXT NOT NULL, volume_type_id TEXT, availability_zone TEXT,
    host TEXT, metadata TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    reason TEXT, request_id TEXT, request_fp TEXT
);
CREATE INDEX IF NOT EXISTS volumes_listing ON volumes (created_at, id);
CREATE INDEX IF NOT EXISTS volumes_project_listing ON volumes (project_id, created_at, id);
CREATE INDEX IF NOT EXISTS volumes_type ON volumes (volume_type_id);
CREATE INDEX IF NOT EXISTS volumes_made_by ON volumes (project_id, request_id, created_at);
CREATE INDEX IF NOT EXISTS volumes_unsettled ON volumes (status, id, updated_at)
    WHERE {_UNSETTLED_SQL};
CREATE INDEX IF NOT EXISTS volumes_status_listing ON volumes (status, created_at, id);
CREATE INDEX IF NOT EXISTS volumes_project_status_listing
    ON volumes (project_id, status, created_at, id);
CREATE TABLE IF NOT EXISTS volume_flags (
    id TEXT PRIMARY KEY, bootable INTEGER NOT NULL, readonly INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS volume_image_metadata (
    id TEXT PRIMARY KEY, metadata TEXT NOT NULL
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
    volume_id TEXT PRIMARY KEY, reservation_id TEXT NOT NULL, outcome TEXT NOT NULL,
    new_size INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending_reverts (
    volume_id TEXT PRIMARY KEY, revert_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volume_types (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT,
    extra_specs TEXT NOT NULL, is_public INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS volume_type_qos (
    type_id TEXT PRIMARY KEY, qos_specs_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS project_default_types (
    project_id TEXT PRIMARY KEY, type_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS types_own_quota_uncounted (project_id TEXT PRIMARY KEY);
"""


def _routes_dropped(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("the routes of settled creates were not dropped: %s", done.exception())


def add_extend_size_column(conn: sqlite3.Connection) -> None:
    """gateway.db 21 -> 22: ``pending_extends`` keeps the size each extend grows to."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(pending_extends)")}
    if "new_size" not in have:
        conn.execute("ALTER TABLE pending_extends ADD COLUMN new_size INTEGER NOT NULL "
                     "DEFAULT 0")


SCHEMA_VERSION = 23  # PRAGMA user_version of gateway.db (0: a file from before versions)
MIGRATIONS: dict[int, Migration] = {
    # 1 -> 2: an extend's quota reservation is kept with its volume, so that the
    # reconciler can roll back the reservation of an extend that was interrupted.
    1: "CREATE TABLE IF NOT EXISTS pending_extends (volume_id TEXT PRIMARY KEY, "
       "reservation_id TEXT NOT NULL, outcome TEXT NOT NULL);",
    # 2 -> 3: the quota journal; what an ended extend still owed moves into it.
    2: JOURNAL_SCHEMA + "INSERT INTO quota_journal (kind, op_id, reservation_id, project, "
       "deltas) SELECT outcome, reservation_id, reservation_id, '', '{}' FROM pending_extends "
       "WHERE outcome != ''; DELETE FROM pending_extends WHERE outcome != '';",
    # 3 -> 4: volumes are read from the file when asked for; pages go through the
    # listing indexes (made by the schema), which serve the project's too.
    # (made_by's index gains created_at: without it SQLite took the project's listing
    # index for made_by's query, a scan of the project's volumes of the last day)
    # The two partial indexes become one (volumes_unsettled).
    3: "DROP INDEX IF EXISTS volumes_project; DROP INDEX IF EXISTS volumes_request; "
       "DROP INDEX IF EXISTS volumes_in_transition;",
    # 4 -> 5: attachments are read when asked for (attachment_store.MIGRATION), and the
    # partial index gains the id (the schema makes it again).
    4: ATTACHMENT_MIGRATION + " DROP INDEX IF EXISTS volumes_unsettled;",
    # 5 -> 6: a page of volumes or snapshots filtered by status goes through listing
    # indexes that hold the status (the schema makes them): it had read the listing
    # until its page was full, every volume of the cloud for a status none has.
    5: "",
    # 6 -> 7: ``reverting`` joins the statuses in transition: the partial index that
    # holds them is made again (by the schema) with it.
    6: "DROP INDEX IF EXISTS volumes_unsettled;",
    # 7 -> 8: volume transfers (their table is the schema's); and a revert in progress
    # has an id, which the node's report names, so that a late second report of one
    # revert cannot end the next. A revert that was running when the file was version 7
    # gets the empty id, which its node's report (and the reconciler's resend) names too.
    7: "CREATE TABLE IF NOT EXISTS pending_reverts (volume_id TEXT PRIMARY KEY, "
       "revert_id TEXT NOT NULL); INSERT OR IGNORE INTO pending_reverts "
       "SELECT id, '' FROM volumes WHERE status = 'reverting';",
    # 8 -> 9: QoS specs, which a type has, and projects' own default types (their
    # tables are the schema's).
    8: "",
    # 9 -> 10: ``unmanaging`` joins the statuses in transition: the partial index that
    # holds them is made again (by the schema) with it.
    9: "DROP INDEX IF EXISTS volumes_unsettled;",
    # 10 -> 11: a snapshot's ``unmanaging`` joins the snapshots' statuses in transition:
    # their partial index is made again (by the schema) with it.
    10: "DROP INDEX IF EXISTS snapshots_in_transition;",
    # 11 -> 12: volumes' image metadata (Cinder's ``volume_image_metadata``) and
    # snapshots' copies of it (their tables are the schema's, a row only for a volume
    # or snapshot that has some).
    11: "",
    # 12 -> 13: volume types have quota of their own, which the volumes and snapshots
    # made before did not count: each project that has some is counted once, after
    # the start (``QuotaSyncer.count_types_own``), and crossed off this table.
    12: "CREATE TABLE IF NOT EXISTS types_own_quota_uncounted (project_id TEXT PRIMARY "
        "KEY); INSERT OR IGNORE INTO types_own_quota_uncounted SELECT project_id FROM "
        "volumes UNION SELECT project_id FROM snapshots;",
    # 13 -> 14: an attachment create's request id names its attachment for a day
    # (``attachment_requests``, the schema's table); the attachments made before have none.
    13: "",
    # 14 -> 15: backups (their table is the schema's).
    14: "",
    # 15 -> 16: what a backup's volume was besides its bytes (``backup_volume_meta``, the
    # schema's table); the backups made before have none.
    15: "",
    # 16 -> 17: incremental backups' parents (``backup_parents``, the schema's table);
    # every backup made before is whole.
    16: "",
    # 17 -> 18: volume migrations (``volume_migrations``, as the schema then made it).
    17: MIGRATION_TABLE_V18,
    # 18 -> 19: a migration a retype needs carries the retype's terms (three columns).
    18: add_retype_columns,
    # 19 -> 20: group types, groups and their volumes, group snapshots and theirs
    # (``group_types``, ``groups``, ``group_volumes``, ``group_snapshots``,
    # ``group_snapshot_members``: the schema's tables).
    19: "",
    # 20 -> 21: a group's and a group snapshot's create keep their request id (two
    # columns each).
    20: add_request_columns,
    # 21 -> 22: an extend in progress keeps the size it grows to, so that one cut short
    # is sent again (0: an extend from before, which the reconciler ends as it did).
    21: add_extend_size_column,
    # 22 -> 23: what a create's cast names that its row does not (``create_routes``,
    # the schema's table); the creates made before have none.
    22: "",
}
_COLUMNS = (
    "id, project_id, user_id, name, description, size, status, volume_type_id, "
    "availability_zone, host, metadata, created_at, updated_at, reason, request_id, request_fp"
)
INSERT_VOLUME = f"INSERT INTO volumes ({_COLUMNS}) VALUES ({', '.join('?' * 16)})"
# A record's row: every column but the request id and its fingerprint (made_by's), with
# its flags and its source.
SELECT_VOLUMES = (
    "SELECT v.id, v.project_id, v.user_id, v.name, v.description, v.size, v.status, "
    "v.volume_type_id, v.availability_zone, v.host, v.metadata, v.created_at, v.updated_at, "
    "v.reason, f.bootable, f.readonly, s.snapshot_id, s.source_volid, g.metadata "
    "FROM volumes v LEFT JOIN volume_flags f ON f.id = v.id "
    "LEFT JOIN volume_sources s ON s.volume_id = v.id "
    "LEFT JOIN volume_image_metadata g ON g.id = v.id"
)
SELECT_VOLUME = f"{SELECT_VOLUMES} WHERE v.id=?"
# INDEXED BY: with the status listing indexes there, SQLite split the condition into one
# search per status ("MULTI-INDEX OR") instead of this one walk of the partial index.
SELECT_UNLIKE_ATTACHMENTS = (
    f"SELECT id FROM volumes v INDEXED BY volumes_unsettled WHERE {_UNSETTLED_SQL} AND "
    f"{UNLIKE_ITS_ATTACHMENTS}")
# The volumes being created from a snapshot or a volume, and their sources: through the
# partial index, not every copy ever made (a cloud of volumes cloned from images).
SELECT_SOURCES_OF_CREATING = (
    "SELECT s.volume_id, s.snapshot_id, s.source_volid FROM volumes v "
    f"JOIN volume_sources s ON s.volume_id = v.id WHERE {_UNSETTLED_SQL} "
    f"AND v.status = '{VolumeStatus.CREATING.value}'")
RECENT = 65_536  # records kept in memory after their last read (at most ~30 MB)
R = TypeVar("R", bound=Identified)
UPDATE_STATUS = "UPDATE volumes SET status=?, host=?, reason=?, updated_at=? WHERE id=?"
UPDATE_SIZE = "UPDATE volumes SET size=?, status=?, reason=?, updated_at=? WHERE id=?"
UPDATE_OWNER = ("UPDATE volumes SET project_id=?, user_id=?, status=?, request_id=NULL, "
                "request_fp=NULL, updated_at=? WHERE id=?")
UPDATE_VOLUME_TYPE = "UPDATE volumes SET volume_type_id=?, updated_at=? WHERE id=?"
DELETE_VOLUME = "DELETE FROM volumes WHERE id=?"
UPDATE_DETAILS = (
    "UPDATE volumes SET name=?, description=?, metadata=?, updated_at=? WHERE id=?"
)
SAVE_FLAGS = "INSERT OR REPLACE INTO volume_flags VALUES (?, ?, ?)"
DELETE_FLAGS = "DELETE FROM volume_flags WHERE id=?"
SAVE_IMAGE_METADATA = "INSERT OR REPLACE INTO volume_image_metadata VALUES (?, ?)"
DELETE_IMAGE_METADATA = "DELETE FROM volume_image_metadata WHERE id=?"
# A volume create's route (``create_routes.py``) and its request id, as the file holds them
SELECT_CREATE_LEFT = ("SELECT v.request_id, r.route FROM volumes v "
                      "LEFT JOIN create_routes r ON r.id = v.id WHERE v.id=?")
# A type with the QoS specs associated with it (``volume_type_qos``), if any.
SELECT_TYPES = ("SELECT t.id, t.name, t.description, t.extra_specs, t.is_public, q.qos_specs_id "
                "FROM volume_types t LEFT JOIN volume_type_qos q ON q.type_id = t.id")
INSERT_TYPE = "INSERT INTO volume_types VALUES (?, ?, ?, ?, ?)"
UPDATE_TYPE = ("UPDATE volume_types SET name=?, description=?, extra_specs=?, is_public=? "
               "WHERE id=?")
SET_TYPE_QOS = "INSERT OR REPLACE INTO volume_type_qos VALUES (?, ?)"
SET_PROJECT_DEFAULT = "INSERT OR REPLACE INTO project_default_types VALUES (?, ?)"
UNSET_PROJECT_DEFAULT = "DELETE FROM project_default_types WHERE project_id=?"
SELECT_PROJECT_DEFAULTS = "SELECT project_id, type_id FROM project_default_types"
DELETE_TYPE_QOS = "DELETE FROM volume_type_qos WHERE type_id=?"
DELETE_TYPE = "DELETE FROM volume_types WHERE id=?"
DELETE_TYPE_ACCESS = "DELETE FROM volume_type_access WHERE type_id=?"
ADD_ACCESS = "INSERT OR IGNORE INTO volume_type_access VALUES (?, ?)"
REMOVE_ACCESS = "DELETE FROM volume_type_access WHERE type_id=? AND project_id=?"
INSERT_EXTEND = ("INSERT OR REPLACE INTO pending_extends (volume_id, reservation_id, outcome, "
                 "new_size) VALUES (?, ?, '', ?)")
DELETE_EXTEND = "DELETE FROM pending_extends WHERE volume_id=?"
INSERT_REVERT = "INSERT OR REPLACE INTO pending_reverts VALUES (?, ?)"
DELETE_REVERT = "DELETE FROM pending_reverts WHERE volume_id=?"
# A listing's keys, through the same indexes as its rows (covering): where a bounded scan
# of the listing ends.
SELECT_LISTING_KEYS = "SELECT v.id, v.created_at FROM volumes v"
# What a listing's count reads (its conditions may name a volume's flags).
COUNT_VOLUMES = "SELECT count(*) FROM volumes v LEFT JOIN volume_flags f ON f.id = v.id"
MADE_BY = ("SELECT id, request_fp FROM volumes WHERE project_id=? AND request_id=? "
           "AND created_at>? ORDER BY created_at DESC LIMIT 1")
IN_TRANSITION_SINCE = (f"SELECT id FROM volumes WHERE {_UNSETTLED_SQL} AND "
                       f"{_status_in(IN_TRANSITION)} AND updated_at<? "
                       "ORDER BY updated_at LIMIT ?")
NO_METADATA: dict[str, str] = {}  # shared by every volume without metadata; never changed
_STATUSES = {s.value: s for s in VolumeStatus}


def is_multiattach(vtype: VolumeType) -> bool:
    """Whether a type lets its volumes be attached more than once
    (``multiattach='<is> True'``)."""
    spec = vtype.extra_specs.get("multiattach")
    return spec is not None and match(True, spec)


@dataclass(slots=True, weakref_slot=True)
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
    # Cinder's volume_image_metadata: the properties of the image a volume holds, which
    # Nova reads to boot from it (copied to a clone of a bootable volume)
    image_metadata: dict[str, str] = field(default_factory=dict)
    # Cinder's migration_status: its latest migration's (``migration_store``), not a column
    migration_status: str | None = None
    group_id: str | None = None  # its group's (``group_store``'s members), not a column

    @property
    def volume_type_id(self) -> str:
        return self.volume_type.id

    @property
    def multiattach(self) -> bool:
        """Whether its type lets it be attached more than once."""
        return is_multiattach(self.volume_type)

    def view(self) -> Volume:
        return Volume(
            id=self.id, project_id=self.project_id, size=self.size, status=self.status,
            name=self.name, description=self.description, volume_type=self.volume_type.name,
            volume_type_id=self.volume_type.id, availability_zone=self.availability_zone,
            host=self.host, metadata=self.metadata, created_at=self.created_at,
            updated_at=self.updated_at or self.created_at, reason=self.reason,
            user_id=self.user_id, snapshot_id=self.snapshot_id, source_volid=self.source_volid,
            bootable=self.bootable, readonly=self.readonly, multiattach=self.multiattach,
            image_metadata=self.image_metadata, migration_status=self.migration_status,
            group_id=self.group_id,
        )

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.project_id, self.user_id, self.name, self.description, self.size,
            self.status.value, self.volume_type.id, self.availability_zone, self.host,
            json.dumps(self.metadata), self.created_at, self.updated_at or self.created_at,
            self.reason, self.request_id, self.request_fp,
        )


# A time is compared as a view shows it, to the microsecond (``datetime.fromtimestamp``'s
# rounding), so that ``gt`` the time a volume shows leaves that volume out and ``eq`` it
# finds it. A second since the epoch is a double whose steps are about 0.24 µs now, too
# coarse for a bound of the time shown plus half a microsecond: the times shown as a
# bound are found among the doubles themselves (``_shown_as``).
EPOCH = datetime.fromtimestamp(0, UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class VolumeMatch:
    """A volume listing's filters besides its status, name and metadata (Cinder's
    ``bootable``, ``availability_zone``, ``size``, ``migration_status`` (a volume's
    latest migration's, ``volume_migrations``), ``group_id`` (``group_volumes``), and
    from 3.60 ``created_at`` and
    ``updated_at`` comparisons, each a map of comparison to a time, in seconds since
    the epoch): the rows' conditions, and whether a record, as memory holds it, passes
    them. The creation times are a range of the listing indexes, which hold
    ``created_at`` in their order (``indexed``); no index serves the others
    (``matched``)."""

    bootable: bool | None = None
    availability_zone: str | None = None
    size: int | None = None
    created_at: dict[str, float] | None = None
    updated_at: dict[str, float] | None = None
    migration_status: str | None = None
    group_id: str | None = None
    # each comparison with the times it takes as its bound, [low, high), found once
    _created: tuple[TimeBound, ...] = field(init=False, repr=False, compare=False)
    _updated: tuple[TimeBound, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for field_name in ("created_at", "updated_at"):
            wanted = getattr(self, field_name) or {}
            unknown = sorted(set(wanted) - set(TIME_COMPARISONS))
            if unknown:
                raise InvalidInput(f"Invalid {field_name} comparison {', '.join(unknown)}: "
                                   f"one of {', '.join(TIME_COMPARISONS)}",
                                   {"field": field_name})
        object.__setattr__(self, "_created", _time_bounds("created_at", self.created_at))
        object.__setattr__(self, "_updated", _time_bounds("updated_at", self.updated_at))

    def indexed(self) -> tuple[Condition, ...]:
        """The creation time's conditions (a range of the listing's index)."""
        return _time_sql("v.created_at", self._created)

    def matched(self) -> tuple[Condition, ...]:
        """The conditions on ``SELECT_VOLUMES``'s rows no index serves (a volume without
        a flags row is not bootable)."""
        found: list[Condition] = []
        if self.bootable is not None:
            found.append(("ifnull(f.bootable, 0)=?", (int(self.bootable),)))
        if self.availability_zone is not None:
            found.append(("v.availability_zone=?", (self.availability_zone,)))
        if self.size is not None:
            found.append(("v.size=?", (self.size,)))
        if self.migration_status is not None:
            found.append(("v.id IN (SELECT volume_id FROM volume_migrations WHERE status=?)",
                          (self.migration_status,)))
        if self.group_id is not None:
            found.append(("v.id IN (SELECT volume_id FROM group_volumes WHERE group_id=?)",
                          (self.group_id,)))
        return (*found, *_time_sql("v.updated_at", self._updated))

    def passes(self, rec: VolumeRecord) -> bool:
        return ((self.bootable is None or rec.bootable is self.bootable)
                and (self.availability_zone is None
                     or rec.availability_zone == self.availability_zone)
                and (self.size is None or rec.size == self.size)
                and (self.migration_status is None
                     or rec.migration_status == self.migration_status)
                and (self.group_id is None or rec.group_id == self.group_id)
                and _times_pass(rec.created_at, self._created)
                and _times_pass(rec.updated_at or rec.created_at, self._updated))


TimeBound = tuple[str, float, float]  # a comparison, and the times its bound names


def _listing_conditions(status: str | None, name: str | None,
                        metadata: dict[str, str] | None, wanted: VolumeMatch | None
                        ) -> tuple[tuple[Condition, ...], tuple[Condition, ...]]:
    """A volume listing's conditions: those its indexes serve (the status, a range of
    creation times), and those matched in the rows (the name, metadata items, the rest
    of ``wanted``)."""
    wanted = wanted or VolumeMatch()
    indexed: tuple[Condition, ...] = () if status is None else (("v.status=?", (status,)),)
    return indexed + wanted.indexed(), named_sql("v.", name, metadata) + wanted.matched()


def _time_bounds(field_name: str, wanted: dict[str, float] | None
                 ) -> tuple[TimeBound, ...]:
    """Each comparison with the times its bound names; a bound no view could show (not
    a number, past the year 9999) is refused."""
    found: list[TimeBound] = []
    for op, bound in (wanted or {}).items():
        try:
            found.append((op, *_shown_as(bound)))
        except (ValueError, OverflowError, OSError):
            raise InvalidInput(f"Invalid {field_name} time {bound!r}: seconds since the "
                               "epoch, from the year 1 to 9999", {"field": field_name}
                               ) from None
    return tuple(found)


def _time_sql(column: str, bounds: tuple[TimeBound, ...]) -> tuple[Condition, ...]:
    """SQL of ``_times_pass``, each comparison a range of ``column``."""
    found: list[Condition] = []
    for op, low, high in bounds:
        found.append({
            "gt": (f"{column}>=?", (high,)), "gte": (f"{column}>=?", (low,)),
            "lt": (f"{column}<?", (low,)), "lte": (f"{column}<?", (high,)),
            "eq": (f"{column}>=? AND {column}<?", (low, high)),
            "neq": (f"({column}<? OR {column}>=?)", (low, high)),
        }[op])
    return tuple(found)


def _times_pass(when: float, bounds: tuple[TimeBound, ...]) -> bool:
    """Whether ``when`` passes each comparison with its bound, as shown to the
    microsecond."""
    for op, low, high in bounds:
        passed = {"gt": when >= high, "gte": when >= low, "lt": when < low,
                  "lte": when < high, "eq": low <= when < high,
                  "neq": not low <= when < high}[op]
        if not passed:
            return False
    return True


def _shown_as(bound: float) -> tuple[float, float]:
    """The times a view shows as it shows ``bound``: [low, high). (``bound * 1e6``
    is itself a double of 0.25 µs steps: the view's rounding of ``bound`` is used.)"""
    shown = _shown_microseconds(bound)
    return _first_shown_as(shown), _first_shown_as(shown + 1)


def _first_shown_as(microseconds: int) -> float:
    """The least time a view shows as ``microseconds`` (since the epoch) or later: by
    halving, between a time shown earlier and one shown as it or later, down to two
    neighbouring doubles (the view's rounding is monotonic; a double's steps are 5e-324
    near the epoch and over a microsecond past the year 2255, so no fixed step serves)."""
    low = high = microseconds / 1_000_000
    step = 1e-6
    while _shown_microseconds(low) >= microseconds:
        low, step = low - step, step * 2
    step = 1e-6
    while _shown_microseconds(high) < microseconds:
        high, step = high + step, step * 2
    while True:
        middle = (low + high) / 2
        if middle in (low, high):
            return high
        if _shown_microseconds(middle) >= microseconds:
            high = middle
        else:
            low = middle


def _shown_microseconds(when: float) -> int:
    """The microsecond a view shows for ``when`` (``views.iso``: fromtimestamp's)."""
    return (datetime.fromtimestamp(when, UTC) - EPOCH) // ONE_MICROSECOND


class Volumes(RowRecords[VolumeRecord]):
    """Every volume of the gateway's file; in memory, the ones in use (``row_records``:
    read when asked for, held while in use)."""

    def __init__(self, read_only: Callable[[], sqlite3.Connection],
                 type_of: Callable[[str | None], VolumeType],
                 migration_of: Callable[[str], str | None],
                 group_of: Callable[[str], str | None]) -> None:
        super().__init__(read_only, SELECT_VOLUME, "volumes", RECENT)
        self._type_of = type_of
        self._migration_of = migration_of
        self._group_of = group_of
        # types being written to a volume (a retype), counted as in use until committed
        self.retyping: Counter[str] = Counter()

    def from_row(self, row: Any) -> VolumeRecord:
        rec = _volume_from_row(row, self._type_of)
        rec.migration_status = self._migration_of(rec.id)
        rec.group_id = self._group_of(rec.id)
        return rec

    def reset(self, held: VolumeRecord, read: VolumeRecord) -> None:
        _reset(held, read)

    def listing(self, project: str | None, below: Key | None, status: str | None = None,
                name: str | None = None, metadata: dict[str, str] | None = None,
                oldest_first: bool = False, wanted: VolumeMatch | None = None,
                ) -> Iterator[VolumeRecord] | BoundedScan[VolumeRecord]:
        """``project``'s volumes (every project's for None) in listing order, newest
        first, below ``below`` (a marker's key) when given, only those whose row has
        ``status``, ``name``, the ``metadata`` items and what ``wanted`` asks for
        (bootable, zone, size, times) when given: rows through an index on (project_id,
        created_at, id) or (created_at, id), or with a status (project_id, status,
        created_at, id) or (status, created_at, id) (a range of creation times too),
        each as memory holds it.
        ``oldest_first``: the other way, above ``below`` (Horizon's page back).

        A name, metadata items and the rest of ``wanted`` have no index: SQLite matches them
        (``named_sql``: the first few items; the caller matches them all) in the rows,
        and looks at no more than ``SCAN_ROWS`` of them (``listed_rows``, a
        ``BoundedScan``: a page not full by then ends there, and the next reads on), so
        that a page costs the same however few volumes match (a page of an item no
        volume had took 5.7 s at a million volumes, on the gateway's loop).

        The row decides what is read and memory what is shown: a volume whose row is not
        committed yet is not listed, as it is not told yet, nor is one whose change of
        status, name or metadata is not committed yet under its new one (a caller
        filters the records too, as memory holds them: nor under its old)."""
        indexed, matched = _listing_conditions(status, name, metadata, wanted)
        listed = partial(newest_first_sql, project=project, below=below, alias="v.",
                         oldest_first=oldest_first)
        return self.listed_rows(listed, SELECT_VOLUMES, SELECT_LISTING_KEYS, indexed,
                                matched)

    def sorted_listing(self, project: str | None, sort: str, after: VolumeRecord | None,
                       status: str | None, name: str | None,
                       metadata: dict[str, str] | None, rows: int,
                       wanted: VolumeMatch | None = None) -> SortedRead:
        """``RowRecords.sorted_sql`` of the volumes, with the same filters as
        ``listing``."""
        indexed, matched = _listing_conditions(status, name, metadata, wanted)
        return self.sorted_sql(SELECT_VOLUMES, "v.", project, sort, after,
                               indexed + matched, rows,
                               newest_first_sql(SELECT_LISTING_KEYS, project, None, "v.",
                                                more=indexed))

    def of_type(self, type_id: str) -> int:
        """How many volumes are of the type, new ones included."""
        (rows,) = self._read_only().execute(
            "SELECT count(*) FROM volumes WHERE volume_type_id=?", (type_id,)).fetchone()
        new = sum(1 for rec in self.new.values() if rec.volume_type.id == type_id)
        gone = sum(1 for rec in self.removing.values() if rec.volume_type.id == type_id)
        return int(rows) + new - gone + self.retyping[type_id]

    def unlike_their_attachments(self) -> list[str]:
        """The volumes whose row says they are attached, or on the way (``ATTACHED``),
        and whose attachments' rows say otherwise: one query (a scan of the partial
        index, and each volume's attachments through theirs), no record read (a volume
        in use is most volumes, in a cloud). Rows only: a caller judges each record
        as memory has it."""
        return [vid for (vid,) in self._read_only().execute(SELECT_UNLIKE_ATTACHMENTS)]


class GatewayStore:
    def __init__(self, path: Path, synchronous: str,
                 check_before_start_bytes: int = CHECK_BEFORE_START_BYTES,
                 check_every_s: float = CHECK_EVERY_S) -> None:
        schema = (SCHEMA + SNAPSHOT_SCHEMA + ATTACHMENT_SCHEMA + JOURNAL_SCHEMA
                  + DELETE_REQUESTS_SCHEMA + TRANSFER_SCHEMA + QOS_SCHEMA + BACKUP_SCHEMA
                  + MIGRATION_SCHEMA + GROUP_TYPE_SCHEMA + GROUP_SCHEMA
                  + GROUP_SNAPSHOT_SCHEMA + CREATE_ROUTES_SCHEMA)
        self.db = Database(path, schema, synchronous, version=SCHEMA_VERSION,
                           migrations=MIGRATIONS, reread=self.reread,
                           check_before_start_bytes=check_before_start_bytes,
                           check_every_s=check_every_s)
        self._other_rows: tuple[Reread, ...] = ()  # the other owners of rows in this file
        self.journal = QuotaJournal(self.db)  # what the gateway owes the quota actor
        # volume id -> the quota reservation of its extend in progress (pending_extends)
        self.extends: dict[str, str] = {}
        # volume id -> the size (GiB) its extend in progress grows it to (0: not known)
        self.extend_sizes: dict[str, int] = {}
        # volume id -> the id of its revert in progress (pending_reverts)
        self.reverts: dict[str, str] = {}
        self.group_snapshots = GroupSnapshotStore(self.db)  # groups' snapshots at one instant
        self.routes = CreateRoutes(self.db)  # what a create's cast names beyond its row
        self.snapshots = SnapshotStore(self.db, self.journal, self.read_only,
                                       self.group_snapshots, self.routes)
        self.backups = BackupStore(self.db, self.journal, self.read_only)
        self.transfers = TransferStore(self.db)  # the volumes offered to another project
        self.qos = QosStore(self.db)  # the QoS specs volume types may name
        self.migrations = MigrationStore(self.db)  # each volume's latest migration
        self.group_types = GroupTypeStore(self.db)  # the types groups are made with
        self.groups = GroupStore(self.db)  # generic volume groups and their volumes
        # told the group of a volume whose row went (a group being deleted may be done)
        self.on_group_member_gone: Callable[[str], None] | None = None
        # the gateway's types by id (load_volumes; changed in place as types come and go)
        self.types: dict[str, VolumeType] = {}
        self.volumes = Volumes(self.read_only, self._type_of, self.migrations.status_of,
                               self.groups.group_of_volume)
        # (project, request id) -> a volume whose row is not committed yet
        self._unwritten: dict[tuple[str, str], VolumeRecord] = {}
        self._reader: sqlite3.Connection | None = None  # made_by's, on the loop
        # One change at a time per volume: the volumes an API flow is changing now
        # (id -> what it is doing), taken and released by ``lifecycle_checks``.
        self.claims: dict[str, str] = {}

    async def open(self) -> list[VolumeType]:
        await self.db.open()
        return [type_from_row(r) for r in await self.db.fetchall(SELECT_TYPES)]

    def reread_with(self, *others: Reread) -> None:
        """The others that keep rows in this file (types, attachments, user messages):
        after a failed write their rows are read back too, in this order, before the
        volumes'."""
        self._other_rows = others

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread, after a failed write: every table of the file; what
        it returns brings memory back to them (see the module text)."""
        restores = [other(conn) for other in self._other_rows]
        restores.append(self.read_volumes(conn))
        restores.append(self.volumes.read_back)

        def restore() -> None:
            for each in restores:
                each()

        return restore

    async def load_volumes(self, types: dict[str, VolumeType]) -> None:
        """What a start holds of the volumes and the snapshots (not the records
        themselves: each is read when asked for), and what the quota journal still owes."""
        self.types = types
        install = await self.db.run(self.read_volumes)
        install()
        await self.journal.load()
        # only a create still under way needs its route (the previous process died
        # before the write that would have dropped the others' committed): the rest go
        self.db.write(DROP_SETTLED_ROUTES).add_done_callback(_routes_dropped)

    def create_left(self, volume_id: str) -> tuple[str, str | None] | None:
        """The request id of the create of a volume and its route's row (None: it named
        no route), as the file holds them; None if the volume has no row."""
        row = self.read_only().execute(SELECT_CREATE_LEFT, (volume_id,)).fetchone()
        return None if row is None else (row[0] or "", row[1])

    def read_volumes(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: the pending extends and reverts, the sources of the
        volumes being created (what locks a source: ``SnapshotStore.copying_from``; a copy
        made earlier holds none); return what puts them in memory (on the loop)."""
        rows = conn.execute(
            "SELECT volume_id, reservation_id, new_size FROM pending_extends").fetchall()
        extends = {vid: (rid, new_size) for vid, rid, new_size in rows}
        rows = conn.execute("SELECT volume_id, revert_id FROM pending_reverts").fetchall()
        reverts = {vid: rid for vid, rid in rows}
        sources = conn.execute(SELECT_SOURCES_OF_CREATING).fetchall()
        restoring = conn.execute(SELECT_RESTORING).fetchall()
        routes = [object_id for (object_id,) in conn.execute(SELECT_ROUTES_LEFT)]
        return partial(self._install, extends, reverts, sources, restoring, routes)

    def _install(self, extends: dict[str, tuple[str, int]], reverts: dict[str, str],
                 sources: list[tuple[str, str | None, str | None]],
                 restoring: list[tuple[str, str]], routes: list[str]) -> None:
        self._unwritten = {}
        self.routes.written.update(routes)
        self.extends = {vid: rid for vid, (rid, _) in extends.items()}
        self.extend_sizes = {vid: size for vid, (_, size) in extends.items() if size}
        self.reverts = reverts
        self.snapshots.install(sources)
        self.backups.install(restoring)

    def _type_of(self, type_id: str | None) -> VolumeType:
        return self.types.get(type_id or "") or VolumeType(type_id or "", "(deleted type)")

    async def sorted_page(self, records: RowRecords[R], read: SortedRead, size: int,
                          asker: str) -> BoundedScan[R]:
        """A page of ``size`` in another order than by creation: ``read``'s rows
        (``RowRecords.sorted_sql``, one more than ``size``), each as memory holds it; a
        page that memory's filter leaves short ends at the last row read. SQLite reads
        every row of the listing to order them: a small listing's page (under a
        millisecond) is read here, on the loop, as any page is; a larger one aside, one
        page at a time, the pages waiting served by turns of the project asking
        (``Database.read_aside``), so a small project's page never waits behind a large
        one's."""
        if read.small:
            rows = self.read_only().execute(read.sql, read.params).fetchall()
        else:
            rows = await self.db.read_aside(read.sql, read.params, whose=asker)
        return BoundedScan(list(records.records_of(rows)),
                           rows[-1][0] if len(rows) > size else None)

    async def count_volumes(self, project: str | None, status: str | None, name: str | None,
                            metadata: dict[str, str] | None, wanted: VolumeMatch,
                            asker: str) -> int:
        """How many of ``project``'s volumes (every project's for None) a listing with
        these filters lists in all (Cinder's ``with_count``, 3.45): the committed rows,
        counted aside (``Database.read_aside``), the loop not held however many there
        are (``row_records.count_sql``)."""
        indexed: tuple[Condition, ...] = () if status is None else (("v.status=?", (status,)),)
        sql, params = count_sql(COUNT_VOLUMES, "v.", project,
                                indexed + wanted.indexed() + wanted.matched(), name, metadata,
                                "volumes")
        ((count,),) = await self.db.read_aside(sql, params, whose=asker)
        return int(count)

    async def volume_summary(self, project: str | None, asker: str) -> VolumeSummary:
        """Cinder's volume summary of ``project``'s volumes (None: every project's): how
        many, how many GiB, each metadata key with its values. Over the committed rows,
        as pages list them, and read aside (``Database.read_aside``): no record is made
        and the loop is not held, however many volumes there are (SQLite sums through
        the project's listing index, and reads the metadata of rows that have some)."""
        where = "WHERE project_id=?" if project is not None else ""
        params = (project,) if project is not None else ()
        ((count, size),) = await self.db.read_aside(
            f"SELECT count(*), total(size) FROM volumes {where}", params, whose=asker)
        pairs = await self.db.read_aside(
            "SELECT DISTINCT j.key, j.value FROM volumes, json_each(volumes.metadata) j "
            f"{where} {'AND' if where else 'WHERE'} volumes.metadata != '{{}}' "
            "ORDER BY 1, 2", params, whose=asker)
        metadata: dict[str, list[str]] = {}
        for key, value in pairs:
            metadata.setdefault(key, []).append(str(value))
        return VolumeSummary(count, int(size), {k: tuple(v) for k, v in metadata.items()})

    async def status_counts(self, asker: str) -> StatusCounts:
        """Every project's volumes, snapshots, attachments, backups and groups by status:
        over the committed rows, read aside (``Database.read_aside``), so the loop is not
        held however many there are (volumes, snapshots and backups count through their
        status indexes; groups are few)."""
        counts = []
        for table in ("volumes", "snapshots", "attachments", "backups", "groups"):
            rows = await self.db.read_aside(
                f"SELECT status, count(*) FROM {table} GROUP BY status", whose=asker)
            counts.append({str(status): int(n) for status, n in rows})
        volumes, snapshots, attachments, backups, groups = counts
        return StatusCounts(volumes, snapshots, attachments, backups, groups)

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
        in WAL mode it never waits for the writer): the volumes' reads, and
        ``made_by``'s."""
        if self._reader is None:
            self._reader = open_read_only(self.db.path)
        return self._reader

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await self.db.close()

    def _remember(self, rec: VolumeRecord) -> None:
        _share_strings(rec)
        self.volumes.added(rec)
        if rec.request_id:
            self._unwritten[(rec.project_id, rec.request_id)] = rec

    async def add_volume(self, rec: VolumeRecord, reservation_id: str | None = None,
                         route: str | None = None) -> None:
        """The new record and, in the same transaction, the commit of its reservation
        it owes the quota actor (``quota_journal``) and its create's route, if it has
        one (``lost_casts.CreateRoute.to_row``)."""
        self._remember(rec)
        self.snapshots.remember_source(rec)
        writes = [(INSERT_VOLUME, rec.row()), *self.snapshots.source_writes(rec)]
        if rec.bootable or rec.readonly:  # a managed volume or a clone may be bootable
            writes.append((SAVE_FLAGS, (rec.id, int(rec.bootable), int(rec.readonly))))
        if rec.image_metadata:  # a clone of a volume that has some
            writes.append((SAVE_IMAGE_METADATA, (rec.id, json.dumps(rec.image_metadata))))
        queued = [self.db.write(sql, params) for sql, params in writes]
        if route is not None:  # hints, a backup, a group or a manage
            queued.append(self.routes.queue_save(rec.id, route))
        if rec.group_id is not None:  # made in a group: a member from its first row
            queued.append(self.groups.queue_join(rec.group_id, rec.id))
        if reservation_id is not None:
            self.journal.owe_commit(reservation_id, rec.project_id)
        try:
            for write in queued:
                await write
        except Exception:
            self.snapshots.forget_source(rec)
            self.groups.forget_member(rec.id)
            self._forget(rec)
            raise
        self.volumes.written(rec)
        if self._unwritten.get((rec.project_id, rec.request_id)) is rec:
            del self._unwritten[(rec.project_id, rec.request_id)]
        rec.request_id = rec.request_fp = ""  # the row has them: made_by reads it there

    def _forget(self, rec: VolumeRecord) -> None:
        self.volumes.forget(rec)
        if rec.request_id and self._unwritten.get((rec.project_id, rec.request_id)) is rec:
            del self._unwritten[(rec.project_id, rec.request_id)]

    async def remove_volume(self, rec: VolumeRecord) -> None:
        """The row goes and, in the same transaction, the release of its quota is owed
        (``quota_journal``; op id ``release:volume:<id>``: given back once), and an
        offer of it that still stands is dropped."""
        self._forget(rec)
        writes = [(DELETE_VOLUME, (rec.id,)), (DELETE_FLAGS, (rec.id,)),
                  (DELETE_IMAGE_METADATA, (rec.id,)),
                  *self.snapshots.source_removal_writes(rec)]
        queued = [self.db.write(sql, params) for sql, params in writes]
        self.volumes.removed(rec, queued[-1])  # not found, unless the batch fails
        self.routes.queue_drop(rec.id)  # one removed while creating
        offer = self.transfers.of_volume(rec.id)  # one an admin's reset left standing
        if offer is not None:
            queued.append(self.transfers.queue_remove(offer))
        migration = self.migrations.queue_remove(rec.id)  # its last one's outcome
        if migration is not None:
            queued.append(migration)
        left = self.groups.queue_leave(rec.id)  # a group's member no more
        if left is not None:
            queued.append(left[0])
        self.journal.owe_release(f"release:volume:{rec.id}", rec.project_id,
                                 volume_amounts(rec.size, rec.volume_type.id))
        for write in queued:
            await write
        if left is not None and self.on_group_member_gone is not None:
            self.on_group_member_gone(left[1])

    def _write(self, rec: VolumeRecord, sql: str, params: tuple[Any, ...]) -> asyncio.Future[None]:
        """A write of ``rec``'s row; memory keeps the record until it is settled."""
        written = self.db.write(sql, params)
        self.volumes.writing(rec, written)
        return written

    def queue_status(self, rec: VolumeRecord) -> asyncio.Future[None]:
        """Queue the status row; the future resolves when it is committed."""
        rec.updated_at = time.time()
        if rec.host is not None:
            rec.host = sys.intern(rec.host)  # a node's name, shared by its volumes
        if rec.status is not VolumeStatus.CREATING:
            self.routes.queue_drop(rec.id)
        return self._write(
            rec, UPDATE_STATUS, (rec.status.value, rec.host, rec.reason, rec.updated_at, rec.id)
        )

    async def save_status(self, rec: VolumeRecord) -> None:
        await self.queue_status(rec)

    def queue_owner(self, rec: VolumeRecord) -> asyncio.Future[None]:
        """Queue the volume's project, user and status (its transfer accepted); its
        request id is forgotten: it named a request of the project it left."""
        rec.updated_at = time.time()
        rec.request_id = rec.request_fp = ""
        return self._write(rec, UPDATE_OWNER, (rec.project_id, rec.user_id, rec.status.value,
                                               rec.updated_at, rec.id))

    async def save_size(self, rec: VolumeRecord) -> None:
        await self.queue_size(rec)

    def queue_size(self, rec: VolumeRecord) -> asyncio.Future[None]:
        rec.updated_at = time.time()
        return self._write(
            rec, UPDATE_SIZE, (rec.size, rec.status.value, rec.reason, rec.updated_at, rec.id)
        )

    async def save_details(self, rec: VolumeRecord) -> None:
        """Name, description, metadata, the bootable and read-only flags and the image
        metadata, together."""
        await self.queue_details(rec)

    def queue_details(self, rec: VolumeRecord) -> asyncio.Future[None]:
        """``save_details``' rows, queued with what else this loop turn queues (one
        transaction); the future resolves when they are committed."""
        rec.updated_at = time.time()
        self._write(rec, UPDATE_DETAILS, (rec.name, rec.description, json.dumps(rec.metadata),
                                          rec.updated_at, rec.id))
        self._write(rec, SAVE_FLAGS, (rec.id, int(rec.bootable), int(rec.readonly)))
        return self._write(rec, *image_metadata_write(rec))  # one batch: one future

    async def types_own_quota_uncounted(self) -> list[str]:
        """The projects whose volume types' own quota was never counted (their volumes
        and snapshots are from before it), a hundred at a time."""
        rows = await self.db.fetchall(
            "SELECT project_id FROM types_own_quota_uncounted ORDER BY project_id LIMIT 100")
        return [project for (project,) in rows]

    async def types_own_quota_counted(self, project: str) -> None:
        await self.db.write("DELETE FROM types_own_quota_uncounted WHERE project_id=?",
                            (project,))

    async def save_retype(self, rec: VolumeRecord, snapshots: Sequence[SnapshotRecord],
                          reservation_id: str, released: Mapping[str, int]) -> None:
        """The volume's type and its ``snapshots``' (a retype) and, in the same
        transaction, the commit of the new type's reservation and the release of
        ``released`` (the old type's quota) owed. The type counts as in use
        (``of_type``) from now, before its row is committed, so that it is not deleted
        or changed under it."""
        type_id = rec.volume_type.id
        self.volumes.retyping[type_id] += 1
        try:
            await all_committed(*self.queue_retype(rec, snapshots, reservation_id, released))
        finally:
            self.volumes.retyping[type_id] -= 1
            if not self.volumes.retyping[type_id]:
                del self.volumes.retyping[type_id]

    def queue_retype(self, rec: VolumeRecord, snapshots: Sequence[SnapshotRecord],
                     reservation_id: str, released: Mapping[str, int]
                     ) -> list[asyncio.Future[None]]:
        """``save_retype``'s writes, queued (in the transaction of what is queued with
        them: a retype's migration moves the volume in the same one)."""
        rec.updated_at = time.time()
        queued = [self._write(rec, UPDATE_VOLUME_TYPE, (rec.volume_type.id, rec.updated_at,
                                                        rec.id)),
                  *(self.snapshots.queue_type(s) for s in snapshots),
                  self.journal.owe_commit(reservation_id, rec.project_id)]
        if released:
            queued.append(self.journal.owe_release(f"release:retype:{reservation_id}",
                                                   rec.project_id, released))
        return queued

    def type_users(self, type_id: str) -> int:
        """How many volumes are of the type, or take it at the end of a retype's
        migration: while any does, the type is not deleted nor its extra specs changed."""
        return (self.volumes.of_type(type_id) + self.migrations.retyping_to(type_id)
                + self.groups.of_volume_type(type_id))

    async def start_extend(self, rec: VolumeRecord, reservation_id: str, new_size: int) -> None:
        """The volume's status (``extending``), its reservation and the size it grows to,
        in one transaction: the reservation is referenced while the extend runs, so no
        restart abandons it, and an extend cut short can be sent again."""
        self.extends[rec.id] = reservation_id
        self.extend_sizes[rec.id] = new_size
        kept = self.db.write(INSERT_EXTEND, (rec.id, reservation_id, new_size))
        status = self.queue_status(rec)
        await kept
        await status

    async def end_extend(self, rec: VolumeRecord | None, volume_id: str, outcome: str) -> None:
        """The extend's end: the record's size and status (if it is still there) and,
        in the same transaction, the ``commit`` or ``rollback`` of its reservation owed."""
        reservation_id = self.extends.pop(volume_id, None)
        self.extend_sizes.pop(volume_id, None)
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

    def queue_revert(self, volume_id: str, revert_id: str | None) -> asyncio.Future[None]:
        """Keep ``revert_id`` as the volume's revert in progress (None: it has ended),
        in the transaction of the statuses queued with it."""
        if revert_id is None:
            self.reverts.pop(volume_id, None)
            return self.db.write(DELETE_REVERT, (volume_id,))
        self.reverts[volume_id] = revert_id
        return self.db.write(INSERT_REVERT, (volume_id, revert_id))

    async def add_type(self, vtype: VolumeType) -> None:
        await self.db.write(
            INSERT_TYPE,
            (vtype.id, vtype.name, vtype.description, json.dumps(vtype.extra_specs),
             int(vtype.is_public)),
        )

    async def save_type(self, vtype: VolumeType) -> None:
        """Its name, description, extra specs and visibility (its QoS: ``queue_type_qos``)."""
        await self.db.write(UPDATE_TYPE, (vtype.name, vtype.description,
                                          json.dumps(vtype.extra_specs), int(vtype.is_public),
                                          vtype.id))

    def queue_type_qos(self, vtype: VolumeType) -> asyncio.Future[None]:
        """The QoS specs ``vtype`` names (or none), in the transaction of what is queued
        with it."""
        if vtype.qos_specs_id is None:
            return self.db.write(DELETE_TYPE_QOS, (vtype.id,))
        return self.db.write(SET_TYPE_QOS, (vtype.id, vtype.qos_specs_id))

    async def remove_type(self, vtype: VolumeType) -> None:
        gone = self.db.write(DELETE_TYPE, (vtype.id,))
        access = self.db.write(DELETE_TYPE_ACCESS, (vtype.id,))
        qos = self.db.write(DELETE_TYPE_QOS, (vtype.id,))
        await gone
        await access
        await qos

    async def type_access(self) -> list[tuple[str, str]]:
        rows = await self.db.fetchall("SELECT type_id, project_id FROM volume_type_access")
        return [(str(t), str(p)) for t, p in rows]

    async def save_access(self, type_id: str, project: str, granted: bool) -> None:
        await self.db.write(ADD_ACCESS if granted else REMOVE_ACCESS, (type_id, project))

    async def project_defaults(self) -> dict[str, str]:
        """Each project's own default type id (``project_default_types``)."""
        return {str(p): str(t) for p, t in await self.db.fetchall(SELECT_PROJECT_DEFAULTS)}

    async def save_project_default(self, project: str, type_id: str | None) -> None:
        if type_id is None:
            await self.db.write(UNSET_PROJECT_DEFAULT, (project,))
        else:
            await self.db.write(SET_PROJECT_DEFAULT, (project, type_id))


def type_from_row(row: Any) -> VolumeType:
    """A type from a row of ``SELECT_TYPES``."""
    tid, name, description, specs, public, qos_id = row
    return VolumeType(tid, name, description, json.loads(specs), bool(public), qos_id)


def _volume_from_row(row: Any, type_of: Callable[[str | None], VolumeType]) -> VolumeRecord:
    """A record from a row of ``SELECT_VOLUMES``, the strings volumes repeat interned
    (positional, and no JSON parsed for a volume without metadata: pages build 21)."""
    (vid, project, user, name, desc, size, status, type_id, zone, host, metadata,
     created, updated, reason, bootable, readonly, snapshot_id, source_volid, image) = row
    return VolumeRecord(
        vid, sys.intern(project), sys.intern(user or ""), size, _STATUSES[status],
        type_of(type_id), sys.intern(zone), name, desc,
        NO_METADATA if metadata == "{}" else json.loads(metadata),
        None if host is None else sys.intern(host), reason, created, updated,
        snapshot_id=snapshot_id, source_volid=source_volid, bootable=bool(bootable),
        readonly=bool(readonly),
        image_metadata=NO_METADATA if image is None else json.loads(image),
    )


# what a volume's row (with its flags and source) holds; the rest lives in memory only
_ROW_FIELDS = tuple(name for name in VolumeRecord.__slots__
                    if name not in ("request_id", "request_fp", "__weakref__"))


def image_metadata_write(rec: VolumeRecord) -> tuple[str, tuple[Any, ...]]:
    """The statement that makes the volume's image metadata row what memory holds: a row
    only for a volume that has some."""
    if rec.image_metadata:
        return SAVE_IMAGE_METADATA, (rec.id, json.dumps(rec.image_metadata))
    return DELETE_IMAGE_METADATA, (rec.id,)


def _reset(held: VolumeRecord, read: VolumeRecord) -> None:
    """A record in memory made what its row says again (in place: flows hold it)."""
    for name in _ROW_FIELDS:
        setattr(held, name, getattr(read, name))
    held.request_id = held.request_fp = ""  # the row has them (see made_by)


def _share_strings(rec: VolumeRecord) -> None:
    """Intern what many volumes repeat; share the empty metadata."""
    rec.project_id = sys.intern(rec.project_id)
    rec.user_id = sys.intern(rec.user_id)
    rec.availability_zone = sys.intern(rec.availability_zone)
    if rec.host is not None:
        rec.host = sys.intern(rec.host)
    if not rec.metadata:
        rec.metadata = NO_METADATA
    if not rec.image_metadata:
        rec.image_metadata = NO_METADATA
