"""volume_create_api: the gateway's create flow, task for task as Cinder's.

    ExtractVolumeRequestTask → QuotaReserveTask → EntryCreateTask → VolumeCastTask

A volume created from a backup (Cinder's 3.47 ``backup_id``, and a backup's restore
into a new volume) takes the backup's size by default; the backup is marked restoring
into it with its entry (one transaction), and the scheduler places it on the backup's
node only, which writes the backup's data into it (``storage_node/create_flow.py``);
its end gives the backup back (``GatewayBackups.volume_made``).

A volume created from a snapshot or a source volume takes its size (by
default), type and zone from the source (and, from a bootable volume or a
snapshot of one, as Cinder's, the bootable flag and the volume's image
metadata), and VolumeCastTask sends it straight
to the node that holds the source instead of to the scheduler. A manage
(``manage.py``) runs these tasks after its own first one, and the cast goes to
the node the admin named.

Cinder's QuotaCommitTask is folded into EntryCreateTask: the entry and the
commit of its reservation it owes are written in one transaction (the quota
journal, ``quota_journal.py``), and the journal's outbox hands the commit to the
quota actor; nothing waits for it, so a create costs one quota round trip.

Reverts, newest first: the cast has nothing to undo; the entry is destroyed and,
with it, the release of its quota is owed (after the commit it owed: the journal
keeps order); a reservation with no entry is rolled back (owed too). The
client's reply goes out when the flow succeeds (Cinder's 202): status ``creating``.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.backup_store import BackupRecord
from cinderblock.actors.gateway.backups import backup_source_of_create, check_restorable
from cinderblock.actors.gateway.group_store import GroupRecord
from cinderblock.actors.gateway.lifecycle_checks import (
    VolumeSource,
    claim_volume,
    current_source,
    resolve_source,
    visible_group,
)
from cinderblock.actors.gateway.lost_casts import CreateRoute
from cinderblock.actors.gateway.volume_request import (
    TypeCatalog,
    VolumeSpec,
    check_source_hinted,
    hinted_backends,
    normalize_create,
    validate_create,
)
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.database import WriteFailed
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.manage import VolumeManage
from cinderblock.protocol.messages.quota import QuotaReserve, Reservation, with_type
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.messages.volumes import VolumeCreate
from cinderblock.protocol.states import BackupStatus, GroupStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import (
    InvalidInput,
    InvalidState,
    Timeout,
    Unavailable,
)
from cinderblock.protocol.wire.schema import parse

RESERVE_BEFORE_SEND = declare("gateway.volume_create.reserve.before_send")
RESERVE_AFTER_REPLY = declare("gateway.volume_create.reserve.after_reply")
ENTRY_BEFORE_COMMIT = declare("gateway.volume_create.entry.before_commit")
ENTRY_AFTER_COMMIT = declare("gateway.volume_create.entry.after_commit")
CAST_BEFORE_SEND = declare("gateway.volume_create.cast.before_send")
CAST_AFTER_SEND = declare("gateway.volume_create.cast.after_send")


class ApiServices(Protocol):
    """What the tasks need from the gateway (the seam tests can fill in memory)."""

    store: GatewayStore
    types: TypeCatalog
    zones: Collection[str]
    default_zone: str
    default_type: str

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...

    def schedule(self, request: ScheduleRequest, ctx: Context) -> None: ...

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...


@dataclass(frozen=True, slots=True)
class ManageSource:
    """What a manage adopts (``manage.py``): `name` on the node of `backend`."""

    backend: str  # host@backend
    name: str


@dataclass(slots=True)
class CreateApiContext:
    body: VolumeCreate
    ctx: Context
    volume_id: str
    fingerprint: str
    spec: VolumeSpec | None = None
    reservation_id: str | None = None
    record: VolumeRecord | None = None
    commit_owed: bool = False  # the entry is durable, and with it the commit it owes
    source: VolumeSource | None = None  # a snapshot or a volume to copy, on its node
    claimed: str | None = None  # the source volume this flow claimed (a clone)
    manage: VolumeManage | None = None  # a manage's request (volume_manage_api)
    manage_source: ManageSource | None = None  # ... and what it adopts, where
    # the affinity hints' backends (``volume_request.hinted_backends``)
    avoid_backends: tuple[str, ...] = ()
    only_backends: tuple[str, ...] | None = None
    backup: BackupRecord | None = None  # the backup written into the new volume
    restoring: bool = False  # this flow marked the backup restoring into the volume
    group: GroupRecord | None = None  # the group it is made in (on the group's backend)
    filling: bool = False  # a create-from-src's copy, into its ``creating`` group

    @property
    def deltas(self) -> dict[str, int]:
        assert self.spec is not None
        return with_type({"volumes": 1, "gigabytes": self.spec.size},
                         self.spec.volume_type.id)


class _ApiTask(Task[CreateApiContext]):
    def __init__(self, services: ApiServices) -> None:
        self.s = services


class ExtractVolumeRequestTask(_ApiTask):
    requires = ("body",)
    provides = ("spec",)

    async def execute(self, c: CreateApiContext) -> None:
        s = self.s
        body, c.source = resolve_source(normalize_create(c.body), s.store, s.types, c.ctx)
        if body.backup_id is not None:
            c.backup = backup_source_of_create(s.store, body.backup_id, body.size, c.ctx)
            body = replace(body, size=body.size or c.backup.size)
        default_type = s.types.default_for(c.ctx.project_id, s.default_type)
        if body.group_id is not None:
            c.group = group_of_create(s.store, body.group_id, c.ctx, c.filling)
            body = replace(body, availability_zone=body.availability_zone
                           or c.group.availability_zone)
        c.spec = validate_create(body, s.types, s.zones, s.default_zone, default_type)
        # a private type is found only by the projects given access (and admins)
        s.types.find_for(body.volume_type or default_type, c.ctx.project_id, c.ctx.is_admin)
        c.avoid_backends, c.only_backends = hinted_backends(
            body.same_host, body.different_host, partial(_own_backend, s.store, c.ctx))
        if c.source is not None:
            check_source_hinted(c.source.host, c.avoid_backends, c.only_backends)
        if c.backup is not None:
            c.only_backends = _backup_node(c.backup, c.avoid_backends, c.only_backends)
        if c.group is not None:
            check_group_create(c.group, c.spec)
            c.only_backends = _group_backend(c.group, c.avoid_backends, c.only_backends)
        if c.source is not None and c.source.source_volid is not None:
            c.claimed = claim_volume(s.store, s.store.volumes[c.source.source_volid], "cloning")


def _backup_node(backup: BackupRecord, avoid: tuple[str, ...],
                 only: tuple[str, ...] | None) -> tuple[str, ...]:
    """The backends a volume from ``backup`` may go to: the node that made it (its
    repository holds it), unless the affinity hints exclude that node."""
    assert backup.host is not None
    if backup.host in avoid or (only is not None and backup.host not in only):
        raise InvalidInput(f"backup {backup.id} is restored by its node's backend "
                           f"{backup.host}, which the scheduler hints exclude",
                           {"field": "backup_id"})
    return (backup.host,)


def group_of_create(store: GatewayStore, group_id: str, ctx: Context, filling: bool = False
                    ) -> GroupRecord:
    """The group a create names: the caller's (an admin's: any), ``available``; or,
    for its create-from-src's copies (``filling``), ``creating`` while it makes them."""
    group = visible_group(store, group_id, ctx)
    filled = (filling and group.status is GroupStatus.CREATING
              and group.id in store.groups.filling)
    if group.status is not GroupStatus.AVAILABLE and not filled:
        raise InvalidState(f"Group {group.id} status must be available, not "
                           f"{group.status.value}, to make a volume in it",
                           {"group_id": group.id, "status": group.status.value})
    return group


def check_group_create(group: GroupRecord, spec: VolumeSpec) -> None:
    """A volume made in ``group``: of one of its types, in its zone (Cinder's)."""
    if spec.volume_type.id not in group.volume_type_ids:
        raise InvalidInput(f"Invalid volume_type provided: {spec.volume_type.name} is not "
                           f"one of group {group.id}'s volume types", {"field": "volume_type"})
    if spec.availability_zone != group.availability_zone:
        raise InvalidInput(f"Availability zone {spec.availability_zone} is not group "
                           f"{group.id}'s ({group.availability_zone})",
                           {"field": "availability_zone"})


def _group_backend(group: GroupRecord, avoid: tuple[str, ...],
                   only: tuple[str, ...] | None) -> tuple[str, ...]:
    """A group's volume goes on the group's backend, unless the hints exclude it."""
    if group.host in avoid or (only is not None and group.host not in only):
        raise InvalidInput(f"group {group.id}'s volumes live on backend {group.host}, which "
                           "the scheduler hints (or the volume's source) exclude",
                           {"field": "group_id"})
    return (group.host,)


def _own_backend(store: GatewayStore, ctx: Context, volume_id: str) -> str | None:
    """The backend of one of the caller's own volumes, if it is placed (and not gone)."""
    rec = store.volumes.get(volume_id)
    if rec is None or rec.project_id != ctx.project_id or rec.status is VolumeStatus.DELETED:
        return None
    return rec.host


class QuotaReserveTask(_ApiTask):
    requires = ("spec",)
    provides = ("reservation_id",)

    async def execute(self, c: CreateApiContext) -> None:
        body = QuotaReserve(c.ctx.project_id, c.deltas, self.s.store.journal.reservation_id())
        RESERVE_BEFORE_SEND()
        try:
            reply = await self.s.quota_call("quota.reserve", body, c.ctx)
        except (Timeout, Unavailable):
            c.reservation_id = body.reservation_id  # made or not: the revert rolls it back
            raise
        RESERVE_AFTER_REPLY()
        c.reservation_id = parse(Reservation, reply, strict=False).reservation_id

    async def revert(self, c: CreateApiContext, failure: BaseException) -> None:
        if c.reservation_id is not None and not c.commit_owed:
            with suppress(WriteFailed):  # sent even if a full disk keeps its row out
                await self.s.store.journal.owe_rollback(c.reservation_id, c.ctx.project_id,
                                                        unsaved_ok=True)


class EntryCreateTask(_ApiTask):
    requires = ("spec", "reservation_id")
    provides = ("record",)

    async def execute(self, c: CreateApiContext) -> None:
        spec = c.spec
        assert spec is not None and c.reservation_id is not None
        record = VolumeRecord(
            id=c.volume_id, project_id=c.ctx.project_id, user_id=c.ctx.user_id, size=spec.size,
            status=VolumeStatus.CREATING, volume_type=spec.volume_type,
            availability_zone=spec.availability_zone, name=spec.name,
            description=spec.description, metadata=spec.metadata,
            request_id=c.ctx.request_id, request_fp=c.fingerprint,
            snapshot_id=c.source.snapshot_id if c.source else None,
            source_volid=c.source.source_volid if c.source else None,
            bootable=c.manage.bootable if c.manage else bool(c.source and c.source.bootable),
            image_metadata=c.source.image_metadata if c.source else {},
            group_id=c.group.id if c.group is not None else None,
        )
        backup = c.backup
        marked = None
        if backup is not None:  # restoring into it, in the entry's transaction
            check_restorable(backup)  # again: it may have changed while quota was reserved
            backup.move(BackupStatus.RESTORING)
            backup.restore_volume_id, c.restoring = record.id, True
            marked = self.s.store.backups.queue_status(backup)
        ENTRY_BEFORE_COMMIT()
        managed = c.manage_source
        route = CreateRoute(c.avoid_backends, c.only_backends,
                            backup.id if backup is not None else None,
                            managed.name if managed is not None else None,
                            managed.backend if managed is not None else None)
        # + the commit it owes, and what its cast names beyond the row
        await self.s.store.add_volume(record, c.reservation_id, route.to_row())
        if marked is not None:
            await marked
        ENTRY_AFTER_COMMIT()
        c.record, c.commit_owed = record, True

    async def revert(self, c: CreateApiContext, failure: BaseException) -> None:
        backup = c.backup
        if c.restoring and backup is not None and backup.status is BackupStatus.RESTORING \
                and backup.restore_volume_id == c.volume_id:
            backup.move(BackupStatus.AVAILABLE)
            backup.restore_volume_id = None
            await self.s.store.backups.queue_status(backup)
        if c.record is not None:
            await self.s.store.remove_volume(c.record)  # + the release it owes


class VolumeCastTask(_ApiTask):
    requires = ("record", "spec")

    async def execute(self, c: CreateApiContext) -> None:
        spec, src, managed = c.spec, c.source, c.manage_source
        assert spec is not None
        request = ScheduleRequest(
            volume_id=c.volume_id, project_id=c.ctx.project_id, size=spec.size,
            availability_zone=spec.availability_zone, volume_type_id=spec.volume_type.id,
            extra_specs=spec.volume_type.extra_specs,
            snapshot_id=src.snapshot_id if src else None,
            source_volid=src.source_volid if src else None,
            manage_ref=managed.name if managed else None,
            backup_id=c.backup.id if c.backup else None,
            avoid_backends=c.avoid_backends, only_backends=c.only_backends,
        )
        if managed is not None:  # straight to the node the admin named
            CAST_BEFORE_SEND()
            await self.s.send_to_node(managed.backend, "node.create_volume",
                                      NodeCreateVolume(request, managed.backend, "", 0), c.ctx)
            CAST_AFTER_SEND()
            return
        if src is None:
            CAST_BEFORE_SEND()
            self.s.schedule(request, c.ctx)
            CAST_AFTER_SEND()
            return
        # Straight to the node that holds the source, bypassing the scheduler; the
        # source is judged again: it may have changed while quota was reserved.
        current_source(src.snapshot_id, src.source_volid, self.s.store, self.s.types, c.ctx)
        body = NodeCreateVolume(request, src.host, sched_epoch="", sched_seq=0)
        CAST_BEFORE_SEND()
        await self.s.send_to_node(src.host, "node.create_volume", body, c.ctx)
        CAST_AFTER_SEND()


def volume_create_api(services: ApiServices) -> LinearFlow[CreateApiContext]:
    return LinearFlow(
        "volume_create_api",
        [
            ExtractVolumeRequestTask(services),
            QuotaReserveTask(services),
            EntryCreateTask(services),
            VolumeCastTask(services),
        ],
        given=("body", "ctx", "volume_id", "fingerprint"),
    )
