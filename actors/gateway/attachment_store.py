"""The gateway's attachment records: in its own SQLite file, and in memory the ones in use.

The table lives in the gateway's file (``GatewayStore.db``, one writer: the
gateway) and all its SQL is here. As for volumes, every change is written
through the group-commit ``Database`` before anyone is told about it. A
deleted attachment's row goes (Cinder keeps a soft-deleted one; nothing here
reads it back).

Records are read when asked for, as volumes are (``volume_store.Volumes``): by id,
by volume, a page at a time in listing order, and those attaching or detaching
through a partial index. In a cloud most volumes are in use, each with an attachment
of 3 to 5 KB in memory (its connector and its connection info), so a start that loaded
every row took about 20 µs and those kilobytes an attachment.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cinderblock.actors.gateway.guards import REQUEST_ID_TTL_S, made_by_row
from cinderblock.actors.gateway.paging import FIXED_BYTES, Key
from cinderblock.actors.gateway.row_records import RowRecords, newest_first_sql
from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.states import (
    EXPORTED,
    AttachmentStatus,
    VolumeStatus,
    check_attachment_move,
)

IN_TRANSITION = (AttachmentStatus.ATTACHING, AttachmentStatus.DETACHING)
_IN_TRANSITION_SQL = (
    f"status IN ({', '.join(repr(s.value) for s in IN_TRANSITION)})")
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, project_id TEXT NOT NULL, instance_id TEXT,
    status TEXT NOT NULL, attach_mode TEXT, host TEXT, connector TEXT NOT NULL,
    connection_info TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    attached_at REAL
);
CREATE INDEX IF NOT EXISTS attachments_volume ON attachments (volume_id, status);
CREATE INDEX IF NOT EXISTS attachments_listing ON attachments (created_at, id);
CREATE INDEX IF NOT EXISTS attachments_project_listing
    ON attachments (project_id, created_at, id);
CREATE INDEX IF NOT EXISTS attachments_in_transition ON attachments (updated_at)
    WHERE {_IN_TRANSITION_SQL};
CREATE TABLE IF NOT EXISTS attachment_requests (
    project_id TEXT NOT NULL, request_id TEXT NOT NULL, request_fp TEXT NOT NULL,
    attachment_id TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (project_id, request_id)
);
CREATE INDEX IF NOT EXISTS attachment_requests_age ON attachment_requests (created_at);
"""
# 4 -> 5 (gateway.db): attachments are read when asked for. Their volume index gains
# the status (a start judges every volume in use by its attachments' statuses alone),
# and the schema adds the listing and in-transition indexes.
MIGRATION = "DROP INDEX IF EXISTS attachments_volume;"
_COLUMNS = (
    "id, volume_id, project_id, instance_id, status, attach_mode, host, connector, "
    "connection_info, created_at, updated_at, attached_at"
)
INSERT = f"INSERT INTO attachments ({_COLUMNS}) VALUES ({', '.join('?' * 12)})"
UPDATE = (
    "UPDATE attachments SET status=?, attach_mode=?, host=?, connector=?, connection_info=?, "
    "updated_at=?, attached_at=? WHERE id=?"
)
DELETE = "DELETE FROM attachments WHERE id=?"
# An attachment create's request id names its attachment for a day (REQUEST_ID_TTL_S), as
# a volume create's names its volume: a retry is answered the attachment the first made.
MADE_BY = ("SELECT attachment_id, request_fp FROM attachment_requests WHERE project_id=? "
           "AND request_id=? AND created_at>?")
REMEMBER_REQUEST = ("INSERT OR REPLACE INTO attachment_requests (project_id, request_id, "
                    "request_fp, attachment_id, created_at) VALUES (?, ?, ?, ?, ?)")
FORGET_REQUESTS = "DELETE FROM attachment_requests WHERE created_at<?"
SELECT = f"SELECT {_COLUMNS} FROM attachments"
SELECT_ONE = f"{SELECT} WHERE id=?"
SELECT_OF_VOLUME = f"{SELECT} WHERE volume_id=?"
# An attachment attaching with its connection saved is not cut short: its update ended
# and it waits for the host's ``complete`` (or ``os-attach``), as long as that takes.
IN_TRANSITION_SINCE = (f"SELECT id FROM attachments WHERE {_IN_TRANSITION_SQL} AND NOT "
                       f"(status = '{AttachmentStatus.ATTACHING.value}' AND connection_info "
                       "!= '{}') AND updated_at<? ORDER BY updated_at LIMIT ?")


def _has_attachment(statuses: frozenset[AttachmentStatus]) -> str:
    words = ", ".join(repr(s.value) for s in sorted(statuses, key=lambda s: s.value))
    return (f"EXISTS (SELECT 1 FROM attachments a WHERE a.volume_id = v.id "
            f"AND a.status IN ({words}))")


_EXPORTED_OR_ATTACHING = EXPORTED | {AttachmentStatus.ATTACHING}
# A volume ``v`` whose status its attachments' rows contradict: ``volume_status_for`` in
# SQL, as one condition per status (each through the (volume_id, status) index; a CASE
# over the volume's attachments cost a third more). A volume detaching is never what its
# attachments make it: it always follows them.
UNLIKE_ITS_ATTACHMENTS = (
    f"((v.status = '{VolumeStatus.IN_USE.value}' AND NOT {_has_attachment(EXPORTED)})"
    f" OR (v.status = '{VolumeStatus.ATTACHING.value}' AND ({_has_attachment(EXPORTED)}"
    f" OR NOT {_has_attachment(frozenset({AttachmentStatus.ATTACHING}))}))"
    f" OR (v.status = '{VolumeStatus.RESERVED.value}'"
    f" AND ({_has_attachment(_EXPORTED_OR_ATTACHING)}"
    f" OR NOT {_has_attachment(frozenset({AttachmentStatus.RESERVED}))}))"
    f" OR v.status = '{VolumeStatus.DETACHING.value}')"
)
RECENT = 4_096  # records kept in memory after their last read (3-5 KB each: ~16 MB)
_STATUSES = {s.value: s for s in AttachmentStatus}


@dataclass(slots=True, weakref_slot=True)
class AttachmentRecord:
    id: str
    volume_id: str
    project_id: str
    status: AttachmentStatus
    instance_id: str | None = None
    attach_mode: str | None = None
    host: str | None = None
    connector: dict[str, Any] = field(default_factory=dict)
    connection_info: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    attached_at: float | None = None

    def move(self, new: AttachmentStatus) -> None:
        """Change status in memory, judged by the transition table (raises InvalidState)."""
        check_attachment_move(self.status, new)
        self.status = new

    def view(self) -> Attachment:
        return Attachment(
            id=self.id, volume_id=self.volume_id, project_id=self.project_id,
            status=self.status, attach_mode=self.attach_mode,
            instance_id=self.instance_id, host=self.host, connector=self.connector,
            connection_info=self.connection_info, created_at=self.created_at,
            updated_at=self.updated_at or self.created_at, attached_at=self.attached_at,
        )

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.volume_id, self.project_id, self.instance_id, self.status.value,
            self.attach_mode, self.host, json.dumps(self.connector),
            json.dumps(self.connection_info), self.created_at,
            self.updated_at or self.created_at, self.attached_at,
        )


_FIELDS = tuple(name for name in AttachmentRecord.__slots__ if name != "__weakref__")


class AttachmentStore(RowRecords[AttachmentRecord]):
    """Every attachment of the gateway's file; in memory, the ones in use
    (``row_records``: read when asked for, held while in use)."""

    def __init__(self, db: Database, read_only: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(read_only, SELECT_ONE, "attachments", RECENT)
        self.db = db

    def from_row(self, row: Any) -> AttachmentRecord:
        return _from_row(row)

    def reset(self, held: AttachmentRecord, read: AttachmentRecord) -> None:
        for name in _FIELDS:
            setattr(held, name, getattr(read, name))

    # ---- reads -----------------------------------------------------------
    def of_volume(self, volume_id: str) -> list[AttachmentRecord]:
        """The volume's attachments, oldest first, new ones included: each as memory
        holds it (and held from now on, as a read by id would: a flow may change it)."""
        found = {rec.id: rec for rec in self.new.values() if rec.volume_id == volume_id}
        found.update((rec.id, rec) for rec in self.rows(SELECT_OF_VOLUME, (volume_id,),
                                                       kept=True))
        return sorted(found.values(), key=lambda a: a.created_at)

    def listing(self, project: str | None, oldest_first: bool, below: Key | None
                ) -> Iterator[AttachmentRecord]:
        """``project``'s attachments (every project's for None) in listing order, newest
        first, below ``below`` (a marker's key) when given, through the listing indexes;
        ``oldest_first``: the other way, above ``below``. One whose row is not committed
        yet is not listed, as it is not told yet."""
        return self.rows(*newest_first_sql(SELECT, project, below, oldest_first=oldest_first))

    def in_transition_since(self, before: float, limit: int = -1) -> list[AttachmentRecord]:
        """Up to ``limit`` (-1: all) attachments whose row has been detaching, or attaching
        with no connection saved (an update cut short), since before ``before``, oldest
        first, through the partial index (the reconciler's candidates, and a start's); the
        caller judges each record as memory holds it (``cut_short``)."""
        rows = self._read_only().execute(IN_TRANSITION_SINCE, (before, limit)).fetchall()
        return [rec for (aid,) in rows if (rec := self.get(aid)) is not None]

    def made_by(self, project: str, request_id: str) -> tuple[str, str] | None:
        """(attachment id, fingerprint) of what ``request_id`` made in ``project``
        within a day (committed rows only), or None."""
        return made_by_row(self._read_only(), MADE_BY, project, request_id)

    # ---- writes ----------------------------------------------------------
    def queue_request(self, project: str, request_id: str, fingerprint: str,
                      attachment_id: str) -> asyncio.Future[None]:
        """Queue the request that made ``attachment_id`` (with its row, in one commit),
        and forget those older than a day."""
        now = time.time()
        self.db.write(FORGET_REQUESTS, (now - REQUEST_ID_TTL_S,))
        return self.db.write(REMEMBER_REQUEST, (project, request_id, fingerprint,
                                                attachment_id, now))

    async def add(self, rec: AttachmentRecord) -> None:
        await self.queue_add(rec)

    def queue_add(self, rec: AttachmentRecord) -> asyncio.Future[None]:
        """A new attachment: in memory until its row is committed, and after (forgotten
        if the write fails); the row is queued, committed with what else is queued before
        the next await."""
        self.added(rec)
        done = self.db.write(INSERT, rec.row())

        def settled(write: asyncio.Future[None]) -> None:
            if write.cancelled() or write.exception() is not None:
                self.forget(rec)
            else:
                self.written(rec)

        done.add_done_callback(settled)
        return done

    async def save(self, rec: AttachmentRecord) -> None:
        await self.queue_save(rec)

    def queue_save(self, rec: AttachmentRecord) -> asyncio.Future[None]:
        """Queue the row (committed with what else is queued before the next await); the
        record stays in memory at least until that write is settled."""
        rec.updated_at = time.time()
        return self.writing(rec, self.db.write(UPDATE, (
            rec.status.value, rec.attach_mode, rec.host, json.dumps(rec.connector),
            json.dumps(rec.connection_info), rec.updated_at, rec.attached_at, rec.id,
        )))

    async def remove(self, rec: AttachmentRecord) -> None:
        await self.queue_remove(rec)

    def queue_remove(self, rec: AttachmentRecord) -> asyncio.Future[None]:
        written = self.db.write(DELETE, (rec.id,))
        self.removed(rec, written)  # not found, unless the write fails (read_back)
        return written

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """After a failed write (``GatewayStore.reread_with``): what brings memory back to
        the file, on the loop (``read_back``)."""
        return self.read_back


def cut_short(rec: AttachmentRecord) -> bool:
    """Whether the attachment is in the middle of a move no request is making any more
    (when its row has been so for a while): detaching, or attaching without the
    connection its update saves last. Attaching with one, it waits for its host."""
    return rec.status is AttachmentStatus.DETACHING or (
        rec.status is AttachmentStatus.ATTACHING and not rec.connection_info)


def attachment_bytes(rec: AttachmentRecord) -> int:
    """About how many bytes the record's view takes in a reply (its connector and its
    connection info, with the NBD credentials, are most of it: about 2 KB in all)."""
    return FIXED_BYTES + len(json.dumps(rec.connector)) + len(json.dumps(rec.connection_info))


def _from_row(row: Any) -> AttachmentRecord:
    (aid, volume_id, project, instance, status, mode, host, connector, info,
     created, updated, attached) = row
    return AttachmentRecord(
        id=aid, volume_id=volume_id, project_id=project, status=_STATUSES[status],
        instance_id=instance, attach_mode=mode, host=host, connector=json.loads(connector),
        connection_info=json.loads(info), created_at=created, updated_at=updated,
        attached_at=attached,
    )
