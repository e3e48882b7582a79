"""The volume migrations the gateway keeps (table ``volume_migrations`` of gateway.db).

One row a volume, for its latest migration: while it runs (``migrating``: the volume is
``maintenance`` and its destination node copies it; ``completing``: the volume lives on
its destination, and its source node still holds the old copy, to be dropped) and after
it ended (``success``, ``error``: what Cinder's ``migration_status`` then says, kept
until the next migration or the volume's delete). Migrations are few, so memory holds
them all: read at start and, after a failed write, read back with the rest of the file.

A migration a retype needs (``os-retype`` under ``on-demand``) carries the retype's
terms (``RetypeTerms``): the new type, the quota reservation made for it and the old
type's quota to give back. The row references the reservation while the migration
runs, so a restarted gateway does not roll it back; the migration's end commits it
(and the volume takes the type) or rolls it back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from cinderblock.actors.runtime.database import Database

MIGRATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS volume_migrations (
    volume_id TEXT PRIMARY KEY, migration_id TEXT NOT NULL, status TEXT NOT NULL,
    source TEXT NOT NULL, destination TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL,
    new_type_id TEXT, reservation_id TEXT, released TEXT
);
"""
# gateway.db 17 -> 18 made the table (as the schema then did); 18 -> 19 adds a retype's
# terms (NULL: a migration that is no retype's)
MIGRATION_TABLE_V18 = """
CREATE TABLE IF NOT EXISTS volume_migrations (
    volume_id TEXT PRIMARY KEY, migration_id TEXT NOT NULL, status TEXT NOT NULL,
    source TEXT NOT NULL, destination TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL
);
"""
RETYPE_COLUMNS = ("new_type_id", "reservation_id", "released")


def add_retype_columns(conn: sqlite3.Connection) -> None:
    """gateway.db 18 -> 19: the retype's terms' columns, those the table lacks."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(volume_migrations)")}
    for column in RETYPE_COLUMNS:
        if column not in have:
            conn.execute(f"ALTER TABLE volume_migrations ADD COLUMN {column} TEXT")
_COLUMNS = ("volume_id, migration_id, status, source, destination, reason, updated_at, "
            "new_type_id, reservation_id, released")
SAVE_MIGRATION = (f"INSERT OR REPLACE INTO volume_migrations ({_COLUMNS}) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
DELETE_MIGRATION = "DELETE FROM volume_migrations WHERE volume_id=?"


class MigrationStatus(StrEnum):
    """Cinder's ``migration_status`` words (those a migration here passes through)."""

    MIGRATING = "migrating"
    COMPLETING = "completing"
    SUCCESS = "success"
    ERROR = "error"


RUNNING = frozenset({MigrationStatus.MIGRATING, MigrationStatus.COMPLETING})


@dataclass(frozen=True, slots=True)
class RetypeTerms:
    """What a retype's migration does at its end besides moving the volume."""

    new_type_id: str  # the type the volume takes once on its destination
    reservation_id: str  # the new type's quota, reserved: committed then, or rolled back
    released: Mapping[str, int]  # the old type's own quota, given back then


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    volume_id: str
    migration_id: str  # names the source's export and the destination's report
    status: MigrationStatus
    source: str  # the backend the volume leaves ("node-1@file")
    destination: str  # the backend it goes to
    reason: str | None  # why it failed
    updated_at: float
    retype: RetypeTerms | None = None  # a retype's (``on-demand``), else None

    def row(self) -> tuple[object, ...]:
        terms = self.retype
        return (self.volume_id, self.migration_id, self.status.value, self.source,
                self.destination, self.reason, self.updated_at,
                None if terms is None else terms.new_type_id,
                None if terms is None else terms.reservation_id,
                None if terms is None else json.dumps(dict(terms.released)))

    def moved_to(self, status: MigrationStatus, reason: str | None = None
                 ) -> MigrationRecord:
        """This migration in ``status`` now (its id, backends and terms kept)."""
        return dataclasses.replace(self, status=status, reason=reason, updated_at=time.time())


def _record(row: tuple[Any, ...]) -> MigrationRecord:
    vid, mid, status, source, dest, reason, at, type_id, reservation_id, released = row
    terms = None if type_id is None else RetypeTerms(type_id, reservation_id,
                                                     json.loads(released or "{}"))
    return MigrationRecord(vid, mid, MigrationStatus(status), source, dest, reason, at, terms)


class MigrationStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_volume: dict[str, MigrationRecord] = {}

    async def load(self) -> None:
        (await self.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: every migration row (at start, and after a failed
        write); what it returns makes them the ones memory holds."""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM volume_migrations").fetchall()
        return partial(self._install, [_record(row) for row in rows])

    def _install(self, records: Iterable[MigrationRecord]) -> None:
        self.by_volume = {rec.volume_id: rec for rec in records}

    def of_volume(self, volume_id: str) -> MigrationRecord | None:
        return self.by_volume.get(volume_id)

    def status_of(self, volume_id: str) -> str | None:
        rec = self.by_volume.get(volume_id)
        return None if rec is None else rec.status.value

    def running(self) -> list[MigrationRecord]:
        return [rec for rec in self.by_volume.values() if rec.status in RUNNING]

    def reservations(self) -> list[str]:
        """The quota reservations running retypes' migrations hold (no restart rolls
        them back)."""
        return [rec.retype.reservation_id for rec in self.running() if rec.retype is not None]

    def retyping_to(self, type_id: str) -> int:
        """How many running migrations give their volume type ``type_id`` at their end
        (the type is in use: not deleted, nor its extra specs changed, meanwhile)."""
        return sum(1 for rec in self.running()
                   if rec.retype is not None and rec.retype.new_type_id == type_id)

    def exporting(self, migration_id: str) -> bool:
        """Whether a running migration named ``migration_id`` may have its source's
        export open (the reconciler's sweep leaves it)."""
        return any(rec.migration_id == migration_id for rec in self.running())

    def queue_save(self, rec: MigrationRecord) -> asyncio.Future[None]:
        """Queue the volume's migration row (in the transaction of what is queued with
        it)."""
        self.by_volume[rec.volume_id] = rec
        return self.db.write(SAVE_MIGRATION, rec.row())

    def queue_remove(self, volume_id: str) -> asyncio.Future[None] | None:
        """The volume's row goes (the volume is deleted); None if it has none."""
        if self.by_volume.pop(volume_id, None) is None:
            return None
        return self.db.write(DELETE_MIGRATION, (volume_id,))
