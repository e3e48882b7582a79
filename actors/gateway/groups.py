"""Generic volume groups (Cinder's 3.13 ``groups``): a project's set of volumes, of the
volume types the group was made with, all on the one backend it was placed on.

    group_create_api  ExtractGroupRequestTask → QuotaReserveTask → GroupEntryCreateTask

The rules are Cinder's (``cinder/group/api.py``), judged in plain code:

* create (``check_group_request``, ``place_group``): a group type the caller may see,
  one or more volume types it may use, a zone that is known and that each type allows
  (default: the cluster's); the group goes to a backend of that zone that is up,
  enabled and satisfies every one of its volume types (the one with the most free
  space), or is refused saying why none does. Its quota (``groups``) is reserved, and
  the group's row is written with the reservation's commit owed, in one transaction.
  There is no node work: the group is ``available`` at once.
* a volume joins a group when it is made in it (a create naming ``group_id``: it must
  be of one of the group's types, in its zone; it is placed on the group's backend and
  its member row is written with its entry) or added (``add_volumes``: the project's,
  ``available`` or ``in-use``, of one of the group's types, on the group's backend, in
  no group); it leaves when removed (``remove_volumes``: ``available``, ``in-use`` or
  ``error``) or deleted. A volume in a group is not deleted, unmanaged, migrated or
  retyped on its own (Cinder's: it must not belong to a group), nor offered for
  transfer (the group is its project's).
* delete: the group ``available``, ``error`` or ``error_deleting``; without
  ``delete_volumes`` it must hold none; with it, every one must be deletable (checked
  before anything changes), the group becomes ``deleting`` and each of its volumes is
  deleted; when the last one's row goes (``GatewayStore.on_group_member_gone``) the
  group's row goes with its quota's release owed, in one transaction. A group left
  ``deleting`` (a crash, a failed volume delete) is mended by the reconciler: gone if
  empty, ``error_deleting`` if its volumes stopped being deleted.

A group with group snapshots is not deleted (``group_snapshots.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.group_store import GroupRecord, GroupStore
from cinderblock.actors.gateway.group_types import GroupTypes
from cinderblock.actors.gateway.guards import RunningCreates, require_admin, retry_fingerprint
from cinderblock.actors.gateway.lifecycle_checks import (
    check_volume_deletable,
    group_snapshot_members,
    group_volumes,
    release_claim,
    visible_group,
    visible_group_snapshot,
    visible_volume,
    volume_busy,
)
from cinderblock.actors.gateway.lifecycle_flows import DeleteContext, QuotaReserveTask
from cinderblock.actors.gateway.volume_request import TypeCatalog, check_text, type_zones
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.runtime.database import all_committed
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.actors.scheduler.extra_specs import satisfies
from cinderblock.protocol.messages.groups import (
    Group,
    GroupCreate,
    GroupCreateFromSource,
    GroupDelete,
    GroupList,
    GroupListRequest,
    GroupRef,
    GroupResetStatus,
    GroupUpdate,
)
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import Empty, Volume, VolumeCreate, VolumeType
from cinderblock.protocol.states import GroupStatus as G
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    InvalidInput,
    InvalidState,
)

log = logging.getLogger(__name__)
ENTRY_BEFORE_COMMIT = declare("gateway.group_create.entry.before_commit")
ENTRY_AFTER_COMMIT = declare("gateway.group_create.entry.after_commit")
COPIES_AFTER_ONE = declare("gateway.group_create_from_src.copies.after_one")
DELETABLE = frozenset({G.AVAILABLE, G.ERROR, G.ERROR_DELETING})
JOINABLE = frozenset({V.AVAILABLE, V.IN_USE})
LEAVABLE = frozenset({V.AVAILABLE, V.IN_USE, V.ERROR})
RESET_TO = (G.AVAILABLE.value, G.ERROR.value)
MAX_CHANGED = 1000  # volumes one update may add or remove


# ---- the rules, as plain code --------------------------------------------------------------


def place_group(types: Sequence[VolumeType], zone: str, backends: Iterable[Backend]) -> Backend:
    """The backend of ``zone`` that is up, enabled and satisfies every type, with the most
    free space; ``InvalidInput`` saying why none does."""
    fitting = []
    for b in backends:
        capabilities = {"thin_provisioning_support": b.thin_provisioning_support,
                        **b.capabilities}
        if b.up and not b.disabled and b.availability_zone == zone \
                and all(satisfies(capabilities, t.extra_specs) for t in types):
            fitting.append(b)
    if not fitting:
        raise InvalidInput(f"No valid backend was found for a group of volume types "
                           f"{', '.join(t.name for t in types)} in availability zone {zone}: "
                           "none that is up and enabled satisfies every one",
                           {"volume_types": [t.name for t in types], "zone": zone})
    return max(fitting, key=lambda b: (b.free_capacity_gb, b.backend))


def check_joinable(group: GroupRecord, volume: VolumeRecord, in_group: str | None) -> None:
    """Whether ``volume`` may be added to ``group`` (Cinder's ``update``)."""
    if volume.project_id != group.project_id:
        raise InvalidInput(f"Cannot add volume {volume.id} to group {group.id}: it is "
                           "another project's", {"volume_id": volume.id})
    if in_group is not None:
        raise InvalidInput(f"Cannot add volume {volume.id} to group {group.id} because it "
                           f"is already in group {in_group}.", {"volume_id": volume.id})
    if volume.status not in JOINABLE:
        raise InvalidState(f"Cannot add volume {volume.id} to group {group.id} because "
                           f"volume is in an invalid state: {volume.status.value}. Valid "
                           "states are: ('available', 'in-use').",
                           {"volume_id": volume.id, "status": volume.status.value})
    if volume.volume_type.id not in group.volume_type_ids:
        raise InvalidInput(f"Cannot add volume {volume.id} to group {group.id} because "
                           f"volume type {volume.volume_type.name} is not supported by the "
                           "group.", {"volume_id": volume.id})
    if volume.host != group.host:
        raise InvalidInput(f"Cannot add volume {volume.id} to group {group.id}: it is on "
                           f"backend {volume.host}, the group's volumes on {group.host}",
                           {"volume_id": volume.id})


def check_leavable(group: GroupRecord, volume: VolumeRecord, in_group: str | None) -> None:
    if in_group != group.id:
        raise InvalidInput(f"Cannot remove volume {volume.id} from group {group.id} because "
                           "it is not in the group.", {"volume_id": volume.id})
    if volume.status not in LEAVABLE:
        raise InvalidState(f"Cannot remove volume {volume.id} from group {group.id} because "
                           f"volume is in an invalid state: {volume.status.value}. Valid "
                           "states are: ('available', 'in-use', 'error').",
                           {"volume_id": volume.id, "status": volume.status.value})


def check_named(body: GroupCreate | GroupCreateFromSource) -> None:
    """What a group's create checks of its body before its fingerprint is taken."""
    check_text("name", body.name)
    check_text("description", body.description)


def volume_ids(raw: Iterable[str], field_name: str) -> list[str]:
    """The distinct ids of ``add_volumes`` or ``remove_volumes``, in order."""
    found = list(dict.fromkeys(v.strip() for v in raw if v.strip()))
    if len(found) > MAX_CHANGED:
        raise InvalidInput(f"{field_name} names {len(found)} volumes; at most {MAX_CHANGED} "
                           "an update", {"field": field_name})
    return found


# ---- the create flow -------------------------------------------------------------------------


class GroupServices(Protocol):
    store: GatewayStore
    types: TypeCatalog
    zones: Collection[str]
    default_zone: str
    group_type_ops: GroupTypes

    async def create_volume(self, req: Request, body: VolumeCreate, filling: bool = False
                            ) -> Volume: ...
    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...
    async def backends_seen(self, ctx: Context) -> list[Backend]: ...
    async def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                       ) -> None: ...
    def volume_delete_flow(self) -> LinearFlow[DeleteContext]: ...
    def publish(self, rec: VolumeRecord, push: bool = True) -> None: ...


@dataclass(slots=True)
class GroupCreateContext:
    body: GroupCreate
    ctx: Context
    group_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    group_type_id: str = ""
    volume_types: tuple[VolumeType, ...] = ()
    zone: str = ""
    host: str = ""
    record: GroupRecord | None = None
    source: GroupSource | None = None  # create-from-src: what its volumes are made from
    fingerprint: str = ""  # of the request, with a request id (``guards.fingerprint``)
    # the quota (``QuotaReserveTask``)
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0
    reservation_id: str | None = None
    committed: bool = False


class _Task(Task[GroupCreateContext]):
    def __init__(self, services: GroupServices) -> None:
        self.s = services


class ExtractGroupRequestTask(_Task):
    requires = ("body",)
    provides = ("volume_types", "host", "deltas")

    async def execute(self, c: GroupCreateContext) -> None:
        body, ctx = c.body, c.ctx
        c.group_type_id = self.s.group_type_ops.find(body.group_type, ctx.is_admin).id
        names = list(dict.fromkeys(body.volume_types))
        if not names:
            raise InvalidInput("Invalid input for field/attribute volume_types: at least one "
                               "volume type is required", {"field": "volume_types"})
        c.volume_types = tuple(self.s.types.find_for(n, ctx.project_id, ctx.is_admin)
                               for n in names)
        zone = body.availability_zone or self.s.default_zone
        if zone not in self.s.zones:
            raise InvalidInput(f"Availability zone '{zone}' is invalid.",
                               {"availability_zone": zone})
        for vtype in c.volume_types:
            if zone not in type_zones(vtype, self.s.zones):
                raise InvalidInput(f"Availability zone {zone} is not among volume type "
                                   f"{vtype.name}'s", {"availability_zone": zone})
        c.zone = zone
        c.host = place_group(c.volume_types, zone, await self.s.backends_seen(ctx)).backend
        c.project, c.deltas = ctx.project_id, {"groups": 1}


class GroupEntryCreateTask(_Task):
    """The group's row and, in the same transaction, its quota's commit owed."""

    requires = ("volume_types", "host", "reservation_id")
    provides = ("record",)

    async def execute(self, c: GroupCreateContext) -> None:
        assert c.reservation_id is not None
        now = time.time()
        body = c.body
        group = GroupRecord(c.group_id, c.ctx.project_id, c.ctx.user_id,
                            check_text("name", body.name),
                            check_text("description", body.description),
                            G.AVAILABLE if c.source is None else G.CREATING,
                            c.group_type_id, tuple(t.id for t in c.volume_types), c.zone,
                            c.host, now, now, request_id=c.ctx.request_id if c.fingerprint
                            else "", request_fp=c.fingerprint)
        if c.source is not None:
            group.group_snapshot_id = c.source.group_snapshot_id
            group.source_group_id = c.source.source_group_id
        ENTRY_BEFORE_COMMIT()
        await all_committed(self.s.store.groups.queue_save(group),
                            self.s.store.journal.owe_commit(c.reservation_id, c.project))
        if c.source is not None:
            self.s.store.groups.filling.add(group.id)  # its volumes are made next
        ENTRY_AFTER_COMMIT()
        c.record, c.committed = group, True


def group_create_api(s: GroupServices) -> LinearFlow[GroupCreateContext]:
    return LinearFlow(
        "group_create_api",
        [ExtractGroupRequestTask(s), QuotaReserveTask[GroupCreateContext](s),
         GroupEntryCreateTask(s)],
        given=("body", "ctx"),
    )


@dataclass(frozen=True, slots=True)
class GroupSource:
    """What a group made from a source copies: the volumes' sources, in order."""

    group_snapshot_id: str | None
    source_group_id: str | None
    snapshots: tuple[str, ...] = ()  # a volume from each
    volumes: tuple[str, ...] = ()  # a clone of each


def source_of(store: GatewayStore, body: GroupCreateFromSource, ctx: Context
              ) -> tuple[GroupRecord, GroupSource]:
    """The source group and what the new group's volumes are made from, or why not."""
    if (body.group_snapshot_id is None) == (body.source_group_id is None):
        raise InvalidInput("Invalid input for field/attribute create-from-src: give "
                           "group_snapshot_id or source_group_id, one of them",
                           {"field": "create-from-src"})
    if body.group_snapshot_id is not None:
        snap = visible_group_snapshot(store, body.group_snapshot_id, ctx)
        members = group_snapshot_members(store, snap)
        if snap.deleting or len(members) != len(store.group_snapshots.members.get(snap.id, ())) \
                or any(m.status is not P.AVAILABLE for m in members):
            raise InvalidState(f"GroupSnapshot {snap.id} status must be available",
                               {"group_snapshot_id": snap.id})
        origin = store.groups.by_id[snap.group_id]  # kept while it has group snapshots
        return origin, GroupSource(snap.id, None, snapshots=tuple(m.id for m in members))
    source = visible_group(store, body.source_group_id or "", ctx)
    volumes = group_volumes(store, source)
    if source.status is not G.AVAILABLE or any(v.status not in JOINABLE for v in volumes):
        raise InvalidState(f"Source group {source.id} must be available, its volumes "
                           "available or in-use", {"source_group_id": source.id})
    return source, GroupSource(None, source.id, volumes=tuple(v.id for v in volumes))


# ---- the ops ---------------------------------------------------------------------------------


class GatewayGroups:
    """The ``group.*`` ops, and what a create into a group and a volume's removal ask of
    the groups."""

    def __init__(self, s: GroupServices) -> None:
        self.s = s
        self.store = s.store
        self.groups: GroupStore = s.store.groups
        self.create_flow = group_create_api(s)
        self._creating = RunningCreates[GroupRecord]()
        self.copy_flow = LinearFlow(  # create-from-src: the placement is the source group's
            "group_create_from_src_api",
            [QuotaReserveTask[GroupCreateContext](s), GroupEntryCreateTask(s)],
            given=("body", "ctx", "volume_types", "host", "deltas"))

    def handlers(self) -> dict[str, Handler]:
        return {
            "group.create": self.on_create,
            "group.list": self.on_list,
            "group.show": self.on_show,
            "group.update": self.on_update,
            "group.delete": self.on_delete,
            "group.reset_status": self.on_reset_status,
            "group.create_from_src": self.on_create_from_src,
        }

    def visible(self, group_id: str, ctx: Context) -> GroupRecord:
        return visible_group(self.store, group_id, ctx)

    def view(self, group: GroupRecord) -> Group:
        return group.view(self.groups.members.get(group.id, ()))

    async def _once(self, req: Request, make: Callable[[str], Awaitable[GroupRecord]]
                    ) -> tuple[GroupRecord, bool]:
        """``make(fingerprint)``'s group, or (a retry: True) the one an earlier request
        with this request id made or is making."""
        fingerprint = retry_fingerprint(req.ctx.request_id, req.body, check_named)
        return await self._creating.once(req.ctx, fingerprint, self.groups.made_by,
                                         lambda: make(fingerprint))

    async def on_create(self, req: Request) -> Group:
        """Make a group; a retry with the request id of one made (within a day) or
        being made answers with that one."""
        async def make(fingerprint: str) -> GroupRecord:
            c = GroupCreateContext(req.body, req.ctx, fingerprint=fingerprint)
            await self.s.run_flow(self.create_flow, c, "", req.ctx)
            assert c.record is not None
            log.info("group %s made on %s", c.group_id, c.host)
            return c.record

        return self.view((await self._once(req, make))[0])

    async def on_create_from_src(self, req: Request) -> Group:
        """A group like the source's, then a volume in it from each source snapshot (or
        a clone of each source volume), made as creates are, one after the other; a
        copy the create flow refuses (quota) leaves the group ``error``, saying which.
        A retry with the request id of one made or being made answers with that group
        as it is (its copies are that request's: made, or being made), but for one left
        ``creating`` with nobody making its copies (a gateway restart cut them short):
        that retry makes the copies still missing (each copy's create has a request id
        of its own, so one made is answered, not made twice) and ends it as the first
        would have."""
        body: GroupCreateFromSource = req.body
        source: GroupSource | None = None

        async def make(fingerprint: str) -> GroupRecord:
            nonlocal source
            source_group, source = source_of(self.store, body, req.ctx)
            c = GroupCreateContext(GroupCreate(source_group.group_type_id,
                                               source_group.volume_type_ids, body.name,
                                               body.description,
                                               source_group.availability_zone),
                                   req.ctx, source=source, fingerprint=fingerprint)
            c.group_type_id, c.zone, c.host = (source_group.group_type_id,
                                               source_group.availability_zone,
                                               source_group.host)
            c.volume_types = tuple(self.s.types.by_id[t]
                                   for t in source_group.volume_type_ids)
            c.project, c.deltas = req.ctx.project_id, {"groups": 1}
            await self.s.run_flow(self.copy_flow, c, "", req.ctx)
            assert c.record is not None
            return c.record

        group, retried = await self._once(req, make)
        if retried:
            if group.status is not G.CREATING or group.id in self.groups.filling:
                return self.view(group)
            try:  # its maker is gone: this retry resumes its copies
                source = source_of(self.store, body, req.ctx)[1]
            except CinderblockError as exc:
                await self._failed(group, "its making was cut short, and its source can "
                                          f"no longer be copied: {exc.message}")
                return self.view(group)
            self.groups.filling.add(group.id)  # no await since the check: one resumes
            log.info("group %s: a retry resumes the copies its create left unmade", group.id)
        assert source is not None
        try:
            await self._fill(req, group, source)
        finally:
            self.groups.filling.discard(group.id)
        if group.status is G.CREATING:
            group.status = G.AVAILABLE
            await self.groups.queue_save(group)
        return self.view(group)

    async def _fill(self, req: Request, group: GroupRecord, source: GroupSource) -> None:
        """The new group's volumes, made as creates are, one after the other; a copy
        refused makes the group ``error``, saying which."""
        copies = [VolumeCreate(snapshot_id=s, group_id=group.id) for s in source.snapshots]
        copies += [VolumeCreate(source_volid=v, group_id=group.id) for v in source.volumes]
        rid = req.ctx.request_id
        for n, copy in enumerate(copies):
            ctx = dataclasses.replace(req.ctx, request_id=f"{rid}.copy{n}" if rid else "")
            try:
                await self.s.create_volume(dataclasses.replace(req, context=ctx), copy,
                                           filling=True)
            except CinderblockError as exc:
                await self._failed(group, f"the copy of {copy.snapshot_id or copy.source_volid}"
                                          f" was not made: {exc.message}")
            if n == 0:
                COPIES_AFTER_ONE()

    async def _failed(self, group: GroupRecord, reason: str) -> None:
        group.status, group.reason = G.ERROR, reason
        await self.groups.queue_save(group)
        log.warning("group %s: %s", group.id, reason)

    def on_list(self, req: Request) -> GroupList:
        body: GroupListRequest = req.body
        ctx = req.ctx
        everyone = body.all_projects and ctx.is_admin
        project = (body.project_id or None) if everyone else ctx.project_id
        found = [g for g in self.groups.by_id.values()
                 if project is None or g.project_id == project]
        found.sort(key=lambda g: (g.created_at, g.id), reverse=True)  # newest first
        return GroupList(tuple(self.view(g) for g in found))

    def on_show(self, req: Request) -> Group:
        body: GroupRef = req.body
        return self.view(self.visible(body.group_id, req.ctx))

    async def on_update(self, req: Request) -> Group:
        body: GroupUpdate = req.body
        group = self.visible(body.group_id, req.ctx)
        adding = volume_ids(body.add_volumes, "add_volumes")
        removing = volume_ids(body.remove_volumes, "remove_volumes")
        name = check_text("name", body.name)
        description = check_text("description", body.description)
        if name is None and description is None and not adding and not removing:
            raise InvalidInput("Name, description, add_volumes, and remove_volumes can not "
                               "be all empty in the request body.", {"group_id": group.id})
        both = set(adding) & set(removing)
        if both:
            raise InvalidInput(f"Volume {sorted(both)[0]} is both added to and removed from "
                               f"group {group.id}", {"volume_id": sorted(both)[0]})
        if (adding or removing) and group.status is not G.AVAILABLE:
            raise InvalidState(f"Group {group.id} status must be available, not "
                               f"{group.status.value}, to add or remove volumes",
                               {"group_id": group.id, "status": group.status.value})
        added = [self._joining(group, v, req.ctx) for v in adding]
        removed = [self._leaving(group, v, req.ctx) for v in removing]
        if name is not None:
            group.name = name
        if description is not None:
            group.description = description
        writes = [self.groups.queue_save(group)]
        for volume in added:
            writes.append(self.groups.queue_join(group.id, volume.id))
            volume.group_id = group.id
        for volume in removed:
            left = self.groups.queue_leave(volume.id)
            if left is not None:
                writes.append(left[0])
            volume.group_id = None
        await all_committed(*writes)
        for volume in (*added, *removed):
            self.s.publish(volume, push=False)
        return self.view(group)

    def _joining(self, group: GroupRecord, volume_id: str, ctx: Context) -> VolumeRecord:
        volume = visible_volume(self.store, volume_id, ctx)
        busy = volume_busy(self.store, volume)
        if busy is not None:
            raise InvalidState(f"Cannot add volume {volume.id} to group {group.id}: {busy}",
                               {"volume_id": volume.id})
        check_joinable(group, volume, self.groups.group_of_volume(volume.id))
        return volume

    def _leaving(self, group: GroupRecord, volume_id: str, ctx: Context) -> VolumeRecord:
        volume = visible_volume(self.store, volume_id, ctx)
        check_leavable(group, volume, self.groups.group_of_volume(volume.id))
        return volume

    async def on_delete(self, req: Request) -> Empty:
        body: GroupDelete = req.body
        group = self.visible(body.group_id, req.ctx)
        if group.status not in DELETABLE:
            raise InvalidState(f"Group status must be available or error or error_deleting, "
                               f"but current status is: {group.status.value}",
                               {"group_id": group.id, "status": group.status.value})
        snapshots = self.store.group_snapshots.of_group(group.id)
        if snapshots:
            raise InvalidState(f"Group {group.id} has existing group snapshots "
                               f"({', '.join(sorted(s.id for s in snapshots)[:5])}): delete "
                               "them first", {"group_id": group.id})
        volumes = group_volumes(self.store, group)
        if volumes and not body.delete_volumes:
            raise InvalidInput(f"Group {group.id} still contains volumes. The delete-volumes "
                               "flag is required to delete it.", {"group_id": group.id})
        for volume in volumes:  # every one, before anything changes
            check_volume_deletable(volume, [s.id for s in self.store.snapshots.of_volume(
                volume.id)], self.store.snapshots.copying_from(volume.id, self.store.volumes.get))
            busy = volume_busy(self.store, volume)
            if busy is not None:
                raise InvalidState(f"Volume {volume.id} of group {group.id} cannot be "
                                   f"deleted now: {busy}", {"volume_id": volume.id})
        if not volumes:
            await self._remove(group)
            return Empty()
        group.status, group.reason = G.DELETING, None
        await self.groups.queue_save(group)
        for volume in volumes:
            c = DeleteContext(volume.id, req.ctx, by_group=True)
            try:
                await self.s.run_flow(self.s.volume_delete_flow(), c, volume.id, req.ctx)
            except CinderblockError as exc:  # changed meanwhile, or its node away: the
                log.warning("group %s: volume %s not deleted: %s", group.id, volume.id,
                            exc.message)  # reconciler makes the group error_deleting
            finally:
                release_claim(self.store, c.claimed)
        return Empty()

    async def _remove(self, group: GroupRecord) -> None:
        """The group's row goes and, in the same transaction, its quota's release is owed."""
        await all_committed(
            self.groups.queue_remove(group),
            self.store.journal.owe_release(f"release:group:{group.id}", group.project_id,
                                           {"groups": 1}))
        log.info("group %s deleted", group.id)

    async def member_gone(self, group_id: str) -> None:
        """A volume of the group is gone: a group being deleted goes with its last one."""
        group = self.groups.by_id.get(group_id)
        if group is not None and group.status is G.DELETING \
                and not self.groups.members.get(group_id):
            await self._remove(group)

    async def on_reset_status(self, req: Request) -> Group:
        body: GroupResetStatus = req.body
        require_admin(req.ctx, "reset a group's status")
        group = self.visible(body.group_id, req.ctx)
        if body.status not in RESET_TO:
            raise InvalidInput(f"Invalid group status {body.status!r}: one of "
                               f"{', '.join(RESET_TO)}", {"field": "status"})
        group.status, group.reason = G(body.status), None
        await self.groups.queue_save(group)
        return self.view(group)

    async def mend(self, before: float) -> list[str]:
        """The groups a crash or a failed volume delete left ``deleting`` since before
        ``before``: gone if empty, ``error_deleting`` if none of their volumes is being
        deleted any more; and those a crash left ``creating`` (no create-from-src is
        making their volumes, and no retry came to resume it): ``error``, their volumes
        perhaps not all made."""
        acted = []
        for group in [g for g in self.groups.by_id.values()
                      if g.status is G.CREATING and g.updated_at < before
                      and g.id not in self.groups.filling]:
            await self._failed(group, "its create was cut short while its volumes were made "
                                      "from the source: some may be missing")
            acted.append(group.id)
        for group in [g for g in self.groups.by_id.values()
                      if g.status is G.DELETING and g.updated_at < before]:
            members = [self.store.volumes.get(v) for v in self.groups.members.get(group.id, ())]
            if not members:
                await self._remove(group)
            elif all(v is None or v.status is not V.DELETING for v in members):
                group.status, group.reason = G.ERROR_DELETING, "a volume of it was not deleted"
                await self.groups.queue_save(group)
            else:
                continue
            acted.append(group.id)
        return acted

