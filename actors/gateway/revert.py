"""Reverting a volume to its latest snapshot, in place (Cinder's 3.40 ``revert``).

    volume_revert_api   ExtractRevertRequestTask → MarkRevertingTask → RevertCastTask

The rules are Cinder's (``cinder/api/v3/volumes.py`` ``revert`` and
``cinder/volume/api.py`` ``revert_to_snapshot``), judged by ``check_revert``: the
snapshot must be the volume's newest (by creation, whatever its status), of the
volume's size (a volume extended since cannot go back), and available; the volume
available, and not busy (``claim_volume``). The volume goes to ``reverting`` and the
snapshot to ``restoring`` in one transaction, so that neither is deleted, snapshotted,
attached or copied meanwhile; the node replaces the volume's bytes with the
snapshot's, all at once, and reports ``volume.reverted``; then the volume is
``available`` (or ``error``, with the node's reason) and the snapshot ``available``
again, in one transaction (``end_revert``). A revert whose cast fails puts both back.

Each revert has an id, kept with the volume (``pending_reverts``, in the mark's
transaction) and named by the cast and by the node's report: only the report of the
revert in progress ends it, so a late second report of an earlier revert cannot end a
later one early (and make the volume ``available`` while its node is still replacing
its bytes). A volume left ``reverting`` (its node restarted mid-revert, or the report
was lost) is sent the same revert, with the same id, again by the reconciler once no
node is working on it: a revert done twice is the same. An admin's reset of such a
volume releases its snapshot and drops the id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.lifecycle_checks import (
    claim_volume,
    visible_snapshot,
    visible_volume,
)
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.lifecycle import NodeRevertVolume
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.states import check_volume_move
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState

REVERT_MARK_BEFORE_COMMIT = declare("gateway.volume_revert.mark.before_commit")
REVERT_MARK_AFTER_COMMIT = declare("gateway.volume_revert.mark.after_commit")
REVERT_CAST_BEFORE_SEND = declare("gateway.volume_revert.cast.before_send")
REVERT_CAST_AFTER_SEND = declare("gateway.volume_revert.cast.after_send")
REVERTED_BEFORE_COMMIT = declare("gateway.volume_reverted.before_commit")
REVERTED_AFTER_COMMIT = declare("gateway.volume_reverted.after_commit")


def check_revert(volume: VolumeRecord, snapshot: SnapshotRecord,
                 snapshots: Sequence[SnapshotRecord]) -> None:
    """Whether ``volume`` may be reverted to ``snapshot`` (``snapshots``: the volume's),
    in Cinder's order and words; raises ``InvalidInput`` for a wrong request and
    ``InvalidState`` for a status that forbids it now."""
    latest = max(snapshots, key=lambda s: (s.created_at, s.id), default=None)
    if snapshot.volume_id != volume.id or latest is None or latest.id != snapshot.id:
        raise InvalidInput(f"Specified snapshot {snapshot.id} is None or not the latest one "
                           f"of volume {volume.id}.",
                           {"snapshot_id": snapshot.id, "volume_id": volume.id,
                            "latest": latest.id if latest is not None else None})
    if volume.size != snapshot.size:
        raise InvalidInput(f"Can't revert volume {volume.id} to its latest snapshot "
                           f"{snapshot.id}. The volume size must be equal to the snapshot "
                           f"size ({volume.size} GiB against {snapshot.size} GiB).",
                           {"size": volume.size, "snapshot_size": snapshot.size})
    if volume.status is not V.AVAILABLE:
        raise InvalidState(f"Can't revert volume {volume.id} to its latest snapshot "
                           f"{snapshot.id}. Volume's status must be 'available' (it is "
                           f"{volume.status.value}).", {"status": volume.status.value})
    if snapshot.status is not P.AVAILABLE:
        raise InvalidState(f"Can't revert volume {volume.id} to its latest snapshot "
                           f"{snapshot.id}. Snapshot's status must be 'available' (it is "
                           f"{snapshot.status.value}).",
                           {"snapshot_status": snapshot.status.value})


def restoring_snapshot(store: GatewayStore, volume_id: str) -> SnapshotRecord | None:
    """The snapshot a reverting volume is being reverted to (``restoring``)."""
    return next((s for s in store.snapshots.of_volume(volume_id)
                 if s.status is P.RESTORING), None)


class RevertServices(Protocol):
    store: GatewayStore

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    def publish_volume(self, rec: VolumeRecord) -> None: ...
    def publish_snapshot(self, rec: SnapshotRecord) -> None: ...


async def save_both(s: RevertServices, volume: VolumeRecord, snapshot: SnapshotRecord | None,
                    revert_id: str | None = None) -> None:
    """The volume's status and the snapshot's in one transaction, then everyone told;
    with them the id of the volume's revert: ``revert_id`` kept while it runs, dropped
    (None) when it has ended."""
    written = [s.store.queue_status(volume)]
    if snapshot is not None:
        written.append(s.store.snapshots.queue_status(snapshot))
    if revert_id is not None or volume.id in s.store.reverts:
        written.append(s.store.queue_revert(volume.id, revert_id))
    await asyncio.gather(*written)
    s.publish_volume(volume)
    if snapshot is not None:
        s.publish_snapshot(snapshot)


async def end_revert(s: RevertServices, volume: VolumeRecord, status: V, reason: str | None
                     ) -> None:
    """A reverting volume ``status`` (available, or error with ``reason``) and its
    restoring snapshot available again, together."""
    check_volume_move(volume.status, status)
    snapshot = restoring_snapshot(s.store, volume.id)
    volume.status, volume.reason = status, reason
    if snapshot is not None:
        snapshot.move(P.AVAILABLE)
    REVERTED_BEFORE_COMMIT()
    await save_both(s, volume, snapshot)
    REVERTED_AFTER_COMMIT()


@dataclass(slots=True)
class RevertContext:
    volume_id: str
    snapshot_id: str
    ctx: Context
    volume: VolumeRecord | None = None
    snapshot: SnapshotRecord | None = None
    claimed: str | None = None  # the volume this flow claimed (released when it ends)
    marked: bool = False  # this flow moved the volume to reverting
    revert_id: str = ""  # this revert's, kept with the volume while it runs


class _Task(Task[RevertContext]):
    def __init__(self, services: RevertServices) -> None:
        self.s = services


class ExtractRevertRequestTask(_Task):
    requires = ("volume_id", "snapshot_id")
    provides = ("volume", "snapshot")

    async def execute(self, c: RevertContext) -> None:
        volume = visible_volume(self.s.store, c.volume_id, c.ctx)
        snapshot = visible_snapshot(self.s.store, c.snapshot_id, c.ctx)
        check_revert(volume, snapshot, self.s.store.snapshots.of_volume(volume.id))
        c.claimed = claim_volume(self.s.store, volume, "reverting")
        c.volume, c.snapshot = volume, snapshot


class MarkRevertingTask(_Task):
    requires = ("volume", "snapshot")

    async def execute(self, c: RevertContext) -> None:
        volume, snapshot = c.volume, c.snapshot
        assert volume is not None and snapshot is not None
        check_revert(volume, snapshot, self.s.store.snapshots.of_volume(volume.id))
        check_volume_move(volume.status, V.REVERTING)
        volume.status, volume.reason, c.marked = V.REVERTING, None, True
        snapshot.move(P.RESTORING)
        c.revert_id = uuid.uuid4().hex
        REVERT_MARK_BEFORE_COMMIT()
        await save_both(self.s, volume, snapshot, c.revert_id)
        REVERT_MARK_AFTER_COMMIT()

    async def revert(self, c: RevertContext, failure: BaseException) -> None:
        volume, snapshot = c.volume, c.snapshot
        if c.marked and volume is not None and volume.status is V.REVERTING:
            volume.status = V.AVAILABLE  # nothing was sent: the bytes are as they were
            back = snapshot if snapshot is not None and snapshot.status is P.RESTORING \
                else None
            if back is not None:
                back.move(P.AVAILABLE)
            await save_both(self.s, volume, back)


class RevertCastTask(_Task):
    requires = ("volume", "snapshot")

    async def execute(self, c: RevertContext) -> None:
        volume, snapshot = c.volume, c.snapshot
        assert volume is not None and volume.host is not None and snapshot is not None
        REVERT_CAST_BEFORE_SEND()
        await self.s.send_to_node(volume.host, "node.revert_volume",
                                  NodeRevertVolume(volume.id, snapshot.id, c.revert_id), c.ctx)
        REVERT_CAST_AFTER_SEND()


def volume_revert_api(services: RevertServices) -> LinearFlow[RevertContext]:
    return LinearFlow(
        "volume_revert_api",
        [ExtractRevertRequestTask(services), MarkRevertingTask(services),
         RevertCastTask(services)],
        given=("volume_id", "snapshot_id", "ctx"),
    )
