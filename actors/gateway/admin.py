"""Admin actions on volumes, as Cinder's os-reset_status.

A crash at the wrong moment can leave a volume in a transitional status
(``creating``, ``deleting``, ``extending``); the reconciler
(``actors.gateway_reconcile``) moves such volumes on when no node is working on
them, and this is the manual tool for what it leaves alone. An admin resets a
volume to ``error`` (then deletes it, which also gives its quota back) or, if it
really reached a backend, to ``available``. It is a sharp tool, so it is narrow:
volumes that are attached or being attached are refused (their attachments
decide their status). A volume reset out of ``reverting`` gives its snapshot
back (``restoring`` → ``available``, in the same transaction).
"""

from __future__ import annotations

import logging

from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.revert import RevertServices, restoring_snapshot, save_both
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.volumes import Volume, VolumeResetState
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound

log = logging.getLogger(__name__)
RESET_TO = frozenset({V.AVAILABLE, V.ERROR})
ATTACHED = frozenset({V.RESERVED, V.ATTACHING, V.IN_USE, V.DETACHING})


class VolumeAdmin:
    def __init__(self, gw: GatewayServices, reverts: RevertServices) -> None:
        self.gw = gw
        self.reverts = reverts

    def handlers(self) -> dict[str, Handler]:
        return {"volume.reset_state": self.on_reset_state}

    async def on_reset_state(self, req: Request) -> Volume:
        body: VolumeResetState = req.body
        require_admin(req.ctx, "reset a volume's status")
        rec = self.gw.store.volumes.get(body.volume_id)
        if rec is None:
            raise NotFound(f"volume {body.volume_id} could not be found",
                           {"volume_id": body.volume_id})
        target = _target(body.status)
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


def _target(status: str) -> V:
    for target in RESET_TO:
        if target.value == status:
            return target
    raise InvalidInput(
        f"a volume can be reset to {sorted(s.value for s in RESET_TO)}, not {status!r}",
        {"field": "status"},
    )
