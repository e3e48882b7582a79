"""``create_routes`` in gateway.db: what a create's cast names beyond its volume's (or
snapshot's) row (``lost_casts.CreateRoute``: the affinity hints' backends, a group's or
a backup's backend, the backup it restores, a manage's backend and name), so that a
gateway started again can send a create its last process died before sending. A row
only for a create that named any of these, written in the create's own transaction and
dropped in the one that takes its volume or snapshot out of ``creating`` (or removes
it), by whichever process that is; one left (that transaction failed, or an older
gateway wrote the file) is dropped at the next start."""

from __future__ import annotations

import asyncio

from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus

SCHEMA = "CREATE TABLE IF NOT EXISTS create_routes (id TEXT PRIMARY KEY, route TEXT NOT NULL);\n"
SAVE_CREATE_ROUTE = "INSERT OR REPLACE INTO create_routes VALUES (?, ?)"
DROP_CREATE_ROUTE = "DELETE FROM create_routes WHERE id = ?"
_CREATING = (
    f"(SELECT id FROM volumes WHERE status = '{VolumeStatus.CREATING.value}')",
    f"(SELECT id FROM snapshots WHERE status = '{SnapshotStatus.CREATING.value}')")
DROP_SETTLED_ROUTES = (
    f"DELETE FROM create_routes WHERE id NOT IN {_CREATING[0]} AND id NOT IN {_CREATING[1]}")
# at a start, the routes the previous process left of creates still under way: this
# process drops each when its create settles, as it does those it writes
SELECT_ROUTES_LEFT = (
    f"SELECT id FROM create_routes WHERE id IN {_CREATING[0]} OR id IN {_CREATING[1]}")


class CreateRoutes:
    """The routes of creates under way, for the volumes' and the snapshots' stores: each
    is dropped with the write that settles its create (queued in the same loop turn: one
    transaction). A create with no route costs nothing here."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # ids whose route this process wrote, or found at its start (SELECT_ROUTES_LEFT)
        self.written: set[str] = set()

    def queue_save(self, object_id: str, route: str) -> asyncio.Future[None]:
        self.written.add(object_id)
        return self.db.write(SAVE_CREATE_ROUTE, (object_id, route))

    def queue_drop(self, object_id: str) -> None:
        """The route of ``object_id``, if this process wrote one, dropped: its create is
        settled. Should that transaction fail, the next start drops it."""
        if object_id in self.written:
            self.written.discard(object_id)
            self.db.write(DROP_CREATE_ROUTE, (object_id,))
