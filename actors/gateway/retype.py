"""Giving a volume another type, in place (Cinder's ``os-retype``).

    volume_retype_api   ExtractRetypeRequestTask → FindRetypeBackendTask →
                        QuotaReserveTask → RetypeVolumeTask

The rules are Cinder's (``cinder/volume/api.py`` ``retype``, the scheduler's
``find_retype_backend`` and the volume manager's ``retype``), judged in plain code:

* ``check_retype_request``: the policy is ``never`` or ``on-demand``; the new type is
  one the caller may use (a private type of another project is not found); the volume's
  size is within the new type's size bounds; a change of multiattach only while the
  volume is ``available``; the volume ``available`` or ``in-use`` and of another type;
  an ``in-use`` volume keeps its front-end QoS (``qos_specs.qos_allows_retype``).
* ``retype_backend``: the volume's zone is among the new type's
  (``RESKEY:availability_zones``), and the backend that holds the volume is up, not
  disabled, and has the capabilities the new type's extra specs ask for (the
  scheduler's own ``satisfies``). Then the volume keeps its bytes and its backend and
  takes the new type, as Cinder's LVM driver does ("No action required").

A volume whose backend does not satisfy the new type moves to another backend under
``on-demand`` (Cinder's migration, ``migration.retype_destination``: another backend of
the volume's zone that is up, enabled, satisfies the new type and has room, the one
with the most free space) and is refused under ``never``, in Cinder's words, before
anything changes. The migration is ``migration.py``'s (``volume_retype_migrate``), with
Cinder's rules: the volume ``available`` (an attached one needs Nova to swap it) and
without snapshots. Its answer is the volume in ``maintenance``; the volume takes the
new type when its data is whole on the destination, in the transaction that moves it,
and keeps its old type (on its old backend) if the migration fails. Cinder answers 202
and fails a retype it cannot do in the scheduler; this answers the failure at once and
the volume never leaves its status.

Quota, as Cinder's ``get_volume_type_reservation``: the new type's own quota
(``volumes_<type>``, ``gigabytes_<type>``, ``snapshots_<type>``) is reserved for the
volume and its snapshots (``retype_amounts``), and the old type's is given back; the
project's general usage does not change. The volume's snapshots take its new type, as
Cinder's manager makes them (a snapshot of the volume that another project holds keeps
its type and its project's quota).

The volume is claimed for the flow (``claim_volume``), and the request rules are
judged again after the backend lookup and the reservation (the flow's waits), just
before the change. The one write (``save_retype``) is the volume's type id, its
snapshots', the reservation's commit and the old type's release, in one transaction: a
crash before it leaves the old type and a reservation a restarted gateway rolls back,
after it the new. A type deleted or changed during the lookup ends the retype (try
again); from the write on, the type counts as in use, so it cannot be deleted, nor its
extra specs changed, before the row is committed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.lifecycle_checks import (
    check_group_member,
    claim_volume,
    release_claim,
    visible_volume,
)
from cinderblock.actors.gateway.lifecycle_flows import QuotaReserveTask
from cinderblock.actors.gateway.migration import GatewayMigrations, retype_destination
from cinderblock.actors.gateway.migration_store import RetypeTerms
from cinderblock.actors.gateway.qos_specs import qos_allows_retype
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import TypeCatalog, check_type_size, type_zones
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord, is_multiattach
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.scheduler.extra_specs import satisfies
from cinderblock.protocol.messages.lifecycle import VolumeRetype
from cinderblock.protocol.messages.qos import QosSpecs
from cinderblock.protocol.messages.quota import (
    add_amounts,
    snapshot_amounts,
    split_typed,
    volume_amounts,
)
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState

POLICIES = ("never", "on-demand")
RETYPABLE = frozenset({V.AVAILABLE, V.IN_USE})


def check_retype_request(volume: VolumeRecord, new: VolumeType, policy: str,
                         qos: Mapping[str, QosSpecs] | None = None) -> None:
    """Whether ``volume`` may take type ``new`` under ``policy``, in Cinder's order and
    words: ``InvalidInput`` for a wrong request, ``InvalidState`` for a status (or a
    type, or a front-end QoS an in-use volume would lose) that forbids it now. ``qos``:
    the QoS specs by id."""
    known = qos or {}
    qos_kept = qos_allows_retype(volume.status, known.get(volume.volume_type.qos_specs_id or ""),
                                 known.get(new.qos_specs_id or ""))
    if policy not in POLICIES:
        raise InvalidInput(f"Invalid input for field/attribute migration_policy. Value: "
                           f"{policy}. {policy!r} is not one of {list(POLICIES)}",
                           {"field": "migration_policy"})
    check_type_size(volume.size, new)
    if is_multiattach(new) != volume.multiattach and volume.status is not V.AVAILABLE:
        raise InvalidInput("Invalid volume_type passed, retypes affecting multiattach are "
                           "only allowed on available volumes, the specified volume however "
                           f"currently has a status of: {volume.status.value}.",
                           {"status": volume.status.value})
    if volume.status not in RETYPABLE or volume.volume_type.id == new.id or not qos_kept:
        raise InvalidState("Retype needs volume to be in available or in-use state, not be "
                           "part of an active migration or a consistency group, requested "
                           "type has to be different that the one from the volume, and for "
                           "in-use volumes front-end qos specs cannot change.",
                           {"status": volume.status.value,
                            "volume_type": volume.volume_type.name})


def retype_backend(volume: VolumeRecord, new: VolumeType, policy: str,
                   backends: Sequence[Backend], zones: Collection[str], snapshots: int = 0
                   ) -> str | None:
    """Where ``volume`` is to be of type ``new`` (``backends``: the scheduler's view;
    ``snapshots``: how many it has): None if the backend holding it takes it as that
    type, else (``on-demand``) the backend a migration moves it to; ``InvalidInput``
    (``InvalidState`` for a volume that cannot move now) naming why neither."""
    problem = _backend_problem(volume, new, backends, zones)
    if problem is None:
        return None
    details = {"backend": volume.host, "volume_type": new.name, "why": problem}
    if policy == "never":
        raise InvalidInput(f"Current backend not valid for volume {volume.id} with type "
                           f"{new.name}, migration not allowed: {problem}.", details)
    if volume.availability_zone not in _type_zones(new, zones):
        raise InvalidInput(f"Retype of volume {volume.id} to type {new.name} cannot migrate "
                           f"it: {problem}, and a migration keeps a volume in its zone.",
                           details)
    return retype_destination(volume, new, snapshots, backends).backend


def _type_zones(new: VolumeType, zones: Collection[str]) -> Collection[str]:
    try:
        return type_zones(new, zones)
    except InvalidInput:  # none of its zones is known
        return ()


def _backend_problem(volume: VolumeRecord, new: VolumeType, backends: Sequence[Backend],
                     zones: Collection[str]) -> str | None:
    allowed = _type_zones(new, zones)
    if volume.availability_zone not in allowed:
        return (f"the volume's availability zone {volume.availability_zone} is not among "
                f"the type's ({', '.join(sorted(allowed)) or 'none known'})")
    backend = next((b for b in backends if b.backend == volume.host), None)
    if backend is None:
        return f"its backend {volume.host} has not reported to the scheduler"
    if not backend.up:
        return f"its backend {backend.backend} is down"
    if backend.disabled:
        return f"its backend {backend.backend} is disabled"
    capabilities = {"thin_provisioning_support": backend.thin_provisioning_support,
                    **backend.capabilities}  # as the scheduler's index groups them
    if not satisfies(capabilities, new.extra_specs):
        return (f"its backend {backend.backend} has no capabilities matching extra specs "
                f"{dict(new.extra_specs)}")
    return None


def retype_amounts(volume: VolumeRecord, snapshots: Sequence[SnapshotRecord], new_type_id: str
                   ) -> tuple[dict[str, int], dict[str, int]]:
    """What a retype reserves of the new type's own quota and gives back of the old
    type's (each snapshot's own): the volume's and its ``snapshots``'."""
    def typed_only(amounts: list[dict[str, int]]) -> dict[str, int]:
        return {r: n for r, n in add_amounts(amounts).items() if split_typed(r) is not None}
    new = typed_only([volume_amounts(volume.size, new_type_id),
                      *(snapshot_amounts(s.size, new_type_id) for s in snapshots)])
    old = typed_only([volume_amounts(volume.size, volume.volume_type.id),
                      *(snapshot_amounts(s.size, s.volume_type_id) for s in snapshots)])
    return new, old


def moving_snapshots(store: GatewayStore, volume: VolumeRecord) -> list[SnapshotRecord]:
    """The volume's snapshots that take its new type: those of its own project."""
    return [s for s in store.snapshots.of_volume(volume.id) if s.project_id == volume.project_id]


class RetypeServices(Protocol):
    store: GatewayStore
    types: TypeCatalog
    zones: Collection[str]
    migrations: GatewayMigrations

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...

    async def backends_seen(self, ctx: Context) -> list[Backend]: ...
    def publish(self, rec: VolumeRecord, push: bool = True) -> None: ...
    async def run_flow(self, flow: LinearFlow[RetypeContext], c: RetypeContext,
                       volume_id: str, ctx: Context) -> None: ...


@dataclass(slots=True)
class RetypeContext:
    volume_id: str
    new_type: str
    policy: str
    ctx: Context
    volume: VolumeRecord | None = None
    vtype: VolumeType | None = None
    destination: str | None = None  # the backend a migration moves it to (None: in place)
    claimed: str | None = None  # the volume this flow claimed (released when it ends)
    # the quota (``QuotaReserveTask``): the new type's reserved, the old type's released
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)
    released: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0  # a retype's size is not checked against per_volume_gigabytes
    reservation_id: str | None = None
    committed: bool = False


class _Task(Task[RetypeContext]):
    def __init__(self, services: RetypeServices) -> None:
        self.s = services


class ExtractRetypeRequestTask(_Task):
    requires = ("volume_id", "new_type", "policy")
    provides = ("volume", "vtype")

    async def execute(self, c: RetypeContext) -> None:
        volume = visible_volume(self.s.store, c.volume_id, c.ctx)
        check_group_member(self.s.store, volume, "retyped")
        vtype = self.s.types.find_for(c.new_type, c.ctx.project_id, c.ctx.is_admin)
        check_retype_request(volume, vtype, c.policy, self.s.store.qos.by_id)
        c.claimed = claim_volume(self.s.store, volume, "retyping")
        c.volume, c.vtype = volume, vtype


class FindRetypeBackendTask(_Task):
    requires = ("volume", "vtype")
    provides = ("project", "deltas")

    async def execute(self, c: RetypeContext) -> None:
        assert c.volume is not None and c.vtype is not None
        backends = await self.s.backends_seen(c.ctx)
        snapshots = len(self.s.store.snapshots.of_volume(c.volume.id))
        c.destination = retype_backend(c.volume, c.vtype, c.policy, backends, self.s.zones,
                                       snapshots)
        c.project = c.volume.project_id
        c.deltas, c.released = retype_amounts(
            c.volume, moving_snapshots(self.s.store, c.volume), c.vtype.id)


class RetypeVolumeTask(_Task):
    requires = ("volume", "vtype", "reservation_id")

    async def execute(self, c: RetypeContext) -> None:
        volume, vtype = c.volume, c.vtype
        assert volume is not None and vtype is not None
        if self.s.types.by_id.get(vtype.id) is not vtype:  # deleted or changed meanwhile
            raise InvalidState(f"volume type {vtype.name} was changed or deleted while the "
                               "retype looked at its backend; try again",
                               {"volume_type": vtype.name})
        check_retype_request(volume, vtype, c.policy, self.s.store.qos.by_id)  # again
        snapshots = moving_snapshots(self.s.store, volume)
        if retype_amounts(volume, snapshots, vtype.id) != (c.deltas, c.released):
            raise InvalidState(f"volume {volume.id} or its snapshots changed while the retype "
                               "reserved quota; try again", {"volume_id": volume.id})
        assert c.reservation_id is not None
        if c.destination is not None:  # the migration holds the reservation once started
            terms = RetypeTerms(vtype.id, c.reservation_id, c.released)
            await self.s.migrations.start_for_retype(volume, c.destination, terms, c.ctx)
            c.committed = True
            return
        old = volume.volume_type, [s.volume_type_id for s in snapshots]
        volume.volume_type = vtype
        for snapshot in snapshots:
            snapshot.volume_type_id = vtype.id
        try:
            await self.s.store.save_retype(volume, snapshots, c.reservation_id, c.released)
        except BaseException:  # memory as the file: the write did not happen
            volume.volume_type = old[0]
            for snapshot, type_id in zip(snapshots, old[1], strict=True):
                snapshot.volume_type_id = type_id
            raise
        c.committed = True
        self.s.publish(volume, push=False)


def volume_retype_api(services: RetypeServices) -> LinearFlow[RetypeContext]:
    return LinearFlow(
        "volume_retype_api",
        [ExtractRetypeRequestTask(services), FindRetypeBackendTask(services),
         QuotaReserveTask[RetypeContext](services), RetypeVolumeTask(services)],
        given=("volume_id", "new_type", "policy", "ctx"),
    )


class VolumeRetyper:
    """The ``volume.retype`` op: runs ``volume_retype_api`` and answers the volume as
    it is at the end (the change made before the answer; a migration started)."""

    def __init__(self, services: RetypeServices) -> None:
        self.s = services
        self.flow = volume_retype_api(services)

    def handlers(self) -> dict[str, Handler]:
        return {"volume.retype": self.on_retype}

    async def on_retype(self, req: Request) -> Volume:
        body: VolumeRetype = req.body
        c = RetypeContext(body.volume_id, body.new_type, body.migration_policy, req.ctx)
        try:
            await self.s.run_flow(self.flow, c, body.volume_id, req.ctx)
        finally:
            release_claim(self.s.store, c.claimed)
        assert c.volume is not None
        return c.volume.view()
