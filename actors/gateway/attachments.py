"""The gateway's attachment operations: handlers, and the services their flows use.

``Attachments`` belongs to the gateway (one instance, made in its constructor).
Each mutating op finds its volume, takes that volume's lock, and runs its flow
(``actors.attachment_flow``); the flow's events go out like the create flow's.
The node that holds the volume serves the export: the gateway asks it over its
ROUTER (the node's identity is its host name) with ``node.export`` /
``node.unexport``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.attachment_flows import (
    AttachContext,
    attachment_complete_api,
    attachment_create_api,
    attachment_delete_api,
    attachment_update_api,
)
from cinderblock.actors.gateway.attachment_request import check_instance, check_mode
from cinderblock.actors.gateway.attachment_store import (
    AttachmentRecord,
    AttachmentStore,
    attachment_bytes,
)
from cinderblock.actors.gateway.guards import require_admin, retry_fingerprint
from cinderblock.actors.gateway.legacy_attach import LegacyAttachActions, status_of_its_own
from cinderblock.actors.gateway.lifecycle_checks import check_volume_free
from cinderblock.actors.gateway.paging import page, sort_direction
from cinderblock.actors.gateway.qos_specs import back_end_limits, front_end_specs
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.actor import NODE_CONNECT_GRACE, Request, when_connected
from cinderblock.actors.runtime.config import host_of
from cinderblock.protocol.messages.attachments import (
    VOLUME_IDS_MAX,
    Attachment,
    AttachmentCreate,
    AttachmentList,
    AttachmentListRequest,
    NodeExport,
    NodeExportInfo,
    NodeUnexport,
)
from cinderblock.protocol.states import (
    HELD_BY_AN_OPERATION,
    AttachmentStatus,
    VolumeStatus,
    check_volume_move,
    statuses,
    volume_status_for,
)
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from cinderblock.protocol.wire.schema import parse

log = logging.getLogger(__name__)
NODE_TIMEOUT = 15.0


class VolumeLocks:
    """One asyncio lock per volume, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, volume_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(volume_id, (asyncio.Lock(), 0))
        self._locks[volume_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[volume_id]
            if users == 1:
                del self._locks[volume_id]
            else:
                self._locks[volume_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Attachments:
    def __init__(self, gw: GatewayServices) -> None:
        self.gw = gw
        self.attachments = AttachmentStore(gw.store.db, gw.store.read_only)
        self.locks = VolumeLocks()
        self.create_flow = attachment_create_api(self)
        self.update_flow = attachment_update_api(self)
        self.complete_flow = attachment_complete_api(self)
        self.delete_flow = attachment_delete_api(self)
        self.legacy = LegacyAttachActions(self)
        self._creating: dict[tuple[str, str], str] = {}  # (project, request id) -> its fp

    async def open(self) -> None:
        """Reconcile what a restart found (after the gateway loaded its volumes): a
        delete cut short by a restart leaves error_detaching (delete again), and a
        volume whose status its attachments contradict follows them, unless the status
        is one an old action gave it (``status_of_its_own``). Records are read
        for these only (the attachments detaching, and the volumes the file's rows say
        are contradicted); nothing else is pending at a start, so memory is its rows."""
        cut_short: set[str] = set()  # volumes whose attachment delete a restart cut short
        for att in self.attachments.in_transition_since(float("inf")):
            if att.status is AttachmentStatus.DETACHING:
                log.warning("attachment %s of volume %s: its detach was cut short by a "
                            "restart; error_detaching (delete it again)", att.id,
                            att.volume_id)
                att.move(AttachmentStatus.ERROR_DETACHING)
                await self.attachments.save(att)
                cut_short.add(att.volume_id)
        volumes = self.gw.store.volumes
        for vid in volumes.unlike_their_attachments():
            vol = volumes.get(vid)
            if vol is None or self.status_for(vid) is vol.status:
                continue
            if vid not in cut_short and \
                    status_of_its_own(vol.status, self.attachments.of_volume(vid)):
                log.info("volume %s stays %s: an old attach action gave it that status",
                         vid, vol.status.value)
            else:
                await self._reconcile(vol)

    async def _reconcile(self, vol: VolumeRecord) -> None:
        try:
            moved = self.follow(vol)
        except InvalidState as exc:
            log.warning("volume %s left %s: %s", vol.id, vol.status.value, exc.message)
            return
        if moved:
            await self.save_volume(vol)

    def handlers(self) -> dict[str, Callable[[Request], Any]]:
        return {
            "attachment.create": self.on_create,
            "attachment.update": self.on_update,
            "attachment.complete": self.on_complete,
            "attachment.delete": self.on_delete,
            "attachment.force_delete": self.on_force_delete,
            "attachment.show": self.on_show,
            "attachment.list": self.on_list,
            **self.legacy.handlers(),
        }

    # ---- services the flows use ----------------------------------------
    def volume(self, volume_id: str, ctx: Context) -> VolumeRecord:
        rec = self.gw.store.volumes.get(volume_id)
        if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
            raise NotFound(f"volume {volume_id} could not be found", {"volume_id": volume_id})
        return rec

    def check_free(self, volume: VolumeRecord) -> None:
        if volume.id in self.gw.store.claims:
            check_volume_free(self.gw.store, volume)

    def attachment(self, attachment_id: str, ctx: Context) -> AttachmentRecord:
        rec = self.attachments.get(attachment_id)
        if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
            raise NotFound(f"attachment {attachment_id} could not be found",
                           {"attachment_id": attachment_id})
        return rec

    def multiattach(self, volume: VolumeRecord) -> bool:
        return volume.multiattach

    def qos_specs(self, volume: VolumeRecord) -> dict[str, Any] | None:
        return front_end_specs(self.gw.store.qos.get(volume.volume_type.qos_specs_id),
                               volume.size)

    def status_for(self, volume_id: str) -> VolumeStatus:
        """The status a volume has because of its attachments."""
        return volume_status_for(a.status for a in self.attachments.of_volume(volume_id))

    def follow(self, volume: VolumeRecord, status: VolumeStatus | None = None) -> bool:
        new = status or self.status_for(volume.id)
        if new is volume.status:
            return False
        if status is None and volume.status in HELD_BY_AN_OPERATION:
            log.info("volume %s stays %s: the end of that sets its status", volume.id,
                     volume.status.value)
            return False
        check_volume_move(volume.status, new)
        volume.status, volume.reason = new, None
        return True

    async def save_volume(self, volume: VolumeRecord) -> None:
        await self.gw.store.save_status(volume)
        self.gw.publish(volume)

    async def export(
        self, volume: VolumeRecord, att: AttachmentRecord, readonly: bool, ctx: Context
    ) -> NodeExportInfo:
        qos = self.gw.store.qos.get(volume.volume_type.qos_specs_id)
        body = NodeExport(volume.id, att.id, readonly, back_end_limits(qos, volume.size))
        reply = await self._node_call("node.export", body, ctx, _node(att, volume))
        return parse(NodeExportInfo, reply, strict=False)

    async def unexport(self, volume: VolumeRecord, att: AttachmentRecord, ctx: Context) -> None:
        body = NodeUnexport(volume.id, att.id)
        await self._node_call("node.unexport", body, ctx, _node(att, volume))

    async def _node_call(self, op: str, body: Any, ctx: Context, node: bytes) -> Any:
        """Ask the node; one that is not connected (yet: it reconnects within moments
        of a restart of either side) is asked again for a few seconds."""
        return await when_connected(
            lambda: self.gw.router.call(op, body, ctx, to=node, timeout=NODE_TIMEOUT),
            NODE_CONNECT_GRACE)

    # ---- handlers --------------------------------------------------------
    async def on_create(self, req: Request) -> Attachment:
        """With a request id, a retry (same id, same request) is answered the attachment
        the first made, waiting for it if it is still being made (the volume's lock);
        the same id for another request is refused. Without one, each makes its own."""
        body: AttachmentCreate = req.body
        ctx = req.ctx
        fp = retry_fingerprint(ctx.request_id, body, _check_create)
        key = (ctx.project_id, ctx.request_id)
        c = AttachContext(ctx, volume_id=body.volume_id, instance_id=body.instance_id,
                          mode=body.mode, request_fp=fp)
        if fp and self._creating.setdefault(key, fp) != fp:
            raise _reused(ctx.request_id)
        try:
            async with self.locks.hold(body.volume_id):
                made = self._made_by(key, fp) if fp else None
                shown = made.view() if made is not None else \
                    await self.run_held(self.create_flow, c, body.volume_id)
        finally:
            if fp and self._creating.get(key) == fp:
                del self._creating[key]
        assert shown is not None
        return shown

    def _made_by(self, key: tuple[str, str], fp: str) -> AttachmentRecord | None:
        """The attachment an earlier create with this request id made (None if it made
        none, or it is gone since: a retry then makes one)."""
        found = self.attachments.made_by(*key)
        if found is None:
            return None
        if found[1] != fp:
            raise _reused(key[1])
        return self.attachments.get(found[0])

    async def on_update(self, req: Request) -> Attachment:
        att = self.attachment(req.body.attachment_id, req.ctx)
        c = AttachContext(req.ctx, attachment_id=att.id, connector_raw=req.body.connector)
        return await self._run(self.update_flow, c, att.volume_id)

    async def on_complete(self, req: Request) -> Attachment:
        att = self.attachment(req.body.attachment_id, req.ctx)
        c = AttachContext(req.ctx, attachment_id=att.id)
        return await self._run(self.complete_flow, c, att.volume_id)

    async def on_delete(self, req: Request) -> Attachment:
        att = self.attachment(req.body.attachment_id, req.ctx)
        c = AttachContext(req.ctx, attachment_id=att.id)
        return await self._run(self.delete_flow, c, att.volume_id)

    async def on_force_delete(self, req: Request) -> Attachment:
        """An admin's delete (Cinder's ``os-force_detach``) that does not wait for a node
        that cannot be reached: the attachment is forgotten, and its export closed by the
        reconciler's sweep once the node answers again."""
        require_admin(req.ctx, "force-detach an attachment")
        att = self.attachment(req.body.attachment_id, req.ctx)
        c = AttachContext(req.ctx, attachment_id=att.id, force=True)
        return await self._run(self.delete_flow, c, att.volume_id)

    async def _run(self, flow: LinearFlow[AttachContext], c: AttachContext,
                   volume_id: str) -> Attachment:
        async with self.locks.hold(volume_id):
            shown = await self.run_held(flow, c, volume_id)
        assert shown is not None
        return shown

    def hold(self, volume_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """The volume's lock: its attachments change one operation at a time."""
        return self.locks.hold(volume_id)

    async def run_held(self, flow: LinearFlow[AttachContext], c: AttachContext,
                       volume_id: str) -> Attachment | None:
        """Run an attachment flow (the caller holds the volume's lock); what it made or
        changed is told as an event and answered."""
        await self.gw.run_flow(flow, c, volume_id, c.ctx)
        att = c.attachment
        if att is None:
            return None
        self.gw.events.emit("attachment", attachment_id=att.id, volume_id=att.volume_id,
                            project_id=att.project_id, status=att.status.value,
                            instance_id=att.instance_id, attach_mode=att.attach_mode)
        return att.view()

    def on_show(self, req: Request) -> Attachment:
        return self.attachment(req.body.attachment_id, req.ctx).view()

    def on_list(self, req: Request) -> AttachmentList:
        """A volume's attachments, or some volumes', found through the volumes (as many
        as they have, oldest first); else a page of every attachment the caller may see,
        newest first, as volumes are paged. ``sort_dir`` orders either by creation, the
        way it names (ties by id)."""
        body: AttachmentListRequest = req.body
        ctx = req.ctx
        everyone = body.all_projects and ctx.is_admin
        project = None if everyone else ctx.project_id
        if body.volume_id is not None and body.volume_ids is not None:
            raise InvalidInput("give volume_id or volume_ids, not both")
        status = None if body.status is None else statuses(AttachmentStatus, body.status)
        oldest_first = sort_direction(body.sort_dir, "attachments")

        def passes(rec: AttachmentRecord) -> bool:
            return (status is None or rec.status in status) and \
                (body.instance_id is None or rec.instance_id == body.instance_id)

        wanted = (body.volume_id,) if body.volume_id is not None else body.volume_ids
        if wanted is None:
            store = self.attachments
            found, next_marker = page(
                store.get, partial(store.listing, project, oldest_first), project,
                passes, body.marker, body.limit, attachment_bytes)
            return AttachmentList(tuple(a.view() for a in found), next_marker)
        if body.limit is not None or body.marker is not None:
            raise InvalidInput("limit and marker page the list of every attachment; a "
                               "volume's are listed whole")
        if len(wanted) > VOLUME_IDS_MAX:
            raise InvalidInput(f"volume_ids names at most {VOLUME_IDS_MAX} volumes, "
                               f"not {len(wanted)}")
        theirs = [a for vid in dict.fromkeys(wanted) for a in self.attachments.of_volume(vid)
                  if (project is None or a.project_id == project) and passes(a)]
        theirs.sort(key=lambda a: (a.created_at, a.id), reverse=body.sort_dir == "desc")
        return AttachmentList(tuple(a.view() for a in theirs))

    def statistics(self) -> dict[str, int]:
        return {"attachments": len(self.attachments), "locked_volumes": len(self.locks)}


def _check_create(body: AttachmentCreate) -> None:
    check_instance(body.instance_id)
    check_mode(body.mode)


def _reused(request_id: str) -> InvalidInput:
    return InvalidInput(f"request id {request_id!r} was already used for a different request",
                        {"request_id": request_id})


def _node(att: AttachmentRecord, volume: VolumeRecord) -> bytes:
    """The ROUTER identity of the node serving the volume (``host@backend`` → host)."""
    backend = att.host or volume.host
    if not backend:
        raise InvalidState(f"volume {volume.id} has no host", {"volume_id": volume.id})
    return host_of(backend).encode()


__all__ = ["Attachments", "VolumeLocks"]
