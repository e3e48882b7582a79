"""The volume migrations the gateway keeps (table ``volume_migrations`` of gateway.db).

One row a volume, for its latest migration: while it runs (``migrating``: the volume is
``maintenance`` and its destination node copies it; ``completing``: the volume lives on
its destination, and its source node still holds the old copy, to be dropped) and after
it ended (``success``, ``error``: what Cinder's ``migration_status`` then says, kept
until the next migration or the volume's delete). Migrations are few, so memory holds
them all: read at start and, after a failed write, read back with the rest of the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from cinderblock.actors.runtime.database import Database

MIGRATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS volume_migrations (
    volume_id TEXT PRIMARY KEY, migration_id TEXT NOT NULL, status TEXT NOT NULL,
    source TEXT NOT NULL, destination TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL
);
"""
_COLUMNS = "volume_id, migration_id, status, source, destination, reason, updated_at"
SAVE_MIGRATION = (f"INSERT OR REPLACE INTO volume_migrations ({_COLUMNS}) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)")
DELETE_MIGRATION = "DELETE FROM volume_migrations WHERE volume_id=?"


class MigrationStatus(StrEnum):
    """Cinder's ``migration_status`` words (those a migration here passes through)."""

    MIGRATING = "migrating"
    COMPLETING = "completing"
    SUCCESS = "success"
    ERROR = "error"


RUNNING = frozenset({MigrationStatus.MIGRATING, MigrationStatus.COMPLETING})


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    volume_id: str
    migration_id: str  # names the source's export and the destination's report
    status: MigrationStatus
    source: str  # the backend the volume leaves ("node-1@file")
    destination: str  # the backend it goes to
    reason: str | None  # why it failed
    updated_at: float

    def row(self) -> tuple[object, ...]:
        return (self.volume_id, self.migration_id, self.status.value, self.source,
                self.destination, self.reason, self.updated_at)


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
        return partial(self._install, [
            MigrationRecord(vid, mid, MigrationStatus(status), source, dest, reason, at)
            for vid, mid, status, source, dest, reason, at in rows])

    def _install(self, records: Iterable[MigrationRecord]) -> None:
        self.by_volume = {rec.volume_id: rec for rec in records}

    def of_volume(self, volume_id: str) -> MigrationRecord | None:
        return self.by_volume.get(volume_id)

    def status_of(self, volume_id: str) -> str | None:
        rec = self.by_volume.get(volume_id)
        return None if rec is None else rec.status.value

    def running(self) -> list[MigrationRecord]:
        return [rec for rec in self.by_volume.values() if rec.status in RUNNING]

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
