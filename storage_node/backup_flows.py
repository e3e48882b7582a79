"""The storage node's side of backups: three flows, named as Cinder's backup manager's,
in the shape of the node's lifecycle flows (``lifecycle_flows``).

    backup_create_manager   OnFailureReportTask(backup.made, with the reason)
                              → NotifyActionTask(backup.create.start) → CreateBackupTask
                              → CreateBackupOnFinishTask(backup.create.end)
    backup_delete_manager   OnFailureReportTask(backup.deleted, with the reason)
                              → NotifyActionTask(backup.delete.start) → DeleteBackupTask
                              → DeleteBackupOnFinishTask(backup.delete.end)
    backup_restore_manager  OnFailureReportTask(backup.restored, with the reason)
                              → NotifyActionTask(backup.restore.start) → RestoreBackupTask
                              → RestoreBackupOnFinishTask(backup.restore.end)

Who does what: the driver gives the file a backup copies (``Driver.backup_view``: the
volume's as of one instant, a clone of it or, where a guest writes it and the backend
cannot clone, a copy made while the node holds the guest's writes; or its snapshot's;
None for a backend with no bytes) and the backup repository
(``backup_repository``) stores it as chunks, whole or not at all. A restore opens the
backup (its manifest read and checked) and hands the driver the repository's
``write_into``, which the driver runs into a new file it renames over the volume's
(``Driver.restore_volume``): the volume holds the backup's data whole, or its own.

The first task of each flow does nothing on the way forward; its revert tells the
gateway the op failed and why (``reason``: the gateway puts the backup in ``error`` or
``error_deleting`` and gives the volume its status back). The finishing tasks report
success: the backup's object count, its deletion, the restore's end. A delete has no
volume: its flow runs under the backup's id.

Failpoints (``bench/failpoints.py`` kills the node at each): before and after each
report, and, in the repository, before a new backup's rename into place, after a
deleted one's rename out of sight, and before a restore's file replaces the volume's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from cinderblock.actors.flow.engine import Events, LinearFlow, Task
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.backups import (
    BackupDeleted,
    BackupMade,
    BackupRestored,
    CheckedBackup,
    NodeCheckBackup,
    NodeCreateBackup,
    NodeDeleteBackup,
    NodeRestoreBackup,
)
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.storage_node.backends import Driver, DriverError
from cinderblock.storage_node.backends.base import WriteHold
from cinderblock.storage_node.backup_repository import BackupRepository

log = logging.getLogger(__name__)

CREATE_BEFORE_REPORT = declare("node.create_backup.before_report")
CREATE_AFTER_REPORT = declare("node.create_backup.after_report")
DELETE_BEFORE_REPORT = declare("node.delete_backup.before_report")
DELETE_AFTER_REPORT = declare("node.delete_backup.after_report")
RESTORE_BEFORE_REPORT = declare("node.restore_backup.before_report")
RESTORE_AFTER_REPORT = declare("node.restore_backup.after_report")


class GatewayLink(Protocol):
    """What the flows do with the node's link to the gateway: cast to it."""

    def cast(self, op: str, body: Any, ctx: Context | None = None) -> None: ...


class BackupServices(Protocol):
    """What the three flows use of their storage node (``StorageNode`` is one)."""

    @property
    def backend_id(self) -> str: ...
    @property
    def driver(self) -> Driver: ...
    @property
    def backups(self) -> BackupRepository: ...
    @property
    def gateway(self) -> GatewayLink: ...
    @property
    def events(self) -> Events: ...

    def stats_changed(self) -> None: ...
    def working(self, *ids: str) -> AbstractContextManager[None]: ...
    def guest_writes(self, volume_id: str) -> WriteHold | None:
        """What holds the writes of a guest attached to the volume; None if none can
        write it (no read-write export)."""
    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]: ...


@dataclass(slots=True)
class BackupOpContext:
    ctx: Context
    backup_id: str
    volume_id: str = ""  # none for a delete: only the repository is asked
    size: int = 0  # GiB, a create's: the volume's as the gateway records it
    snapshot_id: str | None = None  # a create of the volume's snapshot's data
    parent_id: str | None = None  # an incremental create's parent backup
    object_count: int = 0  # chunks the repository holds, once made
    done: bool = False


Report = Callable[[BackupOpContext, BaseException], tuple[str, object]]


def _reason(failure: BaseException) -> str:
    """Never empty: an empty reason would read as success at the gateway."""
    return str(failure) or type(failure).__name__


class _NodeTask(Task[BackupOpContext]):
    def __init__(self, services: NodeBackups) -> None:
        self.s = services


class OnFailureReportTask(_NodeTask):
    """Nothing on the way forward; on failure, tells the gateway the op failed, and why."""

    def __init__(self, services: NodeBackups, report: Report) -> None:
        super().__init__(services)
        self.report = report

    async def execute(self, c: BackupOpContext) -> None:
        """The work is in revert."""

    async def revert(self, c: BackupOpContext, failure: BaseException) -> None:
        op, body = self.report(c, failure)
        self.s.tell_gateway(op, body, c.ctx)


class NotifyActionTask(_NodeTask):
    def __init__(self, services: NodeBackups, event: str) -> None:
        super().__init__(services)
        self.event = event

    async def execute(self, c: BackupOpContext) -> None:
        self.s.notify(c, self.event)


# ---- create ------------------------------------------------------------------------


class CreateBackupTask(_NodeTask):
    async def execute(self, c: BackupOpContext) -> None:
        node = self.s.node
        hold = node.guest_writes(c.volume_id)  # an in-use volume: a copy of one instant
        async with node.driver.backup_view(c.volume_id, c.snapshot_id, hold) as source:
            c.object_count = await self.s.node.backups.write(c.backup_id, c.volume_id,
                                                             c.size, source, c.parent_id)
        c.done = True

    async def revert(self, c: BackupOpContext, failure: BaseException) -> None:
        if c.done:  # made, but reported failed: nothing is kept (a failed write leaves none)
            await self.s.node.backups.delete(c.backup_id)


class CreateBackupOnFinishTask(_NodeTask):
    async def execute(self, c: BackupOpContext) -> None:
        CREATE_BEFORE_REPORT()
        self.s.tell_gateway("backup.made", BackupMade(c.backup_id, c.object_count), c.ctx)
        CREATE_AFTER_REPORT()
        self.s.notify(c, "backup.create.end")


def _create_failed(c: BackupOpContext, failure: BaseException) -> tuple[str, object]:
    return "backup.made", BackupMade(c.backup_id, reason=_reason(failure))


# ---- delete ------------------------------------------------------------------------


class DeleteBackupTask(_NodeTask):
    async def execute(self, c: BackupOpContext) -> None:
        await self.s.node.backups.delete(c.backup_id)  # a missing backup is fine
        c.done = True


class DeleteBackupOnFinishTask(_NodeTask):
    async def execute(self, c: BackupOpContext) -> None:
        DELETE_BEFORE_REPORT()
        self.s.tell_gateway("backup.deleted", BackupDeleted(c.backup_id), c.ctx)
        DELETE_AFTER_REPORT()
        self.s.notify(c, "backup.delete.end")


def _delete_failed(c: BackupOpContext, failure: BaseException) -> tuple[str, object]:
    return "backup.deleted", BackupDeleted(c.backup_id, _reason(failure))


# ---- restore -----------------------------------------------------------------------


class RestoreBackupTask(_NodeTask):
    async def execute(self, c: BackupOpContext) -> None:
        backup = await self.s.node.backups.open_backup(c.backup_id)
        await self.s.node.driver.restore_volume(c.volume_id, backup.write_into)
        c.done = True


class RestoreBackupOnFinishTask(_NodeTask):
    async def execute(self, c: BackupOpContext) -> None:
        self.s.node.stats_changed()  # the volume's allocated space is the backup's now
        RESTORE_BEFORE_REPORT()
        self.s.tell_gateway("backup.restored", BackupRestored(c.backup_id, c.volume_id),
                            c.ctx)
        RESTORE_AFTER_REPORT()
        self.s.notify(c, "backup.restore.end")


def _restore_failed(c: BackupOpContext, failure: BaseException) -> tuple[str, object]:
    return "backup.restored", BackupRestored(c.backup_id, c.volume_id, _reason(failure))


# ---- the flows and the handlers ------------------------------------------------


def _flows(s: NodeBackups) -> tuple[LinearFlow[BackupOpContext], LinearFlow[BackupOpContext],
                                    LinearFlow[BackupOpContext]]:
    given = ("ctx", "backup_id", "volume_id")
    create = LinearFlow("backup_create_manager", [
        OnFailureReportTask(s, _create_failed), NotifyActionTask(s, "backup.create.start"),
        CreateBackupTask(s), CreateBackupOnFinishTask(s)], given=given)
    delete = LinearFlow("backup_delete_manager", [
        OnFailureReportTask(s, _delete_failed), NotifyActionTask(s, "backup.delete.start"),
        DeleteBackupTask(s), DeleteBackupOnFinishTask(s)], given=given)
    restore = LinearFlow("backup_restore_manager", [
        OnFailureReportTask(s, _restore_failed), NotifyActionTask(s, "backup.restore.start"),
        RestoreBackupTask(s), RestoreBackupOnFinishTask(s)], given=given)
    return create, delete, restore


def backup_handlers(node: BackupServices) -> dict[str, Handler]:
    return NodeBackups(node).handlers()


class NodeBackups:
    """Runs the three flows on one node's driver and backup repository, and reports to
    the gateway."""

    def __init__(self, node: BackupServices) -> None:
        self.node = node
        self.create, self.delete, self.restore = _flows(self)

    def handlers(self) -> dict[str, Handler]:
        return {
            "node.create_backup": self.on_create_backup,
            "node.delete_backup": self.on_delete_backup,
            "node.restore_backup": self.on_restore_backup,
            "node.check_backup": self.on_check_backup,
        }

    # ---- services the tasks use ------------------------------------------
    def tell_gateway(self, op: str, body: object, ctx: Context) -> None:
        self.node.gateway.cast(op, body, ctx)

    def notify(self, c: BackupOpContext, event: str) -> None:
        volume = {"volume_id": c.volume_id} if c.volume_id else {}
        snapshot = {"snapshot_id": c.snapshot_id} if c.snapshot_id else {}
        self.node.events.emit("notify", event=event, host=self.node.backend_id,
                              backup_id=c.backup_id, **volume, **snapshot)

    # ---- handlers --------------------------------------------------------
    async def on_create_backup(self, req: Request) -> None:
        b: NodeCreateBackup = req.body
        c = BackupOpContext(req.ctx, b.backup_id, b.volume_id, b.size, b.snapshot_id,
                            b.parent_id)
        snapshot = (b.snapshot_id,) if b.snapshot_id else ()
        await self._run(self.create, c, b.volume_id, (b.volume_id, *snapshot, b.backup_id))

    async def on_delete_backup(self, req: Request) -> None:
        b: NodeDeleteBackup = req.body
        await self._run(self.delete, BackupOpContext(req.ctx, b.backup_id), b.backup_id,
                        (b.backup_id,))

    async def on_restore_backup(self, req: Request) -> None:
        b: NodeRestoreBackup = req.body
        c = BackupOpContext(req.ctx, b.backup_id, b.volume_id)
        await self._run(self.restore, c, b.volume_id, (b.volume_id, b.backup_id))

    async def on_check_backup(self, req: Request) -> CheckedBackup:
        """An import's check: the backup is here whole (its manifest read and checked),
        of the volume and the size its record says; its chunks are checked when a
        restore reads them."""
        b: NodeCheckBackup = req.body
        try:
            stored = await self.node.backups.open_backup(b.backup_id)
        except DriverError as exc:
            raise InvalidInput(str(exc), {"backup_id": b.backup_id}) from None
        found = stored.manifest
        if (found.volume_id, found.size_gb) != (b.volume_id, b.size):
            raise InvalidInput(
                f"backup {b.backup_id} in {self.node.backups.where} is of volume "
                f"{found.volume_id}, {found.size_gb} GiB; the record says volume "
                f"{b.volume_id}, {b.size} GiB", {"backup_id": b.backup_id})
        return CheckedBackup(len(found.chunks))

    async def _run(self, flow: LinearFlow[BackupOpContext], c: BackupOpContext,
                   flow_volume_id: str, ids: tuple[str, ...]) -> None:
        """The flow under `flow_volume_id` (its history's key), counting an operation on
        each of `ids` while it runs."""
        try:
            with self.node.working(*ids):
                await self.node.run_flow(flow, c, flow_volume_id, c.ctx)
        except DriverError as exc:  # already reported to the gateway
            log.warning("%s of backup %s failed: %s", flow.name, c.backup_id, exc)
