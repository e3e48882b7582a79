"""The gateway's attachment records: in memory and in its own SQLite file.

The table lives in the gateway's file (``GatewayStore.db``, one writer: the
gateway) and all its SQL is here. As for volumes, every change is written
through the group-commit ``Database`` before anyone is told about it. A
deleted attachment's row goes (Cinder keeps a soft-deleted one; nothing here
reads it back).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cinderblock.actors.gateway.paging import FIXED_BYTES, ListingIndex
from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.states import AttachmentStatus, check_attachment_move

SCHEMA = """
CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, project_id TEXT NOT NULL, instance_id TEXT,
    status TEXT NOT NULL, attach_mode TEXT, host TEXT, connector TEXT NOT NULL,
    connection_info TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    attached_at REAL
);
CREATE INDEX IF NOT EXISTS attachments_volume ON attachments (volume_id);
"""
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
IN_TRANSITION = frozenset({AttachmentStatus.ATTACHING, AttachmentStatus.DETACHING})


@dataclass(slots=True)
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


class AttachmentStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_id: dict[str, AttachmentRecord] = {}
        # volume id -> its attachments' ids: ``of_volume`` without a scan of every record
        self._by_volume: dict[str, set[str]] = {}
        # the attachments attaching or detaching as last saved: the reconciler's candidates
        self.in_transition: set[str] = set()
        # attachments whose removal is being written: a failed one brings the record back
        self._removing: dict[str, AttachmentRecord] = {}
        self.listing = ListingIndex()  # every record in listing order, for pages

    async def open(self) -> None:
        """Load every record (the database is open: its schema made the table)."""
        (await self.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: every row; what it returns makes memory those rows (on
        the loop; a record already held, or being removed, is reset in place)."""
        read = [_from_row(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM attachments")]
        return partial(self._install, read)

    def _install(self, read: list[AttachmentRecord]) -> None:
        held = {**self._removing, **self.by_id}
        self.by_id, self._by_volume, self.in_transition = {}, {}, set()
        for rec in read:
            if (mine := held.get(rec.id)) is not None:
                for name in AttachmentRecord.__slots__:
                    setattr(mine, name, getattr(rec, name))
                rec = mine
            self._hold(rec)
        self.listing = ListingIndex()
        self.listing.add_all(self.by_id.values())  # one sort

    def of_volume(self, volume_id: str) -> list[AttachmentRecord]:
        found = [self.by_id[i] for i in self._by_volume.get(volume_id, ())]
        return sorted(found, key=lambda a: a.created_at)

    def _hold(self, rec: AttachmentRecord) -> None:
        self.by_id[rec.id] = rec
        self._by_volume.setdefault(rec.volume_id, set()).add(rec.id)
        self._note_status(rec)

    def _note_status(self, rec: AttachmentRecord) -> None:
        if rec.status in IN_TRANSITION:
            self.in_transition.add(rec.id)
        else:
            self.in_transition.discard(rec.id)

    def _drop(self, attachment_id: str) -> None:
        self.in_transition.discard(attachment_id)
        rec = self.by_id.pop(attachment_id, None)
        if rec is not None:
            self.listing.remove(rec)
        ids = self._by_volume.get(rec.volume_id) if rec is not None else None
        if rec is not None and ids is not None:
            ids.discard(attachment_id)
            if not ids:
                del self._by_volume[rec.volume_id]

    async def add(self, rec: AttachmentRecord) -> None:
        self._hold(rec)
        self.listing.add(rec)
        try:
            await self.db.write(INSERT, rec.row())
        except Exception:
            self._drop(rec.id)
            raise

    async def save(self, rec: AttachmentRecord) -> None:
        await self.queue_save(rec)

    def queue_save(self, rec: AttachmentRecord) -> asyncio.Future[None]:
        """Queue the row (committed with what else is queued before the next await)."""
        rec.updated_at = time.time()
        self._note_status(rec)
        return self.db.write(UPDATE, (
            rec.status.value, rec.attach_mode, rec.host, json.dumps(rec.connector),
            json.dumps(rec.connection_info), rec.updated_at, rec.attached_at, rec.id,
        ))

    async def remove(self, rec: AttachmentRecord) -> None:
        await self.queue_remove(rec)

    def queue_remove(self, rec: AttachmentRecord) -> asyncio.Future[None]:
        self._drop(rec.id)
        written = self.db.write(DELETE, (rec.id,))
        self._removing[rec.id] = rec  # until its batch is settled (see _install)
        written.add_done_callback(partial(_settled, self._removing, rec))
        return written


def _settled(removing: dict[str, AttachmentRecord], rec: AttachmentRecord,
             written: asyncio.Future[None]) -> None:
    """The removal's batch ended: the record no longer needs bringing back."""
    if removing.get(rec.id) is rec:
        del removing[rec.id]


def attachment_bytes(rec: AttachmentRecord) -> int:
    """About how many bytes the record's view takes in a reply (its connector and its
    connection info, with the NBD credentials, are most of it: about 2 KB in all)."""
    return FIXED_BYTES + len(json.dumps(rec.connector)) + len(json.dumps(rec.connection_info))


def _from_row(row: Any) -> AttachmentRecord:
    (aid, volume_id, project, instance, status, mode, host, connector, info,
     created, updated, attached) = row
    return AttachmentRecord(
        id=aid, volume_id=volume_id, project_id=project, status=AttachmentStatus(status),
        instance_id=instance, attach_mode=mode, host=host, connector=json.loads(connector),
        connection_info=json.loads(info), created_at=created, updated_at=updated,
        attached_at=attached,
    )
