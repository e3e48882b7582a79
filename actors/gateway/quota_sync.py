"""``quota sync``: the gateway counts what a project has and the quota actor
takes that as its usage. The count is plain code (``count_usage``) over the stores'
totals (``RowRecords.totals``: memory's records and SQLite's sum of the other rows,
taken on the loop at one instant, no record made per row).

The quota changes the gateway owes the project are sent first and waited for
(``SETTLE_S`` at most; they would otherwise linger for the next quota call:
``quota_journal.py``). A project with work in progress is refused: a create
between its entry and its quota commit, a delete between its row and its release,
or an extend would be counted in a state its reservation is about to change. With nothing
in a transitional status the count is exact: the gateway is one thread, so
the count is taken at one instant, and every quota change the gateway sent
before it reaches the quota actor first (one connection, in order); the
changes that follow start with a reservation, which a sync leaves alone.
"""

from __future__ import annotations

from dataclasses import replace

from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.row_records import Totals
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.gateway.typed_quota import by_name
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.quota import add_amounts, typed_resource
from cinderblock.protocol.messages.quota_sync import QuotaSync, QuotaSyncResult, QuotaSyncUsage
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from cinderblock.protocol.wire.schema import parse

SETTLE_S = 5.0  # how long a sync waits for the project's owed quota changes to be taken
VOLUME_BUSY = frozenset(s.value for s in (V.CREATING, V.DELETING, V.UNMANAGING, V.EXTENDING,
                                          V.DELETED))
SNAPSHOT_BUSY = frozenset(s.value for s in (P.CREATING, P.DELETING, P.UNMANAGING, P.DELETED))


def count_usage(volumes: Totals, snapshots: Totals) -> dict[str, int]:
    """A project's volumes, snapshots and gigabytes (both count), as Cinder's usage,
    and each volume type's own (``volumes_<type id>`` ...); raises InvalidState if one
    of them is in the middle of a change."""
    for kind, totals in (("volume", volumes), ("snapshot", snapshots)):
        if totals.busy is not None:
            object_id, status = totals.busy
            raise InvalidState(f"{kind} {object_id} is {status}: sync the quota when the "
                               "project's work in progress is done", {"id": object_id})
    return add_amounts([
        {"volumes": volumes.count, "snapshots": snapshots.count,
         "gigabytes": volumes.size + snapshots.size},
        *({typed_resource("volumes", type_id): count, typed_resource("gigabytes", type_id): size}
          for type_id, (count, size) in volumes.by_type.items() if type_id),
        *({typed_resource("snapshots", type_id): count,
           typed_resource("gigabytes", type_id): size}
          for type_id, (count, size) in snapshots.by_type.items() if type_id)])


class QuotaSyncer:
    def __init__(self, gw: GatewayServices) -> None:
        self.gw = gw

    def handlers(self) -> dict[str, Handler]:
        return {"quota.sync": self.on_sync}

    async def on_sync(self, req: Request) -> QuotaSyncResult:
        body: QuotaSync = req.body
        require_admin(req.ctx, "sync quotas")
        if not body.project:
            raise InvalidInput("a project is required", {"field": "project"})
        store = self.gw.store
        if store.journal.owes(body.project):  # sent now, not after they linger
            await store.journal.settle(body.project, within=SETTLE_S)
        usage = count_usage(store.volumes.totals(body.project, VOLUME_BUSY),
                            store.snapshots.totals(body.project, SNAPSHOT_BUSY))
        if store.journal.owes(body.project):
            raise InvalidState(f"quota changes of {body.project} are still being sent to the "
                               "quota actor; sync when they are taken",
                               {"project": body.project})
        reply = await self.gw.quota_call("quota.sync_usage", QuotaSyncUsage(
            body.project, usage, body.dry_run), req.ctx, timeout=10.0)
        result = parse(QuotaSyncResult, reply, strict=False)
        return replace(result, before=by_name(result.before, self.gw.types),
                       after=by_name(result.after, self.gw.types))
