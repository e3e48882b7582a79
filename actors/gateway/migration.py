"""Cinder's volume migration (``os-migrate_volume``), the gateway's side: an admin moves
an available volume's data to another backend, and the volume keeps its id.

    volume_migrate_api  ExtractMigrateRequestTask → MarkMaintenanceTask
                          → ExportSourceTask → ReceiveCastTask

The checks are plain code (``check_migration``), made before the first change:
the volume is ``available`` (an attached one would need its compute host to swap
the attachment, Nova's part), has no snapshots (Cinder's rule: they cannot move with
it), and the destination is another backend that is up, enabled, in the volume's zone,
satisfies its type and has room. Then, in one transaction, the volume becomes
``maintenance`` and its migration row ``migrating`` (``migration_store``); its source
node exports it read-only, named by the migration (``node.export``: a client
certificate issued for this copy alone); and the destination node is told to copy it
(``node.receive_volume``): it reads the export with ``nbdcopy`` into a new file and
makes the volume known there only once whole. The answer comes then (Cinder's 202).

The destination reports ``volume.received``. On success one transaction moves the
volume (``host`` the destination, ``available``) and makes the row ``completing``;
then the source drops its old copy and the export (``node.drop_volume``, a call) and
the row says ``success``. On failure nothing moved: the volume is ``available`` on its
source again, the export closed, the row ``error`` with the reason. While a migration
is ``completing`` the volume is claimed (``lifecycle_checks.volume_busy``), so it is not
deleted before its old copy is dropped.

What a crash leaves is mended by the reconciler (``mend``): a migration ``migrating``
for longer than ``reconcile_after_s`` whose destination node is not copying it is
finished if that node holds the volume (its report was lost); if not, the copy is asked
of it again (``resend``: the source's export, idempotent, then the cast), twice at most
in one gateway process, and then the migration fails; one ``completing`` has its
source's drop sent again. Nothing is decided while the node that would know does not
answer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task, failure_text
from cinderblock.actors.gateway.guards import require_admin, require_reporter
from cinderblock.actors.gateway.lifecycle_checks import (
    check_group_member,
    claim_volume,
    release_claim,
    visible_volume,
)
from cinderblock.actors.gateway.migration_store import (
    RUNNING,
    MigrationRecord,
    MigrationStatus,
    RetypeTerms,
)
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Link, Request
from cinderblock.actors.runtime.config import host_of
from cinderblock.actors.runtime.database import all_committed
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.actors.scheduler.capacity import BackendStats, capacity_passes, wants_thin
from cinderblock.actors.scheduler.extra_specs import satisfies
from cinderblock.protocol.messages.attachments import NodeExport, NodeExportInfo, NodeUnexport
from cinderblock.protocol.messages.migration import (
    NodeDropVolume,
    NodeReceiveVolume,
    VolumeMigrate,
    VolumeReceived,
)
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import Empty, VolumeType
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, Forbidden, InvalidInput, InvalidState
from cinderblock.protocol.wire.schema import parse

log = logging.getLogger(__name__)
M = MigrationStatus
NO_BYTES_BACKENDS = frozenset({"null"})  # backends whose volumes hold no data to copy
MAX_RESENDS = 2  # copies a destination's restarts cut short asked again, per gateway process
MAX_HOST = 255  # Cinder's schema: host is a string of at most 255 characters

MARK_BEFORE_COMMIT = declare("gateway.volume_migrate.mark.before_commit")
MARK_AFTER_COMMIT = declare("gateway.volume_migrate.mark.after_commit")
CAST_AFTER_SEND = declare("gateway.volume_migrate.cast.after_send")
MOVED_BEFORE_COMMIT = declare("gateway.volume_received.before_commit")
MOVED_AFTER_COMMIT = declare("gateway.volume_received.after_commit")


# ---- the checks, as plain code ------------------------------------------------------


def destination_of(host: str) -> str:
    """The backend an admin names (``node@backend``, Cinder's ``#pool`` dropped)."""
    if not host or len(host) > MAX_HOST:
        raise InvalidInput(f"Invalid input for field/attribute host: {host[:80]!r} must be a "
                           f"backend's host@backend, of 1 to {MAX_HOST} characters",
                           {"field": "host"})
    backend = host.partition("#")[0]
    node, at, kind = backend.partition("@")
    if not node or not at or not kind:
        raise InvalidInput(f"host {host!r} names no backend: give it as host@backend "
                           "(as os-vol-host-attr:host shows it)", {"field": "host"})
    return backend


def check_movable(volume: VolumeRecord, snapshots: int) -> None:
    """Whether ``volume`` (with ``snapshots`` snapshots) may leave its backend now."""
    if volume.status is V.IN_USE:
        raise InvalidState(
            f"Volume {volume.id} is in-use: migrating an attached volume needs its compute "
            "host to swap the attachment (Nova's swap_volume), which this cluster does not "
            "do; detach it first", {"volume_id": volume.id, "status": volume.status.value})
    if volume.status is not V.AVAILABLE:
        raise InvalidState(f"Volume {volume.id} status must be available to migrate, not "
                           f"{volume.status.value}",
                           {"volume_id": volume.id, "status": volume.status.value})
    if volume.host is None:
        raise InvalidState(f"Volume {volume.id} is on no backend yet", {"volume_id": volume.id})
    if snapshots:
        raise InvalidState(f"Volume {volume.id} must not have snapshots to migrate "
                           f"({snapshots} found)", {"volume_id": volume.id})


def check_migration(volume: VolumeRecord, destination: str, snapshots: int,
                    backends: Sequence[Backend], vtype: VolumeType | None = None,
                    nodes: Collection[str] = ()) -> Backend:
    """Whether ``volume`` may move to ``destination`` now (``backends``: the scheduler's
    view; ``nodes``: the configured nodes' hosts), as a volume of ``vtype`` (a retype's
    new type; default its own); the destination's backend, or the error that says why
    not."""
    check_movable(volume, snapshots)
    vtype = vtype or volume.volume_type
    if destination == volume.host:
        raise InvalidInput("Destination host must be different than the current host.",
                           {"host": destination})
    backend = next((b for b in backends if b.backend == destination), None)
    if backend is None or not backend.up or backend.disabled:
        why = ("it is down" if backend is not None and not backend.up
               else "it is disabled" if backend is not None
               else f"node {host_of(destination)} has not reported to the scheduler: down, "
                    "or not heard from yet since it or the scheduler started"
               if host_of(destination) in nodes else "no such backend has reported")
        raise InvalidInput(f"No available service named '{destination}' ({why})",
                           {"host": destination})
    if backend.availability_zone != volume.availability_zone:
        raise InvalidInput(f"Destination backend {destination} is in availability zone "
                           f"{backend.availability_zone}; volume {volume.id} is in "
                           f"{volume.availability_zone}", {"host": destination})
    capabilities = {"thin_provisioning_support": backend.thin_provisioning_support,
                    **backend.capabilities}
    if not satisfies(capabilities, vtype.extra_specs):
        raise InvalidInput(f"Destination backend {destination} does not satisfy volume type "
                           f"{vtype.name}'s extra specs {dict(vtype.extra_specs)}",
                           {"host": destination})
    if not capacity_passes(_stats(backend), volume.size, wants_thin(vtype.extra_specs)):
        raise InvalidInput(f"Destination backend {destination} has no room for volume "
                           f"{volume.id} ({volume.size} GiB; {backend.free_capacity_gb:g} GiB "
                           "free)", {"host": destination})
    return backend


def retype_destination(volume: VolumeRecord, vtype: VolumeType, snapshots: int,
                       backends: Sequence[Backend]) -> Backend:
    """Where a retype to ``vtype`` that its backend does not satisfy moves ``volume``
    (Cinder's ``on-demand``): of the other backends that pass ``check_migration`` as
    that type, the one with the most free space (the scheduler's capacity weigher);
    ``InvalidInput`` saying why each other backend does not, if none does."""
    check_movable(volume, snapshots)
    fitting: list[Backend] = []
    refused: list[str] = []
    for backend in sorted(backends, key=lambda b: b.backend):
        if backend.backend == volume.host:
            continue
        try:
            fitting.append(check_migration(volume, backend.backend, snapshots, backends, vtype))
        except InvalidInput as exc:
            refused.append(exc.message)
    if not fitting:
        why = "; ".join(refused[:5]) or "no other backend has reported"
        raise InvalidInput(f"No valid backend to migrate volume {volume.id} to for its retype "
                           f"to type {vtype.name}: {why}",
                           {"volume_id": volume.id, "volume_type": vtype.name})
    return max(fitting, key=lambda b: (b.free_capacity_gb, b.backend))


def _stats(b: Backend) -> BackendStats:
    return BackendStats(b.backend, b.host, b.availability_zone, b.total_capacity_gb,
                        b.free_capacity_gb, b.allocated_capacity_gb, b.provisioned_capacity_gb,
                        b.reserved_percentage, b.thin_provisioning_support,
                        not b.thin_provisioning_support, b.max_over_subscription_ratio,
                        dict(b.capabilities), "", 0)


# ---- the flow -----------------------------------------------------------------------


class MigrationServices(Protocol):
    store: GatewayStore
    types: TypeCatalog

    @property
    def router(self) -> Link: ...
    @property
    def node_hosts(self) -> frozenset[str]: ...

    async def backends_seen(self, ctx: Context) -> list[Backend]: ...
    def publish(self, rec: VolumeRecord, push: bool = True) -> None: ...
    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]: ...
    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Awaitable[None]: ...


@dataclass(slots=True)
class MigrateContext:
    volume_id: str
    host: str
    ctx: Context
    volume: VolumeRecord | None = None
    destination: str = ""
    claimed: str | None = None
    migration: MigrationRecord | None = None
    source: NodeExportInfo | None = None  # None: the source holds no bytes
    retype: RetypeTerms | None = None  # a retype's migration: what its end does besides


class _Task(Task[MigrateContext]):
    def __init__(self, services: MigrationServices) -> None:
        self.s = services


class ExtractMigrateRequestTask(_Task):
    requires = ("volume_id", "host")
    provides = ("volume", "destination")

    async def execute(self, c: MigrateContext) -> None:
        require_admin(c.ctx, "migrate a volume")
        destination = destination_of(c.host)
        volume = visible_volume(self.s.store, c.volume_id, c.ctx)
        check_group_member(self.s.store, volume, "migrated")
        snapshots = len(self.s.store.snapshots.of_volume(volume.id))
        c.claimed = claim_volume(self.s.store, volume, "migrating")
        check_migration(volume, destination, snapshots, await self.s.backends_seen(c.ctx),
                        nodes=self.s.node_hosts)
        c.volume, c.destination = volume, destination


class MarkMaintenanceTask(_Task):
    """The volume ``maintenance`` and its migration ``migrating``: one transaction."""

    requires = ("volume", "destination")
    provides = ("migration",)

    async def execute(self, c: MigrateContext) -> None:
        volume = c.volume
        assert volume is not None and volume.host is not None
        snapshots = len(self.s.store.snapshots.of_volume(volume.id))
        if volume.status is not V.AVAILABLE or snapshots:  # changed while backends were read
            check_migration(volume, c.destination, snapshots, [])
        migration = MigrationRecord(volume.id, str(uuid.uuid4()), M.MIGRATING, volume.host,
                                    c.destination, None, time.time(), c.retype)
        volume.status, volume.reason = V.MAINTENANCE, None
        volume.migration_status = migration.status.value
        MARK_BEFORE_COMMIT()
        await all_committed(self.s.store.queue_status(volume),
                     self.s.store.migrations.queue_save(migration))
        MARK_AFTER_COMMIT()
        c.migration = migration
        self.s.publish(volume)

    async def revert(self, c: MigrateContext, failure: BaseException) -> None:
        volume, migration = c.volume, c.migration
        if volume is None or migration is None:
            return
        await end_in_error(self.s, volume, migration, f"the migration could not start: "
                           f"{failure_text(failure)}")


class ExportSourceTask(_Task):
    """The source node serves the volume read-only to this migration's certificate."""

    requires = ("migration",)
    provides = ("source",)

    async def execute(self, c: MigrateContext) -> None:
        migration = c.migration
        assert migration is not None
        if migration.source.partition("@")[2] in NO_BYTES_BACKENDS:
            return
        reply = await self.s.node_call(host_of(migration.source), "node.export",
                                       NodeExport(migration.volume_id, migration.migration_id,
                                                  readonly=True), c.ctx)
        c.source = parse(NodeExportInfo, reply, strict=False)


class ReceiveCastTask(_Task):
    requires = ("migration", "volume")

    async def execute(self, c: MigrateContext) -> None:
        migration, volume = c.migration, c.volume
        assert migration is not None and volume is not None
        await self.s.send_to_node(migration.destination, "node.receive_volume",
                                  NodeReceiveVolume(volume.id, migration.migration_id,
                                                    volume.size, c.source), c.ctx)
        CAST_AFTER_SEND()


def volume_migrate_api(s: MigrationServices) -> LinearFlow[MigrateContext]:
    return LinearFlow(
        "volume_migrate_api",
        [ExtractMigrateRequestTask(s), MarkMaintenanceTask(s), ExportSourceTask(s),
         ReceiveCastTask(s)],
        given=("volume_id", "host", "ctx"),
    )


def volume_migrate_resend(s: MigrationServices) -> LinearFlow[MigrateContext]:
    """A copy its destination's restart cut short, asked for again: the source's export
    (the same answer again, or served anew) and the cast to the destination."""
    return LinearFlow(
        "volume_migrate_resend", [ExportSourceTask(s), ReceiveCastTask(s)],
        given=("volume_id", "host", "ctx", "volume", "migration"),
    )


def volume_retype_migrate(s: MigrationServices) -> LinearFlow[MigrateContext]:
    """A retype's migration (``os-retype`` under ``on-demand``): the retype's flow has
    checked the request, claimed the volume, chosen the destination and reserved the
    new type's quota."""
    return LinearFlow(
        "volume_retype_migrate",
        [MarkMaintenanceTask(s), ExportSourceTask(s), ReceiveCastTask(s)],
        given=("volume_id", "host", "ctx", "volume", "destination"),
    )


async def end_in_error(s: MigrationServices, volume: VolumeRecord, migration: MigrationRecord,
                       reason: str) -> None:
    """Nothing moved: the volume available on its source again, its export closed, the
    migration ``error`` and why."""
    failed = migration.moved_to(M.ERROR, reason)
    writes = [s.store.migrations.queue_save(failed)]
    if migration.retype is not None:  # the volume keeps its type: the new one's quota back
        writes.append(s.store.journal.owe_rollback(migration.retype.reservation_id,
                                                   volume.project_id))
    if volume.status is V.MAINTENANCE and volume.host == migration.source:
        volume.status, volume.reason = V.AVAILABLE, f"migration to {migration.destination} " \
                                                    f"failed: {reason}"
        writes.append(s.store.queue_status(volume))
    volume.migration_status = failed.status.value
    await all_committed(*writes)
    log.warning("migration of volume %s to %s failed: %s", volume.id, migration.destination,
                reason)
    s.publish(volume)
    _unexport(s, migration)


def _unexport(s: MigrationServices, migration: MigrationRecord) -> None:
    if migration.source.partition("@")[2] not in NO_BYTES_BACKENDS:
        s.cast_to_node(migration.source, "node.unexport",
                       NodeUnexport(migration.volume_id, migration.migration_id),
                       _admin())


def _admin() -> Context:
    return Context(project_id="admin", user_id="cinderblock", roles=("admin",))


# ---- the ops, the destination's report, and the mending ----------------------------


ProbeVolume = Callable[[str, str], Awaitable[tuple[bool, bool] | None]]


class GatewayMigrations:
    """The ``volume.migrate`` op and the destination node's ``volume.received``."""

    def __init__(self, s: MigrationServices) -> None:
        self.s = s
        self.store = s.store
        self.flow = volume_migrate_api(s)
        self.retype_flow = volume_retype_migrate(s)
        self.resend_flow = volume_migrate_resend(s)
        self._resent: Counter[str] = Counter()  # migration id -> copies asked again

    def handlers(self) -> dict[str, Handler]:
        return {"volume.migrate": self.on_migrate, "volume.received": self.on_received}

    async def on_migrate(self, req: Request) -> Empty:
        body: VolumeMigrate = req.body
        c = MigrateContext(body.volume_id, body.host, req.ctx)
        try:
            await self.s.run_flow(self.flow, c, body.volume_id, req.ctx)
        finally:
            release_claim(self.store, c.claimed)
        return Empty()

    async def start_for_retype(self, volume: VolumeRecord, destination: str,
                               terms: RetypeTerms, ctx: Context) -> None:
        """Move ``volume`` (claimed by its retype) to ``destination``; at the end it takes
        the new type (``terms``). Once this returns the migration holds the reservation;
        if it raises, nothing changed and the reservation is rolled back."""
        c = MigrateContext(volume.id, destination, ctx, volume, destination, retype=terms)
        await self.s.run_flow(self.retype_flow, c, volume.id, ctx)

    async def on_received(self, req: Request) -> None:
        body: VolumeReceived = req.body
        require_reporter(req, self.s.router, self.s.node_hosts)
        migration = self.store.migrations.of_volume(body.volume_id)
        if migration is None or migration.migration_id != body.migration_id \
                or migration.status is not M.MIGRATING:
            self._stale(req.peer, body, migration)
            return
        if host_of(migration.destination) != req.peer:
            raise Forbidden(f"volume.received from {req.peer} about a migration to "
                            f"{migration.destination}", {"op": "volume.received"})
        volume = self.store.volumes.get(body.volume_id)
        if volume is None or volume.status is not V.MAINTENANCE:
            # reset by an admin meanwhile: the volume stays where its record says
            if body.reason is None:
                self._drop_copy(migration.destination, migration)
            if volume is not None:
                await end_in_error(self.s, volume, migration,
                                   "the volume's status was reset while it was copied")
            return
        if body.reason is not None:
            await end_in_error(self.s, volume, migration, body.reason)
            return
        await self.finish(volume, migration)

    def _stale(self, peer: str, body: VolumeReceived, migration: MigrationRecord | None
               ) -> None:
        """A report of a migration that is not running (a late or repeated one): a copy
        it made that no volume lives in is dropped."""
        volume = self.store.volumes.get(body.volume_id)
        lives_there = volume is not None and volume.host is not None \
            and host_of(volume.host) == peer
        going_there = migration is not None and migration.status in RUNNING \
            and host_of(migration.destination) == peer  # that copy is the running one's
        keep = lives_there or going_there or body.reason is not None
        log.info("volume.received from %s for volume %s, migration %s: not running; %s",
                 peer, body.volume_id, body.migration_id,
                 "ignored" if keep else "its copy dropped")
        if not keep and peer in self.s.node_hosts:
            self.s.cast_to_node(peer, "node.drop_volume",
                                NodeDropVolume(body.volume_id, body.migration_id), _admin())

    def _drop_copy(self, backend: str, migration: MigrationRecord) -> None:
        self.s.cast_to_node(backend, "node.drop_volume",
                            NodeDropVolume(migration.volume_id, migration.migration_id),
                            _admin())

    async def finish(self, volume: VolumeRecord, migration: MigrationRecord) -> None:
        """The volume lives on its destination (one transaction), then its source's copy
        goes."""
        terms = migration.retype
        new_type = None if terms is None else self.s.types.by_id.get(terms.new_type_id)
        if terms is not None and new_type is None:  # cannot be: a type in use stays
            await end_in_error(self.s, volume, migration,
                               f"volume type {terms.new_type_id} is gone")
            self._drop_copy(migration.destination, migration)
            return
        completing = migration.moved_to(M.COMPLETING)
        volume.host, volume.status, volume.reason = migration.destination, V.AVAILABLE, None
        volume.migration_status = completing.status.value
        MOVED_BEFORE_COMMIT()
        writes = [self.store.queue_status(volume), self.store.migrations.queue_save(completing)]
        if terms is not None and new_type is not None:  # the retype's end, with the move
            volume.volume_type = new_type
            writes += self.store.queue_retype(volume, [], terms.reservation_id, terms.released)
        await all_committed(*writes)
        MOVED_AFTER_COMMIT()
        self.s.publish(volume)
        log.info("volume %s moved from %s to %s", volume.id, migration.source,
                 migration.destination)
        await self.drop_source(completing)

    async def drop_source(self, migration: MigrationRecord) -> bool:
        """The source node drops its old copy (and the export); the migration ``success``.
        False if the node did not (the reconciler asks again)."""
        try:
            await self.s.node_call(host_of(migration.source), "node.drop_volume",
                                   NodeDropVolume(migration.volume_id, migration.migration_id),
                                   _admin())
        except CinderblockError as exc:
            log.warning("volume %s: its old copy on %s stays until the node drops it: %s",
                        migration.volume_id, migration.source, exc.message)
            return False
        if self.store.migrations.of_volume(migration.volume_id) != migration:
            return True  # the volume was deleted meanwhile, or migrated again
        done = migration.moved_to(M.SUCCESS)
        await self.store.migrations.queue_save(done)
        volume = self.store.volumes.get(migration.volume_id)
        if volume is not None:
            volume.migration_status = done.status.value
            self.s.publish(volume, push=False)
        return True

    async def mend(self, before: float, probe: ProbeVolume) -> list[str]:
        """The migrations a crash cut short (see the module text); the volumes acted on."""
        acted: list[str] = []
        running = self.store.migrations.running()
        ids = {m.migration_id for m in running}  # the resends of ended ones are forgotten
        self._resent = Counter({mid: n for mid, n in self._resent.items() if mid in ids})
        for migration in running:
            if migration.updated_at >= before:
                continue
            if migration.status is M.COMPLETING:
                if await self.drop_source(migration):
                    acted.append(migration.volume_id)
                continue
            answer = await probe(host_of(migration.destination), migration.volume_id)
            if answer is None or answer[0]:
                continue  # not answering, or still copying: it may yet report
            if self.store.migrations.of_volume(migration.volume_id) != migration:
                continue  # its report came meanwhile
            volume = self.store.volumes.get(migration.volume_id)
            if volume is None:
                continue
            acted.append(volume.id)
            if answer[1] and volume.status is V.MAINTENANCE:
                log.warning("reconcile: volume %s is whole on %s, its report lost: moved",
                            volume.id, migration.destination)
                await self.finish(volume, migration)
            elif not answer[1] and volume.status is V.MAINTENANCE \
                    and self._resent[migration.migration_id] < MAX_RESENDS:
                await self.resend(volume, migration)
            else:
                if answer[1]:
                    self._drop_copy(migration.destination, migration)
                await end_in_error(self.s, volume, migration,
                                   "the copy to the destination was cut short")
        return acted

    async def resend(self, volume: VolumeRecord, migration: MigrationRecord) -> None:
        """The copy asked of the destination again (it restarted and lost it; the
        volume is still whole on its source): the migration's clock starts again, so
        the next look waits ``reconcile_after_s`` more. ``MAX_RESENDS`` times, then the
        migration fails as before."""
        self._resent[migration.migration_id] += 1
        log.warning("reconcile: the copy of volume %s to %s was cut short: asked again "
                    "(%d of %d)", volume.id, migration.destination,
                    self._resent[migration.migration_id], MAX_RESENDS)
        again = migration.moved_to(M.MIGRATING)
        await self.store.migrations.queue_save(again)
        c = MigrateContext(volume.id, migration.destination, _admin(), volume,
                           migration.destination, migration=again)
        try:
            await self.s.run_flow(self.resend_flow, c, volume.id, c.ctx)
        except CinderblockError as exc:  # a node down: the next look tries again
            log.warning("reconcile: asking again for the copy of volume %s failed: %s",
                        volume.id, exc.message)

