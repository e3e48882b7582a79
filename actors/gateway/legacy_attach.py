"""Cinder's attach actions from before attachments, made of the v3 attachments.

Cinder keeps these volume actions for clients written before attachments (3.27):
Ironic's Cinder storage interface, Nova's attachments of old, tempest. A volume is
reserved, a host's connection to it initialized, the instance attached; on the way
back the volume begins detaching, the host's connection is terminated and the
instance detached. Here every export belongs to an attachment (its client
certificate is the attachment's), so each action is made of attachments, in the
flows of ``attachment_flows`` and a few of its own, under the volume's lock:

* ``volume.reserve`` (``os-reserve``): the volume becomes ``attaching``, from
  ``available`` (or ``in-use``, for a multiattach volume), as Cinder's; no attachment yet.
* ``volume.initialize_connection``: an attachment for the connector's host, exported;
  its ``connection_info`` is the answer, and the volume is ``attaching`` until the
  attach. The same host asking again gets the same connection (Cinder's driver answers
  the same target), re-exported if it was terminated meanwhile.
* ``volume.attach`` (``os-attach``): the connection waiting for it (the host's, or the
  only one) is attached to the instance at the mountpoint; with none waiting, an
  attachment without a connection is recorded (Cinder's manager records one either
  way). The same instance attached again is answered its attachment.
* ``volume.begin_detaching`` / ``volume.roll_detaching``: the volume ``detaching``, and
  back to what its attachments make it.
* ``volume.terminate_connection``: the host's exports of the volume are closed; an
  attachment of the host never attached goes with its export, as Cinder's terminate
  and unreserve leave nothing of it.
* ``volume.detach`` (``os-detach``): the attachment named, or the volume's only one, is
  deleted as ``attachment.delete`` deletes one (its export closed).
* ``volume.unreserve``: a volume ``attaching`` goes back to what its attachments make it.

A volume's ``attaching`` with no attachment attaching (reserved) and its
``detaching`` (begun) with attachments attached are its own status
(``status_of_its_own``), kept in its row and through a restart of the gateway, as
Cinder's stay until ``unreserve`` or ``roll_detaching``; a restart mends any other
volume its attachments contradict, and a volume whose attachment delete it cut short.

What the actions choose (``waiting_connection``, ``attached_already``,
``detach_target``, ``connections_of``) is plain code over the volume's attachments.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.attachment_flows import (
    SHARED_STATUSES,
    AttachContext,
    AttachmentAttachingTask,
    AttachmentConnectionSaveTask,
    AttachmentEntryCreateTask,
    AttachServices,
    AttachTask,
    InitializeConnectionTask,
    TerminateConnectionTask,
    refuse_a_second,
)
from cinderblock.actors.gateway.attachment_request import (
    MAX_TEXT,
    attach_mode,
    check_connector,
)
from cinderblock.actors.gateway.attachment_store import AttachmentRecord
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.attachments import (
    Attachment,
    VolumeAttach,
    VolumeConnection,
    VolumeDetach,
)
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.states import AttachmentStatus, VolumeStatus, volume_status_for
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState

A = AttachmentStatus
V = VolumeStatus
MODES = ("rw", "ro")


# ---- what an action chooses (plain code) ------------------------------------------
def status_of_its_own(status: VolumeStatus, attachments: Sequence[AttachmentRecord]) -> bool:
    """Whether ``status`` is one an old action gave the volume, not what its attachments
    make it: ``attaching`` reserved by ``os-reserve`` (no attachment attaching), or
    ``detaching`` begun by ``os-begin_detaching`` (its attachments make it in use). An
    attachment delete moves a volume to ``detaching`` only while it runs, so a
    restart that cut one short is the caller's to tell apart."""
    made = volume_status_for(a.status for a in attachments)
    if status is V.ATTACHING:
        return made in (V.AVAILABLE, V.IN_USE)
    return status is V.DETACHING and made is V.IN_USE


def connections_of(attachments: Sequence[AttachmentRecord], host: str
                   ) -> list[AttachmentRecord]:
    """The attachments made for ``host``'s connector (the host a connector names)."""
    return [a for a in attachments if a.connector.get("host") == host]


def waiting_connection(attachments: Sequence[AttachmentRecord], volume_id: str,
                       host_name: str | None) -> AttachmentRecord | None:
    """The connection an ``os-attach`` attaches: an attachment exported for no instance
    yet and not attached (an ``os-initialize_connection`` makes one), of ``host_name``
    when it is named. Several and no host named: the caller must say which."""
    waiting = [a for a in attachments if a.status is A.ATTACHING and a.instance_id is None
               and a.connection_info
               and (host_name is None or a.connector.get("host") == host_name)]
    if len(waiting) > 1:
        hosts = ", ".join(sorted({str(a.connector.get("host")) for a in waiting}))
        raise InvalidInput(
            f"volume {volume_id} has {len(waiting)} connections waiting for an attach "
            f"(hosts {hosts}): name the host (host_name)",
            {"volume_id": volume_id, "field": "host_name"})
    return waiting[0] if waiting else None


def attached_already(attachments: Sequence[AttachmentRecord], instance_id: str | None,
                     host_name: str | None) -> AttachmentRecord | None:
    """The attachment of this instance (or, none named, of this host) that is attached
    already: Cinder's attach answers it again rather than attach twice."""
    for a in attachments:
        if a.status is not A.ATTACHED:
            continue
        if instance_id is not None and a.instance_id == instance_id:
            return a
        if instance_id is None and a.instance_id is None and \
                a.connector.get("host") == host_name:
            return a
    return None


def detach_target(attachments: Sequence[AttachmentRecord], volume_id: str,
                  attachment_id: str | None) -> AttachmentRecord | None:
    """The attachment an ``os-detach`` deletes: the one named (it must be the
    volume's), else the volume's only one; None when the volume has none."""
    if attachment_id is not None:
        for a in attachments:
            if a.id == attachment_id:
                return a
        raise InvalidInput(
            f"Error detaching volume - VolumeAttachmentNotFound: volume {volume_id} has no "
            f"attachment {attachment_id}", {"volume_id": volume_id,
                                            "attachment_id": attachment_id})
    if len(attachments) > 1:
        raise InvalidInput(
            "Detach volume failed: More than one attachment, but no attachment_id "
            f"provided (volume {volume_id} has {len(attachments)})",
            {"volume_id": volume_id, "attachments": [a.id for a in attachments]})
    return attachments[0] if attachments else None


def check_attach(body: VolumeAttach, volume: VolumeRecord) -> None:
    """Cinder's ``os-attach`` schema, and its manager's read-only rule."""
    if not body.mountpoint or len(body.mountpoint) > MAX_TEXT:
        raise InvalidInput(f"mountpoint must be 1-{MAX_TEXT} characters",
                           {"field": "mountpoint"})
    if body.instance_id is None and body.host_name is None:
        raise InvalidInput("an attach names the instance (instance_uuid) or the host "
                           "(host_name) it is for", {"field": "instance_uuid"})
    if body.instance_id is not None:
        try:
            uuid.UUID(body.instance_id)
        except ValueError:
            raise InvalidInput(f"instance_uuid must be a UUID, got {body.instance_id[:80]!r}",
                               {"field": "instance_uuid"}) from None
    if body.host_name is not None and not 0 < len(body.host_name) <= MAX_TEXT:
        raise InvalidInput(f"host_name must be 1-{MAX_TEXT} characters",
                           {"field": "host_name"})
    if body.mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {body.mode[:80]!r}",
                           {"field": "mode"})
    if volume.readonly and body.mode != "ro":
        raise InvalidInput(f"Invalid attaching mode '{body.mode}' for volume {volume.id}: "
                           "the volume is read-only", {"volume_id": volume.id,
                                                       "field": "mode"})


# ---- the tasks of their own ---------------------------------------------------
def _not_attachable(vol: VolumeRecord, multiattach: bool, to: str) -> InvalidState:
    expected = "available or in-use" if multiattach else "available"
    return InvalidState(f"Volume status must be {expected} to {to}, but the status is "
                        f"{vol.status.value}.", {"volume_id": vol.id,
                                                 "status": vol.status.value})


class ReserveTask(AttachTask):
    """``os-reserve``: the volume ``attaching``, with no attachment yet."""

    requires = ("volume",)

    async def execute(self, c: AttachContext) -> None:
        vol = c.vol
        self.s.check_free(vol)
        shared = self.s.multiattach(vol)
        if not (vol.status is V.AVAILABLE or (shared and vol.status is V.IN_USE)):
            raise _not_attachable(vol, shared, "reserve")
        self.s.follow(vol, V.ATTACHING)
        await self.s.save_volume(vol)


class FollowAttachmentsTask(AttachTask):
    """``os-unreserve`` of an ``attaching`` volume, ``os-roll_detaching`` of a
    ``detaching`` one: back to what its attachments make it; else nothing to do."""

    requires = ("volume",)

    def __init__(self, services: AttachServices, only_from: VolumeStatus) -> None:
        super().__init__(services)
        self.only_from = only_from

    async def execute(self, c: AttachContext) -> None:
        if c.vol.status is self.only_from and self.s.follow(c.vol):
            await self.s.save_volume(c.vol)


class BeginDetachingTask(AttachTask):
    """``os-begin_detaching``: an ``in-use`` volume with an attachment attached goes
    ``detaching`` (its detach or ``os-roll_detaching`` ends that)."""

    requires = ("volume",)

    async def execute(self, c: AttachContext) -> None:
        vol = c.vol
        attached = any(a.status is A.ATTACHED for a in self.s.attachments.of_volume(vol.id))
        if vol.status is not V.IN_USE or not attached:
            raise InvalidState("Unable to detach volume. Volume status must be 'in-use' and "
                               "attach_status must be 'attached' to detach; volume "
                               f"{vol.id} is {vol.status.value}",
                               {"volume_id": vol.id, "status": vol.status.value})
        self.s.follow(vol, V.DETACHING)
        await self.s.save_volume(vol)


class LegacyReserveTask(AttachTask):
    """A new attachment's reservation, as ``ReserveVolumeTask``'s, that also takes a
    volume an ``os-reserve`` left ``attaching``; a revert puts the volume back as it was."""

    requires = ("volume",)
    provides = ("reserved",)

    async def execute(self, c: AttachContext) -> None:
        vol = c.vol
        self.s.check_free(vol)
        taken = self.s.attachments.of_volume(vol.id)
        shared = self.s.multiattach(vol)
        refuse_a_second(vol, taken, shared)
        reserved_by_action = vol.status is V.ATTACHING and not any(
            a.status is A.ATTACHING for a in taken)
        if not (vol.status is V.AVAILABLE or reserved_by_action
                or (taken and vol.status in SHARED_STATUSES)):
            raise _not_attachable(vol, shared, "attach")
        c.was = vol.status
        if vol.status is V.AVAILABLE:  # written with the entry (AttachmentEntryCreateTask)
            c.reserved = self.s.follow(vol, V.RESERVED)

    async def revert(self, c: AttachContext, failure: BaseException) -> None:
        if c.was is None:
            return
        left = self.s.attachments.of_volume(c.vol.id)
        back = c.was if c.was is V.ATTACHING and not left else None
        if self.s.follow(c.vol, back):
            await self.s.save_volume(c.vol)


class AttachInstanceTask(AttachTask):
    """``os-attach`` of an attachment (a connection waiting for it, or one just made
    without): the instance, the mountpoint and the mode are recorded and it is
    attached; the volume follows (``in-use``)."""

    requires = ("attachment", "volume")

    async def execute(self, c: AttachContext) -> None:
        att = c.att
        if att.attach_mode not in (None, c.mode):
            raise InvalidInput(
                f"attach mode {c.mode} contradicts the mode its connection was made with, "
                f"{att.attach_mode} (initialize the connection with a connector whose mode "
                f"is {c.mode})", {"attachment_id": att.id, "field": "mode"})
        connector = dict(att.connector)
        connector["mountpoint"] = c.mountpoint
        if c.host_name is not None:
            connector.setdefault("host", c.host_name)
        att.connector, att.instance_id, att.attach_mode = connector, c.instance_id, c.mode
        if att.status is A.RESERVED:
            att.move(A.ATTACHING)
        att.move(A.ATTACHED)
        att.attached_at = time.time()
        await self._settle(c, self.s.follow(c.vol))


class ForgetConnectionTask(AttachTask):
    """After ``TerminateConnectionTask`` closed an attached attachment's export: it
    stays attached (its ``os-detach`` deletes it), with no connection."""

    requires = ("attachment", "volume")

    async def execute(self, c: AttachContext) -> None:
        c.att.connection_info = {}
        await self.s.attachments.save(c.att)


# ---- the flows ----------------------------------------------------------------
def volume_status_flow(name: str, task: AttachTask) -> LinearFlow[AttachContext]:
    return LinearFlow(name, [task], given=("ctx", "volume"))


def volume_initialize_connection(s: AttachServices) -> LinearFlow[AttachContext]:
    tasks = [LegacyReserveTask(s), AttachmentEntryCreateTask(s), AttachmentAttachingTask(s),
             InitializeConnectionTask(s), AttachmentConnectionSaveTask(s)]
    return LinearFlow("volume_initialize_connection", tasks,
                      given=("ctx", "volume", "connector"))


def volume_reconnect(s: AttachServices) -> LinearFlow[AttachContext]:
    """An attached attachment whose connection was terminated, exported again."""
    tasks = [InitializeConnectionTask(s), AttachmentConnectionSaveTask(s)]
    return LinearFlow("volume_initialize_connection", tasks,
                      given=("ctx", "volume", "attachment", "connector"))


def volume_attach(s: AttachServices) -> LinearFlow[AttachContext]:
    return LinearFlow("volume_attach", [AttachInstanceTask(s)],
                      given=("ctx", "volume", "attachment"))


def volume_attach_unconnected(s: AttachServices) -> LinearFlow[AttachContext]:
    tasks = [LegacyReserveTask(s), AttachmentEntryCreateTask(s), AttachInstanceTask(s)]
    return LinearFlow("volume_attach", tasks, given=("ctx", "volume"))


def volume_terminate_connection(s: AttachServices) -> LinearFlow[AttachContext]:
    tasks = [TerminateConnectionTask(s), ForgetConnectionTask(s)]
    return LinearFlow("volume_terminate_connection", tasks,
                      given=("ctx", "volume", "attachment", "had_export"))


# ---- the handlers ---------------------------------------------------------------
class AttachRunner(AttachServices, Protocol):
    """What the actions need of ``Attachments``: its services, its volume locks, its
    delete flow, and a runner that emits what a flow did (the lock held by the caller)."""

    delete_flow: LinearFlow[AttachContext]

    def hold(self, volume_id: str) -> AbstractAsyncContextManager[None]: ...

    async def run_held(self, flow: LinearFlow[AttachContext], c: AttachContext,
                       volume_id: str) -> Attachment | None: ...


class LegacyAttachActions:
    def __init__(self, s: AttachRunner) -> None:
        self.s = s
        self.reserve_flow = volume_status_flow("volume_reserve", ReserveTask(s))
        self.unreserve_flow = volume_status_flow(
            "volume_unreserve", FollowAttachmentsTask(s, V.ATTACHING))
        self.begin_detaching_flow = volume_status_flow("volume_begin_detaching",
                                                       BeginDetachingTask(s))
        self.roll_detaching_flow = volume_status_flow(
            "volume_roll_detaching", FollowAttachmentsTask(s, V.DETACHING))
        self.initialize_flow = volume_initialize_connection(s)
        self.reconnect_flow = volume_reconnect(s)
        self.attach_flow = volume_attach(s)
        self.attach_unconnected_flow = volume_attach_unconnected(s)
        self.terminate_flow = volume_terminate_connection(s)

    def handlers(self) -> dict[str, Callable[[Request], Any]]:
        return {
            "volume.reserve": self._status(self.reserve_flow),
            "volume.unreserve": self._status(self.unreserve_flow),
            "volume.begin_detaching": self._status(self.begin_detaching_flow),
            "volume.roll_detaching": self._status(self.roll_detaching_flow),
            "volume.initialize_connection": self.on_initialize_connection,
            "volume.terminate_connection": self.on_terminate_connection,
            "volume.attach": self.on_attach,
            "volume.detach": self.on_detach,
        }

    def _status(self, flow: LinearFlow[AttachContext]) -> Callable[[Request], Any]:
        """A handler that runs ``flow``, which moves the volume's status alone."""
        async def handle(req: Request) -> Empty:
            vol = self.s.volume(req.body.volume_id, req.ctx)
            async with self.s.hold(vol.id):
                await self.s.run_held(flow, AttachContext(req.ctx, vol.id, volume=vol),
                                      vol.id)
            return Empty()
        return handle

    async def on_initialize_connection(self, req: Request) -> Attachment:
        body: VolumeConnection = req.body
        connector = check_connector(body.connector)
        vol = self.s.volume(body.volume_id, req.ctx)
        c = AttachContext(req.ctx, vol.id, volume=vol, connector_raw=body.connector,
                          connector=connector, mode="ro" if vol.readonly else None)
        attach_mode(c.mode, connector)  # a connector rw for a read-only volume: refused now
        async with self.s.hold(vol.id):
            mine = [a for a in connections_of(self.s.attachments.of_volume(vol.id),
                                              connector.host)
                    if a.status in (A.ATTACHING, A.ATTACHED)]
            connected = [a for a in mine if a.connection_info]
            if connected:
                return connected[0].view()  # the same host's connection, as before
            if mine:  # attached, its connection terminated: exported again
                c.attachment = mine[0]
                flow = self.reconnect_flow
            else:
                flow = self.initialize_flow
            shown = await self.s.run_held(flow, c, vol.id)
        assert shown is not None
        return shown

    async def on_terminate_connection(self, req: Request) -> Empty:
        body: VolumeConnection = req.body
        connector = check_connector(body.connector)
        vol = self.s.volume(body.volume_id, req.ctx)
        async with self.s.hold(vol.id):
            for att in connections_of(self.s.attachments.of_volume(vol.id), connector.host):
                if att.status is A.ATTACHED:
                    if att.connection_info:
                        await self.s.run_held(self.terminate_flow, AttachContext(
                            req.ctx, vol.id, volume=vol, attachment=att, had_export=True),
                            vol.id)
                elif att.status is not A.DETACHING:  # never attached: it goes
                    await self.s.run_held(self.s.delete_flow,
                                          AttachContext(req.ctx, attachment_id=att.id), vol.id)
            # Cinder's terminate unreserves the volume too
            await self.s.run_held(self.unreserve_flow,
                                  AttachContext(req.ctx, vol.id, volume=vol), vol.id)
        return Empty()

    async def on_attach(self, req: Request) -> Attachment:
        body: VolumeAttach = req.body
        vol = self.s.volume(body.volume_id, req.ctx)
        check_attach(body, vol)
        c = AttachContext(req.ctx, vol.id, volume=vol, instance_id=body.instance_id,
                          mode=body.mode, mountpoint=body.mountpoint, host_name=body.host_name)
        async with self.s.hold(vol.id):
            attachments = self.s.attachments.of_volume(vol.id)
            done = attached_already(attachments, body.instance_id, body.host_name)
            if done is not None:
                return done.view()
            c.attachment = waiting_connection(attachments, vol.id, body.host_name)
            flow = self.attach_unconnected_flow if c.attachment is None else self.attach_flow
            shown = await self.s.run_held(flow, c, vol.id)
        assert shown is not None
        return shown

    async def on_detach(self, req: Request) -> Empty:
        body: VolumeDetach = req.body
        vol = self.s.volume(body.volume_id, req.ctx)
        async with self.s.hold(vol.id):
            att = detach_target(self.s.attachments.of_volume(vol.id), vol.id,
                                body.attachment_id)
            if att is not None:
                await self.s.run_held(self.s.delete_flow,
                                      AttachContext(req.ctx, attachment_id=att.id), vol.id)
            else:  # nothing attached: a volume begun detaching (or reserved) follows
                for flow in (self.roll_detaching_flow, self.unreserve_flow):
                    await self.s.run_held(flow, AttachContext(req.ctx, vol.id, volume=vol),
                                          vol.id)
        return Empty()


__all__ = ["LegacyAttachActions", "attached_already", "check_attach", "connections_of",
           "detach_target", "waiting_connection"]
