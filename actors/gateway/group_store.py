"""The groups the gateway keeps in gateway.db: group types (table ``group_types``).

Group types are few, so memory holds them all: read at start and, after a failed
write, read back with the rest of the file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from functools import partial

from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.groups import GroupType

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
