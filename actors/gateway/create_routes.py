"""``create_routes`` in gateway.db: what a create's cast names beyond its volume's (or
snapshot's) row (``lost_casts.CreateRoute``: the affinity hints' backends, a group's or
a backup's backend, the backup it restores, a manage's backend and name), so that a
gateway started again can send a create its last process died before sending. A row
only for a create that named any of these, written in the create's own transaction and
dropped at the next start once its volume or snapshot is no longer ``creating``."""

from __future__ import annotations

from cinderblock.protocol.states import SnapshotStatus, VolumeStatus

SCHEMA = "CREATE TABLE IF NOT EXISTS create_routes (id TEXT PRIMARY KEY, route TEXT NOT NULL);\n"
SAVE_CREATE_ROUTE = "INSERT OR REPLACE INTO create_routes VALUES (?, ?)"
DROP_SETTLED_ROUTES = (
    "DELETE FROM create_routes WHERE "
    f"id NOT IN (SELECT id FROM volumes WHERE status = '{VolumeStatus.CREATING.value}') AND "
    f"id NOT IN (SELECT id FROM snapshots WHERE status = '{SnapshotStatus.CREATING.value}')")
