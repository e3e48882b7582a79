"""The gateway's side of delete, extend and snapshots: handlers and the nodes' reports.

``GatewayLifecycle(gw).handlers()`` adds these ops to the gateway's handler table:

- from clients: ``volume.delete``, ``volume.extend``, ``volume.revert`` (``revert.py``),
  ``snapshot.create|show|list|watch|delete``. Each runs its flow
  (``actors.lifecycle_flows``) and replies once the work is cast to the node that
  holds the volume;
- from nodes: ``volume.deleted`` (the row goes and the release of its quota is
  owed, in one transaction: ``quota_journal.py``), ``volume.extended`` (the new
  size and the commit or rollback of the reservation owed, together),
  ``volume.reverted`` (the volume available or in error, its snapshot available),
  ``snapshot.update`` and ``snapshot.deleted``. Only a storage node (ROUTER
  identity = its host name) may send these, and only about what its own backend
  holds (``require_holder``).

Nothing here waits for the quota actor: a delete is done once its row is gone
(and a delete with no host answers at once).

Idempotency: a snapshot create retried with the same request id returns the
first snapshot (waiting for the first request while it still runs); a delete
retried with the same request id is not an error even when the volume or
snapshot is already gone (the answer is its last view, status ``deleted``), also
after a gateway restart (``delete_requests``), and a retry that comes while the
first attempt runs gets what that attempt ends in. The memory of deletes is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.delete_requests import DeleteRequest, DeleteRequests
from cinderblock.actors.gateway.guards import (
    RunningCreates,
    require_admin,
    require_holder,
    require_reporter,
    retry_fingerprint,
)
from cinderblock.actors.gateway.lifecycle_checks import (
    release_claim,
    visible_snapshot,
    visible_volume,
)
from cinderblock.actors.gateway.lifecycle_flows import (
    DeleteContext,
    ExtendContext,
    SnapshotCreateContext,
    SnapshotDeleteContext,
    check_snapshot_fields,
    snapshot_create_api,
    snapshot_delete_api,
    volume_delete_api,
    volume_extend_api,
)
from cinderblock.actors.gateway.manage import (
    check_snapshot_manage,
    manage_as_snapshot,
    manageable,
    snapshot_manage_api,
)
from cinderblock.actors.gateway.paging import (
    BoundedScan,
    marker_record,
    page,
    page_size,
    passes_filters,
    read_already,
    wire_bytes,
)
from cinderblock.actors.gateway.paging import Key as ListingKey
from cinderblock.actors.gateway.revert import RevertContext, end_revert, volume_revert_api
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.runtime.config import NodeConfig
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.lifecycle import (
    Snapshot,
    SnapshotCreate,
    SnapshotList,
    SnapshotListRequest,
    SnapshotUpdate,
    VolumeExtended,
    VolumeRevert,
    VolumeReverted,
)
from cinderblock.protocol.messages.manage import ManageableList, SnapshotManage
from cinderblock.protocol.messages.volumes import Volume, VolumeRef
from cinderblock.protocol.states import (
    SnapshotStatus,
    VolumeStatus,
    check_volume_move,
)
from cinderblock.protocol.wire.codec import Context

log = logging.getLogger(__name__)
V = VolumeStatus
SNAPSHOT_STABLE = frozenset(
    {SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR, SnapshotStatus.ERROR_DELETING,
     SnapshotStatus.DELETED}
)
REMEMBERED_DELETES = 10_000
VOLUME_DELETED_BEFORE_COMMIT = declare("gateway.volume_deleted.before_commit")
VOLUME_DELETED_AFTER_COMMIT = declare("gateway.volume_deleted.after_commit")
VOLUME_EXTENDED_BEFORE_COMMIT = declare("gateway.volume_extended.before_commit")
VOLUME_EXTENDED_AFTER_COMMIT = declare("gateway.volume_extended.after_commit")
SNAPSHOT_UPDATE_BEFORE_COMMIT = declare("gateway.snapshot_update.before_commit")
SNAPSHOT_UPDATE_AFTER_COMMIT = declare("gateway.snapshot_update.after_commit")
SNAPSHOT_DELETED_BEFORE_COMMIT = declare("gateway.snapshot_deleted.before_commit")
SNAPSHOT_DELETED_AFTER_COMMIT = declare("gateway.snapshot_deleted.after_commit")
Key = tuple[str, str]  # (project, request id)


class GatewayLifecycle:
    """Delete, extend and snapshots, over the gateway's store, quota link and router."""

    def __init__(self, gw: GatewayServices) -> None:
        self.gw = gw
        self.store = gw.store
        self.delete_flow = volume_delete_api(self)
        self.extend_flow = volume_extend_api(self)
        self.revert_flow = volume_revert_api(self)
        self.snapshot_flow = snapshot_create_api(self)
        self.snapshot_delete_flow = snapshot_delete_api(self)
        self.snapshot_manage_flow = snapshot_manage_api(self)
        self.nodes: Sequence[NodeConfig] = gw.cfg.nodes
        self._node_hosts = frozenset(n.host for n in gw.cfg.nodes)
        self.delete_requests = DeleteRequests(self.store.db)  # request -> what it deletes
        self._gone: OrderedDict[str, Volume | Snapshot] = OrderedDict()  # id -> last view
        self._running: dict[Key, asyncio.Future[None]] = {}  # deletes whose flow still runs
        # snapshot creates running now, by request: a retry waits for the first
        self._creating = RunningCreates[SnapshotRecord]()

    def handlers(self) -> dict[str, Handler]:
        return {
            "volume.delete": self.on_volume_delete,
            "volume.unmanage": self.on_volume_unmanage,
            "volume.extend": self.on_volume_extend,
            "volume.deleted": self.on_volume_deleted,
            "volume.extended": self.on_volume_extended,
            "volume.revert": self.on_volume_revert,
            "volume.reverted": self.on_volume_reverted,
            "snapshot.create": self.on_snapshot_create,
            "snapshot.show": self.on_snapshot_show,
            "snapshot.list": self.on_snapshot_list,
            "snapshot.watch": self.on_snapshot_watch,
            "snapshot.delete": self.on_snapshot_delete,
            "snapshot.manage": self.on_snapshot_manage,
            "snapshot.manageable": self.on_snapshot_manageable,
            "snapshot.unmanage": self.on_snapshot_unmanage,
            "snapshot.update": self.on_snapshot_update,
            "snapshot.deleted": self.on_snapshot_deleted,
        }

    # ---- services the flows use ------------------------------------------
    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, Any]:
        return await self.gw.quota_call(op, body, ctx)

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        await self.gw.send_to_node(host, op, body, ctx)

    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]:
        return await self.gw.node_call(host, op, body, ctx)

    async def save_volume(self, rec: VolumeRecord) -> None:
        await self.store.save_status(rec)
        self.gw.publish(rec)

    def publish_volume(self, rec: VolumeRecord) -> None:
        self.gw.publish(rec)

    async def end_extend(self, rec: VolumeRecord, outcome: str) -> None:
        """The extend's end saved (size, status) with its reservation's ``outcome``
        owed to the quota actor, in one transaction; then everyone is told."""
        await self.store.end_extend(rec, rec.id, outcome)
        self.gw.publish(rec)

    async def save_snapshot(self, rec: SnapshotRecord) -> None:
        rec.updated_at = time.time()
        await self.store.snapshots.save_status(rec)
        self.publish_snapshot(rec)

    def publish_snapshot(self, rec: SnapshotRecord) -> None:
        self.gw.events.emit(
            "snapshot", snapshot_id=rec.id, volume_id=rec.volume_id, project_id=rec.project_id,
            status=rec.status.value, size=rec.size, name=rec.name, reason=rec.reason,
        )
        self.gw.watchers.push(
            rec.id, "snapshot.status", rec.view(), rec.status in SNAPSHOT_STABLE
        )
        if rec.group_snapshot_id is not None:  # its group snapshot's status is its members'
            self.store.group_snapshots.member_changed(rec.group_snapshot_id)

    async def finish_volume_delete(self, rec: VolumeRecord, ctx: Context) -> None:
        """The row goes and the release of the volume's quota is owed, in one
        transaction (the journal's outbox gives it to the quota actor)."""
        check_volume_move(rec.status, V.DELETED)
        rec.status, rec.updated_at = V.DELETED, time.time()
        VOLUME_DELETED_BEFORE_COMMIT()
        await self.store.remove_volume(rec)
        VOLUME_DELETED_AFTER_COMMIT()
        self._remember_gone(rec.id, rec.view())
        self.gw.publish(rec)
        self.gw.watchers.drop(rec.id)

    async def finish_snapshot_delete(self, rec: SnapshotRecord, ctx: Context) -> None:
        rec.move(SnapshotStatus.DELETED)
        SNAPSHOT_DELETED_BEFORE_COMMIT()
        await self.store.snapshots.remove(rec)
        SNAPSHOT_DELETED_AFTER_COMMIT()
        self._remember_gone(rec.id, rec.view())
        self.publish_snapshot(rec)

    def _remember_gone(self, object_id: str, view: Volume | Snapshot) -> None:
        self._gone[object_id] = view
        while len(self._gone) > REMEMBERED_DELETES:
            self._gone.popitem(last=False)

    def _remember_delete(self, ctx: Context, object_id: str) -> None:
        """Written before the flow runs (``delete_requests``): durable no later than
        the ``deleting`` status the flow writes."""
        volume = self.store.volumes.get(object_id)
        snapshot = self.store.snapshots.get(object_id)
        if not ctx.request_id:
            return
        if volume is not None:
            request = DeleteRequest("volume", object_id, ctx.project_id, object_id, volume.size)
        elif snapshot is not None:
            request = DeleteRequest("snapshot", object_id, ctx.project_id, snapshot.volume_id,
                                    snapshot.size)
        else:
            return  # nothing to delete: the flow says not found
        self.delete_requests.remember((ctx.project_id, ctx.request_id), request)

    async def _retried_delete(self, req: Request, object_id: str
                              ) -> Volume | Snapshot | None:
        """The answer to a delete retried with its request id (None: not a retry).

        Its flow still running: what that flow ends in (its error is this retry's
        error: a delete whose cast then fails was not done, and a retry must not have
        been told otherwise). Still deleting: its current view (and the caller watches
        it); gone: its last view (``deleted``), also after a gateway restart
        (``delete_requests``); in any other status (an error, or not yet marked when
        the gateway died): None, so the delete runs again.
        """
        ctx = req.ctx
        key = (ctx.project_id, ctx.request_id)
        known = self.delete_requests.get(key)
        if known is None or known.object_id != object_id:
            return None
        running = self._running.get(key)
        if running is not None:
            await asyncio.shield(running)
        current = self.store.volumes.get(object_id) or self.store.snapshots.get(
            object_id)
        if current is None:
            return self._gone.get(object_id) or known.gone_view()
        if current.status not in (V.DELETING, V.UNMANAGING, SnapshotStatus.DELETING,
                                  SnapshotStatus.UNMANAGING):
            return None
        self._watching(req, object_id)
        return current.view()

    # ---- volumes -------------------------------------------------------
    async def on_volume_delete(self, req: Request) -> Volume:
        return await self._delete_volume(req, unmanage=False)

    async def on_volume_unmanage(self, req: Request) -> Volume:
        """Cinder's unmanage (an admin's): a delete whose node keeps the data, renamed
        (``unmanaged-volume-<id>`` on the file backend), and manageable again."""
        require_admin(req.ctx, "unmanage a volume")
        return await self._delete_volume(req, unmanage=True)

    async def _delete_volume(self, req: Request, unmanage: bool) -> Volume:
        volume_id = req.body.volume_id
        retried = await self._retried_delete(req, volume_id)
        if isinstance(retried, Volume):
            return retried
        c = DeleteContext(volume_id, req.ctx, unmanage=unmanage)
        await self._run_delete(self.delete_flow, c, req, volume_id, volume_id)
        assert c.record is not None
        return c.record.view()

    async def _run_delete(
        self, flow: Any, c: Any, req: Request, object_id: str, volume_id: str
    ) -> None:
        """Run a delete flow, remembering its request id (a retry may come meanwhile)."""
        key = (req.ctx.project_id, req.ctx.request_id)
        self._remember_delete(req.ctx, object_id)
        self._watching(req, object_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if req.ctx.request_id:
            self._running[key] = done
        try:
            await self._run(flow, c, req, object_id, volume_id)
        except Exception as exc:
            known = self.delete_requests.get(key)
            if known is not None and known.object_id == object_id:
                self.delete_requests.forget(key)
            done.set_exception(exc)
            done.exception()  # retrieved: a retry may never ask
            raise
        else:
            done.set_result(None)
        finally:
            if self._running.get(key) is done:
                del self._running[key]
            if not done.done():
                done.cancel()  # the gateway is stopping: a waiting retry ends with it

    async def on_volume_extend(self, req: Request) -> Volume:
        body = req.body
        c = ExtendContext(body.volume_id, body.new_size, req.ctx, in_use=body.in_use)
        self._watching(req, body.volume_id)
        await self._run(self.extend_flow, c, req, body.volume_id, body.volume_id)
        assert c.record is not None
        return c.record.view()

    async def on_volume_revert(self, req: Request) -> Volume:
        body: VolumeRevert = req.body
        c = RevertContext(body.volume_id, body.snapshot_id, req.ctx)
        self._watching(req, body.volume_id)
        await self._run(self.revert_flow, c, req, body.volume_id, body.volume_id)
        assert c.volume is not None
        return c.volume.view()

    def _watching(self, req: Request, object_id: str) -> None:
        if req.body.watch:
            self.gw.watchers.add(object_id, req)

    async def _run(
        self, flow: Any, c: Any, req: Request, object_id: str, volume_id: str
    ) -> None:
        """Run a flow; a refused request stops watching what it asked to watch."""
        try:
            await self.gw.run_flow(flow, c, volume_id, req.ctx)
        except Exception:
            self._unwatch(req, object_id)
            raise
        finally:
            release_claim(self.store, getattr(c, "claimed", None))

    def _unwatch(self, req: Request, object_id: str) -> None:
        if req.body.watch:
            self.gw.watchers.remove(object_id, req)

    def _reported_volume(self, req: Request, volume_id: str) -> VolumeRecord | None:
        """The volume a node's report is about (None: unknown), once the sender is a
        node (``require_reporter``) and the one holding it (``require_holder``)."""
        require_reporter(req, self.gw.router, self._node_hosts)
        rec = self.store.volumes.get(volume_id)
        if rec is not None:
            require_holder(req, rec.host, f"volume {rec.id}")
        return rec

    def _reported_snapshot(self, req: Request, snapshot_id: str) -> SnapshotRecord | None:
        """As ``_reported_volume``, for a snapshot."""
        require_reporter(req, self.gw.router, self._node_hosts)
        rec = self.store.snapshots.get(snapshot_id)
        if rec is not None:
            require_holder(req, rec.host, f"snapshot {rec.id}")
        return rec

    async def on_volume_deleted(self, req: Request) -> None:
        body: VolumeRef = req.body
        rec = self._reported_volume(req, body.volume_id)
        if rec is None or rec.status not in (V.DELETING, V.UNMANAGING):
            log.warning("volume.deleted for %s, which is not deleting", body.volume_id)
            return
        await self.finish_volume_delete(rec, req.ctx)

    async def on_volume_extended(self, req: Request) -> None:
        body: VolumeExtended = req.body
        rec = self._reported_volume(req, body.volume_id)
        new = body.status
        if rec is None or rec.status is not V.EXTENDING \
                or self.store.extends.get(rec.id) != body.reservation_id:
            log.warning("volume.extended for %s, which is not extending", body.volume_id)
            return  # its reservation's end was owed when the extend ended
        ok = new is V.AVAILABLE and body.reason is None
        if new is V.AVAILABLE:  # what its attachments make it: an attached volume (3.42)
            new = self.gw.attachment_status(rec.id)  # stays in use
        check_volume_move(rec.status, new)
        rec.status, rec.reason = new, body.reason
        if ok:
            rec.size = body.new_size
        VOLUME_EXTENDED_BEFORE_COMMIT()
        await self.end_extend(rec, "commit" if ok else "rollback")
        VOLUME_EXTENDED_AFTER_COMMIT()

    async def on_volume_reverted(self, req: Request) -> None:
        body: VolumeReverted = req.body
        rec = self._reported_volume(req, body.volume_id)
        if rec is None or rec.status is not V.REVERTING \
                or self.store.reverts.get(rec.id) != body.revert_id:
            log.warning("volume.reverted for %s, which is not reverting (or not by that "
                        "revert)", body.volume_id)
            return  # a second report of one revert (the reconciler sent it again)
        if body.status is V.AVAILABLE:
            await end_revert(self, rec, V.AVAILABLE, None)
        else:
            await end_revert(self, rec, V.ERROR, body.reason or "the revert failed on "
                             "its node")

    # ---- snapshots -----------------------------------------------------
    async def on_snapshot_create(self, req: Request) -> Snapshot:
        body: SnapshotCreate = req.body
        fingerprint = retry_fingerprint(req.ctx.request_id, body, check_snapshot_fields)
        return await self._create_snapshot(req, self.snapshot_flow, body, fingerprint, None)

    async def on_snapshot_manage(self, req: Request) -> Snapshot:
        """Cinder's snapshot manage (an admin's, ``manage.py``): a snapshot create of
        what the volume's node holds."""
        require_admin(req.ctx, "manage a snapshot")
        body: SnapshotManage = req.body
        fingerprint = retry_fingerprint(req.ctx.request_id, body, check_snapshot_manage)
        return await self._create_snapshot(req, self.snapshot_manage_flow,
                                           manage_as_snapshot(body), fingerprint,
                                           body.source_name)

    async def on_snapshot_manageable(self, req: Request) -> ManageableList:
        return await manageable(self, req.body, req.ctx, snapshots=True)

    async def _create_snapshot(self, req: Request, flow: LinearFlow[SnapshotCreateContext],
                               body: SnapshotCreate, fingerprint: str,
                               manage_ref: str | None) -> Snapshot:
        """Run a snapshot create (or manage) flow; a retry with the request id of one
        made or still being made answers with that one."""
        ctx = req.ctx
        key = (ctx.project_id, ctx.request_id)
        made = self.store.snapshots.made_by(*key) if ctx.request_id else None
        # a second flow would find the volume claimed by the first and answer
        # invalid_state: a retry waits for the first, whose error is the retry's
        existing = await self._creating.earlier(key, fingerprint, made)
        if existing is not None:
            self._watching(req, existing.id)
            return existing.view()
        c = SnapshotCreateContext(body, ctx, str(uuid.uuid4()), fingerprint,
                                  manage_ref=manage_ref)
        self._watching(req, c.snapshot_id)

        async def make() -> SnapshotRecord:
            await self._run(flow, c, req, c.snapshot_id, body.volume_id)
            assert c.record is not None
            return c.record

        return (await self._creating.run(key, fingerprint, make)).view()

    def on_snapshot_show(self, req: Request) -> Snapshot:
        return visible_snapshot(self.store, req.body.snapshot_id, req.ctx).view()

    async def on_snapshot_list(self, req: Request) -> SnapshotList:
        body: SnapshotListRequest = req.body
        everyone = body.all_projects and req.ctx.is_admin
        snapshots = self.store.snapshots
        project: str | None = req.ctx.project_id
        if everyone:  # every project's, or the one an admin names
            project = body.project_id or None
        listing: Callable[[ListingKey | None],
                          Iterable[SnapshotRecord] | BoundedScan[SnapshotRecord]]
        zone = body.availability_zone
        listing = partial(snapshots.newest_first, project, volume_id=body.volume_id,
                          status=body.status, name=body.name, metadata=body.metadata,
                          availability_zone=zone)
        if body.sort is not None:  # another order than by creation: SQLite's, off the loop
            size = page_size(body.limit)
            scan = await self.store.sorted_page(snapshots, snapshots.sorted_listing(
                project, body.sort, marker_record(snapshots.get, project, body.marker),
                body.volume_id, body.status, body.name, body.metadata, size + 1, zone),
                size, req.ctx.project_id)
            listing = read_already(scan)
        count = None if not body.with_count else await snapshots.count(
            project, body.volume_id, body.status, body.name, body.metadata,
            req.ctx.project_id, zone)
        found, next_marker = page(
            snapshots.get, listing, project,
            lambda rec: (body.volume_id is None or rec.volume_id == body.volume_id)
            and passes_filters(rec, body.status, body.name, body.metadata),
            body.marker, body.limit, wire_bytes,
        )
        return SnapshotList(tuple(rec.view() for rec in found), next_marker, count)

    def on_snapshot_watch(self, req: Request) -> SnapshotList:
        views = []
        for snapshot_id in req.body.snapshot_ids:
            rec = visible_snapshot(self.store, snapshot_id, req.ctx)
            if rec.status not in SNAPSHOT_STABLE:
                self.gw.watchers.add(snapshot_id, req)
            views.append(rec.view())
        return SnapshotList(tuple(views))

    async def on_snapshot_delete(self, req: Request) -> Snapshot:
        return await self._delete_snapshot(req, unmanage=False)

    async def on_snapshot_unmanage(self, req: Request) -> Snapshot:
        """Cinder's snapshot unmanage (an admin's): a delete whose node keeps the data
        (``unmanaged-snapshot-<id>`` on the file backend)."""
        require_admin(req.ctx, "unmanage a snapshot")
        return await self._delete_snapshot(req, unmanage=True)

    async def _delete_snapshot(self, req: Request, unmanage: bool) -> Snapshot:
        snapshot_id = req.body.snapshot_id
        retried = await self._retried_delete(req, snapshot_id)
        if isinstance(retried, Snapshot):
            return retried
        c = SnapshotDeleteContext(snapshot_id, req.ctx, unmanage)
        rec = self.store.snapshots.get(snapshot_id)
        volume_id = rec.volume_id if rec is not None else ""
        await self._run_delete(self.snapshot_delete_flow, c, req, snapshot_id, volume_id)
        assert c.record is not None
        return c.record.view()

    async def on_snapshot_update(self, req: Request) -> None:
        body: SnapshotUpdate = req.body
        rec = self._reported_snapshot(req, body.snapshot_id)
        if rec is None:
            log.warning("snapshot.update for unknown snapshot %s", body.snapshot_id)
            return
        new = body.status
        if new is rec.status:
            return
        rec.move(new, body.reason)
        SNAPSHOT_UPDATE_BEFORE_COMMIT()
        await self.save_snapshot(rec)
        SNAPSHOT_UPDATE_AFTER_COMMIT()

    async def on_snapshot_deleted(self, req: Request) -> None:
        rec = self._reported_snapshot(req, req.body.snapshot_id)
        if rec is None or rec.status not in (SnapshotStatus.DELETING,
                                             SnapshotStatus.UNMANAGING):
            log.warning("snapshot.deleted for %s, which is not deleting", req.body.snapshot_id)
            return
        await self.finish_snapshot_delete(rec, req.ctx)


__all__ = ["GatewayLifecycle", "visible_volume"]
