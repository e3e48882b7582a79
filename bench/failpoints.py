"""The failpoint matrix: every named failpoint, kill -9 of its process there, then
restart, then a correct final state (issue 9).

For a set of failpoints, one cluster runs under the supervisor ``cinderblock up``
uses (``actors/runtime/supervisor.py``: a dead actor is started again on the same
endpoints) with those points armed (``CINDERBLOCK_FAILPOINTS``) and a marker
directory, so each fires once: the process that reaches it dies by SIGKILL, and
the one started in its place runs past it. A client drives rounds of the
operations that pass every point (create, snapshot, revert to it, extend, a backup and
an incremental one, a restore from it and their deletes, a transfer to another project
and back, attach, detach, delete the snapshot, delete the volume),
retrying with the same request ids what
a dead actor left unanswered, until every armed point has fired. Then it waits
until ``settled_violations`` is empty: nothing stuck, quota equal to what exists,
no reservation left, node files equal to the gateway's list.

``python -m cinderblock.bench.failpoints`` runs one cluster per point and prints
the table for ``docs/reliability.md`` (point, killed, restarted, settled in s,
violations); ``--points`` picks some, ``--parallel`` runs clusters side by side.
The tests (``tests/e2e/test_e2e_failpoints.py``) arm many points in a few clusters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import pkgutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from cinderblock.actors.runtime.cluster import Cluster, ClusterError
from cinderblock.actors.runtime.config import ClusterConfig, embedded
from cinderblock.actors.runtime.failpoints import ENV, ENV_DIR, declared
from cinderblock.actors.runtime.keyring import add_user
from cinderblock.actors.runtime.supervisor import RestartPolicy, Supervisor
from cinderblock.bench.invariants import repository_names, settled_violations
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.groups import Group, GroupSnapshot
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.transfers import Transfer
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import (
    AttachmentStatus,
    BackupStatus,
    SnapshotStatus,
    VolumeStatus,
)
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    InvalidInput,
    InvalidState,
    NotFound,
    Timeout,
    Unavailable,
)

T = TypeVar("T")
PROJECT = "failpoints"
OTHER = "failpoints-other"  # takes each volume by a transfer and gives it back
CONNECTOR = {"host": "compute-1", "ip": "127.0.0.1", "platform": "x86_64",
             "os_type": "linux", "multipath": False}
DECLARING_PACKAGES = ("cinderblock.actors", "cinderblock.storage_node")
PROCESSES = {"gateway": "gateway", "quota": "quota", "scheduler": "scheduler", "node": "node"}
RETRYABLE = (Timeout, Unavailable)
V, P, A, B = VolumeStatus, SnapshotStatus, AttachmentStatus, BackupStatus
VOLUME_MOVING = frozenset({V.CREATING, V.DELETING, V.EXTENDING, V.REVERTING, V.ATTACHING,
                           V.DETACHING, V.UNMANAGING, V.BACKING_UP, V.RESTORING_BACKUP,
                           V.MAINTENANCE})
SNAPSHOT_MOVING = frozenset({P.CREATING, P.DELETING, P.RESTORING, P.UNMANAGING})
ATTACHMENT_MOVING = frozenset({A.ATTACHING, A.DETACHING})
BACKUP_MOVING = frozenset({B.CREATING, B.DELETING, B.RESTORING})


def all_failpoints() -> list[str]:
    """Every failpoint the actors declare: imports every module of the actors and the
    storage node (each declares its points at import), then asks the registry."""
    for package in DECLARING_PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not info.name.endswith("__main__"):  # a program, not a module
                importlib.import_module(info.name)
    return declared()


# The test's grouping: the points one round passes early go together, so each group's
# rounds reach all of its points; anything a group does not name lands in the last.
GROUPS: dict[str, tuple[str, ...]] = {
    "create": ("gateway.volume_create.", "scheduler.", "node.create_volume.",
               "gateway.volume_update.", "quota.reserve."),
    "snapshot": ("gateway.snapshot_", "node.create_snapshot.", "node.delete_snapshot.",
                 "gateway.volume_revert", "node.revert_volume."),
    "extend_delete": ("gateway.volume_extend", "gateway.volume_delete",
                      "node.extend_volume.", "node.delete_volume.", "gateway.transfer_"),
    "backup": ("gateway.backup_", "node.create_backup.", "node.delete_backup.",
               "node.restore_backup."),
    "migration": ("gateway.volume_migrate.", "gateway.volume_received.",
                  "node.receive_volume.", "node.drop_volume."),
    "group": ("gateway.group_", "node.create_group_snapshot."),
    "attach_journal": (),
}


def grouped(points: Iterable[str]) -> dict[str, list[str]]:
    """Each point in the first group whose prefixes it starts with (else the last)."""
    out: dict[str, list[str]] = {name: [] for name in GROUPS}
    last = list(GROUPS)[-1]
    for point in points:
        group = next((n for n, prefixes in GROUPS.items() if point.startswith(prefixes)), last)
        out[group].append(point)
    return out


def process_of(point: str) -> str:
    """The kind of process a point kills: its name's first part."""
    return PROCESSES[point.partition(".")[0]]


@dataclass
class PointResult:
    """One row of the matrix (for a group run: the group's figures, per point)."""

    point: str
    killed: bool
    restarted: bool
    settled_s: float | None  # from the kill until seen exact (the round's rest included)
    violations: list[str] = field(default_factory=list)


def matrix_config(data_dir: Path) -> ClusterConfig:
    """Two file nodes; quick heartbeats and a reconciler that looks after 2 s, so a
    record a kill left in a transitional status is mended within seconds (not sooner:
    an attachment is judged by its age alone, and an export under load takes a second
    or two). The quota actor forgets an applied op's id at its next look (every second)
    once the gateway says it has had the answer: one forgotten while a replay could still
    bring its op would show as quota unequal to what exists."""
    cfg = embedded(data_dir, nodes=2)
    return replace(cfg, heartbeat_s=0.25, stale_after_s=1.0, reconcile_after_s=2.0,
                   reconcile_every_s=0.25, quota_keep_answered_s=0.0)


# ---- a supervised cluster with points armed ---------------------------------------


class ArmedCluster:
    """A cluster with ``points`` armed, supervised as ``up`` does, for one run."""

    def __init__(self, data_dir: Path, points: Sequence[str]) -> None:
        self.marks = data_dir / "failpoint-marks"
        self.marks.mkdir(parents=True, exist_ok=True)
        self.points = list(points)
        env = {ENV: ",".join(self.points), ENV_DIR: str(self.marks)}
        self.cluster = Cluster(matrix_config(data_dir), supervisor=True, env=env)
        self.supervisor: Supervisor | None = None
        self._watch: asyncio.Task[None] | None = None

    def fired(self) -> set[str]:
        return {p for p in self.points if (self.marks / p).exists()}

    def last_kill(self) -> float | None:
        """When the last armed point fired (its marker is made just before the kill)."""
        times = [(self.marks / p).stat().st_mtime for p in self.fired()]
        return max(times) if times else None

    def restarts(self) -> dict[str, int]:
        assert self.supervisor is not None
        return {name: s.restarts for name, s in self.supervisor.status.items()}

    async def __aenter__(self) -> ArmedCluster:
        await asyncio.to_thread(self.cluster.start, 60.0)
        data_dir = self.cluster.data_dir
        add_user(data_dir, PROJECT, PROJECT, ("member",))
        add_user(data_dir, OTHER, OTHER, ("member",))
        policy = RestartPolicy(max_per_minute=1000, first_s=0.05, max_s=0.5)
        self.supervisor = Supervisor(self.cluster, policy, say=lambda line: None)
        self._watch = asyncio.create_task(self._supervise(self.supervisor))
        return self

    async def _supervise(self, supervisor: Supervisor) -> None:
        while True:
            supervisor.check(time.monotonic())
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await asyncio.to_thread(self.cluster.stop)

    def client(self, admin: bool = False, timeout: float = 1.0, project: str = PROJECT
               ) -> Client:
        """A client that gives up soon: a call to a dead actor is sent again."""
        user = "admin" if admin else project
        return Client(self.cluster.cfg.gateway, project=user, admin=admin, timeout=timeout,
                      key=self.cluster.key(user))

    def node_files(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for node in self.cluster.cfg.nodes:
            d = self.cluster.cfg.path("nodes", node.host)
            out[node.host] = {p.name for p in d.iterdir()} if d.exists() else set()
        return out

    def backup_files(self) -> set[str]:
        return repository_names(self.cluster.cfg)


# ---- the client's side: operations that survive a dead actor ----------------------


async def again(make: Callable[[], Awaitable[T]], within: float = 60.0) -> T:
    """``make()`` until it gets an answer: a dead or restarting actor times out or is
    unavailable (a loaded machine may take seconds to start one again); the retry
    carries the same request id where the op has one."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            return await make()
        except RETRYABLE:
            await asyncio.sleep(0.2)
    return await make()


async def settled(show: Callable[[], Awaitable[T]], moving: Callable[[T], bool],
                  timeout: float = 60.0) -> T | None:
    """Poll ``show`` until what it shows is not moving (None: it is gone)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                found = await show()
            except NotFound:
                return None
            except RETRYABLE:
                found = None
            if found is not None and not moving(found):
                return found
            await asyncio.sleep(0.1)


async def volume_settled(c: Client, volume_id: str) -> Volume | None:
    return await settled(lambda: c.show_volume(volume_id), lambda v: v.status in VOLUME_MOVING)


async def snapshot_settled(c: Client, snapshot_id: str) -> Snapshot | None:
    return await settled(lambda: c.show_snapshot(snapshot_id),
                         lambda s: s.status in SNAPSHOT_MOVING)


async def attachment_settled(c: Client, attachment_id: str) -> Attachment | None:
    return await settled(lambda: c.show_attachment(attachment_id),
                         lambda a: a.status in ATTACHMENT_MOVING)


async def backup_settled(c: Client, backup_id: str) -> Backup | None:
    return await settled(lambda: c.show_backup(backup_id), lambda b: b.status in BACKUP_MOVING)


async def tolerant(make: Callable[[], Awaitable[Any]]) -> None:
    """An operation whose retry may find its own work done or refused for the state
    a kill left (``invalid_state``, ``not_found``, ``invalid_input``): the caller
    looks at the outcome itself."""
    with contextlib.suppress(InvalidState, NotFound, InvalidInput):
        await again(make)


async def one_round(c: Client, r: str, patient: Client, other: Client, admin: Client,
                    backends: Sequence[str]) -> None:
    """Create, snapshot, revert to it, extend, back it up and restore it, migrate it to
    the other backend and back, give it to another project and take it back, attach,
    detach, delete the snapshot, delete the volume.
    ``patient``: a client that waits longer, for the calls that wait for a node's
    export (a TLS certificate made on a loaded machine may take seconds).
    ``other``: a client of another project, which the volume is transferred to.
    ``admin``: an admin's client (a migration is an admin's); ``backends``: where to."""
    vol = await again(lambda: c.create_volume(1, request_id=f"fp-{r}-create"))
    current = await volume_settled(c, vol.id)
    if current is not None and current.status is V.AVAILABLE:
        await snapshot_and_extend(c, vol.id, r)
        await back_up_and_restore(c, vol.id, r)
        await migrate_there_and_back(c, admin, vol.id, backends)
        await snapshot_a_group(c, admin, r)
        if await hand_over(c, other, vol.id):
            await hand_over(other, c, vol.id)
        await attach_and_detach(c, vol.id, patient)
    await delete_volume(c, vol.id, r, patient)


async def hand_over(giver: Client, taker: Client, volume_id: str) -> bool:
    """Offer the volume and accept it; True once the taker holds it. An offer whose key
    a kill lost (its answer never came) is withdrawn and made again; an accept whose
    answer was lost is seen done by the taker holding the volume."""
    for _ in range(5):
        with contextlib.suppress(NotFound):
            if (await again(lambda: taker.show_volume(volume_id))).status is V.AVAILABLE:
                return True
        for lost in await again(lambda: giver.list_transfers(volume_id=volume_id)):
            await tolerant(partial(giver.delete_transfer, lost.id))
        offer: Transfer | None = None
        with contextlib.suppress(InvalidState, NotFound, InvalidInput):
            offer = await again(lambda: giver.create_transfer(volume_id))
        if offer is not None and offer.auth_key is not None:
            await tolerant(partial(taker.accept_transfer, offer.id, offer.auth_key))
    return False


async def snapshot_and_extend(c: Client, volume_id: str, r: str) -> None:
    snap: Snapshot | None = None
    with contextlib.suppress(InvalidState):
        snap = await again(lambda: c.create_snapshot(volume_id, request_id=f"fp-{r}-snap"))
    if snap is not None and await snapshot_settled(c, snap.id) is not None:
        await tolerant(lambda: c.revert_volume(volume_id, snap.id))  # again after a kill
        await volume_settled(c, volume_id)
        await snapshot_settled(c, snap.id)
        await tolerant(lambda: c.delete_snapshot(snap.id, request_id=f"fp-{r}-snap-del"))
        await snapshot_settled(c, snap.id)
    await tolerant(lambda: c.extend_volume(volume_id, 2, request_id=f"fp-{r}-extend"))
    await volume_settled(c, volume_id)


async def back_up_and_restore(c: Client, volume_id: str, r: str) -> None:
    """Back the volume up, then incrementally; restore the last into it; delete both
    (the incremental one first: its parent's delete is refused while it is there). A
    restore whose answer a kill lost is seen done (or refused) by the backup's status."""
    made = [b for b in [await back_up(c, volume_id, f"fp-{r}-backup", False)] if b]
    if made:
        made += [b for b in [await back_up(c, volume_id, f"fp-{r}-backup-inc", True)] if b]
        last = made[-1]
        await tolerant(lambda: c.restore_backup(last.id, volume_id))
        await backup_settled(c, last.id)
        await volume_settled(c, volume_id)
    for backup in reversed(made):
        for _ in range(5):
            if await backup_settled(c, backup.id) is None:
                break
            await tolerant(partial(c.delete_backup, backup.id))


async def migrate_there_and_back(c: Client, admin: Client, volume_id: str,
                                 backends: Sequence[str]) -> None:
    """Move the volume to another backend, then again (back, with two). A migration whose
    answer a kill lost is seen started, or refused, by the volume's status; each is
    waited for until the volume is settled."""
    for _ in range(2):
        vol = await volume_settled(c, volume_id)
        if vol is None or vol.status is not V.AVAILABLE:
            return
        elsewhere = next(b for b in backends if b != vol.host)
        await tolerant(partial(admin.migrate_volume, volume_id, elsewhere))
        await volume_settled(c, volume_id)


async def snapshot_a_group(c: Client, admin: Client, r: str) -> None:
    """A group with a volume, snapshotted at one instant; the group snapshot deleted,
    then the group with its volume. Each create carries a request id, so that one whose
    answer a kill lost is answered, when sent again, with what it made."""
    name = f"fp-{r}"
    with contextlib.suppress(InvalidInput):  # made by an attempt whose answer was lost
        await again(lambda: admin.create_group_type(name))
    group = await again(lambda: c.create_group(name, ["__DEFAULT__"],
                                               request_id=f"{name}-group"))
    vol = await again(lambda: c.create_volume(1, group_id=group.id, request_id=f"{name}-gvol"))
    await volume_settled(c, vol.id)
    made: GroupSnapshot | None = None
    with contextlib.suppress(InvalidState, NotFound, InvalidInput):
        made = await again(lambda: c.create_group_snapshot(group.id,
                                                            request_id=f"{name}-gs"))
    if made is not None:
        gs_id = made.id
        await copy_a_group(c, gs_id, r)
        for _ in range(5):  # a delete a kill cut short ends error_deleting: again
            if await settled(lambda: c.show_group_snapshot(gs_id),
                             lambda gs: gs.status in ("creating", "deleting")) is None:
                break
            await tolerant(partial(c.delete_group_snapshot, gs_id))
    for _ in range(5):
        if await settled(lambda: c.show_group(group.id),
                         lambda g: g.status.value == "deleting") is None:
            break
        await volume_settled(c, vol.id)
        await tolerant(partial(c.delete_group, group.id, True))
    await tolerant(partial(admin.delete_group_type, name))  # refused while a lost one's group


async def copy_a_group(c: Client, group_snapshot_id: str, r: str) -> None:
    """A group made from the group snapshot once it is available (a volume from each of
    its snapshots), then deleted with its volumes; a kill that cut its making short
    leaves it ``creating`` until the retry (``again``, under the same request id) makes
    the copies still missing, or, had no retry come, the reconciler made it ``error``."""
    snap = await settled(lambda: c.show_group_snapshot(group_snapshot_id),
                         lambda gs: gs.status == "creating")
    if snap is None or snap.status != "available":
        return
    copy: Group | None = None
    with contextlib.suppress(InvalidState, NotFound, InvalidInput):
        copy = await again(lambda: c.create_group_from_src(group_snapshot_id=group_snapshot_id,
                                                           request_id=f"fp-{r}-copy"))
    if copy is None:
        return
    copy_id = copy.id
    for _ in range(5):
        group = await settled(lambda: c.show_group(copy_id),
                              lambda g: g.status.value in ("creating", "deleting"))
        if group is None:
            break
        for vid in group.volumes:
            await volume_settled(c, vid)
        await tolerant(partial(c.delete_group, copy_id, True))


async def back_up(c: Client, volume_id: str, request_id: str, incremental: bool
                  ) -> Backup | None:
    """A backup of the volume once its node has ended it (available, or error); None if
    the create was refused."""
    backup: Backup | None = None
    with contextlib.suppress(InvalidState):
        backup = await again(lambda: c.create_backup(volume_id, incremental=incremental,
                                                     request_id=request_id))
    await volume_settled(c, volume_id)
    return None if backup is None else await backup_settled(c, backup.id)


async def attach_and_detach(c: Client, volume_id: str, patient: Client) -> None:
    vol = await volume_settled(c, volume_id)
    if vol is None or vol.status is not V.AVAILABLE:
        return
    await tolerant(lambda: c.create_attachment(volume_id, f"instance-{volume_id}"))
    for att in await again(lambda: c.list_attachments(volume_id)):
        await connect(c, att.id, patient)
    await detach_all(c, volume_id, patient)


async def connect(c: Client, attachment_id: str, patient: Client) -> None:
    """Update (the node exports; ``attaching``), then complete (``attached``)."""
    if (await attachment_settled(c, attachment_id)) is not None:
        await tolerant(lambda: patient.update_attachment(attachment_id, CONNECTOR))
        await tolerant(lambda: c.complete_attachment(attachment_id))


async def detach_all(c: Client, volume_id: str, patient: Client) -> None:
    for _ in range(10):
        attachments = await again(lambda: c.list_attachments(volume_id))
        if not attachments:
            return
        for att in attachments:
            await detach(c, att.id, patient)


async def detach(c: Client, attachment_id: str, patient: Client) -> None:
    if (await attachment_settled(c, attachment_id)) is not None:
        await tolerant(lambda: patient.delete_attachment(attachment_id))


async def delete_volume(c: Client, volume_id: str, r: str, patient: Client) -> None:
    """Delete (its snapshots first) until it is gone; a delete a kill interrupted is
    sent again with its request id, or again after it went to ``error_deleting``."""
    await detach_all(c, volume_id, patient)
    for snap in await again(lambda: c.list_snapshots(volume_id=volume_id)):
        await delete_snapshot(c, snap.id)
    for attempt in range(5):
        if await volume_settled(c, volume_id) is None:
            return
        await tolerant(partial(c.delete_volume, volume_id, request_id=f"fp-{r}-del-{attempt}"))


async def delete_snapshot(c: Client, snapshot_id: str) -> None:
    for _ in range(5):
        if await snapshot_settled(c, snapshot_id) is None:
            return
        await tolerant(lambda: c.delete_snapshot(snapshot_id))


# ---- one run -----------------------------------------------------------------------


@dataclass
class Run:
    points: list[str]
    fired: set[str]
    restarts: dict[str, int]
    settled_s: float | None
    violations: list[str]
    rounds: int
    elapsed_s: float = 0.0  # from the cluster's start to settled (or given up)


async def run_points(points: Sequence[str], data_dir: Path, *, max_rounds: int = 8,
                     chains: int = 2, settle_timeout: float = 60.0) -> Run:
    """One supervised cluster with ``points`` armed: rounds until all fired, then settle.
    A round runs ``chains`` volumes' lives side by side (their waits overlap)."""
    began = time.monotonic()
    async with ArmedCluster(data_dir, points) as armed, armed.client() as c, \
            armed.client(timeout=10.0) as patient, armed.client(admin=True) as admin, \
            armed.client(project=OTHER) as other:
        rounds = 0
        backends = [n.backend_id for n in armed.cluster.cfg.nodes]
        while armed.fired() != set(points) and rounds < max_rounds:
            await asyncio.gather(*(one_round(c, f"{rounds}.{i}", patient, other, admin,
                                             backends) for i in range(chains)))
            rounds += 1
        violations = await wait_settled(armed, admin, settle_timeout)
        last_kill = armed.last_kill()
        settled_s = None if violations or last_kill is None else time.time() - last_kill
        return Run(list(points), armed.fired(), armed.restarts(), settled_s, violations,
                   rounds, time.monotonic() - began)


async def wait_settled(armed: ArmedCluster, admin: Client, timeout: float) -> list[str]:
    """[] once the cluster is settled and exact; else what was still wrong at the end."""
    deadline = time.monotonic() + timeout
    problems: list[str] = ["not asked yet"]
    while time.monotonic() < deadline:
        try:
            problems = await settled_violations(admin, armed.node_files, [PROJECT, OTHER],
                                                armed.backup_files)
        except CinderblockError as exc:
            problems = [f"the gateway did not answer: {exc}"]
        if not problems:
            return []
        await asyncio.sleep(0.25)
    return problems


def results(run: Run) -> list[PointResult]:
    """The run's rows: each point killed (fired), its process restarted, the settle time."""
    rows = []
    for point in run.points:
        kind = process_of(point)
        restarted = any(n for name, n in run.restarts.items()
                        if name == kind or (kind == "node" and name.startswith("node")))
        rows.append(PointResult(point, point in run.fired, restarted, run.settled_s,
                                run.violations))
    return rows


# ---- the command -------------------------------------------------------------------


async def matrix(points: Iterable[str], parallel: int) -> list[PointResult]:
    gate = asyncio.Semaphore(parallel)

    async def one(point: str) -> list[PointResult]:
        async with gate:
            with tempfile.TemporaryDirectory(prefix="cinderblock-fp-",
                                             ignore_cleanup_errors=True) as tmp:
                run = await run_started([point], Path(tmp), chains=1)
            row = results(run)
            print(format_row(row[0]), flush=True)
            return row

    rows = await asyncio.gather(*(one(p) for p in points))
    return [r for group in rows for r in group]


async def run_started(points: Sequence[str], parent: Path, attempts: int = 3,
                      **kwargs: Any) -> Run:
    """``run_points`` in a new directory under ``parent``; a start that fails (a free
    port another cluster took meanwhile) is tried again in another."""
    for attempt in range(1, attempts + 1):
        try:
            return await run_points(points, parent / f"attempt-{attempt}", **kwargs)
        except ClusterError:
            if attempt == attempts:
                raise
    raise AssertionError("attempts must be at least 1")


HEADER = "| point | killed | restarted | settled in s | violations |\n|---|---|---|---|---|"


def format_row(row: PointResult) -> str:
    settled_s = f"{row.settled_s:.1f}" if row.settled_s is not None else "not settled"
    violations = "; ".join(row.violations) if row.violations else "0"
    return (f"| `{row.point}` | {'yes' if row.killed else 'NO'} | "
            f"{'yes' if row.restarted else 'NO'} | {settled_s} | {violations} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cinderblock.bench.failpoints",
        description="kill -9 at every named failpoint (one supervised cluster each) and "
                    "check the settled cluster is exact")
    p.add_argument("--points", default="", help="comma-separated names (default: all)")
    p.add_argument("--parallel", type=int, default=1, help="clusters at once (default 1)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON too")
    p.add_argument("--list", action="store_true", help="print the declared failpoints")
    args = p.parse_args(argv)
    known = all_failpoints()
    if args.list:
        print("\n".join(known))
        return 0
    points = [x for x in args.points.split(",") if x] or known
    unknown = sorted(set(points) - set(known))
    if unknown:
        print(f"unknown failpoints: {', '.join(unknown)}", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    started = time.monotonic()
    rows = asyncio.run(matrix(points, max(1, args.parallel)))
    bad = [r for r in rows if not (r.killed and r.restarted and r.settled_s is not None)]
    print(f"\n{len(rows)} failpoints, {len(rows) - len(bad)} killed, restarted and settled "
          f"exact; {time.monotonic() - started:.0f}s")
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
