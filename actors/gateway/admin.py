"""Admin actions on volumes and snapshots, as Cinder's os-reset_status.

A crash at the wrong moment can leave a volume in a transitional status
(``creating``, ``deleting``, ``extending``, ``reverting``); the reconciler
(``actors.gateway.reconcile``) moves such volumes on when no node is working on
them, and this is the manual tool for what it leaves alone. An admin resets a
volume to ``error`` (then deletes it, which also gives its quota back) or, if it
really reached a backend, to ``available``. It is a sharp tool, so it is narrow:
volumes that are attached or being attached are refused (their attachments
decide their status). A volume reset out of ``reverting`` gives its snapshot
back (``restoring`` → ``available``, in the same transaction). A snapshot is
reset the same way (``cinder snapshot-reset-state``), to ``error`` or, if it is
on a backend, ``available``; one ``restoring`` is its volume's revert's, and is
refused (reset the volume).
"""

from __future__ import annotations

import logging
import time
from typing import TypeVar

from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.lifecycle_checks import snapshot_reset_target
from cinderblock.actors.gateway.revert import RevertServices, restoring_snapshot, save_both
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.lifecycle import Snapshot, SnapshotResetState
from cinderblock.protocol.messages.volumes import Volume, VolumeResetState
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound

log = logging.getLogger(__name__)
RESET_TO = frozenset({V.AVAILABLE, V.ERROR})
E = TypeVar("E", V, P)
ATTACHED = frozenset({V.RESERVED, V.ATTACHING, V.IN_USE, V.DETACHING})


class VolumeAdmin:
    def __init__(self, gw: GatewayServices, reverts: RevertServices) -> None:
        self.gw = gw
        self.reverts = reverts

    def handlers(self) -> dict[str, Handler]:
        return {"volume.reset_state": self.on_reset_state,
                "snapshot.reset_state": self.on_snapshot_reset_state}

    async def on_reset_state(self, req: Request) -> Volume:
        body: VolumeResetState = req.body
        require_admin(req.ctx, "reset a volume's status")
        rec = self.gw.store.volumes.get(body.volume_id)
        if rec is None:
            raise NotFound(f"volume {body.volume_id} could not be found",
                           {"volume_id": body.volume_id})
        target = _target(body.status, RESET_TO, "volume")
        if rec.status in ATTACHED:
            raise InvalidState(
                f"volume {rec.id} is {rec.status.value}; detach it instead of resetting it",
                {"status": rec.status.value},
            )
        if target is V.AVAILABLE and rec.host is None:
            raise InvalidState(
                f"volume {rec.id} never reached a backend; it can only be reset to error",
                {"status": rec.status.value},
            )
        log.warning("admin %s resets volume %s from %s to %s", req.ctx.user_id, rec.id,
                    rec.status.value, target.value)
        snapshot = restoring_snapshot(self.gw.store, rec.id) \
            if rec.status is V.REVERTING else None
        rec.reason = f"status reset by an admin (was {rec.status.value})"
        rec.status = target
        if snapshot is not None:
            snapshot.move(P.AVAILABLE)
        await save_both(self.reverts, rec, snapshot)
        return rec.view()

    async def on_snapshot_reset_state(self, req: Request) -> Snapshot:
        body: SnapshotResetState = req.body
        require_admin(req.ctx, "reset a snapshot's status")
        rec = self.gw.store.snapshots.get(body.snapshot_id)
        if rec is None:
            raise NotFound(f"snapshot {body.snapshot_id} could not be found",
                           {"snapshot_id": body.snapshot_id})
        target = snapshot_reset_target(rec, body.status)
        log.warning("admin %s resets snapshot %s from %s to %s", req.ctx.user_id, rec.id,
                    rec.status.value, target.value)
        rec.reason = f"status reset by an admin (was {rec.status.value})"
        rec.status, rec.updated_at = target, time.time()
        await self.gw.store.snapshots.save_status(rec)
        self.reverts.publish_snapshot(rec)
        return rec.view()


def _target(status: str, allowed: frozenset[E], kind: str) -> E:
    for target in allowed:
        if target.value == status:
            return target
    raise InvalidInput(
        f"a {kind} can be reset to {sorted(s.value for s in allowed)}, not {status!r}",
        {"field": "status"},
    )
