"""The QoS specs the gateway keeps (table ``qos_specs`` of gateway.db).

Which QoS specs a volume type has is a row of ``volume_type_qos`` (Cinder keeps it in
the type's own row, ``volume_types.qos_specs_id``); ``VolumeType.qos_specs_id`` shows
it. QoS specs are few (an admin makes each), so memory holds them all: read at start
and, after a failed write, read back with the rest of the file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable
from functools import partial

from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.qos import QosSpecs
from cinderblock.protocol.wire.errors import NotFound

QOS_SCHEMA = """
CREATE TABLE IF NOT EXISTS qos_specs (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, consumer TEXT NOT NULL,
    specs TEXT NOT NULL, created_at REAL NOT NULL
);
"""
_COLUMNS = "id, name, consumer, specs, created_at"
INSERT_QOS = f"INSERT INTO qos_specs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
UPDATE_QOS = "UPDATE qos_specs SET consumer=?, specs=? WHERE id=?"
DELETE_QOS = "DELETE FROM qos_specs WHERE id=?"


class QosStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_id: dict[str, QosSpecs] = {}
        self.by_name: dict[str, QosSpecs] = {}

    async def load(self) -> None:
        (await self.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: every QoS spec (at start, and after a failed write);
        what it returns makes them the ones memory holds."""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM qos_specs").fetchall()
        return partial(self._install, [
            QosSpecs(qid, name, consumer, json.loads(specs), created)
            for qid, name, consumer, specs, created in rows])

    def _install(self, specs: Iterable[QosSpecs]) -> None:
        self.by_id = {qos.id: qos for qos in specs}
        self.by_name = {qos.name: qos for qos in self.by_id.values()}

    def find(self, name_or_id: str) -> QosSpecs:
        found = self.by_id.get(name_or_id) or self.by_name.get(name_or_id)
        if found is None:
            raise NotFound(f"QoS Specs {name_or_id} could not be found.", {"qos_specs": name_or_id})
        return found

    def get(self, qos_id: str | None) -> QosSpecs | None:
        return None if qos_id is None else self.by_id.get(qos_id)

    def queue_add(self, qos: QosSpecs) -> asyncio.Future[None]:
        self.by_id[qos.id] = self.by_name[qos.name] = qos
        return self.db.write(INSERT_QOS, (qos.id, qos.name, qos.consumer,
                                          json.dumps(qos.specs), qos.created_at))

    def queue_save(self, qos: QosSpecs) -> asyncio.Future[None]:
        """``qos`` in place of the one with its id (its name does not change)."""
        self.by_id[qos.id] = self.by_name[qos.name] = qos
        return self.db.write(UPDATE_QOS, (qos.consumer, json.dumps(qos.specs), qos.id))

    def queue_remove(self, qos: QosSpecs) -> asyncio.Future[None]:
        self.by_id.pop(qos.id, None)
        self.by_name.pop(qos.name, None)
        return self.db.write(DELETE_QOS, (qos.id,))
