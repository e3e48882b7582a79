"""A storage node: one per storage host, holding one backend.

It connects out (DEALER, identity = its host name) to the gateway and the
scheduler, so a host can join from anywhere; it publishes its capacity to
the scheduler's stats socket on a heartbeat and after every change (one
report per loop turn at most). Creates arrive from the scheduler and run
``volume_create_manager``; status changes go to the gateway. Backups go into (and
come back from) its backup repository (``NodeConfig.backup_path``, by default
``backups`` in the node's data directory; a mount that nodes may share), which the
backup flows (``backup_flows``) and a create from a backup use.

``busy`` counts, per volume or snapshot id, the operations running on it
here; the gateway's reconciler asks (``node.probe``) before it judges a
volume that stays ``creating`` or ``deleting`` lost.

Capacity it reports includes creates in flight, and it echoes the highest
scheduler sequence number it has accounted for (``sched_seq``), so the
scheduler knows which of its own placements the report already contains.
It also names the oldest placement it is still working on (``oldest_seq``) and
its process (``incarnation``), from which the scheduler knows which creates it
cast here have finished: those still held when the node goes silent are failed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import zmq

from cinderblock.actors.runtime.actor import Actor, Request
from cinderblock.actors.runtime.config import ClusterConfig, NodeConfig
from cinderblock.protocol.messages.limits import check_range
from cinderblock.protocol.messages.manage import (
    MANAGEABLE_PAGE_MAX,
    ManageableList,
    ManageableVolume,
    NodeManageable,
)
from cinderblock.protocol.messages.pages import page_after
from cinderblock.protocol.messages.reconcile import (
    PROBE_MAX_IDS,
    NodeFenceCreates,
    NodeFenceReply,
    NodeProbe,
    NodeProbeReply,
)
from cinderblock.protocol.messages.scheduling import BackendStatsMsg, ScheduleRequest
from cinderblock.protocol.messages.volumes import Empty, VolumeUpdate
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, pack
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput
from cinderblock.protocol.wire.schema import dump
from cinderblock.protocol.wire.transport import Channel, tune
from cinderblock.storage_node.backends import DriverError, make_driver
from cinderblock.storage_node.backends.base import Kind, WriteHold
from cinderblock.storage_node.backup_flows import backup_handlers
from cinderblock.storage_node.backup_repository import BackupRepository
from cinderblock.storage_node.create_flow import ManagerContext, volume_create_manager
from cinderblock.storage_node.lifecycle_flows import lifecycle_handlers
from cinderblock.storage_node.migration_flows import NodeMigrations
from cinderblock.storage_node.nbd.exports import ExportManager

log = logging.getLogger(__name__)
EARLY_STATS_S = (0.05, 0.2, 0.5)  # first reports, before the heartbeat takes over
STATS_MIN_INTERVAL_S = 0.05  # changes within this window share one report
HELLO_WAIT_S = 2.0  # the longest the first report waits for the scheduler to have our hello
FENCE_KEEP_S = 600.0  # how long a create stays fenced (NodeFenceCreates)
FENCE_MAX_CHARS = 64


class StorageNode(Actor):
    def __init__(self, cfg: ClusterConfig, node: NodeConfig) -> None:
        super().__init__(cfg.events_in)
        self.cfg = cfg
        self.node = node
        self.name = node.host
        self.heartbeat_s = cfg.heartbeat_s
        self.backend_id = node.backend_id
        directory = Path(node.directory) if node.directory else cfg.path("nodes", node.host)
        self.driver = make_driver(node.backend, directory, node.capacity_gb,
                                  frozenset(node.faults))
        self.backups = BackupRepository(cfg.backup_root(node), node.host)
        self.flow = volume_create_manager(self)
        self.exports = ExportManager(self.driver, node.nbd_address, node.nbd_port,
                                     cfg.path("nodes", f"{node.host}.exports.json"),
                                     cfg.path("nodes", f"{node.host}.tls"), self.notify)
        self._inflight: dict[str, int] = {}
        self._placed: dict[str, tuple[str, int]] = {}  # in-flight volume -> (epoch, seq)
        self._incarnation = secrets.token_hex(8)
        self.busy: Counter[str] = Counter()
        # volume or snapshot id -> (the token its create must carry, when fenced):
        # NodeFenceCreates
        self.fences: dict[str, tuple[str, float]] = {}
        self._sched_epoch = ""
        self._sched_seq = 0
        self._stats_due = False
        self._heard = False  # the scheduler has our hello: stats may go (_report_once_heard)
        self._last_stats = 0.0
        self._volume_count = self.driver.volume_count()
        self.migrations = NodeMigrations(self, cfg.path("nodes", f"{node.host}.copies"))

    def handlers(self) -> dict[str, Any]:
        return {"node.create_volume": self.on_create_volume, "ping": lambda req: Empty(),
                "node.probe": self.on_probe, "node.manageable": self.on_manageable,
                "node.fence_creates": self.on_fence_creates,
                **self.exports.handlers(), **lifecycle_handlers(self),
                **backup_handlers(self), **self.migrations.handlers()}

    async def on_start(self) -> None:
        await self._prepare_backups()
        await asyncio.to_thread(self.migrations.sweep_scratch)
        pub = self.zctx.socket(zmq.PUB)
        tune(pub)
        self.dial(pub, "scheduler")
        pub.connect(self.cfg.stats)
        self._stats = Channel(pub, None)
        await self.exports.start()
        self.gateway = self.connect(self.cfg.gateway, self.node.host, server="gateway")
        self.scheduler = self.connect(self.cfg.scheduler, self.node.host, server="scheduler")
        self._hello()  # the gateway and the scheduler reach us where this comes from
        self.spawn(self._report_once_heard())
        self.every(self.cfg.heartbeat_s, self.stats_changed)
        self.every(self.cfg.heartbeat_s, self._hello)
        self.every(FENCE_KEEP_S / 10, self._forget_fences)

    async def _prepare_backups(self) -> None:
        """The backup repository made if missing, this node's leftovers swept. A
        repository that cannot be reached (a shared mount not mounted) does not keep the
        node from serving its volumes: each backup then fails and says why."""
        try:
            await asyncio.to_thread(self.backups.prepare)
        except DriverError as exc:
            log.error("%s: backups will fail until this is mended: %s", self.name, exc)

    async def _report_once_heard(self) -> None:
        """Stats go only once the scheduler has this process's hello (the reply to its
        first report, ``node.hello``, sent on the same connection right after it), or
        after ``HELLO_WAIT_S`` without one (the scheduler is away: the hellos of every
        heartbeat reach it when it is back). The scheduler casts to where a node's
        hellos come from; stats of a restarted node's new process that overtook its
        first hello would show the backend fresh while its creates still went to the
        old process's connection. That first report is in the index as the hello has
        settled what the old process held, before anything published on the stats
        connection (still connecting) could be."""
        with suppress(CinderblockError):
            await self.scheduler.call("node.hello", self.stats(), timeout=HELLO_WAIT_S)
        self._heard = True
        loop = asyncio.get_running_loop()
        for delay in EARLY_STATS_S:
            loop.call_later(delay, self.stats_changed)

    async def on_stop(self) -> None:
        await self.exports.stop()
        self._stats.close()

    def statistics(self) -> dict[str, Any]:
        return {**super().statistics(), "inflight": len(self._inflight),
                "volumes": self._volume_count, **self.exports.statistics()}

    def _hello(self) -> None:
        """A ping to the gateway and the scheduler: each addresses this node at
        the connection its authenticated messages come from (a restarted gateway
        or scheduler learns it again within a heartbeat). One not answered over a
        connection made since the last answer has the connection dialled again
        under a new routing id (``Actor.greet``, ``actors.runtime.redial``)."""
        for link in (self.gateway, self.scheduler):
            self.greet(link, self.cfg.stale_after_s)

    # ---- capacity ------------------------------------------------------
    def stats_changed(self) -> None:
        """Report soon: at once if the last report is old, else at the end of the window."""
        if self._stats_due or not self._heard:
            return
        self._stats_due = True
        wait = self._last_stats + STATS_MIN_INTERVAL_S - time.monotonic()
        loop = asyncio.get_running_loop()
        if wait <= 0:
            loop.call_soon(self._publish_stats)
        else:
            loop.call_later(wait, self._publish_stats)

    def _publish_stats(self) -> None:
        self._stats_due = False
        self._last_stats = time.monotonic()
        self._stats.send([b"stats", pack(dump(self.stats()))])

    def stats(self) -> BackendStatsMsg:
        cap = self.driver.capacity()
        inflight = sum(self._inflight.values())
        node = self.node
        return BackendStatsMsg(
            backend=self.backend_id, host=node.host, availability_zone=node.availability_zone,
            total_capacity_gb=cap.total_capacity_gb,
            free_capacity_gb=cap.free_capacity_gb - inflight,
            allocated_capacity_gb=cap.allocated_capacity_gb + inflight,
            provisioned_capacity_gb=cap.provisioned_capacity_gb + inflight,
            reserved_percentage=node.reserved_percentage,
            thin_provisioning_support=cap.thin_provisioning_support,
            thick_provisioning_support=cap.thick_provisioning_support,
            max_over_subscription_ratio=node.max_over_subscription_ratio,
            capabilities=self.capabilities(), sched_epoch=self._sched_epoch,
            sched_seq=self._sched_seq, timestamp=time.time(), volumes=self._volume_count,
            oldest_seq=self._oldest_seq(), incarnation=self._incarnation,
        )

    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]:
        """The writes of these volumes' exports held (a snapshot's or a clone's instant,
        a group snapshot's)."""
        return self.exports.writes_held(volume_ids)

    def guest_writes(self, volume_id: str) -> WriteHold | None:
        """What holds a guest's writes to the volume (a backup's copy of one instant);
        None if no read-write export of it is here."""
        if not self.exports.writable(volume_id):
            return None
        return partial(self.exports.writes_held, (volume_id,))

    def capabilities(self) -> dict[str, object]:
        """The driver's, named as the node's configuration says (``volume_backend_name``)."""
        found = self.driver.capabilities()
        if self.node.volume_backend_name is not None:
            found["volume_backend_name"] = self.node.volume_backend_name
        return found

    def recount_volumes(self) -> None:
        self._volume_count = self.driver.volume_count()
        self.stats_changed()

    # ---- services the manager flow uses --------------------------------
    def begin_create(self, volume_id: str, size: int, epoch: str, seq: int) -> None:
        self._inflight[volume_id] = size
        if not epoch:
            self.stats_changed()  # cast by the gateway (a clone): no placement to acknowledge
            return
        self._placed[volume_id] = (epoch, seq)
        if epoch != self._sched_epoch:
            self._sched_epoch, self._sched_seq = epoch, seq
        else:
            self._sched_seq = max(self._sched_seq, seq)
        self.stats_changed()

    def _oldest_seq(self) -> int:
        epoch = self._sched_epoch
        return min((seq for e, seq in self._placed.values() if e == epoch), default=0)

    def end_create(self, volume_id: str) -> None:
        self._placed.pop(volume_id, None)
        if self._inflight.pop(volume_id, None) is not None:
            self.stats_changed()

    def reschedule(self, request: ScheduleRequest, ctx: Context) -> None:
        self.scheduler.cast("schedule.create", request, ctx)

    def report(self, volume_id: str, status: VolumeStatus, reason: str | None, ctx: Context
               ) -> None:
        host = self.backend_id if status is VolumeStatus.AVAILABLE else None
        self.gateway.cast("volume.update", VolumeUpdate(volume_id, status, host, reason), ctx)
        if status is VolumeStatus.AVAILABLE:
            self._volume_count += 1

    def notify(self, volume_id: str, event: str) -> None:
        self.events.emit("notify", volume_id=volume_id, event=event, host=self.backend_id)

    @contextmanager
    def working(self, *ids: str) -> Iterator[None]:
        """Count an operation on these volumes or snapshots while it runs."""
        for object_id in ids:
            self.busy[object_id] += 1
        try:
            yield
        finally:
            for object_id in ids:
                self.busy[object_id] -= 1
                if not self.busy[object_id]:
                    del self.busy[object_id]

    # ---- handlers ------------------------------------------------------
    async def on_create_volume(self, req: Request) -> None:
        c = ManagerContext(req.body, req.ctx)
        volume_id = req.body.request.volume_id
        if self.fenced_out(volume_id, req.body.request.fence):
            # its placement acknowledged, not made
            self.begin_create(volume_id, 0, req.body.sched_epoch, req.body.sched_seq)
            self.end_create(volume_id)
            return
        try:
            with self.working(volume_id):
                await self.run_flow(self.flow, c, volume_id, req.ctx)
        except Exception as exc:  # handled: the reverts rescheduled it or reported the error
            log.info("create of %s failed on %s: %s", volume_id, self.backend_id, exc)

    async def on_manageable(self, req: Request) -> ManageableList:
        """What the backend holds that could be managed: one name, or a page by name (the
        directory read off the loop: it may hold many volumes)."""
        body: NodeManageable = req.body
        check_range("limit", body.limit, 1, MANAGEABLE_PAGE_MAX)
        listing = self.driver.manageable_snapshots if body.snapshot \
            else self.driver.manageable_volumes
        try:
            found = listing(body.name) if body.name is not None \
                else await asyncio.to_thread(listing)
        except DriverError as exc:
            raise InvalidInput(str(exc), {"source_name": body.name}) from None
        page, next_marker = page_after(found, lambda m: m.name, body.marker, body.limit)
        return ManageableList(self.backend_id, tuple(
            ManageableVolume(m.name, m.size_gb, m.reason_not_safe is None, m.reason_not_safe,
                             m.object_id) for m in page),
            self.capabilities(), next_marker)

    def on_fence_creates(self, req: Request) -> NodeFenceReply:
        """Each asked volume (snapshot) this node neither works on nor holds is fenced:
        from now on only a create carrying ``fence`` is made here (see
        ``NodeFenceCreates``)."""
        body: NodeFenceCreates = req.body
        if len(body.volume_ids) + len(body.snapshot_ids) > PROBE_MAX_IDS:
            raise InvalidInput(f"a fence names at most {PROBE_MAX_IDS} volumes and snapshots")
        if not 0 < len(body.fence) <= FENCE_MAX_CHARS:
            raise InvalidInput(f"a fence is 1 to {FENCE_MAX_CHARS} characters",
                               {"field": "fence"})
        busy: list[str] = []
        held: dict[Kind, list[str]] = {"volume": [], "snapshot": []}
        fenced: list[str] = []
        now = time.monotonic()
        asked: tuple[tuple[Kind, tuple[str, ...]], ...] = (
            ("volume", body.volume_ids), ("snapshot", body.snapshot_ids))
        for kind, ids in asked:
            for object_id in ids:
                if object_id in self.busy:
                    busy.append(object_id)
                elif self.driver.holds(kind, object_id):
                    held[kind].append(object_id)
                else:
                    self.fences[object_id] = (body.fence, now)
                    fenced.append(object_id)
        return NodeFenceReply(tuple(busy), tuple(held["volume"]), tuple(fenced),
                              tuple(held["snapshot"]))

    def fenced_out(self, object_id: str, fence: str) -> bool:
        """Whether a create of ``object_id`` is one the gateway fenced here and sent again
        (its scheduler, or the gateway process before, died with it) that does not carry
        the fence's token: the lost sender's cast, come after all, not to be made. The
        fence stays: that cast may come after the resend too."""
        fenced = self.fences.get(object_id)
        if fenced is None or fence == fenced[0]:
            return False
        log.warning("create of %s cast before the gateway fenced it here is dropped: it was "
                    "sent again", object_id)
        return True

    def _forget_fences(self) -> None:
        """A fence outlives any cast it could stop (one still in the line minutes after
        its scheduler died) by far; then it goes."""
        before = time.monotonic() - FENCE_KEEP_S
        for volume_id in [v for v, (_, at) in self.fences.items() if at < before]:
            del self.fences[volume_id]

    def on_probe(self, req: Request) -> NodeProbeReply:
        body: NodeProbe = req.body
        asked = (*body.volume_ids, *body.snapshot_ids, *body.backup_ids)
        if len(asked) > PROBE_MAX_IDS:
            raise InvalidInput(f"a probe asks about at most {PROBE_MAX_IDS} ids")
        holds = self.driver.holds
        return NodeProbeReply(
            busy=tuple(i for i in asked if i in self.busy),
            volumes=tuple(i for i in body.volume_ids if holds("volume", i)),
            snapshots=tuple(i for i in body.snapshot_ids if holds("snapshot", i)),
        )
