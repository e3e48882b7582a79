"""The gateway's flows for the rest of a volume's life.

    volume_delete_api    ExtractDeleteRequestTask → MarkVolumeDeletingTask
                           → VolumeDeleteCastTask
    volume_extend_api    ExtractExtendRequestTask → QuotaReserveTask
                           → MarkVolumeExtendingTask → VolumeExtendCastTask
    snapshot_create_api  ExtractSnapshotRequestTask → QuotaReserveTask
                           → SnapshotEntryCreateTask → SnapshotCastTask
    snapshot_delete_api  ExtractSnapshotDeleteRequestTask → MarkSnapshotDeletingTask
                           → SnapshotDeleteCastTask

Each replies once its cast is made (Cinder's 202); the node's report finishes
the work (``GatewayLifecycle``). Every quota change a state change owes is
written with it, in one transaction, into the quota journal
(``quota_journal.py``): a snapshot entry owes its commit (Cinder's
QuotaCommitTask is folded into SnapshotEntryCreateTask), a removed row its
release, an ended extend its commit or rollback. Reverts, newest first: a status
put back to what it was (an extend's reservation rolled back with it), a snapshot
entry destroyed (its release owed), a reservation with nothing made of it rolled
back. A volume that never reached a host is removed by the gateway alone
(``VolumeDeleteCastTask``), as is a snapshot without one, and the delete
answers at once: nothing waits for the quota actor.

Quota is charged to the owner of the volume or snapshot (an admin may act on
another project's), never to the caller.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.lifecycle_checks import (
    check_extend,
    check_group_member,
    check_snapshot_deletable,
    check_snapshot_source,
    check_volume_deletable,
    claim_volume,
    visible_snapshot,
    visible_volume,
)
from cinderblock.actors.gateway.lost_casts import CreateRoute
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import check_metadata, check_text
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.database import WriteFailed
from cinderblock.actors.runtime.failpoints import FailPoint, declare
from cinderblock.protocol.messages.lifecycle import (
    NodeCreateSnapshot,
    NodeDeleteSnapshot,
    NodeDeleteVolume,
    NodeExtendVolume,
    SnapshotCreate,
)
from cinderblock.protocol.messages.quota import (
    QuotaReserve,
    Reservation,
    snapshot_amounts,
    with_type,
)
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus, check_volume_move
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidState, Timeout, Unavailable
from cinderblock.protocol.wire.schema import parse

V = VolumeStatus
DELETE_MARK_BEFORE_COMMIT = declare("gateway.volume_delete.mark.before_commit")
DELETE_MARK_AFTER_COMMIT = declare("gateway.volume_delete.mark.after_commit")
DELETE_CAST_BEFORE_SEND = declare("gateway.volume_delete.cast.before_send")
DELETE_CAST_AFTER_SEND = declare("gateway.volume_delete.cast.after_send")
EXTEND_RESERVE = (declare("gateway.volume_extend.reserve.before_send"),
                  declare("gateway.volume_extend.reserve.after_reply"))
EXTEND_MARK_BEFORE_COMMIT = declare("gateway.volume_extend.mark.before_commit")
EXTEND_MARK_AFTER_COMMIT = declare("gateway.volume_extend.mark.after_commit")
EXTEND_CAST_BEFORE_SEND = declare("gateway.volume_extend.cast.before_send")
EXTEND_CAST_AFTER_SEND = declare("gateway.volume_extend.cast.after_send")
SNAPSHOT_RESERVE = (declare("gateway.snapshot_create.reserve.before_send"),
                    declare("gateway.snapshot_create.reserve.after_reply"))
SNAPSHOT_ENTRY_BEFORE_COMMIT = declare("gateway.snapshot_create.entry.before_commit")
SNAPSHOT_ENTRY_AFTER_COMMIT = declare("gateway.snapshot_create.entry.after_commit")
SNAPSHOT_CAST_BEFORE_SEND = declare("gateway.snapshot_create.cast.before_send")
SNAPSHOT_CAST_AFTER_SEND = declare("gateway.snapshot_create.cast.after_send")
SNAPSHOT_DELETE_MARK_BEFORE_COMMIT = declare("gateway.snapshot_delete.mark.before_commit")
SNAPSHOT_DELETE_MARK_AFTER_COMMIT = declare("gateway.snapshot_delete.mark.after_commit")
SNAPSHOT_DELETE_CAST_BEFORE_SEND = declare("gateway.snapshot_delete.cast.before_send")
SNAPSHOT_DELETE_CAST_AFTER_SEND = declare("gateway.snapshot_delete.cast.after_send")


class LifecycleServices(Protocol):
    """What the tasks need from the gateway (the seam tests can fill in memory)."""

    store: GatewayStore

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...

    async def save_volume(self, rec: VolumeRecord) -> None:
        """Write the record's status and tell its watchers."""

    async def save_snapshot(self, rec: SnapshotRecord) -> None:
        """Write the record's status and tell its watchers."""

    def publish_snapshot(self, rec: SnapshotRecord) -> None: ...

    def publish_volume(self, rec: VolumeRecord) -> None: ...

    async def finish_volume_delete(self, rec: VolumeRecord, ctx: Context) -> None: ...

    async def finish_snapshot_delete(self, rec: SnapshotRecord, ctx: Context) -> None: ...

    async def end_extend(self, rec: VolumeRecord, outcome: str) -> None:
        """Save the extend's end and owe its reservation's ``outcome``, together."""


# ---- contexts ---------------------------------------------------------------


@dataclass(slots=True)
class DeleteContext:
    volume_id: str
    ctx: Context
    record: VolumeRecord | None = None
    previous: VolumeStatus = V.AVAILABLE
    claimed: str | None = None  # the volume this flow claimed (released when it ends)
    marked: bool = False  # this flow moved the volume to deleting (or unmanaging)
    unmanage: bool = False  # Cinder's unmanage: the node keeps the data, renamed
    by_group: bool = False  # its group's delete (delete-volumes): its membership is fine

    @property
    def target(self) -> VolumeStatus:
        return V.UNMANAGING if self.unmanage else V.DELETING


@dataclass(slots=True)
class ExtendContext:
    volume_id: str
    new_size: int
    ctx: Context
    record: VolumeRecord | None = None
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0
    reservation_id: str | None = None
    committed: bool = False  # the reservation's end is owed by a state change
    in_use: bool = False  # may extend an attached volume (3.42)
    was: VolumeStatus = VolumeStatus.AVAILABLE  # the status to go back to on a revert
    claimed: str | None = None
    marked: bool = False  # this flow moved the volume to extending


@dataclass(slots=True)
class SnapshotCreateContext:
    body: SnapshotCreate
    ctx: Context
    snapshot_id: str
    fingerprint: str
    volume: VolumeRecord | None = None
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0  # a snapshot is not held to per_volume_gigabytes
    reservation_id: str | None = None
    record: SnapshotRecord | None = None
    committed: bool = False
    claimed: str | None = None
    manage_ref: str | None = None  # a manage: what the volume's node holds as this name


@dataclass(slots=True)
class SnapshotDeleteContext:
    snapshot_id: str
    ctx: Context
    unmanage: bool = False  # Cinder's unmanage: the node keeps the data
    record: SnapshotRecord | None = None
    previous: SnapshotStatus = SnapshotStatus.AVAILABLE
    marked: bool = False  # this flow moved the snapshot to deleting (unmanaging)
    by_group: bool = False  # its group snapshot's delete: its membership is fine

    @property
    def target(self) -> SnapshotStatus:
        return SnapshotStatus.UNMANAGING if self.unmanage else SnapshotStatus.DELETING


class Reserving(Protocol):
    ctx: Context
    project: str
    deltas: dict[str, int]
    volume_size: int  # checked against per_volume_gigabytes (0: not a volume)
    reservation_id: str | None
    committed: bool


C = TypeVar("C")
R = TypeVar("R", bound=Reserving)


class _Task(Task[C]):
    def __init__(self, services: LifecycleServices) -> None:
        self.s = services


# ---- quota (shared by extend, snapshot create, transfer accept and retype) ---------


def _no_point() -> None:
    """Where a flow has no failpoint of its own (the kill matrix does not retype)."""


class QuotaServices(Protocol):
    store: GatewayStore

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...


class QuotaReserveTask(Task[R]):
    """Reserve (a reservation id naming this gateway's incarnation); on a revert,
    roll it back unless a state change already owes its end."""

    requires = ("deltas",)
    provides = ("reservation_id",)

    def __init__(self, services: QuotaServices,
                 points: tuple[FailPoint, FailPoint] | None = None) -> None:
        self.s = services
        self.before_send, self.after_reply = points or (_no_point, _no_point)

    async def execute(self, c: R) -> None:
        body = QuotaReserve(c.project, c.deltas, self.s.store.journal.reservation_id(),
                            volume_size=c.volume_size)
        self.before_send()
        try:
            reply = await self.s.quota_call("quota.reserve", body, c.ctx)
        except (Timeout, Unavailable):
            c.reservation_id = body.reservation_id  # made or not: the revert rolls it back
            raise
        self.after_reply()
        c.reservation_id = parse(Reservation, reply, strict=False).reservation_id

    async def revert(self, c: R, failure: BaseException) -> None:
        if c.reservation_id is not None and not c.committed:
            with suppress(WriteFailed):  # sent even if a full disk keeps its row out
                await self.s.store.journal.owe_rollback(c.reservation_id, c.project,
                                                        unsaved_ok=True)


# ---- volume_delete_api ------------------------------------------------------------


def _check_deletable(s: LifecycleServices, rec: VolumeRecord, unmanage: bool,
                     by_group: bool = False) -> None:
    if not by_group:
        check_group_member(s.store, rec, "unmanaged" if unmanage else "deleted")
    snaps = [snap.id for snap in s.store.snapshots.of_volume(rec.id)]
    check_volume_deletable(rec, snaps, s.store.snapshots.copying_from(rec.id, s.store.volumes.get),
                           unmanage)


class ExtractDeleteRequestTask(_Task[DeleteContext]):
    requires = ("volume_id",)
    provides = ("record", "previous")

    async def execute(self, c: DeleteContext) -> None:
        rec = visible_volume(self.s.store, c.volume_id, c.ctx)
        _check_deletable(self.s, rec, c.unmanage, c.by_group)
        c.claimed = claim_volume(self.s.store, rec, c.target.value)
        c.record, c.previous = rec, rec.status


class MarkVolumeDeletingTask(_Task[DeleteContext]):
    requires = ("record", "previous")

    async def execute(self, c: DeleteContext) -> None:
        rec = c.record
        assert rec is not None
        _check_deletable(self.s, rec, c.unmanage, c.by_group)  # again: others may have come
        check_volume_move(rec.status, c.target)
        rec.status, rec.reason, c.marked = c.target, None, True
        DELETE_MARK_BEFORE_COMMIT()
        await self.s.save_volume(rec)
        DELETE_MARK_AFTER_COMMIT()

    async def revert(self, c: DeleteContext, failure: BaseException) -> None:
        if c.marked and c.record is not None and c.record.status is c.target:
            c.record.status = c.previous  # back to where it was: nothing was deleted
            await self.s.save_volume(c.record)


class VolumeDeleteCastTask(_Task[DeleteContext]):
    requires = ("record",)

    async def execute(self, c: DeleteContext) -> None:
        rec = c.record
        assert rec is not None
        if rec.host is None:  # never reached a backend: nothing to delete there
            await self.s.finish_volume_delete(rec, c.ctx)
        else:
            DELETE_CAST_BEFORE_SEND()
            await self.s.send_to_node(rec.host, "node.delete_volume",
                                      NodeDeleteVolume(rec.id, c.unmanage), c.ctx)
            DELETE_CAST_AFTER_SEND()


def volume_delete_api(services: LifecycleServices) -> LinearFlow[DeleteContext]:
    return LinearFlow(
        "volume_delete_api",
        [ExtractDeleteRequestTask(services), MarkVolumeDeletingTask(services),
         VolumeDeleteCastTask(services)],
        given=("volume_id", "ctx"),
    )


# ---- volume_extend_api ------------------------------------------------------------


class ExtractExtendRequestTask(_Task[ExtendContext]):
    requires = ("volume_id", "new_size")
    provides = ("record", "project", "deltas")

    async def execute(self, c: ExtendContext) -> None:
        rec = visible_volume(self.s.store, c.volume_id, c.ctx)
        grow = check_extend(rec, c.new_size, c.in_use)
        c.claimed = claim_volume(self.s.store, rec, "extending")
        c.record, c.project = rec, rec.project_id
        c.deltas = with_type({"gigabytes": grow}, rec.volume_type.id)
        c.volume_size = c.new_size


class MarkVolumeExtendingTask(_Task[ExtendContext]):
    requires = ("record", "reservation_id")

    async def execute(self, c: ExtendContext) -> None:
        rec = c.record
        assert rec is not None
        if check_extend(rec, c.new_size, c.in_use) != c.deltas["gigabytes"]:  # after quota
            raise InvalidState(f"volume {rec.id} changed size meanwhile; try again",
                               {"volume_id": rec.id, "size": rec.size})
        check_volume_move(rec.status, V.EXTENDING)
        c.was = rec.status
        rec.status, rec.reason, c.marked = V.EXTENDING, None, True
        assert c.reservation_id is not None
        EXTEND_MARK_BEFORE_COMMIT()
        c.committed = True  # from here the volume's record holds the reservation
        await self.s.store.start_extend(rec, c.reservation_id, c.new_size)
        EXTEND_MARK_AFTER_COMMIT()
        self.s.publish_volume(rec)

    async def revert(self, c: ExtendContext, failure: BaseException) -> None:
        if c.marked and c.record is not None and c.record.status is V.EXTENDING:
            c.record.status = c.was
            await self.s.end_extend(c.record, "rollback")


class VolumeExtendCastTask(_Task[ExtendContext]):
    requires = ("record", "reservation_id")

    async def execute(self, c: ExtendContext) -> None:
        rec = c.record
        assert rec is not None and rec.host is not None and c.reservation_id is not None
        body = NodeExtendVolume(rec.id, rec.size, c.new_size, c.reservation_id)
        EXTEND_CAST_BEFORE_SEND()
        await self.s.send_to_node(rec.host, "node.extend_volume", body, c.ctx)
        EXTEND_CAST_AFTER_SEND()


def volume_extend_api(services: LifecycleServices) -> LinearFlow[ExtendContext]:
    return LinearFlow(
        "volume_extend_api",
        [ExtractExtendRequestTask(services),
         QuotaReserveTask[ExtendContext](services, EXTEND_RESERVE),
         MarkVolumeExtendingTask(services), VolumeExtendCastTask(services)],
        given=("volume_id", "new_size", "ctx"),
    )


# ---- snapshot_create_api ----------------------------------------------------------


def check_snapshot_fields(body: SnapshotCreate) -> None:
    """A snapshot's name, description and metadata, as Cinder's schema checks them."""
    check_text("name", body.name)
    check_text("description", body.description)
    check_metadata(body.metadata)


class ExtractSnapshotRequestTask(_Task[SnapshotCreateContext]):
    requires = ("body",)
    provides = ("volume", "project", "deltas")

    async def execute(self, c: SnapshotCreateContext) -> None:
        body = c.body
        volume = visible_volume(self.s.store, body.volume_id, c.ctx)
        check_snapshot_source(volume, body.force)
        check_snapshot_fields(body)
        c.claimed = claim_volume(self.s.store, volume, "snapshotting")
        c.volume, c.project = volume, volume.project_id
        c.deltas = snapshot_amounts(volume.size, volume.volume_type.id)


class SnapshotEntryCreateTask(_Task[SnapshotCreateContext]):
    requires = ("volume", "reservation_id")
    provides = ("record", "committed")

    async def execute(self, c: SnapshotCreateContext) -> None:
        volume, body = c.volume, c.body
        assert volume is not None
        check_snapshot_source(volume, body.force)  # again, after the quota call
        record = SnapshotRecord(
            id=c.snapshot_id, project_id=volume.project_id, user_id=c.ctx.user_id,
            volume_id=volume.id, size=volume.size, status=SnapshotStatus.CREATING,
            host=volume.host, volume_type_id=volume.volume_type.id, name=body.name,
            description=body.description, metadata=dict(body.metadata),
            request_id=c.ctx.request_id, request_fp=c.fingerprint,
        )
        SNAPSHOT_ENTRY_BEFORE_COMMIT()
        await self.s.store.snapshots.add(record, c.reservation_id,  # + the commit it owes
                                         volume.image_metadata,
                                         CreateRoute(manage_ref=c.manage_ref).to_row())
        SNAPSHOT_ENTRY_AFTER_COMMIT()
        c.record, c.committed = record, True
        self.s.publish_snapshot(record)

    async def revert(self, c: SnapshotCreateContext, failure: BaseException) -> None:
        if c.record is not None:
            await self.s.store.snapshots.remove(c.record)  # + the release it owes


class SnapshotCastTask(_Task[SnapshotCreateContext]):
    requires = ("record", "committed")

    async def execute(self, c: SnapshotCreateContext) -> None:
        rec = c.record
        assert rec is not None and rec.host is not None
        body = NodeCreateSnapshot(rec.id, rec.volume_id, rec.size, c.manage_ref)
        SNAPSHOT_CAST_BEFORE_SEND()
        await self.s.send_to_node(rec.host, "node.create_snapshot", body, c.ctx)
        SNAPSHOT_CAST_AFTER_SEND()


def snapshot_create_api(services: LifecycleServices) -> LinearFlow[SnapshotCreateContext]:
    return LinearFlow(
        "snapshot_create_api",
        [ExtractSnapshotRequestTask(services),
         QuotaReserveTask[SnapshotCreateContext](services, SNAPSHOT_RESERVE),
         SnapshotEntryCreateTask(services),
         SnapshotCastTask(services)],
        given=("body", "ctx", "snapshot_id", "fingerprint"),
    )


# ---- snapshot_delete_api ----------------------------------------------------------


def _check_snapshot_deletable(s: LifecycleServices, rec: SnapshotRecord, unmanage: bool,
                              by_group: bool = False) -> None:
    group_snapshot = s.store.group_snapshots.group_snapshot_of(rec.id)
    if group_snapshot is not None and not by_group:  # Cinder's: delete the group snapshot
        raise InvalidState(f"Snapshot {rec.id} is part of group snapshot {group_snapshot}: "
                           "it is deleted with its group snapshot",
                           {"snapshot_id": rec.id, "group_snapshot_id": group_snapshot})
    check_snapshot_deletable(rec, s.store.snapshots.copying_from(rec.id, s.store.volumes.get),
                             unmanage)


class ExtractSnapshotDeleteRequestTask(_Task[SnapshotDeleteContext]):
    requires = ("snapshot_id",)
    provides = ("record", "previous")

    async def execute(self, c: SnapshotDeleteContext) -> None:
        rec = visible_snapshot(self.s.store, c.snapshot_id, c.ctx)
        _check_snapshot_deletable(self.s, rec, c.unmanage, c.by_group)
        c.record, c.previous = rec, rec.status


class MarkSnapshotDeletingTask(_Task[SnapshotDeleteContext]):
    requires = ("record", "previous")

    async def execute(self, c: SnapshotDeleteContext) -> None:
        assert c.record is not None
        _check_snapshot_deletable(self.s, c.record, c.unmanage, c.by_group)
        c.record.move(c.target)
        c.marked = True
        SNAPSHOT_DELETE_MARK_BEFORE_COMMIT()
        await self.s.save_snapshot(c.record)
        SNAPSHOT_DELETE_MARK_AFTER_COMMIT()

    async def revert(self, c: SnapshotDeleteContext, failure: BaseException) -> None:
        if c.marked and c.record is not None and c.record.status is c.target:
            c.record.status = c.previous
            await self.s.save_snapshot(c.record)


class SnapshotDeleteCastTask(_Task[SnapshotDeleteContext]):
    requires = ("record",)

    async def execute(self, c: SnapshotDeleteContext) -> None:
        rec = c.record
        assert rec is not None
        if rec.host is None:
            await self.s.finish_snapshot_delete(rec, c.ctx)
        else:
            body = NodeDeleteSnapshot(rec.id, rec.volume_id, c.unmanage)
            SNAPSHOT_DELETE_CAST_BEFORE_SEND()
            await self.s.send_to_node(rec.host, "node.delete_snapshot", body, c.ctx)
            SNAPSHOT_DELETE_CAST_AFTER_SEND()


def snapshot_delete_api(services: LifecycleServices) -> LinearFlow[SnapshotDeleteContext]:
    return LinearFlow(
        "snapshot_delete_api",
        [ExtractSnapshotDeleteRequestTask(services), MarkSnapshotDeletingTask(services),
         SnapshotDeleteCastTask(services)],
        given=("snapshot_id", "ctx"),
    )
