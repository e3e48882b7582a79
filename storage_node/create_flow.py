"""volume_create_manager: the storage node's create flow, named as Cinder's.

    ExtractVolumeRefTask → OnFailureRescheduleTask → ExtractVolumeSpecTask
      → NotifyVolumeActionTask(create.start) → CreateVolumeFromSpecTask
      → CreateVolumeOnFinishTask(create.end)

When the driver fails, the reverts run newest first: the driver's partial
volume is deleted, then OnFailureRescheduleTask asks the scheduler to place
the volume again on a backend not yet tried (the scheduler gives up after
three attempts), and finally the node forgets the in-flight capacity. A
volume copied from a snapshot or a source volume (cast by the gateway to the
node that holds the source) is never rescheduled: it goes to ``error``. Nor is a
volume that adopts what the backend already holds (a manage, cast by the gateway to
the node the admin named): its revert gives the data back under its old name. Nor is
a volume made from a backup: the node creates it, then writes the backup's data from
the backup repository into it (all or nothing, ``Driver.restore_volume``); a backup
that is missing or damaged leaves no volume (the revert deletes the one made).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.storage_node.backends import Driver, DriverError
from cinderblock.storage_node.backup_repository import BackupRepository

CREATE_BEFORE_REPORT = declare("node.create_volume.before_report")
CREATE_AFTER_REPORT = declare("node.create_volume.after_report")

class NodeServices(Protocol):
    backend_id: str
    driver: Driver

    @property
    def backups(self) -> BackupRepository:
        """Where a volume made from a backup reads it from."""

    def begin_create(self, volume_id: str, size: int, epoch: str, seq: int) -> None: ...

    def end_create(self, volume_id: str) -> None: ...

    def reschedule(self, request: ScheduleRequest, ctx: Context) -> None: ...

    def report(self, volume_id: str, status: VolumeStatus, reason: str | None, ctx: Context
               ) -> None: ...

    def notify(self, volume_id: str, event: str) -> None: ...

    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]:
        """The writes of these volumes' exports held (``nbd/write_gate.py``)."""


@dataclass(slots=True)
class ManagerContext:
    cast: NodeCreateVolume
    ctx: Context
    volume_id: str = ""
    size: int = 0
    source: str = "raw"
    created: bool = False


class _NodeTask(Task[ManagerContext]):
    def __init__(self, services: NodeServices) -> None:
        self.s = services


class ExtractVolumeRefTask(_NodeTask):
    requires = ("cast",)
    provides = ("volume_id", "size")

    async def execute(self, c: ManagerContext) -> None:
        c.volume_id, c.size = c.cast.request.volume_id, c.cast.request.size
        self.s.begin_create(c.volume_id, c.size, c.cast.sched_epoch, c.cast.sched_seq)

    async def revert(self, c: ManagerContext, failure: BaseException) -> None:
        self.s.end_create(c.volume_id)


class OnFailureRescheduleTask(_NodeTask):
    requires = ("volume_id",)

    async def execute(self, c: ManagerContext) -> None:
        """Nothing to do on the way forward; the work is in revert."""

    async def revert(self, c: ManagerContext, failure: BaseException) -> None:
        r = c.cast.request
        retry = replace(
            r,
            attempts=r.attempts + 1,
            tried_backends=(*r.tried_backends, self.s.backend_id),
            last_error=f"{self.s.backend_id}: {failure}",
        )
        here_only = r.snapshot_id is not None or r.source_volid is not None \
            or r.manage_ref is not None or r.backup_id is not None
        if isinstance(failure, DriverError) and not here_only:  # a copy is made here only
            self.s.reschedule(retry, c.ctx)
        else:
            self.s.report(c.volume_id, VolumeStatus.ERROR, retry.last_error, c.ctx)


class ExtractVolumeSpecTask(_NodeTask):
    requires = ("volume_id", "size")
    provides = ("source",)

    async def execute(self, c: ManagerContext) -> None:
        r = c.cast.request
        c.source = "snapshot" if r.snapshot_id else "source_volume" if r.source_volid \
            else "manage" if r.manage_ref else "backup" if r.backup_id else "raw"


class NotifyVolumeActionTask(_NodeTask):
    requires = ("volume_id",)

    def __init__(self, services: NodeServices, event: str) -> None:
        super().__init__(services)
        self.event = event

    async def execute(self, c: ManagerContext) -> None:
        self.s.notify(c.volume_id, self.event)


class CreateVolumeFromSpecTask(_NodeTask):
    requires = ("volume_id", "size", "source")
    provides = ("created",)

    async def execute(self, c: ManagerContext) -> None:
        r, driver = c.cast.request, self.s.driver
        if r.snapshot_id is not None:
            await driver.create_volume_from_snapshot(c.volume_id, r.snapshot_id, c.size)
        elif r.source_volid is not None:  # of one instant of a source a guest writes
            async with self.s.writes_held((r.source_volid,)):
                await driver.create_cloned_volume(c.volume_id, r.source_volid, c.size)
        elif r.manage_ref is not None:
            await driver.manage_existing(c.volume_id, r.manage_ref, c.size)
        elif r.backup_id is not None:
            await self._create_from_backup(c, r.backup_id)
        else:
            await driver.create_volume(c.volume_id, c.size)
        c.created = True

    async def _create_from_backup(self, c: ManagerContext, backup_id: str) -> None:
        """The backup's manifest read first (a missing or damaged one: nothing made),
        then the new volume built with the backup's data and named only once whole
        (``receive_volume``, as a migration's copy): a failure while writing, or the
        node's death, leaves nothing under its name, so a volume a node holds is whole
        however it was made."""
        backup = await self.s.backups.open_backup(backup_id)
        await self.s.driver.receive_volume(c.volume_id, c.size, backup.write_into)

    async def revert(self, c: ManagerContext, failure: BaseException) -> None:
        # A failed create leaves nothing under the volume's name (drivers build
        # under a temporary name); only a volume this task finished is undone.
        if c.created and c.cast.request.manage_ref is not None:
            await self.s.driver.unmanage_volume(c.volume_id, c.cast.request.manage_ref)
        elif c.created:
            await self.s.driver.delete_volume(c.volume_id)


class CreateVolumeOnFinishTask(_NodeTask):
    requires = ("created",)

    async def execute(self, c: ManagerContext) -> None:
        self.s.end_create(c.volume_id)
        CREATE_BEFORE_REPORT()
        self.s.report(c.volume_id, VolumeStatus.AVAILABLE, None, c.ctx)
        CREATE_AFTER_REPORT()
        self.s.notify(c.volume_id, "volume.create.end")


def volume_create_manager(services: NodeServices) -> LinearFlow[ManagerContext]:
    return LinearFlow(
        "volume_create_manager",
        [
            ExtractVolumeRefTask(services),
            OnFailureRescheduleTask(services),
            ExtractVolumeSpecTask(services),
            NotifyVolumeActionTask(services, "volume.create.start"),
            CreateVolumeFromSpecTask(services),
            CreateVolumeOnFinishTask(services),
        ],
        given=("cast", "ctx"),
    )
