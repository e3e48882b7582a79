"""The whole cluster as a state machine (issue 9): nothing lost, nothing stuck, quota exact.

Hypothesis drives one real cluster (actor processes on 127.0.0.1, file backends, a tight
quota) through creates (plain, from a snapshot, clones, from a backup), deletes of
volumes, snapshots and backups, snapshots, backups (with force or not, whole or
incremental) and their restores, reverts to a snapshot, extends, attaches (create,
update with a connector, complete) and detaches, generic volume groups (made, volumes
made in them, added and removed, snapshotted at one instant, deleted with their volumes
or not), retries of creates and deletes with their request ids, restarts of the
gateway, quota, the scheduler and a node (SIGTERM or SIGKILL, then started again on the
same endpoints), and SIGKILLs in the middle of a
create, delete, snapshot or extend. ``Model`` says what must exist (ids, sizes,
statuses, attachments) and which requests are refused (``invalid_state`` naming the
status, ``over_quota`` naming the resources). After every step the cluster must settle
(``settled_violations`` is empty: nothing stuck, quota in use equal to what exists,
nothing reserved, node files equal to the gateway's list) and the gateway must list
exactly what the model holds.

A request cut short by a kill has more than one correct end; the model names them
(a create: one volume for its request id, available or error; a delete: gone, or
back in a status a delete may start from; an extend: the old or the new size) and
takes the one the cluster settled in.

One cluster serves every example; each example works in a project of its own, so
the quota of one never meets another's (the invariants are checked for all of
them after every step).

The suite runs a few short examples, reproducibly (``derandomize``, no example
database, no shrinking). A longer run::

    CINDERBLOCK_STATEFUL_EXAMPLES=200 CINDERBLOCK_STATEFUL_STEPS=30 \\
        python -m pytest tests/e2e/test_e2e_stateful.py --timeout 0

``CINDERBLOCK_STATEFUL_SEED=N`` draws from seed N instead of the fixed sequence;
``CINDERBLOCK_STATEFUL_SHRINK=1`` shrinks a failure (slow: every step is real);
``CINDERBLOCK_STATEFUL_VERBOSE=1`` (with ``-s``) prints every step as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from cinderblock.actors.runtime.config import DEFAULT_TYPE
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import (
    VOLUME_MOVES,
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
    OverQuota,
    Timeout,
    Unavailable,
)
from tests.cluster_invariants import settled_violations
from tests.conftest import (
    E2ECluster,
    eventually,
    every_actor_answers,
    make_config,
    require_tool,
    running_cluster,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., None])
Send = Callable[[], Awaitable[Any]]  # a request of a step, sent again on a retry
Settle = Callable[[Any], None]  # what the step does with the first answer (or error)
V, P = VolumeStatus, SnapshotStatus
RETYPES = (DEFAULT_TYPE, "FCVolumeType")  # the embedded config's types

EXAMPLES = int(os.environ.get("CINDERBLOCK_STATEFUL_EXAMPLES", "4"))
STEPS = int(os.environ.get("CINDERBLOCK_STATEFUL_STEPS", "12"))
SEED = os.environ.get("CINDERBLOCK_STATEFUL_SEED")
SHRINK = os.environ.get("CINDERBLOCK_STATEFUL_SHRINK", "") not in ("", "0")
VERBOSE = os.environ.get("CINDERBLOCK_STATEFUL_VERBOSE", "") not in ("", "0")

# tight, so that over-quota refusals come often: a size of 5 is over the per-volume limit
LIMITS: Mapping[str, int] = {"volumes": 3, "gigabytes": 8, "snapshots": 2,
                             "backups": 2, "backup_gigabytes": 6,
                             "per_volume_gigabytes": 4, "groups": 1}
GROUP_TYPE = "stateful-cg"  # made by the test, before the machine runs
NODES = ("node-1", "node-2")
ACTORS = ("gateway", "quota", "scheduler", *NODES)
CONNECTOR = {"host": "compute-1", "ip": "127.0.0.1", "platform": "x86_64",
             "os_type": "linux", "multipath": False, "initiator": "iqn.2004-10.org:compute-1"}
DELETABLE = frozenset(s for s, moves in VOLUME_MOVES.items() if V.DELETING in moves)
CLONABLE = frozenset({V.AVAILABLE, V.IN_USE})
SETTLE_S = 30.0  # the reconciler looks after 1 s; a restarted actor is back in about 1 s
PICK = st.integers(0, 7)  # which of the model's volumes or snapshots (modulo how many)
MADE = itertools.count()  # the order backups are made in


# ---- the model: what must exist, and what must be refused ---------------------------
@dataclass(frozen=True)
class CreateRequest:
    """A create as sent, so that it can be sent again with its request id."""

    request_id: str
    size: int | None
    snapshot_id: str | None = None
    source_volid: str | None = None
    backup_id: str | None = None
    group_id: str | None = None
    volume_type: str | None = None


@dataclass
class ModelVolume:
    id: str
    size: int
    status: VolumeStatus
    request: CreateRequest
    attachment: str | None = None
    volume_type: str | None = None  # its type's name, as created (a clone: its source's)
    group: str | None = None  # the group it is in


@dataclass
class ModelGroup:
    id: str
    request_id: str
    volume_types: tuple[str, ...]  # names
    host: str  # the backend its volumes must be on


@dataclass
class ModelGroupSnapshot:
    id: str
    group_id: str
    request_id: str


@dataclass
class ModelSnapshot:
    id: str
    volume_id: str
    size: int
    status: SnapshotStatus
    request_id: str
    force: bool
    group_snapshot: str | None = None  # the group snapshot it was taken with


@dataclass
class ModelBackup:
    id: str
    volume_id: str
    size: int
    status: BackupStatus
    request_id: str
    force: bool
    incremental: bool = False
    parent_id: str | None = None  # an incremental backup's: the one it was made on
    made: int = 0  # the order backups were made in (the latest is an incremental's parent)


@dataclass(frozen=True)
class Refusal:
    """The error a request must get: its class, words its message must hold, and for
    ``over_quota`` the resources it must name."""

    error: type[CinderblockError]
    says: str = ""
    over: frozenset[str] = frozenset()

    def check(self, got: CinderblockError) -> None:
        assert isinstance(got, self.error), f"expected {self.error.__name__}, got {got!r}"
        assert self.says in got.message, f"{got.message!r} does not say {self.says!r}"
        if self.over:
            named = {o["resource"] for o in got.details.get("overs", ())}
            assert named == self.over, f"over quota on {named}, the model says {self.over}"


def invalid_state(status: VolumeStatus | SnapshotStatus) -> Refusal:
    return Refusal(InvalidState, f"is {status.value}")


@dataclass
class Model:
    """One project's volumes, snapshots and attachments as they must be."""

    limits: Mapping[str, int]
    volumes: dict[str, ModelVolume] = field(default_factory=dict)
    snapshots: dict[str, ModelSnapshot] = field(default_factory=dict)
    backups: dict[str, ModelBackup] = field(default_factory=dict)
    groups: dict[str, ModelGroup] = field(default_factory=dict)
    group_snapshots: dict[str, ModelGroupSnapshot] = field(default_factory=dict)
    deleted: dict[str, tuple[str, str]] = field(default_factory=dict)  # request id → kind, id
    # a request cut short by a kill: the (status, size) each object it touched may end in
    open_ends: dict[str, frozenset[tuple[str, int]]] = field(default_factory=dict)

    def in_use(self) -> dict[str, int]:
        return {
            "volumes": len(self.volumes),
            "snapshots": len(self.snapshots),
            "gigabytes": sum(v.size for v in self.volumes.values())
            + sum(s.size for s in self.snapshots.values()),
            "backups": len(self.backups),
            "backup_gigabytes": sum(b.size for b in self.backups.values()),
            "groups": len(self.groups),
        }

    def over_quota(self, deltas: Mapping[str, int], volume_size: int = 0) -> Refusal | None:
        """Quota's answer to a reservation (``volume_size``: checked per volume)."""
        used = self.in_use()
        over = {r for r, d in deltas.items() if used[r] + d > self.limits[r]}
        if volume_size > self.limits["per_volume_gigabytes"]:
            over.add("per_volume_gigabytes")
        return Refusal(OverQuota, over=frozenset(over)) if over else None

    def room_for(self, size: int) -> bool:
        return self.over_quota({"volumes": 1, "gigabytes": size}, size) is None

    def pick_volume(self, pick: int) -> ModelVolume | None:
        return self.volumes[sorted(self.volumes)[pick % len(self.volumes)]] if self.volumes \
            else None

    def pick_snapshot(self, pick: int) -> ModelSnapshot | None:
        return self.snapshots[sorted(self.snapshots)[pick % len(self.snapshots)]] \
            if self.snapshots else None

    def pick_backup(self, pick: int) -> ModelBackup | None:
        return self.backups[sorted(self.backups)[pick % len(self.backups)]] \
            if self.backups else None

    def snapshots_of(self, volume_id: str) -> list[ModelSnapshot]:
        return [s for s in self.snapshots.values() if s.volume_id == volume_id]

    # the gateway's checks, in its order: the source's status first, then quota
    def refuse_create(self, size: int) -> Refusal | None:
        return self.over_quota({"volumes": 1, "gigabytes": size}, size)

    def refuse_copy(self, source: ModelVolume | ModelSnapshot, size: int) -> Refusal | None:
        usable = (source.status in CLONABLE if isinstance(source, ModelVolume)
                  else source.status is P.AVAILABLE)
        return invalid_state(source.status) if not usable else self.refuse_create(size)

    def refuse_delete(self, vol: ModelVolume, by_group: bool = False) -> Refusal | None:
        if vol.group is not None and not by_group:
            return Refusal(InvalidState, "belongs to group")
        if vol.status not in DELETABLE:
            return invalid_state(vol.status)
        return Refusal(InvalidState, "dependent snapshot") if self.snapshots_of(vol.id) else None

    def refuse_snapshot(self, vol: ModelVolume, force: bool) -> Refusal | None:
        if not (vol.status is V.AVAILABLE or (vol.status is V.IN_USE and force)):
            return invalid_state(vol.status)
        return self.over_quota({"snapshots": 1, "gigabytes": vol.size})

    def refuse_extend(self, vol: ModelVolume, new_size: int) -> Refusal | None:
        if vol.status is not V.AVAILABLE:
            return invalid_state(vol.status)
        return self.over_quota({"gigabytes": new_size - vol.size}, new_size)

    def refuse_revert(self, vol: ModelVolume, snap: ModelSnapshot) -> Refusal | None:
        """Cinder's order: the newest snapshot (by creation, any status), then its size,
        then the volume's status, then the snapshot's."""
        if self.snapshots_of(vol.id)[-1] is not snap:  # the model's dict: creation order
            return Refusal(InvalidInput, "not the latest one")
        if snap.size != vol.size:
            return Refusal(InvalidInput, "size must be equal")
        if vol.status is not V.AVAILABLE:
            return invalid_state(vol.status)
        return invalid_state(snap.status) if snap.status is not P.AVAILABLE else None

    def refuse_transfer(self, vol: ModelVolume) -> Refusal | None:
        """Cinder's: not in a group, the volume available, then each of its snapshots."""
        if vol.group is not None:
            return Refusal(InvalidState, "belongs to group")
        if vol.status is not V.AVAILABLE:
            return invalid_state(vol.status)
        busy = next((s for s in self.snapshots_of(vol.id) if s.status is not P.AVAILABLE), None)
        return invalid_state(busy.status) if busy is not None else None

    def refuse_retype(self, vol: ModelVolume, new_type: str) -> Refusal | None:
        """Cinder's: the volume available or in-use and of another type (both types of
        the cluster's configuration are ones every file backend satisfies); not in a group."""
        if vol.group is not None:
            return Refusal(InvalidState, "belongs to group")
        if vol.status not in (V.AVAILABLE, V.IN_USE) or vol.volume_type == new_type:
            return Refusal(InvalidState, "available or in-use state")
        return None

    def refuse_backup(self, vol: ModelVolume, force: bool, incremental: bool = False
                      ) -> Refusal | None:
        """Cinder's: available, or in-use with force; an incremental one needs an
        available backup of the volume; then quota."""
        if vol.status is V.IN_USE and not force:
            return Refusal(InvalidState, "force flag")
        if vol.status not in (V.AVAILABLE, V.IN_USE):
            return Refusal(InvalidState, f'current status is "{vol.status.value}"')
        if incremental and self.parent_of(vol.id) is None:
            return Refusal(InvalidState, "No backups available to do an incremental backup")
        return self.over_quota({"backups": 1, "backup_gigabytes": vol.size})

    def parent_of(self, volume_id: str) -> ModelBackup | None:
        """The volume's latest available backup: an incremental one's parent."""
        return max((b for b in self.backups.values() if b.volume_id == volume_id
                    and b.status is BackupStatus.AVAILABLE), key=lambda b: b.made,
                   default=None)

    def refuse_backup_delete(self, backup: ModelBackup) -> Refusal | None:
        if any(b.parent_id == backup.id for b in self.backups.values()):
            return Refusal(InvalidState, "Incremental backups exist for this backup")
        return None

    def refuse_restore(self, backup: ModelBackup, vol: ModelVolume) -> Refusal | None:
        """Cinder's order: the backup available, the volume available, then its size."""
        if backup.status is not BackupStatus.AVAILABLE:
            return Refusal(InvalidState, "Backup status must be available")
        if vol.status is not V.AVAILABLE:
            return Refusal(InvalidState, "must be available")
        if vol.size < backup.size:
            return Refusal(InvalidInput, "too small to restore backup")
        return None

    def refuse_from_backup(self, backup: ModelBackup, size: int) -> Refusal | None:
        if backup.status is not BackupStatus.AVAILABLE:
            return Refusal(InvalidState, "Backup status must be available")
        return self.refuse_create(size)

    def refuse_migrate(self, vol: ModelVolume) -> Refusal | None:
        """Cinder's: the volume available (an in-use one is refused too, with why: Nova
        would swap its attachment), then without snapshots; not in a group first."""
        if vol.group is not None:
            return Refusal(InvalidState, "belongs to group")
        if vol.status is not V.AVAILABLE:
            return Refusal(InvalidState, vol.status.value)
        if self.snapshots_of(vol.id):
            return Refusal(InvalidState, "must not have snapshots")
        return None

    def members(self, group_id: str) -> list[ModelVolume]:
        return [v for v in self.volumes.values() if v.group == group_id]

    def pick_group(self, pick: int) -> ModelGroup | None:
        return self.groups[sorted(self.groups)[pick % len(self.groups)]] if self.groups \
            else None

    def refuse_join(self, group: ModelGroup, vol: ModelVolume, host: str) -> Refusal | None:
        """Cinder's ``update`` adding a volume: in no group, available or in-use, of one
        of the group's types; here also on the group's backend."""
        if vol.group is not None:
            return Refusal(InvalidInput, "already in group")
        if vol.status not in CLONABLE:
            return Refusal(InvalidState, "volume is in an invalid state")
        if vol.volume_type not in group.volume_types:
            return Refusal(InvalidInput, "is not supported by the group")
        return Refusal(InvalidInput, "the group's volumes on") if host != group.host else None

    def refuse_leave(self, group: ModelGroup, vol: ModelVolume) -> Refusal | None:
        if vol.group != group.id:
            return Refusal(InvalidInput, "it is not in the group")
        if vol.status not in (*CLONABLE, V.ERROR):
            return Refusal(InvalidState, "volume is in an invalid state")
        return None

    def refuse_group_snapshot(self, group: ModelGroup) -> Refusal | None:
        """Each volume available or in-use, then quota for a snapshot of each."""
        volumes = self.members(group.id)
        busy = next((v for v in volumes if v.status not in CLONABLE), None)
        if busy is not None:
            return Refusal(InvalidState, f"is {busy.status.value}: a group snapshot needs")
        if not volumes:
            return None
        return self.over_quota({"snapshots": len(volumes),
                                "gigabytes": sum(v.size for v in volumes)})

    def refuse_group_delete(self, group: ModelGroup, delete_volumes: bool
                            ) -> Refusal | None:
        """Cinder's order: no group snapshots, no volumes unless ``delete_volumes``, then
        every volume deletable."""
        if any(g.group_id == group.id for g in self.group_snapshots.values()):
            return Refusal(InvalidState, "has existing group snapshots")
        volumes = self.members(group.id)
        if volumes and not delete_volumes:
            return Refusal(InvalidInput, "delete-volumes flag is required")
        return next((r for v in volumes if (r := self.refuse_delete(v, by_group=True))), None)

    def refuse_attach(self, vol: ModelVolume) -> Refusal | None:
        if vol.attachment is not None:  # the default type does not allow multiattach
            return Refusal(InvalidState, "already has an attachment")
        return None if vol.status is V.AVAILABLE else invalid_state(vol.status)

    def settle(self, volumes: Mapping[str, Volume], snapshots: Mapping[str, Snapshot]) -> None:
        """Take the end each cut-short request came to, once it is one the model allows."""
        for object_id, ends in self.open_ends.items():
            found = volumes.get(object_id) or snapshots.get(object_id)
            end = ("gone", 0) if found is None else (found.status.value, found.size)
            assert end in ends, f"{object_id} ended {end}; the model allows {sorted(ends)}"
            if isinstance(found, Volume):
                self.volumes[object_id].status, self.volumes[object_id].size = (
                    found.status, found.size)
            elif isinstance(found, Snapshot):
                self.snapshots[object_id].status = found.status
            else:
                self.volumes.pop(object_id, None)
                self.snapshots.pop(object_id, None)
        self.open_ends.clear()

    def listing(self) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[str, int, str]],
                               dict[str, str], dict[str, tuple[str, int, str]]]:
        """What the gateway must list: volumes, snapshots, attachments, backups."""
        return ({v.id: (v.size, v.status.value) for v in self.volumes.values()},
                {s.id: (s.volume_id, s.size, s.status.value) for s in self.snapshots.values()},
                {v.attachment: v.id for v in self.volumes.values() if v.attachment},
                {b.id: (b.volume_id, b.size, b.status.value) for b in self.backups.values()})


# ---- talking to the cluster -----------------------------------------------------------
async def attempt(call: Awaitable[T]) -> T | CinderblockError:
    """The answer, or the error the cluster answered with."""
    try:
        return await call
    except CinderblockError as exc:
        return exc


def shown(got: object) -> str:
    """An answer as a journal line."""
    if isinstance(got, CinderblockError):
        return f"{got.code}: {got.message}"
    if isinstance(got, Volume | Snapshot | Backup):
        return f"{type(got).__name__.lower()} {got.id} {got.status.value} {got.size} GiB"
    return repr(got)


def expect(refusal: Refusal | None, got: T | CinderblockError) -> T | None:
    """Check an answer against the model's verdict: the result when it had to succeed."""
    if refusal is None:
        assert not isinstance(got, CinderblockError), f"refused, the model says it is not: {got!r}"
        return got
    assert isinstance(got, CinderblockError), f"done, the model says {refusal}: {got!r}"
    refusal.check(got)
    return None


async def until_answered(send: Callable[[], Awaitable[T]], deadline_s: float = 30.0) -> T:
    """Send again (``send()`` makes the call) while the cluster is away
    (``unavailable``, ``timeout``): what a client does after a crash."""
    async with asyncio.timeout(deadline_s):
        while True:
            try:
                result: T = await send()
                return result
            except (Unavailable, Timeout):
                await asyncio.sleep(0.1)


class FirstFailure:
    """The run's first failure and the steps of its example, as they really ran.

    Hypothesis runs a failing example again to report it; a real cluster cannot repeat
    it (its state and timings moved on), so the replay is refused and the test reports
    this instead."""

    error: BaseException | None = None
    journal: list[str] = []

    @classmethod
    def keep(cls, error: BaseException, journal: list[str]) -> None:
        if cls.error is None:
            cls.error, cls.journal = error, list(journal)

    @classmethod
    def report(cls) -> AssertionError:
        steps = "\n".join(f"  {line}" for line in cls.journal)
        return AssertionError(f"{cls.error!r}\nthe steps of that example:\n{steps}")


def step(func: F) -> F:
    """A step: written to the example's journal (with its arguments); its failure kept."""
    @functools.wraps(func)
    def logged(self: ClusterMachine, **kwargs: Any) -> None:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
        self.journal.append(f"{func.__name__}({shown})")
        kept(func)(self, **kwargs)
    return cast(F, logged)


def kept(func: F) -> F:
    """Its failure is kept as the run's first, with the example's journal."""
    @functools.wraps(func)
    def keeping(self: ClusterMachine, **kwargs: Any) -> None:
        try:
            func(self, **kwargs)
        except BaseException as exc:
            FirstFailure.keep(exc, self.journal)
            raise
    return cast(F, keeping)


class ClusterMachine(RuleBasedStateMachine):
    """The steps; ``cluster`` and ``admin`` are set by the test before it runs.

    No preconditions: a rule with nothing to act on notes so and does nothing. Which
    rules hypothesis may draw must not depend on how the cluster answered (a kill
    leaves a volume ``available`` one time, ``error`` the next), or hypothesis finds
    the same draws leading to other choices and stops the run as flaky.
    """

    cluster: E2ECluster
    loop: asyncio.AbstractEventLoop
    admin: Client

    def __init__(self) -> None:
        if FirstFailure.error is not None:
            raise RuntimeError("not replaying a failed example on a real cluster")
        super().__init__()
        self.project = f"stateful-{uuid.uuid4().hex[:10]}"
        self.model = Model(LIMITS)
        self.journal: list[str] = [f"project {self.project}"]
        self.client = self.cluster.client(self.project, timeout=10.0)

    def note(self, text: str) -> None:
        self.journal.append(f"    {text}")

    def expect(self, refusal: Refusal | None, got: T | CinderblockError) -> T | None:
        self.note(f"→ {shown(got)}")
        return expect(refusal, got)

    def run(self, step: Awaitable[T]) -> T:
        return self.loop.run_until_complete(step)

    def teardown(self) -> None:
        self.client.close()

    # ---- creates ------------------------------------------------------------------
    @initialize(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=2))
    @step
    def start_with_volumes(self, sizes: list[int]) -> None:
        """Something to act on from the first step (a short run is short)."""
        for size in sizes:
            self.create_volume(size=size)

    def _create(self, request: CreateRequest, refusal: Refusal | None) -> None:
        got = self.run(attempt(self.client.create_volume(
            request.size, request_id=request.request_id, snapshot_id=request.snapshot_id,
            source_volid=request.source_volid, backup_id=request.backup_id,
            group_id=request.group_id, volume_type=request.volume_type, wait=True)))
        vol = self.expect(refusal, got)
        if vol is not None:
            assert (vol.status, vol.group_id) == (V.AVAILABLE, request.group_id), vol
            self.model.volumes[vol.id] = ModelVolume(vol.id, vol.size, vol.status, request,
                                                     volume_type=vol.volume_type,
                                                     group=request.group_id)

    @rule(size=st.integers(1, 5))
    @step
    def create_volume(self, size: int) -> None:
        self._create(CreateRequest(new_request_id(), size), self.model.refuse_create(size))

    @rule(pick=PICK, grow=st.integers(0, 1))
    @step
    def create_volume_from_snapshot(self, pick: int, grow: int) -> None:
        snap = self.model.pick_snapshot(pick)
        if snap is None:
            return self.note("no snapshot to copy")
        size = snap.size + grow
        request = CreateRequest(new_request_id(), size, snapshot_id=snap.id)
        self._create(request, self.model.refuse_copy(snap, size))

    @rule(pick=PICK)
    @step
    def clone_volume(self, pick: int) -> None:
        source = self.model.pick_volume(pick)
        if source is None:
            return self.note("no volume to clone")
        request = CreateRequest(new_request_id(), None, source_volid=source.id)
        self._create(request, self.model.refuse_copy(source, source.size))

    @rule(pick=PICK, grow=st.integers(0, 1))
    @step
    def create_volume_from_backup(self, pick: int, grow: int) -> None:
        backup = self.model.pick_backup(pick)
        if backup is None:
            return self.note("no backup to restore")
        size = backup.size + grow
        request = CreateRequest(new_request_id(), size, backup_id=backup.id)
        self._create(request, self.model.refuse_from_backup(backup, size))

    def _retry_create(self, pick: int) -> None:
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no create to retry")
        r = vol.request
        again = self.run(self.client.create_volume(
            r.size, request_id=r.request_id, snapshot_id=r.snapshot_id,
            source_volid=r.source_volid, backup_id=r.backup_id, group_id=r.group_id,
            volume_type=r.volume_type))
        assert (again.id, again.status) == (vol.id, vol.status), again

    @rule(what=st.sampled_from(("create", "snapshot", "delete", "backup", "group",
                                "group_snapshot")), pick=PICK)
    @step
    def retry_with_its_request_id(self, what: str, pick: int) -> None:
        """A done create, snapshot, delete, backup, group or group snapshot sent again
        with its request id: the same one (never a second), or ``deleted``."""
        {"create": self._retry_create, "snapshot": self._retry_snapshot,
         "delete": self._retry_delete, "backup": self._retry_backup,
         "group": self._retry_group, "group_snapshot": self._retry_group_snapshot}[what](pick)

    # ---- deletes ------------------------------------------------------------------
    @rule(pick=PICK)
    @step
    def delete_volume(self, pick: int) -> None:
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to delete")
        request_id = new_request_id()
        got = self.run(attempt(self.client.delete_volume(vol.id, request_id=request_id,
                                                         wait=True)))
        if self.expect(self.model.refuse_delete(vol), got) is not None:
            del self.model.volumes[vol.id]
            self.model.deleted[request_id] = ("volume", vol.id)

    @rule(pick=PICK)
    @step
    def delete_snapshot(self, pick: int) -> None:
        snap = self.model.pick_snapshot(pick)
        if snap is None:
            return self.note("no snapshot to delete")
        request_id = new_request_id()
        got = self.run(attempt(self.client.delete_snapshot(snap.id, request_id=request_id,
                                                           wait=True)))
        refusal = (Refusal(InvalidState, "is part of group snapshot") if snap.group_snapshot
                   else None if snap.status is not P.CREATING else invalid_state(snap.status))
        if self.expect(refusal, got) is not None:
            del self.model.snapshots[snap.id]
            self.model.deleted[request_id] = ("snapshot", snap.id)

    def _retry_delete(self, pick: int) -> None:
        if not self.model.deleted:
            return self.note("no delete to retry")
        request_id = sorted(self.model.deleted)[pick % len(self.model.deleted)]
        kind, object_id = self.model.deleted[request_id]
        again: Volume | Snapshot
        if kind == "volume":
            again = self.run(self.client.delete_volume(object_id, request_id=request_id))
        else:
            again = self.run(self.client.delete_snapshot(object_id, request_id=request_id))
        assert (again.id, again.status.value) == (object_id, "deleted"), again

    # ---- snapshots, extends, attachments ----------------------------------------------
    @rule(pick=PICK, force=st.booleans())
    @step
    def create_snapshot(self, pick: int, force: bool) -> None:
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to snapshot")
        request_id = new_request_id()
        got = self.run(attempt(self.client.create_snapshot(
            vol.id, force=force, request_id=request_id, wait=True)))
        snap = self.expect(self.model.refuse_snapshot(vol, force), got)
        if snap is not None:
            assert (snap.status, snap.size) == (P.AVAILABLE, vol.size), snap
            self.model.snapshots[snap.id] = ModelSnapshot(
                snap.id, vol.id, snap.size, snap.status, request_id, force)

    def _retry_snapshot(self, pick: int) -> None:
        own = [s for _, s in sorted(self.model.snapshots.items()) if s.group_snapshot is None]
        if not own:  # a group snapshot's were made by its request (``_retry_group_snapshot``)
            return self.note("no snapshot create to retry")
        snap = own[pick % len(own)]
        again = self.run(self.client.create_snapshot(
            snap.volume_id, force=snap.force, request_id=snap.request_id))
        assert (again.id, again.status) == (snap.id, snap.status), again

    @rule(pick=PICK, force=st.booleans(), incremental=st.booleans())
    @step
    def back_up_volume(self, pick: int, force: bool, incremental: bool) -> None:
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to back up")
        request_id = new_request_id()
        parent = self.model.parent_of(vol.id) if incremental else None
        got = self.run(attempt(self.client.create_backup(
            vol.id, force=force, incremental=incremental, request_id=request_id, wait=True,
            timeout=30.0)))
        backup = self.expect(self.model.refuse_backup(vol, force, incremental), got)
        if backup is not None:
            assert (backup.status, backup.size, backup.is_incremental) == (
                BackupStatus.AVAILABLE, vol.size, incremental), backup
            self.model.backups[backup.id] = ModelBackup(
                backup.id, vol.id, backup.size, backup.status, request_id, force, incremental,
                None if parent is None else parent.id, next(MADE))

    def _retry_backup(self, pick: int) -> None:
        backup = self.model.pick_backup(pick)
        if backup is None:
            return self.note("no backup create to retry")
        again = self.run(self.client.create_backup(
            backup.volume_id, force=backup.force, incremental=backup.incremental,
            request_id=backup.request_id))
        assert (again.id, again.status) == (backup.id, backup.status), again

    @rule(pick=PICK, into=PICK)
    @step
    def restore_backup(self, pick: int, into: int) -> None:
        backup, vol = self.model.pick_backup(pick), self.model.pick_volume(into)
        if backup is None or vol is None:
            return self.note("no backup or no volume to restore into")
        got = self.run(attempt(self.client.restore_backup(backup.id, vol.id, wait=True,
                                                          timeout=30.0)))
        if self.expect(self.model.refuse_restore(backup, vol), got) is not None:
            after = self.run(self.client.show_volume(vol.id))
            assert (after.status, after.size) == (vol.status, vol.size), after

    @rule(pick=PICK)
    @step
    def delete_backup(self, pick: int) -> None:
        backup = self.model.pick_backup(pick)
        if backup is None:
            return self.note("no backup to delete")
        got = self.run(attempt(self.client.delete_backup(backup.id, wait=True, timeout=30.0)))
        if self.expect(self.model.refuse_backup_delete(backup), got) is not None:
            del self.model.backups[backup.id]

    @rule(pick=PICK)
    @step
    def revert_volume(self, pick: int) -> None:
        snap = self.model.pick_snapshot(pick)
        if snap is None:
            return self.note("no snapshot to revert to")
        vol = self.model.volumes[snap.volume_id]
        got = self.run(attempt(self.client.revert_volume(vol.id, snap.id, wait=True)))
        done = self.expect(self.model.refuse_revert(vol, snap), got)
        if done is not None:
            assert (done.status, done.size) == (V.AVAILABLE, vol.size), done

    @rule(pick=PICK)
    @step
    def offer_and_withdraw(self, pick: int) -> None:
        """A transfer offered (the volume awaiting it) and withdrawn: the volume as it
        was, and nothing else changed (the listing and quota checks after each step)."""
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to offer")
        got = self.run(attempt(self.client.create_transfer(vol.id)))
        offer = self.expect(self.model.refuse_transfer(vol), got)
        if offer is not None:
            offered = self.run(self.client.show_volume(vol.id))
            assert offered.status is V.AWAITING_TRANSFER, offered
            self.run(self.client.delete_transfer(offer.id))
            back = self.run(self.client.show_volume(vol.id))
            assert back.status is V.AVAILABLE, back

    @rule(pick=PICK, other=st.booleans())
    @step
    def retype_volume(self, pick: int, other: bool) -> None:
        """In place, to the other configured type (or, ``other`` false, to its own:
        refused); the volume keeps its status and size."""
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to retype")
        new_type = (RETYPES[1 - RETYPES.index(vol.volume_type)]
                    if other and vol.volume_type in RETYPES else vol.volume_type or "")
        got = self.run(attempt(self.client.retype_volume(vol.id, new_type)))
        done = self.expect(self.model.refuse_retype(vol, new_type), got)
        if done is not None:
            assert (done.volume_type, done.status, done.size) == (
                new_type, vol.status, vol.size), done
            vol.volume_type = new_type

    @rule(pick=PICK)
    @step
    def migrate_volume(self, pick: int) -> None:
        """An admin moves it to the other backend: its id, size and status kept, its
        bytes on the new node (the settled check finds no copy left on the old one)."""
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to migrate")
        host = self.run(self.admin.show_volume(vol.id)).host
        other = next(n.backend_id for n in self.cluster.cfg.nodes if n.backend_id != host)
        got = self.run(attempt(self.admin.migrate_volume(vol.id, other, wait=True,
                                                         timeout=30)))
        done = self.expect(self.model.refuse_migrate(vol), got)
        if done is not None:
            assert (done.host, done.status, done.size, done.migration_status) == (
                other, V.AVAILABLE, vol.size, "success"), done

    @rule(pick=PICK, grow=st.integers(1, 2))
    @step
    def extend_volume(self, pick: int, grow: int) -> None:
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to extend")
        new_size = vol.size + grow
        got = self.run(attempt(self.client.extend_volume(vol.id, new_size, wait=True)))
        done = self.expect(self.model.refuse_extend(vol, new_size), got)
        if done is not None:
            assert (done.status, done.size) == (V.AVAILABLE, new_size), done
            vol.size = new_size

    @rule(pick=PICK)
    @step
    def attach_volume(self, pick: int) -> None:
        vol = self.model.pick_volume(pick)
        if vol is None:
            return self.note("no volume to attach")
        refusal = self.model.refuse_attach(vol)
        got = self.run(attempt(self.client.create_attachment(vol.id, instance_id="vm-1")))
        att = self.expect(refusal, got)
        if att is not None:
            self.run(self.client.update_attachment(att.id, CONNECTOR))
            done = self.run(self.client.complete_attachment(att.id))
            assert done.status is AttachmentStatus.ATTACHED, done
            vol.status, vol.attachment = V.IN_USE, att.id

    @rule(pick=PICK)
    @step
    def detach_volume(self, pick: int) -> None:
        attached = sorted(v.id for v in self.model.volumes.values() if v.attachment)
        if not attached:
            return self.note("no attachment to delete")
        vol = self.model.volumes[attached[pick % len(attached)]]
        assert vol.attachment is not None
        self.run(self.client.delete_attachment(vol.attachment))
        vol.status, vol.attachment = V.AVAILABLE, None

    # ---- groups -------------------------------------------------------------------
    @rule(both=st.booleans())
    @step
    def create_group(self, both: bool) -> None:
        """A group for the default type (or both configured types), placed by the
        gateway; ``available`` at once."""
        types = RETYPES if both else RETYPES[:1]
        request_id = new_request_id()
        got = self.run(attempt(self.client.create_group(GROUP_TYPE, types,
                                                        request_id=request_id)))
        group = self.expect(self.model.over_quota({"groups": 1}), got)
        if group is not None:
            assert group.status == "available" and not group.volumes, group
            self.model.groups[group.id] = ModelGroup(group.id, request_id, types,
                                                     group.host or "")

    @rule(pick=PICK, size=st.integers(1, 3))
    @step
    def create_volume_in_group(self, pick: int, size: int) -> None:
        group = self.model.pick_group(pick)
        if group is None:
            return self.note("no group to make a volume in")
        request = CreateRequest(new_request_id(), size, group_id=group.id,
                                volume_type=group.volume_types[pick % len(group.volume_types)])
        self._create(request, self.model.refuse_create(size))

    @rule(pick=PICK, into=PICK, add=st.booleans())
    @step
    def add_to_or_remove_from_group(self, pick: int, into: int, add: bool) -> None:
        """Cinder's group update: a volume added (or removed), the group's volumes as the
        model has them either way."""
        group, vol = self.model.pick_group(into), self.model.pick_volume(pick)
        if group is None or vol is None:
            return self.note("no group or no volume")
        if add:
            host = self.run(self.admin.show_volume(vol.id)).host or ""
            refusal = self.model.refuse_join(group, vol, host)
            got = self.run(attempt(self.client.update_group(group.id, add_volumes=[vol.id])))
        else:
            refusal = self.model.refuse_leave(group, vol)
            got = self.run(attempt(self.client.update_group(group.id,
                                                            remove_volumes=[vol.id])))
        if self.expect(refusal, got) is not None:
            vol.group = group.id if add else None
            changed = self.run(self.client.show_group(group.id))
            assert set(changed.volumes) == {v.id for v in self.model.members(group.id)}

    @rule(pick=PICK)
    @step
    def snapshot_group(self, pick: int) -> None:
        """A snapshot of each of the group's volumes at one instant: each ``available``,
        of its volume's size, and deleted only with the group snapshot."""
        group = self.model.pick_group(pick)
        if group is None:
            return self.note("no group to snapshot")
        request_id = new_request_id()
        got = self.run(attempt(self.client.create_group_snapshot(
            group.id, request_id=request_id, wait=True, timeout=30.0)))
        made = self.expect(self.model.refuse_group_snapshot(group), got)
        if made is None:
            return
        assert made.status == "available", made
        self.model.group_snapshots[made.id] = ModelGroupSnapshot(made.id, group.id, request_id)
        for sid in made.snapshots:
            snap = self.run(self.client.show_snapshot(sid))
            vol = self.model.volumes[snap.volume_id]
            assert (snap.status, snap.size, vol.group) == (P.AVAILABLE, vol.size, group.id)
            self.model.snapshots[sid] = ModelSnapshot(sid, vol.id, snap.size, snap.status,
                                                      request_id, False, made.id)

    @rule(pick=PICK)
    @step
    def delete_group_snapshot(self, pick: int) -> None:
        m = self.model
        if not m.group_snapshots:
            return self.note("no group snapshot to delete")
        made = m.group_snapshots[sorted(m.group_snapshots)[pick % len(m.group_snapshots)]]
        self.run(self.client.delete_group_snapshot(made.id))
        self.run(eventually(functools.partial(self._gone, self.client.show_group_snapshot,
                                              made.id), timeout=SETTLE_S))
        del m.group_snapshots[made.id]
        for sid in [s.id for s in m.snapshots.values() if s.group_snapshot == made.id]:
            del m.snapshots[sid]

    @rule(pick=PICK, delete_volumes=st.booleans())
    @step
    def delete_group(self, pick: int, delete_volumes: bool) -> None:
        group = self.model.pick_group(pick)
        if group is None:
            return self.note("no group to delete")
        got = self.run(attempt(self.client.delete_group(group.id, delete_volumes)))
        if isinstance(got, CinderblockError) or self.model.refuse_group_delete(
                group, delete_volumes) is not None:
            self.expect(self.model.refuse_group_delete(group, delete_volumes), got)
            return
        self.note("→ deleting")
        self.run(eventually(functools.partial(self._gone, self.client.show_group, group.id),
                            timeout=SETTLE_S))
        for vol in self.model.members(group.id):
            del self.model.volumes[vol.id]
        del self.model.groups[group.id]

    @staticmethod
    async def _gone(show: Callable[[str], Awaitable[object]], object_id: str) -> bool:
        try:
            await show(object_id)
        except NotFound:
            return True
        return False

    def _retry_group(self, pick: int) -> None:
        group = self.model.pick_group(pick)
        if group is None:
            return self.note("no group create to retry")
        again = self.run(self.client.create_group(GROUP_TYPE, group.volume_types,
                                                  request_id=group.request_id))
        assert again.id == group.id, again

    def _retry_group_snapshot(self, pick: int) -> None:
        m = self.model
        if not m.group_snapshots:
            return self.note("no group snapshot create to retry")
        made = m.group_snapshots[sorted(m.group_snapshots)[pick % len(m.group_snapshots)]]
        again = self.run(self.client.create_group_snapshot(made.group_id,
                                                           request_id=made.request_id))
        assert (again.id, again.status) == (made.id, "available"), again

    # ---- restarts -----------------------------------------------------------------
    @rule(actor=st.sampled_from(ACTORS), kill=st.booleans())
    @step
    def restart_an_actor(self, actor: str, kill: bool) -> None:
        self.restart(actor, kill)

    def restart(self, actor: str, kill: bool) -> None:
        """Stop (SIGTERM) or SIGKILL ``actor``, start it again on its endpoints, and
        wait until the cluster answers as a whole again."""
        cluster = self.cluster.cluster
        if kill:
            proc = cluster.procs[actor]
            proc.kill()
            proc.wait()
        else:
            cluster.stop_actor(actor)
        cluster.respawn(actor)
        self.run(every_actor_answers(self.cluster, self.admin))

    # ---- SIGKILL in the middle of a request -------------------------------------------
    @rule(op=st.sampled_from(("create", "delete", "snapshot", "extend")),
          victim=st.sampled_from(("gateway", "quota", "scheduler", "node")),
          delay_ms=st.integers(0, 40), pick=PICK)
    @step
    def kill_an_actor_in_the_middle_of_a_request(
        self, op: str, victim: str, delay_ms: int, pick: int,
    ) -> None:
        """Send a request, SIGKILL ``victim`` ``delay_ms`` later (``node``: the one holding
        the volume), start it again, send the request again with its request id while
        the cluster is away, and let the model name the ends it may come to."""
        m = self.model
        targets = {
            "delete": [v for v in m.volumes.values() if m.refuse_delete(v) is None],
            "snapshot": [v for v in m.volumes.values() if m.refuse_snapshot(v, False) is None],
            "extend": [v for v in m.volumes.values() if m.refuse_extend(v, v.size + 1) is None],
        }.get(op, [])
        if not targets:
            op = "create"
        if op == "create" and not m.room_for(1):
            self.restart(NODES[pick % 2] if victim == "node" else victim, kill=True)
            return
        vol = sorted(targets, key=lambda v: v.id)[pick % len(targets)] if targets else None
        host = self.run(self.client.show_volume(vol.id)).host if vol is not None else None
        node = (host or "").partition("@")[0] or NODES[pick % 2]
        send, settle = {
            "create": self._create_cut_short,
            "delete": self._delete_cut_short,
            "snapshot": self._snapshot_cut_short,
            "extend": self._extend_cut_short,
        }[op](vol)
        self.note(f"{op} {vol.id if vol else ''}, killing {node if victim == 'node' else victim}")
        first = self.loop.create_task(attempt(send()))
        self.run(asyncio.sleep(delay_ms / 1000))
        self.restart(node if victim == "node" else victim, kill=True)
        answer = self.run(first)
        self.note(f"first answer: {shown(answer)}")
        settle(answer)

    def _create_cut_short(self, vol: ModelVolume | None) -> tuple[Send, Settle]:
        request = CreateRequest(new_request_id(), 1)

        def send() -> Coroutine[Any, Any, Volume]:
            return self.client.create_volume(1, request_id=request.request_id, timeout=3.0)

        def settle(first: Volume | CinderblockError) -> None:
            again: Volume = self.run(until_answered(send))
            self.note(f"sent again: {shown(again)}")
            if isinstance(first, Volume):
                assert again.id == first.id, f"a retried create made {again.id}, not {first.id}"
            self.model.volumes[again.id] = ModelVolume(again.id, 1, again.status, request,
                                                       volume_type=again.volume_type)
            self.model.open_ends[again.id] = frozenset({("available", 1), ("error", 1)})

        return send, settle

    def _delete_cut_short(self, vol: ModelVolume | None) -> tuple[Send, Settle]:
        assert vol is not None
        request_id = new_request_id()

        def send() -> Coroutine[Any, Any, Volume]:
            return self.client.delete_volume(vol.id, request_id=request_id, timeout=3.0)

        def settle(first: Volume | CinderblockError) -> None:
            again: Volume = self.run(until_answered(send))
            self.note(f"sent again: {shown(again)}")
            assert again.id == vol.id and again.status in (V.DELETING, V.DELETED), (
                f"a retried delete answered {again}")
            self.model.deleted[request_id] = ("volume", vol.id)
            self.model.open_ends[vol.id] = frozenset({("gone", 0)})

        return send, settle

    def _snapshot_cut_short(self, vol: ModelVolume | None) -> tuple[Send, Settle]:
        assert vol is not None
        request_id = new_request_id()

        def send() -> Coroutine[Any, Any, Snapshot]:
            return self.client.create_snapshot(vol.id, request_id=request_id, timeout=3.0)

        def settle(first: Snapshot | CinderblockError) -> None:
            again: Snapshot = self.run(until_answered(send))
            self.note(f"sent again: {shown(again)}")
            if isinstance(first, Snapshot):
                assert again.id == first.id, f"a retried snapshot made {again.id}, not {first.id}"
            self.model.snapshots[again.id] = ModelSnapshot(
                again.id, vol.id, vol.size, again.status, request_id, False)
            self.model.open_ends[again.id] = frozenset(
                {("available", vol.size), ("error", vol.size)})

        return send, settle

    def _extend_cut_short(self, vol: ModelVolume | None) -> tuple[Send, Settle]:
        assert vol is not None
        new_size = vol.size + 1

        def send() -> Coroutine[Any, Any, Volume]:
            return self.client.extend_volume(vol.id, new_size, timeout=3.0)

        def settle(first: Volume | CinderblockError) -> None:
            # no request id for an extend: done or not, never half (the record's size is
            # the file's, the reservation settled either way)
            self.model.open_ends[vol.id] = frozenset(
                {("available", vol.size), ("available", new_size),
                 ("error_extending", vol.size)})

        return send, settle

    # ---- after every step ---------------------------------------------------------
    @invariant()
    @kept
    def settled_exact_and_as_modelled(self) -> None:
        self.run(self._check_settled())

    async def _check_settled(self) -> None:
        async def settled() -> bool:
            return await settled_violations(self.cluster, self.admin, [self.project]) == []

        try:
            await eventually(settled, timeout=SETTLE_S, every=0.1)
        except TimeoutError:
            problems = await settled_violations(self.cluster, self.admin, [self.project])
            raise AssertionError(f"not settled after {SETTLE_S:g}s: {problems}") from None
        volumes = await self.client.list_volumes()
        snapshots = await self.client.list_snapshots()
        attachments = await self.client.list_attachments()
        backups = await self.client.list_backups()
        self.model.settle({v.id: v for v in volumes}, {s.id: s for s in snapshots})
        assert all(a.status is AttachmentStatus.ATTACHED for a in attachments), attachments
        listed = ({v.id: (v.size, v.status.value) for v in volumes},
                  {s.id: (s.volume_id, s.size, s.status.value) for s in snapshots},
                  {a.id: a.volume_id for a in attachments},
                  {b.id: (b.volume_id, b.size, b.status.value) for b in backups})
        assert listed == self.model.listing()
        groups = {g.id: (g.status.value, set(g.volumes)) for g in await self.client.list_groups()}
        assert groups == {g.id: ("available", {v.id for v in self.model.members(g.id)})
                          for g in self.model.groups.values()}
        made = {g.id: (g.group_id, g.status, set(g.snapshots))
                for g in await self.client.list_group_snapshots()}
        assert made == {g.id: (g.group_id, "available", {s.id for s in self.model.snapshots
                                                         .values() if s.group_snapshot == g.id})
                        for g in self.model.group_snapshots.values()}
        quota = await self.admin.show_quota(self.project)
        assert {r: quota.in_use.get(r, 0) for r in self.model.in_use()} == self.model.in_use()


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


# ---- the test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stateful_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    cfg = make_config(tmp_path_factory.mktemp("stateful"), quota=dict(LIMITS),
                      reconcile_after_s=1.0, reconcile_every_s=0.5)
    with running_cluster(cfg) as cluster:
        yield cluster


@pytest.mark.timeout(0 if EXAMPLES > 4 or STEPS > 12 else 300)
def test_every_sequence_of_operations_and_restarts_settles_exact_and_as_modelled(
    stateful_cluster: E2ECluster,
) -> None:
    require_tool("openssl")  # a node makes its export CA with it (attachments)
    loop = asyncio.new_event_loop()
    admin = stateful_cluster.client("admin", admin=True, timeout=10.0)
    ClusterMachine.cluster, ClusterMachine.loop, ClusterMachine.admin = (
        stateful_cluster, loop, admin)
    with contextlib.suppress(InvalidInput):  # the module's cluster has it from a run before
        loop.run_until_complete(admin.create_group_type(GROUP_TYPE))
    phases = [Phase.explicit, Phase.generate, *([Phase.shrink] if SHRINK else [])]
    run = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                   derandomize=SEED is None, database=None, phases=phases,
                   suppress_health_check=list(HealthCheck), print_blob=False,
                   verbosity=Verbosity.debug if VERBOSE else Verbosity.normal)
    machine: type[ClusterMachine] = ClusterMachine
    if SEED is not None:
        machine = hypothesis_seed(int(SEED))(type("SeededMachine", (ClusterMachine,), {}))
    FirstFailure.error = None
    try:
        run_state_machine_as_test(machine, settings=run)
    except BaseException:
        if FirstFailure.error is not None:
            raise FirstFailure.report() from FirstFailure.error
        raise
    finally:
        admin.close()
        loop.close()
