"""The gateway's reconciler: finds stuck records, probes the nodes, applies
``reconcile_rules.decide`` (an interrupted extend's reservation is rolled back in
the same transaction as its move to ``error_extending``: the quota journal);
rolls back the reservation of an extend whose volume was moved on otherwise (an
admin's reset-state); mends attachments left attaching or detaching. The decisions
and the table of what happens to what are in ``reconcile_rules``; this is the
I/O around them. Each round that
finds stuck records publishes a ``reconcile`` event (``stuck``: their ids,
``acted``: the ones it moved on), so a watcher can tell a record was looked at
and left alone. The clock is injectable (``clock``, default ``time.time``)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from cinderblock.actors.gateway.attachment_flows import AttachServices
from cinderblock.actors.gateway.attachment_store import AttachmentRecord, cut_short
from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.lifecycle import GatewayLifecycle
from cinderblock.actors.gateway.lost_casts import RESENT_GRACE_S
from cinderblock.actors.gateway.reconcile_rules import (
    SAFE_AT_ONCE,
    Action,
    Answer,
    Do,
    ProbeTurns,
    Stuck,
    decide,
    extend_failed,
    nodes_to_ask,
)
from cinderblock.actors.gateway.revert import end_revert, restoring_snapshot
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.gateway.snapshot_store import IN_TRANSITION as SNAPSHOTS_IN_TRANSITION
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import IN_TRANSITION as VOLUMES_IN_TRANSITION
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.actor import Request
from cinderblock.actors.runtime.config import host_of
from cinderblock.protocol.messages.attachments import (
    NodeExportList,
    NodeExportsRequest,
    NodeUnexport,
)
from cinderblock.protocol.messages.lifecycle import (
    NodeDeleteSnapshot,
    NodeDeleteVolume,
    NodeExtendVolume,
    NodeRevertVolume,
)
from cinderblock.protocol.messages.reconcile import (
    PROBE_MAX_IDS,
    CleanupAction,
    NodeProbe,
    NodeProbeReply,
    WorkCleaned,
    WorkCleanup,
)
from cinderblock.protocol.states import AttachmentStatus as A
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.states import check_volume_move
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput
from cinderblock.protocol.wire.schema import parse

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 5.0
VOLUME_STUCK = frozenset(VOLUMES_IN_TRANSITION)  # creating, deleting, unmanaging, ...
SNAPSHOT_STUCK = frozenset(SNAPSHOTS_IN_TRANSITION)  # creating, deleting, unmanaging
# a backup mender: (stuck since, which backups a node works on) -> the backups acted on
MendBackups = Callable[[float, Callable[[str, list[str]], Awaitable[set[str]]]],
                       Awaitable[list[str]]]
# a migration mender: (stuck since, the probe of one volume on one node) -> volumes acted on
MendMigrations = Callable[[float, Callable[[str, str], Awaitable[tuple[bool, bool] | None]]],
                          Awaitable[list[str]]]
MendGroups = Callable[[float], Awaitable[list[str]]]  # (stuck since) -> the groups acted on
# (the volume creates left, the snapshot creates left) -> those sent again
SendAgain = Callable[[list[str], list[str]], Awaitable[list[str]]]
LOOK_AT = PROBE_MAX_IDS * 4  # rows the file names, of which memory may have moved some on
# what a previous process left: looked at this often after the start (in heartbeats),
# this many times at most (until every node asked has answered)
PREVIOUS_EVERY_HEARTBEATS = 2
PREVIOUS_TRIES = 10


class Reconciler:
    def __init__(self, gw: GatewayServices, lifecycle: GatewayLifecycle,
                 attachments: AttachServices, clock: Callable[[], float] = time.time,
                 mend_backups: MendBackups | None = None,
                 mend_migrations: MendMigrations | None = None,
                 mend_groups: MendGroups | None = None,
                 volume_made: Callable[[VolumeRecord], None] | None = None,
                 resent_at: Callable[[str], float | None] | None = None,
                 send_again: SendAgain | None = None) -> None:
        self.gw = gw
        self.resent_at = resent_at  # when a create was sent again (lost_casts.py)
        self.send_again = send_again  # ... and what sends again those a dead process left
        self.volume_made = volume_made
        self.mend_backups = mend_backups
        self.mend_migrations = mend_migrations
        self.mend_groups = mend_groups
        self.clock = clock
        self.lifecycle = lifecycle
        self.attachments = attachments
        self.after_s = gw.cfg.reconcile_after_s
        self.nodes = [n.host for n in gw.cfg.nodes]
        self.started_at = clock()  # what is older was left by the previous process
        self.previous_tries = 0
        self.turns = ProbeTurns()  # which stuck records a probe asks about first

    def start(self) -> None:
        if self.gw.cfg.reconcile_every_s > 0:
            self.gw.every(self.gw.cfg.reconcile_every_s, self.tick)
            self.gw.spawn(self._finish_previous_soon())

    async def _finish_previous_soon(self) -> None:
        every = self.gw.cfg.heartbeat_s * PREVIOUS_EVERY_HEARTBEATS
        while self.previous_tries < PREVIOUS_TRIES:
            await asyncio.sleep(every)
            try:
                await self.finish_previous()
            except Exception:  # the rounds will look at them
                log.exception("looking at what the previous process left failed")
                return

    async def finish_previous(self) -> list[Action]:
        """What the previous gateway process left in a transitional status, mended
        within seconds of the start where the verdict holds at any age
        (``SAFE_AT_ONCE``): a create its node finished (holds whole, works on no more)
        becomes ``available``, its report having died with that process or come before
        this one listened; a delete, an unmanage, an extend or a revert is sent to its
        node again; a create no node holds or works on, which that process may have died
        before it cast, is fenced and sent again (``send_again``: ``lost_casts.py``, which
        sends none twice). The rest wait for the rounds. Tried until every node asked has
        answered, ``PREVIOUS_TRIES`` times at most; then it does nothing."""
        if self.previous_tries >= PREVIOUS_TRIES:
            return []
        self.previous_tries += 1
        left = self.find(self.started_at)
        if not left:
            self.previous_tries = PREVIOUS_TRIES
            return []
        answers = await self.probe(left)
        if all(a is not None for a in answers.values()):
            self.previous_tries = PREVIOUS_TRIES
        decided = decide(left, answers)
        finished = [a for a in decided if a.do in SAFE_AT_ONCE]
        for action in finished:
            await self.apply(action)
        if finished:
            self._told(left, finished)
        unsent = [a.stuck for a in decided if a.do is Do.ERROR]
        if unsent and self.send_again is not None:
            await self.send_again([u.id for u in unsent if u.kind == "volume"],
                                  [u.id for u in unsent if u.kind == "snapshot"])
        return finished

    async def tick(self) -> None:
        try:
            await self.run_once()
        except Exception:  # never let one bad round end the timer
            log.exception("reconcile round failed")

    async def run_once(self) -> list[Action]:
        before = self.clock() - self.after_s
        stuck = self.find(before)
        actions = decide(stuck, await self.probe(stuck)) if stuck else []
        applied = []
        for action in actions:
            if not self._on_its_way(action):  # looked at here: a resend comes any time
                await self.apply(action)
                applied.append(action)
        actions = applied
        if stuck:
            self._told(stuck, actions)
        await self.end_orphan_extends()
        await self.mend_attachments(before)
        if self.mend_backups is not None:
            await self.mend_backups(before, self.busy_backups)
        if self.mend_migrations is not None:
            await self.mend_migrations(before, self.probe_volume)
        if self.mend_groups is not None:
            await self.mend_groups(before)
        await self.sweep_exports()
        return actions

    def _on_its_way(self, action: Action) -> bool:
        """A create judged lost that the gateway sent again lately (its scheduler died):
        it may be at the new scheduler, which no probe sees (``lost_casts.py``)."""
        if action.do is not Do.ERROR or self.resent_at is None:
            return False
        resent = self.resent_at(action.stuck.id)
        return resent is not None and \
            resent > self.clock() - max(self.after_s, RESENT_GRACE_S)

    def _told(self, stuck: list[Stuck], actions: list[Action]) -> None:
        """A ``reconcile`` event: the records looked at, those moved on, and what was
        done to each (``actions``: [kind, what], for the exporter's counts)."""
        self.gw.events.emit("reconcile", stuck=[s.id for s in stuck],
                            acted=[a.stuck.id for a in actions],
                            actions=[[a.stuck.kind, a.do.value] for a in actions])

    async def sweep_exports(self) -> list[tuple[str, str]]:
        """Each node's exports whose attachment the gateway no longer has are closed:
        one a force-detach forgot while its node was down (the node serves its table
        again when it starts), or any other drift. An attachment's record is written
        before its export is asked for and removed only after its export is closed, so
        an export without one is never one being made. Returns (node, attachment) closed."""
        per_node = await asyncio.gather(*(self._sweep_node(n) for n in self.nodes))
        closed = [(node, att) for node, atts in zip(self.nodes, per_node, strict=True)
                  for att in atts]
        if closed:
            self.gw.events.emit("reconcile", stuck=[], acted=[], exports_closed=[
                a for _, a in closed])
        return closed

    async def sweep_node_exports(self, node: str) -> list[str]:
        """``sweep_exports`` for one node, at once: the node has just connected (it
        started again, serving its table of exports from its start, or this gateway
        did), so one a force-detach forgot while it was down is closed now rather than
        at the next round. Returns the attachments whose export was closed."""
        closed = await self._sweep_node(node)
        if closed:
            self.gw.events.emit("reconcile", stuck=[], acted=[], exports_closed=closed)
        return closed

    async def probe_volume(self, node: str, volume_id: str) -> tuple[bool, bool] | None:
        """Whether ``node`` is working on the volume now, and whether it holds it; None
        if it does not answer."""
        answer = await self._ask(node, [volume_id], [])
        if answer is None:
            return None
        return volume_id in answer.busy, volume_id in answer.volumes

    async def busy_backups(self, backend: str, backup_ids: list[str]) -> set[str]:
        """Which of these backups the node of ``backend`` is working on now."""
        raw = await self.gw.router.call("node.probe", NodeProbe(backup_ids=tuple(backup_ids)),
                                        _context("admin"), to=host_of(backend).encode(),
                                        timeout=PROBE_TIMEOUT_S)
        return set(parse(NodeProbeReply, raw, strict=False).busy)

    async def end_orphan_extends(self) -> None:
        """An extend reservation whose volume no longer extends (reset by an admin, or
        gone) is rolled back: owed to the quota actor through the journal."""
        store = self.gw.store
        for volume_id, reservation_id in list(store.extends.items()):
            rec = store.volumes.get(volume_id)
            if rec is not None and rec.status is V.EXTENDING:
                continue  # still running (or stuck: decided above)
            log.warning("reconcile: extend reservation %s of volume %s rolled back",
                        reservation_id, volume_id)
            await store.end_extend(rec, volume_id, "rollback")

    async def mend_attachments(self, before: float) -> None:
        """Attachments whose move has been cut short since ``before``: detaching, or
        attaching with no connection saved (those the file's partial index names, not a
        scan of every attachment); one attaching with its connection waits for its host's
        ``complete`` as long as that takes, as Cinder's does."""
        for att in self.attachments.attachments.in_transition_since(before, LOOK_AT):
            if cut_short(att) and (att.updated_at or att.created_at) < before:
                vol = self.gw.store.volumes.get(att.volume_id)
                if vol is not None:
                    await self._mend_attachment(att, vol)

    async def _mend_attachment(self, att: AttachmentRecord, vol: VolumeRecord) -> None:
        found, since = att.status, att.updated_at
        try:
            await self.attachments.unexport(vol, att, _context(att.project_id))
            closed: CinderblockError | None = None
        except CinderblockError as exc:
            closed = exc
        if att.status is not found or att.updated_at != since:
            return  # a request moved it meanwhile: not stuck
        if found is A.ATTACHING:
            if closed is not None:
                log.info("reconcile: attachment %s stays attaching: %s", att.id, closed.message)
                return
            att.move(A.RESERVED)
            att.connector, att.connection_info = {}, {}
            why = "its attach was interrupted; the export is closed, it is reserved again"
        elif closed is None:
            att.move(A.DETACHED)
            why = "its detach was interrupted; the export is closed and the detach finished"
        else:
            att.move(A.ERROR_DETACHING)
            why = f"its detach was interrupted and the export could not be closed: {closed}"
        log.warning("reconcile: attachment %s of volume %s stuck %s: %s", att.id, vol.id,
                    found, why)
        if att.status is A.DETACHED:
            await self.attachments.attachments.remove(att)
        else:
            await self.attachments.attachments.save(att)
        if self.attachments.follow(vol):
            await self.attachments.save_volume(vol)

    async def _sweep_node(self, node: str) -> list[str]:
        closed: list[str] = []
        after: str | None = None
        while True:
            try:
                raw = await self.gw.router.call("node.exports", NodeExportsRequest(after),
                                                _context("admin"), to=node.encode(),
                                                timeout=PROBE_TIMEOUT_S)
            except CinderblockError as exc:
                log.info("reconcile: node %s did not list its exports (%s)", node, exc)
                return closed
            page = parse(NodeExportList, raw, strict=False)
            for e in page.exports:
                if self.attachments.attachments.get(e.attachment_id) is None \
                        and not self.gw.store.migrations.exporting(e.attachment_id):
                    log.warning("reconcile: %s serves attachment %s of volume %s, which is "
                                "gone: its export is closed", node, e.attachment_id, e.volume_id)
                    self.gw.router.cast("node.unexport", NodeUnexport(e.volume_id, e.attachment_id),
                                        _context("admin"), to=node.encode())
                    closed.append(e.attachment_id)
            if page.next_after is None:
                return closed
            after = page.next_after

    def find(self, before: float) -> list[Stuck]:
        """Records in a transitional status that have not changed since ``before``: the
        file's index names the oldest as candidates, memory judges them, and a probe's
        share of them is taken in turns (``ProbeTurns``: least lately asked about first,
        then oldest)."""
        store = self.gw.store
        volumes = [self._stuck_volume(r) for r in store.in_transition_since(before, LOOK_AT)
                   if r.status in VOLUME_STUCK and (r.updated_at or r.created_at) < before]
        snapshots = [_stuck_snapshot(r) for r in store.snapshots.in_transition_since(
            before, LOOK_AT) if r.status in SNAPSHOT_STUCK and (r.updated_at or r.created_at)
            < before]
        return self.turns.pick(volumes, snapshots, PROBE_MAX_IDS)

    def _stuck_volume(self, r: VolumeRecord) -> Stuck:
        extend_to = self.gw.store.extend_sizes.get(r.id, 0) if r.status is V.EXTENDING else 0
        return Stuck("volume", r.id, r.status, _node(r.host), r.updated_at or r.created_at,
                     extend_to)

    async def on_work_cleanup(self, req: Request) -> WorkCleaned:
        """``work.cleanup`` (an admin's, Cinder's ``workers/cleanup``): the verdicts that
        hold at any age (``SAFE_AT_ONCE``) applied now to the records of the nodes named
        (and, with ``unplaced``, of none yet), as a gateway's start applies them to what
        its previous process left; the rest wait for the rounds, which alone may judge a
        create lost. Nothing is decided about a record whose node does not answer."""
        body: WorkCleanup = req.body
        require_admin(req.ctx, "clean up what a crash left")
        unknown = sorted(set(body.nodes) - set(self.nodes))
        if unknown:
            raise InvalidInput(f"no storage node is named {', '.join(unknown)} (the nodes "
                               f"are {', '.join(self.nodes)})", {"nodes": unknown})
        if body.resource_type not in (None, "volume", "snapshot"):
            raise InvalidInput(f"resource_type must be volume or snapshot, not "
                               f"{body.resource_type!r}", {"resource_type": body.resource_type})
        if body.resource_id is None:
            found = self.find(self.clock() + 1.0)  # each one there now, however young
        else:  # refused unless it is in a transitional status
            found = [self._stuck_one(body.resource_id, body.resource_type)]
        nodes = frozenset(self.nodes if body.every_node else body.nodes)
        flowing = self._volumes_in_flows()
        stuck = [s for s in found if (s.node in nodes if s.node else body.unplaced)
                 and self._volume_of(s) not in flowing]
        mended, answers = await self._mend_at_once(stuck)
        return WorkCleaned(len(stuck), tuple(
            CleanupAction(a.stuck.kind, a.stuck.id, a.stuck.status.value, a.do.value, a.node,
                          a.reason) for a in mended),
            tuple(sorted(n for n, answer in answers.items() if answer is None)),
            found[0].node if body.resource_id is not None else None)

    async def mend_node(self, node: str) -> list[Action]:
        """``node``, judged silent, is heard from again: it was frozen or cut off, so
        what it was sent meanwhile may have been lost with its connection, and what it
        reported with it. Its records in a transitional status, however young, get the
        verdicts that hold at any age (``SAFE_AT_ONCE``) now, as ``work.cleanup`` naming
        the node would give them: a create it holds whole becomes ``available``, a
        delete, an unmanage, an extend or a revert is sent to it again (each is
        idempotent there). A volume an API flow of this process is running on is left
        alone, and so is the rest: the rounds alone judge a create lost. Returns what
        was done."""
        flowing = self._volumes_in_flows()
        stuck = [s for s in self.find(self.clock() + 1.0)
                 if s.node == node and self._volume_of(s) not in flowing]
        mended, _ = await self._mend_at_once(stuck)
        return mended

    async def _mend_at_once(self, stuck: list[Stuck]
                            ) -> tuple[list[Action], dict[str, Answer | None]]:
        """The nodes asked about ``stuck``, and the verdicts that hold at any age
        applied; returns those, and each node's answer (None: it did not answer)."""
        if not stuck:
            return [], {}
        answers = await self.probe(stuck)
        mended = [a for a in decide(stuck, answers) if a.do in SAFE_AT_ONCE]
        for action in mended:
            await self.apply(action)
        self._told(stuck, mended)
        return mended, answers

    def _volumes_in_flows(self) -> frozenset[str]:
        """The volumes an API flow of this process is running on now (a snapshot's flow
        runs under its volume's id). Such a flow may still undo its mark (a delete whose
        cast failed puts the volume back as it was), so what it marked is not this
        cleanup's to send again. (The rounds look only at records untouched for
        ``reconcile_after_s``, far longer than a flow runs; a gateway's start only at
        what its previous process left.)"""
        return frozenset(t.volume_id for t in self.gw.flow_history.running)

    def _volume_of(self, s: Stuck) -> str:
        if s.kind == "volume":
            return s.id
        snap = self.gw.store.snapshots.get(s.id)
        return snap.volume_id if snap is not None else s.id

    def _stuck_one(self, record_id: str, kind: str | None) -> Stuck:
        """One volume's or snapshot's record, when it is in a transitional status."""
        if kind in (None, "volume"):
            vol = self.gw.store.volumes.get(record_id)
            if vol is not None and vol.status in VOLUME_STUCK:
                return self._stuck_volume(vol)
        if kind in (None, "snapshot"):
            snap = self.gw.store.snapshots.get(record_id)
            if snap is not None and snap.status in SNAPSHOT_STUCK:
                return _stuck_snapshot(snap)
        raise InvalidInput(f"There is no resource with UUID {record_id} pending cleanup "
                           "(no volume or snapshot of that id is in a transitional status)",
                           {"resource_id": record_id})

    async def probe(self, stuck: list[Stuck]) -> dict[str, Answer | None]:
        self.turns.asked(stuck)
        asks: dict[str, tuple[list[str], list[str]]] = {n: ([], []) for n in self.nodes}
        for s in stuck:
            for node in nodes_to_ask(s, self.nodes):
                if node in asks:
                    asks[node][0 if s.kind == "volume" else 1].append(s.id)
        wanted = {n: ids for n, ids in asks.items() if ids[0] or ids[1]}
        replies = await asyncio.gather(*(self._ask(n, *ids) for n, ids in wanted.items()))
        return dict(zip(wanted, replies, strict=True))

    async def _ask(self, node: str, volumes: list[str], snapshots: list[str]) -> Answer | None:
        body = NodeProbe(tuple(volumes), tuple(snapshots))
        try:
            raw = await self.gw.router.call("node.probe", body, _context("admin"),
                                            to=node.encode(), timeout=PROBE_TIMEOUT_S)
        except CinderblockError as exc:
            log.info("reconcile: node %s did not answer (%s); its records wait", node, exc)
            return None
        reply = parse(NodeProbeReply, raw, strict=False)
        return Answer(frozenset(reply.busy), frozenset(reply.volumes), frozenset(reply.snapshots))

    async def apply(self, action: Action) -> None:
        s = action.stuck
        if s.kind == "volume":
            vol = self.gw.store.volumes.get(s.id)
            if vol is not None and _unmoved(vol, s):
                await self._volume(vol, action)
        else:
            snap = self.gw.store.snapshots.get(s.id)
            if snap is not None and _unmoved(snap, s):
                await self._snapshot(snap, action)

    async def _volume(self, rec: VolumeRecord, action: Action) -> None:
        _log(action)
        if action.do is Do.REDO_DELETE:
            host = rec.host or self._backend(action)
            body = NodeDeleteVolume(rec.id, unmanage=rec.status is V.UNMANAGING)
            self.gw.cast_to_node(host, "node.delete_volume", body, _context(rec.project_id))
            return
        if action.do is Do.FINISH_DELETE:
            await self.lifecycle.finish_volume_delete(rec, _context(rec.project_id))
            return
        if action.do is Do.REDO_REVERT:
            await self._redo_revert(rec)
            return
        if action.do is Do.REDO_EXTEND:
            await self._redo_extend(rec, action)
            return
        was = rec.status
        if action.do is Do.AVAILABLE:  # as the node's lost report would have made it
            check_volume_move(rec.status, V.AVAILABLE)
            rec.status, rec.reason = V.AVAILABLE, None
            rec.host = self._backend(action)
        else:
            new = V.ERROR_EXTENDING if action.do is Do.ERROR_EXTENDING else V.ERROR
            check_volume_move(rec.status, new)
            rec.status, rec.reason = new, action.reason
            if action.node and rec.host is None:
                rec.host = self.gw.cfg.node(action.node).backend_id
            if new is V.ERROR_EXTENDING:
                await self.lifecycle.end_extend(rec, "rollback")  # with its reservation's end
                return
        saved = self.gw.store.queue_status(rec)
        if was is V.CREATING and self.volume_made is not None:
            self.volume_made(rec)  # a create from a backup: the backup back, in this transaction
        await saved
        self.gw.publish(rec)

    async def _snapshot(self, rec: SnapshotRecord, action: Action) -> None:
        _log(action)
        if action.do is Do.REDO_DELETE:
            body = NodeDeleteSnapshot(rec.id, rec.volume_id, rec.status is P.UNMANAGING)
            self.gw.cast_to_node(rec.host or self._backend(action), "node.delete_snapshot",
                                 body, _context(rec.project_id))
            return
        if action.do is Do.FINISH_DELETE:
            await self.lifecycle.finish_snapshot_delete(rec, _context(rec.project_id))
            return
        if action.do is Do.AVAILABLE:  # as the node's lost report would have made it
            rec.move(P.AVAILABLE)
        else:
            rec.move(P.ERROR, action.reason)
        await self.lifecycle.save_snapshot(rec)

    async def _redo_revert(self, rec: VolumeRecord) -> None:
        snapshot = restoring_snapshot(self.gw.store, rec.id)
        if snapshot is None or rec.host is None:
            await end_revert(self.lifecycle, rec, V.ERROR, "the revert was interrupted, and "
                             "no snapshot of the volume is restoring: its bytes are its own "
                             "or the snapshot's")
            return
        body = NodeRevertVolume(rec.id, snapshot.id, self.gw.store.reverts.get(rec.id, ""))
        self.gw.cast_to_node(rec.host, "node.revert_volume", body, _context(rec.project_id))

    async def _redo_extend(self, rec: VolumeRecord, action: Action) -> None:
        """The extend sent again, with its reservation: the node grows the volume to
        the size kept (done already: nothing to do there) and reports under that
        reservation, so a report of the first send is taken the same way."""
        reservation_id = self.gw.store.extends.get(rec.id)
        new_size = self.gw.store.extend_sizes.get(rec.id)
        if reservation_id is None or new_size is None or rec.host is None:
            await self._volume(rec, extend_failed(action.stuck))
            return
        body = NodeExtendVolume(rec.id, rec.size, new_size, reservation_id)
        self.gw.cast_to_node(rec.host, "node.extend_volume", body, _context(rec.project_id))

    def _backend(self, action: Action) -> str:
        assert action.node is not None
        return self.gw.cfg.node(action.node).backend_id


def _stuck_snapshot(r: SnapshotRecord) -> Stuck:
    return Stuck("snapshot", r.id, r.status, _node(r.host), r.updated_at or r.created_at)


def _unmoved(rec: VolumeRecord | SnapshotRecord, s: Stuck) -> bool:
    """Still as it was found: one that moved while the nodes were asked is not stuck."""
    return rec.status is s.status and (rec.updated_at or rec.created_at) == s.since


def _log(action: Action) -> None:
    s = action.stuck
    log.warning("reconcile: %s %s stuck %s: %s", s.kind, s.id, s.status, action.reason)


def _node(host: str | None) -> str | None:
    return host_of(host) if host else None


def _context(project_id: str) -> Context:
    return Context(project_id=project_id, user_id="cinderblock-reconciler", roles=("admin",),
                   request_id=f"req-{uuid.uuid4()}")
