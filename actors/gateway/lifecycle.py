"""The gateway's side of delete, extend and snapshots: handlers and the nodes' reports.

``GatewayLifecycle(gw).handlers()`` adds these ops to the gateway's handler table:

- from clients: ``volume.delete``, ``volume.extend``, ``snapshot.create|show|list|
  watch|delete``. Each runs its flow (``actors.lifecycle_flows``) and replies
  once the work is cast to the node that holds the volume;
- from nodes: ``volume.deleted`` (the row goes and the quota is given back, in
  one step), ``volume.extended`` (commit or roll back the reservation, new
  size), ``snapshot.update`` and ``snapshot.deleted``. Only a storage node
  (ROUTER identity = its host name) may send these.

Idempotency: a snapshot create retried with the same request id returns the
first snapshot (waiting for the first request while it still runs); a delete
retried with the same request id is not an error even when the volume or
snapshot is already gone (the answer is its last view, status ``deleted``),
also after a gateway restart (``delete_requests.py``: which request deleted what
is kept in gateway.db, bounded).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from cinderblock.actors.gateway.delete_requests import DeleteRequests
from cinderblock.actors.gateway.guards import fingerprint as request_fingerprint
from cinderblock.actors.gateway.guards import require_reporter
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
    snapshot_create_api,
    snapshot_delete_api,
    volume_delete_api,
    volume_extend_api,
)
from cinderblock.actors.gateway.paging import page
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.lifecycle import (
    Snapshot,
    SnapshotCreate,
    SnapshotList,
    SnapshotListRequest,
    SnapshotUpdate,
    VolumeExtended,
)
from cinderblock.protocol.messages.quota import QuotaRelease, ReservationRef
from cinderblock.protocol.messages.volumes import Volume, VolumeRef
from cinderblock.protocol.states import (
    SNAPSHOT_ERRORS,
    VOLUME_ERRORS,
    SnapshotStatus,
    VolumeStatus,
    check_volume_move,
)
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput, InvalidState, NotFound

log = logging.getLogger(__name__)
V = VolumeStatus
SNAPSHOT_STABLE = frozenset(
    {SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR, SnapshotStatus.ERROR_DELETING,
     SnapshotStatus.DELETED}
)


class GatewayLifecycle:
    """Delete, extend and snapshots, over the gateway's store, quota link and router."""

    def __init__(self, gw: GatewayServices) -> None:
        self.gw = gw
        self.store = gw.store
        self.delete_flow = volume_delete_api(self)
        self.extend_flow = volume_extend_api(self)
        self.snapshot_flow = snapshot_create_api(self)
        self.snapshot_delete_flow = snapshot_delete_api(self)
        self._nodes = frozenset(n.host for n in gw.cfg.nodes)
        self.deletes = DeleteRequests(self.store.db)  # which request deleted what
        # snapshot creates running now, by request: a retry waits for the first
        self._creating: dict[tuple[str, str], tuple[str, asyncio.Future[SnapshotRecord]]] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "volume.delete": self.on_volume_delete,
            "volume.extend": self.on_volume_extend,
            "volume.deleted": self.on_volume_deleted,
            "volume.extended": self.on_volume_extended,
            "snapshot.create": self.on_snapshot_create,
            "snapshot.show": self.on_snapshot_show,
            "snapshot.list": self.on_snapshot_list,
            "snapshot.watch": self.on_snapshot_watch,
            "snapshot.delete": self.on_snapshot_delete,
            "snapshot.update": self.on_snapshot_update,
            "snapshot.deleted": self.on_snapshot_deleted,
        }

    # ---- services the flows use ------------------------------------------
    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, Any]:
        return await self.gw.quota_call(op, body, ctx)

    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        self.gw.cast_to_node(host, op, body, ctx)

    async def save_volume(self, rec: VolumeRecord) -> None:
        await self.store.save_status(rec)
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

    async def finish_volume_delete(self, rec: VolumeRecord, ctx: Context) -> None:
        """The row goes and the volume's quota is given back, together."""
        check_volume_move(rec.status, V.DELETED)
        rec.status, rec.updated_at = V.DELETED, time.time()
        release = QuotaRelease(rec.project_id, {"volumes": 1, "gigabytes": rec.size})
        await self._together(self.store.remove_volume(rec), self.quota_call(
            "quota.release", release, ctx))
        self.deletes.gone(rec.view())
        self.gw.publish(rec)
        self.gw.watchers.drop(rec.id)

    async def finish_snapshot_delete(self, rec: SnapshotRecord, ctx: Context) -> None:
        rec.move(SnapshotStatus.DELETED)
        release = QuotaRelease(rec.project_id, {"snapshots": 1, "gigabytes": rec.size})
        await self._together(self.store.snapshots.remove(rec), self.quota_call(
            "quota.release", release, ctx))
        self.deletes.gone(rec.view())
        self.publish_snapshot(rec)

    async def _together(self, *steps: Any) -> None:
        results = await asyncio.gather(*steps, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("finishing a delete: %s", result)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]

    def _retried_delete(self, req: Request, object_id: str) -> Volume | Snapshot | None:
        """The answer to a delete retried with its request id (None: not a retry).

        Still deleting: its current view (and the caller watches it); gone: its last
        view (``deleted``); back in an error status: None, so the delete runs again.
        """
        if not req.ctx.request_id or self.deletes.deleted_by(req.ctx) != object_id:
            return None
        current = self._current(object_id)
        if current is None:
            return self.deletes.last_view(object_id)
        if current.status in VOLUME_ERRORS or current.status in SNAPSHOT_ERRORS:
            return None
        self._watching(req, object_id)
        return current.view()

    # ---- volumes -------------------------------------------------------
    async def on_volume_delete(self, req: Request) -> Volume:
        volume_id = req.body.volume_id
        retried = self._retried_delete(req, volume_id)
        if isinstance(retried, Volume):
            return retried
        c = DeleteContext(volume_id, req.ctx)
        await self._run_delete(self.delete_flow, c, req, volume_id, volume_id)
        assert c.record is not None
        return c.record.view()

    async def _run_delete(
        self, flow: Any, c: Any, req: Request, object_id: str, volume_id: str
    ) -> None:
        """Run a delete flow, remembering its request id (a retry may come meanwhile,
        or after a restart): queued now, it commits with the move to deleting."""
        current = self._current(object_id)
        if current is not None:
            self.deletes.remember(req.ctx, current.view())
        self._watching(req, object_id)
        try:
            await self._run(flow, c, req, object_id, volume_id)
        except Exception:
            self.deletes.forget(req.ctx, object_id)
            raise

    def _current(self, object_id: str) -> VolumeRecord | SnapshotRecord | None:
        return self.store.volumes.get(object_id) or self.store.snapshots.snapshots.get(
            object_id)

    async def on_volume_extend(self, req: Request) -> Volume:
        body = req.body
        c = ExtendContext(body.volume_id, body.new_size, req.ctx, in_use=body.in_use)
        self._watching(req, body.volume_id)
        await self._run(self.extend_flow, c, req, body.volume_id, body.volume_id)
        assert c.record is not None
        return c.record.view()

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

    def _from_node(self, req: Request) -> None:
        require_reporter(req, self.gw.router, self._nodes)

    async def on_volume_deleted(self, req: Request) -> None:
        self._from_node(req)
        body: VolumeRef = req.body
        rec = self.store.volumes.get(body.volume_id)
        if rec is None or rec.status is not V.DELETING:
            log.warning("volume.deleted for %s, which is not deleting", body.volume_id)
            return
        await self.finish_volume_delete(rec, req.ctx)

    async def on_volume_extended(self, req: Request) -> None:
        self._from_node(req)
        body: VolumeExtended = req.body
        rec = self.store.volumes.get(body.volume_id)
        new = body.status
        expected = rec is not None and rec.status is V.EXTENDING
        ok = expected and new is V.AVAILABLE and body.reason is None
        outcome = "commit" if ok else "rollback"
        if expected:  # owed until the quota actor has it (the reconciler retries)
            self.store.queue_extend(body.volume_id, body.reservation_id, outcome)
        if await self.settle_extend(body.reservation_id, outcome, req.ctx):
            self.store.queue_extend_done(body.volume_id)
        if rec is None or not expected:
            log.warning("volume.extended for %s, which is not extending", body.volume_id)
            return
        if new is V.AVAILABLE and rec.extended_from is V.IN_USE:
            new = V.IN_USE  # an attached volume (3.42) stays attached
        rec.extended_from = None
        check_volume_move(rec.status, new)
        rec.status, rec.reason = new, body.reason
        if ok:
            rec.size = body.new_size
        await self.store.save_size(rec)
        self.gw.publish(rec)

    async def settle_extend(self, reservation_id: str, outcome: str, ctx: Context) -> bool:
        """Commit or roll back an extend's reservation; False if the quota actor did not
        take it (not reached: try again later)."""
        op = f"quota.{outcome}"
        try:
            await self.quota_call(op, ReservationRef(reservation_id), ctx)
        except (NotFound, InvalidState) as exc:  # nothing left to settle there
            log.warning("%s of extend reservation %s: %s", op, reservation_id, exc.message)
        except CinderblockError as exc:
            log.error("%s of extend reservation %s failed: %s", op, reservation_id, exc)
            return False
        return True

    # ---- snapshots -----------------------------------------------------
    async def on_snapshot_create(self, req: Request) -> Snapshot:
        body: SnapshotCreate = req.body
        ctx = req.ctx
        fingerprint = request_fingerprint(body)
        key = (ctx.project_id, ctx.request_id)
        if ctx.request_id:
            existing = await self._existing_snapshot(key, fingerprint)
            if existing is not None:
                self._watching(req, existing.id)
                return existing.view()
        c = SnapshotCreateContext(body, ctx, str(uuid.uuid4()), fingerprint)
        done: asyncio.Future[SnapshotRecord] = asyncio.get_running_loop().create_future()
        if ctx.request_id:
            self._creating[key] = (fingerprint, done)
        self._watching(req, c.snapshot_id)
        try:
            await self._run(self.snapshot_flow, c, req, c.snapshot_id, body.volume_id)
        except Exception as exc:
            done.set_exception(exc)
            done.exception()  # marked retrieved: a retry may never ask
            raise
        finally:
            if self._creating.get(key, (None, None))[1] is done:
                del self._creating[key]
        assert c.record is not None
        done.set_result(c.record)
        return c.record.view()

    async def _existing_snapshot(self, key: tuple[str, str], fingerprint: str
                                 ) -> SnapshotRecord | None:
        """The snapshot an earlier request with this id made, waiting for it while that
        request still runs (its error is the retry's: a second flow would find the
        volume claimed by the first and answer invalid_state)."""
        rec = self.store.snapshots.by_request.get(key)
        running = self._creating.get(key)
        fp = rec.request_fp if rec is not None else running[0] if running else None
        if fp is not None and fp != fingerprint:
            raise InvalidInput(f"request id {key[1]!r} was already used for a different "
                               "request", {"request_id": key[1]})
        if rec is None and running is not None:
            return await asyncio.shield(running[1])
        return rec

    def on_snapshot_show(self, req: Request) -> Snapshot:
        return visible_snapshot(self.store, req.body.snapshot_id, req.ctx).view()

    def on_snapshot_list(self, req: Request) -> SnapshotList:
        body: SnapshotListRequest = req.body
        everyone = body.all_projects and req.ctx.is_admin
        snapshots = self.store.snapshots
        found, next_marker = page(
            snapshots.snapshots, snapshots.listing, None if everyone else req.ctx.project_id,
            lambda rec: (body.volume_id is None or rec.volume_id == body.volume_id)
            and (body.status is None or rec.status.value == body.status),
            body.marker, body.limit,
        )
        return SnapshotList(tuple(rec.view() for rec in found), next_marker)

    def on_snapshot_watch(self, req: Request) -> SnapshotList:
        views = []
        for snapshot_id in req.body.snapshot_ids:
            rec = visible_snapshot(self.store, snapshot_id, req.ctx)
            if rec.status not in SNAPSHOT_STABLE:
                self.gw.watchers.add(snapshot_id, req)
            views.append(rec.view())
        return SnapshotList(tuple(views))

    async def on_snapshot_delete(self, req: Request) -> Snapshot:
        snapshot_id = req.body.snapshot_id
        retried = self._retried_delete(req, snapshot_id)
        if isinstance(retried, Snapshot):
            return retried
        c = SnapshotDeleteContext(snapshot_id, req.ctx)
        rec = self.store.snapshots.snapshots.get(snapshot_id)
        volume_id = rec.volume_id if rec is not None else ""
        await self._run_delete(self.snapshot_delete_flow, c, req, snapshot_id, volume_id)
        assert c.record is not None
        return c.record.view()

    async def on_snapshot_update(self, req: Request) -> None:
        self._from_node(req)
        body: SnapshotUpdate = req.body
        rec = self.store.snapshots.snapshots.get(body.snapshot_id)
        if rec is None:
            log.warning("snapshot.update for unknown snapshot %s", body.snapshot_id)
            return
        new = body.status
        if new is rec.status:
            return
        rec.move(new, body.reason)
        await self.save_snapshot(rec)

    async def on_snapshot_deleted(self, req: Request) -> None:
        self._from_node(req)
        rec = self.store.snapshots.snapshots.get(req.body.snapshot_id)
        if rec is None or rec.status is not SnapshotStatus.DELETING:
            log.warning("snapshot.deleted for %s, which is not deleting", req.body.snapshot_id)
            return
        await self.finish_snapshot_delete(rec, req.ctx)


__all__ = ["GatewayLifecycle", "visible_volume"]
