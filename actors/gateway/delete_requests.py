"""Which request deleted what: kept in gateway.db, so a retry is answered after a restart.

A delete retried with its request id is the same delete: while its volume or snapshot
is ``deleting`` the answer is its current view, once it is gone its last view with
status ``deleted`` (``GatewayLifecycle._retried_delete``); one whose object went to an
error status runs again. The gateway used to keep this in memory only, so a retry
that came after a gateway restart was answered ``not_found`` (the object was gone) or
``invalid_state`` (still deleting): the client could not tell a delete that happened.

Table ``delete_requests``: one row per delete the gateway ran (project, request id,
what it deleted and its view then), queued before the delete flow runs, so it is in
the same transaction as the move to ``deleting`` (no await comes between them); a
delete that is refused or fails takes its row back. At start a row counts only if its
object is still ``deleting`` or is gone (its view is then answered with status
``deleted``); a row whose object is in any other status is of a delete that never took
hold, and is dropped. Bounded as the memory was: the newest ``REMEMBERED`` requests.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Mapping

from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.schema import dump, parse

SCHEMA = """
CREATE TABLE IF NOT EXISTS delete_requests (
    seq INTEGER PRIMARY KEY, project_id TEXT NOT NULL, request_id TEXT NOT NULL,
    object_id TEXT NOT NULL, kind TEXT NOT NULL, view TEXT NOT NULL,
    UNIQUE (project_id, request_id)
);
"""
INSERT = ("INSERT OR REPLACE INTO delete_requests "
          "(project_id, request_id, object_id, kind, view) VALUES (?, ?, ?, ?, ?)")
DELETE = "DELETE FROM delete_requests WHERE project_id=? AND request_id=?"
REMEMBERED = 10_000
Key = tuple[str, str]  # (project, request id)
View = Volume | Snapshot


class DeleteRequests:
    """Request → deleted object, and the last view of what is gone (both bounded)."""

    def __init__(self, db: Database, remembered: int = REMEMBERED) -> None:
        self.db = db
        self.remembered = remembered
        self._deleted: OrderedDict[Key, str] = OrderedDict()  # request -> volume/snapshot id
        self._gone: OrderedDict[str, View] = OrderedDict()  # id -> its last view

    async def load(self, volumes: Mapping[str, object], snapshots: Mapping[str, object]) -> None:
        rows = await self.db.fetchall(
            "SELECT project_id, request_id, object_id, kind, view FROM delete_requests "
            "ORDER BY seq")
        for project, request_id, object_id, kind, raw in rows:
            found = (volumes if kind == "volume" else snapshots).get(object_id)
            status = getattr(found, "status", None)
            if found is not None and status not in (VolumeStatus.DELETING,
                                                    SnapshotStatus.DELETING):
                self.db.write(DELETE, (project, request_id))  # it never took hold
                continue
            self._deleted[(project, request_id)] = object_id
            if found is None:
                self._gone[object_id] = _gone_view(kind, raw)

    def deleted_by(self, ctx: Context) -> str | None:
        """The id this request id deleted (or is deleting), if any."""
        return self._deleted.get((ctx.project_id, ctx.request_id))

    def last_view(self, object_id: str) -> View | None:
        return self._gone.get(object_id)

    def remember(self, ctx: Context, view: View) -> None:
        """A delete starts: queued, so it commits with the flow's first write."""
        if not ctx.request_id:
            return
        key = (ctx.project_id, ctx.request_id)
        self._deleted[key] = view.id
        self._deleted.move_to_end(key)
        kind = "volume" if isinstance(view, Volume) else "snapshot"
        self.db.write(INSERT, (*key, view.id, kind, json.dumps(dump(view))))
        while len(self._deleted) > self.remembered:
            old, _ = self._deleted.popitem(last=False)
            self.db.write(DELETE, old)

    def forget(self, ctx: Context, object_id: str) -> None:
        """The delete was refused or failed: it did not happen."""
        key = (ctx.project_id, ctx.request_id)
        if self._deleted.get(key) == object_id:
            del self._deleted[key]
            self.db.write(DELETE, key)

    def gone(self, view: View) -> None:
        self._gone[view.id] = view
        while len(self._gone) > self.remembered:
            self._gone.popitem(last=False)


def _gone_view(kind: str, raw: str) -> View:
    """The view a row kept, as it is once its object is gone (status ``deleted``)."""
    fields = json.loads(raw)
    if kind == "volume":
        return dataclasses.replace(parse(Volume, fields, strict=False),
                                   status=VolumeStatus.DELETED)
    return dataclasses.replace(parse(Snapshot, fields, strict=False),
                               status=SnapshotStatus.DELETED)
