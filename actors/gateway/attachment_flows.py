"""The gateway's attachment flows (Cinder's v3 attachments), task by task.

    attachment_create_api:   ExtractAttachmentRequestTask → ReserveVolumeTask
                               → AttachmentEntryCreateTask
    attachment_update_api:   ExtractAttachmentTask → ExtractConnectorTask
                               → AttachmentAttachingTask → InitializeConnectionTask
                               → AttachmentConnectionSaveTask
    attachment_complete_api: ExtractAttachmentTask → AttachmentCompleteTask
    attachment_delete_api:   ExtractAttachmentTask → AttachmentDetachingTask
                               → TerminateConnectionTask → AttachmentEntryDestroyTask

Every check comes before the first change, so a refused request changes
nothing; a failure later reverts newest first (an export made is removed, the
statuses go back). The volume's status follows its attachments
(``volume_status_for``); the caller runs each flow holding the volume's lock,
so the attachments of one volume change one operation at a time, while every
status move is made in memory before the first await, so other operations on
the volume (delete, extend) judge it by its new status at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.attachment_request import (
    Connector,
    attach_mode,
    check_connector,
    check_instance,
    check_mode,
)
from cinderblock.actors.gateway.attachment_store import AttachmentRecord, AttachmentStore
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.attachments import NodeExportInfo
from cinderblock.protocol.states import AttachmentStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, InvalidState, Timeout

log = logging.getLogger(__name__)

A = AttachmentStatus
SHARED_STATUSES = frozenset({VolumeStatus.RESERVED, VolumeStatus.ATTACHING, VolumeStatus.IN_USE})


ATTACH_ENTRY_BEFORE_COMMIT = declare("gateway.attachment_create.entry.before_commit")
ATTACH_ENTRY_AFTER_COMMIT = declare("gateway.attachment_create.entry.after_commit")
EXPORT_BEFORE_SEND = declare("gateway.attachment_update.export.before_send")
EXPORT_AFTER_REPLY = declare("gateway.attachment_update.export.after_reply")
CONNECTION_BEFORE_COMMIT = declare("gateway.attachment_update.connection.before_commit")
CONNECTION_AFTER_COMMIT = declare("gateway.attachment_update.connection.after_commit")
UNEXPORT_BEFORE_SEND = declare("gateway.attachment_delete.unexport.before_send")
UNEXPORT_AFTER_REPLY = declare("gateway.attachment_delete.unexport.after_reply")
DETACH_ENTRY_BEFORE_COMMIT = declare("gateway.attachment_delete.entry.before_commit")
DETACH_ENTRY_AFTER_COMMIT = declare("gateway.attachment_delete.entry.after_commit")


class AttachServices(Protocol):
    """What the tasks need from the gateway (the seam tests can fill in memory)."""

    attachments: AttachmentStore

    def volume(self, volume_id: str, ctx: Context) -> VolumeRecord: ...

    def attachment(self, attachment_id: str, ctx: Context) -> AttachmentRecord: ...

    def multiattach(self, volume: VolumeRecord) -> bool: ...

    def qos_specs(self, volume: VolumeRecord) -> dict[str, Any] | None:
        """The front-end QoS an attachment of ``volume`` carries (``qos_specs.front_end_specs``)."""
        ...

    def check_free(self, volume: VolumeRecord) -> None:
        """``invalid_state`` if another request is changing the volume now."""
        ...

    def follow(self, volume: VolumeRecord, status: VolumeStatus | None = None) -> bool:
        """Move the volume (in memory) to ``status``, or to what its attachments
        say; True if it moved. Raises InvalidState on a move the table refuses."""
        ...

    async def save_volume(self, volume: VolumeRecord) -> None: ...

    async def export(
        self, volume: VolumeRecord, att: AttachmentRecord, readonly: bool, ctx: Context
    ) -> NodeExportInfo: ...

    async def unexport(self, volume: VolumeRecord, att: AttachmentRecord, ctx: Context) -> None: ...


@dataclass(slots=True)
class AttachContext:
    ctx: Context
    volume_id: str = ""
    attachment_id: str = ""
    instance_id: str | None = None
    mode: str | None = None
    connector_raw: Any = None
    volume: VolumeRecord | None = None
    attachment: AttachmentRecord | None = None
    connector: Connector | None = None
    export: NodeExportInfo | None = None
    reserved: bool = False
    had_export: bool = False
    force: bool = False  # an admin's force-detach: a node that cannot be reached is let be
    # Cinder's attach actions from before attachments (``legacy_attach``)
    mountpoint: str | None = None
    host_name: str | None = None
    was: VolumeStatus | None = None  # the volume's status before the flow reserved it
    request_fp: str = ""  # a create's with a request id: kept with the attachment it makes

    @property
    def vol(self) -> VolumeRecord:
        assert self.volume is not None
        return self.volume

    @property
    def att(self) -> AttachmentRecord:
        assert self.attachment is not None
        return self.attachment


class AttachTask(Task[AttachContext]):
    def __init__(self, services: AttachServices) -> None:
        self.s = services

    async def _settle(self, c: AttachContext, volume_moved: bool) -> None:
        """Write the attachment, and the volume's status if it moved (both changed
        in memory already, before this first await), in one transaction: both rows are
        queued before the first await."""
        saved = self.s.attachments.queue_save(c.att)
        if volume_moved:
            await self.s.save_volume(c.vol)
        await saved


# ---- create ------------------------------------------------------------------
def refuse_a_second(vol: VolumeRecord, taken: list[AttachmentRecord], shared: bool) -> None:
    """A volume with an attachment takes another only if its type allows multiattach."""
    if taken and not shared:
        raise InvalidState(
            f"volume {vol.id} already has an attachment and its type "
            f"{vol.volume_type.name!r} does not allow multiattach",
            {"volume_id": vol.id, "attachments": [a.id for a in taken]},
        )


class ExtractAttachmentRequestTask(AttachTask):
    requires = ("volume_id",)
    provides = ("volume",)

    async def execute(self, c: AttachContext) -> None:
        check_instance(c.instance_id)
        check_mode(c.mode)
        c.volume = self.s.volume(c.volume_id, c.ctx)


class ReserveVolumeTask(AttachTask):
    """Cinder's ``_attachment_reserve``: available → reserved (in memory: the entry's
    task writes it with the entry), or a shared volume stays."""

    requires = ("volume",)
    provides = ("reserved",)

    async def execute(self, c: AttachContext) -> None:
        vol = c.vol
        self.s.check_free(vol)
        taken = self.s.attachments.of_volume(vol.id)
        refuse_a_second(vol, taken, self.s.multiattach(vol))
        if vol.status is VolumeStatus.AVAILABLE:  # written with the entry, in one commit
            c.reserved = self.s.follow(vol, VolumeStatus.RESERVED)
        elif not (taken and vol.status in SHARED_STATUSES):
            raise InvalidState(
                f"volume {vol.id} is {vol.status.value}; it must be available to attach",
                {"volume_id": vol.id, "status": vol.status.value},
            )

    async def revert(self, c: AttachContext, failure: BaseException) -> None:
        if c.reserved and self.s.follow(c.vol):
            await self.s.save_volume(c.vol)


class AttachmentEntryCreateTask(AttachTask):
    requires = ("volume", "reserved")
    provides = ("attachment",)

    async def execute(self, c: AttachContext) -> None:
        rec = AttachmentRecord(
            id=str(uuid.uuid4()), volume_id=c.vol.id, project_id=c.vol.project_id,
            status=A.RESERVED, instance_id=c.instance_id, attach_mode=c.mode,
            host=c.vol.host,
        )
        ATTACH_ENTRY_BEFORE_COMMIT()
        added = self.s.attachments.queue_add(rec)
        if c.request_fp:  # its request id names it from the same commit on
            self.s.attachments.queue_request(c.ctx.project_id, c.ctx.request_id,
                                             c.request_fp, rec.id)
        try:  # the volume's reservation (memory's already) in the same commit as its entry
            if c.reserved:
                await self.s.save_volume(c.vol)
        finally:
            await added
        ATTACH_ENTRY_AFTER_COMMIT()
        c.attachment = rec

    async def revert(self, c: AttachContext, failure: BaseException) -> None:
        if c.attachment is not None:
            await self.s.attachments.remove(c.attachment)


# ---- update, complete, delete -------------------------------------------------
class ExtractAttachmentTask(AttachTask):
    requires = ("attachment_id",)
    provides = ("attachment", "volume")

    async def execute(self, c: AttachContext) -> None:
        c.attachment = self.s.attachment(c.attachment_id, c.ctx)
        c.volume = self.s.volume(c.att.volume_id, c.ctx)


class ExtractConnectorTask(AttachTask):
    requires = ("attachment",)
    provides = ("connector",)

    async def execute(self, c: AttachContext) -> None:
        c.connector = check_connector(c.connector_raw)
        attach_mode(c.att.attach_mode, c.connector)  # a contradiction is refused now
        if c.att.status is not A.RESERVED:
            raise InvalidState(
                f"attachment {c.att.id} is {c.att.status.value}; only a reserved attachment "
                "takes a connector (delete it and create another)",
                {"attachment_id": c.att.id, "status": c.att.status.value},
            )


class AttachmentAttachingTask(AttachTask):
    requires = ("attachment", "volume", "connector")

    async def execute(self, c: AttachContext) -> None:
        c.att.move(A.ATTACHING)
        await self._settle(c, self.s.follow(c.vol))

    async def revert(self, c: AttachContext, failure: BaseException) -> None:
        if c.att.status is A.ATTACHING:
            c.att.move(A.RESERVED)
            await self._settle(c, self.s.follow(c.vol))


class InitializeConnectionTask(AttachTask):
    """The node exports the volume over NBD for this attachment."""

    requires = ("attachment", "volume", "connector")
    provides = ("export",)

    async def execute(self, c: AttachContext) -> None:
        assert c.connector is not None
        readonly = attach_mode(c.att.attach_mode, c.connector) == "ro"
        EXPORT_BEFORE_SEND()
        c.export = await self.s.export(c.vol, c.att, readonly, c.ctx)
        EXPORT_AFTER_REPLY()

    async def revert(self, c: AttachContext, failure: BaseException) -> None:
        if c.export is not None or isinstance(failure, Timeout):  # it may be up
            await self.s.unexport(c.vol, c.att, c.ctx)


class AttachmentConnectionSaveTask(AttachTask):
    requires = ("attachment", "connector", "export")

    async def execute(self, c: AttachContext) -> None:
        assert c.connector is not None and c.export is not None
        att, info = c.att, c.export
        att.attach_mode = attach_mode(att.attach_mode, c.connector)
        att.connector = c.connector.fields
        att.host = c.vol.host
        att.connection_info = {  # the credentials travel as Cinder's CHAP secrets do
            "driver_volume_type": "nbd",
            "data": {"host": info.host, "port": info.port, "export_name": info.export_name,
                     "tls": True, "ca_cert": info.ca_cert, "client_cert": info.client_cert,
                     "client_key": info.client_key, "qos_specs": self.s.qos_specs(c.vol),
                     # as Cinder's _parse_connection_options: how the host should attach
                     # (Nova gives a guest a read-only disk for "ro"), and no encryption
                     "access_mode": att.attach_mode, "encrypted": False},
        }
        CONNECTION_BEFORE_COMMIT()
        await self.s.attachments.save(att)
        CONNECTION_AFTER_COMMIT()

    async def revert(self, c: AttachContext, failure: BaseException) -> None:
        c.att.connector, c.att.connection_info = {}, {}


class AttachmentCompleteTask(AttachTask):
    requires = ("attachment", "volume")

    async def execute(self, c: AttachContext) -> None:
        att = c.att
        if att.status is A.RESERVED:
            raise InvalidState(
                f"attachment {att.id} has no connection yet: update it with a connector "
                "before completing it", {"attachment_id": att.id, "status": att.status.value},
            )
        if att.status is A.ATTACHED:
            return  # completing twice is harmless
        att.move(A.ATTACHED)
        att.attached_at = time.time()
        await self._settle(c, self.s.follow(c.vol))


class AttachmentDetachingTask(AttachTask):
    requires = ("attachment", "volume")
    provides = ("had_export",)

    async def execute(self, c: AttachContext) -> None:
        att, vol = c.att, c.vol
        c.had_export = att.status is not A.RESERVED
        att.move(A.DETACHING)
        others = [a for a in self.s.attachments.of_volume(vol.id) if a.id != att.id]
        last_in_use = not others and vol.status is VolumeStatus.IN_USE
        await self._settle(c, last_in_use and self.s.follow(vol, VolumeStatus.DETACHING))

    async def revert(self, c: AttachContext, failure: BaseException) -> None:
        if c.att.status is A.DETACHING:
            c.att.move(A.ERROR_DETACHING)  # the export may still be up: delete again
            await self._settle(c, self.s.follow(c.vol))


class TerminateConnectionTask(AttachTask):
    """The node closes the attachment's export (and its clients' connections)."""

    requires = ("attachment", "volume", "had_export")

    async def execute(self, c: AttachContext) -> None:
        if c.had_export:
            UNEXPORT_BEFORE_SEND()
            try:
                await self.s.unexport(c.vol, c.att, c.ctx)
            except CinderblockError as exc:
                if not c.force:
                    raise
                # Cinder's force-detach forgets the attachment; an export left behind is
                # closed by the reconciler's sweep once the node answers (a node that was
                # down serves its table of exports again when it starts).
                log.warning("force-detach of attachment %s: its node did not close the "
                            "export (%s); the sweep closes it when it can", c.att.id,
                            exc.message)
            UNEXPORT_AFTER_REPLY()


class AttachmentEntryDestroyTask(AttachTask):
    requires = ("attachment", "volume")

    async def execute(self, c: AttachContext) -> None:
        c.att.move(A.DETACHED)
        DETACH_ENTRY_BEFORE_COMMIT()
        removed = self.s.attachments.queue_remove(c.att)  # with the volume's status
        try:
            moved = self.s.follow(c.vol)
        except InvalidState as exc:  # another operation holds the volume (an in-use
            moved = False  # extend): its end sets the status; the attachment is gone
            log.info("volume %s stays %s after attachment %s: %s", c.vol.id,
                     c.vol.status.value, c.att.id, exc.message)
        if moved:
            await self.s.save_volume(c.vol)
        await removed
        DETACH_ENTRY_AFTER_COMMIT()


# ---- the flows ----------------------------------------------------------------
def attachment_create_api(s: AttachServices) -> LinearFlow[AttachContext]:
    tasks = [ExtractAttachmentRequestTask(s), ReserveVolumeTask(s), AttachmentEntryCreateTask(s)]
    return LinearFlow("attachment_create_api", tasks, given=("ctx", "volume_id"))


def attachment_update_api(s: AttachServices) -> LinearFlow[AttachContext]:
    tasks = [
        ExtractAttachmentTask(s), ExtractConnectorTask(s), AttachmentAttachingTask(s),
        InitializeConnectionTask(s), AttachmentConnectionSaveTask(s),
    ]
    return LinearFlow("attachment_update_api", tasks, given=("ctx", "attachment_id"))


def attachment_complete_api(s: AttachServices) -> LinearFlow[AttachContext]:
    tasks = [ExtractAttachmentTask(s), AttachmentCompleteTask(s)]
    return LinearFlow("attachment_complete_api", tasks, given=("ctx", "attachment_id"))


def attachment_delete_api(s: AttachServices) -> LinearFlow[AttachContext]:
    tasks = [
        ExtractAttachmentTask(s), AttachmentDetachingTask(s), TerminateConnectionTask(s),
        AttachmentEntryDestroyTask(s),
    ]
    return LinearFlow("attachment_delete_api", tasks, given=("ctx", "attachment_id"))
