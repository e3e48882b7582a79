"""Deletes by request id, remembered across gateway restarts (issue 9: a delete
reported as failed did not happen, or a retry with the same request id reports it
done).

A client whose delete timed out (the gateway died with the reply unsent) sends it
again with the same request id, possibly to a gateway started again since. That
gateway must know the request: answer the volume's current view while it is
``deleting``, its ``deleted`` view once it is gone; never ``invalid_state`` or
``not_found`` for a delete that is happening or happened.

So each delete's request id is written to ``delete_requests`` in gateway.db
before its flow runs. The write is queued, not awaited: the group commit keeps
writes in order, so it is durable no later than the ``deleting`` status the flow
writes after it (and a failed batch fails every write queued on top of it). A
refused delete forgets its request (the same id may then be used again). The
newest ``REMEMBERED`` requests are kept, in memory and in the file.

Memory equal to the file after a write that failed (a full disk, an I/O error): the
request that write added is dropped again, the one it removed comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Literal

from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus

REMEMBERED = 10_000
Key = tuple[str, str]  # (project, request id)

DELETE_REQUESTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS delete_requests (
    project_id TEXT NOT NULL, request_id TEXT NOT NULL, kind TEXT NOT NULL,
    object_id TEXT NOT NULL, volume_id TEXT NOT NULL, size INTEGER NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (project_id, request_id)
);
"""
_INSERT = ("INSERT OR REPLACE INTO delete_requests (project_id, request_id, kind, object_id, "
           "volume_id, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
_DELETE = "DELETE FROM delete_requests WHERE project_id = ? AND request_id = ?"
_PRUNE = ("DELETE FROM delete_requests WHERE rowid NOT IN (SELECT rowid FROM delete_requests "
          "ORDER BY created_at DESC LIMIT ?)")
_LOAD = ("SELECT project_id, request_id, kind, object_id, volume_id, size FROM delete_requests "
         "ORDER BY created_at")


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    kind: Literal["volume", "snapshot"]
    object_id: str
    project_id: str
    volume_id: str  # the snapshot's volume; the volume itself for a volume
    size: int

    def gone_view(self) -> Volume | Snapshot:
        """What a retry is told once the object is gone and its last view forgotten."""
        if self.kind == "volume":
            return Volume(self.object_id, self.project_id, self.size, VolumeStatus.DELETED)
        return Snapshot(self.object_id, self.project_id, self.volume_id, self.size,
                        SnapshotStatus.DELETED)


class DeleteRequests:
    """The delete requests by (project, request id): memory equal to ``delete_requests``."""

    def __init__(self, db: Database, limit: int = REMEMBERED) -> None:
        self.db = db
        self.limit = limit
        self._by_key: OrderedDict[Key, DeleteRequest] = OrderedDict()

    async def load(self) -> None:
        await self.db.write(_PRUNE, (self.limit,))
        for project, rid, kind, object_id, volume_id, size in await self.db.fetchall(_LOAD):
            self._by_key[(project, rid)] = DeleteRequest(kind, object_id, project, volume_id,
                                                         size)

    def get(self, key: Key) -> DeleteRequest | None:
        return self._by_key.get(key)

    def remember(self, key: Key, request: DeleteRequest) -> asyncio.Future[None]:
        self._by_key[key] = request
        self._by_key.move_to_end(key)
        while len(self._by_key) > self.limit:
            self._by_key.popitem(last=False)
        written = self.db.write(_INSERT, (*key, request.kind, request.object_id,
                                          request.volume_id, request.size, time.time()))
        written.add_done_callback(partial(self._unless_written, key, request, None))
        return written

    def forget(self, key: Key) -> None:
        request = self._by_key.pop(key, None)
        if request is not None:
            written = self.db.write(_DELETE, key)
            written.add_done_callback(partial(self._unless_written, key, None, request))

    def _unless_written(self, key: Key, added: DeleteRequest | None,
                        removed: DeleteRequest | None, written: asyncio.Future[None]) -> None:
        """A write that failed: memory back to what the file holds."""
        if written.cancelled() or written.exception() is None:
            return
        if added is not None and self._by_key.get(key) is added:
            del self._by_key[key]
        if removed is not None and key not in self._by_key:
            self._by_key[key] = removed
