"""Group snapshots (Cinder's 3.14 ``group_snapshots``): a snapshot of each volume of a
group, taken at one instant.

    group_snapshot_create_api  ExtractGroupSnapshotRequestTask → QuotaReserveTask →
                               GroupSnapshotEntryCreateTask → GroupSnapshotCastTask

* create: the group the caller's and ``available``; each of its volumes ``available``
  or ``in-use`` and not busy. Quota, as Cinder's: a snapshot (and its GiB, and its
  type's own) for each volume, reserved at once. One transaction writes the group
  snapshot's row, a ``creating`` snapshot for each volume, their member rows and the
  reservation's commit owed. Then the group's node is told to take them all
  (``node.create_group_snapshot``): it holds the writes to those volumes' exports, waits
  for the writes in flight, takes each snapshot, and lets the writes go on, so that no
  write acknowledged after the first snapshot is in any of them and every write
  acknowledged before is in all (a crash-consistent set); it reports each snapshot as
  a single snapshot's create does (``snapshot.update``), all ``available`` or all
  ``error``.
* its status is its snapshots' (``status_of``): ``creating`` while one is, ``error``
  if one is, else ``available``; ``deleting`` from its delete on (``error_deleting`` if
  a snapshot's delete failed).
* delete: every snapshot deletable (checked before anything changes); the row marked
  ``deleting``, and each snapshot runs the snapshot delete flow; the row goes with the
  last one's (``SnapshotStore.on_group_member_gone``; the reconciler removes one a crash
  left with none). From the mark on, nothing (a volume, a backup) is made from one of
  its snapshots (``check_not_deleted_with_group``). A member snapshot is not deleted on
  its own (Cinder's), and a group with group snapshots is not deleted.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.group_store import GroupRecord, GroupSnapshotRecord
from cinderblock.actors.gateway.guards import RunningCreates, require_admin, retry_fingerprint
from cinderblock.actors.gateway.lifecycle_checks import (
    check_snapshot_deletable,
    group_snapshot_members,
    group_volumes,
    snapshot_reset_status,
    snapshot_reset_target,
    visible_group,
    visible_group_snapshot,
    volume_busy,
)
from cinderblock.actors.gateway.lifecycle_flows import QuotaReserveTask, SnapshotDeleteContext
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import check_text
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.runtime.database import all_committed
from cinderblock.actors.runtime.events import EventPublisher
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.groups import (
    GroupSnapshot,
    GroupSnapshotCreate,
    GroupSnapshotList,
    GroupSnapshotListRequest,
    GroupSnapshotMember,
    GroupSnapshotRef,
    GroupSnapshotResetStatus,
    NodeCreateGroupSnapshot,
)
from cinderblock.protocol.messages.quota import add_amounts, snapshot_amounts
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.states import GroupStatus
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, InvalidState

log = logging.getLogger(__name__)
SNAPSHOTTABLE = frozenset({V.AVAILABLE, V.IN_USE})
RESERVE = (declare("gateway.group_snapshot_create.reserve.before_send"),
           declare("gateway.group_snapshot_create.reserve.after_reply"))
ENTRY_BEFORE_COMMIT = declare("gateway.group_snapshot_create.entry.before_commit")
ENTRY_AFTER_COMMIT = declare("gateway.group_snapshot_create.entry.after_commit")
CAST_BEFORE_SEND = declare("gateway.group_snapshot_create.cast.before_send")
CAST_AFTER_SEND = declare("gateway.group_snapshot_create.cast.after_send")
# a group snapshot marked deleting, its snapshots not yet asked (``mend``)
DELETE_MARK_AFTER_COMMIT = declare("gateway.group_snapshot_delete.mark.after_commit")


def status_of(rec: GroupSnapshotRecord, snapshots: Iterable[SnapshotRecord]) -> str:
    """A group snapshot's status, from its snapshots' (see the module text)."""
    statuses = {s.status for s in snapshots}
    if rec.deleting:
        failed = P.ERROR_DELETING in statuses and P.DELETING not in statuses
        return "error_deleting" if failed else "deleting"
    if P.CREATING in statuses:
        return "creating"
    if P.ERROR in statuses:
        return "error"
    return "available"


def check_named(body: GroupSnapshotCreate) -> None:
    """What a group snapshot's create checks of its body before its fingerprint is taken."""
    check_text("name", body.name)
    check_text("description", body.description)


def check_group_snapshottable(group: GroupRecord, volumes: list[VolumeRecord],
                              busy: dict[str, str]) -> None:
    """Whether ``group``'s ``volumes`` may be snapshotted now (``busy``: what each busy
    one is busy with)."""
    if group.status is not GroupStatus.AVAILABLE:
        raise InvalidState(f"Group {group.id} status must be available, not "
                           f"{group.status.value}", {"group_id": group.id})
    for volume in volumes:
        if volume.status not in SNAPSHOTTABLE:
            raise InvalidState(f"Volume {volume.id} of group {group.id} is "
                               f"{volume.status.value}: a group snapshot needs each "
                               "volume available or in-use", {"volume_id": volume.id})
        if volume.id in busy:
            raise InvalidState(f"Volume {volume.id} of group {group.id} is busy: "
                               f"{busy[volume.id]}", {"volume_id": volume.id})


class GroupSnapshotServices(Protocol):
    store: GatewayStore

    @property
    def events(self) -> EventPublisher: ...

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...
    async def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                       ) -> None: ...
    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    def snapshot_delete_flow(self) -> LinearFlow[SnapshotDeleteContext]: ...
    def publish_snapshot(self, rec: SnapshotRecord) -> None: ...


@dataclass(slots=True)
class GroupSnapshotContext:
    body: GroupSnapshotCreate
    ctx: Context
    group_snapshot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    fingerprint: str = ""  # of the request, with a request id (``guards.fingerprint``)
    group: GroupRecord | None = None
    volumes: list[VolumeRecord] = field(default_factory=list)
    record: GroupSnapshotRecord | None = None
    snapshots: list[SnapshotRecord] = field(default_factory=list)
    # the quota (``QuotaReserveTask``)
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0
    reservation_id: str | None = None
    committed: bool = False


class _Task(Task[GroupSnapshotContext]):
    def __init__(self, services: GroupSnapshotServices) -> None:
        self.s = services


class ExtractGroupSnapshotRequestTask(_Task):
    requires = ("body",)
    provides = ("group", "volumes", "deltas")

    async def execute(self, c: GroupSnapshotContext) -> None:
        store = self.s.store
        group = visible_group(store, c.body.group_id, c.ctx)
        volumes = group_volumes(store, group)
        busy = {v.id: why for v in volumes if (why := volume_busy(store, v)) is not None}
        check_group_snapshottable(group, volumes, busy)
        c.group, c.volumes, c.project = group, volumes, group.project_id
        c.deltas = add_amounts([snapshot_amounts(v.size, v.volume_type.id) for v in volumes])


class GroupSnapshotEntryCreateTask(_Task):
    """The group snapshot's row and a ``creating`` snapshot for each volume (and their
    member rows), with the reservation's commit owed: one transaction."""

    requires = ("group", "volumes", "reservation_id")
    provides = ("record",)

    async def execute(self, c: GroupSnapshotContext) -> None:
        group, store = c.group, self.s.store
        assert group is not None and c.reservation_id is not None
        busy = {v.id: why for v in c.volumes if (why := volume_busy(store, v)) is not None}
        check_group_snapshottable(group, c.volumes, busy)  # again: the reserve waited
        now = time.time()
        record = GroupSnapshotRecord(c.group_snapshot_id, group.project_id, c.ctx.user_id,
                                     group.id, group.group_type_id,
                                     check_text("name", c.body.name),
                                     check_text("description", c.body.description), False,
                                     now, now, c.ctx.request_id if c.fingerprint else "",
                                     c.fingerprint)
        snapshots = [SnapshotRecord(
            str(uuid.uuid4()), v.project_id, c.ctx.user_id, v.id, v.size, P.CREATING,
            host=v.host, volume_type_id=v.volume_type.id, name=record.name,
            description=record.description, created_at=now, group_snapshot_id=record.id)
            for v in c.volumes]
        images = {s.id: dict(v.image_metadata) for s, v in zip(snapshots, c.volumes,
                                                               strict=True) if v.image_metadata}
        ENTRY_BEFORE_COMMIT()
        await store.snapshots.add_group(snapshots, record, c.reservation_id, images)
        ENTRY_AFTER_COMMIT()
        c.record, c.snapshots, c.committed = record, snapshots, True
        for snap in snapshots:  # each ``creating``, as a single snapshot's create tells
            self.s.publish_snapshot(snap)

    async def revert(self, c: GroupSnapshotContext, failure: BaseException) -> None:
        """The cast did not reach the node (it was away): no snapshot was taken, and
        the group snapshot goes as a single snapshot's create does, its quota given
        back, rather than wait ``creating`` for the reconciler."""
        if c.record is not None:
            await self.s.store.snapshots.remove_group(c.snapshots, c.record)


class GroupSnapshotCastTask(_Task):
    requires = ("record", "group")

    async def execute(self, c: GroupSnapshotContext) -> None:
        group, record = c.group, c.record
        assert group is not None and record is not None
        if not c.snapshots:
            return  # an empty group: nothing for a node to take
        CAST_BEFORE_SEND()
        await self.s.send_to_node(group.host, "node.create_group_snapshot",
                                  node_create_group_snapshot(self.s.store, group, record,
                                                             c.snapshots), c.ctx)
        CAST_AFTER_SEND()


def node_create_group_snapshot(store: GatewayStore, group: GroupRecord,
                               record: GroupSnapshotRecord, snapshots: Iterable[SnapshotRecord],
                               fence: str = "") -> NodeCreateGroupSnapshot:
    """What the group's node is told to take: a snapshot of each volume, all at one
    instant when the group's type asks for consistent snapshots (``fence``: the token of
    a create sent again, ``Gateway.send_left_creates_again``)."""
    gtype = store.group_types.by_id.get(group.group_type_id)  # kept: in use
    consistent = gtype is not None and gtype.consistent_snapshots
    members = tuple(GroupSnapshotMember(s.volume_id, s.id)
                    for s in sorted(snapshots, key=lambda s: s.volume_id))
    return NodeCreateGroupSnapshot(record.id, members, consistent, fence)


def group_snapshot_create_api(s: GroupSnapshotServices) -> LinearFlow[GroupSnapshotContext]:
    return LinearFlow(
        "group_snapshot_create_api",
        [ExtractGroupSnapshotRequestTask(s), QuotaReserveTask[GroupSnapshotContext](s, RESERVE),
         GroupSnapshotEntryCreateTask(s), GroupSnapshotCastTask(s)],
        given=("body", "ctx"),
    )


class GatewayGroupSnapshots:
    """The ``group_snapshot.*`` ops."""

    def __init__(self, s: GroupSnapshotServices) -> None:
        self.s = s
        self.store = s.store
        self.group_snapshots = s.store.group_snapshots
        self.create_flow = group_snapshot_create_api(s)
        self._creating = RunningCreates[GroupSnapshotRecord]()
        self._told: dict[str, tuple[str, str | None, int]] = {}  # what the last event said of each

    def handlers(self) -> dict[str, Handler]:
        return {
            "group_snapshot.create": self.on_create,
            "group_snapshot.list": self.on_list,
            "group_snapshot.show": self.on_show,
            "group_snapshot.delete": self.on_delete,
            "group_snapshot.reset_status": self.on_reset_status,
        }

    def visible(self, group_snapshot_id: str, ctx: Context) -> GroupSnapshotRecord:
        return visible_group_snapshot(self.store, group_snapshot_id, ctx)

    def members(self, rec: GroupSnapshotRecord) -> list[SnapshotRecord]:
        return group_snapshot_members(self.store, rec)

    def publish(self, rec: GroupSnapshotRecord, deleted: bool) -> None:
        """An event for dashboards: its status (its snapshots', ``deleted``: gone), its
        name and its count of snapshots; once committed (``GroupSnapshotStore``), and
        only when one of them changed (each member's move is heard here, and most do
        not change what the group snapshot shows)."""
        snapshots = [] if deleted else self.members(rec)
        status = "deleted" if deleted else status_of(rec, snapshots)
        told = (status, rec.name, len(snapshots))
        if deleted:
            self._told.pop(rec.id, None)
        elif self._told.get(rec.id) == told:
            return
        else:
            self._told[rec.id] = told
        self.s.events.emit(
            "group_snapshot", group_snapshot_id=rec.id, project_id=rec.project_id,
            status=status, name=rec.name, group_id=rec.group_id, snapshots=len(snapshots),
        )

    def view(self, rec: GroupSnapshotRecord) -> GroupSnapshot:
        snapshots = self.members(rec)
        return GroupSnapshot(rec.id, rec.project_id, rec.group_id, status_of(rec, snapshots),
                             rec.group_type_id, rec.name, rec.description, rec.created_at,
                             tuple(s.id for s in snapshots), rec.user_id)

    async def on_create(self, req: Request) -> GroupSnapshot:
        """Take a group snapshot; a retry with the request id of one made (within a day)
        or being made answers with that one."""
        ctx = req.ctx
        fingerprint = retry_fingerprint(ctx.request_id, req.body, check_named)

        async def make() -> GroupSnapshotRecord:
            c = GroupSnapshotContext(req.body, ctx, fingerprint=fingerprint)
            await self.s.run_flow(self.create_flow, c, "", ctx)
            assert c.record is not None
            return c.record

        made, _ = await self._creating.once(ctx, fingerprint, self.group_snapshots.made_by,
                                            make)
        return self.view(made)

    def on_list(self, req: Request) -> GroupSnapshotList:
        body: GroupSnapshotListRequest = req.body
        everyone = body.all_projects and req.ctx.is_admin
        project = (body.project_id or None) if everyone else req.ctx.project_id
        found = [r for r in self.group_snapshots.by_id.values()
                 if (project is None or r.project_id == project)
                 and (body.group_id is None or r.group_id == body.group_id)]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)  # newest first
        return GroupSnapshotList(tuple(self.view(r) for r in found))

    def on_show(self, req: Request) -> GroupSnapshot:
        body: GroupSnapshotRef = req.body
        return self.view(self.visible(body.group_snapshot_id, req.ctx))

    async def on_delete(self, req: Request) -> Empty:
        body: GroupSnapshotRef = req.body
        rec = self.visible(body.group_snapshot_id, req.ctx)
        snapshots = self.members(rec)
        status = status_of(rec, snapshots)
        if status not in ("available", "error", "error_deleting"):
            raise InvalidState(f"GroupSnapshot status must be available or error or "
                               f"error_deleting, and it is {status}",
                               {"group_snapshot_id": rec.id, "status": status})
        for snap in snapshots:  # every one, before anything changes
            if snap.status is not P.ERROR_DELETING:
                check_snapshot_deletable(snap, self.store.snapshots.copying_from(
                    snap.id, self.store.volumes.get))
        if not snapshots:
            await self.group_snapshots.queue_remove(rec)
            return Empty()
        rec.deleting = True
        await self.group_snapshots.queue_save(rec)
        DELETE_MARK_AFTER_COMMIT()
        await self._delete_members(rec, snapshots, req.ctx)
        return Empty()

    async def _delete_members(self, rec: GroupSnapshotRecord, snapshots: list[SnapshotRecord],
                              ctx: Context) -> int:
        """Each snapshot of a group snapshot being deleted asked to be deleted; the
        group snapshot goes with its last (``member_gone``). Returns how many were not."""
        refused = 0
        for snap in snapshots:
            c = SnapshotDeleteContext(snap.id, ctx, by_group=True)
            try:
                await self.s.run_flow(self.s.snapshot_delete_flow(), c, snap.volume_id, ctx)
            except CinderblockError as exc:  # changed meanwhile, or its node away: it
                log.warning("group snapshot %s: snapshot %s not deleted: %s", rec.id, snap.id,
                            exc.message)  # stays, and the group snapshot error_deleting
                refused += 1
        return refused

    async def on_reset_status(self, req: Request) -> GroupSnapshot:
        """An admin's reset (Cinder's 3.19): its status is its snapshots', so each is reset
        to ``available`` or ``error`` (as a snapshot's reset does, every one checked
        first), and a delete it was in is over; one transaction."""
        body: GroupSnapshotResetStatus = req.body
        require_admin(req.ctx, "reset a group snapshot's status")
        rec = self.visible(body.group_snapshot_id, req.ctx)
        snapshot_reset_status(body.status)
        snapshots = self.members(rec)
        targets = [snapshot_reset_target(snap, body.status) for snap in snapshots]
        log.warning("admin %s resets group snapshot %s from %s to %s", req.ctx.user_id,
                    rec.id, status_of(rec, snapshots), body.status)
        now = time.time()
        rec.deleting = False
        writes = [self.group_snapshots.queue_save(rec)]
        for snap, target in zip(snapshots, targets, strict=True):
            snap.reason = f"status reset by an admin with its group snapshot (was " \
                          f"{snap.status.value})"
            snap.status, snap.updated_at = target, now
            writes.append(self.store.snapshots.queue_status(snap))
        await all_committed(*writes)
        for snap in snapshots:
            self.s.publish_snapshot(snap)
        return self.view(rec)

    async def mend(self, before: float) -> list[str]:
        """The group snapshots a crash left ``deleting``: with no snapshot (their last
        one's removal committed, the row's not), gone; with snapshots of which none is
        being deleted (the crash came between the group snapshot's mark and its
        snapshots'), their delete finished: each is asked to be deleted, as the delete
        the mark committed would have (one refused now, e.g. a copy of it begun since,
        leaves the group snapshot no longer ``deleting``: its status is its snapshots'
        again, and a delete may be asked again)."""
        acted = []
        for rec in [r for r in self.group_snapshots.by_id.values()
                    if r.deleting and r.updated_at < before]:
            snapshots = self.members(rec)
            if not snapshots:
                await self.group_snapshots.queue_remove(rec)
            elif all(s.status not in (P.DELETING, P.ERROR_DELETING) for s in snapshots):
                log.warning("group snapshot %s: its delete was cut short before its "
                            "snapshots were asked; they are asked now", rec.id)
                ctx = Context(project_id=rec.project_id, user_id=rec.user_id)
                if await self._delete_members(rec, snapshots, ctx) \
                        and rec.id in self.group_snapshots.by_id:
                    rec.deleting = False
                    await self.group_snapshots.queue_save(rec)
                    log.warning("group snapshot %s is %s again", rec.id,
                                status_of(rec, self.members(rec)))
            else:
                continue
            acted.append(rec.id)
        return acted

    def left_unsent(self, snapshot_ids: Collection[str]
                    ) -> list[tuple[GroupSnapshotRecord, list[SnapshotRecord]]]:
        """The group snapshots whose create the previous gateway process may have died
        before sending (``Reconciler.finish_previous``): each of their snapshots still
        ``creating`` and in ``snapshot_ids`` (those no node holds or works on, and not
        sent again by this process), with those snapshots."""
        unsent = set(snapshot_ids)
        found: dict[str, tuple[GroupSnapshotRecord, list[SnapshotRecord]]] = {}
        for snapshot_id in snapshot_ids:
            gs_id = self.group_snapshots.group_snapshot_of(snapshot_id)
            if gs_id is None or gs_id in found:
                continue
            rec = self.group_snapshots.by_id.get(gs_id)
            snapshots = [] if rec is None or rec.deleting else self.members(rec)
            if rec is not None and snapshots and all(
                    s.id in unsent and s.status is P.CREATING for s in snapshots):
                found[gs_id] = (rec, snapshots)
        return list(found.values())

    async def member_gone(self, group_snapshot_id: str) -> None:
        """A snapshot of the group snapshot is gone: one being deleted goes with its last."""
        rec = self.group_snapshots.by_id.get(group_snapshot_id)
        if rec is not None and rec.deleting \
                and not self.group_snapshots.members.get(group_snapshot_id):
            await self.group_snapshots.queue_remove(rec)
            log.info("group snapshot %s deleted", rec.id)

