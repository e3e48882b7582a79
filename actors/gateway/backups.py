"""Cinder's volume backups, the gateway's side: three flows and the nodes' reports.

    backup_create_api   ExtractBackupRequestTask → QuotaReserveTask
                          → BackupEntryCreateTask → BackupCastTask
    backup_delete_api   ExtractBackupDeleteTask → MarkBackupDeletingTask
                          → BackupDeleteCastTask
    backup_restore_api  ExtractRestoreRequestTask → MarkRestoringTask → RestoreCastTask

A backup is made by its volume's node, which copies the volume's data (or one of its
snapshots') into its backup repository (``storage_node/backup_repository.py``) and
reports ``backup.made``. Meanwhile the volume is ``backing-up`` (from ``available``, or
``in-use`` with ``force``; its end gives it what its attachments make it then:
``states.HELD_BY_AN_OPERATION``), or, for a snapshot's backup, the snapshot is. The
backup's row, its quota's commit (``backups``, ``backup_gigabytes``: Cinder commits at
create) and the volume's status are one transaction; a failed backup is ``error`` and
counts until it is deleted, as Cinder's.

A restore writes the backup's data into an available volume of at least its size
(``restoring-backup``, the backup ``restoring``), done by the volume's node from the
repository it reads (a shared one, or its own: a backup another node made is then not
there, and the restore fails saying so). The node replaces the volume's data whole or
not at all, so a failed restore leaves the volume ``available`` as it was; the backup's
``fail_reason`` says why. A restore with no volume is a volume create naming the backup
(``VolumeCreate.backup_id``; ``create_flow``), placed on the backup's node.

A backup keeps what its volume was besides its bytes (``backup_store.VolumeMeta``), and
a restore that succeeds gives it back as Cinder's backup drivers do
(``restored_details``): the volume's metadata and image metadata become the backup's
when it had some (image metadata makes the volume bootable), and its name and
description when the volume has no name or the one a restore without a volume gave it
(``restore_backup_<id>``).

An ``incremental`` backup has for parent the volume's latest available backup, as
Cinder chooses it (``BackupStore.latest_available``: for a snapshot's, the latest of data
older than the snapshot); its node links the chunks the parent holds unchanged and
writes the rest (``backup_repository``). A backup that others name their parent cannot
be deleted until they are (Cinder's "Incremental backups exist for this backup.").
What a request may do is plain code (``check_*``) the flows call before the first
change.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.backup_records import (
    ImportContext,
    backup_import_api,
    export_record,
)
from cinderblock.actors.gateway.backup_store import BackupRecord, VolumeMeta
from cinderblock.actors.gateway.guards import (
    RunningCreates,
    require_admin,
    require_holder,
    require_reporter,
    retry_fingerprint,
)
from cinderblock.actors.gateway.lifecycle_checks import (
    check_not_deleted_with_group,
    claim_volume,
    release_claim,
    visible_snapshot,
    visible_volume,
)
from cinderblock.actors.gateway.lifecycle_flows import QuotaReserveTask
from cinderblock.actors.gateway.paging import page, wire_bytes
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import (
    MAX_NAME,
    check_metadata,
    check_text,
    field_error,
)
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Link, Request
from cinderblock.actors.runtime.database import all_committed
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.backups import (
    Backup,
    BackupCreate,
    BackupDeleted,
    BackupList,
    BackupListRequest,
    BackupMade,
    BackupModify,
    BackupResetState,
    BackupRestore,
    BackupRestored,
    BackupRestoreInfo,
    ExportedBackup,
    NodeCreateBackup,
    NodeDeleteBackup,
    NodeRestoreBackup,
)
from cinderblock.protocol.messages.quota import backup_amounts
from cinderblock.protocol.messages.volumes import Volume, VolumeCreate
from cinderblock.protocol.states import BackupStatus, SnapshotStatus, VolumeStatus, statuses
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput, InvalidState, NotFound

log = logging.getLogger(__name__)
B, V, P = BackupStatus, VolumeStatus, SnapshotStatus
DELETABLE = (B.AVAILABLE, B.ERROR, B.ERROR_DELETING)
RESET_TO = ("available", "error")  # Cinder's backup os-reset_status
RESTORED_DESCRIPTION = "auto-created_from_restore_from_backup"  # Cinder's
RESTORED_NAME_PREFIX = "restore_backup_"  # a restore without a volume names it so (Cinder's)
STUCK_PER_ROUND = 500  # backups a reconcile round looks at

ENTRY_BEFORE_COMMIT = declare("gateway.backup_create.entry.before_commit")
ENTRY_AFTER_COMMIT = declare("gateway.backup_create.entry.after_commit")
CAST_BEFORE_SEND = declare("gateway.backup_create.cast.before_send")
CAST_AFTER_SEND = declare("gateway.backup_create.cast.after_send")
DELETE_MARK_BEFORE_COMMIT = declare("gateway.backup_delete.mark.before_commit")
DELETE_MARK_AFTER_COMMIT = declare("gateway.backup_delete.mark.after_commit")
DELETE_CAST_BEFORE_SEND = declare("gateway.backup_delete.cast.before_send")
DELETE_CAST_AFTER_SEND = declare("gateway.backup_delete.cast.after_send")
RESTORE_MARK_BEFORE_COMMIT = declare("gateway.backup_restore.mark.before_commit")
RESTORE_MARK_AFTER_COMMIT = declare("gateway.backup_restore.mark.after_commit")
RESTORE_CAST_BEFORE_SEND = declare("gateway.backup_restore.cast.before_send")
RESTORE_CAST_AFTER_SEND = declare("gateway.backup_restore.cast.after_send")
MADE_BEFORE_COMMIT = declare("gateway.backup_made.before_commit")
MADE_AFTER_COMMIT = declare("gateway.backup_made.after_commit")
DELETED_BEFORE_COMMIT = declare("gateway.backup_deleted.before_commit")
DELETED_AFTER_COMMIT = declare("gateway.backup_deleted.after_commit")
RESTORED_BEFORE_COMMIT = declare("gateway.backup_restored.before_commit")
RESTORED_AFTER_COMMIT = declare("gateway.backup_restored.after_commit")


# ---- what a request may do (plain code) -------------------------------------------
def visible_backup(store: GatewayStore, backup_id: str, ctx: Context) -> BackupRecord:
    rec = store.backups.get(backup_id)
    if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"Backup {backup_id} could not be found.", {"backup_id": backup_id})
    return rec


def check_backup_request(body: BackupCreate) -> None:
    """What Cinder's backup create schema checks, and what this cluster does not do."""
    check_text("name", body.name)
    check_text("description", body.description)
    check_metadata(body.metadata)
    for name in ("container", "availability_zone"):
        value = getattr(body, name)
        if value is not None and len(value) > MAX_NAME:
            raise field_error(name, value, f"is too long (more than {MAX_NAME})")


def check_backup_source(volume: VolumeRecord, snapshot: SnapshotRecord | None,
                        force: bool) -> None:
    """Whether the volume (or its snapshot) may be backed up now (Cinder's checks and
    words)."""
    if snapshot is not None:
        if snapshot.volume_id != volume.id:
            raise InvalidInput(f"Volume {volume.id} does not match with snapshot.volume_id "
                               f"{snapshot.volume_id}.", {"snapshot_id": snapshot.id})
        if snapshot.status is not P.AVAILABLE:
            raise InvalidState("Snapshot to be backed up must be available, but the current "
                               f'status is "{snapshot.status.value}".',
                               {"snapshot_id": snapshot.id, "status": snapshot.status.value})
        return
    if volume.status not in (V.AVAILABLE, V.IN_USE) or volume.host is None:
        raise InvalidState("Volume to be backed up must be available or in-use, but the "
                           f'current status is "{volume.status.value}".',
                           {"volume_id": volume.id, "status": volume.status.value})
    if volume.status is V.IN_USE and not force:
        raise InvalidState("Backing up an in-use volume must use the force flag.",
                           {"volume_id": volume.id, "status": volume.status.value})


def check_backup_deletable(rec: BackupRecord) -> None:
    if rec.status not in DELETABLE:
        raise InvalidState(f"Backup status must be available or error (backup {rec.id} is "
                           f"{rec.status.value})", {"backup_id": rec.id,
                                                    "status": rec.status.value})
    if rec.dependents:
        raise InvalidState("Incremental backups exist for this backup.",
                           {"backup_id": rec.id, "dependent_backups": rec.dependents})


def check_parent(parent: BackupRecord | None, volume_id: str) -> BackupRecord:
    """An incremental backup's parent: there, and available (Cinder's words if not)."""
    if parent is None or parent.status is not B.AVAILABLE:
        raise InvalidState("No backups available to do an incremental backup.",
                           {"volume_id": volume_id})
    return parent


def check_restorable(rec: BackupRecord) -> None:
    if rec.status is not B.AVAILABLE:
        raise InvalidState(f"Backup status must be available (backup {rec.id} is "
                           f"{rec.status.value})", {"backup_id": rec.id,
                                                    "status": rec.status.value})


def check_restore_target(backup: BackupRecord, volume: VolumeRecord) -> None:
    """Cinder's: the volume must be available and hold the backup's size."""
    if volume.status is not V.AVAILABLE or volume.host is None:
        raise InvalidState(f"Volume to be restored to must be available (volume {volume.id} "
                           f"is {volume.status.value})",
                           {"volume_id": volume.id, "status": volume.status.value})
    if backup.size > volume.size:
        raise InvalidInput(f"volume size {volume.size} is too small to restore backup of "
                           f"size {backup.size}.", {"volume_id": volume.id,
                                                    "size": volume.size})


def backup_source_of_create(store: GatewayStore, backup_id: str, size: int | None,
                            ctx: Context) -> BackupRecord:
    """The backup a volume create names (Cinder's 3.47 ``backup_id``): visible,
    available, and no larger than the volume asked for."""
    backup = visible_backup(store, backup_id, ctx)
    check_restorable(backup)
    if size is not None and size < backup.size:
        raise InvalidInput(f"volume size {size} is too small to restore backup of size "
                           f"{backup.size}.", {"field": "size", "size": size})
    if backup.host is None:
        raise InvalidState(f"backup {backup.id} is on no node", {"backup_id": backup.id})
    return backup


def volume_meta_of(volume: VolumeRecord) -> VolumeMeta:
    """What a backup keeps of its volume besides its bytes."""
    return VolumeMeta(volume.name, volume.description, dict(volume.metadata),
                      dict(volume.image_metadata))


def restored_details(volume: VolumeRecord, meta: VolumeMeta) -> bool:
    """Give a restored volume what its backup kept of the volume it was made of, as
    Cinder's backup drivers do (``BackupMetadataAPI``'s restore): its metadata and its
    image metadata, each replaced whole when the backup has some (image metadata marks
    it bootable); its name and description when the backup's volume had a name and the
    restored one has none, or the name a restore without a volume gave it. True if
    anything changed."""
    before = (volume.name, volume.description, volume.metadata, volume.image_metadata,
              volume.bootable)
    if meta.name and (not volume.name or volume.name.startswith(RESTORED_NAME_PREFIX)):
        volume.name, volume.description = meta.name, meta.description
    if meta.metadata:
        volume.metadata = dict(meta.metadata)
    if meta.image_metadata:
        volume.image_metadata, volume.bootable = dict(meta.image_metadata), True
    return before != (volume.name, volume.description, volume.metadata,
                      volume.image_metadata, volume.bootable)


# ---- the gateway services the flows use ---------------------------------------------
class BackupServices(Protocol):
    store: GatewayStore

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...
    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    def publish(self, rec: VolumeRecord, push: bool = True) -> None: ...
    def publish_snapshot(self, rec: SnapshotRecord) -> None: ...
    def publish_backup(self, rec: BackupRecord) -> None: ...
    def attachment_status(self, volume_id: str) -> VolumeStatus: ...


@dataclass(slots=True)
class BackupCreateContext:
    body: BackupCreate
    ctx: Context
    backup_id: str
    fingerprint: str = ""  # the request's, with a request id (a retry is compared by it)
    volume: VolumeRecord | None = None
    snapshot: SnapshotRecord | None = None
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0  # a backup is not held to per_volume_gigabytes
    parent_id: str | None = None  # an incremental backup's
    reservation_id: str | None = None
    committed: bool = False  # the row is written, and with it the commit it owes
    record: BackupRecord | None = None
    claimed: str | None = None


@dataclass(slots=True)
class BackupDeleteContext:
    backup_id: str
    ctx: Context
    record: BackupRecord | None = None
    previous: BackupStatus = B.AVAILABLE
    marked: bool = False


@dataclass(slots=True)
class RestoreContext:
    backup_id: str
    volume_id: str
    ctx: Context
    backup: BackupRecord | None = None
    volume: VolumeRecord | None = None
    claimed: str | None = None
    marked: bool = False


C = TypeVar("C")


class _Task(Task[C]):
    def __init__(self, services: BackupServices) -> None:
        self.s = services


def _end_of_hold(s: BackupServices, volume: VolumeRecord) -> bool:
    """A volume a backup held goes back to what its attachments make it; True if moved."""
    if volume.status is not V.BACKING_UP:
        return False
    volume.status, volume.reason = s.attachment_status(volume.id), None
    return True


# ---- backup_create_api ----------------------------------------------------------
class ExtractBackupRequestTask(_Task[BackupCreateContext]):
    requires = ("body",)
    provides = ("volume", "project", "deltas")

    async def execute(self, c: BackupCreateContext) -> None:
        body, store = c.body, self.s.store
        check_backup_request(body)
        volume = visible_volume(store, body.volume_id, c.ctx)
        snapshot = (None if body.snapshot_id is None
                    else visible_snapshot(store, body.snapshot_id, c.ctx))
        check_backup_source(volume, snapshot, body.force)
        if snapshot is not None:
            check_not_deleted_with_group(store, snapshot)
        if body.availability_zone not in (None, volume.availability_zone):
            raise InvalidInput(f"a backup is made by its volume's node, in its zone "
                               f"{volume.availability_zone!r}, not {body.availability_zone!r}",
                               {"field": "availability_zone"})
        if body.incremental:
            before = None if snapshot is None else snapshot.created_at
            c.parent_id = check_parent(store.backups.latest_available(volume.id, before),
                                       volume.id).id
        c.claimed = claim_volume(store, volume, "backing-up")
        c.volume, c.snapshot, c.project = volume, snapshot, volume.project_id
        c.deltas = backup_amounts(snapshot.size if snapshot is not None else volume.size)


class BackupEntryCreateTask(_Task[BackupCreateContext]):
    """The backup's row, the commit of its reservation it owes, and its volume (or
    snapshot) ``backing-up``: one transaction."""

    requires = ("volume", "reservation_id")
    provides = ("record", "committed")

    async def execute(self, c: BackupCreateContext) -> None:
        volume, snapshot, body, store = c.volume, c.snapshot, c.body, self.s.store
        assert volume is not None and volume.host is not None
        check_backup_source(volume, snapshot, body.force)  # again, after the quota call
        if snapshot is not None:
            check_not_deleted_with_group(store, snapshot)
        if c.parent_id is not None:  # again: a delete may have taken it meanwhile
            check_parent(store.backups.get(c.parent_id), volume.id)
        now = time.time()
        record = BackupRecord(
            id=c.backup_id, project_id=volume.project_id, user_id=c.ctx.user_id,
            volume_id=volume.id, size=snapshot.size if snapshot else volume.size,
            status=B.CREATING, host=volume.host, snapshot_id=body.snapshot_id,
            name=check_text("name", body.name),
            description=check_text("description", body.description),
            container=body.container, availability_zone=volume.availability_zone,
            metadata=dict(body.metadata), created_at=now,
            data_timestamp=snapshot.created_at if snapshot else now,
            request_id=c.ctx.request_id, request_fp=c.fingerprint, parent_id=c.parent_id,
        )
        written = store.backups.queue_add(record, c.reservation_id, volume_meta_of(volume))
        if snapshot is not None:
            snapshot.move(P.BACKING_UP)
            held = store.snapshots.queue_status(snapshot)
        else:
            volume.status, volume.reason = V.BACKING_UP, None
            held = store.queue_status(volume)
        c.record = record
        ENTRY_BEFORE_COMMIT()
        await all_committed(store.backups.settle_add(record, written), held)
        ENTRY_AFTER_COMMIT()
        c.committed = True
        self.s.publish_backup(record)
        if snapshot is not None:
            self.s.publish_snapshot(snapshot)
        else:
            self.s.publish(volume)

    async def revert(self, c: BackupCreateContext, failure: BaseException) -> None:
        if c.record is None or not c.committed:
            return
        store, volume, snapshot = self.s.store, c.volume, c.snapshot
        writes = [store.backups.queue_remove(c.record)]  # + the release it owes
        if snapshot is not None and snapshot.status is P.BACKING_UP:
            snapshot.move(P.AVAILABLE)
            writes.append(store.snapshots.queue_status(snapshot))
        elif volume is not None and _end_of_hold(self.s, volume):
            writes.append(store.queue_status(volume))
        await all_committed(*writes)
        c.record.status = B.DELETED
        self.s.publish_backup(c.record)
        if snapshot is not None:
            self.s.publish_snapshot(snapshot)
        elif volume is not None:
            self.s.publish(volume)


class BackupCastTask(_Task[BackupCreateContext]):
    requires = ("record", "committed")

    async def execute(self, c: BackupCreateContext) -> None:
        rec = c.record
        assert rec is not None and rec.host is not None
        body = NodeCreateBackup(rec.id, rec.volume_id, rec.size, rec.snapshot_id,
                                rec.parent_id)
        CAST_BEFORE_SEND()
        await self.s.send_to_node(rec.host, "node.create_backup", body, c.ctx)
        CAST_AFTER_SEND()


def backup_create_api(s: BackupServices) -> LinearFlow[BackupCreateContext]:
    return LinearFlow("backup_create_api", [
        ExtractBackupRequestTask(s), QuotaReserveTask[BackupCreateContext](s),
        BackupEntryCreateTask(s), BackupCastTask(s)], given=("body", "ctx", "backup_id"))


# ---- backup_delete_api ----------------------------------------------------------
class ExtractBackupDeleteTask(_Task[BackupDeleteContext]):
    requires = ("backup_id",)
    provides = ("record", "previous")

    async def execute(self, c: BackupDeleteContext) -> None:
        rec = visible_backup(self.s.store, c.backup_id, c.ctx)
        check_backup_deletable(rec)
        c.record, c.previous = rec, rec.status


class MarkBackupDeletingTask(_Task[BackupDeleteContext]):
    requires = ("record", "previous")

    async def execute(self, c: BackupDeleteContext) -> None:
        rec = c.record
        assert rec is not None
        check_backup_deletable(rec)  # again: another request may have come
        rec.move(B.DELETING)
        c.marked = True
        DELETE_MARK_BEFORE_COMMIT()
        await self.s.store.backups.queue_status(rec)
        DELETE_MARK_AFTER_COMMIT()
        self.s.publish_backup(rec)

    async def revert(self, c: BackupDeleteContext, failure: BaseException) -> None:
        rec = c.record
        if c.marked and rec is not None and rec.status is B.DELETING:
            rec.status = c.previous
            await self.s.store.backups.queue_status(rec)
            self.s.publish_backup(rec)


class BackupDeleteCastTask(_Task[BackupDeleteContext]):
    requires = ("record",)

    async def execute(self, c: BackupDeleteContext) -> None:
        rec = c.record
        assert rec is not None and rec.host is not None
        DELETE_CAST_BEFORE_SEND()
        await self.s.send_to_node(rec.host, "node.delete_backup", NodeDeleteBackup(rec.id),
                                  c.ctx)
        DELETE_CAST_AFTER_SEND()


def backup_delete_api(s: BackupServices) -> LinearFlow[BackupDeleteContext]:
    return LinearFlow("backup_delete_api", [
        ExtractBackupDeleteTask(s), MarkBackupDeletingTask(s), BackupDeleteCastTask(s)],
        given=("backup_id", "ctx"))


# ---- backup_restore_api ---------------------------------------------------------
class ExtractRestoreRequestTask(_Task[RestoreContext]):
    requires = ("backup_id", "volume_id")
    provides = ("backup", "volume")

    async def execute(self, c: RestoreContext) -> None:
        store = self.s.store
        backup = visible_backup(store, c.backup_id, c.ctx)
        check_restorable(backup)
        volume = visible_volume(store, c.volume_id, c.ctx)
        check_restore_target(backup, volume)
        c.claimed = claim_volume(store, volume, "restoring-backup")
        c.backup, c.volume = backup, volume


class MarkRestoringTask(_Task[RestoreContext]):
    """The backup ``restoring`` into the volume, the volume ``restoring-backup``: one
    transaction."""

    requires = ("backup", "volume")

    async def execute(self, c: RestoreContext) -> None:
        backup, volume, store = c.backup, c.volume, self.s.store
        assert backup is not None and volume is not None
        check_restorable(backup)  # again: another request may have come
        check_restore_target(backup, volume)
        backup.move(B.RESTORING)
        backup.restore_volume_id = volume.id
        volume.status, volume.reason = V.RESTORING_BACKUP, None
        c.marked = True
        RESTORE_MARK_BEFORE_COMMIT()
        await all_committed(store.backups.queue_status(backup), store.queue_status(volume))
        RESTORE_MARK_AFTER_COMMIT()
        self.s.publish_backup(backup)
        self.s.publish(volume)

    async def revert(self, c: RestoreContext, failure: BaseException) -> None:
        backup, volume, store = c.backup, c.volume, self.s.store
        if not c.marked or backup is None or volume is None:
            return
        writes = []
        if backup.status is B.RESTORING:
            backup.move(B.AVAILABLE)
            backup.restore_volume_id = None
            writes.append(store.backups.queue_status(backup))
        if volume.status is V.RESTORING_BACKUP:
            volume.status = V.AVAILABLE
            writes.append(store.queue_status(volume))
        await all_committed(*writes)
        self.s.publish_backup(backup)
        self.s.publish(volume)


class RestoreCastTask(_Task[RestoreContext]):
    requires = ("backup", "volume")

    async def execute(self, c: RestoreContext) -> None:
        volume = c.volume
        assert volume is not None and volume.host is not None
        RESTORE_CAST_BEFORE_SEND()
        await self.s.send_to_node(volume.host, "node.restore_backup",
                                  NodeRestoreBackup(c.backup_id, volume.id), c.ctx)
        RESTORE_CAST_AFTER_SEND()


def backup_restore_api(s: BackupServices) -> LinearFlow[RestoreContext]:
    return LinearFlow("backup_restore_api", [
        ExtractRestoreRequestTask(s), MarkRestoringTask(s), RestoreCastTask(s)],
        given=("backup_id", "volume_id", "ctx"))


# ---- the handlers ---------------------------------------------------------------
class GatewayHooks(BackupServices, Protocol):
    """What the handlers use of the gateway besides the flows' services."""

    @property
    def router(self) -> Link: ...
    @property
    def node_hosts(self) -> frozenset[str]: ...
    @property
    def node_backends(self) -> frozenset[str]: ...

    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]: ...
    async def create_volume(self, req: Request, body: VolumeCreate) -> Volume: ...
    async def created_before(self, req: Request, body: VolumeCreate) -> Volume | None: ...
    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]: ...


class GatewayBackups:
    """The gateway's backup ops and the nodes' reports about backups."""

    def __init__(self, gw: GatewayHooks) -> None:
        self.gw = gw
        self.store = gw.store
        self.create_flow = backup_create_api(gw)
        self.delete_flow = backup_delete_api(gw)
        self.restore_flow = backup_restore_api(gw)
        self._importing: set[str] = set()  # the ids of imports under way
        self.import_flow = backup_import_api(gw, self._importing)
        # a create with a request id, while its flow runs: what its retries wait for
        self._creating = RunningCreates[BackupRecord]()

    def handlers(self) -> dict[str, Handler]:
        return {
            "backup.create": self.on_create, "backup.show": self.on_show,
            "backup.list": self.on_list, "backup.update": self.on_update,
            "backup.delete": self.on_delete, "backup.restore": self.on_restore,
            "backup.reset_state": self.on_reset_state,
            "backup.export_record": self.on_export_record,
            "backup.import_record": self.on_import_record, "backup.made": self.on_made,
            "backup.deleted": self.on_deleted, "backup.restored": self.on_restored,
        }

    async def _run(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                   ) -> None:
        try:
            await self.gw.run_flow(flow, c, volume_id, ctx)
        finally:
            release_claim(self.store, getattr(c, "claimed", None))

    # ---- requests ---------------------------------------------------------------
    async def on_create(self, req: Request) -> Backup:
        """Run a backup create; a retry with the request id of one made (within a day)
        or still being made answers with that one, as a volume's create does."""
        body: BackupCreate = req.body
        ctx = req.ctx
        fingerprint = retry_fingerprint(ctx.request_id, body, check_backup_request)

        async def make() -> BackupRecord:
            c = BackupCreateContext(body, ctx, str(uuid.uuid4()), fingerprint)
            await self._run(self.create_flow, c, body.volume_id, ctx)
            assert c.record is not None
            return c.record

        made, _ = await self._creating.once(ctx, fingerprint, self.store.backups.made_by, make)
        return made.view()

    def on_show(self, req: Request) -> Backup:
        return visible_backup(self.store, req.body.backup_id, req.ctx).view()

    async def on_list(self, req: Request) -> BackupList:
        body: BackupListRequest = req.body
        project: str | None = req.ctx.project_id
        if body.all_projects and req.ctx.is_admin:
            project = body.project_id or None
        if body.status is not None:
            statuses(BackupStatus, body.status)  # an unknown one is refused, naming it
        backups = self.store.backups

        def listing(below: Any) -> Any:
            return backups.newest_first(project, below, body.volume_id, body.status,
                                        body.name)

        count = None if not body.with_count else await backups.count(
            project, body.volume_id, body.status, body.name, req.ctx.project_id)
        found, next_marker = page(
            backups.get, listing, project,
            lambda rec: ((body.volume_id is None or rec.volume_id == body.volume_id)
                         and (body.status is None or rec.status.value == body.status)
                         and (body.name is None or rec.name == body.name)),
            body.marker, body.limit, wire_bytes)
        return BackupList(tuple(rec.view() for rec in found), next_marker, count)

    async def on_update(self, req: Request) -> Backup:
        body: BackupModify = req.body
        rec = visible_backup(self.store, body.backup_id, req.ctx)
        name = check_text("name", body.name)
        description = check_text("description", body.description)
        metadata = None if body.metadata is None else check_metadata(body.metadata)
        unknown = sorted(set(body.cleared) - {"name", "description"})
        if unknown:
            raise InvalidInput(f"only name and description may be cleared, not {unknown[0]}",
                               {"field": unknown[0]})
        if body.name is not None or "name" in body.cleared:
            rec.name = name
        if body.description is not None or "description" in body.cleared:
            rec.description = description
        if metadata is not None:
            rec.metadata = metadata
        await self.store.backups.save_details(rec)
        self.gw.publish_backup(rec)
        return rec.view()

    async def on_delete(self, req: Request) -> Backup:
        c = BackupDeleteContext(req.body.backup_id, req.ctx)
        await self._run(self.delete_flow, c, c.backup_id, req.ctx)
        assert c.record is not None
        return c.record.view()

    async def on_restore(self, req: Request) -> BackupRestoreInfo:
        body: BackupRestore = req.body
        if body.volume_id is None:  # into a new volume: a create from the backup
            backup = visible_backup(self.store, body.backup_id, req.ctx)
            name = check_text("name", body.name) or f"restore_backup_{backup.id}"
            create = VolumeCreate(size=backup.size, name=name,
                                  description=RESTORED_DESCRIPTION, backup_id=backup.id)
            # sent again under its request id: the volume the first made (the backup
            # may be restoring into it still)
            volume = await self.gw.created_before(req, create)
            if volume is None:
                check_restorable(backup)
                volume = await self.gw.create_volume(req, create)
            return BackupRestoreInfo(backup.id, volume.id, volume.name)
        c = RestoreContext(body.backup_id, body.volume_id, req.ctx)
        await self._run(self.restore_flow, c, body.volume_id, req.ctx)
        assert c.volume is not None
        return BackupRestoreInfo(body.backup_id, c.volume.id, c.volume.name)

    async def on_reset_state(self, req: Request) -> Backup:
        body: BackupResetState = req.body
        require_admin(req.ctx, "reset a backup's status")
        if body.status not in RESET_TO:
            raise InvalidInput(f"a backup's status may be reset to {' or '.join(RESET_TO)}, "
                               f"not {body.status!r}", {"field": "status"})
        rec = visible_backup(self.store, body.backup_id, req.ctx)
        new = BackupStatus(body.status)
        if rec.status is not new:
            was = rec.status
            rec.status, rec.restore_volume_id = new, None
            rec.updated_at = time.time()
            if was is B.CREATING:  # its node's report will be ignored: free the source
                await self._saved_releasing_source(rec)
            else:  # a restore's volume is freed by its node's report (on_restored)
                await self.store.backups.queue_status(rec)
                self.gw.publish_backup(rec)
            log.warning("backup %s reset from %s to %s by %s", rec.id, was.value,
                        new.value, req.ctx.user_id)
        return rec.view()

    def on_export_record(self, req: Request) -> ExportedBackup:
        """An admin's: the record of an available backup (``backup_records``)."""
        require_admin(req.ctx, "export a backup's record")
        rec = visible_backup(self.store, req.body.backup_id, req.ctx)
        if rec.status is not B.AVAILABLE:
            raise InvalidState(f"Backup status must be available and not {rec.status.value}.",
                               {"backup_id": rec.id, "status": rec.status.value})
        return export_record(rec, self.store.backups.volume_meta(rec.id))

    async def on_import_record(self, req: Request) -> Backup:
        """An admin's: a backup another gateway made (or this one, before its file was
        lost), known again once its node finds it whole in its repository."""
        require_admin(req.ctx, "import a backup's record")
        c = ImportContext(req.body, req.ctx)
        await self.gw.run_flow(self.import_flow, c, "", req.ctx)
        assert c.made is not None
        return c.made.view()

    # ---- the nodes' reports --------------------------------------------------------
    def _reported(self, req: Request, backup_id: str) -> BackupRecord | None:
        """The backup a node's report is about (None: unknown), once the sender is a
        node and the one that made it."""
        require_reporter(req, self.gw.router, self.gw.node_hosts)
        rec = self.store.backups.get(backup_id)
        if rec is not None:
            require_holder(req, rec.host, f"backup {rec.id}")
        return rec

    async def on_made(self, req: Request) -> None:
        body: BackupMade = req.body
        rec = self._reported(req, body.backup_id)
        if rec is None or rec.status is not B.CREATING:
            log.warning("backup.made for %s, which is not being made", body.backup_id)
            return
        if body.reason is None:
            rec.move(B.AVAILABLE)
            rec.object_count = body.object_count
        else:
            rec.move(B.ERROR, body.reason)
        MADE_BEFORE_COMMIT()
        await self._saved_releasing_source(rec)
        MADE_AFTER_COMMIT()

    async def _saved_releasing_source(self, rec: BackupRecord) -> None:
        """Save the backup's status and, in the same transaction, give its volume (or
        snapshot) back: what its attachments make the volume, the snapshot available."""
        writes = [self.store.backups.queue_status(rec)]
        snapshot = (None if rec.snapshot_id is None
                    else self.store.snapshots.get(rec.snapshot_id))
        volume = None if rec.snapshot_id is not None else self.store.volumes.get(rec.volume_id)
        if snapshot is not None and snapshot.status is P.BACKING_UP:
            snapshot.move(P.AVAILABLE)
            writes.append(self.store.snapshots.queue_status(snapshot))
        if volume is not None and _end_of_hold(self.gw, volume):
            writes.append(self.store.queue_status(volume))
        await all_committed(*writes)
        self.gw.publish_backup(rec)
        if snapshot is not None:
            self.gw.publish_snapshot(snapshot)
        if volume is not None:
            self.gw.publish(volume)

    async def on_deleted(self, req: Request) -> None:
        body: BackupDeleted = req.body
        rec = self._reported(req, body.backup_id)
        if rec is None or rec.status is not B.DELETING:
            log.warning("backup.deleted for %s, which is not being deleted", body.backup_id)
            return
        DELETED_BEFORE_COMMIT()
        if body.reason is not None:
            rec.move(B.ERROR_DELETING, body.reason)
            await self.store.backups.queue_status(rec)
        else:
            await self.store.backups.queue_remove(rec)  # + the release it owes
            rec.status = B.DELETED
        DELETED_AFTER_COMMIT()
        self.gw.publish_backup(rec)

    async def on_restored(self, req: Request) -> None:
        body: BackupRestored = req.body
        require_reporter(req, self.gw.router, self.gw.node_hosts)
        volume = self.store.volumes.get(body.volume_id)
        if volume is not None:
            require_holder(req, volume.host, f"volume {volume.id}")
        rec = self.store.backups.get(body.backup_id)
        if volume is None or volume.status is not V.RESTORING_BACKUP:
            log.warning("backup.restored for %s into %s, which is not being restored",
                        body.backup_id, body.volume_id)
            return
        if rec is None or rec.status is not B.RESTORING or rec.restore_volume_id != volume.id:
            # the backup was reset (or deleted) meanwhile: the volume's restore ends all
            # the same (a volume is restoring-backup only while its node restores it)
            log.warning("backup.restored for %s into %s: the backup is no longer restoring "
                        "it; the volume is available again", body.backup_id, volume.id)
            volume.status, volume.reason = V.AVAILABLE, None
            await self.store.queue_status(volume)
            self.gw.publish(volume)
            return
        await self.end_restore(rec, volume, body.reason)

    async def end_restore(self, rec: BackupRecord, volume: VolumeRecord,
                          reason: str | None) -> None:
        """A restore's end: the backup available again (its ``fail_reason`` saying why a
        failed one failed), the volume available (with the backup's data and what it kept
        of its volume, or its own): one transaction."""
        rec.move(B.AVAILABLE, None if reason is None
                 else f"restore into volume {volume.id} failed: {reason}")
        rec.restore_volume_id = None
        volume.status, volume.reason = V.AVAILABLE, None
        writes = [self.store.backups.queue_status(rec), self.store.queue_status(volume)]
        meta = None if reason is not None else self.store.backups.volume_meta(rec.id)
        if meta is not None and restored_details(volume, meta):
            writes.append(self.store.queue_details(volume))
        RESTORED_BEFORE_COMMIT()
        await all_committed(*writes)
        RESTORED_AFTER_COMMIT()
        self.gw.publish_backup(rec)
        self.gw.publish(volume)

    def volume_made(self, volume: VolumeRecord) -> None:
        """A volume created from a backup left ``creating`` (available or error): the
        backup is available again (its ``fail_reason`` saying why a failed one failed),
        and an available volume has what the backup kept of its volume, queued with the
        volume's status (one transaction)."""
        rec = self.store.backups.restoring_into(volume.id)
        if rec is None or rec.status is not B.RESTORING:
            return
        meta = self.store.backups.volume_meta(rec.id) if volume.status is V.AVAILABLE else None
        if meta is not None and restored_details(volume, meta):
            self.store.queue_details(volume).add_done_callback(_consumed)
        reason = None if volume.status is V.AVAILABLE else (
            f"restore into new volume {volume.id} failed: {volume.reason or 'error'}")
        rec.move(B.AVAILABLE, reason)
        rec.restore_volume_id = None
        def told(done: asyncio.Future[None]) -> None:
            if done.exception() is None:
                self.gw.publish_backup(rec)

        self.store.backups.queue_status(rec).add_done_callback(told)

    # ---- what the reconciler mends -------------------------------------------------
    async def mend(self, before: float, busy: Callable[[str, list[str]], Awaitable[set[str]]]
                   ) -> list[str]:
        """Backups creating, deleting or restoring since before ``before`` whose node is
        not working on them (``busy``: the node's answer, ``node.probe``): the request is
        sent to it again (each is idempotent there: a backup made whole is answered
        again, one deleted is fine, a restore replaces the volume's data whole), or, for
        a restore whose volume has moved on (or a create from the backup that ended
        unreported), the backup is available again. Returns the backups acted on."""
        store, acted = self.store, []
        stuck = store.backups.in_transition_since(before, STUCK_PER_ROUND)
        per_node: dict[str, list[BackupRecord]] = {}
        for rec in stuck:
            node = self._node_of(rec)
            if node is not None:
                per_node.setdefault(node, []).append(rec)
        for node, records in per_node.items():
            try:
                working = await busy(node, [r.id for r in records])
            except CinderblockError as exc:
                log.info("reconcile: backups of %s not looked at: %s", node, exc.message)
                continue
            for rec in records:
                if rec.id not in working and await self._mend_one(rec):
                    acted.append(rec.id)
        return acted

    def _node_of(self, rec: BackupRecord) -> str | None:
        """The backend of the node that works on the backup now: the restored volume's
        for a restore, else the backup's own."""
        if rec.status is B.RESTORING and rec.restore_volume_id is not None:
            volume = self.store.volumes.get(rec.restore_volume_id)
            return volume.host if volume is not None and volume.host else rec.host
        return rec.host

    async def _mend_one(self, rec: BackupRecord) -> bool:
        ctx = Context(rec.project_id, "cinderblock-reconciler", roles=("admin",))
        if rec.status is B.CREATING and rec.host is not None:
            log.warning("reconcile: backup %s is still being made: asked again", rec.id)
            self.gw.cast_to_node(rec.host, "node.create_backup", NodeCreateBackup(
                rec.id, rec.volume_id, rec.size, rec.snapshot_id, rec.parent_id), ctx)
        elif rec.status is B.DELETING and rec.host is not None:
            log.warning("reconcile: backup %s is still being deleted: asked again", rec.id)
            self.gw.cast_to_node(rec.host, "node.delete_backup", NodeDeleteBackup(rec.id), ctx)
        elif rec.status is B.RESTORING:
            volume = (None if rec.restore_volume_id is None
                      else self.store.volumes.get(rec.restore_volume_id))
            if volume is not None and volume.status is V.CREATING:
                return False  # a create from it: the volume's own end gives it back
            if volume is not None and volume.status is V.RESTORING_BACKUP and volume.host:
                log.warning("reconcile: backup %s is still being restored into %s: asked "
                            "again", rec.id, volume.id)
                self.gw.cast_to_node(volume.host, "node.restore_backup",
                                     NodeRestoreBackup(rec.id, volume.id), ctx)
            else:
                log.warning("reconcile: backup %s was restoring into %s, which has moved "
                            "on: available again", rec.id, rec.restore_volume_id)
                rec.move(B.AVAILABLE)
                rec.restore_volume_id = None
                await self.store.backups.queue_status(rec)
                self.gw.publish_backup(rec)
                return True
        else:
            return False
        rec.updated_at = time.time()  # asked again: looked at again after the delay
        await self.store.backups.queue_status(rec)
        return True


def _consumed(done: asyncio.Future[None]) -> None:
    """A write whose failure its transaction's other writers report (and the store reads
    memory back from the file after): nothing more to do here."""
    if not done.cancelled():
        done.exception()


__all__ = ["GatewayBackups", "backup_source_of_create", "restored_details", "visible_backup"]
