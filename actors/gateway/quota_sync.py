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

``count_types_own`` does the same, once, for the projects a gateway.db from before
volume types had quota of their own lists: their types' own usage is set to what they
have (``quota.sync_usage`` of those resources only).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.row_records import Totals
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.gateway.typed_quota import by_name
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.quota import add_amounts, split_typed, typed_resource
from cinderblock.protocol.messages.quota_sync import QuotaSync, QuotaSyncResult, QuotaSyncUsage
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput, InvalidState
from cinderblock.protocol.wire.schema import parse

SETTLE_S = 5.0  # how long a sync waits for the project's owed quota changes to be taken
RECOUNT_S = 10.0  # how long a project with work in progress waits for its count
COUNTING_CONTEXT = Context(project_id="admin", user_id="cinderblock-type-quota-count",
                           roles=("admin",))
log = logging.getLogger(__name__)
VOLUME_BUSY = frozenset(s.value for s in (V.CREATING, V.DELETING, V.UNMANAGING, V.EXTENDING,
                                          V.DELETED))
SNAPSHOT_BUSY = frozenset(s.value for s in (P.CREATING, P.DELETING, P.UNMANAGING, P.DELETED))


def count_usage(volumes: Totals, snapshots: Totals, backups: tuple[int, int] = (0, 0),
                groups: int = 0) -> dict[str, int]:
    """A project's volumes, snapshots and gigabytes (both count), as Cinder's usage,
    and each volume type's own (``volumes_<type id>`` ...), and its backups and their
    GiB (``backups``: count and GiB; a backup's quota is committed with its row and
    released with its removal, so every backup row counts), and its groups (each row
    counts, as a backup's does); raises InvalidState if a
    volume or snapshot is in the middle of a change."""
    for kind, totals in (("volume", volumes), ("snapshot", snapshots)):
        if totals.busy is not None:
            object_id, status = totals.busy
            raise InvalidState(f"{kind} {object_id} is {status}: sync the quota when the "
                               "project's work in progress is done", {"id": object_id})
    return add_amounts([
        {"volumes": volumes.count, "snapshots": snapshots.count,
         "gigabytes": volumes.size + snapshots.size, "backups": backups[0],
         "backup_gigabytes": backups[1], "groups": groups},
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
        usage = await self._counted(body.project)
        reply = await self.gw.quota_call("quota.sync_usage", QuotaSyncUsage(
            body.project, usage, body.dry_run), req.ctx, timeout=10.0)
        result = parse(QuotaSyncResult, reply, strict=False)
        return replace(result, before=by_name(result.before, self.gw.types),
                       after=by_name(result.after, self.gw.types))

    async def _counted(self, project: str) -> dict[str, int]:
        """What ``project`` has, once the quota changes the gateway owes it are taken
        (``InvalidState`` while work is in progress or they are not)."""
        store = self.gw.store
        if store.journal.owes(project):  # sent now, not after they linger
            await store.journal.settle(project, within=SETTLE_S)
        usage = count_usage(store.volumes.totals(project, VOLUME_BUSY),
                            store.snapshots.totals(project, SNAPSHOT_BUSY),
                            store.backups.usage(project),
                            sum(1 for g in store.groups.by_id.values() if g.project_id == project))
        if store.journal.owes(project):
            raise InvalidState(f"quota changes of {project} are still being sent to the "
                               "quota actor; sync when they are taken", {"project": project})
        return usage

    async def count_types_own(self) -> None:
        """Once, for a gateway.db from before volume types had quota of their own: each
        project it lists (``types_own_quota_uncounted``) has its types' own usage counted
        and set, as ``quota sync`` would (the general usage is left alone), and is crossed
        off; a project with work in progress, or a quota actor away, is tried again."""
        store = self.gw.store
        while projects := await store.types_own_quota_uncounted():
            left = False
            for project in projects:
                try:
                    usage = await self._counted(project)
                    typed = {r: n for r, n in usage.items() if split_typed(r) is not None}
                    await self.gw.quota_call("quota.sync_usage", QuotaSyncUsage(
                        project, typed), COUNTING_CONTEXT, timeout=10.0)
                except CinderblockError as exc:
                    log.info("volume types' own quota of %s not counted yet: %s", project,
                             exc.message)
                    left = True
                    continue
                await store.types_own_quota_counted(project)
                log.warning("volume types' own quota of %s counted: %s", project, typed)
            if left:
                await asyncio.sleep(RECOUNT_S)
