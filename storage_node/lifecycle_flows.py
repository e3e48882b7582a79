"""The storage node's side of delete, extend, revert and snapshots: five flows, named as
Cinder's.

    volume_delete_manager    OnFailureReportTask(error_deleting)
                               → NotifyActionTask(volume.delete.start) → DeleteVolumeTask
                               → DeleteVolumeOnFinishTask(volume.delete.end)
                             (an unmanage: the same, with the driver's unmanage_volume,
                             volume.unmanage.* and, on failure, ``error``)
    volume_extend_manager    OnFailureReportTask(error_extending) → ExtendCapacityCheckTask
                               → NotifyActionTask(volume.resize.start) → ExtendVolumeTask
                               → ExtendVolumeOnFinishTask(volume.resize.end)
    volume_revert_manager    OnFailureReportTask(error)
                               → NotifyActionTask(volume.revert.start) → RevertVolumeTask
                               → RevertVolumeOnFinishTask(volume.revert.end)
    snapshot_create_manager  OnFailureReportTask(error)
                               → NotifyActionTask(snapshot.create.start) → CreateSnapshotTask
                               → CreateSnapshotOnFinishTask(snapshot.create.end)
                             (a manage: the driver's manage_existing_snapshot,
                             snapshot.manage_existing.*; its revert gives the data back
                             under its old name)
    snapshot_delete_manager  OnFailureReportTask(error_deleting)
                               → NotifyActionTask(snapshot.delete.start) → DeleteSnapshotTask
                               → DeleteSnapshotOnFinishTask(snapshot.delete.end)
                             (an unmanage: the driver's unmanage_snapshot,
                             snapshot.unmanage.* and, on failure, ``error``)

The first task of each flow does nothing on the way forward; its revert tells
the gateway what the failure left: ``error_deleting`` (a second delete retries
it), ``error_extending``, or, when the extend did not fit on this backend,
``available`` at the old size with the reason (the gateway rolls the quota
back either way); a failed revert leaves the volume ``error`` (its bytes are
then its own or the snapshot's, whole: the driver replaces the file at once).
The finishing tasks report success; the gateway then drops the row and gives
the quota back, commits the extend's reservation, or makes the reverted volume
available. Every change publishes fresh capacity stats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.runtime.actor import Handler, Link, Request
from cinderblock.actors.runtime.events import EventPublisher
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.actors.scheduler.capacity import capacity_passes, stats_from_message
from cinderblock.protocol.messages.groups import NodeCreateGroupSnapshot
from cinderblock.protocol.messages.lifecycle import (
    NodeCreateSnapshot,
    NodeDeleteSnapshot,
    NodeDeleteVolume,
    NodeExtendVolume,
    NodeRevertVolume,
    SnapshotRef,
    SnapshotUpdate,
    VolumeExtended,
    VolumeReverted,
)
from cinderblock.protocol.messages.scheduling import BackendStatsMsg
from cinderblock.protocol.messages.volumes import VolumeRef, VolumeUpdate
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import Context
from cinderblock.storage_node.backends import Driver, DriverError
from cinderblock.storage_node.group_snapshot_flows import (
    GroupSnapshotOpContext,
    group_snapshot_create_manager,
)

log = logging.getLogger(__name__)


class LifecycleServices(Protocol):
    """What the five flows use of their storage node (``StorageNode`` is one)."""

    @property
    def backend_id(self) -> str: ...
    @property
    def driver(self) -> Driver: ...
    @property
    def gateway(self) -> Link: ...
    @property
    def events(self) -> EventPublisher: ...

    def stats(self) -> BackendStatsMsg: ...
    def begin_create(self, volume_id: str, size: int, epoch: str, seq: int) -> None: ...
    def end_create(self, volume_id: str) -> None: ...
    def recount_volumes(self) -> None: ...
    def stats_changed(self) -> None: ...
    def working(self, *ids: str) -> AbstractContextManager[None]: ...
    def fenced_out(self, object_id: str, fence: str) -> bool: ...
    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]: ...
    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]: ...


class InsufficientCapacity(Exception):
    """The backend cannot take the extra space an extend asks for."""


def extend_fits(stats: BackendStatsMsg, grow_gb: int) -> bool:
    """Cinder's capacity filter, asked again on the node for the extra GiB."""
    view = stats_from_message(stats, counted=False)
    return capacity_passes(view, grow_gb, thin=stats.thin_provisioning_support)


@dataclass(slots=True)
class VolumeOpContext:
    ctx: Context
    volume_id: str
    size: int = 0
    new_size: int = 0
    reservation_id: str = ""
    unmanage: bool = False  # a delete that keeps the bytes (Cinder's unmanage)
    done: bool = False


@dataclass(slots=True)
class RevertContext:
    ctx: Context
    volume_id: str
    snapshot_id: str
    revert_id: str
    done: bool = False


@dataclass(slots=True)
class SnapshotOpContext:
    ctx: Context
    snapshot_id: str
    volume_id: str
    size: int = 0
    manage_ref: str | None = None  # a create that adopts what the backend holds so
    unmanage: bool = False  # a delete that keeps the bytes (Cinder's unmanage)
    done: bool = False


C = TypeVar("C", VolumeOpContext, SnapshotOpContext, RevertContext)
Report = Callable[[Any, BaseException], tuple[str, object]]  # (ctx, failure) -> (op, body)


DELETE_BEFORE_REPORT = declare("node.delete_volume.before_report")
DELETE_AFTER_REPORT = declare("node.delete_volume.after_report")
EXTEND_BEFORE_REPORT = declare("node.extend_volume.before_report")
EXTEND_AFTER_REPORT = declare("node.extend_volume.after_report")
REVERT_BEFORE_REPORT = declare("node.revert_volume.before_report")
REVERT_AFTER_REPORT = declare("node.revert_volume.after_report")
SNAPSHOT_CREATE_BEFORE_REPORT = declare("node.create_snapshot.before_report")
SNAPSHOT_CREATE_AFTER_REPORT = declare("node.create_snapshot.after_report")
SNAPSHOT_DELETE_BEFORE_REPORT = declare("node.delete_snapshot.before_report")
SNAPSHOT_DELETE_AFTER_REPORT = declare("node.delete_snapshot.after_report")

class _NodeTask(Task[C]):
    def __init__(self, services: NodeLifecycle) -> None:
        self.s = services


class OnFailureReportTask(_NodeTask[C]):
    """Nothing on the way forward; on failure, tells the gateway what was left."""

    def __init__(self, services: NodeLifecycle, report: Report) -> None:
        super().__init__(services)
        self.report = report

    async def execute(self, c: C) -> None:
        """The work is in revert."""

    async def revert(self, c: C, failure: BaseException) -> None:
        op, body = self.report(c, failure)
        self.s.tell_gateway(op, body, c.ctx)


class NotifyActionTask(_NodeTask[C]):
    """Notifies `event`, or what `event(c)` names."""

    def __init__(self, services: NodeLifecycle, event: str | Callable[[C], str]) -> None:
        super().__init__(services)
        self.event: str | Callable[[C], str] = event

    async def execute(self, c: C) -> None:
        self.s.notify(c, self.event if isinstance(self.event, str) else self.event(c))


# ---- volumes ----------------------------------------------------------------


class DeleteVolumeTask(_NodeTask[VolumeOpContext]):
    async def execute(self, c: VolumeOpContext) -> None:
        if c.unmanage:  # the bytes stay on the backend, under a name of their own
            kept = await self.s.node.driver.unmanage_volume(c.volume_id)
            log.info("volume %s unmanaged: its data is kept as %s", c.volume_id, kept)
        else:
            await self.s.node.driver.delete_volume(c.volume_id)  # a missing volume is fine
        c.done = True


class DeleteVolumeOnFinishTask(_NodeTask[VolumeOpContext]):
    async def execute(self, c: VolumeOpContext) -> None:
        self.s.changed()
        DELETE_BEFORE_REPORT()
        self.s.tell_gateway("volume.deleted", VolumeRef(c.volume_id), c.ctx)
        DELETE_AFTER_REPORT()
        self.s.notify(c, _delete_event("end")(c))


class ExtendCapacityCheckTask(_NodeTask[VolumeOpContext]):
    async def execute(self, c: VolumeOpContext) -> None:
        # from the size the backend holds: an extend sent again (its first send grew
        # the volume, its report was lost) needs no more room
        grow = max(0, c.new_size - max(c.size, self.s.node.driver.size_of(c.volume_id) or 0))
        if not extend_fits(self.s.node.stats(), grow):
            raise InsufficientCapacity(
                f"{self.s.node.backend_id} has no room to grow volume {c.volume_id} "
                f"by {grow} GiB"
            )
        self.s.node.begin_create(c.volume_id, grow, "", 0)  # in flight until it is done

    async def revert(self, c: VolumeOpContext, failure: BaseException) -> None:
        self.s.node.end_create(c.volume_id)


class ExtendVolumeTask(_NodeTask[VolumeOpContext]):
    async def execute(self, c: VolumeOpContext) -> None:
        await self.s.node.driver.extend_volume(c.volume_id, c.new_size)
        c.done = True


class ExtendVolumeOnFinishTask(_NodeTask[VolumeOpContext]):
    async def execute(self, c: VolumeOpContext) -> None:
        self.s.node.end_create(c.volume_id)
        self.s.changed()
        body = VolumeExtended(c.volume_id, c.new_size, c.reservation_id)
        EXTEND_BEFORE_REPORT()
        self.s.tell_gateway("volume.extended", body, c.ctx)
        EXTEND_AFTER_REPORT()
        self.s.notify(c, "volume.resize.end")


def _delete_event(phase: str) -> Callable[[VolumeOpContext], str]:
    """``volume.delete.<phase>``, or ``volume.unmanage.<phase>`` for an unmanage."""
    return lambda c: f"volume.{'unmanage' if c.unmanage else 'delete'}.{phase}"


def _delete_failed(c: VolumeOpContext, failure: BaseException) -> tuple[str, object]:
    status = V.ERROR if c.unmanage else V.ERROR_DELETING  # an unmanage may be asked again
    return "volume.update", VolumeUpdate(c.volume_id, status, None, str(failure))


def _extend_failed(c: VolumeOpContext, failure: BaseException) -> tuple[str, object]:
    status = V.AVAILABLE if isinstance(failure, InsufficientCapacity) else V.ERROR_EXTENDING
    body = VolumeExtended(c.volume_id, c.new_size, c.reservation_id, status, str(failure))
    return "volume.extended", body


class RevertVolumeTask(_NodeTask[RevertContext]):
    async def execute(self, c: RevertContext) -> None:
        await self.s.node.driver.revert_to_snapshot(c.volume_id, c.snapshot_id)
        c.done = True


class RevertVolumeOnFinishTask(_NodeTask[RevertContext]):
    async def execute(self, c: RevertContext) -> None:
        self.s.changed()
        REVERT_BEFORE_REPORT()
        self.s.tell_gateway("volume.reverted",
                            VolumeReverted(c.volume_id, c.snapshot_id, c.revert_id), c.ctx)
        REVERT_AFTER_REPORT()
        self.s.notify(c, "volume.revert.end")


def _revert_failed(c: RevertContext, failure: BaseException) -> tuple[str, object]:
    return "volume.reverted", VolumeReverted(c.volume_id, c.snapshot_id, c.revert_id, V.ERROR,
                                             str(failure))


# ---- snapshots --------------------------------------------------------------


class CreateSnapshotTask(_NodeTask[SnapshotOpContext]):
    async def execute(self, c: SnapshotOpContext) -> None:
        driver = self.s.node.driver
        if c.manage_ref is not None:
            await driver.manage_existing_snapshot(c.snapshot_id, c.volume_id, c.manage_ref,
                                                  c.size)
        else:  # a guest's writes wait meanwhile: the snapshot is of one instant
            async with self.s.writes_held((c.volume_id,)):
                await driver.create_snapshot(c.snapshot_id, c.volume_id)
        c.done = True

    async def revert(self, c: SnapshotOpContext, failure: BaseException) -> None:
        if c.done and c.manage_ref is not None:  # given back under its old name
            await self.s.node.driver.unmanage_snapshot(c.snapshot_id, c.manage_ref)
        elif c.done:  # a failed create leaves nothing (files are built under a temp name)
            await self.s.node.driver.delete_snapshot(c.snapshot_id)


class CreateSnapshotOnFinishTask(_NodeTask[SnapshotOpContext]):
    async def execute(self, c: SnapshotOpContext) -> None:
        self.s.changed()
        SNAPSHOT_CREATE_BEFORE_REPORT()
        self.s.tell_gateway("snapshot.update", SnapshotUpdate(c.snapshot_id, P.AVAILABLE), c.ctx)
        SNAPSHOT_CREATE_AFTER_REPORT()
        self.s.notify(c, _snapshot_event("create", "end")(c))


class DeleteSnapshotTask(_NodeTask[SnapshotOpContext]):
    async def execute(self, c: SnapshotOpContext) -> None:
        if c.unmanage:  # the bytes stay on the backend, under a name of their own
            kept = await self.s.node.driver.unmanage_snapshot(c.snapshot_id)
            log.info("snapshot %s unmanaged: its data is kept as %s", c.snapshot_id, kept)
        else:
            await self.s.node.driver.delete_snapshot(c.snapshot_id)  # a missing one is fine
        c.done = True


class DeleteSnapshotOnFinishTask(_NodeTask[SnapshotOpContext]):
    async def execute(self, c: SnapshotOpContext) -> None:
        self.s.changed()
        SNAPSHOT_DELETE_BEFORE_REPORT()
        self.s.tell_gateway("snapshot.deleted", SnapshotRef(c.snapshot_id), c.ctx)
        SNAPSHOT_DELETE_AFTER_REPORT()
        self.s.notify(c, _snapshot_event("delete", "end")(c))


def _snapshot_event(action: str, phase: str) -> Callable[[SnapshotOpContext], str]:
    """``snapshot.<action>.<phase>``; a manage's ``snapshot.manage_existing.<phase>``, an
    unmanage's ``snapshot.unmanage.<phase>`` (Cinder's names)."""
    def event(c: SnapshotOpContext) -> str:
        what = "manage_existing" if c.manage_ref is not None else \
            "unmanage" if c.unmanage else action
        return f"snapshot.{what}.{phase}"

    return event


def _snapshot_failed(status: P) -> Report:
    def report(c: SnapshotOpContext, failure: BaseException) -> tuple[str, object]:
        failed = P.ERROR if c.unmanage else status  # an unmanage may be asked again
        return "snapshot.update", SnapshotUpdate(c.snapshot_id, failed, str(failure))

    return report


# ---- the flows and the handlers ------------------------------------------------


def _flows(s: NodeLifecycle) -> tuple[LinearFlow[VolumeOpContext], LinearFlow[VolumeOpContext],
                                      LinearFlow[RevertContext],
                                      LinearFlow[SnapshotOpContext],
                                      LinearFlow[SnapshotOpContext]]:
    vol, snap = ("ctx", "volume_id"), ("ctx", "snapshot_id", "volume_id")
    delete = LinearFlow("volume_delete_manager", [
        OnFailureReportTask[VolumeOpContext](s, _delete_failed),
        NotifyActionTask[VolumeOpContext](s, _delete_event("start")),
        DeleteVolumeTask(s), DeleteVolumeOnFinishTask(s)], given=vol)
    extend = LinearFlow("volume_extend_manager", [
        OnFailureReportTask[VolumeOpContext](s, _extend_failed), ExtendCapacityCheckTask(s),
        NotifyActionTask[VolumeOpContext](s, "volume.resize.start"),
        ExtendVolumeTask(s), ExtendVolumeOnFinishTask(s)], given=vol)
    revert = LinearFlow("volume_revert_manager", [
        OnFailureReportTask[RevertContext](s, _revert_failed),
        NotifyActionTask[RevertContext](s, "volume.revert.start"),
        RevertVolumeTask(s), RevertVolumeOnFinishTask(s)], given=snap)
    create_snap = LinearFlow("snapshot_create_manager", [
        OnFailureReportTask[SnapshotOpContext](s, _snapshot_failed(P.ERROR)),
        NotifyActionTask[SnapshotOpContext](s, _snapshot_event("create", "start")),
        CreateSnapshotTask(s), CreateSnapshotOnFinishTask(s)], given=snap)
    delete_snap = LinearFlow("snapshot_delete_manager", [
        OnFailureReportTask[SnapshotOpContext](s, _snapshot_failed(P.ERROR_DELETING)),
        NotifyActionTask[SnapshotOpContext](s, _snapshot_event("delete", "start")),
        DeleteSnapshotTask(s), DeleteSnapshotOnFinishTask(s)], given=snap)
    return delete, extend, revert, create_snap, delete_snap


def lifecycle_handlers(node: LifecycleServices) -> dict[str, Handler]:
    return NodeLifecycle(node).handlers()


class NodeLifecycle:
    """Runs the five flows on one node's driver and reports to the gateway."""

    def __init__(self, node: LifecycleServices) -> None:
        self.node = node
        self.delete, self.extend, self.revert, self.create_snap, self.delete_snap = \
            _flows(self)
        self.group_snap = group_snapshot_create_manager(self)

    def handlers(self) -> dict[str, Handler]:
        return {
            "node.delete_volume": self.on_delete_volume,
            "node.extend_volume": self.on_extend_volume,
            "node.revert_volume": self.on_revert_volume,
            "node.create_snapshot": self.on_create_snapshot,
            "node.create_group_snapshot": self.on_create_group_snapshot,
            "node.delete_snapshot": self.on_delete_snapshot,
        }

    # ---- services the tasks use ------------------------------------------
    @property
    def driver(self) -> Driver:
        return self.node.driver

    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]:
        return self.node.writes_held(volume_ids)

    def tell_gateway(self, op: str, body: object, ctx: Context) -> None:
        self.node.gateway.cast(op, body, ctx)

    def notify(self, c: VolumeOpContext | SnapshotOpContext | RevertContext, event: str
               ) -> None:
        extra = {} if isinstance(c, VolumeOpContext) else {"snapshot_id": c.snapshot_id}
        self.node.events.emit("notify", volume_id=c.volume_id, event=event,
                              host=self.node.backend_id, **extra)

    def changed(self) -> None:
        """The driver's contents changed: count again and publish capacity."""
        self.node.recount_volumes()
        self.node.stats_changed()

    # ---- handlers --------------------------------------------------------
    async def on_delete_volume(self, req: Request) -> None:
        body: NodeDeleteVolume = req.body
        c = VolumeOpContext(req.ctx, body.volume_id, unmanage=body.unmanage)
        await self._run(self.delete, c, body.volume_id)

    async def on_extend_volume(self, req: Request) -> None:
        b: NodeExtendVolume = req.body
        c = VolumeOpContext(req.ctx, b.volume_id, b.size, b.new_size, b.reservation_id)
        await self._run(self.extend, c, b.volume_id)

    async def on_revert_volume(self, req: Request) -> None:
        b: NodeRevertVolume = req.body
        await self._run(self.revert,
                        RevertContext(req.ctx, b.volume_id, b.snapshot_id, b.revert_id),
                        b.volume_id)

    async def on_create_snapshot(self, req: Request) -> None:
        b: NodeCreateSnapshot = req.body
        if self.node.fenced_out(b.snapshot_id, b.fence):
            return
        c = SnapshotOpContext(req.ctx, b.snapshot_id, b.volume_id, b.size, b.manage_ref)
        await self._run(self.create_snap, c, b.volume_id)

    async def on_create_group_snapshot(self, req: Request) -> None:
        b: NodeCreateGroupSnapshot = req.body
        if any(self.node.fenced_out(m.snapshot_id, b.fence) for m in b.members):
            return  # the gateway fenced them all and sent the group snapshot again
        c = GroupSnapshotOpContext(req.ctx, b.group_snapshot_id, b.members, b.consistent)
        ids = [i for m in b.members for i in (m.volume_id, m.snapshot_id)]
        try:
            with self.node.working(*ids):
                await self.node.run_flow(self.group_snap, c, b.members[0].volume_id
                                         if b.members else "", req.ctx)
        except DriverError as exc:  # already reported to the gateway
            log.warning("group snapshot %s failed: %s", b.group_snapshot_id, exc)

    async def on_delete_snapshot(self, req: Request) -> None:
        b: NodeDeleteSnapshot = req.body
        c = SnapshotOpContext(req.ctx, b.snapshot_id, b.volume_id, unmanage=b.unmanage)
        await self._run(self.delete_snap, c, b.volume_id)

    async def _run(self, flow: LinearFlow[Any], c: Any, volume_id: str) -> None:
        ids = (volume_id,) if isinstance(c, VolumeOpContext) else (volume_id, c.snapshot_id)
        try:
            with self.node.working(*ids):
                await self.node.run_flow(flow, c, volume_id, c.ctx)
        except (DriverError, InsufficientCapacity) as exc:  # already reported to the gateway
            log.warning("%s for %s failed: %s", flow.name, volume_id, exc)
