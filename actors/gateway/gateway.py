"""The gateway: the API actor. Clients, the scheduler and the nodes all talk to it.

It owns the volume and volume-type records (``GatewayStore``), runs the
``volume_create_api`` flow for creates, answers reads from memory, records the
status updates the scheduler and nodes send, and pushes each change to the
clients that watch that volume. It also hosts the event hub: an XSUB/XPUB
proxy thread that every actor publishes into and dashboards subscribe to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from functools import partial
from typing import Any

import zmq

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.admin import VolumeAdmin
from cinderblock.actors.gateway.attachments import Attachments
from cinderblock.actors.gateway.backup_store import BackupRecord
from cinderblock.actors.gateway.backups import GatewayBackups
from cinderblock.actors.gateway.cluster_stats import cluster_stats_handlers
from cinderblock.actors.gateway.create_flow import CreateApiContext, volume_create_api
from cinderblock.actors.gateway.event_hub import HubWatch, run_hub
from cinderblock.actors.gateway.flow_history import flow_handlers
from cinderblock.actors.gateway.group_snapshots import (
    GatewayGroupSnapshots,
    node_create_group_snapshot,
)
from cinderblock.actors.gateway.group_store import GroupRecord, GroupSnapshotRecord, GroupTypeStore
from cinderblock.actors.gateway.group_types import GroupTypes
from cinderblock.actors.gateway.groups import GatewayGroups
from cinderblock.actors.gateway.guards import (
    Outcome,
    outcome,
    require_admin,
    require_holder,
    require_reporter,
    retry_fingerprint,
)
from cinderblock.actors.gateway.lifecycle import GatewayLifecycle
from cinderblock.actors.gateway.lifecycle_checks import release_claim
from cinderblock.actors.gateway.lifecycle_flows import DeleteContext, SnapshotDeleteContext
from cinderblock.actors.gateway.lost_casts import (
    Cast,
    CreateRoute,
    ScheduleCasts,
    fenced_everywhere,
    request_again,
)
from cinderblock.actors.gateway.manage import (
    check_manage,
    manage_as_create,
    manageable,
    volume_manage_api,
)
from cinderblock.actors.gateway.migration import GatewayMigrations
from cinderblock.actors.gateway.paging import (
    BoundedScan,
    Key,
    marker_record,
    page,
    page_size,
    passes_filters,
    read_already,
    wire_bytes,
)
from cinderblock.actors.gateway.peers import PeerWatch
from cinderblock.actors.gateway.qos_specs import QosSpecsApi
from cinderblock.actors.gateway.quota_sync import QuotaSyncer
from cinderblock.actors.gateway.reconcile import Reconciler
from cinderblock.actors.gateway.retype import VolumeRetyper
from cinderblock.actors.gateway.service_logs import service_log_handlers
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.transfers import VolumeTransfers
from cinderblock.actors.gateway.typed_quota import (
    named_over_quota,
    named_quota,
    shown_types,
    typed_limits,
)
from cinderblock.actors.gateway.user_messages import UserMessages
from cinderblock.actors.gateway.volume_edit import VolumeEditor
from cinderblock.actors.gateway.volume_request import TypeCatalog, normalize_create
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeMatch, VolumeRecord
from cinderblock.actors.gateway.volume_types import VolumeTypes
from cinderblock.actors.gateway.watchers import Watchers
from cinderblock.actors.runtime.actor import (
    NODE_CONNECT_GRACE,
    Actor,
    Request,
    check_reader,
    when_connected,
)
from cinderblock.actors.runtime.config import (
    DEFAULT_TYPE,
    DEFAULT_ZONE,
    ClusterConfig,
    NodeConfig,
    host_of,
)
from cinderblock.actors.runtime.database import Database
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.actors.runtime.fence import fence_creates
from cinderblock.protocol.messages.health import Identity, StatusCounts
from cinderblock.protocol.messages.lifecycle import NodeCreateSnapshot
from cinderblock.protocol.messages.manage import ManageableList, VolumeManage
from cinderblock.protocol.messages.quota import (
    QuotaAbandon,
    QuotaAbandoned,
    QuotaApplied,
    QuotaApply,
    QuotaDefaultsUpdate,
    QuotaOp,
    QuotaReserve,
    QuotaSet,
    QuotaSets,
    QuotaShow,
    QuotaShowMany,
    QuotaUpdate,
    check_projects,
)
from cinderblock.protocol.messages.reconcile import (
    NodeFenceReply,
)
from cinderblock.protocol.messages.scheduling import (
    Backend,
    BackendEnable,
    BackendList,
    BackendListRequest,
    NodeCreateVolume,
    ScheduleRequest,
)
from cinderblock.protocol.messages.volumes import (
    AvailabilityZone,
    Empty,
    Volume,
    VolumeCreate,
    VolumeList,
    VolumeListRequest,
    VolumeSummary,
    VolumeSummaryRequest,
    VolumeType,
    VolumeUpdate,
    ZoneList,
)
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus, check_volume_move
from cinderblock.protocol.wire.access import may_subscribe
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    InvalidInput,
    NotFound,
    OverQuota,
    PeerGone,
)
from cinderblock.protocol.wire.pending_guard import WATCHED, PendingGuard
from cinderblock.protocol.wire.schema import dump, parse
from cinderblock.protocol.wire.transport import tune

log = logging.getLogger(__name__)
USERS_CHECK_S = 1.0  # how soon a change to the users file applies
SCHEDULER_CALL_TIMEOUT_S = 10.0  # a question to the scheduler, asked again if it dies
NODE_CALL_TIMEOUT_S = 10.0  # a node's answer to a question (what it could manage)
QUOTA_CALL_STALE_TIMES = 4  # a quota call waits 4 times the silence that means "down"
# a quota or scheduler call lost with its connection is sent again after this pause (the
# journal's outbox, whose batch went with it, takes its own loss first and goes ahead)
RESEND_PAUSE_S = 0.05
JOURNAL_CONTEXT = Context(project_id="admin", user_id="cinderblock-quota-journal",
                          roles=("admin",))
VOLUME_UPDATE_BEFORE_COMMIT = declare("gateway.volume_update.before_commit")
VOLUME_UPDATE_AFTER_COMMIT = declare("gateway.volume_update.after_commit")
STABLE = frozenset(
    {VolumeStatus.AVAILABLE, VolumeStatus.ERROR, VolumeStatus.IN_USE,
     VolumeStatus.ERROR_DELETING, VolumeStatus.ERROR_EXTENDING,
     VolumeStatus.AWAITING_TRANSFER}
)


class Gateway(Actor):
    name = "gateway"

    def __init__(self, cfg: ClusterConfig) -> None:
        super().__init__(cfg.events_in)
        self.cfg = cfg
        self.heartbeat_s = cfg.heartbeat_s
        # a quota call unanswered is given up after this (10 s by default), or once the
        # quota actor is judged frozen or cut off (_ping_peers); the journal's
        # outbox then tries again, a flow fails and reverts. One lost with its connection
        # (the quota actor died) is sent again at once, within the same time (quota_call)
        self.quota_timeout_s = QUOTA_CALL_STALE_TIMES * cfg.stale_after_s
        self.quota_resent = 0
        self.quota_given_up = 0  # calls given up on a quota actor frozen or cut off
        self.casts = ScheduleCasts()  # creates cast to the scheduler, not placed yet
        # snapshot creates (a group snapshot's too) sent again by this process
        self._snapshots_resent: set[str] = set()
        self.lost_casts_resent = 0
        self._resending = asyncio.Lock()
        self.store = GatewayStore(cfg.path("gateway.db"), cfg.synchronous,
                                  cfg.check_before_start_bytes, cfg.check_every_s)
        self.types = TypeCatalog()
        self.zones: Collection[str] = cfg.zones
        self.default_zone = DEFAULT_ZONE
        self.default_type = DEFAULT_TYPE
        self.configured_types = frozenset(self.cfg.volume_types) | {DEFAULT_TYPE}
        self.flow = volume_create_api(self)
        self.manage_flow = volume_manage_api(self)
        self.nodes: Sequence[NodeConfig] = cfg.nodes
        self.attachments = Attachments(self)
        self.lifecycle = GatewayLifecycle(self)
        self.backups = GatewayBackups(self)
        self.admin = VolumeAdmin(self, self.lifecycle)
        self.editor = VolumeEditor(self)
        self.retyper = VolumeRetyper(self)
        self.migrations = GatewayMigrations(self)
        self.group_type_ops = GroupTypes(self)
        self.groups = GatewayGroups(self)
        self.store.on_group_member_gone = self._group_member_gone
        self.group_snapshot_ops = GatewayGroupSnapshots(self)
        self.store.group_snapshots.on_change = self.group_snapshot_ops.publish
        self.store.snapshots.on_group_member_gone = self._group_snapshot_member_gone
        self.store.groups.on_change = self.publish_group
        self.volume_types = VolumeTypes(self)
        self.qos_specs = QosSpecsApi(self)
        self.user_messages = UserMessages(self)
        self.transfers = VolumeTransfers(self, self.lifecycle)
        self.reconciler = Reconciler(self, self.lifecycle, self.attachments,
                                     mend_backups=self.backups.mend,
                                     mend_migrations=self.migrations.mend,
                                     mend_groups=self._mend_groups,
                                     volume_made=self.backups.volume_made,
                                     resent_at=self.casts.resent_at,
                                     send_again=self.send_left_creates_again)
        self.quota_sync = QuotaSyncer(self)
        self.watchers = Watchers()
        # after a failed write, the rows the others keep in gateway.db are read back too
        self.store.reread_with(self.volume_types.reread, self.user_messages.reread,
                               self.attachments.attachments.reread,
                               self.store.transfers.reread, self.store.qos.reread,
                               self.store.migrations.reread, self.store.group_types.reread,
                               self.store.groups.reread, self.store.group_snapshots.reread)
        # a create with a request id, while its flow runs: what its retries wait for (its
        # record, or the exception it failed with, as a value: see ``Outcome``)
        self._inflight: dict[tuple[str, str], tuple[str, Outcome[VolumeRecord]]] = {}
        self._node_hosts = frozenset(n.host for n in cfg.nodes)
        self._node_backends = frozenset(n.backend_id for n in cfg.nodes)
        self.creates = 0
        self.peers: PeerWatch  # from on_start: the silence counts from there
        self.nodes_heard: PeerWatch  # the nodes, by their hellos: also from on_start
        self.node_calls_given_up = 0  # calls given up on a node gone silent

    def handlers(self) -> dict[str, Any]:
        return {
            "volume.create": self.on_volume_create,
            "volume.manage": self.on_volume_manage,
            "volume.manageable": self.on_volume_manageable,
            "volume.show": self.on_volume_show,
            "volume.list": self.on_volume_list,
            "volume.summary": self.on_volume_summary,
            "cluster.counts": self.on_cluster_counts,
            "volume.watch": self.on_volume_watch,
            "volume.update": self.on_volume_update,
            "az.list": self.on_az_list,
            "quota.show": self.on_quota_forward,
            "quota.show_many": self.on_quota_show_many,
            "quota.set": self.on_quota_forward,
            "quota.delete": self.on_quota_forward,
            "quota.set_defaults": self.on_quota_set_defaults,
            "backend.list": self.on_backend_list,
            "backend.set_enabled": self.on_backend_set_enabled,
            "work.cleanup": self.reconciler.on_work_cleanup,
            "ping": self.on_ping,
            "whoami": lambda req: Identity(req.ctx.project_id, req.ctx.user_id,
                                           tuple(req.ctx.roles)),
            **self.attachments.handlers(),
            **self.admin.handlers(),
            **self.lifecycle.handlers(),
            **self.backups.handlers(),
            **self.editor.handlers(),
            **self.retyper.handlers(),
            **self.migrations.handlers(),
            **self.group_type_ops.handlers(),
            **self.groups.handlers(),
            **self.group_snapshot_ops.handlers(),
            **self.volume_types.handlers(),
            **self.qos_specs.handlers(),
            **self.user_messages.handlers(),
            **self.transfers.handlers(),
            **self.quota_sync.handlers(),
            **flow_handlers(self),
            **cluster_stats_handlers(self, tuple(n.host for n in self.cfg.nodes)),
            **service_log_handlers(self, self.cfg.nodes),
        }

    def database(self) -> Database:
        return self.store.db

    async def on_start(self) -> None:
        for vtype in await self.store.open():
            self.types.add(vtype)
        self.spawn(self.store.db.flusher())
        await self._seed_types()
        await self.volume_types.load()
        await self.user_messages.load()
        await self.store.transfers.load()
        await self.store.qos.load()
        await self.store.migrations.load()  # before any volume's record is read
        await self.store.group_types.load()
        await self.store.groups.load()  # before any volume's record is read
        await self.store.group_snapshots.load()  # ... or snapshot's
        await self.store.load_volumes(self.types.by_id)
        await self.lifecycle.delete_requests.load()
        await self.attachments.open()
        self.peers = PeerWatch(("quota", "scheduler"), self.cfg.stale_after_s, time.monotonic())
        self.nodes_heard = PeerWatch(self._node_hosts, self.cfg.stale_after_s, time.monotonic())
        self.quota = self.connect(self.cfg.quota, "gateway", server="quota",
                                  calls_lost_with_connection=True,
                                  on_disconnect=lambda: self.peers.connection_closed("quota"))
        self.spawn(self.store.journal.run(self._quota_apply, self._quota_abandon,
                                          self._reservations_held))
        self.spawn(self.quota_sync.count_types_own())  # once, for a file from before
        self.scheduler = self.connect(self.cfg.scheduler, "gateway", server="scheduler",
                                      calls_lost_with_connection=True,
                                      on_disconnect=self._scheduler_lost)
        self.router = self.bind(self.cfg.gateway, domain="gateway")
        self.reconciler.start()
        if self.trust is not None:
            self.every(USERS_CHECK_S, self._reload_users)
        self.every(self.cfg.heartbeat_s, self._ping_peers)

    # ---- is quota, is the scheduler there (peers.py) --------------------
    def _ping_peers(self) -> None:
        now = time.monotonic()
        self.casts.prune(self._unplaced)
        for name in self.peers.newly_down(now):
            log.warning("%s has not answered for %gs: creates are refused until it is back",
                        name, self.cfg.stale_after_s)
            self.events.emit("liveness", subject=name, state="down")
            if name == "quota" and self.peers.open_but_silent(name):
                self.quota_given_up += self.quota.give_up(
                    f"the quota service has not answered for {self.cfg.stale_after_s:g}s, "
                    "its connection open (frozen or cut off)")
            elif name == "scheduler" and self.peers.open_but_silent(name):
                self.scheduler.give_up(f"the scheduler has not answered for "
                                       f"{self.cfg.stale_after_s:g}s, its connection open "
                                       "(frozen or cut off)")
        for name, link in (("quota", self.quota), ("scheduler", self.scheduler)):
            self.greet(link, self.cfg.stale_after_s, partial(self._peer_answered, name))
        for host in self.nodes_heard.newly_down(now):
            log.warning("storage node %s has not been heard from for %gs: calls to it are "
                        "given up until it is back", host, self.cfg.stale_after_s)
        for host, silence in self.nodes_heard.silences(now):
            self.node_calls_given_up += self.router.give_up(
                f"storage node {host} has not been heard from for {silence:.1f}s "
                "(stopped, frozen or cut off)", to=host)

    def on_ping(self, req: Request) -> Empty:
        """A ping; from a node, its hello (at start and every heartbeat): the node is
        heard from (``nodes_heard``), on the connection its authenticated messages come
        from (with keys only a node's own key sets that route). One heard from again
        after its silence, the process that went silent (no new routing id since:
        ``PeerWatch.open_but_silent``), is looked at once (``_node_back``); a new
        process's exports are swept at its first message (``peer_connected``), and what
        its predecessor left is the rounds' and an admin's cleanup's, as after any crash."""
        if not (req.peer in self._node_hosts and req.link is self.router
                and self.router.is_route(req.peer, req.sender)):
            return Empty()
        same_process = self.nodes_heard.open_but_silent(req.peer)
        if self.nodes_heard.answered(req.peer, time.monotonic()):
            if same_process:
                log.info("storage node %s is heard from again: its exports and its "
                         "records in a transitional status are looked at", req.peer)
                self.spawn(self._node_back(req.peer))
            else:
                log.info("storage node %s is heard from again, from a new process",
                         req.peer)
        return Empty()

    async def _node_back(self, host: str) -> None:
        """A node heard from again after its silence was the same process, frozen or cut
        off, or it dialled its connection again (``peer_reconnected``): what was sent to
        it or by it when its connection broke is lost (a new connection under its
        routing id is not seen by ``peer_connected``, a new routing id of the same
        process is not a new process). Its
        exports are swept (an unexport a force-detach could not send is among that) and
        its records mended as ``work.cleanup`` would (``Reconciler.mend_node``), rather
        than at the rounds, ``reconcile_after_s`` later."""
        await self.reconciler.sweep_node_exports(host)
        mended = await self.reconciler.mend_node(host)
        if mended:
            log.warning("storage node %s is back: %d record(s) it had been sent or had "
                        "reported while silent mended", host, len(mended))

    def _peer_answered(self, name: str) -> None:
        """Its ping answered (``Actor.greet``, which also dials again a connection made
        since the last answer that goes unanswered); silence is what PeerWatch counts."""
        if self.peers.answered(name, time.monotonic()):
            log.info("%s answers again", name)
            self.events.emit("liveness", subject=name, state="up")

    async def on_stop(self) -> None:
        await self.store.close()

    def prepare(self) -> None:
        self._start_event_hub()

    def _start_event_hub(self) -> None:
        """Bind the hub here (a bad address fails the start loudly), then hand both
        sockets to a thread that runs it (``event_hub``); nothing else touches them."""
        xsub = self.zctx.socket(zmq.XSUB)
        xpub = self.zctx.socket(zmq.XPUB)
        for sock in (xsub, xpub):
            tune(sock)
        self.serve(xsub, "events_in")
        watch = None
        if self.trust is not None:  # the hub's thread reads the XPUB's monitor
            self.trust.serve(xpub, "events")
            xpub.setsockopt(zmq.XPUB_MANUAL, 1)
            watch = HubWatch(self.trust.watch_handshakes(xpub, WATCHED),
                             PendingGuard(curve=True, on_loop=False), self.trust.count_refusal)
        xsub.bind(self.cfg.events_in)
        xpub.bind(self.cfg.events)
        if watch is not None:
            bound = xpub.getsockopt_string(zmq.LAST_ENDPOINT)
            watch.guard.local_port = int(bound.rsplit(":", 1)[1])
        check = self._may_subscribe if self.trust is not None else None
        threading.Thread(target=run_hub, args=(xsub, xpub, check, watch), name="event-hub",
                         daemon=True).start()

    def _reload_users(self) -> None:
        if self.trust is not None:
            self.trust.reload_users()

    def _may_subscribe(self, user: str, topic: bytes) -> bool:
        principal = self.trust.principal(user) if self.trust is not None else None
        return principal is not None and may_subscribe(principal, topic)

    async def _seed_types(self) -> None:
        for name, specs in self.cfg.volume_types.items():
            if name not in self.types.by_name:
                vtype = VolumeType(str(uuid.uuid4()), name, None, dict(specs))
                await self.store.add_type(vtype)
                self.types.add(vtype)

    def statistics(self) -> dict[str, Any]:
        return {
            **super().statistics(),
            "volumes": len(self.store.volumes),
            "creates": self.creates,
            "quota_calls_resent": self.quota_resent,
            "quota_calls_given_up": self.quota_given_up,
            "node_calls_given_up": self.node_calls_given_up,
            "lost_creates_sent_again": self.lost_casts_resent,
            "watchers": len(self.watchers),
            "db": self.store.db.statistics(),
            "quota_journal": self.store.journal.statistics(),
        }

    # ---- services the create flow uses ---------------------------------
    async def quota_call(self, op: str, body: object, ctx: Context,
                         timeout: float | None = None) -> dict[str, Any]:
        """A call to the quota actor, the quota changes owed so far sent ahead of it
        (``QuotaJournal.kick``): it reserves and reads after them. One lost with its
        connection (the quota actor died and its supervisor starts it again) is sent
        again, and waits in the socket until the quota actor is back, within the same
        ``timeout``: every call the gateway makes of it is the same done twice (a
        reserve under its reservation id returns the reservation made, if it was; a
        read, a limit set, a sync to counted usage), but a reserve without an id. While
        the quota actor is judged frozen or cut off (``PeerWatch.open_but_silent``), a
        call is refused at once, and those in flight were given up (``_ping_peers``)."""
        if self.peers.open_but_silent("quota"):  # frozen or cut off: no waiting on it
            self.peers.refuse_if_down(("quota",), time.monotonic(), f"a {op} call")
        deadline = time.monotonic() + (timeout or self.quota_timeout_s)
        while True:
            self.store.journal.kick()
            try:
                reply: dict[str, Any] = await self.quota.call(
                    op, body, ctx, timeout=max(0.0, deadline - time.monotonic()))
            except OverQuota as exc:  # a volume type's own quota by the type's name
                raise named_over_quota(exc, self.types) from None
            except PeerGone:
                if isinstance(body, QuotaReserve) and not body.reservation_id:
                    raise
                if time.monotonic() + RESEND_PAUSE_S >= deadline:
                    raise
                self.quota_resent += 1
                await asyncio.sleep(RESEND_PAUSE_S)
                continue
            return reply

    async def scheduler_call(self, op: str, body: object, ctx: Context) -> dict[str, Any]:
        """A question to the scheduler (``backend.list``, ``backend.set_enabled``: each
        the same done twice). One lost with its connection (the scheduler died, and its
        supervisor starts it again) is asked again, and waits in the socket until the
        scheduler is back, within the call's ``SCHEDULER_CALL_TIMEOUT_S``. While the
        scheduler is judged frozen or cut off (its connection open), one is refused at
        once, and those in flight were given up (``_ping_peers``), as quota's are."""
        if self.peers.open_but_silent("scheduler"):
            self.peers.refuse_if_down(("scheduler",), time.monotonic(), f"a {op} call")
        deadline = time.monotonic() + SCHEDULER_CALL_TIMEOUT_S
        while True:
            try:
                reply: dict[str, Any] = await self.scheduler.call(
                    op, body, ctx, timeout=max(0.0, deadline - time.monotonic()))
            except PeerGone:
                if time.monotonic() + RESEND_PAUSE_S >= deadline:
                    raise
                await asyncio.sleep(RESEND_PAUSE_S)
                continue
            return reply

    def _quota_apply(self, ops: tuple[QuotaOp, ...], earlier_answered: bool
                     ) -> Awaitable[tuple[str, ...]]:
        """The quota journal's outbox: ``quota.apply`` (see ``quota_journal.py``), sent
        before this returns, as ``kick`` needs, and held for the call that kicked it
        (one message for both; at the turn's end if it came after a linger)."""
        reply = self.quota.request("quota.apply", QuotaApply(ops, earlier_answered,
                                                             self.store.journal.incarnation),
                                   JOURNAL_CONTEXT,
                                   timeout=self.quota_timeout_s, hold=True)
        return _outcomes(reply)

    @property
    def group_types(self) -> GroupTypeStore:
        return self.store.group_types

    def group_type_users(self, type_id: str) -> int:
        """How many groups have the group type."""
        return self.store.groups.of_type(type_id)

    def volume_delete_flow(self) -> LinearFlow[DeleteContext]:
        return self.lifecycle.delete_flow

    def _group_member_gone(self, group_id: str) -> None:
        self.spawn(self.groups.member_gone(group_id))

    def snapshot_delete_flow(self) -> LinearFlow[SnapshotDeleteContext]:
        return self.lifecycle.snapshot_delete_flow

    async def _mend_groups(self, before: float) -> list[str]:
        return [*await self.groups.mend(before), *await self.group_snapshot_ops.mend(before)]

    def _group_snapshot_member_gone(self, group_snapshot_id: str) -> None:
        self.spawn(self.group_snapshot_ops.member_gone(group_snapshot_id))

    def _reservations_held(self) -> list[str]:
        """The reservations of this gateway's that its state still references: the
        extends' and retypes' migrations' in progress (no restart rolls them back)."""
        return [*self.store.extends.values(), *self.store.migrations.reservations()]

    async def _quota_abandon(self, incarnation: str, referenced: tuple[str, ...]
                             ) -> tuple[str, ...]:
        reply = await self.quota.call("quota.rollback_abandoned",
                                      QuotaAbandon(incarnation, referenced), JOURNAL_CONTEXT,
                                      timeout=self.quota_timeout_s)
        return parse(QuotaAbandoned, reply, strict=False).rolled_back

    def schedule(self, request: ScheduleRequest, ctx: Context) -> None:
        self.casts.sent(request, ctx, time.monotonic())
        self.scheduler.cast("schedule.create", request, ctx)

    # ---- creates a dead scheduler took with it (lost_casts.py) ---------------
    def _unplaced(self, volume_id: str) -> bool:
        rec = self.store.volumes.get(volume_id)
        return rec is not None and rec.status is VolumeStatus.CREATING and rec.host is None

    def _scheduler_lost(self) -> None:
        self.peers.connection_closed("scheduler")
        log.warning("the connection to the scheduler closed: the creates cast to it and "
                    "not placed are fenced on the nodes and sent again")
        self.spawn(self._send_lost_casts_again(time.monotonic()))

    async def _send_lost_casts_again(self, lost_at: float) -> None:
        async with self._resending:  # one round at a time (their fences would cross)
            casts = self.casts.before(lost_at, self._unplaced)
            again = await self._fence_and_send_again(casts)
            if casts:
                log.warning("of %d creates cast to the scheduler that died, %d sent again "
                            "(the rest are on a node, or a node did not answer)", len(casts),
                            len(again))

    def peer_connected(self, name: str) -> None:
        """A node speaks from a new connection (a new process, or this gateway's start):
        its exports are swept now (``Reconciler.sweep_node_exports``), and its watch
        notes that this is not the process that went silent, if one did."""
        if name in self._node_hosts:
            self.nodes_heard.connection_closed(name)
            self.spawn(self.reconciler.sweep_node_exports(name))

    def peer_reconnected(self, name: str) -> None:
        """A node, the same process, speaks from a connection it dialled again, ours
        having gone unanswered (``actors.runtime.redial``): what went on the old one is
        lost, as when it is heard from again after a silence, and looked at the same
        way (``_node_back``): by its next hello if it was judged silent, now if not."""
        if name in self._node_hosts and not self.nodes_heard.open_but_silent(name):
            log.info("storage node %s speaks from a new connection: its exports and its "
                     "records in a transitional status are looked at", name)
            self.spawn(self._node_back(name))

    async def send_left_creates_again(self, volume_ids: Sequence[str],
                                      snapshot_ids: Sequence[str] = ()) -> list[str]:
        """The creates the previous gateway process left ``creating`` (a volume with no
        host), which every node asked has said it neither holds nor works on
        (``Reconciler.finish_previous``): fenced and sent again as those a dead scheduler
        took (``lost_casts.py``). Returns the volumes and snapshots sent again; the rest
        are left to the reconciler's rounds."""
        async with self._resending:
            casts = [cast for v in volume_ids if (cast := self._left_cast(v)) is not None]
            again = await self._fence_and_send_again(casts)
            unsent = [s for s in snapshot_ids if s not in self._snapshots_resent]
            snapshots = [rec for s in unsent if (rec := self._left_snapshot(s)) is not None]
            again += await self._fence_and_send_snapshots_again(snapshots)
            grouped = self.group_snapshot_ops.left_unsent(unsent)
            again += await self._fence_and_send_group_snapshots_again(grouped)
            left = len(casts) + len(snapshots) + sum(len(m) for _, m in grouped)
            if left:
                log.warning("of %d creates the previous gateway process left unsent, %d "
                            "sent again (the rest are on a node, or a node did not answer)",
                            left, len(again))
            return again

    def _left_cast(self, volume_id: str) -> Cast | None:
        """The cast of a create the previous process left, rebuilt; None for one placed,
        sent again already, or a copy whose source is no longer on a node."""
        rec = self.store.volumes.get(volume_id)
        if rec is None or not self._unplaced(volume_id) \
                or self.casts.resent_at(volume_id) is not None:
            return None
        left = self.store.create_left(volume_id)
        if left is None:
            return None
        request_id, row = left
        route = CreateRoute.from_row(row)
        backend = route.manage_backend  # a manage's node; None: the scheduler's
        if rec.snapshot_id is not None or rec.source_volid is not None:
            backend = self._source_backend(rec)  # a copy is made where its source is
            if backend is None:
                return None
        ctx = Context(project_id=rec.project_id, user_id=rec.user_id, request_id=request_id)
        return Cast(request_again(rec, route), ctx, time.monotonic(), backend)

    def _left_snapshot(self, snapshot_id: str) -> SnapshotRecord | None:
        """A snapshot create the previous process left, to send again; None for one that
        has moved on, or is a group snapshot's (sent again with the group's,
        ``_fence_and_send_group_snapshots_again``)."""
        rec = self.store.snapshots.get(snapshot_id)
        if rec is None or rec.status is not SnapshotStatus.CREATING or rec.host is None \
                or self.store.group_snapshots.group_snapshot_of(rec.id) is not None:
            return None
        return rec

    async def _fence_and_send_snapshots_again(self, recs: Sequence[SnapshotRecord]
                                              ) -> list[str]:
        """Fence these snapshot creates on their nodes (a snapshot is made where its
        volume is); those fenced are sent again there, carrying the fence's token."""
        if not recs:
            return []
        fence = uuid.uuid4().hex
        by_node: dict[str, list[SnapshotRecord]] = {}
        for rec in recs:
            assert rec.host is not None
            by_node.setdefault(host_of(rec.host), []).append(rec)
        again = []
        for node, on_node in by_node.items():
            reply = await self._fence(node, [], fence, [r.id for r in on_node])
            fenced = set(reply.fenced) if reply is not None else set()
            for rec in on_node:
                if rec.id not in fenced or rec.status is not SnapshotStatus.CREATING:
                    continue
                left = self.store.snapshots.create_left(rec.id)
                if left is None:
                    continue
                request_id, row = left
                body = NodeCreateSnapshot(rec.id, rec.volume_id, rec.size,
                                          CreateRoute.from_row(row).manage_ref, fence)
                ctx = Context(project_id=rec.project_id, user_id=rec.user_id,
                              request_id=request_id)
                if not self._sent_again_to(node, "node.create_snapshot", body, ctx,
                                           f"snapshot {rec.id}"):
                    continue
                self._snapshots_resent.add(rec.id)
                again.append(rec.id)
        self.lost_casts_resent += len(again)
        return again

    async def _fence_and_send_group_snapshots_again(
            self, grouped: Sequence[tuple[GroupSnapshotRecord, list[SnapshotRecord]]]
    ) -> list[str]:
        """Fence each group snapshot's snapshots on its group's node (one cast makes
        them all, at one instant): a group snapshot whose snapshots were all fenced is
        sent again there whole, carrying the fence's token; one the node holds or works
        on any of is left to the reconciler. Returns the snapshots sent again."""
        again: list[str] = []
        for rec, snapshots in grouped:
            group = self.store.groups.by_id.get(rec.group_id)
            if group is None:  # not while it has group snapshots
                continue
            node, fence, ids = host_of(group.host), uuid.uuid4().hex, [s.id for s in snapshots]
            reply = await self._fence(node, [], fence, ids)
            if reply is None or set(reply.fenced) != set(ids) \
                    or any(s.status is not SnapshotStatus.CREATING for s in snapshots):
                continue
            body = node_create_group_snapshot(self.store, group, rec, snapshots, fence)
            ctx = Context(project_id=rec.project_id, user_id=rec.user_id,
                          request_id=rec.request_id)
            if not self._sent_again_to(node, "node.create_group_snapshot", body, ctx,
                                       f"group snapshot {rec.id}"):
                continue
            self._snapshots_resent.update(ids)
            again += ids
        self.lost_casts_resent += len(again)
        return again

    def _source_backend(self, rec: VolumeRecord) -> str | None:
        """The backend holding the snapshot or the volume ``rec`` is a copy of."""
        if rec.snapshot_id is not None:
            snap = self.store.snapshots.get(rec.snapshot_id)
            return None if snap is None else snap.host
        source = self.store.volumes.get(rec.source_volid or "")
        return None if source is None else source.host

    async def _fence_and_send_again(self, casts: Sequence[Cast]) -> list[str]:
        """Fence these creates on every node; those every node fenced are sent again,
        carrying the fence's token. Returns their volumes."""
        if not casts:
            return []
        fence = uuid.uuid4().hex
        ids = [c.request.volume_id for c in casts]
        hosts = [n.host for n in self.cfg.nodes]
        replies = await asyncio.gather(*(self._fence(h, ids, fence) for h in hosts))
        fenced = set(fenced_everywhere(ids, dict(zip(hosts, replies, strict=True))))
        again = []
        for cast in casts:
            volume_id = cast.request.volume_id
            if volume_id in fenced and self._unplaced(volume_id) \
                    and self._cast_again(cast, fence):
                again.append(volume_id)
        self.lost_casts_resent += len(again)
        return again

    def _cast_again(self, cast: Cast, fence: str) -> bool:
        """``cast`` sent again, carrying the fence's token: to the scheduler, or for a
        copy or a manage to its node; False if that node is not connected (the
        reconciler's rounds will judge it)."""
        volume_id, request = cast.request.volume_id, dataclasses.replace(cast.request,
                                                                         fence=fence)
        if cast.backend is None:
            self.schedule(request, cast.ctx)
        else:
            body = NodeCreateVolume(request, cast.backend, "", 0)
            if not self._sent_again_to(host_of(cast.backend), "node.create_volume", body,
                                       cast.ctx, f"volume {volume_id}"):
                return False
            self.casts.sent(request, cast.ctx, time.monotonic(), cast.backend)
        self.casts.resending(volume_id, time.time())
        return True

    def _sent_again_to(self, node: str, op: str, body: object, ctx: Context, what: str
                       ) -> bool:
        """A create's cast sent again to ``node``; False, and said in the log, if that
        node is not connected (the reconciler's rounds will judge the create)."""
        try:
            self.router.cast(op, body, ctx, to=node.encode())
        except CinderblockError as exc:
            log.warning("the create of %s was not sent again to %s: %s", what, node,
                        exc.message)
            return False
        return True

    async def _fence(self, host: str, volume_ids: list[str], fence: str,
                     snapshot_ids: Sequence[str] = ()) -> NodeFenceReply | None:
        """``node.fence_creates`` on one node (``fence.fence_creates``); None if it
        does not answer."""
        try:
            return await fence_creates(self.router, host, fence, volume_ids, snapshot_ids,
                                       timeout=NODE_CALL_TIMEOUT_S)
        except CinderblockError as exc:
            log.warning("%s did not answer the fence of lost creates: %s", host, exc.message)
            return None

    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        """Cast to the node of ``host`` ("node-1@file"): its DEALER identity is "node-1"."""
        self.router.cast(op, body, ctx, to=host_of(host).encode())

    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]:
        """A call to the node named `host` (its host name), waiting for a node not
        connected yet as ``send_to_node`` does."""
        async def call() -> dict[str, Any]:
            reply: dict[str, Any] = await self.router.call(op, body, ctx, to=host.encode(),
                                                           timeout=NODE_CALL_TIMEOUT_S)
            return reply

        return await when_connected(call, NODE_CONNECT_GRACE)

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        """``cast_to_node`` for a user's request: a node not connected yet (it says
        hello within a heartbeat of its restart or ours) is tried again for
        ``NODE_CONNECT_GRACE`` seconds before the request fails with ``PeerGone``."""
        async def cast() -> None:
            self.cast_to_node(host, op, body, ctx)

        await when_connected(cast, NODE_CONNECT_GRACE)

    # ---- volumes -------------------------------------------------------
    async def on_volume_create(self, req: Request) -> Volume:
        body: VolumeCreate = req.body
        fingerprint = retry_fingerprint(req.ctx.request_id, body, normalize_create)
        copy = body.snapshot_id is not None or body.source_volid is not None
        needs = ("quota",) if copy else ("quota", "scheduler")  # a copy is made on its node
        return await self._create(req, self.flow, body, None, fingerprint, needs)

    async def on_volume_manage(self, req: Request) -> Volume:
        """Cinder's manage (an admin's, ``manage.py``): a create of what a node holds."""
        require_admin(req.ctx, "manage a volume")
        body: VolumeManage = req.body
        fingerprint = retry_fingerprint(req.ctx.request_id, body, check_manage)
        return await self._create(req, self.manage_flow, manage_as_create(body), body,
                                  fingerprint, ("quota",))

    async def on_volume_manageable(self, req: Request) -> ManageableList:
        return await manageable(self, req.body, req.ctx)

    async def _create(self, req: Request, flow: LinearFlow[CreateApiContext],
                      body: VolumeCreate, manage: VolumeManage | None, fingerprint: str,
                      needs: tuple[str, ...], filling: bool = False) -> Volume:
        """Run a create (or a manage) flow; a retry with the request id of one made or
        still being made answers with that one. ``filling``: a create-from-src's copy."""
        ctx = req.ctx
        key = (ctx.project_id, ctx.request_id)
        if ctx.request_id:
            existing = await self._existing(key, fingerprint)
            if existing is not None:
                return self._answer_existing(existing, req)
        self.peers.refuse_if_down(needs, time.monotonic(), "creating a volume")
        volume_id = str(uuid.uuid4())
        done: Outcome[VolumeRecord] = asyncio.get_running_loop().create_future()
        if ctx.request_id:
            self._inflight[key] = (fingerprint, done)
        if req.body.watch:
            self.watchers.add(volume_id, req)
        c = CreateApiContext(body, ctx, volume_id, fingerprint, manage=manage, filling=filling)
        try:
            await self.run_flow(flow, c, volume_id, ctx)
        except Exception as exc:
            self.watchers.drop(volume_id)
            done.set_result(exc)
            raise
        finally:
            self._inflight.pop(key, None)
            release_claim(self.store, c.claimed)
        assert c.record is not None
        done.set_result(c.record)
        self.creates += 1
        self.publish(c.record, push=False)
        return c.record.view()

    async def _existing(self, key: tuple[str, str], fingerprint: str) -> VolumeRecord | None:
        """The volume an earlier request with this id made (waiting for it if in flight)."""
        made = self.store.made_by(*key)
        inflight = self._inflight.get(key)
        fp = made[1] if made is not None else inflight[0] if inflight else None
        if fp is not None and fp != fingerprint:
            raise InvalidInput(
                f"request id {key[1]!r} was already used for a different request",
                {"request_id": key[1]},
            )
        if inflight is not None:
            # Its flow still runs (its record may be written already): answer with what
            # that flow ends in, never with a record its failure would then remove.
            return outcome(await asyncio.shield(inflight[1]))
        return made[0] if made is not None else None

    def _answer_existing(self, rec: VolumeRecord, req: Request) -> Volume:
        if req.body.watch and rec.status not in STABLE:
            self.watchers.add(rec.id, req)
        return rec.view()

    def _visible(self, volume_id: str, ctx: Context) -> VolumeRecord:
        rec = self.store.volumes.get(volume_id)
        if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
            raise NotFound(f"volume {volume_id} could not be found", {"volume_id": volume_id})
        return rec

    def on_volume_show(self, req: Request) -> Volume:
        return self._visible(req.body.volume_id, req.ctx).view()

    async def on_volume_summary(self, req: Request) -> VolumeSummary:
        """How many volumes and GiB, and which metadata: the caller's project's, or an
        admin's ``all_projects`` (every project's, or ``project_id``'s)."""
        body: VolumeSummaryRequest = req.body
        project: str | None = req.ctx.project_id
        if body.all_projects and req.ctx.is_admin:
            project = body.project_id or None
        return await self.store.volume_summary(project, asker=req.ctx.project_id)

    async def on_cluster_counts(self, req: Request) -> StatusCounts:
        """Every project's volumes, snapshots and attachments by status (admins and
        monitors: the metrics exporter's gauges)."""
        check_reader(req.ctx, "cluster.counts")
        return await self.store.status_counts(asker=req.ctx.project_id)

    async def on_volume_list(self, req: Request) -> VolumeList:
        body: VolumeListRequest = req.body
        everyone = body.all_projects and req.ctx.is_admin
        project: str | None = req.ctx.project_id
        if everyone:  # every project's, or the one an admin names
            project = body.project_id or None
        volumes = self.store.volumes
        wanted = VolumeMatch(body.bootable, body.availability_zone, body.size,
                             body.created_at, body.updated_at, body.migration_status,
                             body.group_id)
        listing: Callable[[Key | None], Iterable[VolumeRecord] | BoundedScan[VolumeRecord]]
        listing = partial(volumes.listing, project, status=body.status, name=body.name,
                          metadata=body.metadata, oldest_first=body.oldest_first,
                          wanted=wanted)
        if body.sort is not None:
            listing = read_already(await self._sorted_listing(body, project,
                                                              req.ctx.project_id, wanted))
        count = None if not body.with_count else await self.store.count_volumes(
            project, body.status, body.name, body.metadata, wanted, req.ctx.project_id)
        found, next_marker = page(
            volumes.get, listing, project,
            lambda rec: (passes_filters(rec, body.status, body.name, body.metadata)
                         and wanted.passes(rec)),
            body.marker, body.limit, wire_bytes,
        )
        return VolumeList(tuple(rec.view() for rec in found), next_marker, count)

    async def _sorted_listing(self, body: VolumeListRequest, project: str | None,
                              asker: str, wanted: VolumeMatch,
                              ) -> BoundedScan[VolumeRecord]:
        """A page in another order than by creation (``GatewayStore.sorted_page``),
        after the marker's record."""
        assert body.sort is not None
        volumes, size = self.store.volumes, page_size(body.limit)
        return await self.store.sorted_page(volumes, volumes.sorted_listing(
            project, body.sort, marker_record(volumes.get, project, body.marker),
            body.status, body.name, body.metadata, size + 1, wanted), size, asker)

    def on_volume_watch(self, req: Request) -> VolumeList:
        views = []
        for volume_id in req.body.volume_ids:
            rec = self._visible(volume_id, req.ctx)
            if rec.status not in STABLE:
                self.watchers.add(volume_id, req)
            views.append(rec.view())
        return VolumeList(tuple(views))

    def on_volume_update(self, req: Request) -> None:
        """A plain handler (no task per update): memory first, the row is queued,
        and everyone hears of it once it is committed."""
        update: VolumeUpdate = req.body
        require_reporter(req, self.router, self._node_hosts, scheduler_too=True)
        rec = self.store.volumes.get(update.volume_id)
        if rec is None:
            log.warning("status update for unknown volume %s", update.volume_id)
            return
        if req.link is self.router:  # a node: about what it holds, and holding it itself
            require_holder(req, rec.host, f"volume {rec.id}")
            require_holder(req, update.host, f"volume {rec.id}")
        new = update.status
        if new is rec.status:
            return
        was = rec.status
        if req.link is self.scheduler and rec.status is not VolumeStatus.CREATING:
            # The scheduler speaks of creates only: a volume that has moved on (the node
            # it judged down finished it after all) is not its to change.
            log.info("volume %s is %s: the scheduler's %s (%s) is not applied",
                     rec.id, rec.status.value, new.value, update.reason)
            return
        if rec.status is VolumeStatus.ERROR and rec.host is None and update.host:
            # A create the reconciler judged lost finished after all: keep the error,
            # but remember where the volume is, so that its delete cleans it up there.
            log.warning("volume %s, in error, turned up %s on %s", rec.id, new.value, update.host)
            rec.host = update.host
            self.store.queue_status(rec).add_done_callback(partial(self._saved, rec))
            return
        check_volume_move(rec.status, new)
        rec.status, rec.reason = new, update.reason
        rec.host = update.host or rec.host
        VOLUME_UPDATE_BEFORE_COMMIT()
        self.store.queue_status(rec).add_done_callback(partial(self._saved, rec))
        if was is VolumeStatus.CREATING and rec.id in self.store.backups.restoring:
            self.backups.volume_made(rec)  # its backup is given back, in this transaction
        self.user_messages.record(rec, req.ctx.request_id or None)  # if it is an error

    def _saved(self, rec: VolumeRecord, committed: asyncio.Future[None]) -> None:
        if committed.exception() is None:
            VOLUME_UPDATE_AFTER_COMMIT()
            self.publish(rec)

    def publish(self, rec: VolumeRecord, push: bool = True) -> None:
        """Tell everyone: an event for dashboards, a push for the clients watching
        (not for a new volume: the watcher's own reply already says ``creating``)."""
        self.events.emit(
            "volume", volume_id=rec.id, project_id=rec.project_id, status=rec.status.value,
            size=rec.size, host=rec.host, name=rec.name, volume_type=rec.volume_type.name,
            reason=rec.reason, migration_status=rec.migration_status,
        )
        if push:
            self.watchers.push(rec.id, "volume.status", rec.view(), rec.status in STABLE)

    def attachment_status(self, volume_id: str) -> VolumeStatus:
        return self.attachments.status_for(volume_id)

    def publish_snapshot(self, rec: SnapshotRecord) -> None:
        self.lifecycle.publish_snapshot(rec)

    def publish_group(self, group: GroupRecord, deleted: bool) -> None:
        """An event for dashboards: a group's status (``deleted``: gone) and its volumes."""
        self.events.emit(
            "group", group_id=group.id, project_id=group.project_id,
            status="deleted" if deleted else group.status.value, name=group.name,
            host=group.host, volumes=len(self.store.groups.members.get(group.id, ())),
            reason=group.reason,
        )

    def publish_backup(self, rec: BackupRecord) -> None:
        """An event for dashboards (backups have no watchers: clients poll them)."""
        self.events.emit(
            "backup", backup_id=rec.id, volume_id=rec.volume_id, project_id=rec.project_id,
            status=rec.status.value, size=rec.size, name=rec.name, reason=rec.fail_reason,
        )

    @property
    def node_hosts(self) -> frozenset[str]:
        return self._node_hosts

    @property
    def node_backends(self) -> frozenset[str]:
        """Every storage node's backend ("node-1@file")."""
        return self._node_backends

    async def create_volume(self, req: Request, body: VolumeCreate, filling: bool = False
                            ) -> Volume:
        """A volume create the gateway makes for ``req`` (a backup's restore into a new
        volume, a create-from-src's copy: ``filling`` its ``creating`` group): the create
        flow, with ``req``'s request id naming it as a create's."""
        fingerprint = retry_fingerprint(req.ctx.request_id, body, normalize_create)
        return await self._create(dataclasses.replace(req, body=body), self.flow, body, None,
                                  fingerprint, ("quota", "scheduler"), filling)

    async def created_before(self, req: Request, body: VolumeCreate) -> Volume | None:
        """The volume an earlier create of ``body`` under ``req``'s request id made, or is
        making (then what it ends in); None if none."""
        if not req.ctx.request_id:
            return None
        fingerprint = retry_fingerprint(req.ctx.request_id, body, normalize_create)
        made = await self._existing((req.ctx.project_id, req.ctx.request_id), fingerprint)
        return None if made is None else made.view()

    # ---- types, zones, quota, backends ----------------------------------
    def on_az_list(self, req: Request) -> ZoneList:
        return ZoneList(tuple(AvailabilityZone(z) for z in self.zones))

    async def on_quota_forward(self, req: Request) -> QuotaSet:
        project = req.body.project or req.ctx.project_id
        if req.env.op in ("quota.set", "quota.delete"):
            require_admin(req.ctx, "set quotas")
        elif project != req.ctx.project_id and "monitor" not in req.ctx.roles:
            require_admin(req.ctx, "see another project's quotas")  # a monitor reads any
        body = type(req.body)(**{**dump(req.body), "project": project})
        if isinstance(body, QuotaUpdate):
            body = QuotaUpdate(project, typed_limits(body.limits, self.types))
        reply = await self.quota_call(req.env.op, body, req.ctx, timeout=10.0)
        if isinstance(body, QuotaShow) and body.defaults:  # the defaults the caller has
            shown = shown_types(self.types, req.ctx.project_id, req.ctx.is_admin)
        else:
            shown = shown_types(self.types, project, admin=False)
        return named_quota(parse(QuotaSet, reply, strict=False), self.types, shown)

    async def on_quota_set_defaults(self, req: Request) -> QuotaSet:
        require_admin(req.ctx, "set the default quotas")
        body = QuotaDefaultsUpdate(typed_limits(req.body.limits, self.types))
        reply = await self.quota_call("quota.set_defaults", body, req.ctx, timeout=10.0)
        return named_quota(parse(QuotaSet, reply, strict=False), self.types,
                           shown_types(self.types, req.ctx.project_id, admin=True))

    async def on_quota_show_many(self, req: Request) -> QuotaSets:
        """Several projects' quotas in one call (a metrics exporter's every poll): an
        admin's or a monitor's, or a member's of its own project only."""
        body: QuotaShowMany = req.body
        check_projects(body.projects)
        if "monitor" not in req.ctx.roles and set(body.projects) != {req.ctx.project_id}:
            require_admin(req.ctx, "see another project's quotas")
        reply = await self.quota_call("quota.show_many", body, req.ctx, timeout=10.0)
        return QuotaSets(tuple(named_quota(q, self.types, ()) for q in
                               parse(QuotaSets, reply, strict=False).quotas))

    async def on_backend_list(self, req: Request) -> BackendList:
        """A page of the backends, as the scheduler's index has them now."""
        reply = await self.scheduler_call("backend.list", req.body, req.ctx)
        return parse(BackendList, reply, strict=False)

    async def backends_seen(self, ctx: Context) -> list[Backend]:
        """Every backend as the scheduler's index has it now, page after page (the
        client library's ``read_pages`` does the same, but an actor does not import the
        client library: ``test_cli_entry``)."""
        seen: list[Backend] = []
        marker: str | None = None
        while True:
            reply = await self.scheduler_call("backend.list", BackendListRequest(marker), ctx)
            page = parse(BackendList, reply, strict=False)
            seen += page.backends
            if page.next_marker is None:
                return seen
            marker = page.next_marker

    async def on_backend_set_enabled(self, req: Request) -> BackendEnable:
        require_admin(req.ctx, "enable or disable a backend")
        reply = await self.scheduler_call("backend.set_enabled", req.body, req.ctx)
        return parse(BackendEnable, reply, strict=False)


async def _outcomes(reply: Awaitable[Any]) -> tuple[str, ...]:
    """What ``quota.apply`` did with each op, from its reply."""
    return parse(QuotaApplied, await reply, strict=False).outcomes


