"""The scheduler: places volumes on backends from an in-memory capacity index.

Nodes publish their stats to the scheduler's SUB socket (heartbeats and after
every change); each report updates ``CapacityIndex``. A ``schedule.create``
cast runs ``volume_create_scheduler`` and casts the create to the chosen
node through the ROUTER (the node's identity is its host name). When no
backend can take the volume, the gateway is told: status ``error`` with the
reason, and the quota stays committed as in Cinder.

Liveness (``liveness.py``): a node silent for ``stale_after_s`` is down (looked at
ten times in that span); it gets no new work, and the creates cast to it and not
seen finished go to ``error`` with the reason. It is up again with its next stats.
A node restarted sooner than that lost what its previous process held, except what
that process finished and died before reporting: the scheduler asks the new process
(``node.probe``) and reports the volumes it holds ``available``, as their node would
have (a driver names a volume only once it is whole), and the rest ``error``.

Disabled backends (Cinder's service disable): an admin takes a backend out of
placement, with a reason, until enabled again; its volumes stay where they are and
everything else on it goes on. The scheduler keeps the set in its own file,
``scheduler.db`` (table ``disabled_backends``), so that it outlives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import zmq

from cinderblock.actors.runtime.actor import NODE_CONNECT_GRACE, Actor, AfterCommit, Link, Request
from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.actors.runtime.database import Database
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.actors.runtime.fence import fence_creates
from cinderblock.actors.runtime.redial import same_process
from cinderblock.actors.scheduler.capacity import BackendStats, stats_from_message
from cinderblock.actors.scheduler.capacity_index import CapacityIndex
from cinderblock.actors.scheduler.create_flow import ScheduleContext, volume_create_scheduler
from cinderblock.actors.scheduler.liveness import Held, Liveness, NodeReport
from cinderblock.protocol.messages.limits import check_range
from cinderblock.protocol.messages.pages import page_within
from cinderblock.protocol.messages.reconcile import PROBE_MAX_IDS, NodeProbe, NodeProbeReply
from cinderblock.protocol.messages.scheduling import (
    BACKENDS_PAGE_BYTES,
    BACKENDS_PAGE_MAX,
    Backend,
    BackendEnable,
    BackendList,
    BackendListRequest,
    BackendStatsMsg,
    NodeCreateVolume,
)
from cinderblock.protocol.messages.volumes import Empty, VolumeUpdate
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, MalformedMessage, pack, unpack
from cinderblock.protocol.wire.errors import CinderblockError, Forbidden, InvalidInput, NotFound
from cinderblock.protocol.wire.schema import SchemaError, dump, parse
from cinderblock.protocol.wire.transport import Channel, tune

log = logging.getLogger(__name__)
SCHEDULE_BEFORE_SEND = declare("scheduler.schedule_create.before_send")
SCHEDULE_AFTER_SEND = declare("scheduler.schedule_create.after_send")
GATEWAY = b"gateway"
WARM_UP_HEARTBEATS = 2  # how long a new scheduler waits for the nodes' first stats
SCHEMA = """
CREATE TABLE IF NOT EXISTS disabled_backends (
    backend TEXT PRIMARY KEY, reason TEXT, since REAL NOT NULL);
"""
MAX_REASON = 255  # Cinder's disabled_reason column
PROBE_TIMEOUT_S = 5.0  # a restarted node's answer on what its previous process finished


class Scheduler(Actor):
    name = "scheduler"

    def __init__(self, cfg: ClusterConfig) -> None:
        super().__init__(cfg.events_in)
        self.cfg = cfg
        self.heartbeat_s = cfg.heartbeat_s
        self.index = CapacityIndex(stale_after_s=cfg.stale_after_s)
        self.connect_grace_s = NODE_CONNECT_GRACE  # a create waits this long for a node
        self.flow = volume_create_scheduler(self)
        self.router: Link
        self.stats_received = 0
        self.liveness: Liveness[Context] = Liveness(self.index.epoch, cfg.stale_after_s)
        # A scheduler (re)started knows no backend until their stats come in: creates
        # and backend lists that arrive before every configured node has reported (or
        # the warm-up is over) wait for that instead of failing with "no valid host"
        # or leaving backends out.
        self._expected = frozenset(n.backend_id for n in cfg.nodes)
        self._reported: set[str] = set()
        self._all_reported = asyncio.Event()
        self._warm_until = 0.0
        # The nodes that said hello: reached where their messages come from. Stats
        # come on another connection and may come first; until the hello, the node
        # could not be sent a create, so they are not taken.
        self._nodes = frozenset(n.host for n in cfg.nodes)
        self._greeted: set[str] = set()
        self._hello_from: dict[str, bytes] = {}  # node -> the routing id of its last hello
        self._incarnation: dict[str, str] = {}  # node -> the process its last stats taken are
        self._gone: dict[str, str] = {}  # node -> its process that another one's hello ended
        self.stats_of_gone_process = 0
        self._backend_of = {n.host: n.backend_id for n in cfg.nodes}
        self._host_of = {n.backend_id: n.host for n in cfg.nodes}
        self.stats_before_hello = 0
        self.db = Database(cfg.path("scheduler.db"), SCHEMA, cfg.synchronous,
                           reread=self._reread,
                           check_before_start_bytes=cfg.check_before_start_bytes,
                           check_every_s=cfg.check_every_s)
        self._disabled: dict[str, str | None] = {}  # backend -> why (disabled_backends)

    def handlers(self) -> dict[str, Any]:
        return {
            "schedule.create": self.on_schedule_create,
            "backend.list": self.on_backend_list,
            "backend.set_enabled": self.on_set_enabled,
            "ping": self.on_ping,
            "node.hello": self.on_node_hello,
        }

    def database(self) -> Database:
        return self.db

    def _reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: the disabled backends (at start, and after a failed
        write); what it returns makes them the index's."""
        rows = conn.execute("SELECT backend, reason FROM disabled_backends").fetchall()
        return partial(self._install_disabled, {str(b): r for b, r in rows})

    def _install_disabled(self, disabled: dict[str, str | None]) -> None:
        for backend in set(self._disabled) - set(disabled):
            self.index.enable(backend)
        for backend in disabled:
            self.index.disable(backend)
        self._disabled = disabled

    async def on_start(self) -> None:
        await self.db.open()
        (await self.db.run(self._reread))()
        self.spawn(self.db.flusher())
        # at least as long as a live node may stay silent before it counts as down
        warm_up = max(WARM_UP_HEARTBEATS * self.cfg.heartbeat_s, self.cfg.stale_after_s)
        self._warm_until = time.monotonic() + warm_up + 0.5
        sub = self.zctx.socket(zmq.SUB)
        tune(sub)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.serve(sub, "stats")
        sub.bind(self.cfg.stats)
        if self.trust is not None:
            self._stats = Channel(sub, None, self._on_node_stats)
        else:
            self._stats = Channel(sub, self._on_stats)
        self.router = self.bind(self.cfg.scheduler, domain="scheduler")
        self.every(self.cfg.stale_after_s / 10, self._sweep)

    async def on_stop(self) -> None:
        self._stats.close()

    def statistics(self) -> dict[str, Any]:
        s = self.index.statistics()
        return {**super().statistics(), "stats_received": self.stats_received,
                "stats_before_hello": self.stats_before_hello,
                "stats_of_gone_process": self.stats_of_gone_process,
                "backends": s.backends, "selections": s.selections,
                "no_valid_backend": s.no_valid_backend, "pending": s.pending,
                "creates_held": len(self.liveness), "went_down": self.liveness.went_down,
                "came_back": self.liveness.came_back}

    def _on_node_stats(self, node: str, frames: list[bytes]) -> None:
        """Stats from an authenticated node: taken only for the node's own host."""
        msg = self._parse_stats(frames)
        if msg is None or msg.host != node:
            self.refused += 1
            return
        self._take_stats(msg)

    def _on_stats(self, frames: list[bytes]) -> None:
        msg = self._parse_stats(frames)
        if msg is not None:
            self._take_stats(msg)

    def _parse_stats(self, frames: list[bytes]) -> BackendStatsMsg | None:
        try:
            msg: BackendStatsMsg = parse(BackendStatsMsg, unpack(frames[-1]), strict=False)
        except (MalformedMessage, SchemaError) as exc:
            log.warning("ignoring malformed stats: %s", exc)
            return None
        return msg

    def on_ping(self, req: Request) -> Empty:
        """A ping; from a node, its hello (at start and every heartbeat). With keys a
        routing id is one process's (its name, its process's token and a count), and
        the node is reached at the one its hellos come from: a hello from another
        process's is another process of the node, the first it sent, and the creates
        cast to the node before it went to the process that is gone
        (``Liveness.restarted``). One from the same process on a connection it dialled
        again (``actors.runtime.redial``) is not: the creates cast before, which the old
        connection may have lost, are fenced there and settled (``_fence_held``)."""
        if req.peer not in self._nodes:
            return Empty()
        if not self.router.is_route(req.peer, req.sender):
            return Empty()  # not the node's own key
        self._greeted.add(req.peer)
        previous = self._hello_from.get(req.peer)
        self._hello_from[req.peer] = req.sender
        if self.trust is not None and previous is not None and previous != req.sender:
            backend = self._backend_of[req.peer]
            if same_process(previous, req.sender):
                held = self.liveness.holding(backend)
                log.info("storage node %s speaks from a connection it dialled again: %d "
                         "create(s) cast to it before are looked at", req.peer, len(held))
                if held:
                    self.spawn(self._fence_held(held, backend))
                return Empty()
            if req.peer in self._incarnation:
                self._gone[req.peer] = self._incarnation.pop(req.peer)
            lost = self.liveness.restarted(backend)
            log.info("storage node %s was restarted: %d create(s) cast to its "
                     "previous process may be lost", req.peer, len(lost))
            self._settle_lost(lost, backend)
        return Empty()

    def on_node_hello(self, req: Request) -> Empty:
        """A node process's first report, a call on the connection its hellos come from,
        right behind its first hello: its figures are taken the moment that hello has
        handed back what its previous process held. Its published stats come on the
        other connection, which is still connecting then (what is published before it
        is lost): until they came, the index placed with the previous process's last
        figures, which may count those lost creates as its work in flight. Stats of the
        same process already taken (the scheduler was frozen while both waited) are
        newer than these, which are then dropped. A node reports for its own host."""
        msg: BackendStatsMsg = req.body
        if msg.host != req.peer:
            raise Forbidden(f"{req.peer} reported for {msg.host!r}: a node reports for "
                            "its own host only")
        self.on_ping(req)
        if self._incarnation.get(msg.host) != msg.incarnation:
            self._take_stats(msg)
        return Empty()

    def _take_stats(self, msg: BackendStatsMsg) -> None:
        if msg.host not in self._greeted:
            self.stats_before_hello += 1
            return
        if msg.incarnation == self._gone.get(msg.host):  # overtaken by its successor's hello
            self.stats_of_gone_process += 1
            return
        self.stats_received += 1
        self._incarnation[msg.host] = msg.incarnation
        now = time.monotonic()
        self.index.update(stats_from_message(msg), now)
        if not self._all_reported.is_set():
            self._reported.add(msg.backend)
            if self._expected <= self._reported:
                self._all_reported.set()
        self.events.emit("backend", **dump(msg))
        report = NodeReport(msg.sched_epoch, msg.sched_seq, msg.oldest_seq, msg.incarnation)
        seen = self.liveness.seen(msg.backend, now, report)
        if seen.back:
            log.info("backend %s is up again", msg.backend)
            self.events.emit("liveness", subject=msg.backend, state="up")
        if seen.lost:
            self._settle_lost(seen.lost, msg.backend)

    def _sweep(self) -> None:
        """Mark the nodes that went silent down; fail the creates they may still hold."""
        for backend, held in self.liveness.sweep(time.monotonic()).down.items():
            silent = self.cfg.stale_after_s
            log.warning("backend %s is down: no stats for %gs; failing %d create(s) it held",
                        backend, silent, len(held))
            self.events.emit("liveness", subject=backend, state="down",
                             volume_ids=[h.volume_id for h in held])
            self.index.release(backend, [h.seq for h in held])  # its stats count the made
            self._fail(held, backend,
                       f"storage node {backend} stopped reporting (no stats for "
                       f"{silent:g}s) while it was creating this volume: the create "
                       "is taken as lost")

    def _settle_lost(self, held: list[Held[Context]], backend: str) -> None:
        """What a restarted node's previous process held: given back to the capacity
        index at once (what the new process made, its own figures count; the rest is
        nobody's), then settled."""
        if held:
            self.index.release(backend, [h.seq for h in held])
            self.spawn(self._settle(held, backend))

    async def _settle(self, held: list[Held[Context]], backend: str) -> None:
        made, lost = await settle_lost(held, partial(self._held_whole, backend), backend)
        for h in made:
            log.info("volume %s was made on %s before its node was restarted", h.volume_id,
                     backend)
        self._report(made, lost, backend, _restarted(backend))

    def _report(self, made: list[Held[Context]], lost: list[Held[Context]], backend: str,
                reason: str) -> None:
        """Settled creates told to the gateway: ``made`` available on ``backend``,
        ``lost`` failed with ``reason``."""
        for h in made:
            self._cast_update(VolumeUpdate(h.volume_id, VolumeStatus.AVAILABLE, backend, None),
                              h.note)
        self._fail(lost, backend, reason)

    async def _fence_held(self, held: list[Held[Context]], backend: str) -> None:
        """The creates cast to a node before it dialled its connection again: those
        the old connection lost never reached it. The node fences each it neither works
        on nor holds (a cast still in its line is dropped there, so the verdict holds):
        those fail now, rather than at the reconciler's ``reconcile_after_s``; those it
        holds are reported made; those it works on stay held, for its stats to settle.
        No answer: all stay held (its stats, or its going down, settle them)."""
        try:
            reply = await fence_creates(self.router, self._host_of[backend],
                                        secrets.token_hex(16), [h.volume_id for h in held],
                                        timeout=PROBE_TIMEOUT_S)
        except CinderblockError as exc:
            log.warning("storage node of %s did not say which of %d create(s) it knows (%s): "
                        "they stay held", backend, len(held), exc.message)
            return
        busy, whole = set(reply.busy), set(reply.volumes)
        settled = self.liveness.settled(backend, [h for h in held if h.volume_id not in busy])
        self.index.release(backend, [h.seq for h in settled])
        lost = [h for h in settled if h.volume_id not in whole]
        if lost:
            log.warning("%d create(s) cast to %s were lost with its old connection",
                        len(lost), backend)
        self._report([h for h in settled if h.volume_id in whole], lost, backend,
                     f"the create was lost with storage node {backend}'s connection, which "
                     "it dialled again")

    async def _held_whole(self, backend: str, volume_ids: list[str]) -> set[str]:
        whole: set[str] = set()
        to = self._host_of[backend].encode()
        for at in range(0, len(volume_ids), PROBE_MAX_IDS):
            raw = await self.router.call(
                "node.probe", NodeProbe(tuple(volume_ids[at:at + PROBE_MAX_IDS])),
                to=to, timeout=PROBE_TIMEOUT_S)
            reply = parse(NodeProbeReply, raw, strict=False)
            whole |= set(reply.volumes) - set(reply.busy)
        return whole

    def _cast_update(self, update: VolumeUpdate, ctx: Context) -> None:
        try:
            self.router.cast("volume.update", update, ctx, to=GATEWAY)
        except CinderblockError as exc:
            log.warning("could not report volume %s %s: %s", update.volume_id,
                        update.status.value, exc.message)

    def _fail(self, held: list[Held[Context]], backend: str, reason: str) -> None:
        """The gateway applies this to volumes still ``creating`` only: one that the
        node finished meanwhile keeps its status. The backend the create was cast to
        is recorded as the volume's host: the node may have made the file before it
        died, and the volume's delete then removes it there (deletes are idempotent)."""
        for h in held:
            self._cast_update(VolumeUpdate(h.volume_id, VolumeStatus.ERROR, backend, reason),
                              h.note)

    def cast_to_node(self, host: str, body: NodeCreateVolume, ctx: Context) -> None:
        SCHEDULE_BEFORE_SEND()
        self.router.cast("node.create_volume", body, ctx, to=host.encode())
        SCHEDULE_AFTER_SEND()
        self.liveness.placed(body.backend, body.sched_seq, body.request.volume_id, ctx,
                             time.monotonic())

    async def _warmed_up(self) -> None:
        wait = self._warm_until - time.monotonic()
        if wait > 0 and not self._all_reported.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._all_reported.wait()

    async def on_schedule_create(self, req: Request) -> None:
        await self._warmed_up()
        c = ScheduleContext(req.body, req.ctx)
        try:
            await self.run_flow(self.flow, c, req.body.volume_id, req.ctx)
        except CinderblockError as exc:
            update = VolumeUpdate(req.body.volume_id, VolumeStatus.ERROR, None, exc.message)
            self.router.cast("volume.update", update, req.ctx, to=GATEWAY)

    async def on_backend_list(self, req: Request) -> BackendList:
        """What the index knows of the backends, a page by name (``BackendListRequest``:
        a host may report thousands, more than one frame holds); a scheduler (re)started
        waits, as a create does, until every configured node has reported or the
        warm-up is over: a list taken sooner would lack backends that are up (a
        migration or a retype to one of them refused, "no such backend has reported")."""
        body: BackendListRequest = req.body
        check_range("limit", body.limit, 1, BACKENDS_PAGE_MAX)
        await self._warmed_up()
        backends = [_backend(v.stats, v.age_s, v.up, v.stats.backend in self._disabled,
                             self._disabled.get(v.stats.backend))
                    for v in self.index.backends(time.monotonic())
                    if body.marker is None or v.stats.backend > body.marker]
        page, next_marker = page_within(backends, lambda b: b.backend, body.marker, body.limit,
                                        lambda b: len(pack(dump(b))), BACKENDS_PAGE_BYTES)
        return BackendList(tuple(page), next_marker)

    def on_set_enabled(self, req: Request) -> AfterCommit:
        """An admin's (the gateway checked): the backend out of placement (its reason
        kept) or back in, durable before the answer."""
        body: BackendEnable = req.body
        if body.backend not in self._expected:
            raise NotFound(f"Service {body.backend} could not be found: the backends are "
                           f"{', '.join(sorted(self._expected))}", {"backend": body.backend})
        reason = body.reason.strip() if body.reason else None
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidInput(f"disabled_reason has {len(reason)} characters, more than "
                               f"{MAX_REASON}", {"field": "disabled_reason"})
        if body.enabled:
            self._disabled.pop(body.backend, None)
            self.index.enable(body.backend)
            written = self.db.write("DELETE FROM disabled_backends WHERE backend=?",
                                    (body.backend,))
        else:
            self._disabled[body.backend] = reason
            self.index.disable(body.backend)
            written = self.db.write("INSERT OR REPLACE INTO disabled_backends VALUES (?, ?, ?)",
                                    (body.backend, reason, time.time()))
        log.warning("backend %s %s by %s%s", body.backend,
                    "enabled" if body.enabled else "disabled", req.ctx.user_id,
                    f": {reason}" if reason else "")
        self.events.emit("liveness", subject=body.backend,
                         state="enabled" if body.enabled else "disabled")
        return AfterCommit(written, BackendEnable(body.backend, body.enabled, reason))


async def settle_lost(held: list[Held[Context]],
                      held_whole: Callable[[list[str]], Awaitable[set[str]]], backend: str,
                      ) -> tuple[list[Held[Context]], list[Held[Context]]]:
    """The creates a restarted node's previous process held, as (made, lost): made are
    those the new process holds (``held_whole``: the node's answer; a driver names a
    volume only once it is whole), finished before their report went; lost, the rest.
    No answer: all lost. Never raises (it runs as the actor's task)."""
    try:
        whole = await held_whole([h.volume_id for h in held])
    except Exception as exc:
        log.warning("storage node of %s did not say which of %d create(s) it holds (%s): "
                    "they are taken as lost", backend, len(held), exc)
        whole = set()
    return ([h for h in held if h.volume_id in whole],
            [h for h in held if h.volume_id not in whole])


def _restarted(backend: str) -> str:
    return (f"storage node {backend} was restarted while it was creating this volume: "
            "the create was lost")


def _backend(s: BackendStats, age_s: float, up: bool, disabled: bool = False,
             reason: str | None = None) -> Backend:
    return Backend(
        backend=s.backend, host=s.host, availability_zone=s.availability_zone,
        total_capacity_gb=s.total_capacity_gb, free_capacity_gb=s.free_capacity_gb,
        allocated_capacity_gb=s.allocated_capacity_gb,
        provisioned_capacity_gb=s.provisioned_capacity_gb,
        reserved_percentage=s.reserved_percentage,
        thin_provisioning_support=s.thin_provisioning_support,
        max_over_subscription_ratio=s.max_over_subscription_ratio,
        capabilities=dict(s.capabilities), age_s=round(age_s, 3), up=up, volumes=s.volumes,
        disabled=disabled, disabled_reason=reason,
    )
