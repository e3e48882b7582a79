"""The kill suite: SIGKILL one actor of each kind in turn under load, then check that
nothing was lost, stuck, doubled or miscounted (issue 9).

    python -m cinderblock.bench.chaos [--seeds N] [--first-seed S] [--creates 1000]
                                      [--deletes 200] [--migrations 20] [--backups 10]
                                      [--group-snapshots 5] [--extends 10]
                                      [--restores 5] [--backup-deletes 5]
                                      [--freeze KIND,...] [--freeze-for SECONDS]
                                      [--cut | --wedge]
                                      [--window SECONDS]
                                      [--settle SECONDS] [--backend file|null] [--json]

For each seed: ``cinderblock up`` (a real process, file backend by default, two
nodes, no REST front) on a fresh temporary data directory; ``--deletes`` volumes
are made first; then, over ``--window`` seconds, ``--creates`` creates (each its
own task and request id, its volume named after the request id) and the deletes
of those volumes are sent in a seeded order through the client library, half at a
steady pace and half in a burst just before each kill, as many in flight as the
cluster lets pile up. ``--migrations`` more volumes, made first with a marker
written into each one's file, are each migrated by the admin to the other node at a
seeded moment of the window (a retry that finds the first attempt's migration running
is refused, which is fine). ``--backups`` more, marked the same way, are each backed up
at a seeded moment (the member's request, with a request id, retried as the others
are). ``--group-snapshots`` groups of two volumes, each volume marked the same way,
are each snapshotted at a seeded moment (the member's request, with a request id,
retried as the others are). ``--extends`` more, marked the same way, are each extended
by the member from 1 to 2 GiB at a seeded moment (retried as the others are; a retry
the first attempt's extend refuses is fine). ``--restores`` more, each marked and backed
up before the window and its marker then overwritten, each have their backup restored
into them by the member at a seeded moment; ``--backup-deletes`` backups, made before
the window (of a volume of their own), are each deleted by the member at a seeded moment
(both retried as the others are; a retry the first attempt's work refuses is fine).
Meanwhile the gateway,
the quota actor, the scheduler and one node are each SIGKILLed once, in a seeded
order at seeded moments (``bench.chaos_plan``), by the pids ``up`` reports in
``status.json``; each kill waits until ``up`` has started the previous one again.
With ``--freeze quota`` (or any of gateway, quota, scheduler, node, comma-separated), an
actor of that kind is also frozen (SIGSTOP) for ``--freeze-for`` seconds in a slot of
its own, a burst sent just before, and thawed (SIGCONT): silent with its connections
open, as behind a cut link, which its peers must tell from a death. With ``--cut`` as
well, each frozen actor's TCP connections are broken too as its freeze begins (``ss
-K``, both ends; ``bench.netcut``): a partition that lasted until TCP gave up, so what
was on its way to it is lost, and the same process comes back on new connections.
With ``--wedge`` instead, only the dialling side of each connection is broken (those to
a frozen service actor's port, or a frozen node's own to the gateway and the scheduler)
and the resets that would tell the other side are dropped (``bench.netcut``, an
nftables table of the suite's own): the peer connects again under its routing id while
the server still holds the old connection, which with keys it takes for none of its
peers. The table stays until an actor has dialled again (``actors.runtime.redial``),
or ``WEDGE_HOLD_S`` after the thaw.
A request that fails with a transport error or a timeout (``timeout``,
``unavailable``) is sent again with the same request id after a short backoff,
until ``--deadline`` seconds after its first attempt.

Then the cluster is given ``--settle`` seconds to settle (the reconciler runs
every second and looks at records older than 15 s) and checked, once a round finds
nothing or at the deadline:

* ``stuck``, ``quota``, ``files``: ``bench.invariants`` (nothing in a transitional
  status; quota ``in_use`` equal to what exists and nothing reserved; node files
  equal to the gateway's list);
* ``lost_ack``, ``duplicate``: ``bench.chaos_plan.judge`` (every acknowledged
  create ends ``available`` or ``error`` with a reason, every acknowledged delete
  ends gone, a delete reported failed did not happen, every request answered; one
  volume per request id);
* ``migrated``: each migrated volume is ``available`` on one of the nodes, its
  ``migration_status`` ended (``success`` or ``error``, or none if every attempt was
  refused before it began) and its file there holds its marker (``files`` checks that
  it is the only one);
* ``backed_up``: each backup request made one backup at most (none only if it was
  refused), an acknowledged one exists, and once the cluster has settled every backup
  that is ``available`` restores into a new volume that holds its volume's marker;
* ``grouped``: each group snapshot request made one group snapshot at most (none only
  if it was refused), an acknowledged one exists under the id it was answered with, and
  one that is ``available`` has every member snapshot ``available``, each file holding
  its volume's marker;
* ``extended``: each extended volume is ``available`` at 1 or 2 GiB, at 2 if its extend
  was acknowledged (an extend cut short by a kill is sent again, not failed), its file
  that size and holding its marker;
* ``restored_into``: each volume restored into is ``available`` and holds its backup's
  marker if a restore was acknowledged and its backup reports no failure, else its own
  (overwritten) marker or the backup's, never anything else; its backup is
  ``available``;
* ``backup_deleted``: each acknowledged backup delete left the backup gone (one not
  acknowledged may have happened or not; ``stuck``, ``quota`` and ``files`` hold either
  way);
* ``restart``: every killed actor was started again by ``up`` (``status.json``:
  restarts equal to its kills, running, a new live pid) and no other actor died (a
  frozen one neither);
* ``redial``: with ``--wedge``, every freeze that broke a connection was followed by a
  dial again (an actor's ``dialled_again`` grew) within ``WEDGE_HOLD_S`` of its thaw.

It prints a table per seed and totals (``--json``: one JSON document, what
``docs/reliability.md`` quotes), with how many times the actors running at the end
dialled a connection again (``dialled again``: its hellos unanswered on a connection
made since the last answer, ``actors.runtime.redial``; a killed process's count goes
with it), so that a run says whether that case arose. The exit status is 1 if any check failed.
``tests/e2e/test_e2e_chaos.py`` runs the same code on a smaller load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cinderblock.bench.chaos_plan import (
    KINDS,
    Ledger,
    Plan,
    PlannedKill,
    Request,
    judge,
    make_plan,
)
from cinderblock.bench.invariants import settled_violations
from cinderblock.bench.netcut import break_connections, break_dialling_sides, resets_dropped
from cinderblock.bench.up_cluster import UpCluster
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.backups import Backup, BackupRestoreInfo
from cinderblock.protocol.messages.groups import GroupSnapshot
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import CinderblockError, Timeout, Unavailable

# what a request's call answers (a restore: where the backup is written)
Answered = Volume | Backup | GroupSnapshot | BackupRestoreInfo
PROJECT = "demo"  # `up` makes the key of user demo, project demo
CHECKS = ("stuck", "lost_ack", "duplicate", "quota", "files", "migrated", "backed_up",
          "grouped", "extended", "restored_into", "backup_deleted", "restart", "redial")
# With --wedge, how long after its thaw a frozen actor's peers have to dial again (their
# hellos unanswered for stale_after_s, 2.5 s, on the new connection; then the dial)
WEDGE_HOLD_S = 15.0
MARKER_AT = 4096  # where each migrated volume's marker is written in its file
GIB = 1024**3
EXTENDED_GB = 2  # the size each extended volume (made at 1 GiB) is grown to
EXAMPLES = 5  # problem lines kept per check in the report
# The reconciler looks every second at records older than 15 s: sooner than up's
# defaults (120 s, every 30 s) so a seed settles in seconds, and still longer than the
# gateway's own calls may wait (10 s for the quota actor), so that it never judges a
# create the gateway's flow is still running.
RECONCILE_AFTER_S = 15.0
RECONCILE_EVERY_S = 1.0
# The quota actor forgets an applied op's id at its next look (every second) once the
# gateway says it has had the answer, not an hour later as by default: an id forgotten
# while a replay could still bring its op would show as a quota check's failure.
QUOTA_KEEP_ANSWERED_S = 0.0


@dataclass(frozen=True)
class Settings:
    creates: int = 1000
    deletes: int = 200
    migrations: int = 0  # volumes the admin migrates to the other node during the window
    backups: int = 0  # volumes the member backs up during the window
    group_snapshots: int = 0  # groups (of two volumes) the member snapshots in the window
    extends: int = 0  # volumes the member extends during the window
    restores: int = 0  # volumes the member restores their backup into during the window
    backup_deletes: int = 0  # backups the member deletes during the window
    freeze: tuple[str, ...] = ()  # kinds (KINDS) of which an actor is frozen (SIGSTOP)...
    freeze_s: float = 4.0  # ... this long, each in a slot of its own
    cut: bool = False  # each frozen actor's TCP connections broken as its freeze begins
    wedge: bool = False  # ... or only their dialling sides, the resets to the other dropped
    window_s: float = 30.0  # the load and the kills take this long
    settle_s: float = 90.0  # at most this long for the cluster to settle
    deadline_s: float = 60.0  # a client retries a request this long after its first try
    call_timeout_s: float = 5.0  # one attempt waits this long for its answer
    backend: str = "file"
    nodes: int = 2


@dataclass
class Kill:
    actor: str
    planned_s: float
    at_s: float = 0.0  # when it was sent, after the load started
    pid: int = 0
    in_flight: int = 0  # requests in flight at that moment
    back_after_s: float | None = None  # until up reported it running again
    frozen_s: float = 0.0  # not killed: SIGSTOPped, and SIGCONTed this long after
    cut: int | None = None  # with ``--cut``: how many of its TCP connections were broken
    wedged: int | None = None  # with ``--wedge``: how many dialling sides were broken
    dialled_after_s: float | None = None  # ... and how long after the thaw one dialled again


@dataclass
class SeedResult:
    seed: int
    creates: int
    deletes: int
    acked_creates: int = 0
    acked_deletes: int = 0
    migrations: int = 0
    moved: int = 0  # of the migrations, those that ended on the other node
    migration_outcomes: dict[str, int] = field(default_factory=dict)  # by migration_status
    migrations_refused: list[str] = field(default_factory=list)  # why (a few)
    backups: int = 0
    backups_restored: int = 0  # the available ones, each restored and its marker read
    backup_outcomes: dict[str, int] = field(default_factory=dict)  # by status ("none")
    group_snapshots: int = 0
    group_snapshots_read: int = 0  # the available ones, every member's marker read
    group_snapshot_outcomes: dict[str, int] = field(default_factory=dict)  # by status
    extends: int = 0
    extended: int = 0  # of the extends, the volumes that ended at the new size
    extend_outcomes: dict[str, int] = field(default_factory=dict)  # "available 2 GiB"
    restores: int = 0
    restored: int = 0  # of the restores, the volumes that hold their backup's marker
    backup_deletes: int = 0
    backups_deleted: int = 0  # of the backups to delete, those gone
    refused: int = 0
    unanswered: int = 0
    attempts: int = 0
    retries: int = 0
    kills: list[Kill] = field(default_factory=list)
    freezes: list[Kill] = field(default_factory=list)
    violations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    examples: dict[str, list[str]] = field(default_factory=dict)
    # the ids the quota actor still keeps at the end (of every op applied during the
    # seed, only those after the gateway's last word that the earlier were answered)
    quota_ids_kept: int | None = None
    # how many times the running actors dialled a connection again, unanswered on it
    # (actors.runtime.redial); a killed process's count goes with it
    dialled_again: int | None = None
    load_s: float = 0.0
    settle_s: float = 0.0
    total_s: float = 0.0
    data_dir: str = ""

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def failed_checks(self) -> list[str]:
        return [c for c in CHECKS if self.violations[c]]


SERVICES = ("gateway", "quota", "scheduler")  # the actors that serve connections


def _port(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


async def _dials(admin: Client) -> dict[str, int]:
    """How many times each actor that answers now dialled a connection again."""
    try:
        stats = await admin.cluster_stats(timeout=2.0)
    except CinderblockError:
        return {}
    return {a.actor: d for a in stats.actors
            if isinstance(d := a.details.get("dialled_again"), int)}


async def _end_figures(admin: Client) -> tuple[int | None, int | None]:
    """Once the quota actor's next look has passed (it looks every second): how many
    finished ids it keeps (its ``finished_ids``), and how many times the actors running
    now dialled a connection again (their ``dialled_again``); None where the cluster did
    not say."""
    await asyncio.sleep(2 * max(1.0, QUOTA_KEEP_ANSWERED_S))
    try:
        stats = await admin.cluster_stats(timeout=10.0)
    except CinderblockError:
        return None, None
    kept = [a.details.get("finished_ids") for a in stats.actors if a.actor == "quota"]
    dials = sum(d for a in stats.actors if isinstance(d := a.details.get("dialled_again"), int))
    return (kept[0] if kept and isinstance(kept[0], int) else None), dials


# ---- one seed ---------------------------------------------------------------------
def run_seed(seed: int, settings: Settings, data_root: Path | None = None,
             keep: bool = False) -> SeedResult:
    """Start ``up``, run the seed's load and kills, settle, check, stop ``up``."""
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-", dir=data_root))
    up = UpCluster(data_dir, "--backend", settings.backend, "--nodes", str(settings.nodes),
                   "--api-fronts", "0", "--capacity-gb", "100000",
                   "--reconcile-after", str(RECONCILE_AFTER_S),
                   "--reconcile-every", str(RECONCILE_EVERY_S), "--max-restarts", "5",
                   "--quota-keep-answered", str(QUOTA_KEEP_ANSWERED_S))
    result = SeedResult(seed, settings.creates, settings.deletes, data_dir=str(data_dir))
    up.start()
    try:
        asyncio.run(_run(up, seed, settings, result))
    finally:
        left = up.stop()
    if left:
        _found(result, "restart", [f"actor pids {left} outlived `up` and were killed"])
    result.total_s = round(time.monotonic() - started, 1)
    if not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


async def _run(up: UpCluster, seed: int, settings: Settings, result: SeedResult) -> None:
    plan = make_plan(seed, settings.creates, settings.deletes, settings.window_s,
                     tuple(n.host for n in up.cfg.nodes), settings.freeze, settings.freeze_s)
    async with up.client("admin", 30.0) as admin, \
            up.client(PROJECT, settings.call_timeout_s) as client:
        await admin.set_quota(PROJECT, volumes=100_000, gigabytes=100_000)
        targets = await _make_volumes(client, settings.deletes)
        moving = await _make_moving(up, client, settings.migrations)
        backing = await _make_moving(up, client, settings.backups, "backing")
        grouped = await _make_groups(up, client, admin, settings.group_snapshots)
        extending = await _make_moving(up, client, settings.extends, "extending")
        backup_work = await _make_backup_work(up, client, admin, settings.restores,
                                              settings.backup_deletes)
        ledger = Ledger()
        load_started = time.monotonic()
        await Storm(up, client, plan, settings, ledger, targets, result, admin, moving,
                    backing, grouped, extending, backup_work).run()
        result.load_s = round(time.monotonic() - load_started, 1)
        settle_started = time.monotonic()
        found = await _settle(up, admin, ledger, settings.settle_s, moving, backing, client,
                              grouped, extending, backup_work)
        if not found:  # settled: the backups are read back
            found = {c: lines for c, lines in
                     {"backed_up": await _restore_problems(up, client, backing, result)}.items()
                     if lines}
        result.settle_s = round(time.monotonic() - settle_started, 1)
        result.quota_ids_kept, result.dialled_again = await _end_figures(admin)
        result.migrations, result.backups = len(moving), len(backing)
        result.group_snapshots = len(grouped)
        result.group_snapshots_read = sum(g.read for g in grouped)
        for m in backing:
            result.backup_outcomes[m.outcome] = result.backup_outcomes.get(m.outcome, 0) + 1
        for g in grouped:
            result.group_snapshot_outcomes[g.outcome] = \
                result.group_snapshot_outcomes.get(g.outcome, 0) + 1
        result.moved = sum(1 for m in moving if m.moved)
        for m in moving:
            result.migration_outcomes[m.outcome] = result.migration_outcomes.get(m.outcome, 0) + 1
        result.migrations_refused = [m.refused for m in moving if m.refused][:EXAMPLES]
        result.extends = len(extending)
        result.extended = sum(1 for m in extending if m.moved)
        for m in extending:
            result.extend_outcomes[m.outcome] = result.extend_outcomes.get(m.outcome, 0) + 1
        result.restores = len(backup_work.restoring)
        result.restored = sum(r.volume.moved for r in backup_work.restoring)
        result.backup_deletes = len(backup_work.deleting)
        result.backups_deleted = sum(d.gone for d in backup_work.deleting)
    for check, lines in found.items():
        _found(result, check, lines)
    _found(result, "restart", _restart_problems(up, result.kills))
    _found(result, "redial", [
        f"{f.actor} frozen at {f.at_s:g}s with {f.wedged} connections wedged: nobody dialled "
        f"again within {WEDGE_HOLD_S:g}s of its thaw" for f in result.freezes
        if f.wedged and f.dialled_after_s is None])
    _tally(result, ledger)


async def _make_volumes(client: Client, count: int) -> list[str]:
    """The volumes the deletes will delete, made (``available``) before any kill."""
    gate = asyncio.Semaphore(50)

    async def one(i: int) -> str:
        async with gate:
            made = await client.create_volume(1, name=f"premade-{i}", wait=True, timeout=60.0)
            return made.id

    return list(await asyncio.gather(*(one(i) for i in range(count))))


@dataclass
class Moving:
    """A volume the admin migrates (or the member backs up, or extends) during the
    window, and what became of it."""

    volume_id: str
    source: str  # the backend it was made on
    marker: bytes
    moved: bool = False  # it ended on the other backend (an extend: at its new size)
    outcome: str = ""  # its migration_status (a backup's: its status) at the end ("none")
    refused: str = ""  # why the last attempt was refused, if it was
    request: Request | None = None  # a backup's request, as its client saw it


async def _make_moving(up: UpCluster, client: Client, count: int, name: str = "moving"
                       ) -> list[Moving]:
    """The volumes to migrate (or back up), made (``available``) before any kill, a
    marker written into each one's file."""
    moving = []
    for i in range(count):
        made = await client.create_volume(1, name=f"{name}-{i}", wait=True, timeout=60.0)
        assert made.host is not None
        marker = f"marker of {made.id}".encode()
        _write_marker(up, made.host, made.id, marker)
        moving.append(Moving(made.id, made.host, marker))
    return moving


@dataclass
class Grouped:
    """A group of volumes the member snapshots during the window, and what became of it."""

    group_id: str
    volumes: list[Moving]  # each with its marker
    outcome: str = ""  # its group snapshot's status at the end ("none": no group snapshot)
    read: bool = False  # an available one's member snapshots were read, markers and all
    request: Request | None = None  # its group snapshot's request, as its client saw it


async def _make_groups(up: UpCluster, client: Client, admin: Client, count: int
                       ) -> list[Grouped]:
    """The groups to snapshot, each with two volumes (``available``, a marker written
    into each one's file), made before any kill."""
    if not count:
        return []
    await admin.set_quota(PROJECT, groups=count + 10, snapshots=100_000)
    await admin.create_group_type("chaos-cg")
    grouped = []
    for i in range(count):
        group = await client.create_group("chaos-cg", ["__DEFAULT__"], name=f"grouped-{i}")
        volumes = []
        for j in range(2):
            made = await client.create_volume(1, name=f"grouped-{i}-{j}", group_id=group.id,
                                              wait=True, timeout=60.0)
            assert made.host is not None
            marker = f"marker of {made.id}".encode()
            _write_marker(up, made.host, made.id, marker)
            volumes.append(Moving(made.id, made.host, marker))
        grouped.append(Grouped(group.id, volumes))
    return grouped


def _volume_file(up: UpCluster, backend: str, volume_id: str, prefix: str = "volume-"
                 ) -> Path:
    return up.cfg.path("nodes", backend.partition("@")[0]) / f"{prefix}{volume_id}"


def _write_marker(up: UpCluster, backend: str, volume_id: str, marker: bytes) -> None:
    with _volume_file(up, backend, volume_id).open("r+b") as f:
        f.seek(MARKER_AT)
        f.write(marker)


def _read_marker(up: UpCluster, backend: str, volume_id: str, size: int,
                 prefix: str = "volume-") -> bytes:
    """The bytes at the marker's place in a volume's file (or, ``prefix`` "snapshot-",
    a snapshot's)."""
    try:
        with _volume_file(up, backend, volume_id, prefix).open("rb") as f:
            f.seek(MARKER_AT)
            return f.read(size)
    except OSError as exc:
        return f"({exc.strerror})".encode()


@dataclass
class Restoring:
    """A volume whose backup the member restores into it during the window: its
    ``marker`` is the backup's, and its file holds ``own`` (overwritten) until then."""

    volume: Moving  # moved: it ended holding its backup's marker
    backup_id: str
    own: bytes
    request: Request | None = None


@dataclass
class BackupDelete:
    """A backup the member deletes during the window."""

    backup_id: str
    name: str
    request: Request | None = None
    gone: bool = False


@dataclass
class BackupWork:
    restoring: list[Restoring] = field(default_factory=list)
    deleting: list[BackupDelete] = field(default_factory=list)


async def _make_backup_work(up: UpCluster, client: Client, admin: Client, restores: int,
                            deletes: int) -> BackupWork:
    """Made before any kill: the volumes to restore into, each marked, backed up and its
    marker overwritten; and the backups to delete, each of a volume of its own."""
    work = BackupWork()
    if not restores and not deletes:
        return work
    await admin.set_quota(PROJECT, backups=1000, backup_gigabytes=100_000)
    for m in await _make_moving(up, client, restores, "restoring"):
        backup = await client.create_backup(m.volume_id, name=f"restore-from-{m.volume_id}",
                                            wait=True, timeout=60.0)
        own = m.marker.upper()  # as long, and not the backup's
        _write_marker(up, m.source, m.volume_id, own)
        work.restoring.append(Restoring(m, backup.id, own))
    for m in await _make_moving(up, client, deletes, "backed"):
        name = f"to-delete-{m.volume_id}"
        backup = await client.create_backup(m.volume_id, name=name, wait=True, timeout=60.0)
        work.deleting.append(BackupDelete(backup.id, name))
    return work


class Storm:
    """The load and the kills of one seed, at the plan's moments."""

    def __init__(self, up: UpCluster, client: Client, plan: Plan, settings: Settings,
                 ledger: Ledger, targets: list[str], result: SeedResult,
                 admin: Client | None = None, moving: list[Moving] | None = None,
                 backing: list[Moving] | None = None,
                 grouped: list[Grouped] | None = None,
                 extending: list[Moving] | None = None,
                 backup_work: BackupWork | None = None) -> None:
        self.up, self.client, self.plan, self.settings = up, client, plan, settings
        self.ledger, self.targets, self.result = ledger, targets, result
        self.admin, self.moving, self.backing = admin, moving or [], backing or []
        self.grouped, self.extending = grouped or [], extending or []
        self.backup_work = backup_work or BackupWork()
        self.rng = random.Random(plan.seed)
        self.in_flight = 0
        self.t0 = 0.0

    async def run(self) -> None:
        self.t0 = time.monotonic()
        targets = iter(self.targets)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._kills())
            when = random.Random(-self.plan.seed)  # apart from the plan's draws
            for m in self.moving:
                tg.create_task(self._migrate(m, when.uniform(0, self.settings.window_s)))
            for m in self.backing:
                tg.create_task(self._back_up(m, when.uniform(0, self.settings.window_s)))
            for g in self.grouped:
                tg.create_task(self._snapshot_group(g, when.uniform(0, self.settings.window_s)))
            for m in self.extending:
                tg.create_task(self._extend(m, when.uniform(0, self.settings.window_s)))
            for restoring in self.backup_work.restoring:
                tg.create_task(self._restore(restoring, when.uniform(0, self.settings.window_s)))
            for deleting in self.backup_work.deleting:
                tg.create_task(self._delete_backup(deleting,
                                                   when.uniform(0, self.settings.window_s)))
            for kind, at_s in zip(self.plan.ops, self.plan.send_at_s, strict=True):
                await self._until(at_s)
                request = self.ledger.add(Request(kind, f"chaos-{self.plan.seed}-{uuid.uuid4()}"))
                if kind == "delete":
                    request.volume_id = next(targets)
                tg.create_task(self._send(request))

    async def _until(self, at_s: float) -> None:
        delay = self.t0 + at_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _kills(self) -> None:
        for planned in self.plan.kills:
            await self._until(planned.at_s)
            if planned.freeze_s:
                await self._freeze(planned)
                continue
            kill = Kill(planned.actor, planned.at_s)
            kill.pid, restarts = await asyncio.to_thread(self.up.kill, planned.actor)
            kill.at_s = round(time.monotonic() - self.t0, 2)
            kill.in_flight = self.in_flight
            self.result.kills.append(kill)
            kill.back_after_s = await self._back(kill, restarts)

    async def _freeze(self, planned: PlannedKill) -> None:
        """SIGSTOP the actor, and SIGCONT it ``freeze_s`` later: `up` must not start
        it again (``restart``), nor may the gateway lose or double anything meanwhile."""
        freeze = Kill(planned.actor, planned.at_s, frozen_s=planned.freeze_s)
        freeze.pid = await asyncio.to_thread(self.up.running_pid, planned.actor, 30.0)
        if self.settings.wedge:
            await self._wedged(freeze, planned.freeze_s)
            return
        os.kill(freeze.pid, signal.SIGSTOP)
        try:
            if self.settings.cut:
                freeze.cut = await asyncio.to_thread(break_connections, freeze.pid)
            freeze.at_s = round(time.monotonic() - self.t0, 2)
            freeze.in_flight = self.in_flight
            self.result.freezes.append(freeze)
            await asyncio.sleep(planned.freeze_s)
        finally:
            os.kill(freeze.pid, signal.SIGCONT)

    async def _wedged(self, freeze: Kill, freeze_s: float) -> None:
        """``--wedge``: the actor frozen while the dialling sides of its connections break
        and the resets to the other sides are dropped; thawed ``freeze_s`` later, and the
        resets dropped until an actor has dialled again (``dialled_after_s``) or for
        ``WEDGE_HOLD_S``."""
        assert self.admin is not None
        node = freeze.actor not in SERVICES
        ports = [_port(self.up.cfg.gateway), _port(self.up.cfg.scheduler)] if node else \
            [_port(getattr(self.up.cfg, freeze.actor))]
        before = await _dials(self.admin)
        for _ in range(20):  # the gateway may still be starting after the last kill
            if before:
                break
            await asyncio.sleep(0.5)
            before = await _dials(self.admin)
        with resets_dropped(ports):
            os.kill(freeze.pid, signal.SIGSTOP)
            try:
                freeze.wedged = sum([await asyncio.to_thread(
                    break_dialling_sides, port, freeze.pid if node else None)
                    for port in ports])
                freeze.at_s = round(time.monotonic() - self.t0, 2)
                freeze.in_flight = self.in_flight
                self.result.freezes.append(freeze)
                await asyncio.sleep(freeze_s)
            finally:
                os.kill(freeze.pid, signal.SIGCONT)
            thawed = time.monotonic()
            while time.monotonic() - thawed < WEDGE_HOLD_S:
                now = await _dials(self.admin)
                if any(count > before.get(actor, 0) for actor, count in now.items()):
                    freeze.dialled_after_s = round(time.monotonic() - thawed, 2)
                    return
                await asyncio.sleep(0.25)

    async def _back(self, kill: Kill, restarts: int, timeout: float = 30.0) -> float | None:
        """Seconds until ``up`` runs the killed actor again (None: not in ``timeout``)."""
        since = time.monotonic()
        while time.monotonic() - since < timeout:
            if self.up.restarted(kill.actor, kill.pid, restarts):
                return round(time.monotonic() - since, 2)
            await asyncio.sleep(0.05)
        return None

    async def _migrate(self, m: Moving, at_s: float) -> None:
        """The admin migrates ``m`` to another node, retried as the load's requests are."""
        await self._until(at_s)
        assert self.admin is not None
        admin = self.admin
        others = [n.backend_id for n in self.up.cfg.nodes if n.backend_id != m.source]
        r = Request("migrate", f"migrate-{m.volume_id}")

        async def call() -> Volume:
            return await admin.migrate_volume(m.volume_id, others[0])

        await self._retried(r, call)
        m.refused = r.refused

    async def _back_up(self, m: Moving, at_s: float) -> None:
        """The member backs ``m`` up, with a request id, retried as the load's requests are."""
        await self._until(at_s)
        r = m.request = Request("backup", f"chaos-backup-{uuid.uuid4()}", m.volume_id)

        async def call() -> Backup:
            return await self.client.create_backup(m.volume_id, name=r.request_id,
                                                   request_id=r.request_id)

        await self._retried(r, call)
        m.refused = r.refused

    async def _snapshot_group(self, g: Grouped, at_s: float) -> None:
        """The member snapshots ``g``, with a request id, retried as the load's requests
        are."""
        await self._until(at_s)
        r = g.request = Request("group_snapshot", f"chaos-gs-{uuid.uuid4()}")

        async def call() -> GroupSnapshot:
            return await self.client.create_group_snapshot(g.group_id, name=r.request_id,
                                                           request_id=r.request_id)

        await self._retried(r, call)

    async def _extend(self, m: Moving, at_s: float) -> None:
        """The member grows ``m`` to ``EXTENDED_GB``, retried as the load's requests are."""
        await self._until(at_s)
        r = m.request = Request("extend", f"chaos-extend-{uuid.uuid4()}", m.volume_id)

        async def call() -> Volume:
            return await self.client.extend_volume(m.volume_id, EXTENDED_GB,
                                                   request_id=r.request_id)

        await self._retried(r, call)
        m.refused = r.refused

    async def _restore(self, restoring: Restoring, at_s: float) -> None:
        """The member restores the backup into its volume, retried as the load's
        requests are."""
        await self._until(at_s)
        r = restoring.request = Request("restore", f"chaos-restore-{uuid.uuid4()}",
                                        restoring.volume.volume_id)

        async def call() -> BackupRestoreInfo:
            return await self.client.restore_backup(restoring.backup_id,
                                                    volume_id=restoring.volume.volume_id,
                                                    request_id=r.request_id)

        await self._retried(r, call)

    async def _delete_backup(self, deleting: BackupDelete, at_s: float) -> None:
        """The member deletes the backup, retried as the load's requests are."""
        await self._until(at_s)
        r = deleting.request = Request("backup_delete", f"chaos-backup-delete-{uuid.uuid4()}")

        async def call() -> Backup:
            return await self.client.delete_backup(deleting.backup_id)

        await self._retried(r, call)

    async def _retried(self, r: Request, call: Callable[[], Awaitable[Answered]]) -> None:
        """``retried``, counted in flight meanwhile (what a kill's row reports)."""
        self.in_flight += 1
        try:
            await retried(r, call, self.settings.deadline_s, self.rng)
        finally:
            self.in_flight -= 1

    async def _send(self, r: Request) -> None:
        if r.kind == "create":
            def call() -> Awaitable[Volume]:
                return self.client.create_volume(1, name=r.request_id, request_id=r.request_id)
        else:
            def call() -> Awaitable[Volume]:
                return self.client.delete_volume(r.volume_id, request_id=r.request_id)
        await self._retried(r, call)


async def retried(r: Request, call: Callable[[], Awaitable[Answered]],
                  deadline_s: float, rng: random.Random) -> None:
    """Send ``r`` until it is answered or refused: a transport error or a timeout is
    retried (same request id, where ``call`` sends one: a backup delete's carries none,
    the client taking none; a restore into an existing volume is not answered from its
    id) after a jittered backoff, until
    ``deadline_s`` after the first attempt (then ``r.unanswered``)."""
    first = time.monotonic()
    backoff = 0.2
    while True:
        r.attempts += 1
        try:
            answer = await call()
        except (Timeout, Unavailable):
            if time.monotonic() - first > deadline_s:
                r.unanswered = True
                return
            await asyncio.sleep(backoff * rng.uniform(0.5, 1.5))
            backoff = min(2.0, backoff * 2)
            continue
        except CinderblockError as exc:
            r.refused = f"{exc.code}: {exc.message}"
            return
        r.answers.append(answer.volume_id if isinstance(answer, BackupRestoreInfo)
                         else answer.id)
        return


async def _restored_into_problems(up: UpCluster, client: Client,
                                  restoring: list[Restoring]) -> list[str]:
    """Each volume restored into is available, holding its backup's marker if a restore
    was acknowledged and the backup reports no failure, else its own or the backup's;
    its backup is available."""
    problems = []
    for restore in restoring:
        m, r = restore.volume, restore.request
        vol = await client.show_volume(m.volume_id)
        backup = await client.show_backup(restore.backup_id)
        if vol.status != "available" or backup.status != "available":
            problems.append(f"volume {vol.id} restored into is {vol.status}, its backup "
                            f"{backup.id} {backup.status}")
            continue
        assert vol.host is not None
        found = await asyncio.to_thread(_read_marker, up, vol.host, vol.id, len(m.marker))
        m.moved = found == m.marker
        must = r is not None and r.acknowledged and not backup.fail_reason
        if found not in ((m.marker,) if must else (m.marker, restore.own)):
            problems.append(f"volume {vol.id} restored into reads {found!r}; its backup's "
                            f"marker is {m.marker!r}, its own {restore.own!r} "
                            f"(restore acknowledged: {must})")
    return problems


async def _backup_deleted_problems(client: Client, deleting: list[BackupDelete]
                                   ) -> list[str]:
    """Each acknowledged backup delete left its backup gone."""
    problems = []
    for d in deleting:
        d.gone = not [b for b in await client.list_backups(name=d.name) if b.id == d.backup_id]
        if d.request is not None and d.request.acknowledged and not d.gone:
            problems.append(f"backup {d.backup_id} still exists after its delete "
                            f"{d.request.request_id} was acknowledged")
    return problems


async def _backup_problems(client: Client, backing: list[Moving]) -> list[str]:
    """Each backup request made at most one backup, and an acknowledged one exists."""
    problems = []
    for m in backing:
        r = m.request
        if r is None:
            continue
        made = await client.list_backups(name=r.request_id)
        m.outcome = made[0].status if len(made) == 1 else "none"
        problems += made_once(r, "backup", [b.id for b in made])
    return problems


def made_once(r: Request, kind: str, made: list[str]) -> list[str]:
    """What is wrong with what request ``r`` made (the ids of its ``kind`` found): more
    than one, none though it was acknowledged, or not the one it was answered with."""
    problems = []
    if len(made) > 1:
        problems.append(f"{kind} request {r.request_id} made {len(made)}: {made}")
    if r.acknowledged and not made:
        problems.append(f"{kind} request {r.request_id} was answered {r.answers} and made "
                        "none")
    if set(r.answers) - set(made):
        problems.append(f"{kind} request {r.request_id} was answered {r.answers}; what it "
                        f"made is {made}")
    return problems


async def _restore_problems(up: UpCluster, client: Client, backing: list[Moving],
                            result: SeedResult) -> list[str]:
    """Every available backup, restored into a new volume, holds its volume's marker."""
    problems = []
    for m in backing:
        if m.request is None:
            continue
        for backup in await client.list_backups(name=m.request.request_id, status="available"):
            try:
                info = await client.restore_backup(backup.id, name=f"restored-{backup.id}",
                                                   wait=True, timeout=60.0)
                restored = await client.show_volume(info.volume_id)
            except CinderblockError as exc:
                problems.append(f"backup {backup.id} did not restore: {exc.code}: "
                                f"{exc.message}")
                continue
            assert restored.host is not None
            found = await asyncio.to_thread(_read_marker, up, restored.host, restored.id,
                                            len(m.marker))
            if found != m.marker:
                problems.append(f"backup {backup.id} restored into {restored.id} reads "
                                f"{found!r} where its volume's marker was")
            result.backups_restored += 1
    return problems


async def _group_snapshot_problems(up: UpCluster, client: Client, grouped: list[Grouped]
                                   ) -> list[str]:
    """Each group snapshot request made one at most, an acknowledged one exists under the
    id it was answered with, and an available one holds every volume's marker."""
    problems = []
    for g in grouped:
        r = g.request
        if r is None:
            continue
        made = [s for s in await client.list_group_snapshots() if s.group_id == g.group_id]
        g.outcome = made[0].status if len(made) == 1 else "none"
        problems += made_once(r, "group snapshot", [s.id for s in made])
        if len(made) == 1 and made[0].status == "available":
            problems += await _member_problems(up, client, g, made[0])
    return problems


async def _member_problems(up: UpCluster, client: Client, g: Grouped, made: GroupSnapshot
                           ) -> list[str]:
    markers = {m.volume_id: m for m in g.volumes}
    problems = []
    if len(made.snapshots) != len(g.volumes):
        problems.append(f"group snapshot {made.id} has {len(made.snapshots)} snapshots of "
                        f"{len(g.volumes)} volumes")
    for sid in made.snapshots:
        snap = await client.show_snapshot(sid)
        m = markers.get(snap.volume_id)
        if snap.status != "available" or m is None:
            problems.append(f"group snapshot {made.id} is available and its snapshot {sid} "
                            f"(of {snap.volume_id}) is {snap.status}")
            continue
        found = await asyncio.to_thread(_read_marker, up, m.source, sid, len(m.marker),
                                        "snapshot-")
        if found != m.marker:
            problems.append(f"snapshot {sid} of group snapshot {made.id} reads {found!r} "
                            "where its volume's marker was")
    g.read = not problems
    return problems


async def _settle(up: UpCluster, admin: Client, ledger: Ledger, settle_s: float,
                  moving: list[Moving] | None = None, backing: list[Moving] | None = None,
                  member: Client | None = None, grouped: list[Grouped] | None = None,
                  extending: list[Moving] | None = None,
                  backup_work: BackupWork | None = None) -> dict[str, list[str]]:
    """Look every second until a round finds nothing or ``settle_s`` is over; what
    the last round found, by check."""
    deadline = time.monotonic() + settle_s
    while True:
        try:
            found = await _problems(up, admin, ledger, moving or [])
            if backing and member is not None:
                for text in await _backup_problems(member, backing):
                    found.setdefault("backed_up", []).append(text)
            if grouped and member is not None:
                for text in await _group_snapshot_problems(up, member, grouped):
                    found.setdefault("grouped", []).append(text)
            for text in await _extend_problems(up, admin, extending or []):
                found.setdefault("extended", []).append(text)
            if backup_work is not None and member is not None:
                for text in await _restored_into_problems(up, member, backup_work.restoring):
                    found.setdefault("restored_into", []).append(text)
                for text in await _backup_deleted_problems(member, backup_work.deleting):
                    found.setdefault("backup_deleted", []).append(text)
        except CinderblockError as exc:  # the gateway may still be busy catching up
            found = {"stuck": [f"the admin's view failed: {exc.code}: {exc.message}"]}
        if not found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(1.0)


async def _problems(up: UpCluster, admin: Client, ledger: Ledger, moving: list[Moving]
                    ) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for text in await _migration_problems(up, admin, moving):
        found.setdefault("migrated", []).append(text)
    for text in await settled_violations(admin, up.node_files, [PROJECT], up.backup_files):
        found.setdefault(settled_check(text), []).append(text)
    volumes = await admin.list_volumes(all_projects=True)
    for check, text in judge(ledger, [v for v in volumes if v.project_id == PROJECT]):
        found.setdefault(check, []).append(text)
    return found


async def _migration_problems(up: UpCluster, admin: Client, moving: list[Moving]
                              ) -> list[str]:
    problems = []
    backends = {n.backend_id for n in up.cfg.nodes}
    for m in moving:
        vol = await admin.show_volume(m.volume_id)
        m.moved, m.outcome = vol.host != m.source, vol.migration_status or "none"
        if vol.status != "available" or vol.host not in backends \
                or vol.migration_status not in (None, "success", "error"):
            problems.append(f"migrated volume {vol.id} is {vol.status} on {vol.host}, "
                            f"migration_status {vol.migration_status}")
            continue
        assert vol.host is not None
        found = await asyncio.to_thread(_read_marker, up, vol.host, vol.id, len(m.marker))
        if found != m.marker:
            problems.append(f"migrated volume {vol.id} on {vol.host} reads {found!r} where "
                            f"its marker was written")
    return problems


async def _extend_problems(up: UpCluster, admin: Client, extending: list[Moving]
                           ) -> list[str]:
    problems = []
    for m in extending:
        vol = await admin.show_volume(m.volume_id)
        m.moved, m.outcome = vol.size == EXTENDED_GB, f"{vol.status} {vol.size} GiB"
        acked = m.request is not None and bool(m.request.answers)
        if vol.status != "available" or vol.size not in (1, EXTENDED_GB) \
                or (acked and vol.size != EXTENDED_GB):
            problems.append(f"extended volume {vol.id} is {vol.status} at {vol.size} GiB"
                            + (", its extend acknowledged" if acked else ""))
            continue
        assert vol.host is not None
        size = await asyncio.to_thread(_file_size, _volume_file(up, vol.host, vol.id))
        found = await asyncio.to_thread(_read_marker, up, vol.host, vol.id, len(m.marker))
        if size != vol.size * GIB or found != m.marker:
            problems.append(f"extended volume {vol.id} at {vol.size} GiB has a file of "
                            f"{size} bytes reading {found!r} where its marker was written")
    return problems


def _file_size(path: Path) -> int:
    """Its size in bytes; -1 if it cannot be read (missing)."""
    try:
        return path.stat().st_size
    except OSError:
        return -1


def settled_check(problem: str) -> str:
    """Which check a line of ``settled_violations`` belongs to."""
    if " stuck in " in problem or problem.startswith("the admin's view failed"):
        return "stuck"
    if " in use, " in problem or " still reserved " in problem:
        return "quota"
    return "files"


def _restart_problems(up: UpCluster, kills: list[Kill]) -> list[str]:
    if up.proc is None or up.proc.poll() is not None:
        return [f"`cinderblock up` is not running: {up.output()[-2000:]}"]
    killed = {k.actor: sum(1 for j in kills if j.actor == k.actor) for k in kills}
    problems = [f"{k.actor} (pid {k.pid}) was not running again 30s after its kill"
                for k in kills if k.back_after_s is None]
    for name, entry in up.status().items():
        want = killed.get(name, 0)
        if entry["restarts"] != want:
            problems.append(f"{name} was started again {entry['restarts']} times for "
                            f"{want} kills (last exit: {entry['last_exit']})")
        if not entry["running"]:
            problems.append(f"{name} is not running")
    return problems


def _found(result: SeedResult, check: str, lines: list[str]) -> None:
    result.violations[check] += len(lines)
    if lines:
        result.examples.setdefault(check, []).extend(lines)
        del result.examples[check][EXAMPLES:]


def _tally(result: SeedResult, ledger: Ledger) -> None:
    result.acked_creates = sum(r.acknowledged for r in ledger.of("create"))
    result.acked_deletes = sum(r.acknowledged for r in ledger.of("delete"))
    result.refused = sum(bool(r.refused) for r in ledger.requests)
    result.unanswered = sum(r.unanswered for r in ledger.requests)
    result.attempts = sum(r.attempts for r in ledger.requests)
    result.retries = ledger.retries


# ---- the report ---------------------------------------------------------------------
def table(results: list[SeedResult]) -> str:
    head = ["seed", "kills (actor@s, back after s)", "creates acked", "deletes acked",
            "moved", "restored", "grouped read", "extended", "restored into",
            "backups deleted", "retries", *CHECKS,
            "quota ids kept", "dialled again", "load s", "settle s", "total s"]
    rows = [[str(r.seed),
             " ".join([*(f"{k.actor}@{k.at_s:g}({_or_dash(k.back_after_s)})" for k in r.kills),
                       *(f"{f.actor}@{f.at_s:g}(frozen {f.frozen_s:g}{_cut_of(f)})"
                         for f in r.freezes)]),
             f"{r.acked_creates}/{r.creates}", f"{r.acked_deletes}/{r.deletes}",
             f"{r.moved}/{r.migrations}", f"{r.backups_restored}/{r.backups}",
             f"{r.group_snapshots_read}/{r.group_snapshots}", f"{r.extended}/{r.extends}",
             f"{r.restored}/{r.restores}", f"{r.backups_deleted}/{r.backup_deletes}",
             str(r.retries),
             *(str(r.violations[c]) for c in CHECKS), _or_dash(r.quota_ids_kept),
             _or_dash(r.dialled_again), f"{r.load_s:g}", f"{r.settle_s:g}",
             f"{r.total_s:g}"] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        for check, examples in r.examples.items():
            lines += [f"  seed {r.seed} {check}: {text}" for text in examples]
    return "\n".join(lines)


def _cut_of(freeze: Kill) -> str:
    if freeze.wedged is not None:
        return (f", {freeze.wedged} wedged, dialled again after "
                f"{_or_dash(freeze.dialled_after_s)}s")
    return "" if freeze.cut is None else f", {freeze.cut} cut"


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def summary(results: list[SeedResult], settings: Settings, argv: list[str]) -> dict[str, Any]:
    return {
        "command": " ".join(["python -m cinderblock.bench.chaos", *argv]),
        "settings": asdict(settings),
        "seeds": [{**asdict(r), "ok": r.ok} for r in results],
        "totals": {
            "seeds": len(results),
            "kills": sum(len(r.kills) for r in results),
            "freezes": sum(len(r.freezes) for r in results),
            "creates": sum(r.creates for r in results),
            "deletes": sum(r.deletes for r in results),
            "acked_creates": sum(r.acked_creates for r in results),
            "acked_deletes": sum(r.acked_deletes for r in results),
            "migrations": sum(r.migrations for r in results),
            "moved": sum(r.moved for r in results),
            "backups": sum(r.backups for r in results),
            "backups_restored": sum(r.backups_restored for r in results),
            "group_snapshots": sum(r.group_snapshots for r in results),
            "group_snapshots_read": sum(r.group_snapshots_read for r in results),
            "extends": sum(r.extends for r in results),
            "extended": sum(r.extended for r in results),
            "restores": sum(r.restores for r in results),
            "restored": sum(r.restored for r in results),
            "backup_deletes": sum(r.backup_deletes for r in results),
            "backups_deleted": sum(r.backups_deleted for r in results),
            "retries": sum(r.retries for r in results),
            "violations": {c: sum(r.violations[c] for r in results) for c in CHECKS},
            "seconds": round(sum(r.total_s for r in results), 1),
            "ok": all(r.ok for r in results),
        },
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m cinderblock.bench.chaos",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seeds", type=int, default=3, help="how many seeds to run (default 3)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--creates", type=int, default=1000)
    p.add_argument("--deletes", type=int, default=200)
    p.add_argument("--migrations", type=int, default=20,
                   help="volumes the admin migrates during the window (file backend)")
    p.add_argument("--backups", type=int, default=10,
                   help="volumes the member backs up during the window (file backend)")
    p.add_argument("--group-snapshots", type=int, default=5,
                   help="groups of two volumes the member snapshots during the window "
                        "(file backend)")
    p.add_argument("--extends", type=int, default=10,
                   help="volumes the member extends from 1 to 2 GiB during the window "
                        "(file backend)")
    p.add_argument("--restores", type=int, default=5,
                   help="volumes, each backed up before the window, that the member "
                        "restores their backup into during it (file backend)")
    p.add_argument("--backup-deletes", type=int, default=5,
                   help="backups, made before the window, that the member deletes during "
                        "it (file backend)")
    p.add_argument("--freeze", default="", metavar="KIND,...",
                   help=f"also freeze an actor of each kind named ({', '.join(KINDS)}) in a "
                        "slot of its own, then thaw it (default: none)")
    p.add_argument("--freeze-for", type=float, default=4.0, metavar="SECONDS",
                   help="how long each freeze lasts (default 4)")
    cuts = p.add_mutually_exclusive_group()
    cuts.add_argument("--cut", action="store_true",
                      help="with --freeze: break each frozen actor's TCP connections as its "
                           "freeze begins (ss -K, root): what was on its way to it is lost")
    cuts.add_argument("--wedge", action="store_true",
                      help="with --freeze: break only the dialling side of each of its "
                           "connections and drop the resets to the other (ss -K, nft, "
                           "root): peers connect again while it holds the old connections")
    p.add_argument("--window", type=float, default=30.0,
                   help="seconds over which the load is sent and the kills fall")
    p.add_argument("--settle", type=float, default=90.0,
                   help="at most this long for the cluster to settle")
    p.add_argument("--backend", choices=("file", "null"), default="file")
    p.add_argument("--keep", action="store_true", help="keep each seed's data directory")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    args = p.parse_args(argv)
    if args.seeds < 1 or min(args.creates, args.deletes, args.migrations, args.backups,
                             args.group_snapshots, args.extends, args.restores,
                             args.backup_deletes, args.freeze_for) < 0 \
            or args.window <= 0:
        p.error("--seeds must be at least 1, --creates, --deletes, --migrations, --backups, "
                "--group-snapshots, --extends, --restores, --backup-deletes and --freeze-for "
                "at least 0, --window above 0")
    freeze = tuple(kind for kind in args.freeze.split(",") if kind)
    if set(freeze) - set(KINDS) or len(set(freeze)) < len(freeze):
        p.error(f"--freeze names kinds among {', '.join(KINDS)}, each once, not "
                f"{args.freeze!r}")
    if (args.cut or args.wedge) and not freeze:
        p.error("--cut and --wedge break the connections of the actors --freeze names: "
                "name some")
    marked = args.backend == "file"  # null: no file to mark
    settings = Settings(creates=args.creates, deletes=args.deletes,
                        migrations=args.migrations if marked else 0,
                        backups=args.backups if marked else 0,
                        group_snapshots=args.group_snapshots if marked else 0,
                        extends=args.extends if marked else 0,
                        restores=args.restores if marked else 0,
                        backup_deletes=args.backup_deletes if marked else 0,
                        freeze=freeze, freeze_s=args.freeze_for, cut=args.cut,
                        wedge=args.wedge,
                        window_s=args.window,
                        settle_s=args.settle, backend=args.backend)
    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        results.append(run_seed(seed, settings, keep=args.keep))
        if not args.json:
            print(f"seed {seed}: {'ok' if results[-1].ok else 'FAILED'} "
                  f"({results[-1].total_s:g}s)", file=sys.stderr, flush=True)
    doc = summary(results, settings, argv)
    print(json.dumps(doc, indent=2) if args.json else table(results))
    return 0 if doc["totals"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
